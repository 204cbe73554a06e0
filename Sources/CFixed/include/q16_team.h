/*
 * q16_team.h -- CFixed: a caller-owned team of worker threads and the parallel
 * entry points of the kernels (included by q16.h).
 *
 * Determinism: every parallel kernel splits its OUTPUT into contiguous blocks
 * (rows of a GEMM, rows of W for a weight update, samples of a convolution) and
 * computes each block with the unchanged serial kernel on a sub-view. Every
 * output word is therefore computed by exactly one worker with exactly the
 * serial kernel's arithmetic (each exact sum rounded once, the positional random
 * counters of stochastic rounding unchanged), so the results are bit-identical
 * for every worker count, 1 included. Saturation counts are kept per worker and
 * summed after the join (a sum of integers: the same for every split).
 *
 * The team: q16_team_init creates threads - 1 persistent threads once; q16_team_run
 * runs one block of work per worker (fn(ctx, block, count)), each block exactly once,
 * on whichever of the caller and the threads claims it first, and returns when all
 * have finished (a thread that is not scheduled never holds the caller up: the
 * caller runs the unclaimed blocks itself). Idle threads spin briefly, yield, then
 * sleep on a condition variable (they do not burn a core between steps). Nothing is allocated after
 * q16_team_init. Without pthreads (not Linux, or Q16_NO_THREADS defined),
 * q16_team_init accepts threads == 1 only and q16_team_run runs on the caller.
 *
 * A team runs one call at a time: q16_team_run and the q16_par_ kernels must not be
 * called concurrently on the same team (the engine's trainer owns its team).
 */
#ifndef Q16_TEAM_H
#define Q16_TEAM_H

#ifdef __cplusplus
extern "C" {
#endif

/** The largest team (workers, the caller included). */
#define Q16_TEAM_MAX 16

/** A team of workers; caller-owned memory of q16_team_size() bytes, 64-byte aligned. */
typedef struct q16_team q16_team;

/** Bytes of memory a q16_team needs (pass a 64-byte aligned block of that size to q16_team_init). */
size_t q16_team_size(void);

/**
 * Starts a team of `threads` workers (the caller is worker 0, threads - 1 new
 * threads) in the caller's memory `t`. Q16_ERR_NULL (t NULL), Q16_ERR_SIZE
 * (threads < 1 or > Q16_TEAM_MAX, or threads > 1 where threads are unavailable),
 * Q16_ERR_DOMAIN (a thread could not be created; the ones created are joined
 * and nothing is left running).
 */
q16_status q16_team_init(q16_team *t, int threads);

/** Stops and joins the team's threads (t may be NULL). The memory may then be freed. */
void q16_team_destroy(q16_team *t);

/** Workers of the team (1 for t NULL). */
int q16_team_count(const q16_team *t);

/** One block of a run: fn(ctx, block, blocks) with block in [0, blocks) (blocks = the team's count). */
typedef void (*q16_team_fn)(void *ctx, int worker, int workers);

/**
 * Runs fn(ctx, b, count) once for every block b in [0, count), concurrently on the caller
 * and the team's threads (any block on any of them), and returns when all have returned;
 * their writes are visible to the caller then. t NULL: fn(ctx, 0, 1).
 */
void q16_team_run(q16_team *t, q16_team_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Parallel kernels (q16_parallel.c)                                   */
/* ------------------------------------------------------------------ */
/*
 * Each is its serial kernel's twin with a team (NULL: the caller alone) and, where
 * the kernel takes scratch, one scratch part per worker: block w uses
 * scratch + w * scratch_stride bytes, scratch_stride >= the serial kernel's
 * ..._buffer_size for the whole call and a multiple of the scratch's alignment (4 bytes,
 * 8 for the int64 scratch of the updates); scratch may be NULL where the serial kernel
 * accepts NULL, and spans q16_team_count(team) * scratch_stride bytes. Results, status
 * and saturation counts equal the serial kernel's for every team size when the call succeeds. A call below about
 * 32k multiply-accumulates runs on the caller alone. Errors: the checks of the
 * serial kernel on the whole call come first (nothing is written), then Q16_ERR_SIZE
 * when the work is split and scratch_stride is too small or misaligned (the parts would
 * overlap); a block's error would be returned in block order.
 */

/** q16_gemm_nt split by rows of C (and A). */
q16_status q16_par_gemm_nt(q16_team *team, q16_t *C, q16_t *scratch, size_t scratch_stride, const q16_t *A,
                           const q16_t *B, const q16_t *bias, int m, int n, int k, uint64_t *sat);

/** q16_gemm_nn split by rows of C (and A). */
q16_status q16_par_gemm_nn(q16_team *team, q16_t *C, const q16_t *A, const q16_t *B, int m, int n, int k,
                           uint64_t *sat);

/** q16_update_outer_sr split by rows of W (and entries of bias); scratch: 8 n bytes per worker. */
q16_status q16_par_update_outer_sr(q16_team *team, q16_t *W, q16_t *bias, int64_t *scratch,
                                   size_t scratch_stride, const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                   int batch, int m, int n, uint64_t seed, uint64_t counter, uint64_t *sat);

/** q16_update_outer_riemannian_sr split by rows of W; scratch: 8 n bytes per worker. */
q16_status q16_par_update_outer_riemannian_sr(q16_team *team, q16_t *W, q16_t *bias, q16_t *phi,
                                              int64_t *scratch, size_t scratch_stride, const q16_t *dY,
                                              const q16_t *X, uint32_t lr_q32, uint32_t gscale_q32,
                                              q16_t alpha_q16, uint32_t rho_q32, q16_phi_kind kind, int batch,
                                              int m, int n, uint64_t seed, uint64_t counter, uint64_t *sat);

/** q16_conv_forward split by samples. */
q16_status q16_par_conv_forward(q16_team *team, q16_t *Y, q16_t *scratch, size_t scratch_stride, const q16_t *X,
                                const q16_t *Wt, const q16_t *bias, int batch, const q16_conv_params *p,
                                uint64_t *sat);

/** q16_conv_backward_data split by samples. */
q16_status q16_par_conv_backward_data(q16_team *team, q16_t *dX, q16_t *scratch, size_t scratch_stride,
                                      const q16_t *dY, const q16_t *Wt, int batch, const q16_conv_params *p,
                                      uint64_t *sat);

/**
 * Rows i0..i1-1 of q16_update_outer_sr (W and bias are the whole layer's; rows outside
 * the range are not touched): the same bits as the whole call gives those rows.
 * Q16_ERR_SIZE also when 0 <= i0 <= i1 <= m fails. (q16_update.c)
 */
q16_status q16_update_outer_sr_rows(q16_t *W, q16_t *bias, int64_t *scratch, const q16_t *dY, const q16_t *X,
                                    uint32_t lr_q32, int batch, int m, int n, int i0, int i1, uint64_t seed,
                                    uint64_t counter, uint64_t *sat);

/** Rows i0..i1-1 of q16_update_outer_riemannian_sr (see q16_update_outer_sr_rows). (q16_riemannian.c) */
q16_status q16_update_outer_riemannian_sr_rows(q16_t *W, q16_t *bias, q16_t *phi, int64_t *scratch,
                                               const q16_t *dY, const q16_t *X, uint32_t lr_q32,
                                               uint32_t gscale_q32, q16_t alpha_q16, uint32_t rho_q32,
                                               q16_phi_kind kind, int batch, int m, int n, int i0, int i1,
                                               uint64_t seed, uint64_t counter, uint64_t *sat);

#ifdef __cplusplus
}
#endif
#endif /* Q16_TEAM_H */
