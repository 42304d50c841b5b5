# libp2c2r, the renter library: the client (src/client/: client.c, sized.c, the
# frame helper fadv.c, the trace writer trace.c, the local fallback local.c),
# the executors with the executor ABI helpers (p2c2r_tasks: the local fallback
# runs the built-in types in the renter's process) and the part of common the
# client uses (p2c2r_common_lib).  The executors bring their libraries:
# libcrypto, libpng, libjansson, libjpeg and libm (P2C2R_LIB_DEPS).  The public functions are exactly those the
# headers declare P2C2R_API; tests/install/check_exports.sh holds the
# installed files to that.
#
#   p2c2r          libp2c2r.so, installed
#   p2c2r_archive  libp2c2r.a, installed (p2c2r::p2c2r_static): self-contained
#   p2c2r_static   for this tree's CLI, tests and benchmarks only: the same
#                  objects, with p2c2r_common for the internal modules those
#                  programs use themselves

add_library(p2c2r_lib_objs OBJECT src/client/client.c src/client/submit.c src/client/durable.c src/client/results.c src/client/sized.c src/client/fadv.c
            src/client/trace.c src/client/local.c)
set_target_properties(p2c2r_lib_objs PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
set(P2C2R_LIB_MAP ${CMAKE_SOURCE_DIR}/src/client/libp2c2r.map)
set(P2C2R_LIB_INCLUDES $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                       $<BUILD_INTERFACE:${P2C2R_GEN_INCLUDE}>)

# Shared: soname libp2c2r.so.SOVERSION; the file is named
# SOVERSION.MINOR.PATCH so that it sorts within its ABI.  The version script
# exports the p2c2r_* functions unversioned and makes everything else local;
# --no-undefined turns a common module the client starts to use (and that
# p2c2r_common_lib lacks) into a link error instead of a library that fails
# at load time.  Sanitized builds leave the sanitizer runtime undefined in
# shared objects, so they go without it.
#
# A build tree made before an soname bump still holds the old library files
# (libp2c2r.so.0*), which nothing links any more but which a tool that
# globs libp2c2r.so* would find with the old, smaller export list: they go
# at configure time.
file(GLOB P2C2R_STALE_LIBS ${CMAKE_BINARY_DIR}/libp2c2r.so.*)
foreach(f IN LISTS P2C2R_STALE_LIBS)
  get_filename_component(n ${f} NAME)
  if(NOT n MATCHES "^libp2c2r\\.so\\.${P2C2R_SOVERSION}(\\.|$)")
    file(REMOVE ${f})
  endif()
endforeach()
set(P2C2R_LIB_DEPS OpenSSL::Crypto PkgConfig::PNG PkgConfig::JANSSON JPEG::JPEG m)
add_library(p2c2r SHARED $<TARGET_OBJECTS:p2c2r_lib_objs> $<TARGET_OBJECTS:p2c2r_tasks>
            $<TARGET_OBJECTS:p2c2r_common_lib>)
target_link_libraries(p2c2r PRIVATE ${P2C2R_LIB_DEPS})
set_target_properties(p2c2r PROPERTIES
  VERSION ${P2C2R_SOVERSION}.${PROJECT_VERSION_MINOR}.${PROJECT_VERSION_PATCH}
  SOVERSION ${P2C2R_SOVERSION}
  LINK_DEPENDS ${P2C2R_LIB_MAP})
target_link_options(p2c2r PRIVATE -Wl,--version-script=${P2C2R_LIB_MAP})
if(NOT P2C2R_SANITIZE)
  target_link_options(p2c2r PRIVATE -Wl,--no-undefined)
endif()
target_include_directories(p2c2r PUBLIC ${P2C2R_LIB_INCLUDES})
# TLS (src/common/tls.c): OpenSSL's libssl and libcrypto.
target_link_libraries(p2c2r PRIVATE OpenSSL::SSL)

# Static, installed: libp2c2r.a holds one object, the partial link (ld -r) of
# all of the above, in which every hidden symbol is then made local (objcopy
# --localize-hidden; and the ifunc resolvers clang makes global for the
# executors' static target_clones functions, which gcc keeps local).  So the archive defines the P2C2R_API functions and no
# other global symbol: no second archive is needed, and its buf_*, proto_*
# and util_* cannot clash with a game's own symbols.  (This tree's programs
# do not link it: they also link p2c2r_common and the executors, which
# define some of the same public functions.)
add_library(p2c2r_archive STATIC $<TARGET_OBJECTS:p2c2r_lib_objs> $<TARGET_OBJECTS:p2c2r_tasks>
            $<TARGET_OBJECTS:p2c2r_common_lib>)
# What a program linking the archive links too: plain library names, so the
# installed CMake package needs no find_package of its own for them.
target_link_libraries(p2c2r_archive INTERFACE crypto png16 z jansson jpeg m)
set_target_properties(p2c2r_archive PROPERTIES OUTPUT_NAME p2c2r EXPORT_NAME p2c2r_static)
target_include_directories(p2c2r_archive PUBLIC ${P2C2R_LIB_INCLUDES})
target_link_libraries(p2c2r_archive INTERFACE OpenSSL::SSL)
set(P2C2R_ARCHIVE_OBJ ${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/p2c2r_archive.dir/libp2c2r.o)
add_custom_command(TARGET p2c2r_archive POST_BUILD
  COMMAND ${CMAKE_LINKER} -r -o ${P2C2R_ARCHIVE_OBJ} --whole-archive $<TARGET_FILE:p2c2r_archive>
  COMMAND ${CMAKE_OBJCOPY} --localize-hidden --wildcard --localize-symbol=*.resolver ${P2C2R_ARCHIVE_OBJ}
  COMMAND ${CMAKE_COMMAND} -E rm -f $<TARGET_FILE:p2c2r_archive>
  COMMAND ${CMAKE_AR} qc $<TARGET_FILE:p2c2r_archive> ${P2C2R_ARCHIVE_OBJ}
  COMMAND ${CMAKE_RANLIB} $<TARGET_FILE:p2c2r_archive>
  COMMENT "Merging libp2c2r.a into one object whose only global symbols are the P2C2R_API functions"
  VERBATIM)

# Static, in-tree.
add_library(p2c2r_static STATIC $<TARGET_OBJECTS:p2c2r_lib_objs>)
target_include_directories(p2c2r_static PUBLIC ${P2C2R_LIB_INCLUDES})
target_link_libraries(p2c2r_static PUBLIC p2c2r_common p2c2r_tasks_a)
