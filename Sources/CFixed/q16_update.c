/*
 * q16_update.c -- SGD weight updates with stochastic rounding (SR).
 *
 * Learning rates are Q0.32 (lr = lr_q32 / 2^32). For a q16 value g the
 * product (int64)g * lr_q32 is exact and SR(lr * g) = q16_shift_sr(product,
 * 32, bits): floor(product / 2^32) plus 1 with probability equal to the
 * fraction (compared with 32 random bits, so the expectation is exact:
 * SR is unbiased). Random bits are counter-based: element i of a call uses
 * q16_rng_u32(seed, counter + i) (the fused outer update and momentum use
 * the offsets documented in q16.h), so results are identical on every
 * architecture and independent of how the work is vectorised.
 *
 * Each updated value is computed as w - d with the exact integer d and
 * saturated once (counted in *sat). |lr * g| < |g|, so SR(lr * g) itself
 * never leaves the q16 range.
 *
 * The fused outer update sums s = sum_b dY[b][i] * X[b][j] exactly (Q32.32)
 * and needs SR(s * lr_q32 / 2^48). The product s * lr_q32 can need up to
 * 126 bits, so it is formed exactly in two uint64_t halves (s split into
 * 32-bit limbs, each limb times lr_q32 is exact in 64 bits; no __int128).
 * Overflow of s itself is handled EXACTLY (not saturated): a cheap pre-pass
 * bounds batch * max|dY| * max|X|; if the int64 row sums in `scratch` could
 * overflow, the call falls back to a 128-bit accumulation per weight (slower,
 * but only reachable with huge values and large batches).
 *
 * Aliasing: no output may overlap any input or another output
 * (Q16_ERR_OVERLAP), including exact aliasing.
 */
#include "q16.h"
#include "q16_gemm_impl.h"

/* |d| is clamped to this before w - d: any |d| >= 2^40 saturates w anyway. */
#define Q16U_D_LIMIT ((int64_t)1 << 40)

/** sat(w - d) for |d| <= 2^40 + 1. */
static q16_t q16u_sub_sat(q16_t w, int64_t d, uint64_t *nsat) {
    int64_t r = (int64_t)w - d;
    if (r > (int64_t)Q16_MAX) { *nsat += 1; return Q16_MAX; }
    if (r < (int64_t)Q16_MIN) { *nsat += 1; return Q16_MIN; }
    return (q16_t)r;
}

/** sat(a + b) for q16 a, b. */
static q16_t q16u_add_sat(q16_t a, q16_t b, uint64_t *nsat) {
    int64_t r = (int64_t)a + (int64_t)b;
    if (r > (int64_t)Q16_MAX) { *nsat += 1; return Q16_MAX; }
    if (r < (int64_t)Q16_MIN) { *nsat += 1; return Q16_MIN; }
    return (q16_t)r;
}

/** SR(lr * g) for a q16 g: exact product, stochastic shift by 32 (never saturates). */
static int64_t q16u_sr_lr(q16_t g, uint32_t lr_q32, uint32_t rnd) {
    return (int64_t)q16_shift_sr((int64_t)g * (int64_t)lr_q32, 32u, rnd, NULL);
}

/**
 * SR(S * L / 2^shift) for a 128-bit two's complement S = (hi:lo) with
 * |S| < 2^95, L = lr_q32, shift in [32, 63]: floor of the exact quotient plus
 * 1 when the top 32 bits of the fraction exceed rnd (the q16_shift_sr rule),
 * clamped to [-2^40, 2^40] (+1).
 */
