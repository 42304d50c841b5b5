# bench_byzantine: untrusted peers (issue 11): 10 peers of which none, 10% or
# 30% lie (always, or after behaving), wrong results delivered, tasks until
# each liar is quarantined, coordinator and peer CPU per task and realtime
# latency against an all-honest run.  It starts this build's p2c2rd and
# p2c2r-peer; the liars are the integration harness's fake peers (they sign
# their registration like a real peer), hence the harness library.
# Figures in docs/PERFORMANCE.md, "Untrusted peers".
add_executable(bench_byzantine ${CMAKE_CURRENT_LIST_DIR}/bench_byzantine.c)
target_link_libraries(bench_byzantine PRIVATE p2c2r_testharness)
target_compile_definitions(bench_byzantine PRIVATE BENCH_BIN_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_byzantine p2c2rd p2c2r-peer)

# Smoke run: a few thousand tasks per scenario (a fifth under sanitizers);
# it fails when a wrong result reaches a renter where none may (always-liars
# under adaptive, anything under quorum2), an always-liar is not
# quarantined, or a task has no single outcome.  Figures are not judged.
p2c2r_harness_env(bench_byzantine_env 120)
add_test(NAME bench.byzantine_quick
         COMMAND bench_byzantine --quick --bin-dir $<TARGET_FILE_DIR:p2c2rd>)
set_tests_properties(bench.byzantine_quick PROPERTIES
  LABELS bench
  TIMEOUT 120
  PROCESSORS 2
  ENVIRONMENT "${bench_byzantine_env}")
