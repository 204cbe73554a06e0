/*
 * q16_conv_ref.c -- the readable reference for the convolution kernels.
 *
 * Plain loops straight from the formulas in q16.h. Every product is exact in
 * int64 (|a*b| <= 2^62) and every sum is accumulated exactly in the 128-bit
 * two's complement accumulator of q16_gemm_impl.h (no __int128, so this also
 * builds for 32-bit ARM). A bias enters the sum as bias * 2^16. The exact
 * Q32.32 sum is rounded once to nearest (ties away from zero) and saturated
 * once (counted), or, in the fused updates, stochastically rounded with the
 * q16_update_outer_sr rule or stepped with the dense Riemannian rule
 * (q16_riemannian_impl.h).
 *
 * The fast kernels in q16_conv.c must produce bit-identical results (values,
 * status and saturation counts).
 */
#include "q16.h"
#include "q16_conv_impl.h"

#define IDX4(a, b, c, d, nb, nc, nd) \
    ((((size_t)(a) * (size_t)(nb) + (size_t)(b)) * (size_t)(nc) + (size_t)(c)) * (size_t)(nd) + (size_t)(d))

/* Y[b][f][i][j] = bias[f] + sum_{c,u,v} Wt[f][c][u][v] * X[b][c][i*sh + u - pt][j*sw + v - pl] */
q16_status q16_ref_conv_forward(q16_t *Y, const q16_t *X, const q16_t *Wt, const q16_t *bias, int batch,
                                const q16_conv_params *p, uint64_t *sat) {
    int b, f, i, j, c, u, v;
    q16_status st = q16c_check_forward(Y, NULL, 0, X, Wt, bias, batch, p);
    if (st != Q16_OK) return st;
    for (b = 0; b < batch; b++)
        for (f = 0; f < p->F; f++)
            for (i = 0; i < p->Ho; i++)
                for (j = 0; j < p->Wo; j++) {
                    q16i_acc128 acc = {0u, 0u};
                    if (bias) q16i_acc_add(&acc, q16i_bias_q32(bias[f]));
                    for (c = 0; c < p->C; c++)
                        for (u = 0; u < p->kh; u++) {
                            const int y = i * p->stride_h + u - p->pad_top;
                            if (y < 0 || y >= p->H) continue;
                            for (v = 0; v < p->kw; v++) {
                                const int x = j * p->stride_w + v - p->pad_left;
                                if (x < 0 || x >= p->W) continue;
                                q16i_acc_add(&acc, (int64_t)Wt[IDX4(f, c, u, v, p->C, p->kh, p->kw)] *
                                                       (int64_t)X[IDX4(b, c, y, x, p->C, p->H, p->W)]);
                            }
                        }
                    Y[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)] = q16i_round_sat128(acc, sat);
                }
    return Q16_OK;
}

/*
 * dX[b][c][y][x] = sum over (f, u, v) with y = i*sh + u - pt, x = j*sw + v - pl for some
 * output (i, j) of Wt[f][c][u][v] * dY[b][f][i][j].
 */
q16_status q16_ref_conv_backward_data(q16_t *dX, const q16_t *dY, const q16_t *Wt, int batch,
                                      const q16_conv_params *p, uint64_t *sat) {
    int b, c, y, x, f, u, v;
    q16_status st = q16c_check_backward_data(dX, NULL, 0, dY, Wt, batch, p);
    if (st != Q16_OK) return st;
    for (b = 0; b < batch; b++)
        for (c = 0; c < p->C; c++)
            for (y = 0; y < p->H; y++)
                for (x = 0; x < p->W; x++) {
                    q16i_acc128 acc = {0u, 0u};
                    for (f = 0; f < p->F; f++)
                        for (u = 0; u < p->kh; u++) {
                            const int ty = y + p->pad_top - u; /* = i * sh */
                            int i;
                            if (ty < 0 || ty % p->stride_h != 0) continue;
                            i = ty / p->stride_h;
                            if (i >= p->Ho) continue;
                            for (v = 0; v < p->kw; v++) {
                                const int tx = x + p->pad_left - v;
                                int j;
                                if (tx < 0 || tx % p->stride_w != 0) continue;
                                j = tx / p->stride_w;
                                if (j >= p->Wo) continue;
                                q16i_acc_add(&acc, (int64_t)Wt[IDX4(f, c, u, v, p->C, p->kh, p->kw)] *
                                                       (int64_t)dY[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)]);
                            }
                        }
                    dX[IDX4(b, c, y, x, p->C, p->H, p->W)] = q16i_round_sat128(acc, sat);
                }
    return Q16_OK;
}

/*
 * The exact Q32.32 sum s[f][c][u][v] = sum_{b,i,j} dY[b][f][i][j] * X[b][c][i*sh + u - pt][j*sw + v - pl]
 * of weight w = ((f*C + c)*kh + u)*kw + v.
 */