static int64_t q16u_sr_mul128(uint64_t hi, uint64_t lo, uint32_t L, unsigned shift, uint32_t rnd) {
    /* T = S * L mod 2^128; exact as a signed value since |S * L| < 2^127. */
    uint64_t p0 = (lo & 0xFFFFFFFFu) * (uint64_t)L;
    uint64_t p1 = (lo >> 32) * (uint64_t)L;
    uint64_t t_lo = p0 + (p1 << 32);
    uint64_t t_hi = hi * (uint64_t)L + (p1 >> 32) + (uint64_t)(t_lo < p0);
    /* floor(T / 2^shift): 128-bit arithmetic shift, done on unsigned halves */
    uint64_t sign = (t_hi >> 63) ? ~(uint64_t)0 : 0u;
    uint64_t q_lo = (t_lo >> shift) | (t_hi << (64u - shift));
    uint64_t q_hi = (t_hi >> shift) | (sign << (64u - shift));
    uint32_t frac32 = (uint32_t)(t_lo >> (shift - 32u)); /* top 32 of the shift-bit fraction */
    int64_t q;
    if (q_hi == ((q_lo >> 63) ? ~(uint64_t)0 : 0u)) {
        /* fits int64: the two's complement value of q_lo, without an out-of-range conversion */
        q = (q_lo >> 63) ? -(int64_t)(~q_lo) - 1 : (int64_t)q_lo;
        if (q > Q16U_D_LIMIT) q = Q16U_D_LIMIT;
        if (q < -Q16U_D_LIMIT) q = -Q16U_D_LIMIT;
    } else {
        q = sign ? -Q16U_D_LIMIT : Q16U_D_LIMIT;
    }
    return q + (int64_t)(frac32 > rnd);
}

