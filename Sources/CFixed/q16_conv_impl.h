/*
 * q16_conv_impl.h -- private helpers shared by q16_conv.c (fast kernels) and
 * q16_conv_ref.c (reference kernels): argument validation and shape helpers
 * of the convolution kernels. The stochastic-rounding steps and the inlined
 * generator come from q16_sr_impl.h, shared with q16_update.c; the Riemannian
 * per-parameter step from q16_riemannian_impl.h, shared with q16_riemannian.c.
 *
 * Not part of the public API (it lives outside include/).
 */
#ifndef Q16_CONV_IMPL_H
#define Q16_CONV_IMPL_H

#include "q16.h"
#include "q16_gemm_impl.h"
#include "q16_sr_impl.h"
#include "q16_riemannian_impl.h"

/* ---------------- shape helpers ---------------- */

/** Words of one input sample (C*H*W), of one output sample (F*Ho*Wo), of the weights (F*C*kh*kw). */
#define Q16C_IN_WORDS(p) ((size_t)(p)->C * (size_t)(p)->H * (size_t)(p)->W)
#define Q16C_OUT_WORDS(p) ((size_t)(p)->F * (size_t)(p)->Ho * (size_t)(p)->Wo)
#define Q16C_K(p) ((size_t)(p)->C * (size_t)(p)->kh * (size_t)(p)->kw)
#define Q16C_W_WORDS(p) ((size_t)(p)->F * Q16C_K(p))

/** Number of x in [0, n) with x = start + step * t for t >= 0: the phase sizes (start < n). */
static Q16I_UNUSED int q16c_phase_len(int n, int start, int step) {
    return start < n ? (n - 1 - start) / step + 1 : 0;
}

/**
 * Validation of a kernel call: the parameters (q16_conv_check), batch > 0, and
 * batch * C*H*W and batch * F*Ho*Wo fit int.
 */
static Q16I_UNUSED q16_status q16c_check_batch(const q16_conv_params *p, int batch) {
    q16_status st = q16_conv_check(p);
    if (st != Q16_OK) return st;
    if (batch <= 0) return Q16_ERR_SIZE;
    if (Q16C_IN_WORDS(p) > (size_t)(INT_MAX / batch) || Q16C_OUT_WORDS(p) > (size_t)(INT_MAX / batch))
        return Q16_ERR_SIZE;
    return Q16_OK;
}

/** Overlap of any two of n (pointer, bytes) ranges, outputs listed first:
    out[i] must not meet any other range. NULL pointers never overlap. */
static Q16I_UNUSED int q16c_any_overlap(const void *const *ptr, const size_t *bytes, int n_out, int n) {
    int i, j;
    for (i = 0; i < n_out; i++)
        for (j = i + 1; j < n; j++)
            if (q16i_overlap(ptr[i], bytes[i], ptr[j], bytes[j])) return 1;
    return 0;
}

/*
 * Argument checks of the kernels, shared by the fast and the reference kernels
 * (defined in q16_conv.c). NULL (params or a required pointer), then sizes
 * (q16c_check_batch), then overlaps: no output (or the scratch, sb bytes; NULL or
 * sb == 0: none) may overlap an input or another output.
 */
q16_status q16c_check_forward(const q16_t *Y, const void *scratch, size_t sb, const q16_t *X, const q16_t *Wt,
                              const q16_t *bias, int batch, const q16_conv_params *p);
q16_status q16c_check_backward_data(const q16_t *dX, const void *scratch, size_t sb, const q16_t *dY,
                                    const q16_t *Wt, int batch, const q16_conv_params *p);
q16_status q16c_check_weights(const q16_t *W, const q16_t *bias, const void *scratch, size_t sb, const q16_t *dY,
                              const q16_t *X, int batch, const q16_conv_params *p);
/* The Riemannian update: NULL (params, W, dY, X, or phi with Q16_PHI_GRAD_SQUARED), then the metric
   (Q16_ERR_DOMAIN: unknown kind, alpha < 0), sizes, overlaps (phi[F*C*kh*kw + F] is an output for
   Q16_PHI_GRAD_SQUARED and ignored for Q16_PHI_WEIGHT_ABS). */
q16_status q16c_check_weights_riemannian(const q16_t *W, const q16_t *bias, const q16_t *phi, const void *scratch,
                                         size_t sb, const q16_t *dY, const q16_t *X, q16_t alpha, q16_phi_kind kind,
                                         int batch, const q16_conv_params *p);

#endif /* Q16_CONV_IMPL_H */
