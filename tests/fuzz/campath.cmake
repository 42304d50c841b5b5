# fuzz_campath: the camera path of `p2c2r render --frames` (src/cli/campath.c):
# a scene file's "camera_path" read with jansson and the per-frame scene text
# written from it, with contract checks (tests/fuzz/fuzz_campath.c).  The
# seed corpus in corpus/fuzz_campath/ is hand-made: examples/scenes/orbit.json
# and small good and broken paths.

add_library(p2c2r_fuzz_campath_under_test STATIC ${PROJECT_SOURCE_DIR}/src/cli/campath.c)
target_compile_options(p2c2r_fuzz_campath_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_include_directories(p2c2r_fuzz_campath_under_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(p2c2r_fuzz_campath_under_test PUBLIC PkgConfig::JANSSON m)

add_executable(fuzz_campath fuzz_campath.c)
target_compile_options(fuzz_campath PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_campath PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_include_directories(fuzz_campath PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(fuzz_campath PRIVATE p2c2r_fuzz_campath_under_test)
add_test(NAME fuzz_campath_corpus
         COMMAND fuzz_campath -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_campath-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_campath
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_campath_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
