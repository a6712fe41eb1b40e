/* Strict base64 decoder (standard alphabet) with SIMD kernels and runtime CPU dispatch.
 *
 * Acceptance matches Python's binascii.a2b_base64(s, strict_mode=True) for input whose length is a
 * multiple of 4: only A-Z a-z 0-9 + / , '=' only as one or two final padding characters, nothing else
 * (no whitespace). Like binascii, non-zero unused bits in the last quantum before padding are accepted
 * and ignored ("QR==" decodes to "A"). The first offending character is the first one, from the
 * start, that is neither in the alphabet nor legal padding ('=' last, or second to last before a
 * final '='); every kernel reports the same offset. err_pos may be NULL. Thread-safe: the kernel
 * is picked once (cpuid + xgetbv) on first use; racing first calls all pick the same one.
 */
#ifndef CARTESIA_B64SIMD_H
#define CARTESIA_B64SIMD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decode standard-alphabet base64 of length srclen (must be a multiple of 4; '=' padding only in the last 1-2 chars).
   Writes exactly cartesia_b64_decoded_len(src, srclen) bytes to dst. Returns the number of bytes written, or -1 on
   invalid input, with *err_pos set to the offset of the first offending character (or srclen for a bad length). */
ptrdiff_t cartesia_b64_decode(const char *src, size_t srclen, unsigned char *dst, size_t *err_pos);
/* Exact decoded size (accounts for padding); for srclen % 4 != 0 returns srclen / 4 * 3 (decode will then fail). */
size_t cartesia_b64_decoded_len(const char *src, size_t srclen);
/* Name of the kernel in use: "avx512vbmi", "avx2", "ssse3" or "scalar". */
const char *cartesia_b64_backend(void);
/* Force a kernel for tests; returns 0 if set, -1 if this CPU or build cannot run it. */
int cartesia_b64_set_backend(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* CARTESIA_B64SIMD_H */
