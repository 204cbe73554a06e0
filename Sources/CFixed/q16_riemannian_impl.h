/*
 * q16_riemannian_impl.h -- private helpers of the Riemannian diagonal-metric
 * updates, shared by the dense kernel (q16_riemannian.c) and the convolution
 * kernels (q16_conv.c, q16_conv_ref.c): the per-parameter step (phi update,
 * metric, weight update), the clamps of the gradient sums and the exact
 * SR(s * L / 2^48). One copy, so the dense and the conv updates round
 * identically. Not part of the public API (it lives outside include/).
 * See q16.h (q16_update_outer_riemannian_sr) for the formulas.
 */
#ifndef Q16_RIEMANNIAN_IMPL_H
#define Q16_RIEMANNIAN_IMPL_H

#include "q16.h"
#include "q16_gemm_impl.h"

/* Stream keys: each stochastic rounding of a parameter's step draws its own word,
   q16_rng_u32(seed ^ key, counter), so no two roundings share (or correlate through) one. */
#define Q16R_PHI_STREAM 0x5048495F53545245ull   /* g = SR(s gscale) */
#define Q16R_DECAY_STREAM 0x5048495F44454341ull /* SR(rho phi) */
#define Q16R_FRESH_STREAM 0x5048495F46524553ull /* SR((1 - rho) g^2) */
#define Q16R_S_LIMIT ((int64_t)1 << 62)
/* A bias gradient sum (Q16) is clamped to +-2^46 before it becomes Q32.32 (x 2^16 <= 2^62). */
#define Q16R_BIAS_LIMIT ((int64_t)1 << 46)

/* SR(s * L / 2^48) exactly, for |s| <= 2^62 and L < 2^32 (so |result| <= 2^46; no clamp:
   a large metric E can shrink even the largest step back into the q16 range):
   floor of the exact quotient plus 1 when the top 32 bits of the 48-bit
   two's-complement fraction exceed rnd (the q16_shift_sr rule). */
static inline int64_t q16r_sr_mul48(int64_t s, uint32_t L, uint32_t rnd) {
    int neg = s < 0;
    uint64_t m = neg ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    uint64_t a = (m >> 32) * (uint64_t)L;          /* < 2^62 */
    uint64_t b = (m & 0xFFFFFFFFu) * (uint64_t)L;  /* < 2^64 */
    uint64_t c = a + (b >> 32);                    /* |s| L = c 2^32 + (b mod 2^32) */
    uint64_t q = c >> 16;                          /* floor(|s| L / 2^48) */
    uint64_t f = ((c & 0xFFFFu) << 32) | (b & 0xFFFFFFFFu); /* |s| L mod 2^48 */
    int64_t fl;
    uint32_t frac32;
    if (!neg) {
        fl = (int64_t)q;
        frac32 = (uint32_t)(f >> 16);
    } else if (f == 0) {
        fl = -(int64_t)q;
        frac32 = 0;
    } else {
        fl = -(int64_t)q - 1;
        frac32 = (uint32_t)((((uint64_t)1 << 48) - f) >> 16);
    }
    return fl + (int64_t)(frac32 > rnd);
}

/* v clamped to +-2^62, counting a clamp. */
static inline int64_t q16r_clamp62(int64_t v, uint64_t *nsat) {
    if (v > Q16R_S_LIMIT) { *nsat += 1; return Q16R_S_LIMIT; }
    if (v < -Q16R_S_LIMIT) { *nsat += 1; return -Q16R_S_LIMIT; }
    return v;
}

/* A 128-bit two's complement sum clamped to +-2^62, counting a clamp. */
static inline int64_t q16r_clamp128(q16i_acc128 acc, uint64_t *nsat) {
    int neg = (acc.hi >> 63) != 0;
    uint64_t ext = neg ? ~(uint64_t)0 : 0u;
    if (acc.hi == ext && ((acc.lo >> 63) != 0) == neg) {
        /* fits int64: its two's complement value without an out-of-range conversion */
        int64_t v = neg ? -(int64_t)(~acc.lo) - 1 : (int64_t)acc.lo;
        return q16r_clamp62(v, nsat);
    }
    *nsat += 1;
    return neg ? -Q16R_S_LIMIT : Q16R_S_LIMIT;
}

