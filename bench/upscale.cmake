# bench_upscale: the upscale resampler, one thread (see bench/bench_upscale.sh
# for the comparison with Pillow).
add_executable(bench_upscale ${CMAKE_CURRENT_LIST_DIR}/bench_upscale.c)
target_link_libraries(bench_upscale PRIVATE p2c2r_tasks m)
