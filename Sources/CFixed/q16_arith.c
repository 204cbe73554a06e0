/*
 * q16_arith.c -- scalar Q16.16 arithmetic.
 *
 * Rules:
 *  - each result is the exact mathematical result rounded ONCE to nearest,
 *    ties away from zero (add/sub/neg/abs are exact unless they saturate);
 *  - results outside [Q16_MIN, Q16_MAX] are clamped and counted: 1 is added
 *    to *sat (sat may be NULL);
 *  - no undefined behaviour: all intermediate values are widened to int64
 *    (|a*b| <= 2^62, |a| * 2^16 <= 2^47) or handled as unsigned magnitudes;
 *    negative values are never shifted.
 */
#include "q16.h"
#include "q16_internal.h"

q16_t q16_add(q16_t a, q16_t b, uint64_t *sat) {
    return q16i_sat64((int64_t)a + (int64_t)b, sat);
}

q16_t q16_sub(q16_t a, q16_t b, uint64_t *sat) {
    return q16i_sat64((int64_t)a - (int64_t)b, sat);
}

q16_t q16_neg(q16_t a, uint64_t *sat) {
    return q16i_sat64(-(int64_t)a, sat);
}

q16_t q16_abs(q16_t a, uint64_t *sat) {
    int64_t v = (int64_t)a;
    return q16i_sat64(v < 0 ? -v : v, sat);
}

/* The exact product (Q32.32, |p| <= 2^62) rounded once to Q16.16. */
q16_t q16_mul(q16_t a, q16_t b, uint64_t *sat) {
    int64_t p = (int64_t)a * (int64_t)b;
    return q16i_sat64(q16i_round_shift(p, 16), sat);
}

/*
 * a / b = (a * 2^16) / b in Q16.16, rounded once: q = floor(n / d) on the
 * magnitudes n = |a| * 2^16 (<= 2^47), d = |b|, plus one when the remainder is
 * at least d / 2 (ties away from zero). b == 0: Q16_ERR_DIV_ZERO and the
 * saturated value (Q16_MAX for a > 0, Q16_MIN for a < 0, counted in *sat;
 * 0 for a == 0, not counted).
 */
q16_status q16_div(q16_t *out, q16_t a, q16_t b, uint64_t *sat) {
    if (!out) return Q16_ERR_NULL;
    if (b == 0) {
        if (a > 0) { *out = Q16_MAX; if (sat) *sat += 1u; }
        else if (a < 0) { *out = Q16_MIN; if (sat) *sat += 1u; }
        else *out = 0;
        return Q16_ERR_DIV_ZERO;
    }
    uint64_t n = q16i_mag64((int64_t)a) << 16; /* <= 2^47 */
    uint64_t d = q16i_mag64((int64_t)b);       /* in [1, 2^31] */
    uint64_t q = n / d, r = n % d;
    if (r >= d - r) q += 1u;                   /* 2r >= d, without overflow */
    /* q <= 2^47 + 1, so the signed value fits in int64. */
    *out = q16i_sat64(q16i_signed64(q, (a < 0) != (b < 0)), sat);
    return Q16_OK;
}

q16_status q16_recip(q16_t *out, q16_t a, uint64_t *sat) {
    return q16_div(out, Q16_ONE, a, sat);
}
