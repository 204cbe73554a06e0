/*
 * q16_gemm.c -- fast dot / gemv / gemm, bit-identical to q16_gemm_ref.c.
 *
 * Every call first bounds max|A| and max|B| (O(mk + kn) work). If
 *     k * max|A| * max|B| (+ |bias| * 2^16)  <=  2^63 - 1
 * no partial sum of exact Q32.32 products can overflow int64, in any order,
 * so the sums are accumulated in plain int64 by a register-blocked,
 * auto-vectorised microkernel and rounded/saturated exactly like the
 * reference. Otherwise (only for huge values and/or huge k) the call falls
 * back to the exact 128-bit reference loops. Both paths compute the exact
 * sum, so the results are bit-identical.
 *
 * Microkernels:
 *  - nn / tn ("axpy" form): an MR x NR tile of int64 accumulators; for each p
 *    a row of NR values of B is multiplied by MR broadcast values of A.
 *    Rows of B are read in place (no packing, no allocation).
 *  - nt / gemv / dot ("dot" form): both operands are contiguous along k, so
 *    an RA x RB block of dot products is vectorised along k with int64 lanes
 *    and reduced at the end.
 * The code is portable C99; on x86-64 Linux (GCC/clang) the drivers are
 * compiled three times (AVX-512F, AVX2, baseline) with target_clones and the
 * loader picks one (define Q16_NO_MULTIVERSION to disable).
 */
#include "q16.h"
#include "q16_gemm_impl.h"

/* Q16_MV (target_clones), Q16_INLINE and Q16_RESTRICT come from q16_gemm_impl.h. */

/* ------------------------------------------------------------------ */
/* Overflow pre-pass                                                    */
/* ------------------------------------------------------------------ */

/** max |x[i]| as an unsigned value (|Q16_MIN| = 2^31 is representable); shared by the
    overflow pre-passes of every kernel file (declared in q16_gemm_impl.h). */
Q16_MV uint32_t q16i_maxabs(const q16_t *Q16_RESTRICT x, size_t n) {
    uint32_t mx = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)x[i];
        uint32_t s = 0u - (u >> 31); /* all ones if negative */
        uint32_t a = (u ^ s) - s;    /* |x|, wrapping: |-2^31| = 2^31 */
        mx = a > mx ? a : mx;
    }
    return mx;
}

/* ------------------------------------------------------------------ */
/* nn / tn: axpy microkernel                                            */
/* ------------------------------------------------------------------ */
/*
 * An mr x nr tile of C: C[r][c] = sum_p A(r, p) * B[p][c], with
 * A(r, p) = A[r*a_rs + p*a_cs] (nn: a_rs = k, a_cs = 1; tn: a_rs = 1, a_cs = m).
 * The caller guarantees that the int64 sums cannot overflow. The sums, the pair
 * loads (Q16_PAIRS: x86) and the tile shapes (AX_*) are in q16_gemm_impl.h.
 */
/* A tile without pair loads (every target's edge tiles, and all tiles where Q16_PAIRS is 0). */
Q16_INLINE void ax_tile_plain(q16_t *Q16_RESTRICT C, size_t ldc, size_t c_cs, const q16_t *Q16_RESTRICT rbias,
                              const q16_t *Q16_RESTRICT A, size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B,
                              size_t ldb, int k, int mr, int nr, uint64_t *nsat) {
    int64_t acc[AX_MAX_MR][AX_MAX_NR];
    int r, c;
    q16i_ax_sums(acc, rbias, A, a_rs, a_cs, B, ldb, k, mr, nr);
    for (r = 0; r < mr; r++)
        for (c = 0; c < nr; c++) C[(size_t)r * ldc + (size_t)c * c_cs] = q16i_round_sat64(acc[r][c], nsat);
}

