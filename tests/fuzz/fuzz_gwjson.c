/* fuzz_gwjson.c - libFuzzer target: the input is one text message a
 * gateway client sends (src/coord/gwjson.c, gw_decode).
 *
 * Checked: the decoder returns 0, P2C2R_EPROTO or P2C2R_EINVAL, with a
 * reason on failure and no document kept; on success every view it returns
 * lies within its limits (ids, names, tokens, types, params), the task_id
 * echo is a JSON string or number, and the document is released.  The input
 * is a heap copy of exactly the bytes given, so AddressSanitizer sees any
 * read past them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/gwjson.h"
#include "p2c2r/error.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_msg m;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = malloc(size ? size : 1);
    memcpy(t, data, size);
    char err[256] = "";
    int rc = gw_decode(t, size, &m, err, sizeof(err));
    if (rc != 0) {
        CHECK_FUZZ(rc == P2C2R_EPROTO || rc == P2C2R_EINVAL);
        CHECK_FUZZ(err[0] != '\0' && m.doc == NULL);
        free(t);
        return 0;
    }
    CHECK_FUZZ(m.kind >= 0 && m.kind < GW_KINDS && m.doc != NULL);
    CHECK_FUZZ(m.name.len <= PROTO_MAX_NAME && m.token.len <= PROTO_MAX_TOKEN);
    CHECK_FUZZ(m.task_type.len <= PROTO_MAX_TYPE_NAME && m.params_len <= PROTO_MAX_PARAMS);
    CHECK_FUZZ(m.ntypes <= PROTO_MAX_TYPES && m.priority < 3 && m.error.len <= GW_MAX_ERROR);
    if (m.kind == GW_TASK_SUBMIT || m.kind == GW_TASK_CANCEL || m.kind == GW_TASK_RESULT) {
        CHECK_FUZZ(m.tid_len >= 1 && m.tid_len <= GW_MAX_ID + 2);
        CHECK_FUZZ(m.tid[0] == '"' ? m.tid[m.tid_len - 1] == '"' : m.tid_is_num);
    }
    if (m.kind == GW_TASK_SUBMIT)
        CHECK_FUZZ(m.task_type.len >= 1 && (m.data_frame != 0) != (m.data.p != NULL));
    for (unsigned i = 0; i < m.ntypes; i++)
        CHECK_FUZZ(m.types[i].name.len >= 1 && m.types[i].name.len <= PROTO_MAX_TYPE_NAME);
    /* Each params line is key=value\n. */
    for (size_t i = 0; i < m.params_len;) {
        const char *nl = memchr(m.params + i, '\n', m.params_len - i);
        CHECK_FUZZ(nl != NULL || m.kind == GW_TASK_SUBMIT);
        if (!nl)
            break;
        i = (size_t)(nl - m.params) + 1;
    }
    gw_msg_free(&m);
    CHECK_FUZZ(m.doc == NULL);
    free(t);
    return 0;
}
