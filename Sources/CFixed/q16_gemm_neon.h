/*
 * q16_gemm_neon.h -- NEON (Advanced SIMD) sums of the GEMM / conv microkernels
 * for aarch64 and armv7, included by q16_gemm_impl.h.
 *
 * Q16_NEON is 1 when the compiler targets NEON (__ARM_NEON) and Q16_NO_NEON is
 * not defined (the portable board builds define it); then
 *   - q16i_ax_sums (q16_gemm_impl.h: gemm nn / tn, the packed gemm_nt, the conv
 *     forward / backward-data GEMM) uses q16n_ax_sums, and
 *   - the dot-form blocks (q16_gemm.c: gemm_nt, gemv, dot; q16_conv.c: the
 *     weight-gradient sums) use q16n_dot_sums, and
 *   - q16_update_outer_sr's row sums (q16_update.c) use q16n_outer4.
 * Both multiply two int32 lanes into two int64 lanes and accumulate in one
 * instruction: SMLAL (vmlal_s32 / vmlal_n_s32; aarch64 also SMLAL2 on the high
 * halves of a q register, vmlal_high_*). The products are the exact Q32.32
 * products of the portable code and, in the no-overflow regime that the callers'
 * pre-passes guarantee, every partial sum is an exact int64: any summation order
 * gives the same integers, so the results are bit-identical to the portable and
 * the 128-bit reference kernels (tools/cross/kernel_check.c checks it under qemu).
 *
 * Register budget: aarch64 has 32 q registers, armv7 16. An axpy column group is
 * Q16N_AX_GROUP columns (8 on aarch64: 4 rows x 4 int64x2 = 16 accumulators; 4 on
 * armv7: 8 accumulators), and a dot block is Q16N_DT_ROWS rows of A at a time (4 on
 * aarch64: 16 accumulators; 2 on armv7: 8), so the accumulators stay in registers.
 *
 * Not part of the public API (it lives outside include/).
 */
#ifndef Q16_GEMM_NEON_H
#define Q16_GEMM_NEON_H

#if defined(__ARM_NEON) && !defined(Q16_NO_NEON)
#define Q16_NEON 1
#else
#define Q16_NEON 0
#endif

#if Q16_NEON
#include <arm_neon.h>

#if defined(__aarch64__)
#define Q16N_AX_GROUP 8
#define Q16N_DT_ROWS 4
#else
#define Q16N_AX_GROUP 4
#define Q16N_DT_ROWS 2
#endif
#define Q16N_AX_MAX_MR 4 /* = AX_MAX_MR (q16_gemm_impl.h) */
#define Q16N_DT_MAX 4    /* columns of q16n_dot_sums' acc (q16_gemm.c DT_RB, q16_conv.c WG_RB) */

/* Sum of the two int64 lanes (exact: the caller guarantees no overflow). */
Q16_INLINE int64_t q16n_hadd(int64x2_t v) {
#if defined(__aarch64__)
    return vaddvq_s64(v);
#else
    return vgetq_lane_s64(v, 0) + vgetq_lane_s64(v, 1);
#endif
}

/*
 * Columns [c0, c0 + np2 * 2) (np2 column pairs, np2 <= Q16N_AX_GROUP / 2) of the axpy tile
 * sums, plus column c0 + 2 * np2 when `odd` (scalar): acc[r][c] = init(r) + sum_p A(r, p) * B[p][c].
 */