q16_status q16_update_sr(q16_t *w, const q16_t *g, uint32_t lr_q32, int n, uint64_t seed, uint64_t counter,
                         uint64_t *sat) {
    uint64_t nsat = 0;
    int i;
    if (w == NULL || g == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if (q16i_overlap(w, Q16I_BYTES(n), g, Q16I_BYTES(n))) return Q16_ERR_OVERLAP;
    for (i = 0; i < n; i++) {
        int64_t d = q16u_sr_lr(g[i], lr_q32, q16_rng_u32(seed, counter + (uint64_t)i));
        w[i] = q16u_sub_sat(w[i], d, &nsat);
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

size_t q16_update_outer_sr_buffer_size(int n) {
    if (n <= 0 || (size_t)n > SIZE_MAX / sizeof(int64_t)) return 0;
    return (size_t)n * sizeof(int64_t);
}

/* max |x[i]| (|Q16_MIN| = 2^31 representable). */
static uint32_t q16u_maxabs(const q16_t *x, size_t n) {
    uint32_t mx = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)x[i];
        uint32_t s = 0u - (u >> 31);
        uint32_t a = (u ^ s) - s;
        mx = a > mx ? a : mx;
    }
    return mx;
}

q16_status q16_update_outer_sr(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                               uint32_t lr_q32, int batch, int m, int n, uint64_t seed, uint64_t counter,
                               uint64_t *sat) {
    uint64_t nsat = 0, prod;
    size_t wb, sb, yb, xb, bb;
    int i, j, b, fast;
    if (W == NULL || scratch == NULL || dY == NULL || X == NULL) return Q16_ERR_NULL;
    if (batch <= 0 || m <= 0 || n <= 0) return Q16_ERR_SIZE;
    if (!q16i_mul_fits(batch, m) || !q16i_mul_fits(batch, n) || !q16i_mul_fits(m, n)) return Q16_ERR_SIZE;
    sb = q16_update_outer_sr_buffer_size(n);
    if (sb == 0) return Q16_ERR_SIZE;
    wb = Q16I_BYTES((size_t)m * (size_t)n);
    yb = Q16I_BYTES((size_t)batch * (size_t)m);
    xb = Q16I_BYTES((size_t)batch * (size_t)n);
    bb = Q16I_BYTES(m);
    if (q16i_overlap(W, wb, dY, yb) || q16i_overlap(W, wb, X, xb) || q16i_overlap(W, wb, scratch, sb) ||
        q16i_overlap(W, wb, bias, bb) || q16i_overlap(bias, bb, dY, yb) || q16i_overlap(bias, bb, X, xb) ||
        q16i_overlap(bias, bb, scratch, sb) || q16i_overlap(scratch, sb, dY, yb) ||
        q16i_overlap(scratch, sb, X, xb))
        return Q16_ERR_OVERLAP;

    /* Can every partial row sum be held in int64? (same bound as the GEMMs) */
    prod = (uint64_t)q16u_maxabs(dY, (size_t)batch * (size_t)m) *
           (uint64_t)q16u_maxabs(X, (size_t)batch * (size_t)n);
    fast = prod == 0 || (uint64_t)batch <= (uint64_t)INT64_MAX / prod;

    for (i = 0; i < m; i++) {
        q16_t *Wi = W + (size_t)i * (size_t)n;
        const uint64_t cbase = counter + (uint64_t)i * (uint64_t)n;
        if (fast) {
            int64_t *s = scratch;
            for (j = 0; j < n; j++) s[j] = 0;
            for (b = 0; b < batch; b++) {
                const int64_t dy = dY[(size_t)b * (size_t)m + (size_t)i];
                const q16_t *xr = X + (size_t)b * (size_t)n;
                if (dy == 0) continue; /* ReLU-masked gradients are often exactly 0 */
                for (j = 0; j < n; j++) s[j] += dy * (int64_t)xr[j];
            }
            for (j = 0; j < n; j++) {
                int64_t sj = s[j];
                int64_t d = q16u_sr_mul128(sj < 0 ? ~(uint64_t)0 : 0u, (uint64_t)sj, lr_q32, 48u,
                                           q16_rng_u32(seed, cbase + (uint64_t)j));
                Wi[j] = q16u_sub_sat(Wi[j], d, &nsat);
            }
        } else {
            for (j = 0; j < n; j++) {
                q16i_acc128 acc = {0u, 0u};
                int64_t d;
                for (b = 0; b < batch; b++)
                    q16i_acc_add(&acc, (int64_t)dY[(size_t)b * (size_t)m + (size_t)i] *
                                           (int64_t)X[(size_t)b * (size_t)n + (size_t)j]);
                d = q16u_sr_mul128(acc.hi, acc.lo, lr_q32, 48u, q16_rng_u32(seed, cbase + (uint64_t)j));
                Wi[j] = q16u_sub_sat(Wi[j], d, &nsat);
            }
        }
    }
    if (bias) {
        const uint64_t cbase = counter + (uint64_t)m * (uint64_t)n;
        for (i = 0; i < m; i++) {
            int64_t s = 0; /* |s| <= batch * 2^31 < 2^62 */
            int64_t d;
            for (b = 0; b < batch; b++) s += dY[(size_t)b * (size_t)m + (size_t)i];
            d = q16u_sr_mul128(s < 0 ? ~(uint64_t)0 : 0u, (uint64_t)s, lr_q32, 32u,
                               q16_rng_u32(seed, cbase + (uint64_t)i));
            bias[i] = q16u_sub_sat(bias[i], d, &nsat);
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

q16_status q16_update_momentum_sr(q16_t *w, q16_t *v, const q16_t *g, uint32_t mu_q32, uint32_t lr_q32, int n,
                                  uint64_t seed, uint64_t counter, uint64_t *sat) {
    uint64_t nsat = 0;
    int i;
    size_t nb;
    if (w == NULL || v == NULL || g == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    nb = Q16I_BYTES(n);
    if (q16i_overlap(w, nb, v, nb) || q16i_overlap(w, nb, g, nb) || q16i_overlap(v, nb, g, nb))
        return Q16_ERR_OVERLAP;
    for (i = 0; i < n; i++) {
        int64_t mv = q16u_sr_lr(v[i], mu_q32, q16_rng_u32(seed, counter + (uint64_t)i));
        q16_t vi = q16u_add_sat((q16_t)mv, g[i], &nsat);
        int64_t d = q16u_sr_lr(vi, lr_q32, q16_rng_u32(seed, counter + (uint64_t)n + (uint64_t)i));
        v[i] = vi;
        w[i] = q16u_sub_sat(w[i], d, &nsat);
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}
