/*
 * q16.h -- CFixed: C99 Q16.16 fixed-point kernels for the PDMM runtime.
 *
 * One type, one prefix: q16_t is a signed 32-bit integer holding value * 2^16.
 * Range [-32768, 32768 - 2^-16], resolution 2^-16 (1 LSB = 1.52587890625e-5).
 *
 * Conventions (CMSIS-NN style):
 *  - Pure functions over caller-owned buffers. No allocation, no global state.
 *  - Outputs first, then inputs, then dimensions. Row-major matrices.
 *  - Functions that can fail return q16_status (0 = ok, negative = error);
 *    the value written on failure is documented per function.
 *  - Saturation is never an error and never an in-band value: every function
 *    that can saturate takes `uint64_t *sat` (may be NULL) and ADDS the number
 *    of results it clamped to [Q16_MIN, Q16_MAX]. The caller sums and prints.
 *  - Rounding: "nearest" means round to nearest, ties away from zero, applied
 *    ONCE to the exact result. Stochastic rounding is counter-based (see
 *    q16_rng_u32) and therefore identical on every architecture.
 *  - Dot products and GEMMs accumulate the exact products (Q32.32) without
 *    loss (64-bit, with an exact 128-bit fallback when 64 bits could
 *    overflow) and round + saturate once at the end.
 *  - No undefined behaviour: shifts are done on widened or unsigned values,
 *    wrapping only in unsigned types.
 */
#ifndef Q16_H
#define Q16_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t q16_t;

#define Q16_ONE ((q16_t)0x00010000)
#define Q16_HALF ((q16_t)0x00008000)
#define Q16_MAX ((q16_t)0x7FFFFFFF)
#define Q16_MIN ((q16_t)(-0x7FFFFFFF - 1))
#define Q16_FRAC_BITS 16

/** Status of a kernel call. 0 is success; negative values are errors. */
typedef enum q16_status {
    Q16_OK = 0,
    Q16_ERR_NULL = -1,     /**< a required pointer was NULL */
    Q16_ERR_SIZE = -2,     /**< a dimension <= 0, or a product of dimensions overflows int */
    Q16_ERR_OVERLAP = -3,  /**< an output overlaps an input where that is not allowed */
    Q16_ERR_NAN = -4,      /**< a NaN was given to a conversion */
    Q16_ERR_DOMAIN = -5,   /**< argument outside the function's domain (log x<=0, sqrt x<0) */
    Q16_ERR_DIV_ZERO = -6, /**< division by zero (the result is saturated) */
    Q16_ERR_LABEL = -7     /**< a class label outside [0, classes) */
} q16_status;

/** A short constant English description of a status ("ok", "null pointer", ...). */
const char *q16_status_string(q16_status s);

/* ------------------------------------------------------------------ */
/* Conversions (q16_convert.c)                                          */
/* ------------------------------------------------------------------ */

/** Integer to Q16.16, saturating (|i| > 32767 saturates, counted in *sat). */
q16_t q16_from_int(int32_t i, uint64_t *sat);
/** Q16.16 to integer, round to nearest (ties away from zero). */
int32_t q16_to_int_round(q16_t x);
/** Q16.16 to integer, floor. */
int32_t q16_to_int_floor(q16_t x);
/** Exact conversion (every q16_t is a double). */
double q16_to_double(q16_t x);
/** Nearest float (float has 24 bits of mantissa; ties to even, IEEE). */
float q16_to_float(q16_t x);
/**
 * double to Q16.16: round to nearest (ties away from zero), saturate
 * (+-inf saturate too, counted in *sat). NaN: returns Q16_ERR_NAN, *out = 0.
 */
