# fuzz_upscale: the upscale executor's image decoders, parameters and
# resampler (included by tests/fuzz/CMakeLists.txt, clang only).  The code
# under test is compiled again here with coverage instrumentation and the
# sanitizers, like p2c2r_fuzz_under_test.
add_library(p2c2r_fuzz_upscale_under_test STATIC
  ${PROJECT_SOURCE_DIR}/src/tasks/imageio.c
  ${PROJECT_SOURCE_DIR}/src/tasks/upscale.c
  ${PROJECT_SOURCE_DIR}/src/tasks/upscale_resample.c
  ${PROJECT_SOURCE_DIR}/src/tasks/tasks.c
  ${PROJECT_SOURCE_DIR}/src/tasks/exec_abi.c)
target_compile_options(p2c2r_fuzz_upscale_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
# PNG checksums are not checked in this build, so mutations reach the pixel
# decoder instead of failing at the first CRC (see imageio.c).
target_compile_definitions(p2c2r_fuzz_upscale_under_test PRIVATE FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
target_link_libraries(p2c2r_fuzz_upscale_under_test PUBLIC PkgConfig::PNG JPEG::JPEG OpenSSL::Crypto m)

add_executable(fuzz_upscale ${CMAKE_CURRENT_LIST_DIR}/fuzz_upscale.c)
target_compile_options(fuzz_upscale PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_upscale PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_upscale PRIVATE p2c2r_fuzz_upscale_under_test)

# Regression: every checked-in input once (see fuzz_upscale.c for the format).
add_test(NAME fuzz_upscale_corpus
         COMMAND fuzz_upscale -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_upscale-
                 ${CMAKE_CURRENT_LIST_DIR}/corpus/fuzz_upscale
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_upscale_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
