/* Strict base64 decoder: scalar fallback plus x86 SIMD kernels chosen at run time. See b64simd.h. */
#include "b64simd.h"

#include <stdint.h>
#include <string.h>
#if defined(_MSC_VER)
#include <stdlib.h> /* _byteswap_uint64 */
#endif

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

/* Stores the 48 bits held in bits 63..16 of w as 6 bytes in stream order, plus 2 scratch bytes
   where a single 8-byte store is possible: the caller guarantees 8 writable bytes. */
static void b64_store48(unsigned char *dst, uint64_t w)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
    memcpy(dst, &w, 8);
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    memcpy(dst, &w, 8);
#elif defined(_MSC_VER)
    w = _byteswap_uint64(w); /* every MSVC target is little-endian */
    memcpy(dst, &w, 8);
#else
    int k;
    for (k = 0; k < 6; k++) {
        dst[k] = (unsigned char)(w >> (56 - 8 * k));
    }
#endif
}

/* Decodes body quanta until the end or the first quantum holding an invalid character; returns the
   number of characters consumed. Two quanta per step: a 0xFF from the table sets bit 7, so one OR
   over all eight values tells whether the step was clean. */
static size_t scalar_body(const unsigned char *src, size_t n, unsigned char *dst)
{
    size_t i = 0;
    /* 8 characters give 6 bytes; the 8-byte store needs 2 more bytes that are still ours, which
       holds while at least 12 characters (9 output bytes) are left. */
    while (n - i >= 12) {
        const unsigned char *s = src + i;
        uint64_t a = b64_value[s[0]], b = b64_value[s[1]], c = b64_value[s[2]], d = b64_value[s[3]];
        uint64_t e = b64_value[s[4]], f = b64_value[s[5]], g = b64_value[s[6]], h = b64_value[s[7]];
        if ((a | b | c | d | e | f | g | h) & 0x80u) {
            break;
        }
        b64_store48(dst, (a << 58) | (b << 52) | (c << 46) | (d << 40) | (e << 34) | (f << 28) |
                             (g << 22) | (h << 16));
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
/* x86 SIMD kernels (Muła & Lemire: AVX2 2018, AVX-512 VBMI 2019)                                 */
/* ---------------------------------------------------------------------------------------------- */

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(_M_ARM64EC) && !defined(CARTESIA_B64_SCALAR_ONLY)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define B64_X86 1
/* MSVC lets intrinsics be used anywhere, no per-function target needed. */
#define B64_TARGET(t)
#if _MSC_VER >= 1920
#define B64_AVX512 1
#endif
#elif defined(__GNUC__) || defined(__clang__)
#include <cpuid.h>
#include <immintrin.h>
#define B64_X86 1
#define B64_TARGET(t) __attribute__((target(t)))
#define B64_AVX512 1
#endif
#endif

#ifdef B64_X86

/* The SSSE3 and AVX2 kernels (the latter per 128-bit lane) share these nibble tables, after
   Muła & Lemire 2018, "Faster Base64 Encoding and Decoding using AVX2 Instructions".
   Each input byte has a class bit from its high nibble (lut_hi) and a set of "bad with this high
   nibble" bits from its low nibble (lut_lo); the byte is outside the alphabet iff the AND is
   non-zero. Bit 0x10 marks high nibbles with no valid byte at all (0x0, 0x1, 0x8-0xF), so every
   low nibble carries it. lut_roll holds the offset to add per high nibble; '/' shares the high
   nibble of '+', so it is moved to its own slot (index 1) by adding the compare-equal mask (-1). */
#define B64_LUT_LO 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, \
                   0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A
#define B64_LUT_HI 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, \
                   0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10
#define B64_LUT_ROLL 0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0
/* After the two multiply-adds each 32-bit lane holds 24 output bits, least significant byte
   first; this picks bytes 2,1,0 of every lane so the output comes out in stream order. */
#define B64_PACK_SHUF 2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1

B64_TARGET("ssse3")
static size_t kernel_ssse3(const unsigned char *src, size_t n, unsigned char *dst)
{
    const __m128i lut_lo = _mm_setr_epi8(B64_LUT_LO);
    const __m128i lut_hi = _mm_setr_epi8(B64_LUT_HI);
    const __m128i lut_roll = _mm_setr_epi8(B64_LUT_ROLL);
    const __m128i pack_shuf = _mm_setr_epi8(B64_PACK_SHUF);
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i slash = _mm_set1_epi8('/');
    const __m128i zero = _mm_setzero_si128();
    /* 6-bit pairs -> 12 bits (a * 64 + b), then 12-bit pairs -> 24 bits (a * 4096 + b). */
    const __m128i mul6 = _mm_set1_epi32(0x01400140);
    const __m128i mul12 = _mm_set1_epi32(0x00011000);
    size_t i = 0;
    unsigned char tail[16];

    while (n - i >= 16) {
        __m128i in = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi32(in, 4), nib);
        __m128i lo = _mm_and_si128(in, nib);
        __m128i bad = _mm_and_si128(_mm_shuffle_epi8(lut_lo, lo), _mm_shuffle_epi8(lut_hi, hi));
        __m128i roll, v, out;
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, zero)) != 0xFFFF) {
            break;
        }
        roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(_mm_cmpeq_epi8(in, slash), hi));
        v = _mm_add_epi8(in, roll);
        v = _mm_madd_epi16(_mm_maddubs_epi16(v, mul6), mul12);
        out = _mm_shuffle_epi8(v, pack_shuf);
        /* A 16-byte store for 12 useful bytes: only while 4 more output bytes are still ours. */
        if ((n - i) / 4 * 3 >= 16) {
            _mm_storeu_si128((__m128i *)(dst + i / 4 * 3), out);
        } else {
            _mm_storeu_si128((__m128i *)tail, out);
            memcpy(dst + i / 4 * 3, tail, 12);
        }
        i += 16;
    }
    return i;
}

