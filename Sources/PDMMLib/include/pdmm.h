/*
 * pdmm.h -- the PDMM engine as a C library (libpdmm.a): Q16.16 fixed-point
 * training of a neural network inside one caller-owned arena.
 *
 * Build:  tools/cross/build.sh lib-host | lib-aarch64 | lib-armv7
 *         -> out/cross/lib/<arch>/libpdmm.a (the engine as Embedded Swift + the C kernels);
 *         link with:  cc app.c -I Sources/PDMMLib/include out/cross/lib/<arch>/libpdmm.a -lm
 *
 * Rules: every call takes a context; nothing prints, exits or keeps global
 * state; every function returns a pdmm_status (0 = PDMM_OK, negative = error,
 * see pdmm_status_string). Every training buffer and the writable model image
 * live in the caller's arena; the heap is used only by pdmm_init (bounded, see
 * pdmm_init_heap_bytes), pdmm_deinit (frees it) and the checkpoint calls
 * (transient, freed before they return). Training, prediction and evaluation
 * steps allocate nothing. A context is not thread-safe; two contexts are
 * independent.
 *
 * Example (error checks left out):
 *
 *     pdmm_config cfg;
 *     pdmm_config_default(&cfg);
 *     cfg.net = "64: dense 32, relu, dense 10";
 *     cfg.mode = PDMM_MODE_LOCAL; cfg.k = 1;
 *     pdmm_bytes plan;
 *     pdmm_plan(&cfg, &plan);                      // plan.arena bytes needed
 *     static _Alignas(16) uint8_t arena[1 << 20];   // >= plan.arena
 *     static _Alignas(16) uint8_t ctxmem[PDMM_CONTEXT_BYTES];
 *     pdmm_context *ctx = (pdmm_context *)ctxmem;
 *     pdmm_init(ctx, &cfg, arena, sizeof arena, NULL);
 *     pdmm_train_batch(ctx, q16_features, labels, rows);   // rows <= cfg.batch
 *     pdmm_predict(ctx, q16_features, rows, classes, NULL);
 *     pdmm_deinit(ctx);
 */
#ifndef PDMM_H
#define PDMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status of every call: 0 ok, negative errors (one per failure kind). */
typedef int32_t pdmm_status;
#define PDMM_OK 0
#define PDMM_E_NULL (-1)                /**< a required pointer was NULL */
#define PDMM_E_BAD_CONFIG (-2)          /**< network text, widths, batch, mode, k, optimizer or lr invalid */
#define PDMM_E_NOT_INITIALIZED (-3)     /**< the context was not initialised by pdmm_init (or was deinit'ed) */
#define PDMM_E_ARENA_TOO_SMALL (-4)     /**< the arena is smaller than the plan: see pdmm_shortfall */
#define PDMM_E_ALIGNMENT (-5)           /**< arena, frozen weights or context not 8-byte aligned */
#define PDMM_E_ZERO_ROWS (-6)           /**< rows < 1 */
#define PDMM_E_TOO_MANY_ROWS (-7)       /**< pdmm_train_batch: rows > the configured batch */
#define PDMM_E_LABEL_OUT_OF_RANGE (-8)  /**< a label outside [0, classes) */
#define PDMM_E_CORRUPT_CHECKPOINT (-9)  /**< magic, version, CRC or a size in a checkpoint is wrong */
#define PDMM_E_CHECKPOINT_MISMATCH (-10) /**< a valid checkpoint of another network/mode/optimizer/batch/lr/seed */
#define PDMM_E_BUFFER_TOO_SMALL (-11)   /**< pdmm_save_checkpoint: cap < pdmm_checkpoint_size */
#define PDMM_E_NO_MORE_STAGES (-12)     /**< pdmm_next_stage: the last stage is current */
#define PDMM_E_BAD_VALUE (-13)          /**< a NaN float feature */
#define PDMM_E_FROZEN_NEEDS_WEIGHTS (-14) /**< config.frozen_in_place without frozen_weights */
#define PDMM_E_INTERNAL (-15)           /**< an engine failure (a bug) */