Q16_INLINE void ax_tile(q16_t *Q16_RESTRICT C, size_t ldc, size_t c_cs, const q16_t *Q16_RESTRICT rbias,
                        const q16_t *Q16_RESTRICT A, size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B,
                        size_t ldb, int k, int mr, int nr, uint64_t *nsat) {
#if Q16_PAIRS
    int64_t lo[AX_MAX_MR][AX_MAX_NR / 2], hi[AX_MAX_MR][AX_MAX_NR / 2];
    const int np = nr / 2; /* column pairs */
    int r, c;
    const int le = q16i_little_endian();
    q16i_ax_sums_pairs(lo, hi, rbias, A, a_rs, a_cs, B, ldb, k, mr, np);
    for (r = 0; r < mr; r++) {
        q16_t *Q16_RESTRICT cr = C + (size_t)r * ldc;
        for (c = 0; c < np; c++) {
            cr[(size_t)(2 * c + (le ? 0 : 1)) * c_cs] = q16i_round_sat64(lo[r][c], nsat);
            cr[(size_t)(2 * c + (le ? 1 : 0)) * c_cs] = q16i_round_sat64(hi[r][c], nsat);
        }
    }
#else
    ax_tile_plain(C, ldc, c_cs, rbias, A, a_rs, a_cs, B, ldb, k, mr, nr, nsat);
#endif
}

/* Edge tile with run-time sizes: mr <= AX_MAX_MR rows, nr <= AX_MAX_NR columns. */
static void ax_tile_edge(q16_t *Q16_RESTRICT C, size_t ldc, size_t c_cs, const q16_t *Q16_RESTRICT rbias,
                         const q16_t *Q16_RESTRICT A, size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B,
                         size_t ldb, int mr, int nr, int k, uint64_t *nsat) {
    ax_tile_plain(C, ldc, c_cs, rbias, A, a_rs, a_cs, B, ldb, k, mr, nr, nsat);
}

/*
 * C(m x n) = A(m x k) * B[k x n] (+ rbias[r] on row r; rbias may be NULL);
 * int64-safe. Element (r, c) of C is stored at C[r*ldc + c*c_cs] (c_cs = 1:
 * row-major; the packed gemm_nt path stores the transpose). Column panels of
 * NR (then NR/2) columns; within a panel, tiles of MR rows (then 2, then
 * single rows); leftover columns (< NR/2) use the run-time-sized edge tile. A panel
 * of B (k x NR values) is reused from cache by all the row tiles.
 */
Q16_INLINE void ax_driver_impl(q16_t *C, size_t ldc, size_t c_cs, const q16_t *rbias, const q16_t *A, size_t a_rs,
                               size_t a_cs, const q16_t *B, size_t ldb, int m, int n, int k, const int MR,
                               const int NR, uint64_t *nsat) {
    int i0, j0 = 0;
#define AX_C(i, j) (C + (size_t)(i) * ldc + (size_t)(j) * c_cs)
#define AX_RB(i) (rbias ? rbias + (i) : NULL)
    for (; j0 + NR <= n; j0 += NR) {
        for (i0 = 0; i0 + MR <= m; i0 += MR)
            ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k, MR,
                    NR, nsat);
        if (MR > 2)
            for (; i0 + 2 <= m; i0 += 2)
                ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k,
                        2, NR, nsat);
        for (; i0 < m; i0++)
            ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k, 1,
                    NR, nsat);
    }
    if (NR >= 4 && j0 + NR / 2 <= n) {
        for (i0 = 0; i0 + MR <= m; i0 += MR)
            ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k, MR,
                    NR / 2, nsat);
        if (MR > 2)
            for (; i0 + 2 <= m; i0 += 2)
                ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k,
                        2, NR / 2, nsat);
        for (; i0 < m; i0++)
            ax_tile(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, k, 1,
                    NR / 2, nsat);
        j0 += NR / 2;
    }
    if (j0 < n) {
        for (i0 = 0; i0 < m; i0 += AX_MAX_MR) {
            int mr = m - i0 < AX_MAX_MR ? m - i0 : AX_MAX_MR;
            ax_tile_edge(AX_C(i0, j0), ldc, c_cs, AX_RB(i0), A + (size_t)i0 * a_rs, a_rs, a_cs, B + j0, ldb, mr,
                         n - j0, k, nsat);
        }
    }
