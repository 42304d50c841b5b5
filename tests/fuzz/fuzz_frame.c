/* fuzz_frame.c - libFuzzer target: the input is the byte stream a
 * connection receives.
 *
 * Pass one decodes frames from the whole input the way a read loop does
 * once everything has arrived, checks each header against the decoder's
 * contract (length, prefix property, max_body) and runs every body parser,
 * batch iteration and, for parsed tasks, the executors on every body.  Pass
 * two feeds the same bytes through a struct buf in small chunks of varying
 * size, as the coordinator's on_read does, and must see exactly the same
 * frames and the same final state: decoding may not depend on how the bytes
 * were split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/proto.h"
#include "fuzz_msg.h"
#include "p2c2r/error.h"

#define MAX_BODY (1u << 20)
#define SMALL_MAX_BODY 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    size_t off, len;
};

/* Final state of a read loop: 0 = waiting for more, else the error. */
static int64_t pass_whole(const uint8_t *data, size_t size, struct seen *frames, size_t *nframes)
{
    size_t off = 0;
    *nframes = 0;
    for (;;) {
        struct frame_hdr h;
        int64_t r = proto_decode_hdr(data + off, size - off, MAX_BODY, &h);
        if (r == 0)
            return 0;
        if (r < 0) {
            FUZZ_ASSERT(r == P2C2R_EPROTO || r == P2C2R_ETOOBIG);
            if (r == P2C2R_ETOOBIG)
                FUZZ_ASSERT(size - off >= PROTO_HDR_LEN && h.body_len > MAX_BODY);
            return r;
        }
        FUZZ_ASSERT(r >= PROTO_HDR_LEN && (uint64_t)r <= size - off);
        FUZZ_ASSERT((uint64_t)r == PROTO_HDR_LEN + (uint64_t)h.body_len);
        FUZZ_ASSERT(memcmp(data + off, "P2CR", 4) == 0 && h.version == PROTO_VERSION);
        FUZZ_ASSERT(h.type == data[off + 5] && h.req_id == rd64(data + off + 8));
        FUZZ_ASSERT(proto_type_name(h.type) != NULL);

        /* Every strict prefix of a whole frame asks for more, on a buffer
         * of exactly that size. */
        size_t flen = (size_t)r;
        uint8_t *c = malloc(flen);
        if (!c)
            abort();
        memcpy(c, data + off, flen);
        struct frame_hdr h2;
        FUZZ_ASSERT(proto_decode_hdr(c, flen - 1, MAX_BODY, &h2) == 0);
        FUZZ_ASSERT(proto_decode_hdr(c, PROTO_HDR_LEN - 1, MAX_BODY, &h2) == 0);
        /* A smaller limit refuses exactly the bodies over it. */
        int64_t rs = proto_decode_hdr(c, flen, SMALL_MAX_BODY, &h2);
        FUZZ_ASSERT(rs == (h.body_len > SMALL_MAX_BODY ? P2C2R_ETOOBIG : r));
        free(c);

        fuzz_check_all(data + off + PROTO_HDR_LEN, h.body_len);
        frames[(*nframes)++] = (struct seen){off, flen};
        off += flen;
    }
}

static int64_t pass_chunked(const uint8_t *data, size_t size, const struct seen *frames,
                            size_t nframes)
{
    struct buf in;
    buf_init(&in, size + 1);
    uint64_t rng = size * 0x9e3779b97f4a7c15ull + 1;
    size_t fed = 0, next = 0, consumed = 0;
    int64_t state = 0;
    while (fed < size && state == 0) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t chunk = 1 + (size_t)(rng >> 58); /* 1..64 */
        if (chunk > size - fed)
            chunk = size - fed;
        FUZZ_ASSERT(buf_append(&in, data + fed, chunk) == 0);
        fed += chunk;
        for (;;) {
            struct frame_hdr h;
            int64_t r = proto_decode_hdr(buf_head(&in), buf_used(&in), MAX_BODY, &h);
            if (r == 0)
                break;
            if (r < 0) {
                state = r;
                break;
            }
            FUZZ_ASSERT(next < nframes);
            FUZZ_ASSERT(frames[next].off == consumed && frames[next].len == (size_t)r);
            FUZZ_ASSERT(memcmp(buf_head(&in), data + consumed, (size_t)r) == 0);
            next++;
            consumed += (size_t)r;
            buf_consume(&in, (size_t)r);
        }
    }
    FUZZ_ASSERT(next == nframes);
    buf_fini(&in);
    return state;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An empty stream has nothing to decode (and data may be NULL). */
    if (size == 0)
        return 0;
    struct seen *frames = malloc(sizeof(*frames) * (size / PROTO_HDR_LEN + 1));
    if (!frames)
        abort();
    size_t nframes;
    int64_t whole = pass_whole(data, size, frames, &nframes);
    FUZZ_ASSERT(pass_chunked(data, size, frames, nframes) == whole);
    free(frames);
    return 0;
}
