/* buf.c - growable, capped byte buffer (see buf.h). */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void buf_fini(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

uint8_t *buf_reserve(struct buf *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->data && b->cap - b->len >= n)
        return b->data + b->len;
    size_t used = b->len - b->off;
    if (n > b->max || used > b->max - n)
        return NULL;
    /* Slide the data down when that alone makes enough room: moving the
     * unconsumed tail (usually part of one frame) is cheaper than a new
     * allocation, whose fresh pages would all fault in again. */
    if (b->data && b->cap - used >= n) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return b->data + b->len;
    }
    /* Start small: a daemon holds one output buffer per connection, and
     * at 10,000 mostly idle peers 4 KiB each was 39 MiB of its 60; a busy
     * buffer doubles to its working size in a few steps and keeps it. */
    size_t want = b->cap ? b->cap : 256;
    while (want < used + n)
        want *= 2;
    if (want > b->max)
        want = b->max;
    if (b->off) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
    }
    uint8_t *d = realloc(b->data, want);
    if (!d)
        return NULL;
    b->data = d;
    b->cap = want;
    return b->data + b->len;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t *d = buf_reserve(b, n);
    if (!d)
        return (n > b->max || buf_used(b) > b->max - n) ? P2C2R_ETOOBIG : P2C2R_ENOMEM;
    if (n)
        memcpy(d, p, n);
    b->len += n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void buf_shrink(struct buf *b, size_t keep)
{
    if (b->off == b->len && b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->off = b->len = b->cap = 0;
    }
}