#undef AX_C
#undef AX_RB
}

/* `wide`: the CPU has AVX-512 (32 vector registers): use the big tile. */
Q16_MV static void ax_driver(q16_t *C, const q16_t *A, size_t a_rs, size_t a_cs, const q16_t *B, int m, int n,
                             int k, int wide, uint64_t *sat) {
    uint64_t nsat = 0;
#if Q16_PAIRS
    if (wide)
        ax_driver_impl(C, (size_t)n, 1, NULL, A, a_rs, a_cs, B, (size_t)n, m, n, k, AX_WIDE_MR, AX_WIDE_NR, &nsat);
    else
#endif
        ax_driver_impl(C, (size_t)n, 1, NULL, A, a_rs, a_cs, B, (size_t)n, m, n, k, AX_NARROW_MR, AX_NARROW_NR,
                       &nsat);
    (void)wide;
    if (sat) *sat += nsat;
}

/* ------------------------------------------------------------------ */
/* nt / gemv / dot: dot-product microkernel (both operands along k)     */
/* ------------------------------------------------------------------ */
/*
 * An ra x rb block of dot products: C[r][c] = init[c] + sum_p A[r][p] * B[c][p]
 * (rows of A lda apart, rows of B ldb apart), vectorised along p. ra, rb are
 * compile-time constants at every call site.
 */

#define DT_RA 4
#define DT_RB 4
#if Q16_NEON && DT_RB != Q16N_DT_MAX
#error "DT_RB must equal Q16N_DT_MAX (q16_gemm_neon.h)"
#endif

Q16_INLINE void dt_block(q16_t *Q16_RESTRICT C, size_t ldc, const q16_t *Q16_RESTRICT A, size_t lda,
                         const q16_t *Q16_RESTRICT B, size_t ldb, const int64_t *init, int k, int ra, int rb,
                         uint64_t *nsat) {
    int64_t acc[DT_RA][DT_RB];
    int r, c, p = 0;
    for (r = 0; r < ra; r++)
        for (c = 0; c < rb; c++) acc[r][c] = init[c];
#if Q16_PAIRS
    {
        /* Pairs along p: lo*lo + hi*hi is the sum of the two products. */
        int q, kp = k / 2;
        for (q = 0; q < kp; q++) {
            uint64_t wa[DT_RA], wb[DT_RB];
            for (r = 0; r < ra; r++) wa[r] = q16i_load_pair(A + (size_t)r * lda + 2 * (size_t)q);
            for (c = 0; c < rb; c++) wb[c] = q16i_load_pair(B + (size_t)c * ldb + 2 * (size_t)q);
            for (r = 0; r < ra; r++)
                for (c = 0; c < rb; c++)
                    acc[r][c] += q16i_lo(wa[r]) * q16i_lo(wb[c]) + q16i_hi(wa[r]) * q16i_hi(wb[c]);
        }
        p = 2 * kp;
    }
#endif
#if Q16_NEON
    q16n_dot_sums(acc, A, lda, B, ldb, (size_t)k, ra, rb);
    (void)p;
#else
    for (; p < k; p++)
        for (r = 0; r < ra; r++)
            for (c = 0; c < rb; c++)
                acc[r][c] += (int64_t)A[(size_t)r * lda + (size_t)p] * (int64_t)B[(size_t)c * ldb + (size_t)p];
#endif
    for (r = 0; r < ra; r++)
        for (c = 0; c < rb; c++) C[(size_t)r * ldc + (size_t)c] = q16i_round_sat64(acc[r][c], nsat);
}

