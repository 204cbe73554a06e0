/*
 * fuzz_kernels.c -- libFuzzer target for the CFixed kernels (fuzz/run.sh kernels).
 *
 * The input bytes pick a kernel, small shapes (1...24, up to 40 with flag bits) and
 * int32 values biased towards the extremes (0, +-1, Q16_MIN, Q16_MAX, +-2^16, ...);
 * once the input is used up, further bytes come from a generator seeded with a
 * hash of the whole input, so short inputs still fill whole problems. Each run
 * checks one kernel family:
 *   - dot / gemv / gemm_nn / gemm_tn / gemm_nt (with caller scratch of exactly
 *     q16_gemm_nt_buffer_size bytes, and without) against their q16_ref_* twins
 *     bit for bit (outputs, status, saturation count), the references against an
 *     exact __int128 model, overlap errors (nothing written), and the
 *     buffer-size contract (<= 16 KiB, non-decreasing in m);
 *   - q16_softmax / q16_softmax_xent (labels in and out of range, in place,
 *     NULL outputs) against a long double reference within 0.5 LSB + 1e-3 LSB;
 *   - q16_update_sr / _outer_sr / _momentum_sr / _outer_riemannian_sr (both phi
 *     kinds) / _pull_sr against exact __int128 models of the formulas in q16.h,
 *     bit for bit, with random words from q16_rng_u32;
 *   - q16_mul / q16_div / q16_sqrt (exact __int128 references), q16_exp /
 *     q16_log (long double, within the bounds documented in q16.h),
 *     q16_shift_sr and q16_colsum (exact);
 *   - the convolution kernels (forward, backward data, weight gradient, fused SR
 *     and Riemannian updates) on small 1-D / 2-D shapes with strides 1...3 and any
 *     leading / trailing padding (up to 40 filters): fast with caller scratch of
 *     exactly the documented ..._buffer_size bytes, fast without scratch and the
 *     q16_ref_* twin bit for bit (outputs, phi, status, saturation count), and
 *     against exact __int128 models (the Riemannian one through the dense model's
 *     riem_step); q16_conv_check against an independent model of its documented
 *     rule, with one parameter (or the batch) perturbed to 0, -1, INT_MIN, INT_MAX,
 *     a neighbour, ...: refused parameters make every kernel return the error and
 *     write nothing; the buffer-size formulas; overlap errors (outputs in inputs,
 *     outputs in outputs, scratch in inputs: nothing written);
 *   - the pools (max / average / global average, forward and backward) against
 *     exact models, refused shapes (perturbed dimensions) and argmax indices
 *     outside their windows (errors, nothing written), overlap errors.
 * Any mismatch calls __builtin_trap(), so libFuzzer records the input as a crash.
 * Built with -fsanitize=fuzzer,address,undefined and UBSan in trap mode, so any
 * undefined behaviour or out-of-bounds access in a kernel is a crash too.
 * Every buffer is malloc'ed with its exact size, so ASan sees a one-word overrun.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q16.h"

typedef __int128 i128;

/* A failed check names itself on stderr, then traps (libFuzzer keeps the input as a crash). */
#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz_kernels.c:%d: check failed: %s\n", __LINE__, #cond);      \
            __builtin_trap();                                                               \
        }                                                                                   \
    } while (0)

/* The exact models are not coverage-instrumented: their 128-bit comparisons would dominate the
   run time (trace-cmp) and guide nothing; the kernels' own code is what the fuzzer explores. */
#if defined(__clang__)
#define MODEL __attribute__((no_sanitize("coverage")))
#else
#define MODEL
#endif

/* ------------------------------------------------------------------ */
/* Input decoding                                                       */
/* ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t left;
    uint64_t gen; /* SplitMix64 state for the bytes past the end of the input */
} reader;

static uint8_t rd_u8(reader *r) {
    if (r->left) { r->left--; return *r->p++; }
    {
        uint64_t z = (r->gen += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return (uint8_t)((z ^ (z >> 31)) >> 56);
    }
}

static uint32_t rd_u32(reader *r) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) v = (v << 8) | rd_u8(r);
    return v;
}

static uint64_t rd_u64(reader *r) {
    const uint64_t hi = rd_u32(r); /* two statements: the order of the reads is defined */
    return (hi << 32) | rd_u32(r);
}

/* A dimension: 1...24, or 1...40 when the byte's top three bits are set (tile and block edges at 32). */
static int rd_dim(reader *r) {
    uint8_t b = rd_u8(r);
    return 1 + ((b & 0xE0) == 0xE0 ? b % 40 : b % 24);
}

static const q16_t specials[] = {0, 1, -1, Q16_MIN, Q16_MAX, Q16_ONE, -Q16_ONE, Q16_MIN + 1, Q16_MAX - 1,
                                 Q16_HALF, -Q16_HALF, 2};

/* An int32: an extreme (1/4), a moderate value of random magnitude (1/2) or any 32 bits (1/4). */
static q16_t rd_val(reader *r) {
    uint8_t b = rd_u8(r);
    switch (b & 7) {
    case 0:
    case 1: return specials[(b >> 3) % (sizeof specials / sizeof specials[0])];
    case 2:
    case 3:
    case 4:
    case 5: {
        int16_t h = (int16_t)(uint16_t)((rd_u8(r) << 8) | rd_u8(r));
        return (q16_t)((int32_t)h * (int32_t)(1 << ((b >> 3) % 16))); /* |x| <= 2^30 */
    }
    default: return (q16_t)rd_u32(r);
    }
}

/* A Q0.32 rate: the extremes or any 32 bits. */
static uint32_t rd_rate(reader *r) {
    uint8_t b = rd_u8(r);
    switch (b % 8) {
    case 0: return 0;
    case 1: return 1;
    case 2: return UINT32_MAX;
    case 3: return 1u << 31;
    default: return rd_u32(r);
    }
}

/* A counter: any 64 bits, or close to 2^64 so that counter + i wraps inside the call. */
static uint64_t rd_counter(reader *r) {
    uint8_t b = rd_u8(r);
    return b % 4 == 0 ? UINT64_MAX - (uint64_t)(b >> 2) : rd_u64(r);
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) abort();
    return p;
}

static q16_t *rd_vec(reader *r, size_t n) {
    q16_t *v = xmalloc(n * sizeof(q16_t));
    size_t i;
    for (i = 0; i < n; i++) v[i] = rd_val(r);
    return v;
}

static q16_t *dup_vec(const q16_t *v, size_t n) {
    q16_t *d = xmalloc(n * sizeof(q16_t));
    memcpy(d, v, n * sizeof(q16_t));
    return d;
}

MODEL static int same(const q16_t *a, const q16_t *b, size_t n) { return memcmp(a, b, n * sizeof(q16_t)) == 0; }

/* ------------------------------------------------------------------ */
/* Exact models                                                          */
/* ------------------------------------------------------------------ */

/* floor(t / 2^s), 0 <= s <= 100, without shifting a negative value. */
MODEL static i128 floor_shift(i128 t, int s) {
    i128 d = (i128)1 << s;
    i128 q = t / d;
    if (t % d != 0 && t < 0) q -= 1;
    return q;
}

/* SR(t / 2^s): floor plus 1 when the top 32 bits of the s-bit fraction exceed rnd. */
MODEL static i128 sr(i128 t, int s, uint32_t rnd) {
    i128 fl = floor_shift(t, s);
    i128 frac = t - fl * ((i128)1 << s); /* 0 <= frac < 2^s */
    uint32_t top = (uint32_t)((frac * ((i128)1 << 32)) / ((i128)1 << s));
    return fl + (top > rnd ? 1 : 0);
}

MODEL static q16_t clampc(i128 v, uint64_t *sat) {
    if (v > Q16_MAX) { *sat += 1; return Q16_MAX; }
    if (v < Q16_MIN) { *sat += 1; return Q16_MIN; }
    return (q16_t)v;
}

/* round(n / d) to nearest, ties away from zero, d > 0. */
MODEL static i128 div_near(i128 n, i128 d) {
    i128 mag = n < 0 ? -n : n;
    i128 q = mag / d;
    if (2 * (mag % d) >= d) q += 1;
    return n < 0 ? -q : q;
}

MODEL static q16_t mul_model(q16_t a, q16_t b, uint64_t *sat) {
    return clampc(div_near((i128)a * b, 65536), sat);
}

/* An exact Q32.32 sum rounded to Q16 (nearest, ties away) and saturated. */
MODEL static q16_t round_sat_model(i128 acc, uint64_t *sat) { return clampc(div_near(acc, 65536), sat); }

/* ------------------------------------------------------------------ */
/* dot / gemv / gemm                                                    */
/* ------------------------------------------------------------------ */

enum layout { NN, TN, NT };

MODEL static void gemm_model(enum layout L, q16_t *C, const q16_t *A, const q16_t *B, const q16_t *bias, int m, int n,
                       int k, uint64_t *sat) {
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            i128 acc = bias ? (i128)bias[j] * 65536 : 0;
            for (p = 0; p < k; p++) {
                q16_t a = L == TN ? A[(size_t)p * m + i] : A[(size_t)i * k + p];
                q16_t b = L == NT ? B[(size_t)j * k + p] : B[(size_t)p * n + j];
                acc += (i128)a * b;
            }
            C[(size_t)i * n + j] = round_sat_model(acc, sat);
        }
}

