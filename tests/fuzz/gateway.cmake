# fuzz_ws and fuzz_gwjson: the gateway's two decoders of what a remote sends
# (docs/GATEWAY.md): the WebSocket framing and message reader
# (src/common/ws.c) and the JSON message decoder (src/coord/gwjson.c).
#
# Both are compiled again with coverage instrumentation (fuzzer-no-link).
# The seed corpora in corpus/fuzz_ws/ and corpus/fuzz_gwjson/ are hand-made
# (every message of the document, framing corner cases); `ctest -R
# fuzz_ws_corpus|fuzz_gwjson_corpus` runs each seed once and scripts/fuzz.sh
# fuzzes them for a while.

add_library(p2c2r_fuzz_gw_under_test STATIC
  ${PROJECT_SOURCE_DIR}/src/common/ws.c ${PROJECT_SOURCE_DIR}/src/common/b64.c
  ${PROJECT_SOURCE_DIR}/src/coord/gwjson.c)
target_compile_options(p2c2r_fuzz_gw_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_link_libraries(p2c2r_fuzz_gw_under_test PUBLIC p2c2r_common OpenSSL::Crypto PkgConfig::JANSSON)

foreach(t fuzz_ws fuzz_gwjson)
  add_executable(${t} ${t}.c)
  target_compile_options(${t} PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
  target_link_options(${t} PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
  target_link_libraries(${t} PRIVATE p2c2r_fuzz_gw_under_test)
  p2c2r_fuzz_corpus_test(${t})
endforeach()
