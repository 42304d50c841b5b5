/* fuzz_check.h - the fuzz targets' invariant check: a violated invariant
 * prints where and aborts, which libFuzzer reports as a crash with the
 * input that caused it. */
#ifndef P2C2R_FUZZ_CHECK_H
#define P2C2R_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK_FUZZ(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                           \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
