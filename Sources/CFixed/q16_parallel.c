/*
 * q16_parallel.c -- the parallel entry points of the kernels (see q16_team.h).
 *
 * Every q16_par_ kernel cuts its output into one contiguous block per worker and
 * runs the unchanged serial kernel on each block's sub-view, so each output word
 * gets exactly the serial kernel's arithmetic: bit-identical results for every
 * worker count. Block edges of GEMMs are multiples of Q16P_ALIGN rows (the
 * microkernels' row tile), so small blocks keep their vector paths. A call below
 * Q16P_MIN_MACS multiply-accumulates, or with invalid arguments, is passed whole to
 * the serial kernel on the caller (then the status is the serial kernel's exactly).
 */
#include "q16.h"
#include "q16_gemm_impl.h"

#define Q16P_ALIGN 4
#define Q16P_MIN_MACS 32768.0

/* Each worker's status and saturation count, combined after the join (in block order). */
typedef struct q16p_result {
    q16_status status[Q16_TEAM_MAX];
    uint64_t sat[Q16_TEAM_MAX];
} q16p_result;

/* Block w of nw over `total` items in units of `align`: [*lo, *hi), possibly empty. */
static void q16p_block(int total, int align, int w, int nw, int *lo, int *hi) {
    const long long units = ((long long)total + align - 1) / align;
    long long a = units * w / nw * align, b = units * (w + 1) / nw * align;
    *lo = (int)(a < total ? a : total);
    *hi = (int)(b < total ? b : total);
}

/* Workers a call of `macs` multiply-accumulates over `items` blocks of `align` uses. */
static int q16p_workers(const q16_team *team, double macs, int items) {
    int nw = q16_team_count(team);
    if (nw > items) nw = items;
    return macs < Q16P_MIN_MACS || nw < 1 ? 1 : nw;
}

static void q16p_clear(q16p_result *r) {
    int w;
    for (w = 0; w < Q16_TEAM_MAX; w++) {
        r->status[w] = Q16_OK;
        r->sat[w] = 0;
    }
}

/* The first error in block order, else Q16_OK and the summed saturations added to *sat (workers
   that got an empty block, or did not run, have Q16_OK and 0). */
static q16_status q16p_finish(const q16p_result *r, int nw, uint64_t *sat) {
    uint64_t total = 0;
    int w;
    for (w = 0; w < nw; w++)
        if (r->status[w] != Q16_OK) return r->status[w];
    for (w = 0; w < nw; w++) total += r->sat[w];
    if (sat) *sat += total;
    return Q16_OK;
}

static void *q16p_scratch(void *scratch, size_t stride, int w) {
    return scratch ? (void *)((char *)scratch + (size_t)w * stride) : NULL;
}

/* ------------------------------------------------------------------ */
/* GEMMs: blocks of rows of C and A                                    */
/* ------------------------------------------------------------------ */

typedef struct q16p_gemm {
    q16p_result r;
    q16_t *C, *scratch;
    size_t stride;
    const q16_t *A, *B, *bias;
    int m, n, k, nt;
} q16p_gemm;

static void q16p_gemm_run(void *ctx, int w, int nw) {
    q16p_gemm *g = (q16p_gemm *)ctx;
    int lo, hi;
    q16p_block(g->m, Q16P_ALIGN, w, nw, &lo, &hi);
    if (lo >= hi) return;
    if (g->nt)
        g->r.status[w] = q16_gemm_nt(g->C + (size_t)lo * (size_t)g->n, (q16_t *)q16p_scratch(g->scratch, g->stride, w),
                                     g->A + (size_t)lo * (size_t)g->k, g->B, g->bias, hi - lo, g->n, g->k,
                                     &g->r.sat[w]);
    else
        g->r.status[w] = q16_gemm_nn(g->C + (size_t)lo * (size_t)g->n, g->A + (size_t)lo * (size_t)g->k, g->B,
                                     hi - lo, g->n, g->k, &g->r.sat[w]);
}

