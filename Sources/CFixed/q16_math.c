/*
 * q16_math.c -- sqrt, exp and log in Q16.16, INTEGER ONLY.
 *
 * No libm, no float/double, no __int128: only 32- and 64-bit integer
 * operations whose results C99 fully defines, so every platform (x86-64,
 * aarch64, armv7, ...) produces bit-identical results.
 *
 * Rules:
 *  - results are rounded ONCE to nearest, ties away from zero, from an
 *    internal value far more precise than Q16 (sqrt: exact integer
 *    arithmetic, so correctly rounded; exp/log: internal error < 2^-40 LSB
 *    relative to the Q16 result, so the returned value is within
 *    0.5 LSB + 2^-30 LSB of the exact one);
 *  - saturation (only exp can saturate) is clamped and counted in *sat
 *    (sat may be NULL);
 *  - no undefined behaviour: no negative value is ever shifted (magnitudes or
 *    wrapped unsigned values are), no shift is >= 64, signed arithmetic never
 *    overflows, unsigned -> signed conversions are always in range.
 */
#include "q16.h"
#include "q16_internal.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* Full 64 x 64 -> 128-bit unsigned product as (hi, lo), from 32-bit halves. */
static void umul64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32;
    uint64_t b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu); /* < 3 * 2^32 */
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* round(a * b / 2^62), ties away from zero, for |a * b| < 2^124
   (all callers: |a|, |b| < 2^63 with |a * b| / 2^62 < 2^62). */
static int64_t mulq62(int64_t a, int64_t b) {
    uint64_t hi, lo;
    umul64(q16i_mag64(a), q16i_mag64(b), &hi, &lo);
    uint64_t q = (hi << 2) | (lo >> 62);   /* floor(|ab| / 2^62), < 2^62 here */
    q += (lo >> 61) & 1u;                  /* round half away from zero */
    return q16i_signed64(q, (a < 0) != (b < 0));
}

/* Index of the most significant set bit of v > 0 (0..63). */
static unsigned msb64(uint64_t v) {
    unsigned n = 0;
    if (v >> 32) { v >>= 32; n += 32; }
    if (v >> 16) { v >>= 16; n += 16; }
    if (v >> 8) { v >>= 8; n += 8; }
    if (v >> 4) { v >>= 4; n += 4; }
    if (v >> 2) { v >>= 2; n += 2; }
    if (v >> 1) { n += 1; }
    return n;
}

/* ------------------------------------------------------------------ */
/* sqrt                                                                 */
/* ------------------------------------------------------------------ */

/*
 * sqrt(a / 2^16) * 2^16 = sqrt(N) with N = a * 2^16 (< 2^47). r = floor(sqrt N)
 * by the exact digit-by-digit method; sqrt(N) >= r + 1/2 <=> N > r^2 + r
 * (integers; an exact tie is impossible), so r + (N - r^2 > r) is the
 * correctly rounded result. Max: sqrt(2^47 - 2^16) < 2^23.5.
 */
