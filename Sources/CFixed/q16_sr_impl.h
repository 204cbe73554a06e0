/*
 * q16_sr_impl.h -- private helpers of the stochastic-rounding update kernels
 * (q16_update.c, q16_conv.c): the inlined counter-based generator, the
 * branch-free saturation and the exact SR(s * lr) steps. One copy, so the
 * dense and the conv updates round identically. Not part of the public API.
 *
 * q16s_rng MUST stay identical to q16_rng_u32 in q16_random.c (the tests
 * model every update with q16_rng_u32 and compare bit for bit).
 */
#ifndef Q16_SR_IMPL_H
#define Q16_SR_IMPL_H

#include "q16.h"
#include "q16_gemm_impl.h"

/* |d| is clamped to this before w - d: any |d| >= 2^40 saturates w anyway. */
#define Q16S_D_LIMIT ((int64_t)1 << 40)

/** q16_rng_u32, inlined (identical formula). */
Q16_INLINE uint32_t q16s_rng(uint64_t seed, uint64_t counter) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + counter * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 32);
}

/** Clamp an int64 to q16, adding 1 to *nsat when clamped (branch-free). */
Q16_INLINE q16_t q16s_sat(int64_t r, uint64_t *nsat) {
    int hi = r > (int64_t)Q16_MAX, lo = r < (int64_t)Q16_MIN;
    *nsat += (uint64_t)(hi | lo);
    return (q16_t)(hi ? (int64_t)Q16_MAX : lo ? (int64_t)Q16_MIN : r);
}

/** floor(v / 2^s) for 0 < s < 64 without shifting a negative value. */
Q16_INLINE int64_t q16s_floor_shift(int64_t v, unsigned s) {
    return (int64_t)(((uint64_t)v ^ 0x8000000000000000ull) >> s) - (int64_t)(0x8000000000000000ull >> s);
}

/**
 * SR(s * L / 2^32) (extra16 = 0) or SR(s * L / 2^48) (extra16 = 1) for an int64 s:
 * floor of the exact quotient, plus 1 when the top 32 bits of the fraction exceed rnd.
 * Exact without 128-bit types (s = sh 2^32 + sl, so s L = R 2^32 + (sl L mod 2^32) with R = sh L + floor(sl L / 2^32), which fits int64).
 */
Q16_INLINE int64_t q16s_sr_mul(int64_t s, uint32_t L, int extra16, uint32_t rnd) {
    int64_t sh = q16s_floor_shift(s, 32);
    uint64_t pl = ((uint64_t)s & 0xFFFFFFFFu) * (uint64_t)L;
    int64_t R = sh * (int64_t)L + (int64_t)(pl >> 32);
    uint32_t lo32 = (uint32_t)(pl & 0xFFFFFFFFu);
    if (!extra16) return R + (int64_t)(lo32 > rnd);
    {
        uint32_t frac = (uint32_t)(((uint64_t)R & 0xFFFFu) << 16) | (lo32 >> 16);
        return q16s_floor_shift(R, 16) + (int64_t)(frac > rnd);
    }
}

/**
 * SR(S * L / 2^48) for a 128-bit two's complement S = (hi:lo) with |S| < 2^95, the
 * q16s_sr_mul rule, with the floor clamped to [-2^40, 2^40] before the +1 (any larger
 * step saturates w anyway, so w - d is the same).
 */
static Q16I_UNUSED int64_t q16s_sr_mul128(uint64_t hi, uint64_t lo, uint32_t L, uint32_t rnd) {
    const unsigned shift = 48u;
    uint64_t p0 = (lo & 0xFFFFFFFFu) * (uint64_t)L;
    uint64_t p1 = (lo >> 32) * (uint64_t)L;
    uint64_t t_lo = p0 + (p1 << 32);
    uint64_t t_hi = hi * (uint64_t)L + (p1 >> 32) + (uint64_t)(t_lo < p0);
    uint64_t sign = (t_hi >> 63) ? ~(uint64_t)0 : 0u;
    uint64_t q_lo = (t_lo >> shift) | (t_hi << (64u - shift));
    uint64_t q_hi = (t_hi >> shift) | (sign << (64u - shift));
    uint32_t frac32 = (uint32_t)((t_lo >> (shift - 32u)) & 0xFFFFFFFFu);
    int64_t q;
    if (q_hi == ((q_lo >> 63) ? ~(uint64_t)0 : 0u)) {
        q = (q_lo >> 63) ? -(int64_t)(~q_lo) - 1 : (int64_t)q_lo;
        if (q > Q16S_D_LIMIT) q = Q16S_D_LIMIT;
        if (q < -Q16S_D_LIMIT) q = -Q16S_D_LIMIT;
    } else {
        q = sign ? -Q16S_D_LIMIT : Q16S_D_LIMIT;
    }
    return q + (int64_t)(frac32 > rnd);
}

/** The bias step of the fused update: SR(s * L / 2^32), |s| < 2^62, clamped like q16_update_outer_sr. */
Q16_INLINE int64_t q16s_bias_step(int64_t s, uint32_t L, uint32_t rnd) {
    int64_t d = q16s_sr_mul(s, L, 0, rnd);
    if (d > Q16S_D_LIMIT) d = Q16S_D_LIMIT;
    if (d < -Q16S_D_LIMIT) d = -Q16S_D_LIMIT;
    return d;
}

#endif /* Q16_SR_IMPL_H */
