/*
 * q16_gemm_impl.h -- private helpers shared by q16_gemm_ref.c, q16_gemm.c,
 * q16_relu.c and q16_update.c: argument validation, the exact 128-bit
 * accumulator (two uint64_t halves, no __int128), and the final
 * round-to-nearest (ties away from zero) + saturate step.
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
