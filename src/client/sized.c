/* sized.c - the sized public structs of libp2c2r.
 *
 * The caller's struct may be older (smaller) or newer (larger) than this
 * library's; its first member says how big it is.  Structs move between the
 * caller's layout and the library's only through sized_in / sized_out, at
 * byte level (an element of an older caller's array need not be aligned for
 * this library's struct), and only whole fields cross: the prefix copied is
 * the longest one that ends on a field boundary within the caller's size.
 * Each struct lists the ends of its fields past the first layout; a static
 * assert fails when a field is appended without being listed. */
#include "client/sized.h"

#include <string.h>

#include "p2c2r/error.h"

#define FIELD_END(T, f) (offsetof(T, f) + sizeof(((T *)0)->f))

static const size_t task_ends[] = {
    P2C2R_TASK_SIZE_MIN,
    FIELD_END(struct p2c2r_task, blobs),
    FIELD_END(struct p2c2r_task, nblobs),
    FIELD_END(struct p2c2r_task, flags),
    FIELD_END(struct p2c2r_task, need_gpu),
    FIELD_END(struct p2c2r_task, min_cores),
    FIELD_END(struct p2c2r_task, min_mem_bytes),
    FIELD_END(struct p2c2r_task, user),
};
static const size_t options_ends[] = {
    P2C2R_CLIENT_OPTIONS_SIZE_MIN,
    FIELD_END(struct p2c2r_client_options, spin_us),
    FIELD_END(struct p2c2r_client_options, reserved_),
    FIELD_END(struct p2c2r_client_options, reconnect_ms),
    FIELD_END(struct p2c2r_client_options, reconnect_max_ms),
    FIELD_END(struct p2c2r_client_options, local_fallback_us),
    FIELD_END(struct p2c2r_client_options, local_frame_us),
    FIELD_END(struct p2c2r_client_options, tls_server_name),
};
static const size_t result_ends[] = {
    P2C2R_RESULT_SIZE_MIN,
    FIELD_END(struct p2c2r_result, flags),
    FIELD_END(struct p2c2r_result, user),
};
static const size_t pressure_ends[] = {
    P2C2R_PRESSURE_SIZE_MIN,
    FIELD_END(struct p2c2r_pressure, timed_out),
    FIELD_END(struct p2c2r_pressure, late),
    FIELD_END(struct p2c2r_pressure, last_miss_ms_ago),
    FIELD_END(struct p2c2r_pressure, miss_ratio),
};
static const size_t advice_ends[] = {P2C2R_FRAME_ADVICE_SIZE_MIN};

#define LAYOUT(T, ends) {sizeof(T), ends, sizeof(ends) / sizeof(ends[0])}
const struct layout task_layout = LAYOUT(struct p2c2r_task, task_ends);
const struct layout options_layout = LAYOUT(struct p2c2r_client_options, options_ends);
const struct layout result_layout = LAYOUT(struct p2c2r_result, result_ends);
const struct layout pressure_layout = LAYOUT(struct p2c2r_pressure, pressure_ends);
const struct layout advice_layout = LAYOUT(struct p2c2r_frame_advice, advice_ends);

/* The last listed field ends within the struct's tail padding: nothing was
 * appended after it unlisted. */
#define LAST_LISTED(T, f) \
    _Static_assert(sizeof(T) - FIELD_END(T, f) < _Alignof(T), #T ": list the new field in its ends[]")
LAST_LISTED(struct p2c2r_task, user);
LAST_LISTED(struct p2c2r_client_options, tls_server_name);
LAST_LISTED(struct p2c2r_result, user);
LAST_LISTED(struct p2c2r_pressure, miss_ratio);
LAST_LISTED(struct p2c2r_frame_advice, miss_ratio);

/* The size member of the struct at p (possibly unaligned). */
uint32_t sized_size(const void *p)
{
    uint32_t size;
    memcpy(&size, p, sizeof(size));
    return size;
}

int sized_ok(uint32_t size, const struct layout *l)
{
    return size >= l->ends[0] && size <= P2C2R_STRUCT_SIZE_MAX;
}

/* Bytes of the library's struct that lie in whole fields within size. */
static size_t sized_prefix(uint32_t size, const struct layout *l)
{
    if (size >= l->size)
        return l->size;
    size_t n = l->ends[0];
    for (size_t i = 1; i < l->nends && l->ends[i] <= size; i++)
        n = l->ends[i];
    return n;
}

/* Reads the caller's struct at src (size already checked by sized_ok) into
 * dst, of the library's layout: the fields within its size, zero for the
 * rest.  EINVAL when it is larger than the library's struct and sets a byte
 * past it: a newer field this library cannot honour. */
int sized_in(void *dst, const void *src, uint32_t size, const struct layout *l)
{
    for (size_t i = l->size; i < size; i++)
        if (((const uint8_t *)src)[i])
            return P2C2R_EINVAL;
    memset(dst, 0, l->size);
    memcpy(dst, src, sized_prefix(size, l));
    memcpy(dst, &size, sizeof(size));
    return 0;
}

/* Writes src, of the library's layout, to the caller's struct at dst of
 * size bytes: the fields within that size, with size itself kept, and
 * zeroes past the library's struct, so a newer caller's newer fields read
 * as unset.  Nothing is written past dst + size. */
void sized_out(void *dst, uint32_t size, const void *src, const struct layout *l)
{
    size_t n = sized_prefix(size, l);
    memcpy(dst, src, n);
    memcpy(dst, &size, sizeof(size));
    if (size > l->size)
        memset((uint8_t *)dst + l->size, 0, size - l->size);
}
