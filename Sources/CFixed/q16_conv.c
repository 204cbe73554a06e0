/*
 * q16_conv.c -- fast 2-D / 1-D convolution kernels (channels-first, NCHW),
 * bit-identical to the reference loops in q16_conv_ref.c.
 *
 * Every kernel computes EXACT sums of Q32.32 products and rounds once:
 *
 *  - forward: per sample, the input patches are gathered into the caller's
 *    scratch (im2col: col[(C*kh*kw + 1) x (Ho*Wo)], the last row all Q16_ONE),
 *    the weights are copied once per call with the bias as an extra column
 *    (A[F x (C*kh*kw + 1)]), and Y_b = A * col is one GEMM. The bias column
 *    times Q16_ONE is exactly bias * 2^16, the reference's starting value. One
 *    pre-pass per call bounds (C*kh*kw + 1) * max|A| * max(|X|, ONE); under the
 *    bound the GEMM is q16c_gemm (int64 sums, q16_gemm_nn's tiles, branch-free
 *    rounding), else q16_gemm_nn (its exact 128-bit path): bit-identical.
 *  - backward data: the transposed convolution as GEMMs without col2im (col2im
 *    would add already-rounded values). The input positions are split into
 *    stride phases (y mod stride_h, x mod stride_w); in a phase only the taps
 *    u = (py + pad_top) mod stride_h (+ multiples of the stride) reach it, so
 *    dX_phase[C x Hp*Wp] = W'_phase[C x F*nu*nv] * dYcol[F*nu*nv x Hp*Wp], one
 *    GEMM per (phase, sample) (q16c_gemm under the per-call bound taps * max|Wt|
 *    * max|dY|, else q16_gemm_nn), where dYcol gathers the matching dY values
 *    (zeros outside). With stride 1 there is one phase and the GEMM writes dX
 *    directly; otherwise it writes a staging block that is scattered into dX.
 *    No product is wasted on the zeros of a dilated dY.
 *  - weight gradient / fused SR update: per sample, im2col without the ONE
 *    row, then acc[f][k] += sum_p dY_b[f][p] * col[k][p] in int64 accumulators
 *    held in the scratch (blocks of up to Q16C_FBLOCK filters; the patches are
 *    gathered again per block), vectorised along p. A pre-pass bounds
 *    batch*Ho*Wo * max|dY| * max|X|; if an int64 sum could overflow, the call
 *    runs the exact 128-bit reference loops instead. The exact sums are then
 *    rounded once (gradient) or stochastically rounded into the weights (the
 *    q16_update_outer_sr rule and random words), or, in the Riemannian update,
 *    clamped to +-2^62 and stepped with the dense Riemannian kernel's
 *    per-parameter rule (q16_riemannian_impl.h, q16_update_outer_riemannian_sr).
 *
 * A NULL scratch makes each kernel run its reference twin (no scratch, slower,
 * same results). No heap, small fixed stack.
 */
#include <string.h>

#include "q16.h"
#include "q16_conv_impl.h"

/* Filters per block of int64 weight accumulators (bounds that part of the scratch). */
#define Q16C_FBLOCK 32

/* ------------------------------------------------------------------ */
/* Parameters                                                           */
/* ------------------------------------------------------------------ */

/** 1 if out is the output size of n inputs, kernel k, stride s, leading pad `pad` and a
    trailing pad in [0, k - 1]; and n + pad + k stays within int. */
static int q16c_out_ok(int n, int k, int s, int pad, int out) {
    const int64_t span = (int64_t)n + (int64_t)pad;
    int64_t pb_lo, omin, omax;
    if (span + (int64_t)k > (int64_t)INT_MAX) return 0;
    pb_lo = (int64_t)k - span > 0 ? (int64_t)k - span : 0;
    omin = (span + pb_lo - (int64_t)k) / s + 1;
    omax = (span - 1) / s + 1;
    return (int64_t)out >= omin && (int64_t)out <= omax;
}

/** *acc *= f, returning 0 when the product exceeds INT_MAX (acc, f in [1, INT_MAX]). */
static int q16c_mul_acc(uint64_t *acc, uint64_t f) {
    *acc *= f; /* both <= 2^31: no wrap */
    return *acc <= (uint64_t)INT_MAX;
}

static uint64_t q16c_ceil_div(int a, int b) { return (uint64_t)((a - 1) / b) + 1u; }