static void fuzz_gemm(reader *r) {
    const int m = rd_dim(r), n = rd_dim(r), k = rd_dim(r);
    const uint8_t mode = rd_u8(r);
    const size_t mk = (size_t)m * k, kn = (size_t)k * n, mn = (size_t)m * n;
    q16_t *A = rd_vec(r, mk), *B = rd_vec(r, kn), *bias = rd_vec(r, n > m ? n : m), *x = rd_vec(r, k);
    q16_t *Cf = xmalloc(mn * 4), *Cr = xmalloc(mn * 4), *Cm = xmalloc(mn * 4);
    const q16_t *bn = (mode & 1) ? bias : NULL;
    uint64_t sf, sr_, sm;
    q16_status st, st2;
    enum layout L;

    for (L = NN; L <= NT; L++) {
        const q16_t *bb = L == NT ? bn : NULL;
        memset(Cf, 0x5A, mn * 4); memset(Cr, 0xA5, mn * 4);
        sf = 7; sr_ = 7; sm = 7;
        if (L == NN) { st = q16_gemm_nn(Cf, A, B, m, n, k, &sf); st2 = q16_ref_gemm_nn(Cr, A, B, m, n, k, &sr_); }
        else if (L == TN) { st = q16_gemm_tn(Cf, A, B, m, n, k, &sf); st2 = q16_ref_gemm_tn(Cr, A, B, m, n, k, &sr_); }
        else { st = q16_gemm_nt(Cf, NULL, A, B, bb, m, n, k, &sf); st2 = q16_ref_gemm_nt(Cr, A, B, bb, m, n, k, &sr_); }
        CHECK(st == Q16_OK && st2 == Q16_OK);
        CHECK(same(Cf, Cr, mn) && sf == sr_);
        gemm_model(L, Cm, A, B, bb, m, n, k, &sm);
        CHECK(same(Cm, Cr, mn) && sm == sr_);
    }

    /* gemm_nt with caller scratch of exactly the planned size (ASan catches any overrun). */
    {
        size_t sb = q16_gemm_nt_buffer_size(m, n, k), prev = 0;
        int rr;
        CHECK(sb <= 16384 && sb % 4 == 0);
        for (rr = 1; rr <= m; rr++) { /* non-decreasing in m: a buffer for m rows serves any fewer */
            size_t s = q16_gemm_nt_buffer_size(rr, n, k);
            CHECK(s >= prev);
            prev = s;
        }
        CHECK(prev == sb);
        {
            /* plan for mplan >= m rows (as the engine does for its largest batch), call with m */
            int mplan = m + (mode >> 4);
            size_t sbp = q16_gemm_nt_buffer_size(mplan, n, k);
            q16_t *scr = sbp ? xmalloc(sbp) : NULL;
            CHECK(sbp >= sb);
            memset(Cf, 0x5A, mn * 4);
            sf = 3; sm = 3;
            st = q16_gemm_nt(Cf, scr, A, B, bn, m, n, k, &sf);
            CHECK(st == Q16_OK);
            gemm_model(NT, Cm, A, B, bn, m, n, k, &sm);
            CHECK(same(Cf, Cm, mn) && sf == sm);
            free(scr);
        }
    }

    /* gemv and dot */
    {
        q16_t *yf = xmalloc((size_t)m * 4), *yr = xmalloc((size_t)m * 4), *ym = xmalloc((size_t)m * 4);
        const q16_t *gb = (mode & 2) ? bias : NULL;
        int i, p;
        sf = 1; sr_ = 1; sm = 1;
        st = q16_gemv(yf, A, x, gb, m, k, &sf);
        st2 = q16_ref_gemv(yr, A, x, gb, m, k, &sr_);
        CHECK(st == Q16_OK && st2 == Q16_OK && same(yf, yr, (size_t)m) && sf == sr_);
        for (i = 0; i < m; i++) {
            i128 acc = gb ? (i128)gb[i] * 65536 : 0;
            for (p = 0; p < k; p++) acc += (i128)A[(size_t)i * k + p] * x[p];
            ym[i] = round_sat_model(acc, &sm);
        }
        CHECK(same(ym, yr, (size_t)m) && sm == sr_);
        {
            q16_t df = 0x11, dr = 0x22, dm;
            i128 acc = 0;
            sf = 0; sr_ = 0; sm = 0;
            st = q16_dot(&df, A, x, k, &sf);
            st2 = q16_ref_dot(&dr, A, x, k, &sr_);
            for (p = 0; p < k; p++) acc += (i128)A[p] * x[p];
            dm = round_sat_model(acc, &sm);
            CHECK(st == Q16_OK && st2 == Q16_OK && df == dr && sf == sr_ && dm == dr && sm == sr_);
        }
        free(yf); free(yr); free(ym);
    }

    /* The output starting inside A: an overlap error from every kernel, nothing written, no count. */
    if (mode & 4) {
        const size_t big = mk + mn;
        q16_t *buf = rd_vec(r, big), *copy = dup_vec(buf, big);
        q16_t *Cb = buf + rd_u8(r) % mk; /* C = buf[off, off + m n) meets A = buf[0, m k) */
        sf = 9; sr_ = 9;
        CHECK(q16_gemm_nn(Cb, buf, B, m, n, k, &sf) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_gemm_nn(Cb, buf, B, m, n, k, &sr_) == Q16_ERR_OVERLAP);
        CHECK(q16_gemm_tn(Cb, buf, B, m, n, k, &sf) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_gemm_tn(Cb, buf, B, m, n, k, &sr_) == Q16_ERR_OVERLAP);
        CHECK(q16_gemm_nt(Cb, NULL, buf, B, NULL, m, n, k, &sf) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_gemm_nt(Cb, buf, B, NULL, m, n, k, &sr_) == Q16_ERR_OVERLAP);
        CHECK(q16_gemv(Cb, buf, x, NULL, m, k, &sf) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_gemv(Cb, buf, x, NULL, m, k, &sr_) == Q16_ERR_OVERLAP);
        if (Cb < buf + k) CHECK(q16_dot(Cb, buf, x, k, &sf) == Q16_ERR_OVERLAP);
        CHECK(same(buf, copy, big) && sf == 9 && sr_ == 9);
        free(buf); free(copy);
    }
    free(A); free(B); free(bias); free(x); free(Cf); free(Cr); free(Cm);
}

/* ------------------------------------------------------------------ */
/* softmax and cross-entropy                                            */
/* ------------------------------------------------------------------ */

#define SM_TOL (0.5L + 1e-3L) /* LSB: one rounding of a near-exact value */

/* p_j in LSB (exact real probability * 2^16) and the row's logsumexp - max in LSB. */
MODEL static void softmax_ref(const q16_t *z, int cols, long double *p, long double *lse_minus_max) {
    q16_t mx = z[0];
    long double S = 0;
    int j;
    for (j = 1; j < cols; j++) if (z[j] > mx) mx = z[j];
    for (j = 0; j < cols; j++) S += expl(((long double)z[j] - (long double)mx) / 65536.0L);
    for (j = 0; j < cols; j++) p[j] = expl(((long double)z[j] - (long double)mx) / 65536.0L) / S * 65536.0L;
    *lse_minus_max = logl(S) * 65536.0L;
}

static void fuzz_softmax(reader *r) {
    const int rows = rd_dim(r), cols = rd_dim(r);
    const uint8_t mode = rd_u8(r);
    const size_t rc = (size_t)rows * cols;
    q16_t *z = rd_vec(r, rc), *p = xmalloc(rc * 4), *pin = dup_vec(z, rc);
    q16_t *grad = xmalloc(rc * 4), *loss = xmalloc((size_t)rows * 4);
    int32_t *labels = xmalloc((size_t)rows * 4);
    long double *pr = xmalloc((size_t)cols * sizeof(long double));
    uint64_t sat = 5;
    int i, j, bad = 0;

    CHECK(q16_softmax(p, z, rows, cols, &sat) == Q16_OK && sat == 5);
    CHECK(q16_softmax(pin, pin, rows, cols, &sat) == Q16_OK && sat == 5 && same(p, pin, rc)); /* in place */
    for (i = 0; i < rows; i++) {
        long double lse;
        softmax_ref(z + (size_t)i * cols, cols, pr, &lse);
        for (j = 0; j < cols; j++) {
            q16_t v = p[(size_t)i * cols + j];
            CHECK(v >= 0 && v <= Q16_ONE);
            CHECK(fabsl((long double)v - pr[j]) <= SM_TOL);
        }
    }

    for (i = 0; i < rows; i++) {
        uint8_t b = rd_u8(r);
        if ((mode & 3) == 3 && b % 8 == 0) { /* out of range */
            static const int32_t badl[] = {-1, INT32_MIN, INT32_MAX};
            labels[i] = b % 32 == 0 ? cols : badl[(b >> 3) % 3];
            bad = 1;
        } else {
            labels[i] = b % cols;
        }
    }
    {
        const int use_grad = !(mode & 4), use_loss = !(mode & 8);
        q16_status st;
        memset(grad, 0x33, rc * 4); memset(loss, 0x44, (size_t)rows * 4);
        sat = 0;
        st = q16_softmax_xent(use_grad ? grad : NULL, use_loss ? loss : NULL, z, labels, rows, cols, &sat);
        if (bad) {
            CHECK(st == Q16_ERR_LABEL && sat == 0);
            for (j = 0; j < (int)rc; j++) CHECK(grad[j] == 0x33333333);
            for (j = 0; j < rows; j++) CHECK(loss[j] == 0x44444444);
        } else {
            uint64_t lo = 0, hi = 0;
            CHECK(st == Q16_OK);
            for (i = 0; i < rows; i++) {
                const q16_t *zr = z + (size_t)i * cols;
                int y = labels[i];
                q16_t mx = zr[0];
                long double lse, want;
                for (j = 1; j < cols; j++) if (zr[j] > mx) mx = zr[j];
                softmax_ref(zr, cols, pr, &lse);
                if (use_grad) /* grad = p - onehot, with the same p as q16_softmax */
                    for (j = 0; j < cols; j++)
                        CHECK(grad[(size_t)i * cols + j] == p[(size_t)i * cols + j] - (j == y ? Q16_ONE : 0));
                want = lse + ((long double)mx - (long double)zr[y]); /* the loss in LSB */
                if (want > (long double)Q16_MAX + SM_TOL) lo++;
                if (want > (long double)Q16_MAX + 0.5L - 1e-3L) hi++;
                if (use_loss) {
                    q16_t l = loss[i];
                    if (l == Q16_MAX) CHECK(want >= (long double)Q16_MAX - SM_TOL);
                    else CHECK(fabsl((long double)l - want) <= SM_TOL);
                }
            }
            if (use_loss) CHECK(sat >= lo && sat <= hi);
            else CHECK(sat == 0);
            /* grad == z in place gives the same gradient */
            if (use_grad) {
                q16_t *g2 = dup_vec(z, rc);
                CHECK(q16_softmax_xent(g2, NULL, g2, labels, rows, cols, NULL) == Q16_OK && same(g2, grad, rc));
                free(g2);
            }
        }
    }
    free(z); free(p); free(pin); free(grad); free(loss); free(labels); free(pr);
}

/* ------------------------------------------------------------------ */
/* Update kernels                                                        */
/* ------------------------------------------------------------------ */

/* The shared input of the element-wise updates w[i] -= SR(rate * f(w[i], b[i])):
   n, w, a second vector b, the expected copy of w, a Q0.32 rate, seed and counter. */
typedef struct {
    int n;
    q16_t *w, *b, *want;
    uint32_t rate;
    uint64_t seed, ctr;
} elementwise_case;

static elementwise_case rd_elementwise(reader *r) {
    elementwise_case c;
    c.n = rd_dim(r);
    c.w = rd_vec(r, (size_t)c.n);
    c.b = rd_vec(r, (size_t)c.n);
    c.want = dup_vec(c.w, (size_t)c.n);
    c.rate = rd_rate(r);
    c.seed = rd_u64(r);
    c.ctr = rd_counter(r);
    return c;
}