q16_status q16_from_double(q16_t *out, double x, uint64_t *sat);
/** float to Q16.16, same rules as q16_from_double. */
q16_status q16_from_float(q16_t *out, float x, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Scalar arithmetic (q16_arith.c)                                      */
/* ------------------------------------------------------------------ */

/** a + b, saturating. Exact when it does not saturate. */
q16_t q16_add(q16_t a, q16_t b, uint64_t *sat);
/** a - b, saturating. */
q16_t q16_sub(q16_t a, q16_t b, uint64_t *sat);
/** -a, saturating (-Q16_MIN = Q16_MAX, counted). */
q16_t q16_neg(q16_t a, uint64_t *sat);
/** |a|, saturating (|Q16_MIN| = Q16_MAX, counted). */
q16_t q16_abs(q16_t a, uint64_t *sat);
/** a * b: the exact 64-bit product rounded once to nearest (ties away), saturating. <= 0.5 LSB. */
q16_t q16_mul(q16_t a, q16_t b, uint64_t *sat);
/**
 * a / b rounded to nearest (ties away), saturating; <= 0.5 LSB.
 * b == 0: returns Q16_ERR_DIV_ZERO and *out = Q16_MAX (a > 0), Q16_MIN (a < 0), 0 (a == 0).
 */
q16_status q16_div(q16_t *out, q16_t a, q16_t b, uint64_t *sat);
/** 1 / a, as q16_div(out, Q16_ONE, a, sat). */
q16_status q16_recip(q16_t *out, q16_t a, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Elementary functions (q16_math.c)                                    */
/* ------------------------------------------------------------------ */

/** sqrt(a), correctly rounded (<= 0.5 LSB). a < 0: Q16_ERR_DOMAIN, *out = 0. */
q16_status q16_sqrt(q16_t *out, q16_t a);
/**
 * exp(x) over the whole Q16.16 domain, integer-only (bit-identical everywhere).
 * Error <= max(1 LSB, 2^-15 * exp(x)). Returns exactly 0 when exp(x) < 2^-17
 * (x < -11.7835), saturates to Q16_MAX above ln(32768) (counted in *sat).
 */
q16_t q16_exp(q16_t x, uint64_t *sat);
/**
 * ln(x) for every x > 0 (2^-16 included), integer-only, error <= 1 LSB.
 * x <= 0: Q16_ERR_DOMAIN, *out = Q16_MIN.
 */
q16_status q16_log(q16_t *out, q16_t x);

/* ------------------------------------------------------------------ */
/* Stochastic rounding (q16_random.c)                                   */
/* ------------------------------------------------------------------ */

/**
 * Counter-based generator: 32 pseudo-random bits, a pure function of
 * (seed, counter) (a SplitMix64-style finaliser). Same bits on every architecture.
 */
uint32_t q16_rng_u32(uint64_t seed, uint64_t counter);

/**
 * v / 2^shift with stochastic rounding: floor(v / 2^shift) plus 1 with
 * probability frac, decided by comparing the top 32 bits of the fraction with
 * `rnd`. Saturates to q16 (counted). shift in [0, 62]; larger shifts are clamped to 62.
 */
q16_t q16_shift_sr(int64_t v, unsigned shift, uint32_t rnd, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Dot, GEMV, GEMM (q16_gemm.c, reference in q16_gemm_ref.c)            */
/* ------------------------------------------------------------------ */
/*
 * All accumulate exact Q32.32 products (exact even if 64 bits would
 * overflow), then round to nearest once and saturate once (counted).
 * Result within 0.5 LSB of the exactly rounded value when not saturated.
 * Outputs must not overlap inputs (Q16_ERR_OVERLAP).
 */

/** *out = sum_i a[i] * b[i];  a[n], b[n] */
q16_status q16_dot(q16_t *out, const q16_t *a, const q16_t *b, int n, uint64_t *sat);

/** y[m] = A[m x n] * x[n] + bias[m] (bias may be NULL) */
q16_status q16_gemv(q16_t *y, const q16_t *A, const q16_t *x, const q16_t *bias,
                    int m, int n, uint64_t *sat);

/** C[m x n] = A[m x k] * B[k x n] */
q16_status q16_gemm_nn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat);

/** C[m x n] = A^T * B;  A is [k x m], B is [k x n] */
q16_status q16_gemm_tn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat);

/**
 * Bytes of scratch q16_gemm_nt can use for any call with at most m rows and these n, k
 * (0: it needs none). At most 16 KiB (a transposed block of A for small k). 0 for
 * invalid dimensions.
 */
size_t q16_gemm_nt_buffer_size(int m, int n, int k);

/**
 * C[m x n] = A * B^T + bias (bias[n] added to every row, may be NULL);
 * A is [m x k], B is [n x k]. This is a dense layer's forward pass:
 * Y[batch x out] = X[batch x in] * W[out x in]^T + b[out].
 * scratch: q16_gemm_nt_buffer_size(m, n, k) bytes, 4-byte aligned, or NULL (then the
 * kernel takes the unpacked path: the same results, slower for small k). The scratch must
 * not overlap C, A, B or bias. No heap, a small fixed stack (< 2 KiB).
 */
q16_status q16_gemm_nt(q16_t *C, q16_t *scratch, const q16_t *A, const q16_t *B, const q16_t *bias,
                       int m, int n, int k, uint64_t *sat);

/** The same five kernels as plain triple loops: the reference the tests compare with. */
q16_status q16_ref_dot(q16_t *out, const q16_t *a, const q16_t *b, int n, uint64_t *sat);
q16_status q16_ref_gemv(q16_t *y, const q16_t *A, const q16_t *x, const q16_t *bias,
                        int m, int n, uint64_t *sat);
q16_status q16_ref_gemm_nn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat);
q16_status q16_ref_gemm_tn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat);
q16_status q16_ref_gemm_nt(q16_t *C, const q16_t *A, const q16_t *B, const q16_t *bias,
                           int m, int n, int k, uint64_t *sat);

