/* q16_riemannian.c -- the Riemannian diagonal-metric step and IVC's pull
 * towards provenance, with stochastic rounding. See q16.h for the formulas. */
#include "q16.h"

#define Q16R_PHI_STREAM 0x5048495F53545245ull
#define Q16R_S_LIMIT ((int64_t)1 << 62)
#define Q16R_D_LIMIT ((int64_t)1 << 40)

/* SR(s * L / 2^48) exactly, for |s| <= 2^62 and L < 2^32, clamped to +-2^40 (+1):
   floor of the exact quotient plus 1 when the top 32 bits of the 48-bit
   two's-complement fraction exceed rnd (the q16_shift_sr rule). */
static int64_t q16r_sr_mul48(int64_t s, uint32_t L, uint32_t rnd) {
    int neg = s < 0;
    uint64_t m = neg ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    uint64_t a = (m >> 32) * (uint64_t)L;          /* < 2^62 */
    uint64_t b = (m & 0xFFFFFFFFu) * (uint64_t)L;  /* < 2^64 */
    uint64_t c = a + (b >> 32);                    /* |s| L = c 2^32 + (b mod 2^32) */
    uint64_t q = c >> 16;                          /* floor(|s| L / 2^48) */
    uint64_t f = ((c & 0xFFFFu) << 32) | (b & 0xFFFFFFFFu); /* |s| L mod 2^48 */
    int64_t fl;
    uint32_t frac32;
    if (q > (uint64_t)Q16R_D_LIMIT) q = (uint64_t)Q16R_D_LIMIT;
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

static q16_t q16r_sat(int64_t v, uint64_t *nsat) {
    if (v > (int64_t)Q16_MAX) { *nsat += 1; return Q16_MAX; }
    if (v < (int64_t)Q16_MIN) { *nsat += 1; return Q16_MIN; }
    return (q16_t)v;
}

/* round_nearest(u / E) in Q16.16 (u * 2^16 / e) for E >= 2^16 (E >= 1.0) and
   |u| <= 2^40 + 1 (so |u| 2^16 < 2^57), ties away from zero. */
static int64_t q16r_div_e(int64_t u, int64_t e) {
    uint64_t m = (u < 0 ? (uint64_t)0 - (uint64_t)u : (uint64_t)u) << 16;
    uint64_t ue = (uint64_t)e;
    uint64_t q = m / ue, r = m % ue;
    if (2 * r >= ue) q += 1;
    return u < 0 ? -(int64_t)q : (int64_t)q;
}

/* One parameter: phi update, metric, weight update. */
static q16_t q16r_step(q16_t w, q16_t *phi, int64_t s, uint32_t lr, uint32_t gscale, q16_t alpha,
                       uint32_t rho, q16_phi_kind kind, uint64_t seed, uint64_t ctr, uint64_t *nsat) {
    int64_t u = q16r_sr_mul48(s, lr, q16_rng_u32(seed, ctr));
    int64_t p;
    int64_t e;
    if (kind == Q16_PHI_GRAD_SQUARED) {
        uint32_t r1 = q16_rng_u32(seed ^ Q16R_PHI_STREAM, ctr);
        uint32_t r2 = q16_rng_u32(seed ^ Q16R_PHI_STREAM, ctr ^ 0x8000000000000000ull);
        int64_t g = q16r_sr_mul48(s, gscale, r1);
        q16_t gq = q16r_sat(g, nsat);
        q16_t g2 = q16_mul(gq, gq, nsat);
        int64_t decayed = (int64_t)q16_shift_sr((int64_t)*phi * (int64_t)rho, 32u, r2, NULL);
        int64_t fresh = (int64_t)q16_shift_sr((int64_t)g2 * (int64_t)(uint32_t)(0u - rho), 32u, r1, NULL);
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

static int q16r_overlap(const void *a, size_t na, const void *b, size_t nb) {
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    if (!a || !b || na == 0 || nb == 0) return 0;
    return a0 < b0 + nb && b0 < a0 + na;
}

q16_status q16_update_outer_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                          const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                          uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                          q16_phi_kind kind, int batch, int m, int n,
                                          uint64_t seed, uint64_t counter, uint64_t *sat) {
    uint64_t nsat = 0;
    size_t wn, i, j, b;
    if (!W || !scratch || !dY || !X) return Q16_ERR_NULL;
    if (kind == Q16_PHI_GRAD_SQUARED && !phi) return Q16_ERR_NULL;
    if (kind != Q16_PHI_GRAD_SQUARED && kind != Q16_PHI_WEIGHT_ABS) return Q16_ERR_DOMAIN;
    if (alpha_q16 < 0) return Q16_ERR_DOMAIN;
    if (batch <= 0 || m <= 0 || n <= 0) return Q16_ERR_SIZE;
    if (batch > INT32_MAX / m || batch > INT32_MAX / n || m > INT32_MAX / n) return Q16_ERR_SIZE;
    wn = (size_t)m * (size_t)n;
    if (q16r_overlap(W, wn * 4, dY, (size_t)batch * m * 4) || q16r_overlap(W, wn * 4, X, (size_t)batch * n * 4) ||
        q16r_overlap(W, wn * 4, phi, (wn + m) * 4) || q16r_overlap(W, wn * 4, scratch, (size_t)n * 8) ||
        q16r_overlap(bias, (size_t)m * 4, phi, (wn + m) * 4) || q16r_overlap(phi, (wn + m) * 4, scratch, (size_t)n * 8))
        return Q16_ERR_OVERLAP;
    for (i = 0; i < (size_t)m; i++) {
        /* exact row sums; products are < 2^62 each, sums clamped to +-2^62 (counted) */
        for (j = 0; j < (size_t)n; j++) scratch[j] = 0;
        for (b = 0; b < (size_t)batch; b++) {
            int64_t dy = dY[b * (size_t)m + i];
            const q16_t *xr = X + b * (size_t)n;
            for (j = 0; j < (size_t)n; j++) {
                int64_t p = dy * (int64_t)xr[j];
                int64_t acc = scratch[j];
                if ((p > 0 && acc > Q16R_S_LIMIT - p) || (p < 0 && acc < -Q16R_S_LIMIT - p)) {
                    scratch[j] = p > 0 ? Q16R_S_LIMIT : -Q16R_S_LIMIT;
                    nsat++;
                } else {
                    scratch[j] = acc + p;
                }
            }
        }
        for (j = 0; j < (size_t)n; j++) {
            size_t idx = i * (size_t)n + j;
            W[idx] = q16r_step(W[idx], phi ? phi + idx : NULL, scratch[j], lr_q32, gscale_q32, alpha_q16,
                               rho_q32, kind, seed, counter + idx, &nsat);
        }
    }
    if (bias) {
        for (i = 0; i < (size_t)m; i++) {
            int64_t s = 0;
            for (b = 0; b < (size_t)batch; b++) s += dY[b * (size_t)m + i];
            s *= 65536; /* Q16 sum -> Q32.32: |s| <= batch 2^31, times 2^16 < 2^62 */
            bias[i] = q16r_step(bias[i], phi ? phi + wn + i : NULL, s, lr_q32, gscale_q32, alpha_q16,
                                rho_q32, kind, seed, counter + wn + i, &nsat);
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

q16_status q16_update_pull_sr(q16_t *w, const q16_t *w0, uint32_t rate_q32, int n,
                              uint64_t seed, uint64_t counter, uint64_t *sat) {
    uint64_t nsat = 0;
    int i;
    if (!w || !w0) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if (q16r_overlap(w, (size_t)n * 4, w0, (size_t)n * 4)) return Q16_ERR_OVERLAP;
    if (rate_q32 == 0) return Q16_OK;
    for (i = 0; i < n; i++) {
        int64_t diff = (int64_t)w[i] - (int64_t)w0[i];   /* |diff| < 2^32 */
        int64_t d = (int64_t)q16_shift_sr(diff * (int64_t)rate_q32, 32u,
                                          q16_rng_u32(seed, counter + (uint64_t)i), NULL);
        w[i] = q16r_sat((int64_t)w[i] - d, &nsat);
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}
