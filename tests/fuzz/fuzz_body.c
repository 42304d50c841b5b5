/* fuzz_body.c - libFuzzer target: one message body, handed straight to a
 * parser without a frame header, so the fuzzer spends its effort inside
 * the body formats (PEER_REGISTER with its type table, tasks with their
 * params and input, SUBMIT_BATCH entries) instead of on the header.
 *
 * Input: one selector byte (which parser, modulo FUZZ_P_COUNT), then the
 * body.  Parsed tasks of a built-in type run through that executor's check
 * and run, with p2c2r_param_get on their params (see fuzz_msg.c). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_check_parser((enum fuzz_parser)(data[0] % FUZZ_P_COUNT), data + 1, size - 1);
    return 0;
}
