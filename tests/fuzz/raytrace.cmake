# Fuzz target for the raytrace executor's decoders (included by
# tests/fuzz/CMakeLists.txt when P2C2R_FUZZ is ON and the compiler is clang).
# The executor comes instrumented (coverage and sanitizers) from
# p2c2r_fuzz_tasks, every executor as in the daemons.  The seed corpus is
# corpus/fuzz_raytrace/ (hand written scenes, plus scene + NUL + mesh blob
# files); scripts/fuzz.sh picks the target up from that directory.
add_executable(fuzz_raytrace ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_raytrace.c)
target_compile_options(fuzz_raytrace PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_raytrace PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_raytrace PRIVATE p2c2r_fuzz_tasks)
add_test(NAME fuzz_raytrace_corpus
         COMMAND fuzz_raytrace -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_raytrace-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_raytrace
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_raytrace_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