/* Whole-call checks that the blocks cannot see (NULLs, sizes, C against every input). */
static int q16p_gemm_valid(const q16_t *C, const q16_t *A, const q16_t *B, const q16_t *bias, const void *scratch,
                           size_t sbytes, int m, int n, int k) {
    size_t cb, ab, bb;
    if (!C || !A || !B || m <= 0 || n <= 0 || k <= 0) return 0;
    if (!q16i_mul_fits(m, n) || !q16i_mul_fits(m, k) || !q16i_mul_fits(n, k)) return 0;
    cb = Q16I_BYTES((size_t)m * (size_t)n);
    ab = Q16I_BYTES((size_t)m * (size_t)k);
    bb = Q16I_BYTES((size_t)n * (size_t)k);
    return !q16i_overlap(C, cb, A, ab) && !q16i_overlap(C, cb, B, bb) && !q16i_overlap(C, cb, bias, Q16I_BYTES(n)) &&
           !q16i_overlap(scratch, sbytes, C, cb) && !q16i_overlap(scratch, sbytes, A, ab) &&
           !q16i_overlap(scratch, sbytes, B, bb) && !q16i_overlap(scratch, sbytes, bias, Q16I_BYTES(n));
}

q16_status q16_par_gemm_nt(q16_team *team, q16_t *C, q16_t *scratch, size_t scratch_stride, const q16_t *A,
                           const q16_t *B, const q16_t *bias, int m, int n, int k, uint64_t *sat) {
    q16p_gemm g;
    const int nw = q16p_workers(team, (double)m * n * k, (m + Q16P_ALIGN - 1) / Q16P_ALIGN);
    const size_t sbytes = scratch ? (size_t)q16_team_count(team) * scratch_stride : 0;
    if (nw == 1 || !q16p_gemm_valid(C, A, B, bias, scratch, sbytes, m, n, k))
        return q16_gemm_nt(C, scratch, A, B, bias, m, n, k, sat);
    if (scratch && (scratch_stride < q16_gemm_nt_buffer_size(m, n, k) || scratch_stride % 4 != 0))
        return Q16_ERR_SIZE; /* the workers' parts would overlap */
    q16p_clear(&g.r);
    g.C = C, g.scratch = scratch, g.stride = scratch_stride, g.A = A, g.B = B, g.bias = bias;
    g.m = m, g.n = n, g.k = k, g.nt = 1;
    q16_team_run(team, q16p_gemm_run, &g);
    return q16p_finish(&g.r, Q16_TEAM_MAX, sat);
}

q16_status q16_par_gemm_nn(q16_team *team, q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k,
                           uint64_t *sat) {
    q16p_gemm g;
    const int nw = q16p_workers(team, (double)m * n * k, (m + Q16P_ALIGN - 1) / Q16P_ALIGN);
    if (nw == 1 || !q16p_gemm_valid(C, A, B, NULL, NULL, 0, m, n, k)) return q16_gemm_nn(C, A, B, m, n, k, sat);
    q16p_clear(&g.r);
    g.C = C, g.scratch = NULL, g.stride = 0, g.A = A, g.B = B, g.bias = NULL;
    g.m = m, g.n = n, g.k = k, g.nt = 0;
    q16_team_run(team, q16p_gemm_run, &g);
    return q16p_finish(&g.r, Q16_TEAM_MAX, sat);
}

/* ------------------------------------------------------------------ */
/* Fused weight updates: blocks of rows of W (the _rows kernels check the  */
/* whole layer in every block, so an invalid call fails before any write)   */
/* ------------------------------------------------------------------ */

typedef struct q16p_update {
    q16p_result r;
    q16_t *W, *bias, *phi;
    int64_t *scratch;
    size_t stride;
    const q16_t *dY, *X;
    uint32_t lr, gscale, rho;
    q16_t alpha;
    q16_phi_kind kind;
    int batch, m, n, riemannian;
    uint64_t seed, counter;
} q16p_update;

static void q16p_update_run(void *ctx, int w, int nw) {
    q16p_update *u = (q16p_update *)ctx;
    int64_t *s = (int64_t *)q16p_scratch(u->scratch, u->stride, w);
    int lo, hi;
    q16p_block(u->m, 1, w, nw, &lo, &hi);
    if (lo >= hi) return;
    if (u->riemannian)
        u->r.status[w] = q16_update_outer_riemannian_sr_rows(u->W, u->bias, u->phi, s, u->dY, u->X, u->lr, u->gscale,
                                                             u->alpha, u->rho, u->kind, u->batch, u->m, u->n, lo, hi,
                                                             u->seed, u->counter, &u->r.sat[w]);
    else
        u->r.status[w] = q16_update_outer_sr_rows(u->W, u->bias, s, u->dY, u->X, u->lr, u->batch, u->m, u->n, lo,
                                                  hi, u->seed, u->counter, &u->r.sat[w]);
}