static q16i_acc128 q16c_ref_weight_sum(const q16_t *dY, const q16_t *X, int batch, const q16_conv_params *p,
                                       size_t w) {
    const int v = (int)(w % (size_t)p->kw), u = (int)(w / (size_t)p->kw % (size_t)p->kh);
    const int c = (int)(w / ((size_t)p->kw * (size_t)p->kh) % (size_t)p->C);
    const int f = (int)(w / ((size_t)p->kw * (size_t)p->kh * (size_t)p->C));
    q16i_acc128 acc = {0u, 0u};
    int b, i, j;
    for (b = 0; b < batch; b++)
        for (i = 0; i < p->Ho; i++) {
            const int y = i * p->stride_h + u - p->pad_top;
            if (y < 0 || y >= p->H) continue;
            for (j = 0; j < p->Wo; j++) {
                const int x = j * p->stride_w + v - p->pad_left;
                if (x < 0 || x >= p->W) continue;
                q16i_acc_add(&acc, (int64_t)dY[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)] *
                                       (int64_t)X[IDX4(b, c, y, x, p->C, p->H, p->W)]);
            }
        }
    return acc;
}

/* sum_{b,i,j} dY[b][f][i][j]: |sum| <= 2^31 * 2^31 (batch*F*Ho*Wo fits int). */
static int64_t q16c_ref_bias_sum(const q16_t *dY, int batch, const q16_conv_params *p, int f) {
    int64_t s = 0;
    int b, i, j;
    for (b = 0; b < batch; b++)
        for (i = 0; i < p->Ho; i++)
            for (j = 0; j < p->Wo; j++) s += dY[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)];
    return s;
}

q16_status q16_ref_conv_weight_grad(q16_t *dW, q16_t *dB, const q16_t *dY, const q16_t *X, int batch,
                                    const q16_conv_params *p, uint64_t *sat) {
    int f;
    size_t w;
    q16_status st = q16c_check_weights(dW, dB, NULL, 0, dY, X, batch, p);
    if (st != Q16_OK) return st;
    for (w = 0; w < Q16C_W_WORDS(p); w++) dW[w] = q16i_round_sat128(q16c_ref_weight_sum(dY, X, batch, p, w), sat);
    if (dB) {
        uint64_t nsat = 0;
        for (f = 0; f < p->F; f++) dB[f] = q16s_sat(q16c_ref_bias_sum(dY, batch, p, f), &nsat);
        if (sat) *sat += nsat;
    }
    return Q16_OK;
}

q16_status q16_ref_conv_backward_weights_sr(q16_t *W, q16_t *bias, const q16_t *dY, const q16_t *X,
                                            uint32_t lr_q32, int batch, const q16_conv_params *p, uint64_t seed,
                                            uint64_t counter, uint64_t *sat) {
    int f;
    size_t w;
    uint64_t nsat = 0;
    q16_status st = q16c_check_weights(W, bias, NULL, 0, dY, X, batch, p);
    if (st != Q16_OK) return st;
    for (w = 0; w < Q16C_W_WORDS(p); w++) {
        q16i_acc128 s = q16c_ref_weight_sum(dY, X, batch, p, w);
        int64_t d = q16s_sr_mul128(s.hi, s.lo, lr_q32, q16_rng_u32(seed, counter + (uint64_t)w));
        W[w] = q16s_sat((int64_t)W[w] - d, &nsat);
    }
    if (bias) {
        const uint64_t cb = counter + (uint64_t)Q16C_W_WORDS(p);
        for (f = 0; f < p->F; f++) {
            int64_t d = q16s_bias_step(q16c_ref_bias_sum(dY, batch, p, f), lr_q32, q16_rng_u32(seed, cb + (uint64_t)f));
            bias[f] = q16s_sat((int64_t)bias[f] - d, &nsat);
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* The dense Riemannian step (q16_riemannian_impl.h) per weight, on the exact 128-bit sums clamped to +-2^62. */
q16_status q16_ref_conv_backward_weights_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, const q16_t *dY,
                                                       const q16_t *X, uint32_t lr_q32, uint32_t gscale_q32,
                                                       q16_t alpha_q16, uint32_t rho_q32, q16_phi_kind kind, int batch,
                                                       const q16_conv_params *p, uint64_t seed, uint64_t counter,
                                                       uint64_t *sat) {
    int f;
    size_t w;
    uint64_t nsat = 0;
    q16_t *ph = kind == Q16_PHI_GRAD_SQUARED ? phi : NULL; /* WEIGHT_ABS: phi is not touched */
    q16_status st = q16c_check_weights_riemannian(W, bias, phi, NULL, 0, dY, X, alpha_q16, kind, batch, p);
    if (st != Q16_OK) return st;
    for (w = 0; w < Q16C_W_WORDS(p); w++) {
        const int64_t s = q16r_clamp128(q16c_ref_weight_sum(dY, X, batch, p, w), &nsat);
        W[w] = q16r_step(W[w], ph ? ph + w : NULL, s, lr_q32, gscale_q32, alpha_q16, rho_q32, kind, seed,
                         counter + (uint64_t)w, &nsat);
    }
    if (bias) {
        const size_t wn = Q16C_W_WORDS(p);
        for (f = 0; f < p->F; f++) {
            const size_t at = wn + (size_t)f;
            const int64_t s = q16r_bias_s(q16c_ref_bias_sum(dY, batch, p, f), &nsat);
            bias[f] = q16r_step(bias[f], ph ? ph + at : NULL, s, lr_q32, gscale_q32, alpha_q16, rho_q32, kind, seed,
                                counter + (uint64_t)at, &nsat);
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}