static void free_elementwise(elementwise_case *c) { free(c->w); free(c->b); free(c->want); }

static void fuzz_update_sr(reader *r) {
    elementwise_case c = rd_elementwise(r); /* b = g */
    uint64_t sat = 11, ws = 11;
    int i;
    for (i = 0; i < c.n; i++)
        c.want[i] = clampc((i128)c.w[i] - sr((i128)c.b[i] * c.rate, 32, q16_rng_u32(c.seed, c.ctr + (uint64_t)i)), &ws);
    CHECK(q16_update_sr(c.w, c.b, c.rate, c.n, c.seed, c.ctr, &sat) == Q16_OK);
    CHECK(same(c.w, c.want, (size_t)c.n) && sat == ws);
    free_elementwise(&c);
}

static void fuzz_momentum(reader *r) {
    const int n = rd_dim(r);
    q16_t *w = rd_vec(r, (size_t)n), *v = rd_vec(r, (size_t)n), *g = rd_vec(r, (size_t)n);
    q16_t *ww = dup_vec(w, (size_t)n), *wv = dup_vec(v, (size_t)n);
    const uint32_t mu = rd_rate(r), lr = rd_rate(r);
    const uint64_t seed = rd_u64(r), ctr = rd_counter(r);
    uint64_t sat = 0, ws = 0;
    int i;
    for (i = 0; i < n; i++) {
        q16_t nv = clampc(sr((i128)v[i] * mu, 32, q16_rng_u32(seed, ctr + (uint64_t)i)) + g[i], &ws);
        wv[i] = nv;
        ww[i] = clampc((i128)w[i] - sr((i128)nv * lr, 32, q16_rng_u32(seed, ctr + (uint64_t)n + (uint64_t)i)), &ws);
    }
    CHECK(q16_update_momentum_sr(w, v, g, mu, lr, n, seed, ctr, &sat) == Q16_OK);
    CHECK(same(w, ww, (size_t)n) && same(v, wv, (size_t)n) && sat == ws);
    free(w); free(v); free(g); free(ww); free(wv);
}

static void fuzz_pull(reader *r) {
    elementwise_case c = rd_elementwise(r); /* b = w0 */
    uint64_t sat = 0, ws = 0;
    int i;
    for (i = 0; i < c.n; i++) {
        const q16_t w = c.w[i], w0 = c.b[i];
        i128 nw = (i128)w - sr(((i128)w - w0) * c.rate, 32, q16_rng_u32(c.seed, c.ctr + (uint64_t)i));
        CHECK(nw >= (w < w0 ? w : w0) && nw <= (w > w0 ? w : w0)); /* between w, w0 */
        c.want[i] = clampc(nw, &ws);
    }
    CHECK(ws == 0);
    CHECK(q16_update_pull_sr(c.w, c.b, c.rate, c.n, c.seed, c.ctr, &sat) == Q16_OK);
    CHECK(same(c.w, c.want, (size_t)c.n) && sat == 0);
    free_elementwise(&c);
}

/* Shared problem of the two fused dense-layer updates. */
typedef struct {
    int batch, m, n;
    q16_t *W, *bias, *phi, *dY, *X;
    uint32_t lr, gscale, rho;
    q16_t alpha;
    q16_phi_kind kind;
    uint64_t seed, ctr;
} dense_case;

/* sum_b dY[b][i] X[b][j], exact: the weight (i, j)'s gradient sum. */
static i128 exact_sum(const dense_case *c, int i, int j) {
    i128 s = 0;
    int k;
    for (k = 0; k < c->batch; k++) s += (i128)c->dY[(size_t)k * c->m + i] * c->X[(size_t)k * c->n + j];
    return s;
}

static void rd_dense(reader *r, dense_case *c) {
    const uint8_t mode = rd_u8(r);
    c->batch = rd_dim(r); c->m = rd_dim(r); c->n = rd_dim(r);
    c->W = rd_vec(r, (size_t)c->m * c->n);
    c->bias = (mode & 1) ? NULL : rd_vec(r, (size_t)c->m);
    c->dY = rd_vec(r, (size_t)c->batch * c->m);
    c->X = rd_vec(r, (size_t)c->batch * c->n);
    c->kind = (mode & 2) ? Q16_PHI_WEIGHT_ABS : Q16_PHI_GRAD_SQUARED;
    c->phi = (c->kind == Q16_PHI_WEIGHT_ABS && (mode & 4)) ? NULL : rd_vec(r, (size_t)c->m * c->n + c->m);
    c->lr = rd_rate(r); c->gscale = rd_rate(r); c->rho = rd_rate(r);
    c->alpha = (mode & 8) ? 0 : (q16_t)(rd_val(r) & 0x7FFFFFFF); /* alpha >= 0 */
    c->seed = rd_u64(r); c->ctr = rd_counter(r);
}

static void free_dense(dense_case *c) { free(c->W); free(c->bias); free(c->phi); free(c->dY); free(c->X); }

static void fuzz_outer(reader *r) {
    dense_case c;
    size_t wn;
    q16_t *W, *b = NULL, *wantW, *wantB = NULL;
    int64_t *scr;
    uint64_t sat = 2, ws = 2;
    int i, j, k;
    rd_dense(r, &c);
    wn = (size_t)c.m * c.n;
    W = dup_vec(c.W, wn); wantW = dup_vec(c.W, wn);
    if (c.bias) { b = dup_vec(c.bias, (size_t)c.m); wantB = dup_vec(c.bias, (size_t)c.m); }
    CHECK(q16_update_outer_sr_buffer_size(c.n) == (size_t)c.n * 8);
    scr = xmalloc(q16_update_outer_sr_buffer_size(c.n));
    for (i = 0; i < c.m; i++)
        for (j = 0; j < c.n; j++) {
            i128 s = exact_sum(&c, i, j);
            size_t idx = (size_t)i * c.n + j;
            wantW[idx] = clampc((i128)c.W[idx] - sr(s * c.lr, 48, q16_rng_u32(c.seed, c.ctr + idx)), &ws);
        }
    if (b)
        for (i = 0; i < c.m; i++) {
            i128 s = 0;
            for (k = 0; k < c.batch; k++) s += c.dY[(size_t)k * c.m + i];
            wantB[i] = clampc((i128)c.bias[i] - sr(s * c.lr, 32, q16_rng_u32(c.seed, c.ctr + wn + (uint64_t)i)), &ws);
        }
    CHECK(q16_update_outer_sr(W, b, scr, c.dY, c.X, c.lr, c.batch, c.m, c.n, c.seed, c.ctr, &sat) == Q16_OK);
    CHECK(same(W, wantW, wn) && sat == ws);
    if (b) CHECK(same(b, wantB, (size_t)c.m));
    free(W); free(b); free(wantW); free(wantB); free(scr);
    free_dense(&c);
}

#define GRAD_STREAM 0x5048495F53545245ull
#define DECAY_STREAM 0x5048495F44454341ull
#define FRESH_STREAM 0x5048495F46524553ull

/* One parameter of the documented Riemannian step (q16.h), exactly. */
MODEL static q16_t riem_step(const dense_case *c, q16_t w, q16_t *phi, i128 s, uint64_t ctr, uint64_t *sat) {
    i128 u = sr(s * c->lr, 48, q16_rng_u32(c->seed, ctr));
    q16_t metric;
    i128 e;
    if (c->kind == Q16_PHI_GRAD_SQUARED) {
        q16_t g = clampc(sr(s * c->gscale, 48, q16_rng_u32(c->seed ^ GRAD_STREAM, ctr)), sat);
        q16_t g2 = mul_model(g, g, sat);
        i128 decayed = sr((i128)*phi * c->rho, 32, q16_rng_u32(c->seed ^ DECAY_STREAM, ctr));
        i128 fresh = sr((i128)g2 * (((i128)1 << 32) - c->rho), 32, q16_rng_u32(c->seed ^ FRESH_STREAM, ctr));
        *phi = clampc(decayed + fresh, sat);
        metric = *phi;
    } else {
        metric = w == Q16_MIN ? Q16_MAX : (w < 0 ? -w : w);
    }
    e = (i128)Q16_ONE + mul_model(c->alpha, metric, sat);
    if (e > Q16_MAX) e = Q16_MAX;
    if (e < Q16_ONE) e = Q16_ONE;
    return clampc((i128)w - div_near(u * 65536, e), sat);
}

static void fuzz_riemannian(reader *r) {
    dense_case c;
    size_t wn, pn;
    q16_t *W, *b = NULL, *phi = NULL, *wantW, *wantB = NULL, *wantP = NULL;
    int64_t *scr;
    uint64_t sat = 4, ws = 4;
    const i128 slim = (i128)1 << 62, blim = (i128)1 << 46;
    int i, j, k;
    rd_dense(r, &c);
    wn = (size_t)c.m * c.n;
    pn = wn + (size_t)c.m;
    W = dup_vec(c.W, wn); wantW = dup_vec(c.W, wn);
    if (c.bias) { b = dup_vec(c.bias, (size_t)c.m); wantB = dup_vec(c.bias, (size_t)c.m); }
    if (c.phi) { phi = dup_vec(c.phi, pn); wantP = dup_vec(c.phi, pn); }
    scr = xmalloc(q16_update_outer_sr_buffer_size(c.n));
    for (i = 0; i < c.m; i++)
        for (j = 0; j < c.n; j++) {
            i128 s = exact_sum(&c, i, j);
            size_t idx = (size_t)i * c.n + j;
            if (s > slim) { s = slim; ws++; } /* the exact sum clamped once, counted once */
            if (s < -slim) { s = -slim; ws++; }
            wantW[idx] = riem_step(&c, c.W[idx], wantP ? wantP + idx : NULL, s, c.ctr + idx, &ws);
        }
    if (b)
        for (i = 0; i < c.m; i++) {
            i128 s = 0;
            for (k = 0; k < c.batch; k++) s += c.dY[(size_t)k * c.m + i];
            if (s > blim) { s = blim; ws++; }
            if (s < -blim) { s = -blim; ws++; }
            wantB[i] = riem_step(&c, c.bias[i], wantP ? wantP + wn + i : NULL, s * 65536,
                                 c.ctr + wn + (uint64_t)i, &ws);
        }
    CHECK(q16_update_outer_riemannian_sr(W, b, phi, scr, c.dY, c.X, c.lr, c.gscale, c.alpha, c.rho, c.kind,
                                         c.batch, c.m, c.n, c.seed, c.ctr, &sat) == Q16_OK);
    CHECK(same(W, wantW, wn) && sat == ws);
    if (b) CHECK(same(b, wantB, (size_t)c.m));
    if (phi) CHECK(same(phi, wantP, pn)); /* WEIGHT_ABS: untouched (the model leaves it) */

    /* alpha = 0: W and bias equal q16_update_outer_sr's, bit for bit, while no sum is clamped. */
    if (c.alpha == 0) {
        int clamped = 0;
        q16_t *W2 = dup_vec(c.W, wn), *b2 = c.bias ? dup_vec(c.bias, (size_t)c.m) : NULL;
        for (i = 0; i < c.m && !clamped; i++) {
            i128 sb = 0;
            for (k = 0; k < c.batch; k++) sb += c.dY[(size_t)k * c.m + i];
            if (sb > blim || sb < -blim) clamped = 1;
            for (j = 0; j < c.n; j++) {
                i128 s = exact_sum(&c, i, j);
                if (s > slim || s < -slim) clamped = 1;
            }
        }
        CHECK(q16_update_outer_sr(W2, b2, scr, c.dY, c.X, c.lr, c.batch, c.m, c.n, c.seed, c.ctr, NULL) == Q16_OK);
        if (!clamped) {
            CHECK(same(W2, W, wn));
            if (b2) CHECK(same(b2, b, (size_t)c.m));
        }
        free(W2); free(b2);
    }
    free(W); free(b); free(phi); free(wantW); free(wantB); free(wantP); free(scr);
    free_dense(&c);
}

