# fuzz_physics: the physics executor's scene decoder, plus a few steps of its
# simulation and its encoder (tests/fuzz/fuzz_physics.c).  Included from
# tests/fuzz/CMakeLists.txt after its clang check, so P2C2R_FUZZ_SAN is set.
#
# The executor comes instrumented from p2c2r_fuzz_tasks (every executor, as
# in the daemons).  The seed corpus is corpus/fuzz_physics (hand-written
# scenes: every shape pair, params lines, and refused inputs).

add_executable(fuzz_physics fuzz_physics.c)
target_compile_options(fuzz_physics PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_physics PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_physics PRIVATE p2c2r_fuzz_tasks)
# Every checked-in input once, no mutation (nothing is written to the corpus).
add_test(NAME fuzz_physics_corpus
         COMMAND fuzz_physics -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_physics-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_physics
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_physics_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
