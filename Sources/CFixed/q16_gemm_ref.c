/*
 * q16_gemm_ref.c -- the readable reference for dot / gemv / gemm.
 *
 * Plain loops. Every product a*b is exact in int64 (|a*b| <= 2^62); the sum
 * of products is accumulated exactly in a 128-bit two's complement
 * accumulator made of two uint64_t halves (no __int128, so this also builds
 * for 32-bit ARM). An optional bias is added exactly as bias * 2^16. The exact
 * Q32.32 sum is then rounded once to nearest (ties away from zero) at bit 16
 * and saturated once to [Q16_MIN, Q16_MAX] (each clamp counted in *sat).
 *
 * The fast kernels in q16_gemm.c must produce bit-identical results.
 */
#include "q16.h"
#include "q16_gemm_impl.h"

q16_status q16_ref_dot(q16_t *out, const q16_t *a, const q16_t *b, int n, uint64_t *sat) {
    q16i_acc128 acc = {0u, 0u};
    int i;
    q16_status st = q16i_check_dot(out, a, b, n);
    if (st != Q16_OK) return st;
    for (i = 0; i < n; i++) q16i_acc_add(&acc, (int64_t)a[i] * b[i]);
    *out = q16i_round_sat128(acc, sat);
    return Q16_OK;
}

q16_status q16_ref_gemv(q16_t *y, const q16_t *A, const q16_t *x, const q16_t *bias,
                        int m, int n, uint64_t *sat) {
    int i, j;
    q16_status st = q16i_check_gemv(y, A, x, bias, m, n);
    if (st != Q16_OK) return st;
    for (i = 0; i < m; i++) {
        const q16_t *row = A + (size_t)i * (size_t)n;
        q16i_acc128 acc = {0u, 0u};
        if (bias) q16i_acc_add(&acc, q16i_bias_q32(bias[i]));
        for (j = 0; j < n; j++) q16i_acc_add(&acc, (int64_t)row[j] * x[j]);
        y[i] = q16i_round_sat128(acc, sat);
    }
    return Q16_OK;
}

/* C[i][j] = sum_p A[i][p] * B[p][j];  A[m x k], B[k x n] */
q16_status q16_ref_gemm_nn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat) {
    int i, j, p;
    q16_status st = q16i_check_gemm(C, A, B, NULL, m, n, k);
    if (st != Q16_OK) return st;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            q16i_acc128 acc = {0u, 0u};
            for (p = 0; p < k; p++)
                q16i_acc_add(&acc, (int64_t)A[(size_t)i * (size_t)k + (size_t)p] *
                                       B[(size_t)p * (size_t)n + (size_t)j]);
            C[(size_t)i * (size_t)n + (size_t)j] = q16i_round_sat128(acc, sat);
        }
    }
    return Q16_OK;
}

/* C[i][j] = sum_p A[p][i] * B[p][j];  A[k x m], B[k x n] */
q16_status q16_ref_gemm_tn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat) {
    int i, j, p;
    q16_status st = q16i_check_gemm(C, A, B, NULL, m, n, k);
    if (st != Q16_OK) return st;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            q16i_acc128 acc = {0u, 0u};
            for (p = 0; p < k; p++)
                q16i_acc_add(&acc, (int64_t)A[(size_t)p * (size_t)m + (size_t)i] *
                                       B[(size_t)p * (size_t)n + (size_t)j]);
            C[(size_t)i * (size_t)n + (size_t)j] = q16i_round_sat128(acc, sat);
        }
    }
    return Q16_OK;
}

/* C[i][j] = bias[j] + sum_p A[i][p] * B[j][p];  A[m x k], B[n x k], bias[n] */
q16_status q16_ref_gemm_nt(q16_t *C, const q16_t *A, const q16_t *B, const q16_t *bias,
                           int m, int n, int k, uint64_t *sat) {
    int i, j, p;
    q16_status st = q16i_check_gemm(C, A, B, bias, m, n, k);
    if (st != Q16_OK) return st;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            q16i_acc128 acc = {0u, 0u};
            if (bias) q16i_acc_add(&acc, q16i_bias_q32(bias[j]));
            for (p = 0; p < k; p++)
                q16i_acc_add(&acc, (int64_t)A[(size_t)i * (size_t)k + (size_t)p] *
                                       B[(size_t)j * (size_t)k + (size_t)p]);
            C[(size_t)i * (size_t)n + (size_t)j] = q16i_round_sat128(acc, sat);
        }
    }
    return Q16_OK;
}
