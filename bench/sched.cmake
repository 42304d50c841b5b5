# bench_sched: the scheduler's benchmarks (placement cost and coordinator RSS
# with 100 and 10,000 peer connections; latency tail while peers are killed
# and while one peer answers slowly).
# It starts this build's p2c2rd and p2c2r-peer; figures in docs/PERFORMANCE.md.
add_executable(bench_sched ${CMAKE_CURRENT_LIST_DIR}/bench_sched.c)
# Threads: the slow peer of `bench_sched slow` runs on a thread.
target_link_libraries(bench_sched PRIVATE p2c2r_static Threads::Threads)
target_compile_definitions(bench_sched PRIVATE BENCH_BIN_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_sched p2c2rd p2c2r-peer)
