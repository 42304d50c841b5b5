/* sized.h - libp2c2r's sized public structs: moving a caller's struct,
 * older (smaller) or newer (larger) than this library's, to and from the
 * library's own layout (docs/ARCHITECTURE.md, "ABI policy").  Internal to
 * the library. */
#ifndef P2C2R_CLIENT_SIZED_H
#define P2C2R_CLIENT_SIZED_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/client.h"

struct layout {
    size_t size;        /* this library's sizeof */
    const size_t *ends; /* ascending: the first layout's end, then each later field's */
    size_t nends;
};

extern const struct layout task_layout, options_layout, result_layout, pressure_layout,
    advice_layout;

/* The size member of the struct at p (possibly unaligned). */
uint32_t sized_size(const void *p);
/* Whether size is one the library accepts for the struct (from its first
 * layout up to P2C2R_STRUCT_SIZE_MAX). */
int sized_ok(uint32_t size, const struct layout *l);
/* Reads the caller's struct at src (size checked by sized_ok) into dst, of
 * the library's layout: whole fields within size, zero for the rest.
 * EINVAL when a larger struct sets a byte past the library's. */
int sized_in(void *dst, const void *src, uint32_t size, const struct layout *l);
/* Writes src, of the library's layout, to the caller's struct at dst of
 * size bytes: whole fields within size, size kept, zeroes past the
 * library's struct; nothing past dst + size. */
void sized_out(void *dst, uint32_t size, const void *src, const struct layout *l);

#endif