/** Training modes (as `pdmm train --mode`). */
#define PDMM_MODE_BP 0            /**< full backprop */
#define PDMM_MODE_BP_CHECKPOINT 1 /**< backprop with activation checkpointing */
#define PDMM_MODE_LOCAL 2         /**< train the top k layers; layers 1..L-k frozen */
#define PDMM_MODE_BLOCKWISE 3     /**< k-layer blocks trained in stages with auxiliary heads */

/** Optimizers (as `pdmm train --optimizer`). */
#define PDMM_OPT_SGD 0
#define PDMM_OPT_MOMENTUM 1
#define PDMM_OPT_RIEMANNIAN 2
#define PDMM_PHI_GRAD2 0 /**< riemannian phi = g^2 (`--phi grad2`) */
#define PDMM_PHI_ABSW 1  /**< riemannian phi = |w| (`--phi absw`) */

/** Bytes of caller memory for a context (>= pdmm_context_size()), 8-byte aligned. */
#define PDMM_CONTEXT_BYTES 256

/** An opaque context in caller memory (PDMM_CONTEXT_BYTES, 8-byte aligned). */
typedef struct pdmm_context pdmm_context;

/** A training run's settings. Fill with pdmm_config_default first. */
typedef struct pdmm_config {
    /** The network as `pdmm train --net` takes it, NUL-terminated, e.g.
     *  "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, flatten, dense 10" (its "CxHxW:" prefix
     *  may be left out when input_shape is set); NULL: a dense ReLU stack over `widths`. */
    const char *net;
    /** Dense widths input, hidden..., classes (when net is NULL); width_count >= 2. */
    const int32_t *widths;
    int32_t width_count;
    /** Input shape C, H, W for `net` without prefix; all 0 = none. */
    int32_t input_shape[3];
    int32_t batch;          /**< samples per step (default 32) */
    int32_t mode;           /**< PDMM_MODE_* (default bp) */
    int32_t k;              /**< k of local / blockwise (default 1) */
    int32_t optimizer;      /**< PDMM_OPT_* (default sgd) */
    int32_t phi;            /**< PDMM_PHI_* (riemannian; default grad2) */
    double momentum;        /**< momentum mu (default 0.9) */
    double riemann_alpha;   /**< riemannian alpha (default 1.0) */
    double riemann_rho;     /**< riemannian rho (default 0.9) */
    double learning_rate;   /**< 0 < lr < 1 (default 0.05) */
    uint64_t seed;          /**< initialisation, stochastic rounding, heads (default 1) */
    /** 1: pdmm_init reads the layers frozen in every stage (local(k): 1..L-k) in place
     *  from its frozen_weights (which must then be given) and the arena holds only the
     *  other layers' copy (pdmm_bytes.arena_frozen_in_place); 0 (default): the arena
     *  holds the whole model image (pdmm_bytes.arena). */
    int32_t frozen_in_place;
} pdmm_config;

/** Bytes per memory category, as `pdmm report` prints them (planned). */
typedef struct pdmm_bytes {
    int64_t weights_trainable;
    int64_t weights_frozen;     /**< read in place (not in the arena's writable part) */
    int64_t gradients;
    int64_t optimizer;
    int64_t input;
    int64_t activations_stored;
    int64_t activations_working;
    int64_t scratch;
    int64_t writable;           /**< sum of the writable categories: the training buffers */
    int64_t model_image;        /**< the model image copy in the arena (every layer) */
    int64_t arena;              /**< arena bytes pdmm_init needs: model_image (8-aligned) + writable */
    int64_t model_image_frozen_in_place; /**< the image copy with frozen_in_place = 1 */
    int64_t arena_frozen_in_place;       /**< arena bytes with frozen_in_place = 1 */
} pdmm_bytes;

