# bench_physics: steps per second of the physics executor's simulation for
# 1,000 and 10,000 spheres and boxes falling onto a plane, one thread (see
# bench/bench_physics.c; figures in docs/tasks/physics.md).
add_executable(bench_physics ${CMAKE_CURRENT_LIST_DIR}/bench_physics.c)
target_link_libraries(bench_physics PRIVATE p2c2r_tasks m)
