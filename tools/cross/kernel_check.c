/*
 * kernel_check.c -- the fast kernels against the q16_ref_* reference kernels,
 * bit for bit: outputs, saturation counts and status codes.
 *
 *   cc -std=c99 -O3 <target flags> -I Sources/CFixed/include tools/cross/kernel_check.c \
 *      Sources/CFixed/ *.c -o kernel_check && ./kernel_check [seed]
 *
 * Built by tools/cross/kernel_check.sh for aarch64 and armv7 with NEON on
 * (q16_gemm_neon.h) and run under qemu-user; it also builds for the host and
 * for the portable (Q16_NO_NEON, no auto-vectorisation) variants. Covered: every
 * kernel whose sums q16_gemm_neon.h computes -- gemm_nn / tn, gemm_nt (packed
 * with scratch, dot form without), gemv, dot, conv forward / backward data /
 * weight grad / fused SR / Riemannian SR -- plus q16_update_outer_sr (a dense
 * layer is a 1x1 convolution: q16_ref_conv_backward_weights_sr is its reference).
 *
 * Inputs (seeded): odd and even sizes 1..129, four value regimes:
 *   small    |x| < 2^17 (training values; int64 path),
 *   big      |x| < 2^22 (int64 path, many saturated outputs),
 *   extreme  Q16_MIN, Q16_MAX, +-1, 0 (the pre-pass sends these to the 128-bit fallback),
 *   mixed    small values with a few extremes.
 * Prints one summary line; exits 1 on any mismatch (the first few are printed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q16.h"

#if defined(__ARM_NEON) && !defined(Q16_NO_NEON)
#define KC_NEON "on"
#else
#define KC_NEON "off"
#endif

static uint64_t kc_state;
static long kc_checks, kc_fails;

static uint64_t kc_next(void) { /* splitmix64 */
    uint64_t z = (kc_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum { KC_SMALL, KC_BIG, KC_EXTREME, KC_MIXED, KC_REGIMES };
static const char *const kc_regime_name[KC_REGIMES] = {"small", "big", "extreme", "mixed"};

static q16_t kc_value(int regime) {
    static const q16_t ext[] = {Q16_MIN, Q16_MAX, Q16_MIN + 1, -1, 0, 1, Q16_MAX - 1};
    uint64_t r = kc_next();
    switch (regime) {
    case KC_SMALL: return (q16_t)(int32_t)((int64_t)(r % (1u << 18)) - (1 << 17));
    case KC_BIG: return (q16_t)(int32_t)((int64_t)(r % (1u << 23)) - (1 << 22));
    case KC_EXTREME: return ext[r % 7u];
    default: return (r >> 32) % 16u == 0 ? ext[r % 7u] : (q16_t)(int32_t)((int64_t)(r % (1u << 18)) - (1 << 17));
    }
}

static void kc_fill(q16_t *x, size_t n, int regime) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = kc_value(regime);
}

static void *kc_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    return p;
}

/* One comparison: status, saturation count, n outputs. */
static void kc_compare(const char *what, const char *shape, int regime, q16_status st_f, q16_status st_r,
                       uint64_t sat_f, uint64_t sat_r, const q16_t *f, const q16_t *r, size_t n) {
    size_t i, bad = n;
    kc_checks++;
    for (i = 0; i < n; i++)
        if (f[i] != r[i]) {
            bad = i;
            break;
        }
    if (st_f == st_r && sat_f == sat_r && bad == n) return;
    kc_fails++;
    if (kc_fails <= 10) {
        printf("MISMATCH %s %s (%s): status %d/%d sat %llu/%llu", what, shape, kc_regime_name[regime], (int)st_f,
               (int)st_r, (unsigned long long)sat_f, (unsigned long long)sat_r);
        if (bad < n) printf(" out[%lu] %ld/%ld", (unsigned long)bad, (long)f[bad], (long)r[bad]);
        printf("\n");
    }
}

