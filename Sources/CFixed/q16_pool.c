/*
 * q16_pool.c -- pooling over channels-first tensors (NCHW, row-major):
 * non-overlapping max and average pooling and the global average pool.
 *
 * Windows are ph x pw with stride = window; the output is Ho = H / ph,
 * Wo = W / pw (floor: trailing rows / columns that do not fill a window are
 * ignored by the forward pass and get a zero gradient).
 *
 * Nothing here can saturate: a maximum is one of the inputs, a mean of q16
 * values lies in the q16 range, and dY / n (n >= 1) is no larger than dY. So
 * the kernels take no `sat` argument. Means are exact int64 sums divided
 * with round to nearest, ties away from zero.
 */
#include "q16.h"
#include "q16_gemm_impl.h"

/** Shape check shared by the pools: everything > 0, window within the input, batch*C*H*W fits int. */
static q16_status q16p_check(int batch, int C, int H, int W, int ph, int pw) {
    if (batch <= 0 || C <= 0 || H <= 0 || W <= 0 || ph <= 0 || pw <= 0) return Q16_ERR_SIZE;
    if (ph > H || pw > W) return Q16_ERR_SIZE;
    if (!q16i_mul_fits(batch, C) || !q16i_mul_fits(batch * C, H) || !q16i_mul_fits(batch * C * H, W))
        return Q16_ERR_SIZE;
    return Q16_OK;
}

/** round(s / n) to nearest, ties away from zero; |s| <= 2^62, 1 <= n < 2^31. The result fits q16
    when s is a sum of n q16 values (or n times one). */
static q16_t q16p_div_round(int64_t s, int64_t n) {
    const int neg = s < 0;
    const uint64_t mag = neg ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    const uint64_t q = (2u * mag + (uint64_t)n) / (2u * (uint64_t)n); /* floor(mag / n + 1/2) */
    return neg ? (q16_t)(0 - (int64_t)q) : (q16_t)q;
}

#define Q16P_BYTES(b, c, h, w) Q16I_BYTES((size_t)(b) * (size_t)(c) * (size_t)(h) * (size_t)(w))

/** The shared prologue of the pool kernels: sizes (q16p_check), then the pooled shape
    Ho x Wo, the plane count and the bytes of the full (xb) and pooled (yb) tensors. */
static q16_status q16p_shape(int batch, int C, int H, int W, int ph, int pw, int *Ho, int *Wo, size_t *planes,
                             size_t *xb, size_t *yb) {
    q16_status st = q16p_check(batch, C, H, W, ph, pw);
    if (st != Q16_OK) return st;
    *Ho = H / ph; /* ph, pw > 0 here */
    *Wo = W / pw;
    *planes = (size_t)batch * (size_t)C;
    *xb = Q16P_BYTES(batch, C, H, W);
    *yb = Q16P_BYTES(batch, C, *Ho, *Wo);
    return Q16_OK;
}

q16_status q16_maxpool_forward(q16_t *Y, int32_t *idx, const q16_t *X, int batch, int C, int H, int W, int ph,
                               int pw) {
    int Ho, Wo; /* set after the checks (ph, pw may be 0) */
    size_t plane, planes, xb, yb;
    if (Y == NULL || X == NULL) return Q16_ERR_NULL;
    {
        q16_status st = q16p_shape(batch, C, H, W, ph, pw, &Ho, &Wo, &planes, &xb, &yb);
        if (st != Q16_OK) return st;
    }
    if (q16i_overlap(Y, yb, X, xb) || q16i_overlap(idx, yb, X, xb) || q16i_overlap(idx, yb, Y, yb))
        return Q16_ERR_OVERLAP;
    for (plane = 0; plane < planes; plane++) {
        const q16_t *xp = X + plane * (size_t)H * (size_t)W;
        q16_t *yp = Y + plane * (size_t)Ho * (size_t)Wo;
        int32_t *ip = idx ? idx + plane * (size_t)Ho * (size_t)Wo : NULL;
        int i, j, u, v;
        for (i = 0; i < Ho; i++)
            for (j = 0; j < Wo; j++) {
                int32_t best_at = (int32_t)(i * ph * W + j * pw);
                q16_t best = xp[best_at];
                for (u = 0; u < ph; u++)
                    for (v = 0; v < pw; v++) {
                        const int32_t at = (int32_t)((i * ph + u) * W + j * pw + v);
                        if (xp[at] > best) { /* strict: the first maximum wins ties */
                            best = xp[at];
                            best_at = at;
                        }
                    }
                yp[(size_t)i * (size_t)Wo + (size_t)j] = best;
                if (ip) ip[(size_t)i * (size_t)Wo + (size_t)j] = best_at;
            }
    }
    return Q16_OK;
}