/** out[n] = sum over rows of in[rows x n] (a bias gradient): exact, one saturation (counted). (q16_reduce.c) */
q16_status q16_colsum(q16_t *out, const q16_t *in, int rows, int n, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Activations and loss (q16_activation.c)                              */
/* ------------------------------------------------------------------ */

/** out[i] = max(x[i], 0); out == x allowed (in place). Exact. */
q16_status q16_relu(q16_t *out, const q16_t *x, int n);
/** delta[i] = 0 where act[i] <= 0 (the ReLU mask), in place on delta. Exact. */
q16_status q16_relu_backward(q16_t *delta, const q16_t *act, int n);

/**
 * Row-wise softmax: p[r x c] = softmax(z[r x c]) per row. Numerically safe
 * (the row maximum is subtracted first, exponentials summed exactly in 64
 * bits, each probability a correctly rounded division). p == z allowed.
 */
q16_status q16_softmax(q16_t *p, const q16_t *z, int rows, int cols, uint64_t *sat);

/**
 * Softmax cross-entropy and its gradient with respect to the logits:
 *   grad[r x c] = softmax(z[r]) - onehot(labels[r])  (grad may be NULL)
 *   loss[r]     = -ln softmax(z[r])[labels[r]]       (loss may be NULL)
 * labels[rows] in [0, cols), else Q16_ERR_LABEL and nothing is written.
 * grad == z allowed. The loss is logsumexp - z_y, each term within 1 LSB.
 */
q16_status q16_softmax_xent(q16_t *grad, q16_t *loss, const q16_t *z, const int32_t *labels,
                            int rows, int cols, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Weight updates with stochastic rounding (q16_update.c)               */
/* ------------------------------------------------------------------ */
/*
 * Learning rates are unsigned Q0.32 scales: lr = lr_q32 / 2^32, in [0, 1).
 * (A Q16.16 rate would lose lr/batch to rounding: 0.01/32 is 20.48 LSB.)
 * Element i of a call uses the random bits q16_rng_u32(seed, counter + i),
 * so a caller that advances `counter` by n per call never reuses bits.
 */

/** w[i] -= SR(lr * g[i]);  w[n], g[n]. Saturating (counted). */
q16_status q16_update_sr(q16_t *w, const q16_t *g, uint32_t lr_q32, int n,
                         uint64_t seed, uint64_t counter, uint64_t *sat);

/** Bytes of int64 scratch q16_update_outer_sr needs for rows of n inputs (8 * n). */
size_t q16_update_outer_sr_buffer_size(int n);

/**
 * Fused SGD step of a dense layer, no gradient buffer:
 *   W[i][j] -= SR(lr * sum_b dY[b][i] * X[b][j])   (the exact Q32.32 sum)
 *   bias[i] -= SR(lr * sum_b dY[b][i])             (bias may be NULL)
 * W[m x n], dY[batch x m], X[batch x n], bias[m];
 * scratch: q16_update_outer_sr_buffer_size(n) bytes, 8-byte aligned.
 * Random bits: weight (i,j) uses counter + i*n + j, bias i uses counter + m*n + i.
 */
q16_status q16_update_outer_sr(q16_t *W, q16_t *bias, int64_t *scratch,
                               const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                               int batch, int m, int n,
                               uint64_t seed, uint64_t counter, uint64_t *sat);

/**
 * Momentum SGD on a gradient buffer:
 *   v[i] = SR(mu * v[i]) + g[i]   (saturating)
 *   w[i] -= SR(lr * v[i])
 * mu_q32 and lr_q32 are Q0.32. Bits: v uses counter + i, w uses counter + n + i.
 */
q16_status q16_update_momentum_sr(q16_t *w, q16_t *v, const q16_t *g, uint32_t mu_q32,
                                  uint32_t lr_q32, int n, uint64_t seed, uint64_t counter,
                                  uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Riemannian diagonal metric and calibration (q16_riemannian.c)       */
/* ------------------------------------------------------------------ */

/** How the Riemannian metric measures a weight's plasticity phi. */
typedef enum q16_phi_kind {
    Q16_PHI_GRAD_SQUARED = 0, /**< phi = EMA of g^2 (state: one word per parameter) */
    Q16_PHI_WEIGHT_ABS = 1    /**< phi = |w| (no state; phi may be NULL) */
} q16_phi_kind;

/**
 * Fused step of the diagonal Riemannian metric (w <- w - eta g / E,
 * E = 1 + alpha phi) for a dense layer, no gradient buffer:
 *   s     = sum_b dY[b][i] X[b][j]                exact Q32.32 (bias: sum_b dY[b][i], Q16 << 16)
 *   u     = SR(s * lr / 2^48)                     exactly q16_update_outer_sr's step, same bits
 *   g     = SR(s * gscale / 2^48)                 the batch-mean gradient (gscale = 1/batch, Q0.32)
 *   phi   = SR(rho phi) + SR((1 - rho) g^2)        (Q16_PHI_GRAD_SQUARED; rho_q32 is Q0.32)
 *   phi   = |w|                                    (Q16_PHI_WEIGHT_ABS, before the update)
 *   E     = 1 + alpha phi                          (q16, alpha_q16 >= 0, clamped to [1, Q16_MAX];
 *                                                   only q16_mul's own clamp is counted: a larger
 *                                                   E only makes the step smaller)
 *   w    -= round_nearest(u / E)                   saturating (counted)
 * W[m x n], bias[m], phi[m*n + m] (weights then biases; may be NULL for WEIGHT_ABS).
 * With alpha_q16 == 0, E == 1 and W, bias equal q16_update_outer_sr's result bit for bit
 * whenever no gradient sum is clamped (q16_update_outer_sr keeps sums beyond 2^62 exact).
 * Random bits: u as q16_update_outer_sr; each other rounding of a parameter draws its own
 * word with the same counter from its own stream: g from seed ^ 0x5048495F53545245, SR(rho phi)
 * from seed ^ 0x5048495F44454341, SR((1 - rho) g^2) from seed ^ 0x5048495F46524553.
 * Weight gradient sums beyond +-2^62 (Q32.32) and bias gradient sums beyond +-2^46 (Q16)
 * are clamped there (counted in *sat), so no batch size or value can overflow.
 * No output (W, bias, phi, scratch) may overlap another output or an input (Q16_ERR_OVERLAP).
 * scratch: q16_update_outer_sr_buffer_size(n) bytes.
 */
q16_status q16_update_outer_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                          const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                          uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                          q16_phi_kind kind, int batch, int m, int n,
                                          uint64_t seed, uint64_t counter, uint64_t *sat);

/**
 * Information Value Calibration's pull towards the provenance snapshot:
 *   w[i] -= SR(rate * (w[i] - w0[i]))     (rate = rate_q32 / 2^32)
 * Exact for every input: |w - w0| < 2^32 and rate < 1, so the product (< 2^64) is formed in
 * uint64 and the step lies between 0 and w - w0; the new w lies between w and w0 and never
 * saturates. rate 0 changes nothing. Bits: q16_rng_u32(seed, counter + i). w[n], w0[n].
 */
q16_status q16_update_pull_sr(q16_t *w, const q16_t *w0, uint32_t rate_q32, int n,
                              uint64_t seed, uint64_t counter, uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Convolution (q16_conv.c, reference in q16_conv_ref.c)                */
/* ------------------------------------------------------------------ */
/*
 * Channels-first (NCHW) row-major tensors: X[batch x C x H x W] in,
 * Y[batch x F x Ho x Wo] out, weights Wt[F x C x kh x kw], bias[F]. A 1-D
 * convolution over a series of W steps is H = kh = 1 (stride_h = 1, pad_top = 0).
 * Output (i, j) of filter f reads input row i*stride_h + u - pad_top and column
 * j*stride_w + v - pad_left for the tap (u, v); positions outside the input are
 * zeros (explicit zero padding). The caller chooses the padding and Ho, Wo:
 *   valid:  pad 0,  Ho = (H - kh) / stride_h + 1
 *   same:   Ho = ceil(H / stride_h), total = max((Ho - 1)*stride_h + kh - H, 0), pad_top = total / 2
 * (the same for W, pad_left). The bottom / right padding is implied by Ho, Wo.
 *
 * Sums are the exact Q32.32 sums of the products (a bias enters as bias * 2^16),
 * rounded ONCE to nearest (ties away from zero) and saturated once (counted in
 * *sat): the GEMM rule, within 0.5 LSB of the exact value when not saturated.
 * The fast kernels sum in int64 when a pre-pass bound shows no partial sum can
 * overflow, else exactly in 128 bits; fast and reference kernels agree bit for
 * bit (values, status, saturation counts).
 *
 * Errors (nothing is written): Q16_ERR_NULL (params or a required pointer NULL),
 * Q16_ERR_SIZE (q16_conv_check fails, batch <= 0, or batch*C*H*W or
 * batch*F*Ho*Wo overflows int), Q16_ERR_OVERLAP (an output overlaps an input or
 * another output, or the scratch overlaps any buffer; the scratch's extent is
 * its ..._buffer_size). The checks come in that order (the Riemannian update checks
 * its metric arguments, Q16_ERR_DOMAIN, between NULL and SIZE).
 *
 * scratch: caller memory of the ..._buffer_size bytes (independent of batch), or
 * NULL: then the kernel runs its reference twin (same results, no scratch,
 * slower). No heap, a small fixed stack.
 */

/** The shape of a convolution layer (see above). */
typedef struct q16_conv_params {
    int C, H, W;            /**< input channels, height, width */
    int F;                  /**< filters (output channels) */
    int kh, kw;             /**< kernel height, width */
    int stride_h, stride_w; /**< strides, >= 1 */
    int pad_top, pad_left;  /**< zero rows above / columns left of the input, in [0, kh-1] / [0, kw-1] */
    int Ho, Wo;             /**< output height, width */
} q16_conv_params;

/**
 * Q16_OK if *p describes a convolution, else Q16_ERR_NULL (p NULL) or Q16_ERR_SIZE:
 *  - C, H, W, F, kh, kw, the strides, Ho, Wo >= 1; 0 <= pad_top < kh, 0 <= pad_left < kw;
 *  - Ho = (H + pad_top + pad_bottom - kh) / stride_h + 1 (floor) for some implied
 *    pad_bottom in [0, kh - 1] (so every output window starts inside the padded input and
 *    the windows reach as far as a "valid" convolution would); the same for Wo;
 *  - H + pad_top + kh and W + pad_left + kw fit int;
 *  - these products fit int: C*H*W, F*Ho*Wo, K + 1, F*(K + 1), (K + 1)*Ho*Wo with
 *    K = C*kh*kw, and F*ceil(kh/stride_h)*ceil(kw/stride_w)*ceil(H/stride_h)*ceil(W/stride_w)
 *    (the matrices of the fast kernels).
 */
q16_status q16_conv_check(const q16_conv_params *p);

/**
 * Bytes of scratch q16_conv_forward needs (4-byte aligned): (F + Ho*Wo) * (C*kh*kw + 1)
 * words: the weights with the bias column, and the patches of one sample (im2col).
 * 0 if q16_conv_check(p) fails.
 */
size_t q16_conv_forward_buffer_size(const q16_conv_params *p);

/**
 * Convolution forward pass:
 *   Y[b][f][i][j] = bias[f] + sum_{c,u,v} Wt[f][c][u][v] * X[b][c][i*sh + u - pt][j*sw + v - pl]
 * (zero outside the input; bias may be NULL), exact sum rounded once, saturated (counted).
 * Y[batch x F x Ho x Wo], X[batch x C x H x W], Wt[F x C x kh x kw], bias[F].
 * scratch: q16_conv_forward_buffer_size(p) bytes or NULL (see above).
 */
q16_status q16_conv_forward(q16_t *Y, q16_t *scratch, const q16_t *X, const q16_t *Wt, const q16_t *bias,
                            int batch, const q16_conv_params *p, uint64_t *sat);

/**
 * Bytes of scratch q16_conv_backward_data needs (4-byte aligned), with T =
 * F*ceil(kh/sh)*ceil(kw/sw) taps and Q = ceil(H/sh)*ceil(W/sw) positions of the largest
 * stride phase: (C*T + T*Q) words, plus C*Q words of staging when a stride is > 1.
 * 0 if q16_conv_check(p) fails.
 */
size_t q16_conv_backward_data_buffer_size(const q16_conv_params *p);

/**
 * Gradient with respect to the input (the transposed convolution):
 *   dX[b][c][y][x] = sum of Wt[f][c][u][v] * dY[b][f][i][j] over every (f, u, v, i, j)
 *                    with y = i*sh + u - pt and x = j*sw + v - pl,
 * exact sum rounded once, saturated (counted); positions no window reads get 0.
 * dX[batch x C x H x W], dY[batch x F x Ho x Wo], Wt[F x C x kh x kw].
 * scratch: q16_conv_backward_data_buffer_size(p) bytes or NULL (see above).
 */
q16_status q16_conv_backward_data(q16_t *dX, q16_t *scratch, const q16_t *dY, const q16_t *Wt, int batch,
                                  const q16_conv_params *p, uint64_t *sat);

/**
 * Bytes of scratch q16_conv_weight_grad, q16_conv_backward_weights_sr and
 * q16_conv_backward_weights_riemannian_sr need (8-byte
 * aligned): min(F, 32) * C*kh*kw int64 sums, then C*kh*kw * Ho*Wo words of patches
 * (rounded up to 8 bytes). 0 if q16_conv_check(p) fails.
 */
size_t q16_conv_weight_buffer_size(const q16_conv_params *p);

/**
 * Gradient of the weights and bias (summed over the batch, not averaged), for momentum:
 *   dW[f][c][u][v] = round(sum_{b,i,j} dY[b][f][i][j] * X[b][c][i*sh + u - pt][j*sw + v - pl])
 *   dB[f]          = sum_{b,i,j} dY[b][f][i][j]                        (dB may be NULL)
 * exact sums, rounded once (dW; dB is a sum of q16 values, exact), saturated once (counted).
 * dW[F x C x kh x kw], dB[F], dY[batch x F x Ho x Wo], X[batch x C x H x W].
 * scratch: q16_conv_weight_buffer_size(p) bytes (8-byte aligned) or NULL (see above).
 */
q16_status q16_conv_weight_grad(q16_t *dW, q16_t *dB, int64_t *scratch, const q16_t *dY, const q16_t *X, int batch,
                                const q16_conv_params *p, uint64_t *sat);

/**
 * Fused SGD step of a convolution layer, no gradient buffer (q16_update_outer_sr's rule):
 *   s            = sum_{b,i,j} dY[b][f][i][j] * X[b][c][i*sh + u - pt][j*sw + v - pl]   exact Q32.32
 *   W[f][c][u][v] -= SR(s * lr_q32 / 2^48)                                             saturating
 *   bias[f]      -= SR(sum_{b,i,j} dY[b][f][i][j] * lr_q32 / 2^32)                     (bias may be NULL)
 * SR(t) = floor(t) + 1 when the top 32 bits of the fraction exceed the random word
 * (q16_shift_sr's rule). Random words: weight w = ((f*C + c)*kh + u)*kw + v uses
 * q16_rng_u32(seed, counter + w), bias f uses q16_rng_u32(seed, counter + F*C*kh*kw + f).
 * The sums are exact for every input (int64 under the pre-pass bound, else 128 bits);
 * each result is saturated once (counted). W[F x C x kh x kw], bias[F],
 * dY[batch x F x Ho x Wo], X[batch x C x H x W].
 * scratch: q16_conv_weight_buffer_size(p) bytes (8-byte aligned) or NULL (see above).
 */
q16_status q16_conv_backward_weights_sr(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                                        uint32_t lr_q32, int batch, const q16_conv_params *p, uint64_t seed,
                                        uint64_t counter, uint64_t *sat);

/**
 * Fused step of the diagonal Riemannian metric for a convolution layer, no gradient buffer:
 * q16_update_outer_riemannian_sr's rule applied to every weight and bias of the layer:
 *   s     = sum_{b,i,j} dY[b][f][i][j] * X[b][c][i*sh + u - pt][j*sw + v - pl]   exact Q32.32
 *           (bias f: sum_{b,i,j} dY[b][f][i][j], Q16 << 16)
 *   u     = SR(s * lr / 2^48)                     exactly q16_conv_backward_weights_sr's step, same bits
 *   g     = SR(s * gscale / 2^48)                 the batch-mean gradient (gscale = 1/batch, Q0.32)
 *   phi   = SR(rho phi) + SR((1 - rho) g^2)        (Q16_PHI_GRAD_SQUARED; rho_q32 is Q0.32)
 *   phi   = |w|                                    (Q16_PHI_WEIGHT_ABS, before the update)
 *   E     = 1 + alpha phi                          (q16, alpha_q16 >= 0, clamped to [1, Q16_MAX];
 *                                                   only q16_mul's own clamp is counted)
 *   w    -= round_nearest(u / E)                   saturating (counted)
 * W[F x C x kh x kw], bias[F] (may be NULL), phi[F*C*kh*kw + F] (the weights' words in W's order,
 * then the biases'; may be NULL for Q16_PHI_WEIGHT_ABS, which neither reads nor writes it),
 * dY[batch x F x Ho x Wo], X[batch x C x H x W].
 * With alpha_q16 == 0, E == 1 and W, bias equal q16_conv_backward_weights_sr's result bit for bit
 * whenever no gradient sum is clamped.
 * Random words: weight w = ((f*C + c)*kh + u)*kw + v uses counter + w, bias f uses
 * counter + F*C*kh*kw + f (q16_conv_backward_weights_sr's numbering); u draws q16_rng_u32(seed, ctr),
 * g, SR(rho phi) and SR((1 - rho) g^2) draw from the streams of q16_update_outer_riemannian_sr
 * (seed ^ 0x5048495F53545245, seed ^ 0x5048495F44454341, seed ^ 0x5048495F46524553) with the same ctr.
 * Weight gradient sums beyond +-2^62 (Q32.32) and bias gradient sums beyond +-2^46 (Q16) are clamped
 * there (counted in *sat), as in the dense kernel; the sums themselves are exact for every input.
 * Errors (nothing is written), in this order: Q16_ERR_NULL (params, W, dY, X, or phi with
 * Q16_PHI_GRAD_SQUARED), Q16_ERR_DOMAIN (an unknown kind, alpha_q16 < 0), Q16_ERR_SIZE (as the other
 * conv kernels), Q16_ERR_OVERLAP (no output -- W, bias, phi (GRAD_SQUARED only), scratch -- may overlap
 * another output or an input).
 * scratch: q16_conv_weight_buffer_size(p) bytes (8-byte aligned) or NULL (see above).
 */
q16_status q16_conv_backward_weights_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                                   const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                                   uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                                   q16_phi_kind kind, int batch, const q16_conv_params *p,
                                                   uint64_t seed, uint64_t counter, uint64_t *sat);

/** The five convolution kernels as plain loops with 128-bit sums: the reference the tests compare with. */
q16_status q16_ref_conv_forward(q16_t *Y, const q16_t *X, const q16_t *Wt, const q16_t *bias, int batch,
                                const q16_conv_params *p, uint64_t *sat);
q16_status q16_ref_conv_backward_data(q16_t *dX, const q16_t *dY, const q16_t *Wt, int batch,
                                      const q16_conv_params *p, uint64_t *sat);
q16_status q16_ref_conv_weight_grad(q16_t *dW, q16_t *dB, const q16_t *dY, const q16_t *X, int batch,
                                    const q16_conv_params *p, uint64_t *sat);
q16_status q16_ref_conv_backward_weights_sr(q16_t *W, q16_t *bias, const q16_t *dY, const q16_t *X,
                                            uint32_t lr_q32, int batch, const q16_conv_params *p, uint64_t seed,
                                            uint64_t counter, uint64_t *sat);
q16_status q16_ref_conv_backward_weights_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, const q16_t *dY,
                                                       const q16_t *X, uint32_t lr_q32, uint32_t gscale_q32,
                                                       q16_t alpha_q16, uint32_t rho_q32, q16_phi_kind kind, int batch,
                                                       const q16_conv_params *p, uint64_t seed, uint64_t counter,
                                                       uint64_t *sat);

/* ------------------------------------------------------------------ */
/* Pooling (q16_pool.c)                                                 */
/* ------------------------------------------------------------------ */
/*
 * NCHW tensors: X[batch x C x H x W]. Non-overlapping ph x pw windows (stride =
 * window): Ho = H / ph, Wo = W / pw, floor ("valid"): trailing rows / columns
 * that do not fill a window are ignored by the forward pass and get a zero
 * gradient. 1-D pooling is ph = 1 (H = 1). Nothing can saturate (a maximum is an
 * input; a mean of q16 values and dY / n are in range), so there is no `sat`.
 * Means: the exact int64 sum divided by the window size, rounded to nearest, ties
 * away from zero (<= 0.5 LSB).
 * Errors (nothing is written): Q16_ERR_NULL (a required pointer), Q16_ERR_SIZE (a
 * dimension <= 0, ph > H or pw > W, batch*C*H*W overflows int), Q16_ERR_OVERLAP
 * (an output overlaps an input or another output).
 */

/**
 * Max pooling: Y[b][c][i][j] = max of X[b][c][i*ph + u][j*pw + v] over the window;
 * idx[b][c][i][j] = (i*ph + u)*W + (j*pw + v) of that maximum, its offset within the
 * input plane (the first maximum in row-major order on ties). Exact.
 * Y[batch x C x Ho x Wo], idx[batch x C x Ho x Wo] (may be NULL: not stored).
 */
q16_status q16_maxpool_forward(q16_t *Y, int32_t *idx, const q16_t *X, int batch, int C, int H, int W, int ph,
                               int pw);

/**
 * Max pooling backward: dX = 0, then dX[b][c][idx[b][c][i][j]] = dY[b][c][i][j] (each window
 * routes its gradient to its argmax). Exact. An index outside its own window (as
 * q16_maxpool_forward never stores) returns Q16_ERR_DOMAIN with nothing written.
 * dX[batch x C x H x W], dY and idx [batch x C x Ho x Wo].
 */
q16_status q16_maxpool_backward(q16_t *dX, const q16_t *dY, const int32_t *idx, int batch, int C, int H, int W,
                                int ph, int pw);

/** Average pooling: Y[b][c][i][j] = round(sum of the ph x pw window / (ph*pw)). Y[batch x C x Ho x Wo]. */
q16_status q16_avgpool_forward(q16_t *Y, const q16_t *X, int batch, int C, int H, int W, int ph, int pw);

/**
 * Average pooling backward: dX[b][c][y][x] = round(dY[b][c][y/ph][x/pw] / (ph*pw)) inside the
 * windows, 0 in the trailing rows / columns. dX[batch x C x H x W], dY[batch x C x Ho x Wo].
 */
q16_status q16_avgpool_backward(q16_t *dX, const q16_t *dY, int batch, int C, int H, int W, int ph, int pw);

/** Global average pool: Y[b][c] = round(sum_{y,x} X[b][c][y][x] / (H*W)). Y[batch x C]. */
q16_status q16_global_avgpool_forward(q16_t *Y, const q16_t *X, int batch, int C, int H, int W);

/** Its backward pass: dX[b][c][y][x] = round(dY[b][c] / (H*W)). dX[batch x C x H x W], dY[batch x C]. */
q16_status q16_global_avgpool_backward(q16_t *dX, const q16_t *dY, int batch, int C, int H, int W);

#ifdef __cplusplus
}
#endif

#include "q16_team.h"

#endif /* Q16_H */