Q16_INLINE void q16n_ax_group(int64_t acc[][AX_MAX_NR], const q16_t *Q16_RESTRICT rbias, const q16_t *Q16_RESTRICT A,
                              size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr,
                              int c0, int np2, int odd) {
    int64x2_t s[Q16N_AX_MAX_MR][Q16N_AX_GROUP / 2];
    int64_t t[Q16N_AX_MAX_MR];
    int32x2_t bv[Q16N_AX_GROUP / 2], av[Q16N_AX_MAX_MR / 2];
    int r, c, p;
    for (c = 0; c < Q16N_AX_GROUP / 2; c++) bv[c] = vdup_n_s32(0); /* (gcc's -Wmaybe-uninitialized) */
    for (r = 0; r < Q16N_AX_MAX_MR / 2; r++) av[r] = vdup_n_s32(0);
    for (r = 0; r < mr; r++) {
        const int64_t init = rbias ? q16i_bias_q32(rbias[r]) : 0;
        for (c = 0; c < np2; c++) s[r][c] = vdupq_n_s64(init);
        t[r] = init;
    }
    for (p = 0; p < k; p++) {
        const q16_t *Q16_RESTRICT b = B + (size_t)p * ldb + (size_t)c0;
        const q16_t *Q16_RESTRICT a = A + (size_t)p * a_cs;
        for (c = 0; c < np2; c++) bv[c] = vld1_s32(b + 2 * c);
        /* A(r, p) straight into NEON lanes (no core-register round trip): two rows per d register */
        for (r = 0; r < mr; r++)
            av[r / 2] = r % 2 ? vld1_lane_s32(a + (size_t)r * a_rs, av[r / 2], 1)
                              : vld1_dup_s32(a + (size_t)r * a_rs);
        for (r = 0; r < mr; r++) {
            for (c = 0; c < np2; c++) /* SMLAL by element */
                s[r][c] = r % 2 ? vmlal_lane_s32(s[r][c], bv[c], av[r / 2], 1)
                                : vmlal_lane_s32(s[r][c], bv[c], av[r / 2], 0);
            if (odd) t[r] += (int64_t)a[(size_t)r * a_rs] * (int64_t)b[2 * np2];
        }
    }
    for (r = 0; r < mr; r++) {
        for (c = 0; c < np2; c++) vst1q_s64(&acc[r][c0 + 2 * c], s[r][c]);
        if (odd) acc[r][c0 + 2 * np2] = t[r];
    }
}

/* q16i_ax_sums (q16_gemm_impl.h) with NEON: the same exact int64 sums. */
Q16_INLINE void q16n_ax_sums(int64_t acc[][AX_MAX_NR], const q16_t *Q16_RESTRICT rbias, const q16_t *Q16_RESTRICT A,
                             size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr,
                             int nr) {
    int c0 = 0;
    for (; c0 + Q16N_AX_GROUP <= nr; c0 += Q16N_AX_GROUP)
        q16n_ax_group(acc, rbias, A, a_rs, a_cs, B, ldb, k, mr, c0, Q16N_AX_GROUP / 2, 0);
    if (c0 < nr) q16n_ax_group(acc, rbias, A, a_rs, a_cs, B, ldb, k, mr, c0, (nr - c0) / 2, (nr - c0) & 1);
}

/*
 * acc[r][c] += sum_{p < k} A[r*lda + p] * B[c*ldb + p] for r < rn (<= Q16N_DT_ROWS),
 * c < rb (<= Q16N_DT_MAX), 4 values of p per step (one q register per row of A and
 * of B; aarch64: SMLAL on the low halves, SMLAL2 on the high halves; armv7: two
 * SMLAL into the same accumulator), the last k % 4 products in scalar code.
 */
Q16_INLINE void q16n_dot_rows(int64_t acc[][Q16N_DT_MAX], const q16_t *Q16_RESTRICT A, size_t lda,
                              const q16_t *Q16_RESTRICT B, size_t ldb, size_t k, int rn, int rb) {
    const size_t k4 = k - k % 4u;
    int64x2_t s[Q16N_DT_ROWS][Q16N_DT_MAX];
    int r, c;
    size_t p;
    for (r = 0; r < rn; r++)
        for (c = 0; c < rb; c++) s[r][c] = vdupq_n_s64(0);
    for (p = 0; p < k4; p += 4) {
        int32x4_t av[Q16N_DT_ROWS], bv[Q16N_DT_MAX];
        for (r = 0; r < rn; r++) av[r] = vld1q_s32(A + (size_t)r * lda + p);
        for (c = 0; c < rb; c++) bv[c] = vld1q_s32(B + (size_t)c * ldb + p);
        for (r = 0; r < rn; r++)
            for (c = 0; c < rb; c++) {
#if defined(__aarch64__)
                s[r][c] = vmlal_s32(s[r][c], vget_low_s32(av[r]), vget_low_s32(bv[c]));
                s[r][c] = vmlal_high_s32(s[r][c], av[r], bv[c]);
#else
                s[r][c] = vmlal_s32(s[r][c], vget_low_s32(av[r]), vget_low_s32(bv[c]));
                s[r][c] = vmlal_s32(s[r][c], vget_high_s32(av[r]), vget_high_s32(bv[c]));
#endif
            }
    }
    for (r = 0; r < rn; r++)
        for (c = 0; c < rb; c++) acc[r][c] += q16n_hadd(s[r][c]);
    for (p = k4; p < k; p++)
        for (r = 0; r < rn; r++)
            for (c = 0; c < rb; c++) acc[r][c] += (int64_t)A[(size_t)r * lda + p] * (int64_t)B[(size_t)c * ldb + p];
}

