/* q16_reduce.c -- column sums (a bias gradient over a batch). */
#include "q16.h"
#include "q16_gemm_impl.h"

/* out[n] = sum_r in[r][c]: exact 64-bit sum (|sum| <= rows * 2^31 < 2^63),
   saturated once (counted). in[rows x n]. */
q16_status q16_colsum(q16_t *out, const q16_t *in, int rows, int n, uint64_t *sat) {
    if (!out || !in) return Q16_ERR_NULL;
    if (rows <= 0 || n <= 0 || rows > INT32_MAX / n) return Q16_ERR_SIZE;
    if (q16i_overlap(out, Q16I_BYTES(n), in, Q16I_BYTES((size_t)rows * (size_t)n))) return Q16_ERR_OVERLAP;
    for (int c = 0; c < n; c++) {
        int64_t s = 0;
        for (int r = 0; r < rows; r++) s += in[(size_t)r * (size_t)n + (size_t)c];
        if (s > Q16_MAX) { s = Q16_MAX; if (sat) *sat += 1; }
        if (s < Q16_MIN) { s = Q16_MIN; if (sat) *sat += 1; }
        out[c] = (q16_t)s;
    }
    return Q16_OK;
}