q16_status q16_sqrt(q16_t *out, q16_t a) {
    if (!out) return Q16_ERR_NULL;
    if (a < 0) { *out = 0; return Q16_ERR_DOMAIN; }
    uint64_t n = (uint64_t)a << 16;
    uint64_t r = 0, bit = (uint64_t)1 << 46; /* highest power of 4 <= 2^47 */
    while (bit > n) bit >>= 2;
    while (bit != 0) {
        if (n >= r + bit) { n -= r + bit; r = (r >> 1) + bit; }
        else r >>= 1;
        bit >>= 2;
    }
    /* now r = floor(sqrt(N)) and n = N - r^2 */
    if (n > r) r += 1u;
    *out = (q16_t)r;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* exp                                                                  */
/* ------------------------------------------------------------------ */

#define LN2_Q62 3196577161300663915LL   /* round(ln 2 * 2^62) */
#define LN2_Q56 49946518145322874LL     /* round(ln 2 * 2^56) */
#define INVLN2_Q32 6196328019LL         /* round(2^32 / ln 2) */
#define SQRT2_Q61 3260954456333195553ULL /* round(sqrt 2 * 2^61) */

/* 1/j! in Q62, j = 0..16 (rounded). */
static const int64_t EXP_C[17] = {
    4611686018427387904LL, 4611686018427387904LL, 2305843009213693952LL,
    768614336404564651LL,  192153584101141163LL,  38430716820228233LL,
    6405119470038039LL,    915017067148291LL,     114377133393536LL,
    12708570377060LL,      1270857037706LL,       115532457973LL,
    9627704831LL,          740592679LL,           52899477LL,
    3526632LL,             220414LL};

/*
 * exp(x) for x = X / 2^16, -24 <= x <= 12: x = k ln2 + r with
 * k = round(x / ln2) (so |r| <= ln2/2 + 2^-30), r in Q62 computed from the
 * exact X and ln2 in Q62 (error <= 17 * 2^-63); exp(r) by a degree-16 Taylor
 * polynomial (truncation < 2^-74) in Q62 Horner form (rounding < 2^-58).
 * Returns E = exp(r) * 2^62 and *k: exp(x) = E * 2^(k - 62).
 */
uint64_t q16__exp_q62(int32_t X, int *k) {
    /* k = round(X * (2^32/ln2) / 2^48): |X * INVLN2_Q32| < 2^21 * 2^33 = 2^54.
       Floor of (p + 2^47) / 2^48 on the value biased by 2^60 (non-negative). */
    int64_t p = (int64_t)X * INVLN2_Q32;
    uint64_t biased = (uint64_t)(p + ((int64_t)1 << 47) + ((int64_t)1 << 60));
    int64_t kk = (int64_t)(biased >> 48) - ((int64_t)1 << 12);
    /* r = X * 2^46 - k * LN2_Q62, evaluated modulo 2^64 in unsigned arithmetic
       (intermediates exceed 64 bits; the true result, |r| < 0.35 * 2^62, does not). */
    uint64_t ur = (uint64_t)(int64_t)X * ((uint64_t)1 << 46) - (uint64_t)kk * (uint64_t)LN2_Q62;
    int64_t r = (ur >> 63) ? -(int64_t)(~ur) - 1 : (int64_t)ur; /* two's complement, no UB */
    int64_t e = EXP_C[16];
    for (int j = 15; j >= 0; --j) e = EXP_C[j] + mulq62(e, r);
    *k = (int)kk;
    return (uint64_t)e; /* in [0.70, 1.42] * 2^62, positive */
}

/*
 * q16_exp: exp(x) rounded once to Q16.16 (nearest, ties away).
 * x < -12: exp(x) < 6.2e-6 < 2^-17 (half an LSB) -> exactly 0.
 * x > 11: exp(x) > 59874 -> Q16_MAX, counted. In between, the computed
 * value round(E / 2^(46 - k)) (shift in [30, 63]) is clamped and counted
 * when above Q16_MAX (x > ln(32768 - 2^-17) ~ 10.3972).
 */
q16_t q16_exp(q16_t x, uint64_t *sat) {
    if (x < -12 * 65536) return 0;
    if (x > 11 * 65536) { if (sat) *sat += 1u; return Q16_MAX; }
    int k;
    uint64_t e = q16__exp_q62(x, &k);
    unsigned s = (unsigned)(46 - k);          /* k in [-17, 16] -> s in [30, 63] */
    uint64_t q = (e >> s) + ((e >> (s - 1u)) & 1u);
    if (q > (uint64_t)Q16_MAX) { if (sat) *sat += 1u; return Q16_MAX; }
    return (q16_t)q;
}

/* ------------------------------------------------------------------ */
/* log                                                                  */
/* ------------------------------------------------------------------ */

/* 1/(2j+1) in Q62, j = 0..10 (rounded). */
static const int64_t ATANH_C[11] = {
    4611686018427387904LL, 1537228672809129301LL, 922337203685477581LL,
    658812288346769701LL,  512409557603043100LL,  419244183493398900LL,
    354745078340568300LL,  307445734561825860LL,  271275648142787524LL,
    242720316759336205LL,  219604096115589900LL};

/*
 * ln(X / 2^frac) * 2^56 for X > 0: X = M * 2^(b - 61) with M in [2^61, 2^62)
 * (exact when X < 2^62; otherwise truncated, relative error < 2^-61).
 * m = M / c with c = 2^61, or c = 2^62 (and e + 1) when M >= sqrt2 * 2^61, so
 * m in [1/sqrt2, sqrt2). ln m = 2 atanh(s), s = (M - c) / (M + c), |s| < 0.1716,
 * s in Q62 by exact long division; the odd series up to s^21 (truncation
 * < 2^-62) in Horner form in s^2. Then ln x = e * ln2 + ln m in Q56.
 */
int64_t q16__ln_q56(uint64_t X, unsigned frac) {
    unsigned b = msb64(X);
    uint64_t M = b <= 61 ? X << (61 - b) : X >> (b - 61);
    int64_t e = (int64_t)b - (int64_t)frac;
    uint64_t c = (uint64_t)1 << 61;
    if (M >= SQRT2_Q61) { c <<= 1; e += 1; }
    int neg = M < c;
    uint64_t n = neg ? c - M : M - c;     /* |M - c| < d */
    uint64_t d = M + c;                   /* < 2^63 */
    /* s = n * 2^62 / d, rounded: restoring long division, rem < d < 2^63. */
    uint64_t rem = n, q = 0;
    for (int i = 0; i < 62; ++i) {
        rem <<= 1; q <<= 1;
        if (rem >= d) { rem -= d; q |= 1u; }
    }
    if (rem >= d - rem) q += 1u;
    int64_t s = q16i_signed64(q, neg);
    int64_t z = mulq62(s, s);
    int64_t t = ATANH_C[10];
    for (int j = 9; j >= 0; --j) t = ATANH_C[j] + mulq62(t, z);
    int64_t half_lnm = mulq62(s, t);                 /* ln(m)/2 in Q62 */
    int64_t lnm_q56 = q16i_round_shift(half_lnm, 5); /* ln(m) in Q56 */
    return e * LN2_Q56 + lnm_q56;
}

/*
 * q16_log: ln(x) for every x > 0, rounded once to Q16.16 from the Q56 value
 * above (internal error < 2^-49, so <= 0.5 LSB + 2^-33 LSB overall).
 * x <= 0: Q16_ERR_DOMAIN and *out = Q16_MIN.
 */
q16_status q16_log(q16_t *out, q16_t x) {
    if (!out) return Q16_ERR_NULL;
    if (x <= 0) { *out = Q16_MIN; return Q16_ERR_DOMAIN; }
    *out = (q16_t)q16i_round_shift(q16__ln_q56((uint64_t)x, 16), 40);
    return Q16_OK;
}