/* A bias gradient sum (Q16, |s| <= 2^62) clamped to +-2^46 (counted), as Q32.32 (x 2^16). */
static inline int64_t q16r_bias_s(int64_t s, uint64_t *nsat) {
    if (s > Q16R_BIAS_LIMIT) { s = Q16R_BIAS_LIMIT; *nsat += 1; }
    if (s < -Q16R_BIAS_LIMIT) { s = -Q16R_BIAS_LIMIT; *nsat += 1; }
    return s * 65536; /* |s| <= 2^62 */
}

static inline q16_t q16r_sat(int64_t v, uint64_t *nsat) {
    if (v > (int64_t)Q16_MAX) { *nsat += 1; return Q16_MAX; }
    if (v < (int64_t)Q16_MIN) { *nsat += 1; return Q16_MIN; }
    return (q16_t)v;
}

/* round_nearest(u / E) in Q16.16 (u * 2^16 / e) for E >= 2^16 (E >= 1.0) and
   |u| <= 2^46 (so |u| 2^16 <= 2^62), ties away from zero. */
static inline int64_t q16r_div_e(int64_t u, int64_t e) {
    uint64_t m = (u < 0 ? (uint64_t)0 - (uint64_t)u : (uint64_t)u) << 16;
    uint64_t ue = (uint64_t)e;
    uint64_t q = m / ue, r = m % ue;
    if (2 * r >= ue) q += 1;
    return u < 0 ? -(int64_t)q : (int64_t)q;
}

/* One parameter: phi update, metric, weight update (|s| <= 2^62, the clamped Q32.32 sum).
   phi is read and written only for Q16_PHI_GRAD_SQUARED. */
static inline q16_t q16r_step(q16_t w, q16_t *phi, int64_t s, uint32_t lr, uint32_t gscale, q16_t alpha,
                              uint32_t rho, q16_phi_kind kind, uint64_t seed, uint64_t ctr, uint64_t *nsat) {
    int64_t u = q16r_sr_mul48(s, lr, q16_rng_u32(seed, ctr));
    int64_t p;
    int64_t e;
    if (kind == Q16_PHI_GRAD_SQUARED) {
        uint32_t r1 = q16_rng_u32(seed ^ Q16R_PHI_STREAM, ctr);
        uint32_t r2 = q16_rng_u32(seed ^ Q16R_DECAY_STREAM, ctr);
        uint32_t r3 = q16_rng_u32(seed ^ Q16R_FRESH_STREAM, ctr);
        int64_t g = q16r_sr_mul48(s, gscale, r1);
        q16_t gq = q16r_sat(g, nsat);
        q16_t g2 = q16_mul(gq, gq, nsat);
        int64_t decayed = (int64_t)q16_shift_sr((int64_t)*phi * (int64_t)rho, 32u, r2, NULL);
        int64_t fresh = (int64_t)q16_shift_sr((int64_t)g2 * (int64_t)(uint32_t)(0u - rho), 32u, r3, NULL);
        if (rho == 0) fresh = g2;
        *phi = q16r_sat(decayed + fresh, nsat);
        p = *phi;
    } else {
        p = w < 0 ? -(int64_t)w : (int64_t)w;
        if (p > Q16_MAX) p = Q16_MAX;
    }
    e = (int64_t)Q16_ONE + (int64_t)q16_mul(alpha, (q16_t)p, nsat);
    if (e > (int64_t)Q16_MAX) e = Q16_MAX;
    if (e < (int64_t)Q16_ONE) e = Q16_ONE;
    return q16r_sat((int64_t)w - q16r_div_e(u, e), nsat);
}

/* The argument checks shared by the Riemannian kernels, after the NULL checks: the phi kind
   (Q16_ERR_DOMAIN for an unknown kind) and alpha >= 0 (Q16_ERR_DOMAIN). */
static inline q16_status q16r_check_metric(q16_phi_kind kind, q16_t alpha) {
    if (kind != Q16_PHI_GRAD_SQUARED && kind != Q16_PHI_WEIGHT_ABS) return Q16_ERR_DOMAIN;
    if (alpha < 0) return Q16_ERR_DOMAIN;
    return Q16_OK;
}

#endif /* Q16_RIEMANNIAN_IMPL_H */
