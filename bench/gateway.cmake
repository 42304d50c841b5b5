# bench_gateway: echo tasks through the JSON/WebSocket gateway (W1 latency,
# W2 throughput); bench/bench_gateway.sh runs it next to the native
# `p2c2r bench`.  Figures in docs/PERFORMANCE.md, "The gateway".
add_executable(bench_gateway ${CMAKE_CURRENT_LIST_DIR}/bench_gateway.c)
target_link_libraries(bench_gateway PRIVATE p2c2r_ws p2c2r_common)
