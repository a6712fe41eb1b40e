/* Strict base64 decoder: scalar fallback plus x86 SIMD kernels chosen at run time. See b64simd.h. */
#include "b64simd.h"

#include <string.h>

/* Value of each byte in the standard alphabet, 0xFF for everything else (including '='). */
static const unsigned char b64_value[256] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0xFF, 0xFF, 0xFF, 0x3F,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31, 0x32, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
};

/* A kernel decodes a prefix of n body characters (n is a multiple of 4; the body never holds padding).
   It consumes whole blocks only, stops before the first block holding a character outside the
   alphabet, never reads past src + n and never writes past dst + n / 4 * 3. Returns the number of
   characters consumed (a multiple of 4); the scalar code finishes the rest and locates any error. */
typedef size_t (*b64_kernel)(const unsigned char *src, size_t n, unsigned char *dst);

/* ---------------------------------------------------------------------------------------------- */
/* Scalar                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Decodes body quanta until the end or the first quantum holding an invalid character; returns the
   number of characters consumed. Two quanta per step: a 0xFF from the table sets bit 7, so one OR
   over all eight values tells whether the step was clean. */
static size_t scalar_body(const unsigned char *src, size_t n, unsigned char *dst)
{
    size_t i = 0;
    while (n - i >= 8) {
        const unsigned char *s = src + i;
        unsigned a = b64_value[s[0]], b = b64_value[s[1]], c = b64_value[s[2]], d = b64_value[s[3]];
        unsigned e = b64_value[s[4]], f = b64_value[s[5]], g = b64_value[s[6]], h = b64_value[s[7]];
        unsigned x, y;
        if ((a | b | c | d | e | f | g | h) & 0x80u) {
            break;
        }
        x = (a << 18) | (b << 12) | (c << 6) | d;
        y = (e << 18) | (f << 12) | (g << 6) | h;
        dst[0] = (unsigned char)(x >> 16);
        dst[1] = (unsigned char)(x >> 8);
        dst[2] = (unsigned char)x;
        dst[3] = (unsigned char)(y >> 16);
        dst[4] = (unsigned char)(y >> 8);
        dst[5] = (unsigned char)y;
        dst += 6;
        i += 8;
    }
    while (n - i >= 4) {
        const unsigned char *s = src + i;
        unsigned a = b64_value[s[0]], b = b64_value[s[1]], c = b64_value[s[2]], d = b64_value[s[3]];
        unsigned x;
        if ((a | b | c | d) & 0x80u) {
            break;
        }
        x = (a << 18) | (b << 12) | (c << 6) | d;
        dst[0] = (unsigned char)(x >> 16);
        dst[1] = (unsigned char)(x >> 8);
        dst[2] = (unsigned char)x;
        dst += 3;
        i += 4;
    }
    return i;
}

/* ---------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

enum { B64_SCALAR = 0, B64_SSSE3 = 1, B64_AVX2 = 2, B64_AVX512VBMI = 3, B64_NKERNELS = 4 };

static const char *const b64_names[B64_NKERNELS] = {"scalar", "ssse3", "avx2", "avx512vbmi"};

/* NULL entries: scalar (handled inline) and kernels not compiled into this build. */
static const b64_kernel b64_kernels[B64_NKERNELS] = {NULL, NULL, NULL, NULL};

static int b64_cpu_can_run(int id)
{
    return id == B64_SCALAR;
}

/* Kernel in use, -1 until the first call picks one. Every thread that races on the first call
   computes the same value, so the race is benign; atomics keep it free of torn reads anyway. */
static int b64_selected = -1;

#if defined(__GNUC__) || defined(__clang__)
#define B64_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define B64_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
/* MSVC: aligned int accesses through volatile are atomic on every target it supports. */
#define B64_LOAD(p) (*(volatile int *)(p))
#define B64_STORE(p, v) (*(volatile int *)(p) = (v))
#endif

static int b64_current(void)
{
    int id = B64_LOAD(&b64_selected);
    if (id < 0) {
        id = B64_NKERNELS - 1;
        while (id > B64_SCALAR && !(b64_kernels[id] != NULL && b64_cpu_can_run(id))) {
            id--;
        }
        B64_STORE(&b64_selected, id);
    }
    return id;
}

const char *cartesia_b64_backend(void)
{
    return b64_names[b64_current()];
}

int cartesia_b64_set_backend(const char *name)
{
    int id;
    if (name == NULL) {
        return -1;
    }
    for (id = 0; id < B64_NKERNELS; id++) {
        if (strcmp(name, b64_names[id]) == 0) {
            if (id != B64_SCALAR && !(b64_kernels[id] != NULL && b64_cpu_can_run(id))) {
                return -1;
            }
            B64_STORE(&b64_selected, id);
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Public entry points                                                                            */
/* ---------------------------------------------------------------------------------------------- */

size_t cartesia_b64_decoded_len(const char *src, size_t srclen)
{
    size_t len = srclen / 4 * 3;
    if (srclen % 4 != 0 || srclen == 0) {
        return len;
    }
    if (src[srclen - 1] == '=') {
        len--;
        if (src[srclen - 2] == '=') {
            len--;
        }
    }
    return len;
}

/* Offset of the first character of a 4-character group that is not allowed there. In the final
   group '=' may stand last, or second to last when the last one is '=' too. Returns 4 if none. */
static size_t b64_bad_in_group(const unsigned char *q, int final)
{
    size_t k;
    for (k = 0; k < 4; k++) {
        if (b64_value[q[k]] != 0xFF) {
            continue;
        }
        if (final && q[k] == '=' && (k == 3 || (k == 2 && q[3] == '='))) {
            continue;
        }
        return k;
    }
    return 4;
}

ptrdiff_t cartesia_b64_decode(const char *src_chars, size_t srclen, unsigned char *dst, size_t *err_pos)
{
    const unsigned char *src = (const unsigned char *)src_chars;
    const unsigned char *q;
    size_t body, done, out, bad;
    unsigned a, b, c, d, x;
    b64_kernel kernel;

    if (srclen % 4 != 0) {
        *err_pos = srclen;
        return -1;
    }
    if (srclen == 0) {
        return 0;
    }
    /* The body is every group but the last; only the last may carry padding. */
    body = srclen - 4;
    done = 0;
    kernel = b64_kernels[b64_current()];
    if (kernel != NULL) {
        done = kernel(src, body, dst);
    }
    done += scalar_body(src + done, body - done, dst + done / 4 * 3);
    if (done < body) {
        *err_pos = done + b64_bad_in_group(src + done, 0);
        return -1;
    }
    out = body / 4 * 3;

    q = src + body;
    bad = b64_bad_in_group(q, 1);
    if (bad < 4) {
        *err_pos = body + bad;
        return -1;
    }
    /* Padding maps to 0xFF; mask it to 0 so it adds nothing. Unused low bits are ignored, as
       binascii's strict mode does. */
    a = b64_value[q[0]];
    b = b64_value[q[1]];
    c = q[2] == '=' ? 0u : b64_value[q[2]];
    d = q[3] == '=' ? 0u : b64_value[q[3]];
    x = (a << 18) | (b << 12) | (c << 6) | d;
    dst[out++] = (unsigned char)(x >> 16);
    if (q[2] != '=') {
        dst[out++] = (unsigned char)(x >> 8);
        if (q[3] != '=') {
            dst[out++] = (unsigned char)x;
        }
    }
    return (ptrdiff_t)out;
}