/* ------------------------------------------------------------------ */
/* Convolution: conv_check, forward, backward data, weight gradient,   */
/* fused SR and Riemannian updates                                      */
/* ------------------------------------------------------------------ */

#define IDX4(a, b, c, d, nb, nc, nd) \
    ((((size_t)(a) * (size_t)(nb) + (size_t)(b)) * (size_t)(nc) + (size_t)(c)) * (size_t)(nd) + (size_t)(d))

/* floor(a / b) for b > 0 (a may be negative). */
MODEL static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* 1 if the product of n factors (each >= 1) is <= INT_MAX. */
MODEL static int prod_fits(const int64_t *f, int n) {
    i128 v = 1;
    int i;
    for (i = 0; i < n; i++) {
        v *= f[i]; /* <= INT_MAX * 2^31 before the test: no i128 overflow */
        if (v > INT32_MAX) return 0;
    }
    return 1;
}

/* The output size out is reachable from n inputs, kernel k, stride s, leading pad `pad` and some trailing
   pad in [0, k - 1]: floor((n + pad + pb - k) / s) + 1 takes every integer between its values at pb = 0
   and pb = k - 1 (it is monotone in pb and steps by at most 1). And n + pad + k fits int. */
MODEL static int out_ok_model(int64_t n, int64_t k, int64_t s, int64_t pad, int64_t out) {
    const int64_t span = n + pad;
    if (span + k > INT32_MAX) return 0;
    return out >= 1 && out >= floor_div(span - k, s) + 1 && out <= floor_div(span - 1, s) + 1;
}

/* q16_conv_check as documented in q16.h (written independently of q16_conv.c). */
MODEL static q16_status conv_check_model(const q16_conv_params *p) {
    const int64_t C = p->C, H = p->H, W = p->W, F = p->F, kh = p->kh, kw = p->kw, sh = p->stride_h,
                  sw = p->stride_w, pt = p->pad_top, pl = p->pad_left, Ho = p->Ho, Wo = p->Wo;
    int64_t K, k1;
    if (C < 1 || H < 1 || W < 1 || F < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || Ho < 1 || Wo < 1)
        return Q16_ERR_SIZE;
    if (pt < 0 || pt >= kh || pl < 0 || pl >= kw) return Q16_ERR_SIZE;
    if (!out_ok_model(H, kh, sh, pt, Ho) || !out_ok_model(W, kw, sw, pl, Wo)) return Q16_ERR_SIZE;
    {
        const int64_t a[3] = {C, H, W}, b[3] = {F, Ho, Wo}, k[3] = {C, kh, kw};
        if (!prod_fits(a, 3) || !prod_fits(b, 3) || !prod_fits(k, 3)) return Q16_ERR_SIZE;
    }
    K = C * kh * kw;
    k1 = K + 1;
    {
        const int64_t c[1] = {k1}, d[2] = {F, k1}, e[3] = {k1, Ho, Wo};
        const int64_t g[5] = {F, (kh + sh - 1) / sh, (kw + sw - 1) / sw, (H + sh - 1) / sh, (W + sw - 1) / sw};
        if (!prod_fits(c, 1) || !prod_fits(d, 2) || !prod_fits(e, 3) || !prod_fits(g, 5)) return Q16_ERR_SIZE;
    }
    return Q16_OK;
}

/* A perturbed value for a parameter field: the edges of int and off-by-one neighbours. */
static int perturb(reader *r, int v) {
    const uint8_t b = rd_u8(r);
    switch (b % 10) {
    case 0: return 0;
    case 1: return -1;
    case 2: return INT32_MIN;
    case 3: return INT32_MAX;
    case 4: return INT32_MAX / 2 + 1;
    case 5: return 1 << 16;
    case 6: return v + 1;
    case 7: return v - 1;
    case 8: return v + 2 + (b >> 4);
    default: return (int)(rd_u32(r) & 0x7FFFFFFF) >> (b >> 4);
    }
}

/* A shape from the input: small dimensions, strides 1...3, leading and trailing pads in [0, k - 1], 1-D
   (H = kh = 1) when mode & 1, up to 40 filters when mode & 2 (the weight kernels' blocks of 32); a long
   1-D series of 33000+ steps when mode & 1 and mode & 64 (1 channel: the bias sums of 33000 extreme
   gradients exceed the Riemannian clamp at 2^46); with mode & 4 one field (or the batch) is perturbed,
   so q16_conv_check may refuse it. */
static void rd_conv_shape(reader *r, uint8_t mode, q16_conv_params *p, int *batch) {
    const int series = (mode & 1) && (mode & 64);
    int pb, pr;
    p->C = series ? 1 : 1 + rd_u8(r) % 4;
    p->F = 1 + rd_u8(r) % ((mode & 2) ? 40 : series ? 2 : 4);
    p->H = (mode & 1) ? 1 : 1 + rd_u8(r) % 12;
    p->W = series ? 33000 + rd_u8(r) : 1 + rd_u8(r) % 16;
    p->kh = (mode & 1) ? 1 : 1 + rd_u8(r) % 5;
    p->kw = 1 + rd_u8(r) % 5;
    p->stride_h = (mode & 1) ? 1 : 1 + rd_u8(r) % 3;
    p->stride_w = 1 + rd_u8(r) % 3;
    p->pad_top = rd_u8(r) % p->kh;
    p->pad_left = rd_u8(r) % p->kw;
    pb = rd_u8(r) % p->kh;
    pr = rd_u8(r) % p->kw;
    p->Ho = (int)floor_div((int64_t)p->H + p->pad_top + pb - p->kh, p->stride_h) + 1;
    p->Wo = (int)floor_div((int64_t)p->W + p->pad_left + pr - p->kw, p->stride_w) + 1;
    if (p->Ho < 1) p->Ho = 1; /* the input is shorter than the kernel: one window reaches it */
    if (p->Wo < 1) p->Wo = 1;
    *batch = 1 + rd_u8(r) % 3;
    if (mode & 4) {
        int *field[13];
        field[0] = &p->C; field[1] = &p->H; field[2] = &p->W; field[3] = &p->F; field[4] = &p->kh;
        field[5] = &p->kw; field[6] = &p->stride_h; field[7] = &p->stride_w; field[8] = &p->pad_top;
        field[9] = &p->pad_left; field[10] = &p->Ho; field[11] = &p->Wo; field[12] = batch;
        {
            int *f = field[rd_u8(r) % 13];
            *f = perturb(r, *f);
        }
    }
}

/* Sentinel-filled stand-ins for every buffer of a refused call (never written by a correct kernel). */
#define DUMMY_WORDS 64
#define SENTINEL 0x2468ACE0

static q16_t *dummy(void) {
    q16_t *d = xmalloc(DUMMY_WORDS * sizeof(q16_t) + 8);
    size_t i;
    for (i = 0; i < DUMMY_WORDS + 2; i++) d[i] = SENTINEL;
    return d;
}

MODEL static int untouched(const q16_t *d) {
    size_t i;
    for (i = 0; i < DUMMY_WORDS + 2; i++)
        if (d[i] != SENTINEL) return 0;
    return 1;
}

/* Every conv kernel (fast with scratch, fast without, reference) must return `want` and write nothing;
   the Riemannian update also checks its metric first (alpha < 0: Q16_ERR_DOMAIN even here). */
