/* fuzz_msg.h - the checks the fuzz targets run on every body they find.
 *
 * Each parser is run on a copy of the body in a malloc'd buffer of exactly
 * its size, so AddressSanitizer reports any read past the body.  A body a
 * parser accepts must also satisfy the protocol's limits and survive a
 * round trip: re-encoding the parsed message gives back the same bytes
 * (reserved fields aside).  Violations abort, which libFuzzer reports as a
 * crash. */
#ifndef P2C2R_FUZZ_MSG_H
#define P2C2R_FUZZ_MSG_H

#include <stddef.h>
#include <stdint.h>

/* Which parser fuzz_check_parser runs: one per body format. */
enum fuzz_parser {
    FUZZ_P_HELLO,
    FUZZ_P_HELLO_OK,
    FUZZ_P_ERROR,
    FUZZ_P_REGISTER,
    FUZZ_P_TASK,
    FUZZ_P_RESULT,
    FUZZ_P_DELIVER,
    FUZZ_P_U32,
    FUZZ_P_U64,
    FUZZ_P_BATCH,
    FUZZ_P_JOB_INFO,
    FUZZ_P_COUNT
};

/* Runs one parser, with its checks, on b[0..n) (borrowed). */
void fuzz_check_parser(enum fuzz_parser p, const uint8_t *b, size_t n);

/* Runs every parser on b[0..n) (borrowed): a frame's type does not limit
 * what a buggy dispatcher might hand a parser. */
void fuzz_check_all(const uint8_t *b, size_t n);

/* Aborts with a message when cond is false. */
#define FUZZ_ASSERT(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))
_Noreturn void fuzz_fail(const char *file, int line, const char *expr);

#endif
