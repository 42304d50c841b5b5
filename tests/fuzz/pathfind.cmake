# fuzz_pathfind: the pathfind decoder (map text, query section, params-free
# task runs) and the searches, with A* and JPS checked against each other and
# every path checked for validity (tests/fuzz/fuzz_pathfind.c).
#
# The executor comes instrumented (coverage and sanitizers) from
# p2c2r_fuzz_tasks, every executor as in the daemons; the test helpers are
# compiled here the same way.  The seed corpus in corpus/fuzz_pathfind/ is
# hand-made: a flags byte (see the target) followed by a task;
# `ctest -R fuzz_pathfind_corpus` runs each seed once and scripts/fuzz.sh
# fuzzes it for a while.

add_library(p2c2r_fuzz_pathfind_under_test STATIC
  ${PROJECT_SOURCE_DIR}/tests/tasks/pathfind/pf_testlib.c)
target_compile_options(p2c2r_fuzz_pathfind_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_include_directories(p2c2r_fuzz_pathfind_under_test PUBLIC
                           ${PROJECT_SOURCE_DIR}/tests/tasks/pathfind)
target_link_libraries(p2c2r_fuzz_pathfind_under_test PUBLIC OpenSSL::Crypto m)

add_executable(fuzz_pathfind fuzz_pathfind.c)
target_compile_options(fuzz_pathfind PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_pathfind PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_pathfind PRIVATE p2c2r_fuzz_pathfind_under_test p2c2r_fuzz_tasks)
add_test(NAME fuzz_pathfind_corpus
         COMMAND fuzz_pathfind -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_pathfind-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_pathfind
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_pathfind_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
