/* b64.c - base64 (see b64.h): a table for each direction. */
#include "common/b64.h"

static const char enc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = enc[v >> 18];
        out[o++] = enc[(v >> 12) & 63];
        out[o++] = enc[(v >> 6) & 63];
        out[o++] = enc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = enc[v >> 18];
        out[o++] = enc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? enc[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else. */
static uint8_t dec_char(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (uint8_t)(ch - 'A');
    if (ch >= 'a' && ch <= 'z')
        return (uint8_t)(ch - 'a' + 26);
    if (ch >= '0' && ch <= '9')
        return (uint8_t)(ch - '0' + 52);
    return ch == '+' ? 62 : ch == '/' ? 63 : ch == '=' ? 64 : 255;
}

long b64_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint8_t a = dec_char((unsigned char)s[i]), b = dec_char((unsigned char)s[i + 1]);
        uint8_t c = dec_char((unsigned char)s[i + 2]), d = dec_char((unsigned char)s[i + 3]);
        int last = i + 4 == n;
        if (a > 63 || b > 63 || c == 255 || d == 255)
            return -1;
        if (c == 64 || d == 64) {
            /* Padding: only in the last group, "x=" never followed by a digit. */
            if (!last || (c == 64 && d != 64))
                return -1;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c & 63) << 6 | (d & 63);
        out[o++] = (uint8_t)(v >> 16);
        if (c != 64)
            out[o++] = (uint8_t)(v >> 8);
        if (d != 64)
            out[o++] = (uint8_t)v;
    }
    return (long)o;
}