/** The last call's statistics (pdmm_last_stats). */
typedef struct pdmm_stats {
    int64_t loss_sum_q16;      /**< sum over rows of the cross-entropy, Q16.16 */
    int32_t loss_mean_q16;     /**< loss_sum_q16 / rows, rounded to nearest */
    int32_t rows;              /**< samples of the last train/evaluate call */
    int32_t correct;           /**< of those, arg-max == label */
    int32_t stage;             /**< the current stage (0-based) */
    int32_t stage_count;       /**< stages of the mode (blockwise: ceil(L / k); else 1) */
    uint64_t steps;            /**< training steps since init (or the loaded checkpoint's) */
    uint64_t saturations;      /**< results clamped by any kernel since init */
    pdmm_bytes measured;       /**< high-water bytes per category so far (== planned after a step) */
} pdmm_stats;

/** pdmm_config's defaults: a NULL net, batch 32, bp, k 1, sgd, lr 0.05, seed 1.
 *  Errors: PDMM_E_NULL. */
pdmm_status pdmm_config_default(pdmm_config *config);

/** Bytes of caller memory a context needs (<= PDMM_CONTEXT_BYTES). */
size_t pdmm_context_size(void);

/** Plans `config` without allocating any arena: bytes per category exactly as
 *  `pdmm report` prints them, and the arena size pdmm_init needs (`arena`, or
 *  `arena_frozen_in_place`). Only transient heap. Errors: PDMM_E_NULL,
 *  PDMM_E_BAD_CONFIG. */
pdmm_status pdmm_plan(const pdmm_config *config, pdmm_bytes *out);

/** Initialises `ctx` (caller memory, PDMM_CONTEXT_BYTES, 8-aligned) for `config`:
 *  plans the run, carves every training buffer and the model image from `arena`
 *  (arena_bytes, 8-aligned; the caller keeps ownership and must keep it alive until
 *  pdmm_deinit) and begins stage 0. The weights: He-uniform from config.seed
 *  (identical to `pdmm train`'s) when frozen_weights is NULL; else frozen_weights
 *  is a whole model image (every layer's W then b, Q16.16, as in a checkpoint),
 *  8-aligned, read-only to the library: with config.frozen_in_place, the layers
 *  frozen in every stage are read from it in place (never written, never copied;
 *  it may be flash or a PROT_READ mapping, kept alive until pdmm_deinit), and the
 *  others start as a copy of its words. Takes a bounded heap (pdmm_init_heap_bytes).
 *  A too-small arena is refused: PDMM_E_ARENA_TOO_SMALL, the need per category in
 *  pdmm_shortfall. Errors: PDMM_E_NULL, PDMM_E_BAD_CONFIG, PDMM_E_ALIGNMENT,
 *  PDMM_E_ARENA_TOO_SMALL, PDMM_E_FROZEN_NEEDS_WEIGHTS. On error nothing is held
 *  (no pdmm_deinit needed). A context that is still initialised is deinit'ed first. */
pdmm_status pdmm_init(pdmm_context *ctx, const pdmm_config *config, void *arena, size_t arena_bytes,
                      const int32_t *frozen_weights);

/** After PDMM_E_ARENA_TOO_SMALL from pdmm_init on `ctx`: the smallest plan's bytes
 *  per category (`needed`, its `arena` the size to give) and the shortfall
 *  needed->arena - arena_bytes (`short_by`). Errors: PDMM_E_NULL,
 *  PDMM_E_NOT_INITIALIZED (no refused init recorded in ctx). */
pdmm_status pdmm_shortfall(const pdmm_context *ctx, pdmm_bytes *needed, int64_t *short_by);

/** Heap bytes pdmm_init took for `ctx` (objects and arrays of views; bounded by the
 *  network's layer count and text length; freed by pdmm_deinit): an upper bound the
 *  library computes, checked against a malloc wrapper by the tests.
 *  Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED. */
pdmm_status pdmm_init_heap_bytes(const pdmm_context *ctx, int64_t *bytes);

/** Frees the heap pdmm_init took; ctx is then uninitialised (the arena is the
 *  caller's again). Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED. */
pdmm_status pdmm_deinit(pdmm_context *ctx);

/** Trains one step on `rows` (1...batch) samples: q16_features rows x inputs
 *  Q16.16 words (row-major), labels rows classes in [0, classes). Copies both into
 *  the arena (the caller keeps its buffers). Nothing is allocated. Errors:
 *  PDMM_E_NULL, PDMM_E_NOT_INITIALIZED, PDMM_E_ZERO_ROWS, PDMM_E_TOO_MANY_ROWS,
 *  PDMM_E_LABEL_OUT_OF_RANGE (nothing trained). */
