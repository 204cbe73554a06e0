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
 *     q16_shift_sr and q16_colsum (exact).
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
    switch (rd_u8(&r) % 8) {
    case 0: fuzz_gemm(&r); break;
    case 1: fuzz_softmax(&r); break;
    case 2: fuzz_update_sr(&r); break;
    case 3: fuzz_momentum(&r); break;
    case 4: fuzz_outer(&r); break;
    case 5: fuzz_riemannian(&r); break;
    case 6: fuzz_pull(&r); break;
    default: fuzz_scalar(&r); break;
    }
    return 0;
}

#ifdef FUZZ_KERNELS_SEEDS
/* fuzz/run.sh seeds: one short seed per kernel family and value style, into argv[1]/. */
int main(int argc, char **argv) {
    static const char *names[8] = {"gemm", "softmax", "update_sr", "momentum", "outer", "riemannian", "pull",
                                   "scalar"};
    int sel, style;
    if (argc < 2) return 2;
    for (sel = 0; sel < 8; sel++)
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
