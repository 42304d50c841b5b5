# fuzz_upscale: the upscale executor's image decoders, parameters and
# resampler (included by tests/fuzz/CMakeLists.txt, clang only).  The code
# under test comes instrumented (coverage and sanitizers) from
# p2c2r_fuzz_tasks, every executor as in the daemons, built with
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so PNG checksums do not stop
# mutations at the first CRC.
add_executable(fuzz_upscale ${CMAKE_CURRENT_LIST_DIR}/fuzz_upscale.c)
target_compile_options(fuzz_upscale PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_upscale PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_upscale PRIVATE p2c2r_fuzz_tasks)

# Regression: every checked-in input once (see fuzz_upscale.c for the format).
add_test(NAME fuzz_upscale_corpus
         COMMAND fuzz_upscale -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_upscale-
                 ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_upscale
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_upscale_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
