/*
 * q16_convert.c -- conversions between Q16.16 and int / double / float.
 *
 * Rules (as everywhere in CFixed):
 *  - "nearest" = round to nearest, ties away from zero, applied once to the
 *    exact value;
 *  - a result clamped to [Q16_MIN, Q16_MAX] adds 1 to *sat (sat may be NULL);
 *  - no undefined / implementation-defined behaviour: negative values are
 *    never shifted (magnitudes or biased unsigned values are), signed
 *    arithmetic is widened to int64 so it cannot overflow, and a double is
 *    only converted to an integer type once it is known to be in range.
 * Floating point is used only where the type itself is floating point; every
 * operation here is exact in IEEE binary64, so results are identical on
 * every IEEE platform.
 */
#include "q16.h"
#include "q16_internal.h"

/* Integer to Q16.16. Exact for -32768 <= i <= 32767 (i = -32768 is exactly
   Q16_MIN, not clamped); beyond that it saturates and counts. */
q16_t q16_from_int(int32_t i, uint64_t *sat) {
    return q16i_sat64((int64_t)i * 65536, sat);
}

/* Nearest integer, ties away from zero: computed on the magnitude. */
int32_t q16_to_int_round(q16_t x) {
    /* |x| <= 2^31, so the rounded magnitude is <= 32768 and fits. */
    return (int32_t)q16i_round_shift((int64_t)x, 16);
}

/* floor(x / 2^16): shift the value biased by 2^31 (non-negative), then unbias. */
int32_t q16_to_int_floor(q16_t x) {
    uint64_t u = (uint64_t)((int64_t)x + 2147483648LL); /* in [0, 2^32) */
    return (int32_t)((int64_t)(u >> 16) - 32768);
}

/* Exact: x has at most 31 significant bits and the scale is a power of two. */
double q16_to_double(q16_t x) {
    return (double)x * (1.0 / 65536.0);
}

/* (float)x rounds once (IEEE nearest-even, the default mode); the scaling by
   2^-16 is then exact (no underflow is possible). */
float q16_to_float(q16_t x) {
    return (float)x * (1.0f / 65536.0f);
}

q16_status q16_from_double(q16_t *out, double x, uint64_t *sat) {
    if (!out) return Q16_ERR_NULL;
    if (x != x) { *out = 0; return Q16_ERR_NAN; }
    /* y = x * 2^16 is exact (or +-inf, which saturates below). */
    double y = x * 65536.0;
    /* Anything that rounds above Q16_MAX / below Q16_MIN saturates. These
       bounds are exact doubles; ties (x.5) round away from zero. */
    if (y >= 2147483647.5) { if (sat) *sat += 1u; *out = Q16_MAX; return Q16_OK; }
    if (y <= -2147483648.5) { if (sat) *sat += 1u; *out = Q16_MIN; return Q16_OK; }
    /* |y| < 2^31 + 1: truncation to int64 is defined, and the fraction
       |y| - trunc(|y|) is computed exactly. */
    int neg = y < 0.0;
    double m = neg ? -y : y;
    int64_t t = (int64_t)m;           /* trunc, in [0, 2^31] */
    double frac = m - (double)t;      /* exact, in [0, 1) */
    if (frac >= 0.5) t += 1;          /* ties away from zero */
    *out = (q16_t)(neg ? -t : t);     /* within [Q16_MIN, Q16_MAX] by the checks above */
    return Q16_OK;
}

/* Every float is exactly a double, so one rounding happens (in q16_from_double). */
q16_status q16_from_float(q16_t *out, float x, uint64_t *sat) {
    return q16_from_double(out, (double)x, sat);
}
