/* fuzz_tls.c - the TLS record layer after the handshake (src/common/tls.c),
 * the decoder of what a remote sends on a TLS connection once OpenSSL's part
 * is done.
 *
 * The first byte picks the mode.  Even: the rest is ciphertext from an
 * attacker, fed in chunks (sizes from the input) and read with small and
 * large reads: no crash, no read past a buffer, and once it fails it stays
 * failed.  Odd: the rest is a list of plaintext writes ([len:u8][bytes]),
 * sealed by one keyed session and fed to another at a split point and with a
 * read size taken from the input: the plaintext must come out whole and in
 * order, whatever the split. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/tls.h"

static const uint8_t key[16] = "p2c2r-fuzz-key!";
static const uint8_t iv[12] = "fuzz-iv-0123";

static void attacker(const uint8_t *p, size_t n)
{
    struct tls *t = tls_new_keyed(key, iv, 1u << 20);
    static uint8_t out[20000];
    size_t cap = n ? (size_t)p[0] * 64 + 1 : 1;
    int failed = 0;
    while (n) {
        size_t chunk = p[0] % 97 + 1;
        if (chunk > n)
            chunk = n;
        tls_feed(t, p, chunk);
        int k;
        while ((k = tls_read(t, out, cap < sizeof(out) ? cap : sizeof(out))) > 0)
            assert(!failed);
        if (k < 0)
            failed = 1;
        tls_feed(t, NULL, 0);
        p += chunk;
        n -= chunk;
    }
    tls_free(t);
}

static void roundtrip(const uint8_t *p, size_t n)
{
    static uint8_t want[1 << 16], got[(1 << 16) + 64];
    if (n < 2)
        return;
    size_t rd = (size_t)p[0] % 200 + 1, split_seed = p[1];
    p += 2;
    n -= 2;
    struct tls *w = tls_new_keyed(key, iv, 1u << 20), *r = tls_new_keyed(key, iv, 1u << 20);
    size_t total = 0;
    while (n) {
        size_t len = p[0];
        p++;
        n--;
        if (len > n)
            len = n;
        /* A long write (over one record) now and then: len * 300. */
        size_t wl = len >= 250 ? (len - 249) * 3000 : len;
        if (total + wl > sizeof(want))
            break;
        for (size_t i = 0; i < wl; i++)
            want[total + i] = len ? p[i % len] : 0;
        assert(tls_write(w, want + total, wl) == (long)wl);
        total += wl;
        p += len;
        n -= len;
    }
    struct buf *o = tls_out(w);
    size_t wire = buf_used(o), sp = wire ? split_seed * 7919 % (wire + 1) : 0, have = 0;
    const size_t cut[2][2] = {{0, sp}, {sp, wire - sp}};
    for (int h = 0; h < 2; h++) {
        if (!cut[h][1])
            continue;
        tls_feed(r, buf_head(o) + cut[h][0], cut[h][1]);
        int k;
        while ((k = tls_read(r, got + have, rd < sizeof(got) - have ? rd : sizeof(got) - have)) > 0)
            have += (size_t)k;
        assert(k == 0);
        tls_feed(r, NULL, 0);
    }
    assert(have == total && memcmp(got, want, total) == 0);
    tls_free(w);
    tls_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        roundtrip(data + 1, size - 1);
    else
        attacker(data + 1, size - 1);
    return 0;
}
