# bench_frame: a game's 60 Hz frame loop (issue 10, item 6): per type the
# share of results in the same frame / next / later / never, round trips,
# library time per frame, peer time past deadlines; scenarios local2,
# peers4, kill4, coordkill2 (the coordinator killed: the client's local
# fallback).  Figures in docs/PERFORMANCE.md, "The 16 ms frame".
add_executable(bench_frame ${CMAKE_CURRENT_LIST_DIR}/bench_frame.c)
target_link_libraries(bench_frame PRIVATE p2c2r_testharness)
target_compile_definitions(bench_frame PRIVATE BENCH_BIN_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_frame p2c2rd p2c2r-peer)

# Smoke run: 3 s of frames per scenario; it fails when a task has no single
# outcome or a type other than raytrace gets nothing back.  Figures are not
# judged (the machine is shared).
p2c2r_harness_env(bench_frame_env 120)
add_test(NAME bench.frame_quick
         COMMAND bench_frame --quick --bin-dir $<TARGET_FILE_DIR:p2c2rd>)
set_tests_properties(bench.frame_quick PROPERTIES
  LABELS bench
  TIMEOUT 120
  PROCESSORS 2
  ENVIRONMENT "${bench_frame_env}")
