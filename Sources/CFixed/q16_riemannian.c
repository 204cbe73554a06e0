/* q16_riemannian.c -- the Riemannian diagonal-metric step and IVC's pull
 * towards provenance, with stochastic rounding. See q16.h for the formulas. */
#include "q16.h"
#include "q16_gemm_impl.h"
#include "q16_riemannian_impl.h"

/* The per-parameter step, the stream keys and the sum clamps are in q16_riemannian_impl.h
   (shared with the convolution kernels). */

/* SR(v / 2^32) for v = sign * mag (mag < 2^64), exact in int64: floor of the exact
   quotient plus 1 when the 32 fraction bits exceed rnd (the q16_shift_sr rule). */
static int64_t q16r_sr_shift32(uint64_t mag, int neg, uint32_t rnd) {
    int64_t q = (int64_t)(mag >> 32); /* < 2^32 */
    uint32_t f = (uint32_t)(mag & 0xFFFFFFFFu);
    if (!neg) return q + (int64_t)(f > rnd);
    /* -(q 2^32 + f) / 2^32: floor is -q - (f != 0), fraction (2^32 - f) mod 2^32 */
    return -q - (int64_t)(f != 0u) + (int64_t)((uint32_t)(0u - f) > rnd);
}

q16_status q16_update_outer_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                          const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                          uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                          q16_phi_kind kind, int batch, int m, int n,
                                          uint64_t seed, uint64_t counter, uint64_t *sat) {
    return q16_update_outer_riemannian_sr_rows(W, bias, phi, scratch, dY, X, lr_q32, gscale_q32, alpha_q16,
                                               rho_q32, kind, batch, m, n, 0, m, seed, counter, sat);
}

/* The whole layer's checks, then rows i0..i1-1 (q16_par_update_outer_riemannian_sr's blocks). */
q16_status q16_update_outer_riemannian_sr_rows(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                               const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                               uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                               q16_phi_kind kind, int batch, int m, int n, int i0, int i1,
                                               uint64_t seed, uint64_t counter, uint64_t *sat) {
    uint64_t nsat = 0;
    size_t wn, i, j, b;
    int fast;
    if (!W || !scratch || !dY || !X) return Q16_ERR_NULL;
    if (kind == Q16_PHI_GRAD_SQUARED && !phi) return Q16_ERR_NULL;
    if (q16r_check_metric(kind, alpha_q16) != Q16_OK) return Q16_ERR_DOMAIN;
    if (batch <= 0 || m <= 0 || n <= 0) return Q16_ERR_SIZE;
    if (i0 < 0 || i0 > i1 || i1 > m) return Q16_ERR_SIZE;
    if (batch > INT32_MAX / m || batch > INT32_MAX / n || m > INT32_MAX / n) return Q16_ERR_SIZE;
    wn = (size_t)m * (size_t)n;
    {
        /* No output may overlap an input or another output (differences, not end addresses). */
        const void *out[4];
        size_t outb[4];
        const void *in[2];
        size_t inb[2];
        int a, c;
        out[0] = W; outb[0] = Q16I_BYTES(wn);
        out[1] = bias; outb[1] = Q16I_BYTES(m);
        out[2] = kind == Q16_PHI_GRAD_SQUARED ? (const void *)phi : NULL; outb[2] = Q16I_BYTES(wn + (size_t)m);
        out[3] = scratch; outb[3] = q16_update_outer_sr_buffer_size(n);
        in[0] = dY; inb[0] = Q16I_BYTES((size_t)batch * (size_t)m);
        in[1] = X; inb[1] = Q16I_BYTES((size_t)batch * (size_t)n);
        for (a = 0; a < 4; a++) {
            for (c = a + 1; c < 4; c++)
                if (q16i_overlap(out[a], outb[a], out[c], outb[c])) return Q16_ERR_OVERLAP;
            for (c = 0; c < 2; c++)
                if (q16i_overlap(out[a], outb[a], in[c], inb[c])) return Q16_ERR_OVERLAP;
        }
    }
    /* Can every partial row sum be held in int64? (the bound of q16_update_outer_sr) */
    {
        uint64_t prod = (uint64_t)q16i_maxabs(dY, (size_t)batch * (size_t)m) *
                        (uint64_t)q16i_maxabs(X, (size_t)batch * (size_t)n);
        fast = prod == 0 || (uint64_t)batch <= (uint64_t)INT64_MAX / prod;
    }
    for (i = (size_t)i0; i < (size_t)i1; i++) {
        /* exact row sums (int64, or 128-bit when int64 could overflow), each clamped once
           to +-2^62 (counted) */
        if (fast) {
            for (j = 0; j < (size_t)n; j++) scratch[j] = 0;
            for (b = 0; b < (size_t)batch; b++) {
                int64_t dy = dY[b * (size_t)m + i];
                const q16_t *xr = X + b * (size_t)n;
                if (dy == 0) continue;
                for (j = 0; j < (size_t)n; j++) scratch[j] += dy * (int64_t)xr[j];
            }
            for (j = 0; j < (size_t)n; j++) scratch[j] = q16r_clamp62(scratch[j], &nsat);
        }
        for (j = 0; !fast && j < (size_t)n; j++) {
            {
                q16i_acc128 acc = {0u, 0u};
                for (b = 0; b < (size_t)batch; b++)
                    q16i_acc_add(&acc, (int64_t)dY[b * (size_t)m + i] * (int64_t)X[b * (size_t)n + j]);
                scratch[j] = q16r_clamp128(acc, &nsat);
            }
        }
        for (j = 0; j < (size_t)n; j++) {
            size_t idx = i * (size_t)n + j;
            W[idx] = q16r_step(W[idx], phi ? phi + idx : NULL, scratch[j], lr_q32, gscale_q32, alpha_q16,
                               rho_q32, kind, seed, counter + idx, &nsat);
        }
    }
    if (bias) {
        for (i = (size_t)i0; i < (size_t)i1; i++) {
            int64_t s = 0;
            for (b = 0; b < (size_t)batch; b++) s += dY[b * (size_t)m + i]; /* |s| <= batch 2^31 < 2^62 */
            s = q16r_bias_s(s, &nsat); /* clamped to +-2^46 (counted), Q16 sum -> Q32.32: |s| <= 2^62 */
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
    if (q16i_overlap(w, Q16I_BYTES(n), w0, Q16I_BYTES(n))) return Q16_ERR_OVERLAP;
    if (rate_q32 == 0) return Q16_OK;
    for (i = 0; i < n; i++) {
        int64_t diff = (int64_t)w[i] - (int64_t)w0[i]; /* |diff| < 2^32 */
        uint64_t mag = diff < 0 ? (uint64_t)(-diff) : (uint64_t)diff;
        /* |diff| rate < 2^64: exact in uint64; d lies between 0 and diff, so w - d lies
           between w and w0 (it cannot saturate; counted anyway) */
        int64_t d = q16r_sr_shift32(mag * (uint64_t)rate_q32, diff < 0,
                                    q16_rng_u32(seed, counter + (uint64_t)i));
        w[i] = q16r_sat((int64_t)w[i] - d, &nsat);
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}