B64_TARGET("avx2")
static size_t kernel_avx2(const unsigned char *src, size_t n, unsigned char *dst)
{
    const __m256i lut_lo = _mm256_setr_epi8(B64_LUT_LO, B64_LUT_LO);
    const __m256i lut_hi = _mm256_setr_epi8(B64_LUT_HI, B64_LUT_HI);
    const __m256i lut_roll = _mm256_setr_epi8(B64_LUT_ROLL, B64_LUT_ROLL);
    const __m256i pack_shuf = _mm256_setr_epi8(B64_PACK_SHUF, B64_PACK_SHUF);
    /* Joins the 12 useful bytes of each 128-bit half into 24 contiguous bytes. */
    const __m256i pack_perm = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i slash = _mm256_set1_epi8('/');
    const __m256i mul6 = _mm256_set1_epi32(0x01400140);
    const __m256i mul12 = _mm256_set1_epi32(0x00011000);
    size_t i = 0;
    unsigned char tail[32];

#define B64_AVX2_STEP(in, out, fail)                                                               \
    do {                                                                                           \
        __m256i hi_ = _mm256_and_si256(_mm256_srli_epi32(in, 4), nib);                             \
        __m256i lo_ = _mm256_and_si256(in, nib);                                                   \
        __m256i bad_ = _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo_),                          \
                                        _mm256_shuffle_epi8(lut_hi, hi_));                         \
        __m256i v_;                                                                                \
        if (!_mm256_testz_si256(bad_, bad_)) {                                                     \
            fail;                                                                                  \
        }                                                                                          \
        v_ = _mm256_add_epi8(in, _mm256_shuffle_epi8(                                              \
                                     lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(in, slash), hi_))); \
        v_ = _mm256_madd_epi16(_mm256_maddubs_epi16(v_, mul6), mul12);                             \
        out = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v_, pack_shuf), pack_perm);          \
    } while (0)

    /* Two blocks per step with full 32-byte stores: the second store ends 56 bytes on, so at
       least 76 input characters must be left (76 / 4 * 3 = 57 output bytes still ours). */
    while (n - i >= 76) {
        __m256i in0 = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i in1 = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i out0, out1;
        B64_AVX2_STEP(in0, out0, goto single);
        B64_AVX2_STEP(in1, out1, goto single);
        _mm256_storeu_si256((__m256i *)(dst + i / 4 * 3), out0);
        _mm256_storeu_si256((__m256i *)(dst + i / 4 * 3 + 24), out1);
        i += 64;
    }