pdmm_status pdmm_train_batch(pdmm_context *ctx, const int32_t *q16_features, const int32_t *labels, int32_t rows);

/** pdmm_train_batch with float features, converted to Q16.16 (round to nearest,
 *  ties away from zero, saturating). Also PDMM_E_BAD_VALUE for a NaN. */
pdmm_status pdmm_train_batch_f32(pdmm_context *ctx, const float *features, const int32_t *labels, int32_t rows);

/** The current stage's predictions for `rows` (>= 1, any count) samples: each
 *  row's class into classes[rows] and its softmax probabilities (Q16.16) into
 *  q16_probs[rows x classes]; either output may be NULL. The weights do not change;
 *  nothing is allocated. Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED, PDMM_E_ZERO_ROWS. */
pdmm_status pdmm_predict(pdmm_context *ctx, const int32_t *q16_features, int32_t rows, int32_t *classes,
                         int32_t *q16_probs);

/** Loss and correct count of the current stage over `rows` (>= 1) labelled samples,
 *  into *out (and pdmm_last_stats). The weights do not change. Errors: PDMM_E_NULL,
 *  PDMM_E_NOT_INITIALIZED, PDMM_E_ZERO_ROWS, PDMM_E_LABEL_OUT_OF_RANGE. */
pdmm_status pdmm_evaluate(pdmm_context *ctx, const int32_t *q16_features, const int32_t *labels, int32_t rows,
                          pdmm_stats *out);

/** Blockwise: writes the current stage's block into the model image and begins
 *  the next (pdmm_stats.stage_count stages in all). Errors: PDMM_E_NULL,
 *  PDMM_E_NOT_INITIALIZED, PDMM_E_NO_MORE_STAGES. */
pdmm_status pdmm_next_stage(pdmm_context *ctx);

/** The last train/evaluate call's statistics and the run's counters. Errors:
 *  PDMM_E_NULL, PDMM_E_NOT_INITIALIZED. */
pdmm_status pdmm_last_stats(const pdmm_context *ctx, pdmm_stats *out);

/** FNV-1a 64 of the model image's words (the current stage's block written back
 *  first): `pdmm train`'s "weights hash". Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED. */
pdmm_status pdmm_weights_hash(pdmm_context *ctx, uint64_t *hash);

/** Bytes pdmm_save_checkpoint writes now. Transient heap. Errors: PDMM_E_NULL,
 *  PDMM_E_NOT_INITIALIZED. */
pdmm_status pdmm_checkpoint_size(pdmm_context *ctx, size_t *bytes);

/** Writes the run's complete state into buf[cap] in the format and CRC-32 of
 *  `pdmm train --save` files (Sources/PDMMEngine/Checkpoint.swift; epochs done 0),
 *  *written = its bytes. Transient heap. Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED,
 *  PDMM_E_BUFFER_TOO_SMALL (*written = the size needed). */
pdmm_status pdmm_save_checkpoint(pdmm_context *ctx, void *buf, size_t cap, size_t *written);

/** Restores a checkpoint (from pdmm_save_checkpoint or `pdmm train --save`) of the
 *  same network, mode, optimizer, batch, lr and seed: weights, optimizer state,
 *  stage, step and rounding counters, so training continues bit-exactly. Feature
 *  scaling stored by the tool is not applied (the caller scales its features).
 *  Transient heap. Errors: PDMM_E_NULL, PDMM_E_NOT_INITIALIZED,
 *  PDMM_E_CORRUPT_CHECKPOINT, PDMM_E_CHECKPOINT_MISMATCH (the run is unchanged
 *  for a corrupt buffer). */
pdmm_status pdmm_load_checkpoint(pdmm_context *ctx, const void *buf, size_t len);

/** A static English message for a status ("ok", "arena too small", ...); never NULL. */
const char *pdmm_status_string(pdmm_status status);

#ifdef __cplusplus
}
#endif
#endif /* PDMM_H */
