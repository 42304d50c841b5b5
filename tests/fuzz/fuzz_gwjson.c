/* fuzz_gwjson.c - libFuzzer target: the input is one text message a
 * gateway client sends (src/coord/gwjson.c, gw_decode).
 *
 * Checked: the decoder returns 0, P2C2R_EPROTO or P2C2R_EINVAL, with a
 * reason on failure and nothing kept; on success every view it returns
 * lies within its limits (ids, names, tokens, types, params), the task_id
 * echo is a JSON string or number, and everything is released.  And the
 * decoder with its own fast parser gives exactly what jansson alone gives:
 * the same code, the same reason, the same fields.  The input is a heap copy
 * of exactly the bytes given, so AddressSanitizer sees any read past them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/gwjson.h"
#include "p2c2r/error.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_msg m, slow;

static int same_str(struct gw_str a, struct gw_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0) && (a.p == NULL) == (b.p == NULL);
}

/* Every field of two decodings of one text agree. */
static void check_same(void)
{
    CHECK_FUZZ(m.kind == slow.kind && m.tid_len == slow.tid_len && memcmp(m.tid, slow.tid, m.tid_len) == 0);
    CHECK_FUZZ(m.tid_is_num == slow.tid_is_num && m.tid_num == slow.tid_num);
    CHECK_FUZZ(same_str(m.name, slow.name) && same_str(m.token, slow.token) && same_str(m.task_type, slow.task_type));
    CHECK_FUZZ(same_str(m.data, slow.data) && same_str(m.result, slow.result) && same_str(m.error, slow.error));
    CHECK_FUZZ(same_str(m.gpu_model, slow.gpu_model));
    CHECK_FUZZ(m.params_len == slow.params_len && memcmp(m.params, slow.params, m.params_len) == 0);
    CHECK_FUZZ(m.binary_results == slow.binary_results && m.data_frame == slow.data_frame);
    CHECK_FUZZ(m.priority == slow.priority && m.no_cache == slow.no_cache && m.deadline_ms == slow.deadline_ms);
    CHECK_FUZZ(m.min_version == slow.min_version && m.cores == slow.cores && m.slots == slow.slots);
    CHECK_FUZZ(m.mem_bytes == slow.mem_bytes && m.gpu == slow.gpu && m.ntypes == slow.ntypes);
    for (unsigned i = 0; i < m.ntypes; i++)
        CHECK_FUZZ(same_str(m.types[i].name, slow.types[i].name) && m.types[i].version == slow.types[i].version &&
                   m.types[i].det == slow.types[i].det);
    CHECK_FUZZ(m.has_key == slow.has_key && memcmp(m.key, slow.key, sizeof(m.key)) == 0 &&
               memcmp(m.sig, slow.sig, sizeof(m.sig)) == 0);
    CHECK_FUZZ(m.success == slow.success && m.result_frame == slow.result_frame);
    CHECK_FUZZ(m.error_code == slow.error_code && m.exec_us == slow.exec_us && m.credit == slow.credit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = malloc(size ? size : 1);
    memcpy(t, data, size);
    char err[256] = "", err2[256] = "";
    int rc = gw_decode(t, size, &m, err, sizeof(err));
    int rc2 = gw_decode_ex(t, size, 0, &slow, err2, sizeof(err2));
    CHECK_FUZZ(rc == rc2);
    if (rc != 0) {
        CHECK_FUZZ(rc == P2C2R_EPROTO || rc == P2C2R_EINVAL);
        CHECK_FUZZ(err[0] != '\0' && m.doc == NULL && m.text == NULL && m.fast == NULL);
        CHECK_FUZZ(strcmp(err, err2) == 0);
        free(t);
        return 0;
    }
    check_same();
    gw_msg_free(&slow);
    CHECK_FUZZ(m.kind >= 0 && m.kind < GW_KINDS && (m.doc != NULL || m.text != NULL));
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
    CHECK_FUZZ(m.doc == NULL && m.text == NULL && m.fast == NULL);
    free(t);
    return 0;
}
