# bench_tls: what TLS costs (docs/PERFORMANCE.md, "TLS"): coordinator RSS with
# 10,000 idle TLS peer connections, and W1/W2 with TLS on and off, alternating.
# It starts this build's p2c2rd, p2c2r-peer and p2c2r, and the openssl command.
add_executable(bench_tls ${CMAKE_CURRENT_LIST_DIR}/bench_tls.c)
target_link_libraries(bench_tls PRIVATE p2c2r_static)
target_compile_definitions(bench_tls PRIVATE BENCH_BIN_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(bench_tls p2c2rd p2c2r-peer p2c2r_cli)
