/*
 * q16_update.c -- SGD weight updates with stochastic rounding (SR).
 *
 * Learning rates are Q0.32 (lr = lr_q32 / 2^32). For a q16 value g the
 * product (int64)g * lr_q32 is exact and SR(lr * g) is what
 * q16_shift_sr(product, 32, bits) returns: floor(product / 2^32) plus 1 when
 * the 32 fraction bits exceed the random bits, i.e. with probability equal to
 * the fraction, so the expectation is exact (SR is unbiased). Random bits are
 * counter-based: element i of a call uses q16_rng_u32(seed, counter + i) (the
 * fused outer update and momentum use the offsets documented in q16.h), so
 * results are identical on every architecture and independent of how the
 * loops are vectorised. The generator and the SR step are inlined here (same
 * formulas) so that the loops vectorise; the tests compare every result with
 * a model that calls q16_rng_u32.
 *
 * Each updated value is computed as w - d with the exact integer d and
 * saturated once (counted in *sat). |lr * g| < |g|, so SR(lr * g) itself
 * never leaves the q16 range.
 *
 * The fused outer update sums s = sum_b dY[b][i] * X[b][j] exactly (Q32.32)
 * and needs SR(s * lr_q32 / 2^48). s * lr_q32 can need up to 95 bits, so it
 * is formed exactly without 128-bit types: s = sh * 2^32 + sl, and
 * s * lr = (sh * lr + floor(sl * lr / 2^32)) * 2^32 + (sl * lr mod 2^32),
 * every term exact in 64 bits. Overflow of s itself is handled EXACTLY (not
 * saturated): a cheap pre-pass bounds batch * max|dY| * max|X|; if the int64
 * row sums in `scratch` could overflow, the call falls back to a 128-bit
 * accumulation per weight in two uint64_t halves (slower, but only reachable
 * with huge values and large batches).
 *
 * Aliasing: no output may overlap any input or another output
 * (Q16_ERR_OVERLAP), including exact aliasing.
 */
#include "q16.h"
#include "q16_gemm_impl.h"
#include "q16_sr_impl.h"

/* ------------------------------------------------------------------ */
/* q16_update_sr                                                        */
/* ------------------------------------------------------------------ */

Q16_MV static uint64_t q16u_sr_loop(q16_t *Q16_RESTRICT w, const q16_t *Q16_RESTRICT g, uint32_t lr_q32, int n,
                                    uint64_t seed, uint64_t counter) {
    uint64_t nsat = 0;
    int i;
    for (i = 0; i < n; i++) {
        /* |g * lr| < |g|, so d is within the q16 range */
        int64_t d = q16s_sr_mul(g[i], lr_q32, 0, q16s_rng(seed, counter + (uint64_t)i));
        w[i] = q16s_sat((int64_t)w[i] - d, &nsat);
    }
    return nsat;
}