static const int kc_mn[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 65};
static const int kc_k[] = {1, 2, 3, 4, 5, 7, 8, 17, 33, 65, 129};
#define KC_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* gemm nn / tn / nt (with and without scratch), gemv, dot for one (m, n, k) and regime. */
static void kc_gemm_case(int m, int n, int k, int regime) {
    const size_t mk = (size_t)m * (size_t)k, kn = (size_t)k * (size_t)n, mn = (size_t)m * (size_t)n;
    q16_t *A = kc_alloc(mk * sizeof(q16_t)), *B = kc_alloc(kn * sizeof(q16_t)), *bias = kc_alloc((size_t)(n > m ? n : m) * sizeof(q16_t));
    q16_t *Cf = kc_alloc(mn * sizeof(q16_t)), *Cr = kc_alloc(mn * sizeof(q16_t));
    size_t sb = q16_gemm_nt_buffer_size(m, n, k);
    q16_t *scratch = kc_alloc(sb);
    uint64_t sf, sr;
    q16_status a, b;
    char shape[64];
    int withbias = (int)(kc_next() & 1u);
    snprintf(shape, sizeof shape, "m=%d n=%d k=%d%s", m, n, k, withbias ? " bias" : "");
    kc_fill(A, mk, regime);
    kc_fill(B, kn, regime);
    kc_fill(bias, (size_t)(n > m ? n : m), regime);

    sf = sr = 0;
    memset(Cf, 0x55, mn * sizeof(q16_t));
    a = q16_gemm_nn(Cf, A, B, m, n, k, &sf);
    b = q16_ref_gemm_nn(Cr, A, B, m, n, k, &sr);
    kc_compare("gemm_nn", shape, regime, a, b, sf, sr, Cf, Cr, mn);

    sf = sr = 0;
    memset(Cf, 0x55, mn * sizeof(q16_t));
    a = q16_gemm_tn(Cf, A, B, m, n, k, &sf);
    b = q16_ref_gemm_tn(Cr, A, B, m, n, k, &sr);
    kc_compare("gemm_tn", shape, regime, a, b, sf, sr, Cf, Cr, mn);

    /* nt: B is n x k (kn values) */
    sr = 0;
    b = q16_ref_gemm_nt(Cr, A, B, withbias ? bias : NULL, m, n, k, &sr);
    sf = 0;
    memset(Cf, 0x55, mn * sizeof(q16_t));
    a = q16_gemm_nt(Cf, scratch, A, B, withbias ? bias : NULL, m, n, k, &sf);
    kc_compare("gemm_nt+scratch", shape, regime, a, b, sf, sr, Cf, Cr, mn);
    sf = 0;
    memset(Cf, 0x55, mn * sizeof(q16_t));
    a = q16_gemm_nt(Cf, NULL, A, B, withbias ? bias : NULL, m, n, k, &sf);
    kc_compare("gemm_nt", shape, regime, a, b, sf, sr, Cf, Cr, mn);

    if (n == 1 || m == 1) { /* gemv: y[m] = A[m x k] x[k]; dot: a[k] . b[k] */
        sf = sr = 0;
        memset(Cf, 0x55, (size_t)m * sizeof(q16_t));
        a = q16_gemv(Cf, A, B, withbias ? bias : NULL, m, k, &sf);
        b = q16_ref_gemv(Cr, A, B, withbias ? bias : NULL, m, k, &sr);
        kc_compare("gemv", shape, regime, a, b, sf, sr, Cf, Cr, (size_t)m);
        sf = sr = 0;
        a = q16_dot(Cf, A, B, k, &sf);
        b = q16_ref_dot(Cr, A, B, k, &sr);
        kc_compare("dot", shape, regime, a, b, sf, sr, Cf, Cr, 1);
    }
    free(A); free(B); free(bias); free(Cf); free(Cr); free(scratch);
}

