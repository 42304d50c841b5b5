# fuzz_acctfile: the credentials file parser (src/coord/acctfile.c, used by
# p2c2rd --accounts and --tokens), with contract checks on every result
# (tests/fuzz/fuzz_acctfile.c).
#
# acctfile.c is compiled again here with coverage instrumentation
# (fuzzer-no-link), like the other decoders.  The seed corpus in
# corpus/fuzz_acctfile/ is hand-made: the shipped example, a tokens file and
# broken files; `ctest -R fuzz_acctfile_corpus` runs each seed once and
# scripts/fuzz.sh fuzzes it for a while.

add_library(p2c2r_fuzz_acctfile_under_test STATIC ${PROJECT_SOURCE_DIR}/src/coord/acctfile.c)
target_compile_options(p2c2r_fuzz_acctfile_under_test PRIVATE -fsanitize=fuzzer-no-link ${P2C2R_FUZZ_SAN})
target_link_libraries(p2c2r_fuzz_acctfile_under_test PUBLIC p2c2r_common PkgConfig::SODIUM m)

add_executable(fuzz_acctfile fuzz_acctfile.c)
target_compile_options(fuzz_acctfile PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_options(fuzz_acctfile PRIVATE -fsanitize=fuzzer ${P2C2R_FUZZ_SAN})
target_link_libraries(fuzz_acctfile PRIVATE p2c2r_fuzz_acctfile_under_test)
add_test(NAME fuzz_acctfile_corpus
         COMMAND fuzz_acctfile -runs=0 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz_acctfile-
                 ${CMAKE_CURRENT_SOURCE_DIR}/corpus/fuzz_acctfile
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(fuzz_acctfile_corpus PROPERTIES LABELS fuzz TIMEOUT 120)