q16_status q16_update_sr(q16_t *w, const q16_t *g, uint32_t lr_q32, int n, uint64_t seed, uint64_t counter,
                         uint64_t *sat) {
    uint64_t nsat;
    if (w == NULL || g == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if (q16i_overlap(w, Q16I_BYTES(n), g, Q16I_BYTES(n))) return Q16_ERR_OVERLAP;
    nsat = q16u_sr_loop(w, g, lr_q32, n, seed, counter);
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* q16_update_outer_sr                                                  */
/* ------------------------------------------------------------------ */

size_t q16_update_outer_sr_buffer_size(int n) {
    if (n <= 0 || (size_t)n > SIZE_MAX / sizeof(int64_t)) return 0;
    return (size_t)n * sizeof(int64_t);
}

/*
 * Row i of the fused update when int64 row sums cannot overflow:
 * s[j] = sum_b dY[b][i] * X[b][j] in the int64 scratch (rows of X with
 * dY[b][i] == 0 are skipped, the others are added four at a time), then
 * W[i][j] -= SR(lr * s[j]).
 */
Q16_MV static uint64_t q16u_outer_row(q16_t *Q16_RESTRICT Wi, int64_t *Q16_RESTRICT s,
                                      const q16_t *Q16_RESTRICT dY, const q16_t *Q16_RESTRICT X, uint32_t lr_q32,
                                      int batch, int m, int n, int i, uint64_t seed, uint64_t cbase) {
    uint64_t nsat = 0;
    q16_t dv[4]; /* q16, not int64: the compiler then sees 32 x 32 -> 64 products (one vpmuldq) */
    const q16_t *xr[4];
    int b, j, cnt = 0;
    for (j = 0; j < n; j++) s[j] = 0;
    for (b = 0; b < batch; b++) {
        const q16_t dy = dY[(size_t)b * (size_t)m + (size_t)i];
        if (dy == 0) continue; /* ReLU-masked gradients are often exactly 0 */
        dv[cnt] = dy;
        xr[cnt] = X + (size_t)b * (size_t)n;
        if (++cnt == 4) {
            const q16_t *Q16_RESTRICT x0 = xr[0], *Q16_RESTRICT x1 = xr[1];
            const q16_t *Q16_RESTRICT x2 = xr[2], *Q16_RESTRICT x3 = xr[3];
#if Q16_NEON
            q16n_outer4(s, x0, x1, x2, x3, dv, n); /* q16_gemm_neon.h */
#else
            const int64_t d0 = (int64_t)dv[0], d1 = (int64_t)dv[1], d2 = (int64_t)dv[2], d3 = (int64_t)dv[3];
            for (j = 0; j < n; j++)
                s[j] += d0 * (int64_t)x0[j] + d1 * (int64_t)x1[j] + d2 * (int64_t)x2[j] + d3 * (int64_t)x3[j];
#endif
            cnt = 0;
        }
    }
    for (b = 0; b < cnt; b++) {
        const q16_t *Q16_RESTRICT x0 = xr[b];
        const int64_t d0 = (int64_t)dv[b];
        for (j = 0; j < n; j++) s[j] += d0 * (int64_t)x0[j];
    }
    for (j = 0; j < n; j++) {
        int64_t d = q16s_sr_mul(s[j], lr_q32, 1, q16s_rng(seed, cbase + (uint64_t)j)); /* |d| < 2^47 */
        Wi[j] = q16s_sat((int64_t)Wi[j] - d, &nsat);
    }
    return nsat;
}

/* Row i of the fused update with exact 128-bit sums (int64 could overflow). */
static uint64_t q16u_outer_row128(q16_t *Wi, const q16_t *dY, const q16_t *X, uint32_t lr_q32, int batch, int m,
                                  int n, int i, uint64_t seed, uint64_t cbase) {
    uint64_t nsat = 0;
    int b, j;
    for (j = 0; j < n; j++) {
        q16i_acc128 acc = {0u, 0u};
        int64_t d;
        for (b = 0; b < batch; b++)
            q16i_acc_add(&acc, (int64_t)dY[(size_t)b * (size_t)m + (size_t)i] *
                                   (int64_t)X[(size_t)b * (size_t)n + (size_t)j]);
        d = q16s_sr_mul128(acc.hi, acc.lo, lr_q32, q16s_rng(seed, cbase + (uint64_t)j));
        Wi[j] = q16s_sat((int64_t)Wi[j] - d, &nsat);
    }
    return nsat;
}

q16_status q16_update_outer_sr(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                               uint32_t lr_q32, int batch, int m, int n, uint64_t seed, uint64_t counter,
                               uint64_t *sat) {
    return q16_update_outer_sr_rows(W, bias, scratch, dY, X, lr_q32, batch, m, n, 0, m, seed, counter, sat);
}

/* The whole layer's checks, then rows i0..i1-1 (q16_par_update_outer_sr gives each worker a range). */
q16_status q16_update_outer_sr_rows(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                                    uint32_t lr_q32, int batch, int m, int n, int i0, int i1, uint64_t seed,
                                    uint64_t counter, uint64_t *sat) {
    uint64_t nsat = 0, prod;
    size_t wb, sb, yb, xb, bb;
    int i, b, fast;
    if (W == NULL || scratch == NULL || dY == NULL || X == NULL) return Q16_ERR_NULL;
    if (batch <= 0 || m <= 0 || n <= 0) return Q16_ERR_SIZE;
    if (i0 < 0 || i0 > i1 || i1 > m) return Q16_ERR_SIZE;
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

    /* Can every partial row sum be held in int64? (the GEMMs' bound) */
    prod = (uint64_t)q16i_maxabs(dY, (size_t)batch * (size_t)m) *
           (uint64_t)q16i_maxabs(X, (size_t)batch * (size_t)n);
    fast = prod == 0 || (uint64_t)batch <= (uint64_t)INT64_MAX / prod;

    for (i = i0; i < i1; i++) {
        q16_t *Wi = W + (size_t)i * (size_t)n;
        const uint64_t cbase = counter + (uint64_t)i * (uint64_t)n;
        nsat += fast ? q16u_outer_row(Wi, scratch, dY, X, lr_q32, batch, m, n, i, seed, cbase)
                     : q16u_outer_row128(Wi, dY, X, lr_q32, batch, m, n, i, seed, cbase);
    }
    if (bias) {
        const uint64_t cbase = counter + (uint64_t)m * (uint64_t)n;
        for (i = i0; i < i1; i++) {
            int64_t s = 0; /* |s| <= batch * 2^31 < 2^62 */
            int64_t d;
            for (b = 0; b < batch; b++) s += dY[(size_t)b * (size_t)m + (size_t)i];
            d = q16s_sr_mul(s, lr_q32, 0, q16s_rng(seed, cbase + (uint64_t)i)); /* |d| < 2^62 */
            if (d > Q16S_D_LIMIT) d = Q16S_D_LIMIT;
            if (d < -Q16S_D_LIMIT) d = -Q16S_D_LIMIT;
            bias[i] = q16s_sat((int64_t)bias[i] - d, &nsat);
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* q16_update_momentum_sr                                               */
/* ------------------------------------------------------------------ */

Q16_MV static uint64_t q16u_momentum_loop(q16_t *Q16_RESTRICT w, q16_t *Q16_RESTRICT v, const q16_t *Q16_RESTRICT g,
                                          uint32_t mu_q32, uint32_t lr_q32, int n, uint64_t seed,
                                          uint64_t counter) {
    uint64_t nsat = 0;
    int i;
    for (i = 0; i < n; i++) {
        /* |mu * v| < |v|: SR(mu * v) is within the q16 range */
        int64_t mv = q16s_sr_mul(v[i], mu_q32, 0, q16s_rng(seed, counter + (uint64_t)i));
        q16_t vi = q16s_sat(mv + (int64_t)g[i], &nsat);
        int64_t d = q16s_sr_mul(vi, lr_q32, 0, q16s_rng(seed, counter + (uint64_t)n + (uint64_t)i));
        v[i] = vi;
        w[i] = q16s_sat((int64_t)w[i] - d, &nsat);
    }
    return nsat;
}

q16_status q16_update_momentum_sr(q16_t *w, q16_t *v, const q16_t *g, uint32_t mu_q32, uint32_t lr_q32, int n,
                                  uint64_t seed, uint64_t counter, uint64_t *sat) {
    uint64_t nsat;
    size_t nb;
    if (w == NULL || v == NULL || g == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    nb = Q16I_BYTES(n);
    if (q16i_overlap(w, nb, v, nb) || q16i_overlap(w, nb, g, nb) || q16i_overlap(v, nb, g, nb))
        return Q16_ERR_OVERLAP;
    nsat = q16u_momentum_loop(w, v, g, mu_q32, lr_q32, n, seed, counter);
    if (sat) *sat += nsat;
    return Q16_OK;
}