/* The conv kernels (and, for 1x1 convolutions on 1x1 images, q16_update_outer_sr) for one shape. */
static void kc_conv_case(int batch, int C, int H, int W, int F, int kh, int kw, int sh, int sw, int regime) {
    q16_conv_params p;
    size_t in, out, wn, sb, i;
    q16_t *X, *Wt, *bias, *dY, *Yf, *Yr, *Wf, *Wr, *bf, *br, *phif, *phir;
    void *scratch;
    uint64_t sf, sr;
    q16_status a, b;
    char shape[96];
    int kind;
    const uint32_t lr = 0x01000000u + (uint32_t)(kc_next() & 0xFFFFFFu), gscale = 0x40000000u, rho = 0xE0000000u;
    const uint64_t seed = kc_next(), counter = kc_next() & 0xFFFFFFFFu;
    p.C = C; p.H = H; p.W = W; p.F = F; p.kh = kh; p.kw = kw; p.stride_h = sh; p.stride_w = sw;
    p.pad_top = (kh - 1) / 2; p.pad_left = (kw - 1) / 2; /* "same"-style: pad_bottom = kh - 1 - pad_top */
    p.Ho = (H - 1) / sh + 1; p.Wo = (W - 1) / sw + 1;
    if (q16_conv_check(&p) != Q16_OK) {
        printf("kernel_check: bad conv shape C=%d H=%d W=%d F=%d %dx%d s%dx%d\n", C, H, W, F, kh, kw, sh, sw);
        kc_fails++;
        return;
    }
    snprintf(shape, sizeof shape, "b=%d C=%d %dx%d F=%d k=%dx%d s=%dx%d", batch, C, H, W, F, kh, kw, sh, sw);
    in = (size_t)batch * (size_t)C * (size_t)H * (size_t)W;
    out = (size_t)batch * (size_t)F * (size_t)p.Ho * (size_t)p.Wo;
    wn = (size_t)F * (size_t)C * (size_t)kh * (size_t)kw;
    sb = q16_conv_forward_buffer_size(&p);
    if (q16_conv_backward_data_buffer_size(&p) > sb) sb = q16_conv_backward_data_buffer_size(&p);
    if (q16_conv_weight_buffer_size(&p) > sb) sb = q16_conv_weight_buffer_size(&p);
    X = kc_alloc(in * sizeof(q16_t)); Wt = kc_alloc(wn * sizeof(q16_t)); bias = kc_alloc((size_t)F * sizeof(q16_t));
    dY = kc_alloc(out * sizeof(q16_t));
    Yf = kc_alloc((in > out ? in : out) * sizeof(q16_t)); Yr = kc_alloc((in > out ? in : out) * sizeof(q16_t));
    Wf = kc_alloc(wn * sizeof(q16_t)); Wr = kc_alloc(wn * sizeof(q16_t));
    bf = kc_alloc((size_t)F * sizeof(q16_t)); br = kc_alloc((size_t)F * sizeof(q16_t));
    phif = kc_alloc((wn + (size_t)F) * sizeof(q16_t)); phir = kc_alloc((wn + (size_t)F) * sizeof(q16_t));
    scratch = kc_alloc(sb);
    kc_fill(X, in, regime); kc_fill(Wt, wn, regime); kc_fill(bias, (size_t)F, regime); kc_fill(dY, out, regime);

    sf = sr = 0;
    a = q16_conv_forward(Yf, scratch, X, Wt, bias, batch, &p, &sf);
    b = q16_ref_conv_forward(Yr, X, Wt, bias, batch, &p, &sr);
    kc_compare("conv_forward", shape, regime, a, b, sf, sr, Yf, Yr, out);

    sf = sr = 0;
    a = q16_conv_backward_data(Yf, scratch, dY, Wt, batch, &p, &sf);
    b = q16_ref_conv_backward_data(Yr, dY, Wt, batch, &p, &sr);
    kc_compare("conv_backward_data", shape, regime, a, b, sf, sr, Yf, Yr, in);

    sf = sr = 0;
    a = q16_conv_weight_grad(Wf, bf, scratch, dY, X, batch, &p, &sf);
    b = q16_ref_conv_weight_grad(Wr, br, dY, X, batch, &p, &sr);
    kc_compare("conv_weight_grad", shape, regime, a, b, sf, sr, Wf, Wr, wn);
    kc_compare("conv_weight_grad(bias)", shape, regime, a, b, 0, 0, bf, br, (size_t)F);

    sf = sr = 0;
    memcpy(Wf, Wt, wn * sizeof(q16_t)); memcpy(Wr, Wt, wn * sizeof(q16_t));
    memcpy(bf, bias, (size_t)F * sizeof(q16_t)); memcpy(br, bias, (size_t)F * sizeof(q16_t));
    a = q16_conv_backward_weights_sr(Wf, bf, scratch, dY, X, lr, batch, &p, seed, counter, &sf);
    b = q16_ref_conv_backward_weights_sr(Wr, br, dY, X, lr, batch, &p, seed, counter, &sr);
    kc_compare("conv_backward_weights_sr", shape, regime, a, b, sf, sr, Wf, Wr, wn);
    kc_compare("conv_backward_weights_sr(bias)", shape, regime, a, b, 0, 0, bf, br, (size_t)F);

    for (kind = 0; kind < 2; kind++) {
        const q16_phi_kind pk = kind ? Q16_PHI_WEIGHT_ABS : Q16_PHI_GRAD_SQUARED;
        const q16_t alpha = (q16_t)(kc_next() % (4u << 16));
        sf = sr = 0;
        memcpy(Wf, Wt, wn * sizeof(q16_t)); memcpy(Wr, Wt, wn * sizeof(q16_t));
        memcpy(bf, bias, (size_t)F * sizeof(q16_t)); memcpy(br, bias, (size_t)F * sizeof(q16_t));
        for (i = 0; i < wn + (size_t)F; i++) phif[i] = phir[i] = (q16_t)(kc_next() % (1u << 17));
        a = q16_conv_backward_weights_riemannian_sr(Wf, bf, phif, scratch, dY, X, lr, gscale, alpha, rho, pk, batch,
                                                    &p, seed, counter, &sf);
        b = q16_ref_conv_backward_weights_riemannian_sr(Wr, br, phir, dY, X, lr, gscale, alpha, rho, pk, batch, &p,
                                                        seed, counter, &sr);
        kc_compare(kind ? "conv_riemannian_sr(|w|)" : "conv_riemannian_sr(g^2)", shape, regime, a, b, sf, sr, Wf,
                   Wr, wn);
        kc_compare("conv_riemannian_sr(bias)", shape, regime, a, b, 0, 0, bf, br, (size_t)F);
        kc_compare("conv_riemannian_sr(phi)", shape, regime, a, b, 0, 0, phif, phir, wn + (size_t)F);
    }

    if (kh == 1 && kw == 1 && H == 1 && W == 1) {
        /* q16_update_outer_sr: W[F x C] -= SR(lr * dY^T X), dY[batch x F], X[batch x C], the same bits */
        int64_t *s64 = kc_alloc(q16_update_outer_sr_buffer_size(C));
        sf = sr = 0;
        memcpy(Wf, Wt, wn * sizeof(q16_t)); memcpy(Wr, Wt, wn * sizeof(q16_t));
        memcpy(bf, bias, (size_t)F * sizeof(q16_t)); memcpy(br, bias, (size_t)F * sizeof(q16_t));
        a = q16_update_outer_sr(Wf, bf, s64, dY, X, lr, batch, F, C, seed, counter, &sf);
        b = q16_ref_conv_backward_weights_sr(Wr, br, dY, X, lr, batch, &p, seed, counter, &sr);
        kc_compare("update_outer_sr", shape, regime, a, b, sf, sr, Wf, Wr, wn);
        kc_compare("update_outer_sr(bias)", shape, regime, a, b, 0, 0, bf, br, (size_t)F);
        free(s64);
    }
    free(X); free(Wt); free(bias); free(dY); free(Yf); free(Yr); free(Wf); free(Wr);
    free(bf); free(br); free(phif); free(phir); free(scratch);
}

