# bench_pathfind: queries per second of A* and JPS on a 512x512 map, one
# thread (see bench/bench_pathfind.c; figures in docs/tasks/pathfind.md).
add_executable(bench_pathfind ${CMAKE_CURRENT_LIST_DIR}/bench_pathfind.c)
target_link_libraries(bench_pathfind PRIVATE p2c2r_tasks m)