/* C[m x n] = A[m x k] * B[n x k]^T + bias[n]; int64-safe. */
Q16_MV static void dt_driver(q16_t *C, const q16_t *A, const q16_t *B, const q16_t *bias, int m, int n,
                             int k, uint64_t *sat) {
    uint64_t nsat = 0;
    int i0, j0, c;
    const size_t ld = (size_t)k, ldc = (size_t)n;
    for (i0 = 0; i0 < m; i0 += DT_RA) {
        int ra = m - i0 < DT_RA ? m - i0 : DT_RA;
        const q16_t *At = A + (size_t)i0 * ld;
        for (j0 = 0; j0 < n; j0 += DT_RB) {
            int rb = n - j0 < DT_RB ? n - j0 : DT_RB;
            int64_t init[DT_RB];
            q16_t *Ct = C + (size_t)i0 * ldc + (size_t)j0;
            const q16_t *Bt = B + (size_t)j0 * ld;
            for (c = 0; c < rb; c++) init[c] = bias ? q16i_bias_q32(bias[j0 + c]) : 0;
            if (ra == DT_RA && rb == DT_RB) {
                dt_block(Ct, ldc, At, ld, Bt, ld, init, k, DT_RA, DT_RB, &nsat);
            } else {
                int r;
                for (r = 0; r < ra; r++)
                    for (c = 0; c < rb; c++)
                        dt_block(Ct + (size_t)r * ldc + (size_t)c, ldc, At + (size_t)r * ld, ld,
                                 Bt + (size_t)c * ld, ld, init + c, k, 1, 1, &nsat);
            }
        }
    }
    if (sat) *sat += nsat;
}

/*
 * gemm_nt for small k, the shape of a dense layer's forward pass with a
 * small batch (m = 32, k = 64..128): the dot form above needs one horizontal
 * reduction per output, which costs as much as the k loop itself at such k.
 * Instead, up to NT_PACK values of A are transposed into the caller's scratch
 * At[k x mc] (a block of mc rows of A; q16_gemm_nt_buffer_size), and C^T[n x mc] = B[n x k] * At[k x mc]
 * is computed by the axpy microkernel (rows of B broadcast, rows of At as
 * vectors), storing the transpose and starting each row from its bias.
 * No horizontal reduction, and each row of B is read once per block of rows.
 */
#define NT_PACK 4096 /* q16 values: at most 16 KiB of caller scratch */

/*
 * 1 if the packed path applies and pays: a block holds >= min(m, AX_WIDE_NR)
 * rows of A, and n is not small against k (packing costs ~ m*k, the
 * reductions it saves ~ m*n; with n = 10, k = 128 the dot form is faster).
 */
static int nt_pack_ok(int m, int n, int k) {
    int want = m < AX_WIDE_NR ? m : AX_WIDE_NR;
    return want >= 8 && k <= NT_PACK / want && (size_t)n * 4u >= (size_t)k;
}

/* Rows of A per packed block (valid when nt_pack_ok). */
static int nt_pack_rows(int m, int k) {
    int mc = NT_PACK / k;
    if (mc >= m) return m;
    return mc - mc % AX_WIDE_NR; /* >= AX_WIDE_NR (nt_pack_ok) */
}

/* Words of the packed block for exactly m rows (0: the unpacked path). */
static size_t nt_pack_words(int m, int n, int k) {
    return nt_pack_ok(m, n, k) ? (size_t)nt_pack_rows(m, k) * (size_t)k : 0u;
}

/*
 * The block is not monotone in m (a larger m can switch the packed path off or
 * round the block down to a multiple of AX_WIDE_NR), so the size is the maximum
 * over every row count 1..m: rows 1..AX_WIDE_NR one by one; above that the
 * path's condition no longer depends on m and the block is
 * min(m', NT_PACK / k) or less, so the maximum is min(m, NT_PACK / k) * k.
 */
