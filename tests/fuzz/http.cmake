# fuzz_http: the metrics endpoint's request-head parser (mhttp_parse_head in
# src/coord/http_parse.c), the one decoder there of what a remote sends:
# contract checks on every result, pipelined heads, and prefixes that must
# agree with the whole (tests/fuzz/fuzz_http.c).
#
# metrics_http.c and http_parse.c are compiled again here with coverage instrumentation
# (fuzzer-no-link), like p2c2r_fuzz_under_test; the helpers it calls come
# from p2c2r_common.  The seed corpus in corpus/fuzz_http/ is hand-made: real
# requests (curl, Prometheus, HTTP/1.0, HEAD, pipelined) and broken ones;
# `ctest -R fuzz_http_corpus` runs each seed once and scripts/fuzz.sh fuzzes
# it for a while.

add_library(p2c2r_fuzz_http_under_test STATIC ${PROJECT_SOURCE_DIR}/src/coord/metrics_http.c
            ${PROJECT_SOURCE_DIR}/src/coord/http_parse.c)
target_compile_options(p2c2r_fuzz_http_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_link_libraries(p2c2r_fuzz_http_under_test PUBLIC p2c2r_ws p2c2r_common PkgConfig::UV)

add_executable(fuzz_http fuzz_http.c)
target_compile_options(fuzz_http PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_http PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_http PRIVATE p2c2r_fuzz_http_under_test)
add_test(NAME fuzz_http_corpus
         COMMAND fuzz_http -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_http-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_http
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_http_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