int main(int argc, char **argv) {
    static const int conv[][9] = {
        /* batch C H W F kh kw sh sw */
        {1, 1, 1, 1, 1, 1, 1, 1, 1},  {2, 3, 5, 7, 4, 3, 3, 1, 1},   {3, 1, 8, 8, 4, 3, 3, 1, 1},
        {2, 4, 4, 4, 8, 3, 3, 1, 1},  {1, 2, 9, 6, 5, 2, 3, 2, 1},   {2, 3, 7, 9, 3, 5, 5, 2, 2},
        {1, 17, 3, 3, 9, 1, 1, 1, 1}, {2, 2, 11, 13, 33, 3, 3, 1, 1}, {1, 5, 6, 6, 7, 4, 2, 3, 2},
        {5, 7, 1, 1, 3, 1, 1, 1, 1},  {33, 17, 1, 1, 9, 1, 1, 1, 1}, {4, 65, 1, 1, 33, 1, 1, 1, 1},
        {1, 1, 17, 17, 1, 7, 7, 1, 1}, {2, 8, 8, 8, 16, 3, 3, 2, 2},
    };
    int regime, i, j, l, c;
    kc_state = argc > 1 ? strtoull(argv[1], NULL, 10) : 12345u;
    for (regime = 0; regime < KC_REGIMES; regime++) {
        for (i = 0; i < KC_COUNT(kc_mn); i++)
            for (j = 0; j < KC_COUNT(kc_mn); j++)
                for (l = 0; l < KC_COUNT(kc_k); l++) kc_gemm_case(kc_mn[i], kc_mn[j], kc_k[l], regime);
        for (c = 0; c < KC_COUNT(conv); c++)
            kc_conv_case(conv[c][0], conv[c][1], conv[c][2], conv[c][3], conv[c][4], conv[c][5], conv[c][6],
                         conv[c][7], conv[c][8], regime);
    }
    printf("kernel_check: NEON %s, %ld comparisons, %ld mismatches: %s\n", KC_NEON, kc_checks, kc_fails,
           kc_fails ? "FAIL" : "ok");
    return kc_fails ? 1 : 0;
}
