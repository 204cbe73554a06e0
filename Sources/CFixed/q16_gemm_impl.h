/*
 * q16_gemm_impl.h -- private helpers shared by q16_gemm_ref.c, q16_gemm.c,
 * q16_conv.c, q16_relu.c and q16_update.c: argument validation, the exact
 * 128-bit accumulator (two uint64_t halves, no __int128), the final
 * round-to-nearest (ties away from zero) + saturate step, and the int64 axpy
 * microkernel sums of q16_gemm.c's tiles (also q16_conv.c's local GEMM).
 *
 * Not part of the public API (it lives outside include/).
 */
#ifndef Q16_GEMM_IMPL_H
#define Q16_GEMM_IMPL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "q16.h"

#if defined(__GNUC__) || defined(__clang__)
#define Q16I_UNUSED __attribute__((unused))
#define Q16_INLINE static inline __attribute__((always_inline))
#define Q16_RESTRICT __restrict
#else
#define Q16I_UNUSED
#define Q16_INLINE static inline
#define Q16_RESTRICT
#endif

/*
 * Function multiversioning for the hot loops: on x86-64 Linux with GCC or
 * clang, a function marked Q16_MV is compiled for AVX-512F, AVX2 and the
 * baseline, and the loader (ifunc) picks one. Define Q16_NO_MULTIVERSION to
 * build only for the compiler's target. Elsewhere Q16_MV is empty.
 */
/* ThreadSanitizer instruments the ifunc resolvers, which run before its runtime starts
   (the test binary crashed at load): no multiversioning under TSan. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(Q16_NO_MULTIVERSION)
#define Q16_NO_MULTIVERSION 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(Q16_NO_MULTIVERSION)
#define Q16_NO_MULTIVERSION 1
#endif

#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || defined(__GNUC__)) && \
    !defined(Q16_NO_MULTIVERSION)
#define Q16_MV __attribute__((target_clones("avx512f", "avx2", "default")))
#define Q16_HAVE_MV 1
#else
#define Q16_MV
#endif

/* ---------------- argument validation ---------------- */

/** 1 if a * b fits in int (a, b > 0). */
static Q16I_UNUSED int q16i_mul_fits(int a, int b) {
    return a <= INT_MAX / b;
}

/** 1 if the byte ranges [p, p + pb) and [q, q + qb) intersect (NULL never overlaps). */
static Q16I_UNUSED int q16i_overlap(const void *p, size_t pb, const void *q, size_t qb) {
    uintptr_t pa = (uintptr_t)p, qa = (uintptr_t)q;
    if (p == NULL || q == NULL || pb == 0 || qb == 0) return 0;
    /* differences instead of end addresses: nothing can wrap */
    return pa >= qa ? (pa - qa) < qb : (qa - pa) < pb;
}

/** Bytes of `count` q16 values (saturating at SIZE_MAX on 32-bit targets). */
static Q16I_UNUSED size_t q16i_bytes(size_t count) {
    return count > SIZE_MAX / sizeof(q16_t) ? SIZE_MAX : count * sizeof(q16_t);
}
#define Q16I_BYTES(count) q16i_bytes((size_t)(count))

/** max |x[i]| as an unsigned value (|Q16_MIN| = 2^31): the overflow pre-passes (q16_gemm.c). */
uint32_t q16i_maxabs(const q16_t *x, size_t n);

/**
 * 1 if k products of magnitude <= ma*mb plus `extra` can never overflow int64
 * (every partial sum, in any order, is bounded by k*ma*mb + extra).
 */
static Q16I_UNUSED int q16i_int64_safe(uint32_t ma, uint32_t mb, uint64_t k, uint64_t extra) {
    uint64_t prod = (uint64_t)ma * (uint64_t)mb; /* <= 2^62 */
    uint64_t room = (uint64_t)INT64_MAX - extra;
    if (prod == 0) return 1;
    return k <= room / prod;
}

