# bench_durable: durable jobs acknowledged per second and their
# acknowledgement latency beside live tasks (bench/bench_durable.sh runs it
# with W2); figures in docs/PERFORMANCE.md.
add_executable(bench_durable ${CMAKE_CURRENT_LIST_DIR}/bench_durable.c)
target_link_libraries(bench_durable PRIVATE p2c2r_static Threads::Threads)