single:
    while (n - i >= 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i out;
        B64_AVX2_STEP(in, out, return i);
        if ((n - i) / 4 * 3 >= 32) {
            _mm256_storeu_si256((__m256i *)(dst + i / 4 * 3), out);
        } else {
            _mm256_storeu_si256((__m256i *)tail, out);
            memcpy(dst + i / 4 * 3, tail, 24);
        }
        i += 32;
    }
#undef B64_AVX2_STEP
    return i;
}

#ifdef B64_AVX512
/* Output byte 3j + k comes from byte 2 - k of 32-bit lane j (see B64_PACK_SHUF); the last 16
   bytes are never stored. */
static const unsigned char b64_vbmi_pack[64] = {
    2,  1,  0,  6,  5,  4,  10, 9,  8,  14, 13, 12, 18, 17, 16, 22, 21, 20, 26, 25, 24, 30,
    29, 28, 34, 33, 32, 38, 37, 36, 42, 41, 40, 46, 45, 44, 50, 49, 48, 54, 53, 52, 58, 57,
    56, 62, 61, 60, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

/* Muła & Lemire 2019, "Base64 encoding and decoding at almost the speed of a memory copy": one
   vpermi2b looks every byte up in the 128-entry table (its low 7 bits pick the entry); invalid
   entries have bit 7 set, and OR-ing with the input also flags bytes >= 0x80. Masked loads and
   stores handle the tail exactly, so this kernel consumes the whole body unless it hits an error. */
B64_TARGET("avx512f,avx512bw,avx512vbmi")
static size_t kernel_avx512vbmi(const unsigned char *src, size_t n, unsigned char *dst)
{
    const __m512i lut0 = _mm512_loadu_si512((const void *)b64_value);
    const __m512i lut1 = _mm512_loadu_si512((const void *)(b64_value + 64));
    const __m512i pack = _mm512_loadu_si512((const void *)b64_vbmi_pack);
    const __m512i mul6 = _mm512_set1_epi32(0x01400140);
    const __m512i mul12 = _mm512_set1_epi32(0x00011000);
    size_t i = 0;

    while (n - i >= 64) {
        __m512i in = _mm512_loadu_si512((const void *)(src + i));
        __m512i v = _mm512_permutex2var_epi8(lut0, in, lut1);
        if (_mm512_movepi8_mask(_mm512_or_si512(v, in)) != 0) {
            return i;
        }
        v = _mm512_madd_epi16(_mm512_maddubs_epi16(v, mul6), mul12);
        _mm512_mask_storeu_epi8(dst + i / 4 * 3, (__mmask64)0xFFFFFFFFFFFFULL,
                                _mm512_permutexvar_epi8(pack, v));
        i += 64;
    }
    if (n - i > 0) {
        /* Fewer than 64 characters left: masked-off bytes are neither read nor checked. */
        __mmask64 lmask = (__mmask64)((1ULL << (n - i)) - 1);
        __mmask64 smask = (__mmask64)((1ULL << ((n - i) / 4 * 3)) - 1);
        __m512i in = _mm512_maskz_loadu_epi8(lmask, (const void *)(src + i));
        __m512i v = _mm512_permutex2var_epi8(lut0, in, lut1);
        if ((_mm512_movepi8_mask(_mm512_or_si512(v, in)) & lmask) != 0) {
            return i;
        }
        v = _mm512_madd_epi16(_mm512_maddubs_epi16(v, mul6), mul12);
        _mm512_mask_storeu_epi8(dst + i / 4 * 3, smask, _mm512_permutexvar_epi8(pack, v));
        i = n;
    }
    return i;
}
#endif /* B64_AVX512 */

/* ---- CPU features, including whether the OS saves the wide registers (XCR0) ---- */

enum { B64_F_SSSE3 = 1, B64_F_AVX2 = 2, B64_F_AVX512VBMI = 4, B64_F_DONE = 8 };

static void b64_cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
#if defined(_MSC_VER) && !defined(__clang__)
    int x[4];
    __cpuidex(x, (int)leaf, (int)sub);
    r[0] = (unsigned)x[0];
    r[1] = (unsigned)x[1];
    r[2] = (unsigned)x[2];
    r[3] = (unsigned)x[3];
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

static unsigned long long b64_xcr0(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return (unsigned long long)_xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
#endif
}

static int b64_detect(void)
{
    unsigned r[4], max_leaf, ecx1;
    int f = B64_F_DONE;
    unsigned long long xcr0 = 0;

    b64_cpuid(0, 0, r);
    max_leaf = r[0];
    if (max_leaf < 1) {
        return f;
    }
    b64_cpuid(1, 0, r);
    ecx1 = r[2];
    if (ecx1 & (1u << 9)) {
        f |= B64_F_SSSE3;
    }
    /* OSXSAVE (ecx bit 27) is what makes xgetbv legal. */
    if (!(ecx1 & (1u << 27)) || !(ecx1 & (1u << 28)) || max_leaf < 7) {
        return f;
    }
    xcr0 = b64_xcr0();
    if ((xcr0 & 0x6) != 0x6) { /* XMM and YMM state */
        return f;
    }
    b64_cpuid(7, 0, r);
    if (r[1] & (1u << 5)) {
        f |= B64_F_AVX2;
    }
    /* AVX512F (ebx 16), AVX512BW (ebx 30), AVX512VBMI (ecx 1), and opmask + ZMM state saved. */
    if ((r[1] & (1u << 16)) && (r[1] & (1u << 30)) && (r[2] & (1u << 1)) && (xcr0 & 0xE6) == 0xE6) {
        f |= B64_F_AVX512VBMI;
    }
    return f;
}

#endif /* B64_X86 */

/* ---------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

enum { B64_SCALAR = 0, B64_SSSE3 = 1, B64_AVX2 = 2, B64_AVX512VBMI = 3, B64_NKERNELS = 4 };

static const char *const b64_names[B64_NKERNELS] = {"scalar", "ssse3", "avx2", "avx512vbmi"};

/* NULL entries: scalar (handled inline) and kernels not compiled into this build. */
#if defined(B64_X86) && defined(B64_AVX512)
static const b64_kernel b64_kernels[B64_NKERNELS] = {NULL, kernel_ssse3, kernel_avx2, kernel_avx512vbmi};
#elif defined(B64_X86)
static const b64_kernel b64_kernels[B64_NKERNELS] = {NULL, kernel_ssse3, kernel_avx2, NULL};
#else
static const b64_kernel b64_kernels[B64_NKERNELS] = {NULL, NULL, NULL, NULL};
#endif

#if defined(__GNUC__) || defined(__clang__)
#define B64_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define B64_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
/* MSVC: aligned int accesses through volatile are atomic on every target it supports. */
#define B64_LOAD(p) (*(volatile int *)(p))
#define B64_STORE(p, v) (*(volatile int *)(p) = (v))
#endif

static int b64_cpu_can_run(int id)
{
#ifdef B64_X86
    /* Detected once; racing first calls all store the same value. */
    static int features = 0;
    int f = B64_LOAD(&features);
    if (f == 0) {
        f = b64_detect();
        B64_STORE(&features, f);
    }
    switch (id) {
    case B64_SSSE3:
        return (f & B64_F_SSSE3) != 0;
    case B64_AVX2:
        return (f & B64_F_AVX2) != 0;
    case B64_AVX512VBMI:
        return (f & B64_F_AVX512VBMI) != 0;
    default:
        break;
    }
#endif
    return id == B64_SCALAR;
}

/* Kernel in use, -1 until the first call picks one. Every thread that races on the first call
   computes the same value, so the race is benign; atomics keep it free of torn reads anyway. */
static int b64_selected = -1;

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

/* Reports an error at pos; err_pos may be NULL when the caller only needs yes or no. */
static ptrdiff_t b64_fail(size_t *err_pos, size_t pos)
{
    if (err_pos != NULL) {
        *err_pos = pos;
    }
    return -1;
}

ptrdiff_t cartesia_b64_decode(const char *src_chars, size_t srclen, unsigned char *dst, size_t *err_pos)
{
    const unsigned char *src = (const unsigned char *)src_chars;
    const unsigned char *q;
    size_t body, done, out, bad;
    unsigned a, b, c, d, x;
    b64_kernel kernel;

    if (srclen % 4 != 0) {
        return b64_fail(err_pos, srclen);
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
        return b64_fail(err_pos, done + b64_bad_in_group(src + done, 0));
    }
    out = body / 4 * 3;

    q = src + body;
    bad = b64_bad_in_group(q, 1);
    if (bad < 4) {
        return b64_fail(err_pos, body + bad);
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