q16_status q16_conv_check(const q16_conv_params *p) {
    uint64_t v, k1;
    if (p == NULL) return Q16_ERR_NULL;
    if (p->C <= 0 || p->H <= 0 || p->W <= 0 || p->F <= 0 || p->kh <= 0 || p->kw <= 0 || p->stride_h <= 0 ||
        p->stride_w <= 0 || p->Ho <= 0 || p->Wo <= 0)
        return Q16_ERR_SIZE;
    if (p->pad_top < 0 || p->pad_top >= p->kh || p->pad_left < 0 || p->pad_left >= p->kw) return Q16_ERR_SIZE;
    if (!q16c_out_ok(p->H, p->kh, p->stride_h, p->pad_top, p->Ho) ||
        !q16c_out_ok(p->W, p->kw, p->stride_w, p->pad_left, p->Wo))
        return Q16_ERR_SIZE;
    /* C*H*W and F*Ho*Wo */
    v = (uint64_t)p->C;
    if (!q16c_mul_acc(&v, (uint64_t)p->H) || !q16c_mul_acc(&v, (uint64_t)p->W)) return Q16_ERR_SIZE;
    v = (uint64_t)p->F;
    if (!q16c_mul_acc(&v, (uint64_t)p->Ho) || !q16c_mul_acc(&v, (uint64_t)p->Wo)) return Q16_ERR_SIZE;
    /* K + 1 = C*kh*kw + 1, F*(K + 1), (K + 1)*Ho*Wo */
    v = (uint64_t)p->C;
    if (!q16c_mul_acc(&v, (uint64_t)p->kh) || !q16c_mul_acc(&v, (uint64_t)p->kw)) return Q16_ERR_SIZE;
    k1 = v + 1u;
    if (k1 > (uint64_t)INT_MAX) return Q16_ERR_SIZE;
    v = k1;
    if (!q16c_mul_acc(&v, (uint64_t)p->F)) return Q16_ERR_SIZE;
    v = k1;
    if (!q16c_mul_acc(&v, (uint64_t)p->Ho) || !q16c_mul_acc(&v, (uint64_t)p->Wo)) return Q16_ERR_SIZE;
    /* the largest backward-data phase: F*ceil(kh/sh)*ceil(kw/sw) x ceil(H/sh)*ceil(W/sw) */
    v = (uint64_t)p->F;
    if (!q16c_mul_acc(&v, q16c_ceil_div(p->kh, p->stride_h)) || !q16c_mul_acc(&v, q16c_ceil_div(p->kw, p->stride_w)) ||
        !q16c_mul_acc(&v, q16c_ceil_div(p->H, p->stride_h)) || !q16c_mul_acc(&v, q16c_ceil_div(p->W, p->stride_w)))
        return Q16_ERR_SIZE;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* Scratch sizes                                                        */
/* ------------------------------------------------------------------ */

/** Bytes of `words` q16 values; all products here are below 2^31 * 2^31 (q16_conv_check). */
static size_t q16c_bytes64(uint64_t words) {
    return words > (uint64_t)(SIZE_MAX / sizeof(q16_t)) ? SIZE_MAX : (size_t)words * sizeof(q16_t);
}

size_t q16_conv_forward_buffer_size(const q16_conv_params *p) {
    uint64_t k1, words;
    if (q16_conv_check(p) != Q16_OK) return 0;
    k1 = (uint64_t)Q16C_K(p) + 1u;
    words = (uint64_t)p->F * k1 + k1 * (uint64_t)p->Ho * (uint64_t)p->Wo;
    return q16c_bytes64(words);
}

/* Largest phase of backward data: taps (F * nu * nv) and positions (Hp * Wp). */
static uint64_t q16c_bd_taps(const q16_conv_params *p) {
    return (uint64_t)p->F * q16c_ceil_div(p->kh, p->stride_h) * q16c_ceil_div(p->kw, p->stride_w);
}
static uint64_t q16c_bd_pos(const q16_conv_params *p) {
    return q16c_ceil_div(p->H, p->stride_h) * q16c_ceil_div(p->W, p->stride_w);
}
static int q16c_strided(const q16_conv_params *p) { return p->stride_h != 1 || p->stride_w != 1; }

size_t q16_conv_backward_data_buffer_size(const q16_conv_params *p) {
    uint64_t taps, pos, words;
    if (q16_conv_check(p) != Q16_OK) return 0;
    taps = q16c_bd_taps(p);
    pos = q16c_bd_pos(p);
    words = (uint64_t)p->C * taps + taps * pos + (q16c_strided(p) ? (uint64_t)p->C * pos : 0u);
    return q16c_bytes64(words);
}

/* Weight kernels: int64 acc[min(F, FBLOCK) x K], then col[K x Ho*Wo] (q16), rounded up to 8 bytes. */
static int q16c_fblock(const q16_conv_params *p) { return p->F < Q16C_FBLOCK ? p->F : Q16C_FBLOCK; }

size_t q16_conv_weight_buffer_size(const q16_conv_params *p) {
    uint64_t acc_bytes, col_bytes;
    if (q16_conv_check(p) != Q16_OK) return 0;
    acc_bytes = (uint64_t)q16c_fblock(p) * (uint64_t)Q16C_K(p) * 8u;
    col_bytes = (uint64_t)Q16C_K(p) * (uint64_t)p->Ho * (uint64_t)p->Wo * 4u;
    col_bytes = (col_bytes + 7u) & ~(uint64_t)7u;
    if (acc_bytes + col_bytes > (uint64_t)SIZE_MAX) return SIZE_MAX;
    return (size_t)(acc_bytes + col_bytes);
}

/* ------------------------------------------------------------------ */
/* im2col                                                               */
/* ------------------------------------------------------------------ */

/**
 * The range [*lo, *hi) of outputs t in [0, n_out) whose input t*s + off lies in
 * [0, n_in) (off may be negative). lo <= hi.
 */
static void q16c_valid_range(int *lo, int *hi, int off, int s, int n_in, int n_out) {
    int a = 0, b;
    if (off < 0) a = (int)(((int64_t)s - 1 - off) / s); /* int64: s may be INT_MAX (then Wo = 1) */
    if (n_in - 1 - off < 0) {
        b = 0;
    } else {
        int64_t last = (int64_t)(n_in - 1 - off) / s + 1;
        b = last < (int64_t)n_out ? (int)last : n_out;
    }
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/*
 * col[r][i*Wo + j] = Xb[c][i*sh + u - pt][j*sw + v - pl] (0 outside the input),
 * r = (c*kh + u)*kw + v, one row per tap; with one_row, row C*kh*kw is all Q16_ONE.
 */
Q16_MV static void q16c_im2col(q16_t *Q16_RESTRICT col, const q16_t *Q16_RESTRICT Xb, const q16_conv_params *p,
                               int one_row) {
    const int H = p->H, W = p->W, Ho = p->Ho, Wo = p->Wo, sh = p->stride_h, sw = p->stride_w;
    const size_t P = (size_t)Ho * (size_t)Wo;
    q16_t *Q16_RESTRICT row = col;
    int c, u, v, i, j;
    for (c = 0; c < p->C; c++) {
        for (u = 0; u < p->kh; u++) {
            for (v = 0; v < p->kw; v++, row += P) {
                const int off = v - p->pad_left;
                int jlo, jhi;
                q16c_valid_range(&jlo, &jhi, off, sw, W, Wo);
                for (i = 0; i < Ho; i++) {
                    q16_t *Q16_RESTRICT dst = row + (size_t)i * (size_t)Wo;
                    const int y = i * sh + u - p->pad_top;
                    if (y < 0 || y >= H) {
                        for (j = 0; j < Wo; j++) dst[j] = 0;
                        continue;
                    }
                    {
                        const q16_t *Q16_RESTRICT src = Xb + ((size_t)c * (size_t)H + (size_t)y) * (size_t)W;
                        for (j = 0; j < jlo; j++) dst[j] = 0;
                        if (sw == 1)
                            for (j = jlo; j < jhi; j++) dst[j] = src[j + off];
                        else
                            for (j = jlo; j < jhi; j++) dst[j] = src[j * sw + off];
                        for (j = jhi; j < Wo; j++) dst[j] = 0;
                    }
                }
            }
        }
    }
    if (one_row)
        for (j = 0; (size_t)j < P; j++) row[j] = Q16_ONE;
}

/* ------------------------------------------------------------------ */
/* Local int64 GEMM with branch-free rounding (forward, backward data)  */
/* ------------------------------------------------------------------ */
/*
 * C[m x n] = A[m x k] * B[k x n] (row-major, C rows n apart) when the caller's
 * pre-pass bound shows that no int64 partial sum can overflow. The products and
 * tiles are q16_gemm_nn's axpy microkernel (q16i_ax_sums, q16_gemm_impl.h), but the exact sums are
 * rounded and saturated without branches: q16_gemm_nn's per-output branch on the
 * sign mispredicts on fresh data (half the outputs are negative), which costs
 * about as much as the products when k = C*kh*kw is small (k = 31: ~1.8x the
 * time). Same exact sums, same rounding rule: bit-identical to q16_gemm_nn.
 * A last partial column panel is computed as a full panel that overlaps the
 * previous one: the overlapped columns get the same values again, and only the
 * new columns' saturations are counted.
 */

/** q16i_round_sat64 without branches (bit-identical); 1 is added to *ns when saturated. */
Q16_INLINE q16_t q16c_round_sat64(int64_t acc, uint64_t *ns) {
    const uint64_t neg = (uint64_t)(acc < 0);
    const uint64_t mag = neg ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc; /* <= 2^63 */
    const uint64_t lim = 0x7FFFFFFFu + neg;                                  /* 2^31 - 1 or 2^31 */
    uint64_t q = (mag + 0x8000u) >> 16;
    const uint64_t over = (uint64_t)(q > lim);
    q = over ? lim : q;
    *ns += over;
    return (q16_t)(neg ? (int64_t)0 - (int64_t)q : (int64_t)q);
}

/*
 * An mr x nr tile (compile-time sizes after inlining) at C, rows of A lda apart: the sums of
 * q16_gemm.c's tiles (q16_gemm_impl.h), rounded without branches. Every column is stored, but
 * only the saturations of columns >= c0 are counted: columns < c0 overlap the previous panel
 * and get the same values again. The _plain form (no pair loads) also serves the edge tiles.
 */
Q16_INLINE void cg_tile_plain(q16_t *Q16_RESTRICT C, size_t ldc, const q16_t *Q16_RESTRICT A, size_t lda,
                              const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr, int nr, int c0,
                              uint64_t *nsat) {
    int64_t s[AX_MAX_MR][AX_MAX_NR];
    int r, c;
    uint64_t ns = 0;
    q16i_ax_sums(s, NULL, A, lda, 1, B, ldb, k, mr, nr);
    for (r = 0; r < mr; r++) {
        q16_t *Q16_RESTRICT cr = C + (size_t)r * ldc;
        for (c = 0; c < nr; c++) {
            uint64_t o = 0;
            cr[c] = q16c_round_sat64(s[r][c], &o);
            ns += o & (uint64_t)(c >= c0);
        }
    }
    *nsat += ns;
}

Q16_INLINE void cg_tile(q16_t *Q16_RESTRICT C, size_t ldc, const q16_t *Q16_RESTRICT A, size_t lda,
                        const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr, int nr, int c0, uint64_t *nsat) {
#if Q16_PAIRS
    int64_t lo[AX_MAX_MR][AX_MAX_NR / 2], hi[AX_MAX_MR][AX_MAX_NR / 2];
    const int np = nr / 2, le = q16i_little_endian();
    int r, c;
    uint64_t ns = 0;
    q16i_ax_sums_pairs(lo, hi, NULL, A, lda, 1, B, ldb, k, mr, np);
    for (r = 0; r < mr; r++) {
        q16_t *Q16_RESTRICT cr = C + (size_t)r * ldc;
        for (c = 0; c < np; c++) {
            const int c_lo = 2 * c + (le ? 0 : 1), c_hi = 2 * c + (le ? 1 : 0);
            uint64_t o_lo = 0, o_hi = 0;
            cr[c_lo] = q16c_round_sat64(lo[r][c], &o_lo);
            cr[c_hi] = q16c_round_sat64(hi[r][c], &o_hi);
            ns += (o_lo & (uint64_t)(c_lo >= c0)) + (o_hi & (uint64_t)(c_hi >= c0));
        }
    }
    *nsat += ns;
#else
    cg_tile_plain(C, ldc, A, lda, B, ldb, k, mr, nr, c0, nsat);
#endif
}

/* Edge tile with run-time sizes (mr <= AX_MAX_MR, nr <= AX_MAX_NR), all columns stored and counted. */
static void cg_tile_edge(q16_t *Q16_RESTRICT C, size_t ldc, const q16_t *Q16_RESTRICT A, size_t lda,
                         const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr, int nr, uint64_t *nsat) {
    cg_tile_plain(C, ldc, A, lda, B, ldb, k, mr, nr, 0, nsat);
}

/* One column panel [j, j + NRP) of every row: tiles of MR rows, then 2, then 1; columns [j + c0, j + NRP) stored. */
Q16_INLINE void cg_panel(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, int j, int c0, const int MR,
                         const int NRP, uint64_t *nsat) {
    const size_t ld = (size_t)n, lda = (size_t)k;
    int i0 = 0;
    for (; i0 + MR <= m; i0 += MR)
        cg_tile(C + (size_t)i0 * ld + (size_t)j, ld, A + (size_t)i0 * lda, lda, B + j, ld, k, MR, NRP, c0, nsat);
    if (MR > 2)
        for (; i0 + 2 <= m; i0 += 2)
            cg_tile(C + (size_t)i0 * ld + (size_t)j, ld, A + (size_t)i0 * lda, lda, B + j, ld, k, 2, NRP, c0, nsat);
    for (; i0 < m; i0++)
        cg_tile(C + (size_t)i0 * ld + (size_t)j, ld, A + (size_t)i0 * lda, lda, B + j, ld, k, 1, NRP, c0, nsat);
}

Q16_INLINE void cg_driver_impl(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, const int MR,
                               const int NR, uint64_t *nsat) {
    int j0 = 0, i0;
    for (; j0 + NR <= n; j0 += NR) cg_panel(C, A, B, m, n, k, j0, 0, MR, NR, nsat);
    if (j0 == n) return;
    if (n >= NR) { /* the last NR columns; the first NR - (n - j0) of them are already done */
        cg_panel(C, A, B, m, n, k, n - NR, NR - (n - j0), MR, NR, nsat);
    } else if (n >= NR / 2) { /* j0 = 0: two half panels, the second overlapping */
        cg_panel(C, A, B, m, n, k, 0, 0, MR, NR / 2, nsat);
        if (n > NR / 2) cg_panel(C, A, B, m, n, k, n - NR / 2, NR - n, MR, NR / 2, nsat);
    } else {
        for (i0 = 0; i0 < m; i0 += AX_MAX_MR) {
            const int mr = m - i0 < AX_MAX_MR ? m - i0 : AX_MAX_MR;
            cg_tile_edge(C + (size_t)i0 * (size_t)n, (size_t)n, A + (size_t)i0 * (size_t)k, (size_t)k, B, (size_t)n,
                         k, mr, n, nsat);
        }
    }
}

/* `wide`: AVX-512 (32 vector registers), the big tile. Adds the saturations to *nsat. */
Q16_MV static void q16c_gemm(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, int wide,
                             uint64_t *nsat) {
#if Q16_PAIRS
    if (wide)
        cg_driver_impl(C, A, B, m, n, k, AX_WIDE_MR, AX_WIDE_NR, nsat);
    else
#endif
        cg_driver_impl(C, A, B, m, n, k, AX_NARROW_MR, AX_NARROW_NR, nsat);
    (void)wide;
}

/** 1 when the wide (AVX-512) tiles should be used (Q16C_FORCE_WIDE: always, for tests of that path). */
static int q16c_wide_tiles(void) {
#if defined(Q16C_FORCE_WIDE)
    return 1;
#else
    return q16i_wide_tiles();
#endif
}

/* ------------------------------------------------------------------ */
/* Argument checks (declared in q16_conv_impl.h, shared with the reference) */
/* ------------------------------------------------------------------ */

q16_status q16c_check_forward(const q16_t *Y, const void *scratch, size_t sb, const q16_t *X, const q16_t *Wt,
                              const q16_t *bias, int batch, const q16_conv_params *p) {
    q16_status st;
    if (p == NULL || Y == NULL || X == NULL || Wt == NULL) return Q16_ERR_NULL;
    st = q16c_check_batch(p, batch);
    if (st != Q16_OK) return st;
    {
        const void *ptr[5] = {Y, scratch, X, Wt, bias};
        size_t bytes[5];
        bytes[0] = Q16I_BYTES(Q16C_OUT_WORDS(p) * (size_t)batch);
        bytes[1] = sb;
        bytes[2] = Q16I_BYTES(Q16C_IN_WORDS(p) * (size_t)batch);
        bytes[3] = Q16I_BYTES(Q16C_W_WORDS(p));
        bytes[4] = Q16I_BYTES(p->F);
        if (q16c_any_overlap(ptr, bytes, 2, 5)) return Q16_ERR_OVERLAP;
    }
    return Q16_OK;
}

q16_status q16c_check_backward_data(const q16_t *dX, const void *scratch, size_t sb, const q16_t *dY,
                                    const q16_t *Wt, int batch, const q16_conv_params *p) {
    q16_status st;
    if (p == NULL || dX == NULL || dY == NULL || Wt == NULL) return Q16_ERR_NULL;
    st = q16c_check_batch(p, batch);
    if (st != Q16_OK) return st;
    {
        const void *ptr[4] = {dX, scratch, dY, Wt};
        size_t bytes[4];
        bytes[0] = Q16I_BYTES(Q16C_IN_WORDS(p) * (size_t)batch);
        bytes[1] = sb;
        bytes[2] = Q16I_BYTES(Q16C_OUT_WORDS(p) * (size_t)batch);
        bytes[3] = Q16I_BYTES(Q16C_W_WORDS(p));
        if (q16c_any_overlap(ptr, bytes, 2, 4)) return Q16_ERR_OVERLAP;
    }
    return Q16_OK;
}

q16_status q16c_check_weights(const q16_t *W, const q16_t *bias, const void *scratch, size_t sb, const q16_t *dY,
                              const q16_t *X, int batch, const q16_conv_params *p) {
    q16_status st;
    if (p == NULL || W == NULL || dY == NULL || X == NULL) return Q16_ERR_NULL;
    st = q16c_check_batch(p, batch);
    if (st != Q16_OK) return st;
    {
        const void *ptr[5] = {W, bias, scratch, dY, X};
        size_t bytes[5];
        bytes[0] = Q16I_BYTES(Q16C_W_WORDS(p));
        bytes[1] = Q16I_BYTES(p->F);
        bytes[2] = sb;
        bytes[3] = Q16I_BYTES(Q16C_OUT_WORDS(p) * (size_t)batch);
        bytes[4] = Q16I_BYTES(Q16C_IN_WORDS(p) * (size_t)batch);
        if (q16c_any_overlap(ptr, bytes, 3, 5)) return Q16_ERR_OVERLAP;
    }
    return Q16_OK;
}

q16_status q16c_check_weights_riemannian(const q16_t *W, const q16_t *bias, const q16_t *phi, const void *scratch,
                                         size_t sb, const q16_t *dY, const q16_t *X, q16_t alpha, q16_phi_kind kind,
                                         int batch, const q16_conv_params *p) {
    q16_status st;
    if (p == NULL || W == NULL || dY == NULL || X == NULL) return Q16_ERR_NULL;
    if (kind == Q16_PHI_GRAD_SQUARED && phi == NULL) return Q16_ERR_NULL;
    st = q16r_check_metric(kind, alpha);
    if (st != Q16_OK) return st;
    st = q16c_check_batch(p, batch);
    if (st != Q16_OK) return st;
    {
        const void *ptr[6] = {W, bias, kind == Q16_PHI_GRAD_SQUARED ? (const void *)phi : NULL, scratch, dY, X};
        size_t bytes[6];
        bytes[0] = Q16I_BYTES(Q16C_W_WORDS(p));
        bytes[1] = Q16I_BYTES(p->F);
        bytes[2] = Q16I_BYTES(Q16C_W_WORDS(p) + (size_t)p->F);
        bytes[3] = sb;
        bytes[4] = Q16I_BYTES(Q16C_OUT_WORDS(p) * (size_t)batch);
        bytes[5] = Q16I_BYTES(Q16C_IN_WORDS(p) * (size_t)batch);
        if (q16c_any_overlap(ptr, bytes, 4, 6)) return Q16_ERR_OVERLAP;
    }
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* Forward                                                              */
/* ------------------------------------------------------------------ */

q16_status q16_conv_forward(q16_t *Y, q16_t *scratch, const q16_t *X, const q16_t *Wt, const q16_t *bias, int batch,
                            const q16_conv_params *p, uint64_t *sat) {
    size_t K, K1, P, b;
    const q16_t *A;
    q16_t *col;
    uint64_t nsat = 0;
    int safe, wide;
    q16_status st = q16c_check_forward(Y, scratch, scratch ? q16_conv_forward_buffer_size(p) : 0, X, Wt, bias,
                                       batch, p);
    if (st != Q16_OK) return st;
    if (scratch == NULL) return q16_ref_conv_forward(Y, X, Wt, bias, batch, p, sat);
    K = Q16C_K(p);
    { /* the pre-pass bound over the whole call: the patches hold values of X (and Q16_ONE with a bias) */
        uint32_t ma = q16i_maxabs(Wt, Q16C_W_WORDS(p)), mb = q16i_maxabs(X, Q16C_IN_WORDS(p) * (size_t)batch);
        if (bias) {
            const uint32_t mbias = q16i_maxabs(bias, (size_t)p->F);
            ma = mbias > ma ? mbias : ma;
            mb = mb > (uint32_t)Q16_ONE ? mb : (uint32_t)Q16_ONE;
        }
        safe = q16i_int64_safe(ma, mb, (uint64_t)K + 1u, 0);
        wide = q16c_wide_tiles();
    }
    P = (size_t)p->Ho * (size_t)p->Wo;
    col = scratch + (size_t)p->F * (K + 1u);
    if (bias) {
        /* A[F x (K + 1)]: the weights with the bias as the last column */
        q16_t *Aw = scratch;
        size_t f;
        K1 = K + 1u;
        for (f = 0; f < (size_t)p->F; f++) {
            memcpy(Aw + f * K1, Wt + f * K, K * sizeof(q16_t));
            Aw[f * K1 + K] = bias[f];
        }
        A = Aw;
    } else {
        K1 = K;
        A = Wt;
    }
    for (b = 0; b < (size_t)batch; b++) {
        q16c_im2col(col, X + b * Q16C_IN_WORDS(p), p, bias != NULL);
        if (safe) {
            q16c_gemm(Y + b * Q16C_OUT_WORDS(p), A, col, p->F, (int)P, (int)K1, wide, &nsat);
        } else {
            st = q16_gemm_nn(Y + b * Q16C_OUT_WORDS(p), A, col, p->F, (int)P, (int)K1, sat);
            if (st != Q16_OK) return st; /* unreachable: the shapes were checked */
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* Backward data                                                        */
/* ------------------------------------------------------------------ */

/*
 * dYcol[(f*nu + a)*nv + e][t*Wp + t2] = dYb[f][i0 + t - a][j0 + t2 - e] (0 outside dY),
 * for the taps u = u0 + a*sh, v = v0 + e*sw of phase (py, px), where
 * i0 = (py + pt - u0) / sh and j0 = (px + pl - v0) / sw (exact divisions).
 */
Q16_MV static void q16c_gather_dy(q16_t *Q16_RESTRICT dcol, const q16_t *Q16_RESTRICT dYb,
                                  const q16_conv_params *p, int i0, int j0, int nu, int nv, int Hp, int Wp) {
    const int Ho = p->Ho, Wo = p->Wo;
    const size_t HW = (size_t)Hp * (size_t)Wp;
    q16_t *Q16_RESTRICT row = dcol;
    int f, a, e, t, t2;
    for (f = 0; f < p->F; f++) {
        const q16_t *Q16_RESTRICT plane = dYb + (size_t)f * (size_t)Ho * (size_t)Wo;
        for (a = 0; a < nu; a++) {
            const int ib = i0 - a; /* i = ib + t */
            for (e = 0; e < nv; e++, row += HW) {
                const int jb = j0 - e; /* j = jb + t2 */
                int lo, hi;
                q16c_valid_range(&lo, &hi, jb, 1, Wo, Wp);
                for (t = 0; t < Hp; t++) {
                    q16_t *Q16_RESTRICT dst = row + (size_t)t * (size_t)Wp;
                    const int i = ib + t;
                    if (i < 0 || i >= Ho) {
                        for (t2 = 0; t2 < Wp; t2++) dst[t2] = 0;
                        continue;
                    }
                    {
                        const q16_t *Q16_RESTRICT src = plane + (size_t)i * (size_t)Wo;
                        for (t2 = 0; t2 < lo; t2++) dst[t2] = 0;
                        for (t2 = lo; t2 < hi; t2++) dst[t2] = src[t2 + jb];
                        for (t2 = hi; t2 < Wp; t2++) dst[t2] = 0;
                    }
                }
            }
        }
    }
}

q16_status q16_conv_backward_data(q16_t *dX, q16_t *scratch, const q16_t *dY, const q16_t *Wt, int batch,
                                  const q16_conv_params *p, uint64_t *sat) {
    const int sh = p ? p->stride_h : 1, sw = p ? p->stride_w : 1;
    int py, px;
    q16_status st = q16c_check_backward_data(dX, scratch, scratch ? q16_conv_backward_data_buffer_size(p) : 0, dY,
                                             Wt, batch, p);
    if (st != Q16_OK) return st;
    if (scratch == NULL) return q16_ref_conv_backward_data(dX, dY, Wt, batch, p, sat);
    {
        const int C = p->C, H = p->H, W = p->W, F = p->F, kh = p->kh, kw = p->kw;
        const size_t taps_max = (size_t)q16c_bd_taps(p), pos_max = (size_t)q16c_bd_pos(p);
        const int strided = q16c_strided(p);
        /* the pre-pass bound over the whole call: W' holds values of Wt, dYcol values of dY (or 0) */
        const int safe = q16i_int64_safe(q16i_maxabs(Wt, Q16C_W_WORDS(p)),
                                         q16i_maxabs(dY, Q16C_OUT_WORDS(p) * (size_t)batch), taps_max, 0);
        const int wide = q16c_wide_tiles();
        uint64_t nsat = 0;
        q16_t *Wph = scratch;                                      /* [C x taps] */
        q16_t *dcol = Wph + (size_t)C * taps_max;                  /* [taps x Hp*Wp] */
        q16_t *stage = dcol + taps_max * pos_max;                  /* [C x Hp*Wp] (strided only) */
        for (py = 0; py < sh && py < H; py++) {
            for (px = 0; px < sw && px < W; px++) {
                const int Hp = q16c_phase_len(H, py, sh), Wp = q16c_phase_len(W, px, sw);
                const int u0 = (py + p->pad_top) % sh, v0 = (px + p->pad_left) % sw;
                const int nu = q16c_phase_len(kh, u0, sh), nv = q16c_phase_len(kw, v0, sw);
                const int taps = F * nu * nv, HW = Hp * Wp;
                const int i0 = (py + p->pad_top - u0) / sh, j0 = (px + p->pad_left - v0) / sw;
                size_t b;
                if (taps == 0) { /* no tap reaches this phase: its gradient is 0 */
                    for (b = 0; b < (size_t)batch; b++) {
                        q16_t *dXb = dX + b * Q16C_IN_WORDS(p);
                        int c, t, t2;
                        for (c = 0; c < C; c++)
                            for (t = 0; t < Hp; t++)
                                for (t2 = 0; t2 < Wp; t2++)
                                    dXb[((size_t)c * (size_t)H + (size_t)(py + t * sh)) * (size_t)W +
                                        (size_t)(px + t2 * sw)] = 0;
                    }
                    continue;
                }
                { /* W'[c][(f*nu + a)*nv + e] = Wt[f][c][u0 + a*sh][v0 + e*sw] */
                    int c, f, a, e;
                    q16_t *dst = Wph;
                    for (c = 0; c < C; c++)
                        for (f = 0; f < F; f++)
                            for (a = 0; a < nu; a++) {
                                const q16_t *src = Wt + (((size_t)f * (size_t)C + (size_t)c) * (size_t)kh +
                                                         (size_t)(u0 + a * sh)) * (size_t)kw + (size_t)v0;
                                for (e = 0; e < nv; e++) *dst++ = src[(size_t)e * (size_t)sw];
                            }
                }
                for (b = 0; b < (size_t)batch; b++) {
                    q16_t *dXb = dX + b * Q16C_IN_WORDS(p);
                    q16c_gather_dy(dcol, dY + b * Q16C_OUT_WORDS(p), p, i0, j0, nu, nv, Hp, Wp);
                    if (safe) {
                        q16c_gemm(strided ? stage : dXb, Wph, dcol, C, HW, taps, wide, &nsat);
                    } else {
                        st = q16_gemm_nn(strided ? stage : dXb, Wph, dcol, C, HW, taps, sat);
                        if (st != Q16_OK) return st; /* unreachable: the shapes were checked */
                    }
                    if (strided) {
                        int c, t, t2;
                        const q16_t *src = stage;
                        for (c = 0; c < C; c++)
                            for (t = 0; t < Hp; t++) {
                                q16_t *drow = dXb + ((size_t)c * (size_t)H + (size_t)(py + t * sh)) * (size_t)W +
                                              (size_t)px;
                                for (t2 = 0; t2 < Wp; t2++) drow[(size_t)t2 * (size_t)sw] = *src++;
                            }
                    }
                }
            }
        }
        if (sat) *sat += nsat;
    }
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* Weight gradient: exact int64 sums                                    */
/* ------------------------------------------------------------------ */

/*
 * acc[r][k] += sum_p dy[r][p] * col[k][p] for r < fr, k < K (rows of dy and col P apart).
 * Blocks of 4 filters x 4 taps, vectorised along p; the caller guarantees no int64 overflow.
 */
#define WG_RA 4
#define WG_RB 4
#if Q16_NEON && WG_RB != Q16N_DT_MAX
#error "WG_RB must equal Q16N_DT_MAX (q16_gemm_neon.h)"
#endif

Q16_INLINE void q16c_wg_block(int64_t *Q16_RESTRICT acc, size_t ldacc, const q16_t *Q16_RESTRICT dy,
                              const q16_t *Q16_RESTRICT col, size_t P, int ra, int rb) {
    int64_t s[WG_RA][WG_RB];
    int r, c;
    for (r = 0; r < ra; r++)
        for (c = 0; c < rb; c++) s[r][c] = 0;
#if Q16_NEON
    q16n_dot_sums(s, dy, P, col, P, P, ra, rb); /* q16_gemm_neon.h */
#else
    {
        size_t q;
        for (q = 0; q < P; q++)
            for (r = 0; r < ra; r++)
                for (c = 0; c < rb; c++)
                    s[r][c] += (int64_t)dy[(size_t)r * P + q] * (int64_t)col[(size_t)c * P + q];
    }
#endif
    for (r = 0; r < ra; r++)
        for (c = 0; c < rb; c++) acc[(size_t)r * ldacc + (size_t)c] += s[r][c];
}

Q16_MV static void q16c_wg_accumulate(int64_t *acc, const q16_t *dy, const q16_t *col, int fr, int K, size_t P) {
    int r0, k0;
    const size_t ld = (size_t)K;
    for (r0 = 0; r0 < fr; r0 += WG_RA) {
        const int ra = fr - r0 < WG_RA ? fr - r0 : WG_RA;
        for (k0 = 0; k0 < K; k0 += WG_RB) {
            const int rb = K - k0 < WG_RB ? K - k0 : WG_RB;
            int64_t *a = acc + (size_t)r0 * ld + (size_t)k0;
            const q16_t *d = dy + (size_t)r0 * P, *cc = col + (size_t)k0 * P;
            if (ra == WG_RA && rb == WG_RB) {
                q16c_wg_block(a, ld, d, cc, P, WG_RA, WG_RB);
            } else {
                int r, c;
                for (r = 0; r < ra; r++)
                    for (c = 0; c < rb; c++)
                        q16c_wg_block(a + (size_t)r * ld + (size_t)c, ld, d + (size_t)r * P, cc + (size_t)c * P, P,
                                      1, 1);
            }
        }
    }
}

/* 1 when the int64 weight sums cannot overflow: batch*Ho*Wo * max|dY| * max|X| <= INT64_MAX. */
static int q16c_weights_int64_safe(const q16_t *dY, const q16_t *X, int batch, const q16_conv_params *p) {
    return q16i_int64_safe(q16i_maxabs(dY, Q16C_OUT_WORDS(p) * (size_t)batch),
                           q16i_maxabs(X, Q16C_IN_WORDS(p) * (size_t)batch),
                           (uint64_t)batch * (uint64_t)p->Ho * (uint64_t)p->Wo, 0);
}

/* The exact bias sum sum_{b,i,j} dY[b][f][i][j]; |sum| <= 2^31 * 2^31 = 2^62. */
static int64_t q16c_bias_sum(const q16_t *dY, int batch, const q16_conv_params *p, int f) {
    const size_t P = (size_t)p->Ho * (size_t)p->Wo;
    int64_t s = 0;
    size_t b, q;
    for (b = 0; b < (size_t)batch; b++) {
        const q16_t *row = dY + b * Q16C_OUT_WORDS(p) + (size_t)f * P;
        for (q = 0; q < P; q++) s += row[q];
    }
    return s;
}

/*
 * The exact sums for filters [f0, f0 + fr) in acc[fr x K] (int64), gathering the
 * patches of every sample into col.
 */
static void q16c_weight_sums(int64_t *acc, q16_t *col, const q16_t *dY, const q16_t *X, int batch,
                             const q16_conv_params *p, int f0, int fr) {
    const int K = (int)Q16C_K(p);
    const size_t P = (size_t)p->Ho * (size_t)p->Wo;
    size_t b, n = (size_t)fr * (size_t)K;
    memset(acc, 0, n * sizeof(int64_t));
    for (b = 0; b < (size_t)batch; b++) {
        q16c_im2col(col, X + b * Q16C_IN_WORDS(p), p, 0);
        q16c_wg_accumulate(acc, dY + b * Q16C_OUT_WORDS(p) + (size_t)f0 * P, col, fr, K, P);
    }
}

/* Scratch split of the weight kernels. */
static q16_t *q16c_wg_col(int64_t *scratch, const q16_conv_params *p) {
    return (q16_t *)(void *)(scratch + (size_t)q16c_fblock(p) * Q16C_K(p));
}

q16_status q16_conv_weight_grad(q16_t *dW, q16_t *dB, int64_t *scratch, const q16_t *dY, const q16_t *X, int batch,
                                const q16_conv_params *p, uint64_t *sat) {
    q16_status st = q16c_check_weights(dW, dB, scratch, scratch ? q16_conv_weight_buffer_size(p) : 0, dY, X, batch, p);
    uint64_t nsat = 0;
    int f0, f;
    if (st != Q16_OK) return st;
    if (scratch == NULL || !q16c_weights_int64_safe(dY, X, batch, p))
        return q16_ref_conv_weight_grad(dW, dB, dY, X, batch, p, sat);
    {
        const size_t K = Q16C_K(p);
        const int FB = q16c_fblock(p);
        q16_t *col = q16c_wg_col(scratch, p);
        for (f0 = 0; f0 < p->F; f0 += FB) {
            const int fr = p->F - f0 < FB ? p->F - f0 : FB;
            size_t i, n = (size_t)fr * K;
            q16_t *out = dW + (size_t)f0 * K;
            q16c_weight_sums(scratch, col, dY, X, batch, p, f0, fr);
            for (i = 0; i < n; i++) out[i] = q16i_round_sat64(scratch[i], &nsat);
        }
    }
    if (dB)
        for (f = 0; f < p->F; f++) dB[f] = q16s_sat(q16c_bias_sum(dY, batch, p, f), &nsat);
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* W[i] -= SR(acc[i] * L / 2^48), counter + (first + i); int64 sums. */
Q16_MV static uint64_t q16c_sr_apply(q16_t *Q16_RESTRICT W, const int64_t *Q16_RESTRICT acc, size_t n, uint32_t L,
                                     uint64_t seed, uint64_t cbase) {
    uint64_t nsat = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t d = q16s_sr_mul(acc[i], L, 1, q16s_rng(seed, cbase + (uint64_t)i)); /* |d| < 2^47 */
        W[i] = q16s_sat((int64_t)W[i] - d, &nsat);
    }
    return nsat;
}

q16_status q16_conv_backward_weights_sr(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                                        uint32_t lr_q32, int batch, const q16_conv_params *p, uint64_t seed,
                                        uint64_t counter, uint64_t *sat) {
    q16_status st = q16c_check_weights(W, bias, scratch, scratch ? q16_conv_weight_buffer_size(p) : 0, dY, X, batch, p);
    uint64_t nsat = 0;
    int f0, f;
    if (st != Q16_OK) return st;
    if (scratch == NULL || !q16c_weights_int64_safe(dY, X, batch, p))
        return q16_ref_conv_backward_weights_sr(W, bias, dY, X, lr_q32, batch, p, seed, counter, sat);
    {
        const size_t K = Q16C_K(p);
        const int FB = q16c_fblock(p);
        q16_t *col = q16c_wg_col(scratch, p);
        for (f0 = 0; f0 < p->F; f0 += FB) {
            const int fr = p->F - f0 < FB ? p->F - f0 : FB;
            const size_t first = (size_t)f0 * K;
            q16c_weight_sums(scratch, col, dY, X, batch, p, f0, fr);
            nsat += q16c_sr_apply(W + first, scratch, (size_t)fr * K, lr_q32, seed, counter + (uint64_t)first);
        }
        if (bias) {
            const uint64_t cb = counter + (uint64_t)p->F * (uint64_t)K;
            for (f = 0; f < p->F; f++) {
                int64_t d = q16s_bias_step(q16c_bias_sum(dY, batch, p, f), lr_q32, q16s_rng(seed, cb + (uint64_t)f));
                bias[f] = q16s_sat((int64_t)bias[f] - d, &nsat);
            }
        }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}

/* ------------------------------------------------------------------ */
/* Fused Riemannian update                                              */
/* ------------------------------------------------------------------ */

/*
 * The exact weight sums as in q16_conv_backward_weights_sr (int64 blocks; the 128-bit reference
 * when the pre-pass bound fails), each clamped once to +-2^62 (counted), then the dense kernel's
 * per-parameter step (q16r_step): the same step, rounding and random words as
 * q16_update_outer_riemannian_sr.
 */
q16_status q16_conv_backward_weights_riemannian_sr(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                                   const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                                   uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                                   q16_phi_kind kind, int batch, const q16_conv_params *p,
                                                   uint64_t seed, uint64_t counter, uint64_t *sat) {
    q16_status st = q16c_check_weights_riemannian(W, bias, phi, scratch, scratch ? q16_conv_weight_buffer_size(p) : 0,
                                                  dY, X, alpha_q16, kind, batch, p);
    uint64_t nsat = 0;
    int f0, f;
    if (st != Q16_OK) return st;
    if (scratch == NULL || !q16c_weights_int64_safe(dY, X, batch, p))
        return q16_ref_conv_backward_weights_riemannian_sr(W, bias, phi, dY, X, lr_q32, gscale_q32, alpha_q16,
                                                           rho_q32, kind, batch, p, seed, counter, sat);
    {
        const size_t K = Q16C_K(p), wn = Q16C_W_WORDS(p);
        const int FB = q16c_fblock(p);
        q16_t *col = q16c_wg_col(scratch, p);
        q16_t *ph = kind == Q16_PHI_GRAD_SQUARED ? phi : NULL; /* WEIGHT_ABS: phi is not touched */
        for (f0 = 0; f0 < p->F; f0 += FB) {
            const int fr = p->F - f0 < FB ? p->F - f0 : FB;
            const size_t first = (size_t)f0 * K, n = (size_t)fr * K;
            size_t i;
            q16c_weight_sums(scratch, col, dY, X, batch, p, f0, fr);
            for (i = 0; i < n; i++) {
                const size_t w = first + i;
                W[w] = q16r_step(W[w], ph ? ph + w : NULL, q16r_clamp62(scratch[i], &nsat), lr_q32, gscale_q32,
                                 alpha_q16, rho_q32, kind, seed, counter + (uint64_t)w, &nsat);
            }
        }
        if (bias)
            for (f = 0; f < p->F; f++) {
                const size_t at = wn + (size_t)f;
                const int64_t s = q16r_bias_s(q16c_bias_sum(dY, batch, p, f), &nsat);
                bias[f] = q16r_step(bias[f], ph ? ph + at : NULL, s, lr_q32, gscale_q32, alpha_q16, rho_q32, kind,
                                    seed, counter + (uint64_t)at, &nsat);
            }
    }
    if (sat) *sat += nsat;
    return Q16_OK;
}