/* The serial checks of the whole call, run once: the blocks then cannot fail. */
static q16_status q16p_update_check(q16p_update *u) {
    if (u->riemannian)
        return q16_update_outer_riemannian_sr_rows(u->W, u->bias, u->phi, u->scratch, u->dY, u->X, u->lr, u->gscale,
                                                   u->alpha, u->rho, u->kind, u->batch, u->m, u->n, 0, 0, u->seed,
                                                   u->counter, NULL);
    return q16_update_outer_sr_rows(u->W, u->bias, u->scratch, u->dY, u->X, u->lr, u->batch, u->m, u->n, 0, 0,
                                    u->seed, u->counter, NULL);
}

static q16_status q16p_update_go(q16_team *team, q16p_update *u, uint64_t *sat) {
    const int nw = q16p_workers(team, (double)u->batch * u->m * u->n, u->m);
    q16_status s;
    size_t w;
    q16p_clear(&u->r);
    if (nw == 1 || u->scratch == NULL) {
        q16p_update_run(u, 0, 1);
        return q16p_finish(&u->r, 1, sat);
    }
    s = q16p_update_check(u);
    if (s != Q16_OK) return s;
    if (u->stride < q16_update_outer_sr_buffer_size(u->n) || u->stride % 8 != 0)
        return Q16_ERR_SIZE; /* the workers' parts would overlap */
    /* every worker's scratch must be clear of the outputs and inputs, as the first one's is */
    for (w = 1; w < (size_t)nw; w++) {
        const void *sw = q16p_scratch(u->scratch, u->stride, (int)w);
        const size_t sb = q16_update_outer_sr_buffer_size(u->n);
        const size_t wb = Q16I_BYTES((size_t)u->m * (size_t)u->n);
        if (q16i_overlap(sw, sb, u->W, wb) || q16i_overlap(sw, sb, u->bias, Q16I_BYTES(u->m)) ||
            q16i_overlap(sw, sb, u->dY, Q16I_BYTES((size_t)u->batch * (size_t)u->m)) ||
            q16i_overlap(sw, sb, u->X, Q16I_BYTES((size_t)u->batch * (size_t)u->n)) ||
            (u->riemannian && u->kind == Q16_PHI_GRAD_SQUARED &&
             q16i_overlap(sw, sb, u->phi, Q16I_BYTES((size_t)u->m * (size_t)u->n + (size_t)u->m))))
            return Q16_ERR_OVERLAP;
    }
    q16_team_run(team, q16p_update_run, u);
    return q16p_finish(&u->r, Q16_TEAM_MAX, sat);
}

q16_status q16_par_update_outer_sr(q16_team *team, q16_t *W, q16_t *bias, int64_t *scratch,
                                   size_t scratch_stride, const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                   int batch, int m, int n, uint64_t seed, uint64_t counter, uint64_t *sat) {
    q16p_update u;
    u.W = W, u.bias = bias, u.phi = NULL, u.scratch = scratch, u.stride = scratch_stride, u.dY = dY, u.X = X;
    u.lr = lr_q32, u.gscale = 0, u.rho = 0, u.alpha = 0, u.kind = Q16_PHI_WEIGHT_ABS;
    u.batch = batch, u.m = m, u.n = n, u.riemannian = 0, u.seed = seed, u.counter = counter;
    return q16p_update_go(team, &u, sat);
}

q16_status q16_par_update_outer_riemannian_sr(q16_team *team, q16_t *W, q16_t *bias, q16_t *phi,
                                              int64_t *scratch, size_t scratch_stride, const q16_t *dY,
                                              const q16_t *X, uint32_t lr_q32, uint32_t gscale_q32,
                                              q16_t alpha_q16, uint32_t rho_q32, q16_phi_kind kind, int batch,
                                              int m, int n, uint64_t seed, uint64_t counter, uint64_t *sat) {
    q16p_update u;
    u.W = W, u.bias = bias, u.phi = phi, u.scratch = scratch, u.stride = scratch_stride, u.dY = dY, u.X = X;
    u.lr = lr_q32, u.gscale = gscale_q32, u.rho = rho_q32, u.alpha = alpha_q16, u.kind = kind;
    u.batch = batch, u.m = m, u.n = n, u.riemannian = 1, u.seed = seed, u.counter = counter;
    return q16p_update_go(team, &u, sat);
}

/* ------------------------------------------------------------------ */
/* Convolutions: blocks of samples                                      */
/* ------------------------------------------------------------------ */

typedef struct q16p_conv {
    q16p_result r;
    q16_t *out, *scratch;
    size_t stride;
    const q16_t *in, *Wt, *bias;
    const q16_conv_params *p;
    size_t in_words, out_words; /* per sample */
    int batch, forward;
} q16p_conv;

