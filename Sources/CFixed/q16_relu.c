/*
 * q16_relu.c -- ReLU forward and backward (exact, no rounding, no saturation).
 *
 * Aliasing: the output may be exactly the input (out == x, delta == act);
 * any other overlap of the two ranges is Q16_ERR_OVERLAP.
 */
#include "q16.h"
#include "q16_gemm_impl.h"

q16_status q16_relu(q16_t *out, const q16_t *x, int n) {
    int i;
    if (out == NULL || x == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if ((const q16_t *)out != x && q16i_overlap(out, Q16I_BYTES(n), x, Q16I_BYTES(n))) return Q16_ERR_OVERLAP;
    for (i = 0; i < n; i++) {
        q16_t v = x[i];
        out[i] = v > 0 ? v : 0;
    }
    return Q16_OK;
}

q16_status q16_relu_backward(q16_t *delta, const q16_t *act, int n) {
    int i;
    if (delta == NULL || act == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if ((const q16_t *)delta != act && q16i_overlap(delta, Q16I_BYTES(n), act, Q16I_BYTES(n)))
        return Q16_ERR_OVERLAP;
    for (i = 0; i < n; i++) {
        q16_t d = delta[i];
        delta[i] = act[i] > 0 ? d : 0;
    }
    return Q16_OK;
}