/** 1 when the wide (AVX-512) tiles of the axpy microkernel (below) should be used. */
static Q16I_UNUSED int q16i_wide_tiles(void) {
#if defined(Q16_HAVE_MV)
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#elif defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

/* ---------------- exact 128-bit two's complement accumulator ---------------- */

typedef struct q16i_acc128 {
    uint64_t hi; /* bits 64..127 (two's complement, wrapping) */
    uint64_t lo; /* bits 0..63 */
} q16i_acc128;

/** acc += v (v sign-extended to 128 bits). */
static inline void q16i_acc_add(q16i_acc128 *acc, int64_t v) {
    uint64_t vl = (uint64_t)v;
    uint64_t vh = (v < 0) ? ~(uint64_t)0 : 0u;
    uint64_t lo = acc->lo + vl;
    acc->hi += vh + (uint64_t)(lo < vl);
    acc->lo = lo;
}

/** Saturate a magnitude-and-sign result of the rounding step (q = |result|). */
static inline q16_t q16i_sat_from_mag(int neg, int too_big, uint64_t q, uint64_t *sat) {
    if (!neg) {
        if (too_big || q > 0x7FFFFFFFull) {
            if (sat) *sat += 1;
            return Q16_MAX;
        }
        return (q16_t)q;
    }
    if (too_big || q > 0x80000000ull) {
        if (sat) *sat += 1;
        return Q16_MIN;
    }
    return (q16_t)(int64_t)(0 - (int64_t)q); /* q <= 2^31: -q fits int32 */
}

/**
 * The exact Q32.32 value in acc, divided by 2^16, rounded to nearest with ties
 * away from zero, then saturated to q16 (counted in *sat).
 */
static inline q16_t q16i_round_sat128(q16i_acc128 acc, uint64_t *sat) {
    int neg = (acc.hi >> 63) != 0;
    uint64_t hi = acc.hi, lo = acc.lo;
    if (neg) { /* magnitude = -acc (two's complement negate of 128 bits) */
        lo = ~lo + 1u;
        hi = ~hi + (uint64_t)(lo == 0);
    }
    {
        uint64_t lo2 = lo + 0x8000u;
        uint64_t hi2 = hi + (uint64_t)(lo2 < lo);
        int too_big = (hi2 >> 16) != 0;
        uint64_t q = (hi2 << 48) | (lo2 >> 16);
        return q16i_sat_from_mag(neg, too_big, q, sat);
    }
}

/** Same as q16i_round_sat128 for a value that fits int64 (bit-identical). */
static inline q16_t q16i_round_sat64(int64_t acc, uint64_t *sat) {
    int neg = acc < 0;
    uint64_t mag = neg ? (uint64_t)0 - (uint64_t)acc : (uint64_t)acc; /* <= 2^63 */
    uint64_t q = (mag + 0x8000u) >> 16;                                  /* no wrap */
    return q16i_sat_from_mag(neg, 0, q, sat);
}

/** bias as an exact Q32.32 accumulator value: bias * 2^16 (no shift of a negative). */
static inline int64_t q16i_bias_q32(q16_t b) {
    return (int64_t)b * 65536;
}

/* ---------------- axpy microkernel (q16_gemm.c nn / tn, q16_conv.c's local GEMM) ---------------- */
/*
 * The int64 sums of an mr x nr tile of C: acc[r][c] = init(r) + sum_p A(r, p) * B[p][c],
 * with A(r, p) = A[r*a_rs + p*a_cs] and rows of B ldb apart; init(r) = rbias[r] * 2^16
 * (rbias may be NULL: 0). The caller guarantees that the sums cannot overflow and
 * rounds them (q16_gemm.c: q16i_round_sat64; q16_conv.c: a branch-free twin).
 *
 * Tile shapes (rows x columns; mr and nr are compile-time constants at every
 * call site, so after inlining the accumulators live in registers):
 *   wide   (x86 with AVX-512, 32 vector registers): 4 x 32 (16 zmm accumulators)
 *   narrow (other x86: AVX2 / SSE, 16 registers):   2 x 16 (8 ymm accumulators)
 *   plain  (everything else, e.g. NEON smlal):      4 x 8  (16 q-register accumulators)
 */

/*
 * Pair loads: on x86-64 the kernels read two adjacent q16 values as one uint64_t and
 * split it into two sign-extended int64 lanes: "low half" and "high half".
 * The compiler turns (int64)(int32)lo * (int64)(int32)x into one vpmuldq /
 * pmuldq on the raw register (it only reads the low 32 bits of each lane),
 * and the high half costs one 64-bit shift instead of a sign-extending
 * shuffle per 8 values; that is ~30% faster on AVX-512 and AVX2. Elsewhere
 * (NEON has a widening 32x32->64 multiply-accumulate) the plain int32 loads
 * are better, so the pair form is used on x86 only. Both forms compute the
 * same exact int64 sums.
 */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(Q16_GEMM_GENERIC)
#define Q16_PAIRS 1
#else
#define Q16_PAIRS 0
#endif

/*
 * The k loop of a register tile must stay a scalar loop: the vector code comes
 * from its fully unrolled body (SLP). Left alone, clang's loop vectoriser may
 * instead vectorise the k loop as a reduction, with strided gathers and a
 * spilled tile (3x slower on AVX2 and for gemm_tn).
 */
#if defined(__clang__)
#define Q16_K_LOOP _Pragma("clang loop vectorize(disable) interleave(disable)")
#else
#define Q16_K_LOOP
#endif

#define AX_MAX_MR 4
#define AX_MAX_NR 32
#define AX_WIDE_MR 4
#define AX_WIDE_NR 32
#if Q16_PAIRS
#define AX_NARROW_MR 2
#define AX_NARROW_NR 16
#else
#define AX_NARROW_MR 4
#define AX_NARROW_NR 8
#endif

#if Q16_PAIRS
#include <string.h>

/** 1 on a little-endian machine (the value at the lower address is the low half). */
Q16_INLINE int q16i_little_endian(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

Q16_INLINE uint64_t q16i_load_pair(const q16_t *p) {
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/**
 * The low / high 32 bits of a pair, sign-extended, without an out-of-range
 * conversion: ((x ^ 2^31) - 2^31) for x in [0, 2^32) (compilers see a sign extension).
 */
Q16_INLINE int64_t q16i_lo(uint64_t w) { return (int64_t)((w & 0xFFFFFFFFu) ^ 0x80000000u) - 0x80000000; }
Q16_INLINE int64_t q16i_hi(uint64_t w) { return (int64_t)((w >> 32) ^ 0x80000000u) - 0x80000000; }

/**
 * The tile's sums in column pairs (np = nr / 2): lo[r][c] for column 2c + (little endian ? 0 : 1),
 * hi[r][c] for the other one of the pair.
 */
Q16_INLINE void q16i_ax_sums_pairs(int64_t lo[][AX_MAX_NR / 2], int64_t hi[][AX_MAX_NR / 2],
                                   const q16_t *Q16_RESTRICT rbias, const q16_t *Q16_RESTRICT A, size_t a_rs,
                                   size_t a_cs, const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr, int np) {
    int r, c, p;
    for (r = 0; r < mr; r++) {
        const int64_t init = rbias ? q16i_bias_q32(rbias[r]) : 0;
        for (c = 0; c < np; c++) lo[r][c] = hi[r][c] = init;
    }
    Q16_K_LOOP
    for (p = 0; p < k; p++) {
        const q16_t *Q16_RESTRICT b = B + (size_t)p * ldb;
        const q16_t *Q16_RESTRICT a = A + (size_t)p * a_cs;
        uint64_t w[AX_MAX_NR / 2];
        for (c = 0; c < np; c++) w[c] = q16i_load_pair(b + 2 * c);
        for (r = 0; r < mr; r++) {
            int64_t av = a[(size_t)r * a_rs];
            for (c = 0; c < np; c++) {
                lo[r][c] += av * q16i_lo(w[c]);
                hi[r][c] += av * q16i_hi(w[c]);
            }
        }
    }
}
#endif

/* NEON (aarch64, armv7): Q16_NEON and the q16n_* sums; Q16_NO_NEON turns them off. */
#include "q16_gemm_neon.h"

/** The tile's sums, one int64 per column: acc[r][c] (also the run-time-sized edge tiles). */
Q16_INLINE void q16i_ax_sums(int64_t acc[][AX_MAX_NR], const q16_t *Q16_RESTRICT rbias, const q16_t *Q16_RESTRICT A,
                             size_t a_rs, size_t a_cs, const q16_t *Q16_RESTRICT B, size_t ldb, int k, int mr,
                             int nr) {
#if Q16_NEON
    q16n_ax_sums(acc, rbias, A, a_rs, a_cs, B, ldb, k, mr, nr);
#else
    int r, c, p;
    for (r = 0; r < mr; r++) {
        const int64_t init = rbias ? q16i_bias_q32(rbias[r]) : 0;
        for (c = 0; c < nr; c++) acc[r][c] = init;
    }
    Q16_K_LOOP
    for (p = 0; p < k; p++) {
        const q16_t *Q16_RESTRICT b = B + (size_t)p * ldb;
        const q16_t *Q16_RESTRICT a = A + (size_t)p * a_cs;
        for (r = 0; r < mr; r++) {
            int64_t av = a[(size_t)r * a_rs];
            for (c = 0; c < nr; c++) acc[r][c] += av * (int64_t)b[c];
        }
    }
#endif
}

/* ---------------- kernel argument checks (shared by ref and fast) ---------------- */

/** dot: out[1], a[n], b[n]. */
static Q16I_UNUSED q16_status q16i_check_dot(const q16_t *out, const q16_t *a, const q16_t *b, int n) {
    if (out == NULL || a == NULL || b == NULL) return Q16_ERR_NULL;
    if (n <= 0) return Q16_ERR_SIZE;
    if (q16i_overlap(out, Q16I_BYTES(1), a, Q16I_BYTES(n)) ||
        q16i_overlap(out, Q16I_BYTES(1), b, Q16I_BYTES(n)))
        return Q16_ERR_OVERLAP;
    return Q16_OK;
}

/** gemv: y[m], A[m x n], x[n], bias[m] (may be NULL). */
static Q16I_UNUSED q16_status q16i_check_gemv(const q16_t *y, const q16_t *A, const q16_t *x,
                                              const q16_t *bias, int m, int n) {
    if (y == NULL || A == NULL || x == NULL) return Q16_ERR_NULL;
    if (m <= 0 || n <= 0 || !q16i_mul_fits(m, n)) return Q16_ERR_SIZE;
    if (q16i_overlap(y, Q16I_BYTES(m), A, Q16I_BYTES((size_t)m * (size_t)n)) ||
        q16i_overlap(y, Q16I_BYTES(m), x, Q16I_BYTES(n)) ||
        q16i_overlap(y, Q16I_BYTES(m), bias, Q16I_BYTES(m)))
        return Q16_ERR_OVERLAP;
    return Q16_OK;
}

/**
 * gemm (all layouts): C[m x n]; A holds m*k values, B holds k*n values,
 * bias (may be NULL) holds n values.
 */
static Q16I_UNUSED q16_status q16i_check_gemm(const q16_t *C, const q16_t *A, const q16_t *B,
                                              const q16_t *bias, int m, int n, int k) {
    size_t cb;
    if (C == NULL || A == NULL || B == NULL) return Q16_ERR_NULL;
    if (m <= 0 || n <= 0 || k <= 0) return Q16_ERR_SIZE;
    if (!q16i_mul_fits(m, k) || !q16i_mul_fits(k, n) || !q16i_mul_fits(m, n)) return Q16_ERR_SIZE;
    cb = Q16I_BYTES((size_t)m * (size_t)n);
    if (q16i_overlap(C, cb, A, Q16I_BYTES((size_t)m * (size_t)k)) ||
        q16i_overlap(C, cb, B, Q16I_BYTES((size_t)k * (size_t)n)) ||
        q16i_overlap(C, cb, bias, Q16I_BYTES(n)))
        return Q16_ERR_OVERLAP;
    return Q16_OK;
}

#endif /* Q16_GEMM_IMPL_H */
