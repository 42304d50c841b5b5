# fuzz_tls: the TLS record layer after the handshake (src/common/tls.c), the
# decoder of what a remote sends on a TLS connection once OpenSSL's part is
# done: attacker ciphertext in arbitrary chunks, and round trips of sealed
# plaintext at arbitrary split points and read sizes (tests/fuzz/fuzz_tls.c).
# tls.c and buf.c are compiled again with coverage instrumentation.  The seed
# corpus in corpus/fuzz_tls/ is hand-made.

add_library(p2c2r_fuzz_tls_under_test STATIC ${PROJECT_SOURCE_DIR}/src/common/tls.c
            ${PROJECT_SOURCE_DIR}/src/common/buf.c)
target_compile_options(p2c2r_fuzz_tls_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_link_libraries(p2c2r_fuzz_tls_under_test PUBLIC OpenSSL::SSL Threads::Threads)

add_executable(fuzz_tls fuzz_tls.c)
target_compile_options(fuzz_tls PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_tls PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_tls PRIVATE p2c2r_fuzz_tls_under_test)
add_test(NAME fuzz_tls_corpus
         COMMAND fuzz_tls -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_tls-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_tls
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_tls_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