size_t q16_gemm_nt_buffer_size(int m, int n, int k) {
    size_t best = 0, w;
    int r;
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    for (r = 1; r <= m && r <= AX_WIDE_NR; r++) {
        w = nt_pack_words(r, n, k);
        if (w > best) best = w;
    }
    if (m > AX_WIDE_NR && nt_pack_ok(AX_WIDE_NR + 1, n, k)) {
        int rows = m < NT_PACK / k ? m : NT_PACK / k;
        w = (size_t)rows * (size_t)k;
        if (w > best) best = w;
    }
    return best * sizeof(q16_t);
}

Q16_MV static void nt_pack_driver(q16_t *C, q16_t *At, const q16_t *A, const q16_t *B, const q16_t *bias, int m,
                                  int n, int k, int wide, uint64_t *sat) {
    uint64_t nsat = 0;
    const size_t ldk = (size_t)k;
    int i0, mc = nt_pack_rows(m, k);
    for (i0 = 0; i0 < m; i0 += mc) {
        const int rows = m - i0 < mc ? m - i0 : mc;
        const size_t ldt = (size_t)rows;
        int i, p;
        for (p = 0; p < k; p++) {
            q16_t *Q16_RESTRICT atp = At + (size_t)p * ldt;
            const q16_t *Q16_RESTRICT ac = A + (size_t)i0 * ldk + (size_t)p;
            for (i = 0; i < rows; i++) atp[i] = ac[(size_t)i * ldk];
        }
        /* C^T block: row j (of n) at C + i0*n + j, column i at stride n */
#if Q16_PAIRS
        if (wide)
            ax_driver_impl(C + (size_t)i0 * (size_t)n, 1, (size_t)n, bias, B, ldk, 1, At, ldt, n, rows, k,
                           AX_WIDE_MR, AX_WIDE_NR, &nsat);
        else
#endif
            ax_driver_impl(C + (size_t)i0 * (size_t)n, 1, (size_t)n, bias, B, ldk, 1, At, ldt, n, rows, k,
                           AX_NARROW_MR, AX_NARROW_NR, &nsat);
    }
    (void)wide;
    if (sat) *sat += nsat;
}

/* y[m] = A[m x n] x[n] + bias[m]; int64-safe. Blocks of 4 rows share x. */
Q16_MV static void gv_driver(q16_t *y, const q16_t *A, const q16_t *x, const q16_t *bias, int m, int n,
                             uint64_t *sat) {
    uint64_t nsat = 0;
    int i = 0, r;
    const size_t ld = (size_t)n;
    for (; i + DT_RA <= m; i += DT_RA) {
        int64_t init[DT_RA];
        q16_t out[DT_RA];
        for (r = 0; r < DT_RA; r++) init[r] = bias ? q16i_bias_q32(bias[i + r]) : 0;
        /* x is the single "row of B"; the 4 results come out as a 1 x 4 block */
        dt_block(out, 1, x, 0, A + (size_t)i * ld, ld, init, n, 1, DT_RA, &nsat);
        for (r = 0; r < DT_RA; r++) y[i + r] = out[r];
    }
    for (; i < m; i++) {
        int64_t init = bias ? q16i_bias_q32(bias[i]) : 0;
        dt_block(y + i, 1, A + (size_t)i * ld, ld, x, ld, &init, n, 1, 1, &nsat);
    }
    if (sat) *sat += nsat;
}

Q16_MV static void dot_driver(q16_t *out, const q16_t *a, const q16_t *b, int n, uint64_t *sat) {
    const int64_t init = 0;
    uint64_t nsat = 0;
    dt_block(out, 1, a, (size_t)n, b, (size_t)n, &init, n, 1, 1, &nsat);
    if (sat) *sat += nsat;
}

/* ------------------------------------------------------------------ */
/* Public kernels                                                       */
/* ------------------------------------------------------------------ */

static uint64_t q16i_bias_extra(const q16_t *bias, int count) {
    return bias ? (uint64_t)q16i_maxabs(bias, (size_t)count) << 16 : 0u;
}

