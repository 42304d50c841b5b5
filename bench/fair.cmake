# bench_fair: a fair share for every renter (issue 12): renter B's latency
# behind renter A's 50,000-task realtime flood on one shared peer.  It starts
# this build's (or --bin-dir's) p2c2rd and p2c2r-peer through the integration
# harness.  Figures in docs/PERFORMANCE.md, "Fair shares".
add_executable(bench_fair ${CMAKE_CURRENT_LIST_DIR}/bench_fair.c)
target_link_libraries(bench_fair PRIVATE p2c2r_testharness)
target_compile_definitions(bench_fair PRIVATE BENCH_BIN_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_fair p2c2rd p2c2r-peer)

# Smoke run: one short round; figures are not judged (the bench fails only
# when a task of B fails or the harness's watchdog fires).
p2c2r_harness_env(bench_fair_env 120)
add_test(NAME bench.fair_quick
         COMMAND bench_fair --rounds 1 --seconds 1 --flood 5000 --bin-dir $<TARGET_FILE_DIR:p2c2rd>)
set_tests_properties(bench.fair_quick PROPERTIES
  LABELS bench
  TIMEOUT 120
  PROCESSORS 2
  ENVIRONMENT "${bench_fair_env}")
