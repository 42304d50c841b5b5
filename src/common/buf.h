/* buf.h - a growable byte buffer with a hard cap.
 *
 * Used for per-connection input and output.  Data lives in [off, len); the
 * buffer compacts lazily.  Growth never exceeds the cap given at init, so no
 * remote can make it grow without bound. */
#ifndef P2C2R_BUF_H
#define P2C2R_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of data */
    size_t cap; /* allocated */
    size_t max; /* hard cap on cap */
};

void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline uint8_t *buf_head(const struct buf *b) { return b->data + b->off; }

/* Makes room for n more bytes at the tail and returns a pointer to it, or
 * NULL when that would exceed the cap (or memory is exhausted).  The caller
 * then calls buf_commit with what it wrote. */
uint8_t *buf_reserve(struct buf *b, size_t n);
static inline void buf_commit(struct buf *b, size_t n) { b->len += n; }

/* Appends n bytes; returns 0 or P2C2R_ETOOBIG / P2C2R_ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drops n bytes from the head. */
void buf_consume(struct buf *b, size_t n);

/* Frees the memory of an empty buffer that has grown over keep bytes, so an
 * idle connection that once moved a large frame does not keep it. */
void buf_shrink(struct buf *b, size_t keep);

#endif