/*
 * q16_gemm.c's dot-form block sums (and q16_conv.c's weight-gradient sums):
 * acc[r][c] += sum_{p < k} A[r*lda + p] * B[c*ldb + p] for r < ra, c < rb (<= Q16N_DT_MAX),
 * Q16N_DT_ROWS rows of A at a time, then single rows.
 */
Q16_INLINE void q16n_dot_sums(int64_t acc[][Q16N_DT_MAX], const q16_t *Q16_RESTRICT A, size_t lda,
                              const q16_t *Q16_RESTRICT B, size_t ldb, size_t k, int ra, int rb) {
    int r0 = 0;
    for (; r0 + Q16N_DT_ROWS <= ra; r0 += Q16N_DT_ROWS)
        q16n_dot_rows(acc + r0, A + (size_t)r0 * lda, lda, B, ldb, k, Q16N_DT_ROWS, rb);
    for (; r0 < ra; r0++) q16n_dot_rows(acc + r0, A + (size_t)r0 * lda, lda, B, ldb, k, 1, rb);
}
/*
 * q16_update.c's fused outer update, four rows of X at a time:
 * s[j] += d0*x0[j] + d1*x1[j] + d2*x2[j] + d3*x3[j] for j < n; four j per step (two
 * int64x2 of s loaded and stored once, eight SMLAL by scalar); the caller guarantees
 * no overflow.
 */
Q16_INLINE void q16n_outer4(int64_t *Q16_RESTRICT s, const q16_t *Q16_RESTRICT x0, const q16_t *Q16_RESTRICT x1,
                            const q16_t *Q16_RESTRICT x2, const q16_t *Q16_RESTRICT x3, const q16_t *d, int n) {
    const int32x2_t d01 = vld1_s32(d), d23 = vld1_s32(d + 2);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        int64x2_t lo = vld1q_s64(s + j), hi = vld1q_s64(s + j + 2);
        const int32x4_t v0 = vld1q_s32(x0 + j), v1 = vld1q_s32(x1 + j);
        const int32x4_t v2 = vld1q_s32(x2 + j), v3 = vld1q_s32(x3 + j);
        lo = vmlal_lane_s32(lo, vget_low_s32(v0), d01, 0);
        lo = vmlal_lane_s32(lo, vget_low_s32(v1), d01, 1);
        lo = vmlal_lane_s32(lo, vget_low_s32(v2), d23, 0);
        lo = vmlal_lane_s32(lo, vget_low_s32(v3), d23, 1);
#if defined(__aarch64__)
        hi = vmlal_high_lane_s32(hi, v0, d01, 0);
        hi = vmlal_high_lane_s32(hi, v1, d01, 1);
        hi = vmlal_high_lane_s32(hi, v2, d23, 0);
        hi = vmlal_high_lane_s32(hi, v3, d23, 1);
#else
        hi = vmlal_lane_s32(hi, vget_high_s32(v0), d01, 0);
        hi = vmlal_lane_s32(hi, vget_high_s32(v1), d01, 1);
        hi = vmlal_lane_s32(hi, vget_high_s32(v2), d23, 0);
        hi = vmlal_lane_s32(hi, vget_high_s32(v3), d23, 1);
#endif
        vst1q_s64(s + j, lo);
        vst1q_s64(s + j + 2, hi);
    }
    for (; j < n; j++)
        s[j] += (int64_t)d[0] * x0[j] + (int64_t)d[1] * x1[j] + (int64_t)d[2] * x2[j] + (int64_t)d[3] * x3[j];
}
#endif /* Q16_NEON */

#endif /* Q16_GEMM_NEON_H */
