/*
 * q16_internal.h -- private helpers shared by the CFixed scalar, math and
 * softmax kernels. Not part of the public API (not in include/).
 *
 * Everything here is integer-only and free of undefined or
 * implementation-defined behaviour: no negative value is ever shifted, no
 * shift is >= the width of its operand, signed arithmetic never overflows
 * (values are widened to int64 or handled as unsigned magnitudes), and no
 * out-of-range unsigned -> signed conversion is performed.
 */
#ifndef Q16_INTERNAL_H
#define Q16_INTERNAL_H

#include "q16.h"

/* |v| as an unsigned 64-bit magnitude (well defined for INT64_MIN too). */
static inline uint64_t q16i_mag64(int64_t v) {
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* sign * m as int64, for m <= 2^63 (m == 2^63 only with neg != 0). */
static inline int64_t q16i_signed64(uint64_t m, int neg) {
    if (!neg) return (int64_t)m;              /* caller guarantees m <= INT64_MAX */
    if (m == 0) return 0;
    return -(int64_t)(m - 1u) - 1;            /* -(m) without overflow */
}

/* round(v / 2^s) to nearest, ties away from zero; 1 <= s <= 63.
   Works on the magnitude so no negative value is shifted. */
static inline int64_t q16i_round_shift(int64_t v, unsigned s) {
    uint64_t m = q16i_mag64(v);
    uint64_t q = (m >> s) + ((m >> (s - 1u)) & 1u); /* no overflow: m >> s < 2^63 */
    return q16i_signed64(q, v < 0);
}

/* Clamp an int64 to [Q16_MIN, Q16_MAX], adding 1 to *sat (may be NULL) when clamped. */
static inline q16_t q16i_sat64(int64_t v, uint64_t *sat) {
    if (v > (int64_t)Q16_MAX) { if (sat) *sat += 1u; return Q16_MAX; }
    if (v < (int64_t)Q16_MIN) { if (sat) *sat += 1u; return Q16_MIN; }
    return (q16_t)v;
}

/*
 * Cores of q16_exp / q16_log, reused by the softmax kernels for a higher
 * internal precision (defined in q16_math.c, integer-only).
 *
 * q16__exp_q62: for x = X / 2^16 with -24 <= x <= 12 (|X| < 2^21), returns
 *   E in [0.70, 1.42] * 2^62 and sets *k so that exp(x) = E * 2^(*k - 62)
 *   with a relative error below 2^-58.
 *
 * q16__ln_q56: for X > 0 and 0 <= frac <= 62, returns ln(X / 2^frac) * 2^56
 *   (rounded; absolute error below 2^-50).
 */
uint64_t q16__exp_q62(int32_t X, int *k);
int64_t q16__ln_q56(uint64_t X, unsigned frac);

#endif /* Q16_INTERNAL_H */
