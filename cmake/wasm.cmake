# The built-in executors as WebAssembly (scripts/wasm.sh): build/www/
# p2c2r_exec.js + p2c2r_exec.wasm, what the contribute page's worker runs,
# beside copies of web/*.html, *.js and *.css (the page, its script, the
# worker, and any other page there): build/www is a directory for p2c2rd
# --http-root (docs/TASKS.md, "WebAssembly").  On by default when Debian's
# emcc is installed (scripts/deps.sh installs it), off in fuzz builds.  The
# Debian sources and the static libraries built from them are cached in
# P2C2R_WASM_DEPS, shared by every build directory of the tree.
find_program(P2C2R_EMCC emcc)
set(P2C2R_WASM_DEFAULT OFF)
if(P2C2R_EMCC AND NOT P2C2R_FUZZ)
  set(P2C2R_WASM_DEFAULT ON)
endif()
option(P2C2R_WASM "Build the executors to WebAssembly with emcc" ${P2C2R_WASM_DEFAULT})
set(P2C2R_WASM_DEPS "${CMAKE_SOURCE_DIR}/.cache/wasm-deps" CACHE PATH
    "Where scripts/wasm.sh keeps the Debian sources and the libraries built from them")

if(P2C2R_WASM)
  if(NOT P2C2R_EMCC)
    message(FATAL_ERROR "P2C2R_WASM needs emcc: install Debian's emscripten (scripts/deps.sh)")
  endif()
  file(GLOB P2C2R_WASM_INPUTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/tasks/*.c
       ${CMAKE_SOURCE_DIR}/src/tasks/*.h)
  list(APPEND P2C2R_WASM_INPUTS ${CMAKE_SOURCE_DIR}/wasm/p2c2r_wasm.c
       ${CMAKE_SOURCE_DIR}/scripts/wasm.sh ${CMAKE_SOURCE_DIR}/scripts/wasm_fetch.sh
       ${CMAKE_SOURCE_DIR}/include/p2c2r/executor.h ${CMAKE_SOURCE_DIR}/include/p2c2r/error.h)
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/www/p2c2r_exec.js ${CMAKE_BINARY_DIR}/www/p2c2r_exec.wasm
    COMMAND ${CMAKE_COMMAND} -E env P2C2R_WASM_DEPS=${P2C2R_WASM_DEPS}
            bash ${CMAKE_SOURCE_DIR}/scripts/wasm.sh ${CMAKE_BINARY_DIR}/www
    DEPENDS ${P2C2R_WASM_INPUTS}
    COMMENT "Building the executors to WebAssembly (scripts/wasm.sh)"
    VERBATIM)
  file(GLOB P2C2R_WEB_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/web/*.html ${CMAKE_SOURCE_DIR}/web/*.js
       ${CMAKE_SOURCE_DIR}/web/*.css)
  set(P2C2R_WEB_COPIES "")
  foreach(f IN LISTS P2C2R_WEB_FILES)
    get_filename_component(n ${f} NAME)
    add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/www/${n}
                       COMMAND ${CMAKE_COMMAND} -E copy_if_different ${f} ${CMAKE_BINARY_DIR}/www/${n}
                       DEPENDS ${f} VERBATIM)
    list(APPEND P2C2R_WEB_COPIES ${CMAKE_BINARY_DIR}/www/${n})
  endforeach()
  add_custom_target(p2c2r_wasm ALL DEPENDS ${CMAKE_BINARY_DIR}/www/p2c2r_exec.wasm ${P2C2R_WEB_COPIES})
  install(FILES ${CMAKE_BINARY_DIR}/www/p2c2r_exec.js ${CMAKE_BINARY_DIR}/www/p2c2r_exec.wasm
          ${P2C2R_WEB_FILES} DESTINATION ${CMAKE_INSTALL_DATADIR}/p2c2r/www)
endif()