static void q16p_conv_run(void *ctx, int w, int nw) {
    q16p_conv *c = (q16p_conv *)ctx;
    q16_t *s = (q16_t *)q16p_scratch(c->scratch, c->stride, w);
    int lo, hi;
    q16p_block(c->batch, 1, w, nw, &lo, &hi);
    if (lo >= hi) return;
    if (c->forward)
        c->r.status[w] = q16_conv_forward(c->out + (size_t)lo * c->out_words, s, c->in + (size_t)lo * c->in_words,
                                          c->Wt, c->bias, hi - lo, c->p, &c->r.sat[w]);
    else
        c->r.status[w] = q16_conv_backward_data(c->out + (size_t)lo * c->out_words, s,
                                                c->in + (size_t)lo * c->in_words, c->Wt, hi - lo, c->p,
                                                &c->r.sat[w]);
}

static q16_status q16p_conv_go(q16_team *team, q16p_conv *c, uint64_t *sat) {
    const q16_conv_params *p = c->p;
    const size_t sbytes = c->scratch ? (size_t)q16_team_count(team) * c->stride : 0;
    size_t ob, ib;
    int nw;
    q16p_clear(&c->r);
    if (p == NULL || q16_conv_check(p) != Q16_OK || c->batch <= 0 || !c->out || !c->in || !c->Wt) nw = 1;
    else {
        const double macs = (double)c->batch * p->F * p->Ho * p->Wo * p->C * p->kh * p->kw;
        nw = q16p_workers(team, macs, c->batch);
        c->in_words = c->forward ? (size_t)p->C * p->H * p->W : (size_t)p->F * p->Ho * p->Wo;
        c->out_words = c->forward ? (size_t)p->F * p->Ho * p->Wo : (size_t)p->C * p->H * p->W;
        ob = Q16I_BYTES(c->out_words * (size_t)c->batch);
        ib = Q16I_BYTES(c->in_words * (size_t)c->batch);
        if (!q16i_mul_fits(c->batch, (int)(c->in_words < c->out_words ? c->out_words : c->in_words)) ||
            q16i_overlap(c->out, ob, c->in, ib) ||
            q16i_overlap(c->out, ob, c->Wt, Q16I_BYTES((size_t)p->F * p->C * p->kh * p->kw)) ||
            q16i_overlap(c->out, ob, c->bias, Q16I_BYTES(p->F)) || q16i_overlap(c->scratch, sbytes, c->out, ob) ||
            q16i_overlap(c->scratch, sbytes, c->in, ib))
            nw = 1;
    }
    if (nw == 1) {
        if (c->forward) return q16_conv_forward(c->out, c->scratch, c->in, c->Wt, c->bias, c->batch, p, sat);
        return q16_conv_backward_data(c->out, c->scratch, c->in, c->Wt, c->batch, p, sat);
    }
    if (c->scratch) {
        const size_t need = c->forward ? q16_conv_forward_buffer_size(p) : q16_conv_backward_data_buffer_size(p);
        if (c->stride < need || c->stride % 4 != 0) return Q16_ERR_SIZE; /* the workers' parts would overlap */
    }
    q16_team_run(team, q16p_conv_run, c);
    return q16p_finish(&c->r, Q16_TEAM_MAX, sat);
}

q16_status q16_par_conv_forward(q16_team *team, q16_t *Y, q16_t *scratch, size_t scratch_stride, const q16_t *X,
                                const q16_t *Wt, const q16_t *bias, int batch, const q16_conv_params *p,
                                uint64_t *sat) {
    q16p_conv c;
    c.out = Y, c.scratch = scratch, c.stride = scratch_stride, c.in = X, c.Wt = Wt, c.bias = bias, c.p = p;
    c.batch = batch, c.forward = 1, c.in_words = 0, c.out_words = 0;
    return q16p_conv_go(team, &c, sat);
}

q16_status q16_par_conv_backward_data(q16_team *team, q16_t *dX, q16_t *scratch, size_t scratch_stride,
                                      const q16_t *dY, const q16_t *Wt, int batch, const q16_conv_params *p,
                                      uint64_t *sat) {
    q16p_conv c;
    c.out = dX, c.scratch = scratch, c.stride = scratch_stride, c.in = dY, c.Wt = Wt, c.bias = NULL, c.p = p;
    c.batch = batch, c.forward = 0, c.in_words = 0, c.out_words = 0;
    return q16p_conv_go(team, &c, sat);
}
