/*
 * q16_softmax.c -- row-wise softmax and softmax cross-entropy, integer only.
 *
 * Rules:
 *  - one rounding (nearest, ties away from zero) of a near-exact value per
 *    output; saturation (only the loss can saturate) clamped and counted in
 *    *sat (sat may be NULL);
 *  - no allocation, no globals; no undefined behaviour (64-bit
 *    intermediates, no signed overflow, no shift of a negative value);
 *  - in place allowed (p == z, grad == z): element i is written only after
 *    everything that reads z[i] in that row is done.
 *
 * Method, per row (m = max_j z_j, x_j = z_j - m <= 0):
 *  - e_j = exp(x_j) in Q32 (round(exp * 2^32), 0 below x = -23), from the
 *    same integer exp core as q16_exp (relative error < 2^-58): the internal
 *    exponentials are 2^16 times finer than Q16 ones, so small terms are not
 *    lost and the sum keeps its accuracy for wide rows;
 *  - S = sum_j e_j, EXACT in uint64: every e_j <= 2^32 and cols < 2^31,
 *    so S < 2^63; S >= 2^32 (the max element contributes exactly 2^32);
 *  - p_j = round(e_j * 2^16 / S): a correctly rounded integer division of the
 *    Q32 values (e_j * 2^16 <= 2^48), so p_j is within 0.5 LSB of e_j / S;
 *  - loss = ln(S / 2^32) - x_y: ln via the integer log core in Q56, rounded
 *    once to Q16; -x_y is an exact Q16 integer added after rounding (exact,
 *    both terms are >= 0). Above Q16_MAX the loss saturates (counted);
 *  - grad_j = p_j - [j == y] (exact, in [-1, 1]).
 */
#include "q16.h"
#include "q16_internal.h"

/* exp(x / 2^16) * 2^32 rounded, for x <= 0 given as int64 (any magnitude). */
static uint64_t exp_q32(int64_t x) {
    if (x < -23 * 65536) return 0;  /* exp(-23) * 2^32 = 0.44 < 1/2 */
    int k;
    uint64_t e = q16__exp_q62((int32_t)x, &k);
    unsigned s = (unsigned)(30 - k);   /* k in [-33, 0] -> s in [30, 63] */
    return (e >> s) + ((e >> (s - 1u)) & 1u);
}

/* Checks shared by both kernels; rows * cols must fit in int. */
static q16_status check_size(int rows, int cols) {
    if (rows <= 0 || cols <= 0) return Q16_ERR_SIZE;
    if ((int64_t)rows * (int64_t)cols > (int64_t)0x7FFFFFFF) return Q16_ERR_SIZE;
    return Q16_OK;
}

/* Row max, sum of Q32 exponentials (exact). */
static uint64_t row_sum(const q16_t *z, int cols, q16_t *max_out) {
    q16_t m = z[0];
    for (int j = 1; j < cols; ++j) if (z[j] > m) m = z[j];
    uint64_t S = 0;
    for (int j = 0; j < cols; ++j) S += exp_q32((int64_t)z[j] - (int64_t)m);
    *max_out = m;
    return S;
}

/* round(e * 2^16 / S), e <= 2^32 <= S: result in [0, 2^16]. */
static q16_t prob(uint64_t e, uint64_t S) {
    uint64_t n = e << 16;
    uint64_t q = n / S, r = n % S;
    if (r >= S - r) q += 1u; /* 2r >= S, ties away from zero */
    return (q16_t)q;
}

q16_status q16_softmax(q16_t *p, const q16_t *z, int rows, int cols, uint64_t *sat) {
    (void)sat; /* every probability lies in [0, 1]: nothing can saturate */
    if (!p || !z) return Q16_ERR_NULL;
    q16_status st = check_size(rows, cols);
    if (st != Q16_OK) return st;
    for (int r = 0; r < rows; ++r) {
        const q16_t *zr = z + (size_t)r * (size_t)cols;
        q16_t *pr = p + (size_t)r * (size_t)cols;
        q16_t m;
        uint64_t S = row_sum(zr, cols, &m);
        /* p[j] depends only on z[j], m and S: safe when p == z. */
        for (int j = 0; j < cols; ++j) pr[j] = prob(exp_q32((int64_t)zr[j] - (int64_t)m), S);
    }
    return Q16_OK;
}

q16_status q16_softmax_xent(q16_t *grad, q16_t *loss, const q16_t *z, const int32_t *labels,
                            int rows, int cols, uint64_t *sat) {
    if (!z || !labels) return Q16_ERR_NULL;
    q16_status st = check_size(rows, cols);
    if (st != Q16_OK) return st;
    /* All labels are checked before anything is written. */
    for (int r = 0; r < rows; ++r)
        if (labels[r] < 0 || labels[r] >= cols) return Q16_ERR_LABEL;
    for (int r = 0; r < rows; ++r) {
        const q16_t *zr = z + (size_t)r * (size_t)cols;
        int y = (int)labels[r];
        q16_t m;
        uint64_t S = row_sum(zr, cols, &m);
        int64_t gap = (int64_t)m - (int64_t)zr[y]; /* -x_y, exact Q16, in [0, 2^32) */
        if (loss) {
            /* ln(S / 2^32) in Q56 (>= 0 since S >= 2^32), rounded once to Q16. */
            int64_t lse = q16i_round_shift(q16__ln_q56(S, 32), 40);
            loss[r] = q16i_sat64(lse + gap, sat);
        }
        if (grad) {
            q16_t *gr = grad + (size_t)r * (size_t)cols;
            for (int j = 0; j < cols; ++j) {
                q16_t pj = prob(exp_q32((int64_t)zr[j] - (int64_t)m), S);
                gr[j] = j == y ? pj - Q16_ONE : pj;
            }
        }
    }
    return Q16_OK;
}