q16_status q16_dot(q16_t *out, const q16_t *a, const q16_t *b, int n, uint64_t *sat) {
    q16_status st = q16i_check_dot(out, a, b, n);
    if (st != Q16_OK) return st;
    if (!q16i_int64_safe(q16i_maxabs(a, (size_t)n), q16i_maxabs(b, (size_t)n), n, 0))
        return q16_ref_dot(out, a, b, n, sat);
    dot_driver(out, a, b, n, sat);
    return Q16_OK;
}

q16_status q16_gemv(q16_t *y, const q16_t *A, const q16_t *x, const q16_t *bias, int m, int n,
                    uint64_t *sat) {
    q16_status st = q16i_check_gemv(y, A, x, bias, m, n);
    if (st != Q16_OK) return st;
    if (!q16i_int64_safe(q16i_maxabs(A, (size_t)m * (size_t)n), q16i_maxabs(x, (size_t)n), n,
                         q16i_bias_extra(bias, m)))
        return q16_ref_gemv(y, A, x, bias, m, n, sat);
    gv_driver(y, A, x, bias, m, n, sat);
    return Q16_OK;
}

q16_status q16_gemm_nn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat) {
    q16_status st = q16i_check_gemm(C, A, B, NULL, m, n, k);
    if (st != Q16_OK) return st;
    if (!q16i_int64_safe(q16i_maxabs(A, (size_t)m * (size_t)k), q16i_maxabs(B, (size_t)k * (size_t)n), k, 0))
        return q16_ref_gemm_nn(C, A, B, m, n, k, sat);
    ax_driver(C, A, (size_t)k, 1, B, m, n, k, q16i_wide_tiles(), sat);
    return Q16_OK;
}

q16_status q16_gemm_tn(q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k, uint64_t *sat) {
    q16_status st = q16i_check_gemm(C, A, B, NULL, m, n, k);
    if (st != Q16_OK) return st;
    if (!q16i_int64_safe(q16i_maxabs(A, (size_t)m * (size_t)k), q16i_maxabs(B, (size_t)k * (size_t)n), k, 0))
        return q16_ref_gemm_tn(C, A, B, m, n, k, sat);
    ax_driver(C, A, 1, (size_t)m, B, m, n, k, q16i_wide_tiles(), sat);
    return Q16_OK;
}

q16_status q16_gemm_nt(q16_t *C, q16_t *scratch, const q16_t *A, const q16_t *B, const q16_t *bias, int m, int n,
                       int k, uint64_t *sat) {
    size_t sb;
    q16_status st = q16i_check_gemm(C, A, B, bias, m, n, k);
    if (st != Q16_OK) return st;
    sb = nt_pack_words(m, n, k) * sizeof(q16_t); /* this call's block (<= the buffer size) */
    if (scratch && sb > 0 &&
        (q16i_overlap(scratch, sb, C, Q16I_BYTES((size_t)m * (size_t)n)) ||
         q16i_overlap(scratch, sb, A, Q16I_BYTES((size_t)m * (size_t)k)) ||
         q16i_overlap(scratch, sb, B, Q16I_BYTES((size_t)k * (size_t)n)) ||
         q16i_overlap(scratch, sb, bias, Q16I_BYTES(n))))
        return Q16_ERR_OVERLAP;
    if (!q16i_int64_safe(q16i_maxabs(A, (size_t)m * (size_t)k), q16i_maxabs(B, (size_t)k * (size_t)n), k,
                         q16i_bias_extra(bias, n)))
        return q16_ref_gemm_nt(C, A, B, bias, m, n, k, sat);
    if (scratch && sb > 0)
        nt_pack_driver(C, scratch, A, B, bias, m, n, k, q16i_wide_tiles(), sat);
    else
        dt_driver(C, A, B, bias, m, n, k, sat);
    return Q16_OK;
}