q16_status q16_maxpool_backward(q16_t *dX, const q16_t *dY, const int32_t *idx, int batch, int C, int H, int W,
                                int ph, int pw) {
    int Ho, Wo; /* set after the checks (ph, pw may be 0) */
    size_t plane, planes, xb, yb, n;
    if (dX == NULL || dY == NULL || idx == NULL) return Q16_ERR_NULL;
    {
        q16_status st = q16p_shape(batch, C, H, W, ph, pw, &Ho, &Wo, &planes, &xb, &yb);
        if (st != Q16_OK) return st;
    }
    if (q16i_overlap(dX, xb, dY, yb) || q16i_overlap(dX, xb, idx, yb)) return Q16_ERR_OVERLAP;
    /* every index must lie in its own window (then no two outputs share an input) */
    for (plane = 0; plane < planes; plane++) {
        const int32_t *ip = idx + plane * (size_t)Ho * (size_t)Wo;
        int i, j;
        for (i = 0; i < Ho; i++)
            for (j = 0; j < Wo; j++) {
                const int32_t k = ip[(size_t)i * (size_t)Wo + (size_t)j];
                if (k < 0 || k >= H * W || (k / W) / ph != i || (k % W) / pw != j) return Q16_ERR_DOMAIN;
            }
    }
    n = planes * (size_t)H * (size_t)W;
    for (plane = 0; plane < n; plane++) dX[plane] = 0;
    for (plane = 0; plane < planes; plane++) {
        const int32_t *ip = idx + plane * (size_t)Ho * (size_t)Wo;
        const q16_t *gp = dY + plane * (size_t)Ho * (size_t)Wo;
        q16_t *xp = dX + plane * (size_t)H * (size_t)W;
        size_t o, no = (size_t)Ho * (size_t)Wo;
        for (o = 0; o < no; o++) xp[ip[o]] = gp[o];
    }
    return Q16_OK;
}

q16_status q16_avgpool_forward(q16_t *Y, const q16_t *X, int batch, int C, int H, int W, int ph, int pw) {
    int Ho, Wo; /* set after the checks (ph, pw may be 0) */
    size_t plane, planes, xb, yb;
    if (Y == NULL || X == NULL) return Q16_ERR_NULL;
    {
        q16_status st = q16p_shape(batch, C, H, W, ph, pw, &Ho, &Wo, &planes, &xb, &yb);
        if (st != Q16_OK) return st;
    }
    if (q16i_overlap(Y, yb, X, xb)) return Q16_ERR_OVERLAP;
    for (plane = 0; plane < planes; plane++) {
        const q16_t *xp = X + plane * (size_t)H * (size_t)W;
        q16_t *yp = Y + plane * (size_t)Ho * (size_t)Wo;
        int i, j, u, v;
        for (i = 0; i < Ho; i++)
            for (j = 0; j < Wo; j++) {
                int64_t s = 0; /* |s| <= H*W * 2^31 < 2^62 */
                for (u = 0; u < ph; u++) {
                    const q16_t *row = xp + (size_t)(i * ph + u) * (size_t)W + (size_t)(j * pw);
                    for (v = 0; v < pw; v++) s += row[v];
                }
                yp[(size_t)i * (size_t)Wo + (size_t)j] = q16p_div_round(s, (int64_t)ph * pw);
            }
    }
    return Q16_OK;
}

q16_status q16_avgpool_backward(q16_t *dX, const q16_t *dY, int batch, int C, int H, int W, int ph, int pw) {
    int Ho, Wo; /* set after the checks (ph, pw may be 0) */
    size_t plane, planes, xb, yb;
    if (dX == NULL || dY == NULL) return Q16_ERR_NULL;
    {
        q16_status st = q16p_shape(batch, C, H, W, ph, pw, &Ho, &Wo, &planes, &xb, &yb);
        if (st != Q16_OK) return st;
    }
    if (q16i_overlap(dX, xb, dY, yb)) return Q16_ERR_OVERLAP;
    for (plane = 0; plane < planes; plane++) {
        const q16_t *gp = dY + plane * (size_t)Ho * (size_t)Wo;
        q16_t *xp = dX + plane * (size_t)H * (size_t)W;
        int y, x;
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++) {
                const int i = y / ph, j = x / pw;
                xp[(size_t)y * (size_t)W + (size_t)x] =
                    (i < Ho && j < Wo) ? q16p_div_round(gp[(size_t)i * (size_t)Wo + (size_t)j], (int64_t)ph * pw) : 0;
            }
    }
    return Q16_OK;
}

q16_status q16_global_avgpool_forward(q16_t *Y, const q16_t *X, int batch, int C, int H, int W) {
    return q16_avgpool_forward(Y, X, batch, C, H, W, H, W);
}

q16_status q16_global_avgpool_backward(q16_t *dX, const q16_t *dY, int batch, int C, int H, int W) {
    return q16_avgpool_backward(dX, dY, batch, C, H, W, H, W);
}
