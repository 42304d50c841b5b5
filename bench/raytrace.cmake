# bench_raytrace: the raytrace renderer in-process on one thread (the
# baseline); bench/bench_render.sh runs the same frame through p2c2rd with
# 1, 2 and 4 local peers and prints the speed-ups.
add_executable(bench_raytrace ${CMAKE_CURRENT_LIST_DIR}/bench_raytrace.c)
target_link_libraries(bench_raytrace PRIVATE p2c2r_common p2c2r_tasks m)