static void conv_refused(reader *r, const q16_conv_params *p, int batch, q16_status want) {
    enum { NB = 8 };
    q16_t *b[NB];
    int i;
    uint64_t sat = 77;
    const q16_t alpha = (rd_u8(r) & 1) ? -1 - (q16_t)rd_u8(r) : (q16_t)rd_u8(r);
    const q16_status want_riem = alpha < 0 ? Q16_ERR_DOMAIN : want;
    int64_t *s64;
    for (i = 0; i < NB; i++) b[i] = dummy();
    s64 = (int64_t *)(void *)b[7];
    CHECK(q16_conv_forward(b[0], b[6], b[1], b[2], b[3], batch, p, &sat) == want);
    CHECK(q16_conv_forward(b[0], NULL, b[1], b[2], b[3], batch, p, &sat) == want);
    CHECK(q16_ref_conv_forward(b[0], b[1], b[2], b[3], batch, p, &sat) == want);
    CHECK(q16_conv_backward_data(b[0], b[6], b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_conv_backward_data(b[0], NULL, b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_ref_conv_backward_data(b[0], b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_conv_weight_grad(b[0], b[4], s64, b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_conv_weight_grad(b[0], b[4], NULL, b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_ref_conv_weight_grad(b[0], b[4], b[1], b[2], batch, p, &sat) == want);
    CHECK(q16_conv_backward_weights_sr(b[0], b[4], s64, b[1], b[2], 1u << 30, batch, p, 1, 2, &sat) == want);
    CHECK(q16_conv_backward_weights_sr(b[0], b[4], NULL, b[1], b[2], 1u << 30, batch, p, 1, 2, &sat) == want);
    CHECK(q16_ref_conv_backward_weights_sr(b[0], b[4], b[1], b[2], 1u << 30, batch, p, 1, 2, &sat) == want);
    CHECK(q16_conv_backward_weights_riemannian_sr(b[0], b[4], b[5], s64, b[1], b[2], 1u << 30, 1u << 31, alpha,
                                                  1u << 31, Q16_PHI_GRAD_SQUARED, batch, p, 1, 2, &sat) == want_riem);
    CHECK(q16_conv_backward_weights_riemannian_sr(b[0], b[4], b[5], NULL, b[1], b[2], 1u << 30, 1u << 31, alpha,
                                                  1u << 31, Q16_PHI_GRAD_SQUARED, batch, p, 1, 2, &sat) == want_riem);
    CHECK(q16_ref_conv_backward_weights_riemannian_sr(b[0], b[4], b[5], b[1], b[2], 1u << 30, 1u << 31, alpha,
                                                      1u << 31, Q16_PHI_GRAD_SQUARED, batch, p, 1, 2,
                                                      &sat) == want_riem);
    CHECK(sat == 77);
    for (i = 0; i < NB; i++) {
        CHECK(untouched(b[i]));
        free(b[i]);
    }
}

/* Exact models (i128 sums, the formulas in q16.h). */
MODEL static void conv_forward_model(q16_t *Y, const q16_t *X, const q16_t *Wt, const q16_t *bias, int batch,
                                     const q16_conv_params *p, uint64_t *sat) {
    int b, f, i, j, c, u, v;
    for (b = 0; b < batch; b++)
        for (f = 0; f < p->F; f++)
            for (i = 0; i < p->Ho; i++)
                for (j = 0; j < p->Wo; j++) {
                    i128 acc = bias ? (i128)bias[f] * 65536 : 0;
                    for (c = 0; c < p->C; c++)
                        for (u = 0; u < p->kh; u++)
                            for (v = 0; v < p->kw; v++) {
                                const int y = i * p->stride_h + u - p->pad_top, x = j * p->stride_w + v - p->pad_left;
                                if (y < 0 || y >= p->H || x < 0 || x >= p->W) continue;
                                acc += (i128)Wt[IDX4(f, c, u, v, p->C, p->kh, p->kw)] *
                                       X[IDX4(b, c, y, x, p->C, p->H, p->W)];
                            }
                    Y[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)] = round_sat_model(acc, sat);
                }
}

/* Backward data as the scatter of every forward product's gradient (the reference gathers). */
MODEL static void conv_backward_data_model(q16_t *dX, const q16_t *dY, const q16_t *Wt, int batch,
                                           const q16_conv_params *p, uint64_t *sat) {
    const size_t n = (size_t)batch * p->C * p->H * p->W;
    i128 *acc = xmalloc(n * sizeof(i128));
    size_t k;
    int b, f, i, j, c, u, v;
    for (k = 0; k < n; k++) acc[k] = 0;
    for (b = 0; b < batch; b++)
        for (f = 0; f < p->F; f++)
            for (i = 0; i < p->Ho; i++)
                for (j = 0; j < p->Wo; j++)
                    for (c = 0; c < p->C; c++)
                        for (u = 0; u < p->kh; u++)
                            for (v = 0; v < p->kw; v++) {
                                const int y = i * p->stride_h + u - p->pad_top, x = j * p->stride_w + v - p->pad_left;
                                if (y < 0 || y >= p->H || x < 0 || x >= p->W) continue;
                                acc[IDX4(b, c, y, x, p->C, p->H, p->W)] +=
                                    (i128)Wt[IDX4(f, c, u, v, p->C, p->kh, p->kw)] *
                                    dY[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)];
                            }
    for (k = 0; k < n; k++) dX[k] = round_sat_model(acc[k], sat);
    free(acc);
}

/* The exact weight sums ws[F*C*kh*kw] (Q32.32) and bias sums bs[F] (Q16). */
MODEL static void conv_sums_model(i128 *ws, i128 *bs, const q16_t *dY, const q16_t *X, int batch,
                                  const q16_conv_params *p) {
    int b, f, i, j, c, u, v;
    for (f = 0; f < p->F; f++) {
        bs[f] = 0;
        for (c = 0; c < p->C; c++)
            for (u = 0; u < p->kh; u++)
                for (v = 0; v < p->kw; v++) ws[IDX4(f, c, u, v, p->C, p->kh, p->kw)] = 0;
    }
    for (b = 0; b < batch; b++)
        for (f = 0; f < p->F; f++)
            for (i = 0; i < p->Ho; i++)
                for (j = 0; j < p->Wo; j++) {
                    const q16_t g = dY[IDX4(b, f, i, j, p->F, p->Ho, p->Wo)];
                    bs[f] += g;
                    for (c = 0; c < p->C; c++)
                        for (u = 0; u < p->kh; u++)
                            for (v = 0; v < p->kw; v++) {
                                const int y = i * p->stride_h + u - p->pad_top, x = j * p->stride_w + v - p->pad_left;
                                if (y < 0 || y >= p->H || x < 0 || x >= p->W) continue;
                                ws[IDX4(f, c, u, v, p->C, p->kh, p->kw)] +=
                                    (i128)g * X[IDX4(b, c, y, x, p->C, p->H, p->W)];
                            }
                }
}

/* Three results of one kernel (fast with scratch, fast without, reference) and the model: equal bit for bit. */
#define SAME3(a, b, c, m, n) (same(a, b, n) && same(a, c, n) && same(a, m, n))

static q16_t *filled(size_t n) {
    q16_t *d = xmalloc(n * sizeof(q16_t));
    size_t i;
    for (i = 0; i < n; i++) d[i] = SENTINEL;
    return d;
}

MODEL static int all_sentinel(const q16_t *d, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (d[i] != SENTINEL) return 0;
    return 1;
}

/* Overlap errors from every variant of the kernel picked by the input: an output starting inside one of
   its inputs, an output inside another output, the scratch starting inside an input. Nothing is written
   (inputs or outputs), nothing counted. */
static void conv_overlap(reader *r, const q16_conv_params *p, int batch, size_t in, size_t out, size_t wn) {
    const size_t F = (size_t)p->F, big = in + out + wn + F;
    q16_t *arena = rd_vec(r, big), *copy = dup_vec(arena, big);
    q16_t *X = arena, *dY = X + in, *Wt = dY + out, *bias = Wt + wn;
    q16_t *Y = filled(out), *dX = filled(in), *W2 = filled(wn), *b2 = filled(F), *phi2 = filled(wn + F);
    const uint8_t which = rd_u8(r) % 5, off = rd_u8(r), pick = rd_u8(r);
    const size_t fsb = q16_conv_forward_buffer_size(p), bsb = q16_conv_backward_data_buffer_size(p),
                 wsb = q16_conv_weight_buffer_size(p);
    q16_t *fsc = xmalloc(fsb), *bsc = xmalloc(bsb);
    int64_t *wsc = xmalloc(wsb);
    /* a scratch starting inside X (an even word offset: 8-byte aligned, as malloc's block) */
    q16_t *sx = X + ((size_t)off % in & ~(size_t)1);
    /* o: inside X or dY (the inputs of the weight kernels) */
    q16_t *o = (pick & 1) ? X + (size_t)off % in : dY + (size_t)off % out;
    uint64_t sat = 31;
    switch (which) {
    case 0: { /* forward: Y inside X, Wt or bias; the scratch inside X */
        q16_t *y = pick % 3 == 0 ? X + (size_t)off % in : pick % 3 == 1 ? Wt + (size_t)off % wn : bias + (size_t)off % F;
        CHECK(q16_conv_forward(y, fsc, X, Wt, bias, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_forward(y, NULL, X, Wt, bias, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_forward(y, X, Wt, bias, batch, p, &sat) == Q16_ERR_OVERLAP);
        if (fsb) CHECK(q16_conv_forward(Y, sx, X, Wt, bias, batch, p, &sat) == Q16_ERR_OVERLAP);
        break;
    }
    case 1: { /* backward data: dX inside dY or Wt; the scratch inside dY */
        q16_t *d = (pick & 1) ? dY + (size_t)off % out : Wt + (size_t)off % wn;
        CHECK(q16_conv_backward_data(d, bsc, dY, Wt, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_backward_data(d, NULL, dY, Wt, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_backward_data(d, dY, Wt, batch, p, &sat) == Q16_ERR_OVERLAP);
        if (bsb) CHECK(q16_conv_backward_data(dX, dY + ((size_t)off % out), dY, Wt, batch, p, &sat) == Q16_ERR_OVERLAP);
        break;
    }
    case 2: /* weight gradient: dW or dB inside X / dY, dB inside dW, the scratch inside X */
        CHECK(q16_conv_weight_grad(o, b2, wsc, dY, X, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_weight_grad(W2, o, NULL, dY, X, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_weight_grad(o, NULL, dY, X, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_weight_grad(W2, W2 + (size_t)off % wn, dY, X, batch, p, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_weight_grad(W2, b2, (int64_t *)(void *)sx, dY, X, batch, p, &sat) == Q16_ERR_OVERLAP);
        break;
    case 3: /* fused SR: the same placements */
        CHECK(q16_conv_backward_weights_sr(o, b2, wsc, dY, X, 1u << 31, batch, p, 3, 4, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_backward_weights_sr(W2, o, NULL, dY, X, 1u << 31, batch, p, 3, 4, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_backward_weights_sr(o, NULL, dY, X, 1u << 31, batch, p, 3, 4, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_backward_weights_sr(W2, W2 + (size_t)off % wn, dY, X, 1u << 31, batch, p, 3, 4, &sat) ==
              Q16_ERR_OVERLAP);
        CHECK(q16_conv_backward_weights_sr(W2, b2, (int64_t *)(void *)sx, dY, X, 1u << 31, batch, p, 3, 4, &sat) ==
              Q16_ERR_OVERLAP);
        break;
    default: { /* Riemannian: W, bias or phi inside X / dY; phi inside W; the scratch inside X */
        const uint32_t lr = 1u << 31, gs = 1u << 30, rho = 1u << 31;
        const q16_phi_kind G = Q16_PHI_GRAD_SQUARED;
        q16_t *w = (pick >> 1) % 3 == 0 ? o : W2, *b = (pick >> 1) % 3 == 1 ? o : b2, *ph = (pick >> 1) % 3 == 2 ? o : phi2;
        CHECK(q16_conv_backward_weights_riemannian_sr(w, b, ph, wsc, dY, X, lr, gs, 65536, rho, G, batch, p, 5, 6,
                                                      &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_backward_weights_riemannian_sr(w, b, ph, NULL, dY, X, lr, gs, 65536, rho, G, batch, p, 5, 6,
                                                      &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_backward_weights_riemannian_sr(w, b, ph, dY, X, lr, gs, 65536, rho, G, batch, p, 5, 6,
                                                          &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_ref_conv_backward_weights_riemannian_sr(W2, b2, W2 + (size_t)off % wn, dY, X, lr, gs, 65536, rho, G,
                                                          batch, p, 5, 6, &sat) == Q16_ERR_OVERLAP);
        CHECK(q16_conv_backward_weights_riemannian_sr(W2, b2, phi2, (int64_t *)(void *)sx, dY, X, lr, gs, 65536, rho,
                                                      G, batch, p, 5, 6, &sat) == Q16_ERR_OVERLAP);
        break;
    }
    }
    CHECK(same(arena, copy, big) && sat == 31);
    CHECK(all_sentinel(Y, out) && all_sentinel(dX, in) && all_sentinel(W2, wn) && all_sentinel(b2, F) &&
          all_sentinel(phi2, wn + F));
    if (which == 4) {
        /* WEIGHT_ABS neither reads nor writes phi: a phi inside X is no overlap, and the call runs */
        CHECK(q16_conv_backward_weights_riemannian_sr(W2, b2, X, wsc, dY, X, 1u << 31, 1u << 30, 65536, 1u << 31,
                                                      Q16_PHI_WEIGHT_ABS, batch, p, 5, 6, NULL) == Q16_OK);
        CHECK(same(arena, copy, big));
    }
    free(arena); free(copy); free(Y); free(dX); free(W2); free(b2); free(phi2); free(fsc); free(bsc); free(wsc);
}

static void fuzz_conv(reader *r) {
    const uint8_t mode = rd_u8(r);
    q16_conv_params p;
    int batch;
    q16_status want;
    size_t in, out, wn, K, P, fsb, bsb, wsb, i;
    rd_conv_shape(r, mode, &p, &batch);
    want = conv_check_model(&p);
    CHECK(q16_conv_check(&p) == want);
    if (want != Q16_OK) {
        CHECK(q16_conv_forward_buffer_size(&p) == 0 && q16_conv_backward_data_buffer_size(&p) == 0 &&
              q16_conv_weight_buffer_size(&p) == 0);
        conv_refused(r, &p, batch, want);
        return;
    }
    /* The shape is valid (perhaps perturbed into another valid one): keep the work small. */
    K = (size_t)p.C * p.kh * p.kw;
    P = (size_t)p.Ho * p.Wo;
    if ((uint64_t)p.C * p.H * p.W > (1u << 17) || (uint64_t)p.F * P > (1u << 17) ||
        (uint64_t)p.F * K * P > (1u << 18) || (uint64_t)p.H * p.W * p.F * K > (1u << 18))
        return;
    /* The documented scratch sizes. */
    fsb = q16_conv_forward_buffer_size(&p);
    bsb = q16_conv_backward_data_buffer_size(&p);
    wsb = q16_conv_weight_buffer_size(&p);
    {
        /* ceil(a / s) in int64: a stride may be perturbed to INT_MAX */
#define CEIL_DIV(a, s) ((size_t)(((int64_t)(a) + (int64_t)(s) - 1) / (int64_t)(s)))
        const size_t T = (size_t)p.F * CEIL_DIV(p.kh, p.stride_h) * CEIL_DIV(p.kw, p.stride_w);
        const size_t Q = CEIL_DIV(p.H, p.stride_h) * CEIL_DIV(p.W, p.stride_w);
#undef CEIL_DIV
        const int strided = p.stride_h > 1 || p.stride_w > 1;
        CHECK(fsb == 4 * ((size_t)p.F + P) * (K + 1));
        CHECK(bsb == 4 * ((size_t)p.C * T + T * Q + (strided ? (size_t)p.C * Q : 0)));
        CHECK(wsb == 8 * (size_t)(p.F < 32 ? p.F : 32) * K + (4 * K * P + 7) / 8 * 8);
    }
    /* The batch: as drawn (perhaps perturbed), refused when <= 0 or when batch*C*H*W or batch*F*Ho*Wo
       overflows int; a large valid batch is skipped. */
    {
        const int64_t inw = (int64_t)p.C * p.H * p.W, outw = (int64_t)p.F * P;
        if (batch <= 0 || (i128)batch * inw > INT32_MAX || (i128)batch * outw > INT32_MAX) {
            conv_refused(r, &p, batch, Q16_ERR_SIZE);
            if (batch > 0) return;
            /* and the smallest overflowing batch (none when one sample is one word each way) */
            {
                const int64_t b = INT32_MAX / (inw > outw ? inw : outw) + 1;
                if (b <= INT32_MAX) conv_refused(r, &p, (int)b, Q16_ERR_SIZE);
            }
            return;
        }
        if (batch > 3) return;
    }
    in = (size_t)batch * p.C * p.H * p.W;
    out = (size_t)batch * p.F * P;
    wn = (size_t)p.F * K;
    {
        q16_t *X = rd_vec(r, in), *Wt = rd_vec(r, wn), *bias = rd_vec(r, (size_t)p.F), *dY = rd_vec(r, out);
        const q16_t *bn = (mode & 8) ? NULL : bias;
        if (mode & 128) { /* constant X and dY (extremes at scale: saturated and clamped sums) */
            const q16_t xv = rd_val(r), gv = rd_val(r);
            for (i = 0; i < in; i++) X[i] = xv;
            for (i = 0; i < out; i++) dY[i] = gv;
        }
        const size_t big = in > out ? in : out;
        q16_t *Yf = xmalloc(big * 4), *Yn = xmalloc(big * 4), *Yr = xmalloc(big * 4), *Ym = xmalloc(big * 4);
        q16_t *fsc = xmalloc(fsb), *bsc = xmalloc(bsb); /* exactly the documented sizes: ASan sees an overrun */
        int64_t *wsc = xmalloc(wsb);
        uint64_t sf, sn, sr_, sm;
        q16_status st[3];

        /* forward */
        sf = sn = sr_ = sm = 5;
        st[0] = q16_conv_forward(Yf, fsc, X, Wt, bn, batch, &p, &sf);
        st[1] = q16_conv_forward(Yn, NULL, X, Wt, bn, batch, &p, &sn);
        st[2] = q16_ref_conv_forward(Yr, X, Wt, bn, batch, &p, &sr_);
        conv_forward_model(Ym, X, Wt, bn, batch, &p, &sm);
        CHECK(st[0] == Q16_OK && st[1] == Q16_OK && st[2] == Q16_OK);
        CHECK(SAME3(Yr, Yf, Yn, Ym, out) && sf == sr_ && sn == sr_ && sm == sr_);

        /* backward data */
        sf = sn = sr_ = sm = 6;
        st[0] = q16_conv_backward_data(Yf, bsc, dY, Wt, batch, &p, &sf);
        st[1] = q16_conv_backward_data(Yn, NULL, dY, Wt, batch, &p, &sn);
        st[2] = q16_ref_conv_backward_data(Yr, dY, Wt, batch, &p, &sr_);
        conv_backward_data_model(Ym, dY, Wt, batch, &p, &sm);
        CHECK(st[0] == Q16_OK && st[1] == Q16_OK && st[2] == Q16_OK);
        CHECK(SAME3(Yr, Yf, Yn, Ym, in) && sf == sr_ && sn == sr_ && sm == sr_);

        /* weight gradient, fused SR update, Riemannian update: the exact sums */
        {
            i128 *ws = xmalloc(wn * sizeof(i128)), *bs = xmalloc((size_t)p.F * sizeof(i128));
            q16_t *Wf = xmalloc((wn + p.F) * 4), *Wn = xmalloc((wn + p.F) * 4), *Wr = xmalloc((wn + p.F) * 4),
                  *Wm = xmalloc((wn + p.F) * 4);
            const int with_b = !(mode & 16);
            const uint32_t lr = rd_rate(r);
            const uint64_t seed = rd_u64(r), ctr = rd_counter(r);
            conv_sums_model(ws, bs, dY, X, batch, &p);

            /* weight gradient: dW rounded once, dB the exact sums saturated (Wx + wn holds dB) */
            sf = sn = sr_ = sm = 7;
            st[0] = q16_conv_weight_grad(Wf, with_b ? Wf + wn : NULL, wsc, dY, X, batch, &p, &sf);
            st[1] = q16_conv_weight_grad(Wn, with_b ? Wn + wn : NULL, NULL, dY, X, batch, &p, &sn);
            st[2] = q16_ref_conv_weight_grad(Wr, with_b ? Wr + wn : NULL, dY, X, batch, &p, &sr_);
            for (i = 0; i < wn; i++) Wm[i] = round_sat_model(ws[i], &sm);
            if (with_b)
                for (i = 0; i < (size_t)p.F; i++) Wm[wn + i] = clampc(bs[i], &sm);
            CHECK(st[0] == Q16_OK && st[1] == Q16_OK && st[2] == Q16_OK);
            CHECK(SAME3(Wr, Wf, Wn, Wm, wn + (with_b ? (size_t)p.F : 0)) && sf == sr_ && sn == sr_ && sm == sr_);

            /* fused SR: W -= SR(s lr / 2^48), bias -= SR(sum dY lr / 2^32) (W in Wx, bias in Wx + wn) */
            memcpy(Wf, Wt, wn * 4); memcpy(Wf + wn, bias, (size_t)p.F * 4);
            memcpy(Wn, Wf, (wn + p.F) * 4); memcpy(Wr, Wf, (wn + p.F) * 4); memcpy(Wm, Wf, (wn + p.F) * 4);
            sf = sn = sr_ = sm = 8;
            st[0] = q16_conv_backward_weights_sr(Wf, with_b ? Wf + wn : NULL, wsc, dY, X, lr, batch, &p, seed, ctr, &sf);
            st[1] = q16_conv_backward_weights_sr(Wn, with_b ? Wn + wn : NULL, NULL, dY, X, lr, batch, &p, seed, ctr, &sn);
            st[2] = q16_ref_conv_backward_weights_sr(Wr, with_b ? Wr + wn : NULL, dY, X, lr, batch, &p, seed, ctr, &sr_);
            for (i = 0; i < wn; i++)
                Wm[i] = clampc((i128)Wt[i] - sr(ws[i] * lr, 48, q16_rng_u32(seed, ctr + (uint64_t)i)), &sm);
            if (with_b)
                for (i = 0; i < (size_t)p.F; i++)
                    Wm[wn + i] = clampc((i128)bias[i] - sr(bs[i] * lr, 32, q16_rng_u32(seed, ctr + wn + (uint64_t)i)), &sm);
            CHECK(st[0] == Q16_OK && st[1] == Q16_OK && st[2] == Q16_OK);
            CHECK(SAME3(Wr, Wf, Wn, Wm, wn + (size_t)p.F) && sf == sr_ && sn == sr_ && sm == sr_);

            /* Riemannian: the dense kernel's exact per-parameter model (riem_step) on the conv sums */
            {
                dense_case c;
                const size_t pn = wn + (size_t)p.F;
                const i128 slim = (i128)1 << 62, blim = (i128)1 << 46;
                q16_t *phi0 = rd_vec(r, pn), *Pf = dup_vec(phi0, pn), *Pn = dup_vec(phi0, pn),
                      *Pr = dup_vec(phi0, pn), *Pm = dup_vec(phi0, pn);
                const uint8_t rm = rd_u8(r);
                q16_t *pf, *pnn, *pr, *pm;
                q16_status want_st;
                memset(&c, 0, sizeof c);
                c.lr = lr; c.gscale = rd_rate(r); c.rho = rd_rate(r); c.seed = seed;
                c.kind = (rm & 1) ? Q16_PHI_WEIGHT_ABS : Q16_PHI_GRAD_SQUARED;
                c.alpha = (rm & 2) ? 0 : (rm & 4) ? rd_val(r) : (q16_t)(rd_val(r) & 0x7FFFFFFF); /* may be < 0 */
                if (rm & 8) c.kind = (q16_phi_kind)(2 + (rm >> 4)); /* unknown kinds: Q16_ERR_DOMAIN */
                /* WEIGHT_ABS may pass phi NULL; it must stay untouched otherwise */
                pf = pnn = pr = pm = NULL;
                if (!(c.kind == Q16_PHI_WEIGHT_ABS && (rm & 0x10))) { pf = Pf; pnn = Pn; pr = Pr; pm = Pm; }
                want_st = (c.kind != Q16_PHI_GRAD_SQUARED && c.kind != Q16_PHI_WEIGHT_ABS) || c.alpha < 0
                              ? Q16_ERR_DOMAIN : Q16_OK;
                memcpy(Wf, Wt, wn * 4); memcpy(Wf + wn, bias, (size_t)p.F * 4);
                memcpy(Wn, Wf, pn * 4); memcpy(Wr, Wf, pn * 4); memcpy(Wm, Wf, pn * 4);
                sf = sn = sr_ = sm = 9;
                st[0] = q16_conv_backward_weights_riemannian_sr(Wf, with_b ? Wf + wn : NULL, pf, wsc, dY, X, c.lr,
                                                                c.gscale, c.alpha, c.rho, c.kind, batch, &p, seed, ctr,
                                                                &sf);
                st[1] = q16_conv_backward_weights_riemannian_sr(Wn, with_b ? Wn + wn : NULL, pnn, NULL, dY, X, c.lr,
                                                                c.gscale, c.alpha, c.rho, c.kind, batch, &p, seed, ctr,
                                                                &sn);
                st[2] = q16_ref_conv_backward_weights_riemannian_sr(Wr, with_b ? Wr + wn : NULL, pr, dY, X, c.lr,
                                                                    c.gscale, c.alpha, c.rho, c.kind, batch, &p, seed,
                                                                    ctr, &sr_);
                CHECK(st[0] == want_st && st[1] == want_st && st[2] == want_st);
                if (want_st == Q16_OK) {
                    for (i = 0; i < wn; i++) {
                        i128 s = ws[i];
                        if (s > slim) { s = slim; sm++; } /* the exact sum clamped once, counted once */
                        if (s < -slim) { s = -slim; sm++; }
                        Wm[i] = riem_step(&c, Wm[i], c.kind == Q16_PHI_GRAD_SQUARED ? Pm + i : NULL, s, ctr + i, &sm);
                    }
                    if (with_b)
                        for (i = 0; i < (size_t)p.F; i++) {
                            i128 s = bs[i];
                            if (s > blim) { s = blim; sm++; }
                            if (s < -blim) { s = -blim; sm++; }
                            Wm[wn + i] = riem_step(&c, Wm[wn + i], c.kind == Q16_PHI_GRAD_SQUARED ? Pm + wn + i : NULL,
                                                   s * 65536, ctr + wn + (uint64_t)i, &sm);
                        }
                } else {
                    sm = 9; /* nothing written, nothing counted: the model keeps the inputs */
                }
                CHECK(SAME3(Wr, Wf, Wn, Wm, pn) && SAME3(Pr, Pf, Pn, Pm, pn) && sf == sr_ && sn == sr_ && sm == sr_);
                (void)pm;
                free(phi0); free(Pf); free(Pn); free(Pr); free(Pm);
            }
            free(ws); free(bs); free(Wf); free(Wn); free(Wr); free(Wm);
        }
        if (mode & 32) conv_overlap(r, &p, batch, in, out, wn);
        free(X); free(Wt); free(bias); free(dY); free(Yf); free(Yn); free(Yr); free(Ym); free(fsc); free(bsc);
        free(wsc);
    }
}

/* ------------------------------------------------------------------ */
/* Pooling: max, average and global average pools, forward and back   */
/* ------------------------------------------------------------------ */

/* The documented size check of the pools: every dimension > 0, the window inside the input,
   batch*C*H*W fits int. */
MODEL static q16_status pool_status_model(int batch, int C, int H, int W, int ph, int pw) {
    if (batch <= 0 || C <= 0 || H <= 0 || W <= 0 || ph <= 0 || pw <= 0) return Q16_ERR_SIZE;
    if (ph > H || pw > W) return Q16_ERR_SIZE;
    if ((i128)batch * C * H * W > INT32_MAX) return Q16_ERR_SIZE;
    return Q16_OK;
}

/* A pool index is valid when it lies in its own window (i, j) of its plane. */
MODEL static int pool_index_ok(int32_t k, int H, int W, int ph, int pw, int i, int j) {
    return k >= 0 && k < H * W && (k / W) / ph == i && (k % W) / pw == j;
}

static void fuzz_pool(reader *r) {
    const uint8_t mode = rd_u8(r);
    int d[6], batch, C, H, W, ph, pw;
    q16_status want, want_g;
    d[0] = 1 + rd_u8(r) % 3;                      /* batch */
    d[1] = 1 + rd_u8(r) % 3;                      /* C */
    d[2] = (mode & 1) ? 1 : 1 + rd_u8(r) % 13;    /* H (1-D: 1) */
    d[3] = 1 + rd_u8(r) % 17;                     /* W */
    d[4] = (mode & 1) ? 1 : 1 + rd_u8(r) % 5;     /* ph: may exceed H (refused) */
    d[5] = 1 + rd_u8(r) % 6;                      /* pw */
    if (mode & 2) {
        const int f = rd_u8(r) % 6;
        d[f] = perturb(r, d[f]);
    }
    batch = d[0]; C = d[1]; H = d[2]; W = d[3]; ph = d[4]; pw = d[5];
    want = pool_status_model(batch, C, H, W, ph, pw);
    want_g = pool_status_model(batch, C, H, W, H, W);
    if (want != Q16_OK || want_g != Q16_OK) {
        /* refused calls write nothing (dummies stand in for every buffer) */
        q16_t *a = dummy(), *b = dummy(), *c = dummy();
        int32_t *idx = (int32_t *)dummy();
        if (want != Q16_OK) {
            CHECK(q16_maxpool_forward(a, idx, b, batch, C, H, W, ph, pw) == want);
            CHECK(q16_maxpool_forward(a, NULL, b, batch, C, H, W, ph, pw) == want);
            CHECK(q16_maxpool_backward(a, b, (const int32_t *)c, batch, C, H, W, ph, pw) == want);
            CHECK(q16_avgpool_forward(a, b, batch, C, H, W, ph, pw) == want);
            CHECK(q16_avgpool_backward(a, b, batch, C, H, W, ph, pw) == want);
        }
        if (want_g != Q16_OK) {
            CHECK(q16_global_avgpool_forward(a, b, batch, C, H, W) == want_g);
            CHECK(q16_global_avgpool_backward(a, b, batch, C, H, W) == want_g);
        }
        CHECK(untouched(a) && untouched(b) && untouched(c) && untouched((q16_t *)idx));
        free(a); free(b); free(c); free(idx);
        if (want != Q16_OK) return;
    }
    if ((int64_t)batch * C * H * W > 8192) return; /* a large valid perturbed shape: skip */
    {
        const int Ho = H / ph, Wo = W / pw, planes = batch * C, n = ph * pw;
        const size_t in = (size_t)planes * H * W, out = (size_t)planes * Ho * Wo;
        q16_t *X = rd_vec(r, in), *dY = rd_vec(r, out), *gdY = rd_vec(r, (size_t)planes);
        q16_t *Y = filled(out), *Ym = xmalloc(out * 4), *dX = filled(in), *dXm = xmalloc(in * 4);
        q16_t *Gy = filled((size_t)planes), *Gm = xmalloc((size_t)planes * 4);
        int32_t *idx = xmalloc(out * 4 + 4), *idxm = xmalloc(out * 4 + 4);
        int pl, i, j, u, v, y, x;

        /* max pool forward: the first maximum of each window (row-major), its index in the plane */
        for (pl = 0; pl < planes; pl++)
            for (i = 0; i < Ho; i++)
                for (j = 0; j < Wo; j++) {
                    q16_t best = 0;
                    int32_t at = -1;
                    for (u = 0; u < ph; u++)
                        for (v = 0; v < pw; v++) {
                            const int32_t k = (i * ph + u) * W + j * pw + v;
                            if (at < 0 || X[(size_t)pl * H * W + k] > best) { best = X[(size_t)pl * H * W + k]; at = k; }
                        }
                    Ym[((size_t)pl * Ho + i) * Wo + j] = best;
                    idxm[((size_t)pl * Ho + i) * Wo + j] = at;
                }
        CHECK(q16_maxpool_forward(Y, idx, X, batch, C, H, W, ph, pw) == Q16_OK);
        CHECK(same(Y, Ym, out) && memcmp(idx, idxm, out * 4) == 0);
        {
            q16_t *Y2 = filled(out);
            CHECK(q16_maxpool_forward(Y2, NULL, X, batch, C, H, W, ph, pw) == Q16_OK && same(Y2, Ym, out));
            free(Y2);
        }

        /* max pool backward: each window routes its gradient to its argmax; an index outside its own
           window (mode & 4: one corrupted) is refused with nothing written */
        {
            int bad = 0;
            if (mode & 4) {
                const size_t at = rd_u8(r) % out;
                const int32_t k = (int32_t)rd_u32(r) % (int32_t)(H * W + 2) - (rd_u8(r) & 1);
                const int oi = (int)(at / Wo % Ho), oj = (int)(at % Wo);
                idx[at] = (rd_u8(r) & 3) == 0 ? (int32_t)rd_u32(r) : k;
                bad = !pool_index_ok(idx[at], H, W, ph, pw, oi, oj);
            }
            if (bad) { /* dX is still all SENTINEL (first use) and must stay so */
                for (i = 0; i < (int)in; i++) dXm[i] = SENTINEL;
                CHECK(q16_maxpool_backward(dX, dY, idx, batch, C, H, W, ph, pw) == Q16_ERR_DOMAIN);
            } else {
                for (i = 0; i < (int)in; i++) dXm[i] = 0;
                for (pl = 0; pl < planes; pl++)
                    for (i = 0; i < Ho * Wo; i++)
                        dXm[(size_t)pl * H * W + idx[(size_t)pl * Ho * Wo + i]] = dY[(size_t)pl * Ho * Wo + i];
                CHECK(q16_maxpool_backward(dX, dY, idx, batch, C, H, W, ph, pw) == Q16_OK);
            }
            CHECK(same(dX, dXm, in));
        }

        /* average pool forward: the exact window sum / (ph pw), nearest, ties away */
        for (pl = 0; pl < planes; pl++)
            for (i = 0; i < Ho; i++)
                for (j = 0; j < Wo; j++) {
                    i128 s = 0;
                    for (u = 0; u < ph; u++)
                        for (v = 0; v < pw; v++) s += X[((size_t)pl * H + i * ph + u) * W + j * pw + v];
                    Ym[((size_t)pl * Ho + i) * Wo + j] = (q16_t)div_near(s, n);
                }
        CHECK(q16_avgpool_forward(Y, X, batch, C, H, W, ph, pw) == Q16_OK && same(Y, Ym, out));

        /* average pool backward: dY / (ph pw) inside the windows, 0 in the trailing rows and columns */
        for (pl = 0; pl < planes; pl++)
            for (y = 0; y < H; y++)
                for (x = 0; x < W; x++)
                    dXm[((size_t)pl * H + y) * W + x] =
                        (y / ph < Ho && x / pw < Wo)
                            ? (q16_t)div_near(dY[((size_t)pl * Ho + y / ph) * Wo + x / pw], n) : 0;
        CHECK(q16_avgpool_backward(dX, dY, batch, C, H, W, ph, pw) == Q16_OK && same(dX, dXm, in));

        /* global average pool: the plane mean; backward dY / (H W) everywhere */
        for (pl = 0; pl < planes; pl++) {
            i128 s = 0;
            for (i = 0; i < H * W; i++) s += X[(size_t)pl * H * W + i];
            Gm[pl] = (q16_t)div_near(s, (i128)H * W);
        }
        CHECK(q16_global_avgpool_forward(Gy, X, batch, C, H, W) == Q16_OK && same(Gy, Gm, (size_t)planes));
        for (pl = 0; pl < planes; pl++)
            for (i = 0; i < H * W; i++) dXm[(size_t)pl * H * W + i] = (q16_t)div_near(gdY[pl], (i128)H * W);
        CHECK(q16_global_avgpool_backward(dX, gdY, batch, C, H, W) == Q16_OK && same(dX, dXm, in));

        /* overlap: an output starting inside its input; nothing written */
        if (mode & 8) {
            q16_t *copy = dup_vec(X, in), *o = X + rd_u8(r) % in;
            q16_t *dYc = dup_vec(dY, out), *og = dY + rd_u8(r) % out;
            CHECK(q16_maxpool_forward(o, NULL, X, batch, C, H, W, ph, pw) == Q16_ERR_OVERLAP);
            CHECK(q16_maxpool_forward(Y, (int32_t *)o, X, batch, C, H, W, ph, pw) == Q16_ERR_OVERLAP);
            CHECK(q16_avgpool_forward(o, X, batch, C, H, W, ph, pw) == Q16_ERR_OVERLAP);
            CHECK(q16_global_avgpool_forward(o, X, batch, C, H, W) == Q16_ERR_OVERLAP);
            CHECK(q16_maxpool_backward(og, dY, idxm, batch, C, H, W, ph, pw) == Q16_ERR_OVERLAP);
            CHECK(q16_avgpool_backward(og, dY, batch, C, H, W, ph, pw) == Q16_ERR_OVERLAP);
            CHECK(q16_global_avgpool_backward(dY + rd_u8(r) % planes, dY, batch, C, H, W) == Q16_ERR_OVERLAP);
            CHECK(same(X, copy, in) && same(dY, dYc, out));
            free(copy); free(dYc);
        }
        free(X); free(dY); free(gdY); free(Y); free(Ym); free(dX); free(dXm); free(Gy); free(Gm); free(idx);
        free(idxm);
    }
}

/* ------------------------------------------------------------------ */
/* Scalars: mul, div, sqrt, exp, log, shift_sr; colsum                  */
/* ------------------------------------------------------------------ */

static void fuzz_scalar(reader *r) {
    const q16_t a = rd_val(r), b = rd_val(r);
    uint64_t sat = 0, ws = 0;
    q16_t out;
    q16_status st;

    /* mul: the exact product rounded once, saturated */
    out = q16_mul(a, b, &sat);
    CHECK(out == mul_model(a, b, &ws) && sat == ws);

    /* div: round(a 2^16 / b), ties away; b == 0 is an error with a saturated result */
    sat = ws = 0;
    out = 0x1234;
    st = q16_div(&out, a, b, &sat);
    if (b == 0) {
        CHECK(st == Q16_ERR_DIV_ZERO);
        CHECK(out == (a > 0 ? Q16_MAX : a < 0 ? Q16_MIN : 0) && sat == (a != 0 ? 1u : 0u));
    } else {
        i128 n = (i128)a * 65536, d = b;
        i128 q = div_near(d < 0 ? -n : n, d < 0 ? -d : d);
        CHECK(st == Q16_OK && out == clampc(q, &ws) && sat == ws);
    }

    /* sqrt: correctly rounded; a < 0 is a domain error with 0 */
    out = 0x1234;
    st = q16_sqrt(&out, a);
    if (a < 0) {
        CHECK(st == Q16_ERR_DOMAIN && out == 0);
    } else {
        uint64_t N = (uint64_t)a << 16, q = (uint64_t)sqrtl((long double)N);
        while (q * q > N) q--;
        while ((q + 1) * (q + 1) <= N) q++;
        if (4 * N >= (2 * q + 1) * (2 * q + 1)) q++; /* nearest (no exact ties: 4N is even) */
        CHECK(st == Q16_OK && (uint64_t)out == q);
    }

    /* exp: within max(1 LSB, 2^-15 exp(x)); exactly 0 below exp(x) = 2^-17; saturates above ln 32768 */
    {
        long double ref = expl((long double)a / 65536.0L) * 65536.0L; /* in LSB */
        long double tol = ref * 0x1p-15L > 1.0L ? ref * 0x1p-15L : 1.0L;
        sat = 0;
        out = q16_exp(a, &sat);
        if (ref < 0.5L * (1 - 1e-15L)) CHECK(out == 0);
        if (ref > (long double)Q16_MAX + tol) CHECK(out == Q16_MAX && sat == 1);
        else if (out == Q16_MAX) CHECK(ref >= (long double)Q16_MAX - tol && sat <= 1);
        else CHECK(fabsl((long double)out - ref) <= tol && sat == 0);
    }

    /* log: within 1 LSB; x <= 0 is a domain error with Q16_MIN */
    out = 0x1234;
    st = q16_log(&out, a);
    if (a <= 0) CHECK(st == Q16_ERR_DOMAIN && out == Q16_MIN);
    else CHECK(st == Q16_OK && fabsl((long double)out - logl((long double)a / 65536.0L) * 65536.0L) <= 1.0L);

    /* shift_sr: any int64, shift 0...70 (clamped to 62), any random word */
    {
        const uint64_t bits = rd_u64(r);
        int64_t v;
        unsigned shift = rd_u8(r) % 71;
        uint32_t rnd = rd_u32(r);
        uint8_t pick = rd_u8(r);
        memcpy(&v, &bits, sizeof v);
        if (pick % 4 == 0) v = (pick & 4) ? INT64_MIN : INT64_MAX;
        else if (pick % 4 == 1) v = (int64_t)a * b; /* products of the Q32.32 kind */
        sat = ws = 0;
        out = q16_shift_sr(v, shift, rnd, &sat);
        CHECK(out == clampc(sr(v, shift > 62 ? 62 : (int)shift, rnd), &ws) && sat == ws);
    }

    /* colsum: exact, one saturation per clamped column */
    {
        const int rows = rd_dim(r), n = rd_dim(r);
        q16_t *in = rd_vec(r, (size_t)rows * n), *o = xmalloc((size_t)n * 4);
        int i, j;
        sat = ws = 0;
        CHECK(q16_colsum(o, in, rows, n, &sat) == Q16_OK);
        for (j = 0; j < n; j++) {
            i128 s = 0;
            for (i = 0; i < rows; i++) s += in[(size_t)i * n + j];
            CHECK(o[j] == clampc(s, &ws));
        }
        CHECK(sat == ws);
        free(in); free(o);
    }
}

/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r;
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a of the input seeds the tail generator */
    size_t i;
    for (i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001B3ull;
    r.p = data; r.left = size; r.gen = h;
    switch (rd_u8(&r) % 10) { /* 0...7 kept their meaning when conv (8) and pool (9) were added */
    case 0: fuzz_gemm(&r); break;
    case 1: fuzz_softmax(&r); break;
    case 2: fuzz_update_sr(&r); break;
    case 3: fuzz_momentum(&r); break;
    case 4: fuzz_outer(&r); break;
    case 5: fuzz_riemannian(&r); break;
    case 6: fuzz_pull(&r); break;
    case 7: fuzz_scalar(&r); break;
    case 8: fuzz_conv(&r); break;
    default: fuzz_pool(&r); break;
    }
    return 0;
}

#ifdef FUZZ_KERNELS_SEEDS
/* fuzz/run.sh seeds: one short seed per kernel family and value style, into argv[1]/. */
int main(int argc, char **argv) {
    static const char *names[10] = {"gemm", "softmax", "update_sr", "momentum", "outer", "riemannian", "pull",
                                    "scalar", "conv", "pool"};
    int sel, style;
    if (argc < 2) return 2;
    for (sel = 0; sel < 10; sel++)
        for (style = 0; style < 4; style++) {
            uint8_t buf[64];
            char path[512];
            FILE *f;
            int i;
            buf[0] = (uint8_t)sel;
            for (i = 1; i < (int)sizeof buf; i++) {
                switch (style) {
                case 0: buf[i] = 0; break;                                   /* zeros, 1x1x1 */
                case 1: buf[i] = (uint8_t)(i % 2 ? 0x18 : 0x20); break;      /* Q16_MIN / Q16_MAX extremes */
                case 2: buf[i] = (uint8_t)(i * 37 + 11); break;              /* mixed */
                default: buf[i] = (uint8_t)(0x80 | (i * 13)); break;         /* larger shapes */
                }
            }
            snprintf(path, sizeof path, "%s/%s_%d.bin", argv[1], names[sel], style);
            f = fopen(path, "wb");
            if (!f) return 1;
            fwrite(buf, 1, (size_t)(style == 0 ? 8 : (int)sizeof buf), f);
            fclose(f);
        }
    return 0;
}
#endif
