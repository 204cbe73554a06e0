/*
 * pdmm_api_test.c -- acceptance test of the C library (libpdmm.a, pdmm.h).
 *
 *   pdmm_api_test                 runs every check below; exit 0 = all passed
 *   pdmm_api_test plan-csv NET BATCH OPTIMIZER K...
 *                                 prints the planned rows of `pdmm report --format csv`
 *                                 (columns mode..peak_writable) for the same settings
 *                                 (NET: "w0,w1,...,wL" widths or a network text), so
 *                                 tools/board/examples/run.sh can diff it with the tool's
 *
 * Checks: the plan of 64-32-10, batch 8, sgd against the numbers of
 * `pdmm report --format csv --layers 64,32,10 --batch 8` (copied below; run.sh diffs
 * more configurations against the tool itself); a too-small arena refused with its
 * shortfall; train / predict / save / load round trip bit-exact; every status
 * reachable from bad arguments (run under ASan by run.sh host); no heap during
 * steps, heap at init within pdmm_init_heap_bytes and given back by pdmm_deinit
 * (malloc wrapper alloc_count.c); frozen weights in a PROT_READ mapping while
 * training local(1): no fault, never written, same weights as a writable copy.
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc_count.h"
#include "pdmm.h"

static int failures;
#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)
#define CHECK_STATUS(expr, want)                                                                    \
    do {                                                                                            \
        pdmm_status got_ = (expr);                                                                  \
        CHECK(got_ == (want), "status %d (%s), expected %d (%s)", (int)got_, pdmm_status_string(got_), \
              (int)(want), pdmm_status_string(want));                                               \
    } while (0)

enum { IN = 64, HID = 32, CLASSES = 10, BATCH = 8, SAMPLES = 160 };
static const int32_t WIDTHS[] = {IN, HID, CLASSES};

static _Alignas(16) uint8_t arena_a[1 << 18];
static _Alignas(16) uint8_t arena_b[1 << 18];
static _Alignas(16) uint8_t ctx_a[PDMM_CONTEXT_BYTES];
static _Alignas(16) uint8_t ctx_b[PDMM_CONTEXT_BYTES];
static int32_t features[SAMPLES * IN];
static int32_t labels[SAMPLES];
static uint8_t ckpt[1 << 17];

/* Deterministic data: features in [-1, 1) Q16.16, the label a function of them. */
static void make_data(void) {
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < SAMPLES; i++) {
        int64_t best = INT64_MIN;
        for (int j = 0; j < IN; j++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            features[i * IN + j] = (int32_t)((s >> 33) & 0x1FFFF) - 65536;
        }
        for (int c = 0; c < CLASSES; c++) {
            int64_t v = features[i * IN + c] + features[i * IN + c + CLASSES];
            if (v > best) { best = v; labels[i] = c; }
        }
    }
}

static void dense_config(pdmm_config *c, int mode, int k) {
    pdmm_config_default(c);
    c->widths = WIDTHS;
    c->width_count = 3;
    c->batch = BATCH;
    c->mode = mode;
    c->k = k;
}

static pdmm_context *ctx(uint8_t *mem) { return (pdmm_context *)mem; }

/* Trains batches [from, to) of the data (batch b = samples b*BATCH...). */
static void train(pdmm_context *c, int from, int to) {
    for (int b = from; b < to; b++) {
        int s = (b * BATCH) % SAMPLES;
        CHECK_STATUS(pdmm_train_batch(c, features + s * IN, labels + s, BATCH), PDMM_OK);
    }
}

static uint64_t hash(pdmm_context *c) {
    uint64_t h = 0;
    CHECK_STATUS(pdmm_weights_hash(c, &h), PDMM_OK);
    return h;
}

static void test_plan(void) {
    pdmm_config c;
    pdmm_bytes b;
    dense_config(&c, PDMM_MODE_BP, 1);
    CHECK_STATUS(pdmm_plan(&c, &b), PDMM_OK);
    /* `pdmm report --format csv --layers 64,32,10 --batch 8` (d3d5bb9), row "bp,planned":
       9640,0,0,0,2080,1024,2080,2048,16872 */
    CHECK(b.weights_trainable == 9640 && b.weights_frozen == 0 && b.gradients == 0 && b.optimizer == 0 &&
              b.input == 2080 && b.activations_stored == 1024 && b.activations_working == 2080 &&
              b.scratch == 2048 && b.writable == 16872,
          "bp plan %lld %lld %lld %lld %lld %lld %lld %lld %lld", (long long)b.weights_trainable,
          (long long)b.weights_frozen, (long long)b.gradients, (long long)b.optimizer, (long long)b.input,
          (long long)b.activations_stored, (long long)b.activations_working, (long long)b.scratch,
          (long long)b.writable);
    CHECK(b.model_image == 9640 && b.arena == 9640 + 16872, "image %lld arena %lld", (long long)b.model_image,
          (long long)b.arena);
    dense_config(&c, PDMM_MODE_LOCAL, 1);
    CHECK_STATUS(pdmm_plan(&c, &b), PDMM_OK);
    /* row "local(1),planned": 1320,8320,0,0,2080,1024,352,2048,6824 */
    CHECK(b.weights_trainable == 1320 && b.weights_frozen == 8320 && b.activations_working == 352 &&
              b.writable == 6824,
          "local(1) plan %lld %lld %lld", (long long)b.weights_trainable, (long long)b.weights_frozen,
          (long long)b.writable);
    /* frozen in place: the arena holds layer 2 only (330 words) */
    CHECK(b.model_image_frozen_in_place == 1320 && b.arena_frozen_in_place == 1320 + 6824, "fip %lld %lld",
          (long long)b.model_image_frozen_in_place, (long long)b.arena_frozen_in_place);
}

static void test_too_small(void) {
    pdmm_config c;
    pdmm_bytes plan, need;
    int64_t short_by = 0;
    dense_config(&c, PDMM_MODE_BP, 1);
    pdmm_plan(&c, &plan);
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, 1000, NULL), PDMM_E_ARENA_TOO_SMALL);
    CHECK_STATUS(pdmm_shortfall(ctx(ctx_a), &need, &short_by), PDMM_OK);
    CHECK(short_by == need.arena - 1000, "short_by %lld, needed arena %lld", (long long)short_by,
          (long long)need.arena);
    /* The smallest plan: the report's, the dense forward unpacked (less scratch). */
    CHECK(need.weights_trainable == plan.weights_trainable && need.input == plan.input &&
              need.activations_stored == plan.activations_stored &&
              need.activations_working == plan.activations_working && need.scratch <= plan.scratch &&
              need.arena == need.model_image + need.writable,
          "needed %lld %lld scratch %lld vs %lld", (long long)need.arena, (long long)need.writable,
          (long long)need.scratch, (long long)plan.scratch);
    CHECK_STATUS(pdmm_train_batch(ctx(ctx_a), features, labels, 1), PDMM_E_NOT_INITIALIZED);
    /* 8 bytes short of the smallest plan: refused, short by exactly 8; at the size: accepted. */
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, (size_t)need.arena - 8, NULL), PDMM_E_ARENA_TOO_SMALL);
    CHECK_STATUS(pdmm_shortfall(ctx(ctx_a), &need, &short_by), PDMM_OK);
    CHECK(short_by == 8, "short by %lld, expected 8", (long long)short_by);
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, (size_t)need.arena, NULL), PDMM_OK);
    train(ctx(ctx_a), 0, 3);
    CHECK_STATUS(pdmm_shortfall(ctx(ctx_a), &need, &short_by), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_a)), PDMM_OK);
    /* The report's plan exactly: accepted, measured == planned after steps. */
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, (size_t)plan.arena, NULL), PDMM_OK);
    train(ctx(ctx_a), 0, 3);
    pdmm_stats st;
    CHECK_STATUS(pdmm_last_stats(ctx(ctx_a), &st), PDMM_OK);
    CHECK(st.measured.writable == plan.writable && st.measured.scratch == plan.scratch, "measured %lld planned %lld",
          (long long)st.measured.writable, (long long)plan.writable);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_a)), PDMM_OK);
}

static void test_round_trip(int mode, int optimizer) {
    pdmm_config c;
    dense_config(&c, mode, 1);
    c.optimizer = optimizer;
    alloc_counts before = alloc_count_now();
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, sizeof arena_a, NULL), PDMM_OK);
    alloc_counts after_init = alloc_count_now();
    int64_t bound = 0;
    CHECK_STATUS(pdmm_init_heap_bytes(ctx(ctx_a), &bound), PDMM_OK);
    int64_t taken = after_init.live - before.live;
    CHECK(taken > 0 && taken <= bound, "heap at init %lld B, bound %lld B", (long long)taken, (long long)bound);
    printf("mode %d optimizer %d: heap at init %lld B (pdmm_init_heap_bytes %lld B), %llu allocations\n", mode,
           optimizer, (long long)taken, (long long)bound,
           (unsigned long long)(after_init.allocations - before.allocations));

    /* Steps take no heap: 10 train batches, predict, evaluate, stats. */
    static int32_t classes[SAMPLES], probs[SAMPLES * CLASSES], classes_b[SAMPLES], probs_b[SAMPLES * CLASSES];
    alloc_counts s0 = alloc_count_now();
    train(ctx(ctx_a), 0, 10);
    pdmm_stats st;
    CHECK_STATUS(pdmm_predict(ctx(ctx_a), features, SAMPLES, classes, probs), PDMM_OK);
    CHECK_STATUS(pdmm_evaluate(ctx(ctx_a), features, labels, SAMPLES, &st), PDMM_OK);
    CHECK_STATUS(pdmm_last_stats(ctx(ctx_a), &st), PDMM_OK);
    alloc_counts s1 = alloc_count_now();
    CHECK(s1.allocations == s0.allocations, "%llu heap allocations during steps",
          (unsigned long long)(s1.allocations - s0.allocations));
    CHECK(st.rows == SAMPLES && st.steps == 10, "stats rows %d steps %llu", st.rows, (unsigned long long)st.steps);
    int correct = 0;
    for (int i = 0; i < SAMPLES; i++) {
        int64_t sum = 0;
        int best = 0;
        for (int j = 0; j < CLASSES; j++) {
            sum += probs[i * CLASSES + j];
            if (probs[i * CLASSES + j] > probs[i * CLASSES + best]) best = j;
        }
        CHECK(sum > 65536 - 64 && sum < 65536 + 64, "row %d probabilities sum to %lld", i, (long long)sum);
        CHECK(classes[i] >= 0 && classes[i] < CLASSES, "class %d", classes[i]);
        correct += classes[i] == labels[i];
        (void)best;
    }
    CHECK(correct == st.correct, "predict %d correct, evaluate %d", correct, st.correct);

    /* Save after 10 batches, train 10 more; a second context loads and trains the same 10. */
    size_t size = 0, written = 0;
    CHECK_STATUS(pdmm_checkpoint_size(ctx(ctx_a), &size), PDMM_OK);
    CHECK_STATUS(pdmm_save_checkpoint(ctx(ctx_a), ckpt, sizeof ckpt, &written), PDMM_OK);
    CHECK(written == size && size > 0, "written %zu size %zu", written, size);
    CHECK(memcmp(ckpt, "PDMMCKPT", 8) == 0, "magic");
    train(ctx(ctx_a), 10, 20);
    uint64_t ha = hash(ctx(ctx_a));
    CHECK_STATUS(pdmm_predict(ctx(ctx_a), features, SAMPLES, classes, probs), PDMM_OK);

    pdmm_config c2 = c;
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &c2, arena_b, sizeof arena_b, NULL), PDMM_OK);
    CHECK(hash(ctx(ctx_b)) != ha, "fresh context already has the trained hash");
    CHECK_STATUS(pdmm_load_checkpoint(ctx(ctx_b), ckpt, written), PDMM_OK);
    train(ctx(ctx_b), 10, 20);
    uint64_t hb = hash(ctx(ctx_b));
    CHECK(ha == hb, "round trip: %016llx vs %016llx", (unsigned long long)ha, (unsigned long long)hb);
    CHECK_STATUS(pdmm_predict(ctx(ctx_b), features, SAMPLES, classes_b, probs_b), PDMM_OK);
    CHECK(memcmp(classes, classes_b, sizeof classes) == 0 && memcmp(probs, probs_b, sizeof probs) == 0,
          "predictions differ after the round trip");
    pdmm_stats sa, sb;
    pdmm_last_stats(ctx(ctx_a), &sa);
    pdmm_last_stats(ctx(ctx_b), &sb);
    CHECK(sa.steps == 20 && sb.steps == 20 && sa.loss_sum_q16 == sb.loss_sum_q16, "steps %llu %llu loss %lld %lld",
          (unsigned long long)sa.steps, (unsigned long long)sb.steps, (long long)sa.loss_sum_q16,
          (long long)sb.loss_sum_q16);
    /* The second save equals the first context's save byte for byte. */
    static uint8_t ckpt2[sizeof ckpt];
    size_t w1 = 0, w2 = 0;
    pdmm_save_checkpoint(ctx(ctx_a), ckpt, sizeof ckpt, &w1);
    pdmm_save_checkpoint(ctx(ctx_b), ckpt2, sizeof ckpt2, &w2);
    CHECK(w1 == w2 && memcmp(ckpt, ckpt2, w1) == 0, "checkpoints differ (%zu, %zu bytes)", w1, w2);
    printf("mode %d optimizer %d: round trip hash %016llx, checkpoint %zu B\n", mode, optimizer,
           (unsigned long long)ha, w1);

    CHECK_STATUS(pdmm_deinit(ctx(ctx_a)), PDMM_OK);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_b)), PDMM_OK);
    alloc_counts end = alloc_count_now();
    CHECK(end.live == before.live, "heap after deinit %lld B, before init %lld B", (long long)end.live,
          (long long)before.live);
}

static void test_errors(void) {
    pdmm_config c;
    pdmm_bytes b;
    dense_config(&c, PDMM_MODE_BP, 1);
    pdmm_context *a = ctx(ctx_a);
    static _Alignas(8) uint8_t zero_ctx[PDMM_CONTEXT_BYTES];
    pdmm_context *z = ctx(zero_ctx);
    memset(zero_ctx, 0, sizeof zero_ctx);

    CHECK(pdmm_context_size() <= PDMM_CONTEXT_BYTES, "context size %zu", pdmm_context_size());
    CHECK_STATUS(pdmm_config_default(NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_plan(NULL, &b), PDMM_E_NULL);
    CHECK_STATUS(pdmm_plan(&c, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_init(NULL, &c, arena_a, sizeof arena_a, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_init(a, NULL, arena_a, sizeof arena_a, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_init(a, &c, NULL, sizeof arena_a, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_init(a, &c, arena_a + 1, sizeof arena_a - 8, NULL), PDMM_E_ALIGNMENT);
    CHECK_STATUS(pdmm_init((pdmm_context *)(ctx_b + 4), &c, arena_a, sizeof arena_a, NULL), PDMM_E_ALIGNMENT);

    /* bad configurations */
    pdmm_config bad = c;
    bad.batch = 0;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.mode = 9;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.mode = PDMM_MODE_LOCAL; bad.k = 3;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.learning_rate = 1.5;
    CHECK_STATUS(pdmm_init(a, &bad, arena_a, sizeof arena_a, NULL), PDMM_E_BAD_CONFIG);
    bad = c; bad.optimizer = 7;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.optimizer = PDMM_OPT_MOMENTUM; bad.momentum = 1.5;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.width_count = 1;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.widths = NULL;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.net = "64: dense 32, relu, dense";
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.net = "conv 4 3x3 same, relu, flatten, dense 10";  /* no input shape */
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad.input_shape[0] = 1; bad.input_shape[1] = 8; bad.input_shape[2] = 8;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_OK);
    bad.input_shape[1] = -8;
    CHECK_STATUS(pdmm_plan(&bad, &b), PDMM_E_BAD_CONFIG);
    bad = c; bad.mode = PDMM_MODE_LOCAL; bad.frozen_in_place = 1;
    CHECK_STATUS(pdmm_init(a, &bad, arena_a, sizeof arena_a, NULL), PDMM_E_FROZEN_NEEDS_WEIGHTS);

    /* uninitialised contexts */
    int32_t cls[4];
    size_t n = 0;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    pdmm_stats st;
    CHECK_STATUS(pdmm_train_batch(z, features, labels, 1), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_train_batch(NULL, features, labels, 1), PDMM_E_NULL);
    CHECK_STATUS(pdmm_predict(z, features, 1, cls, NULL), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_evaluate(z, features, labels, 1, &st), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_last_stats(z, &st), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_weights_hash(z, &u64), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_checkpoint_size(z, &n), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_save_checkpoint(z, ckpt, sizeof ckpt, &n), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_load_checkpoint(z, ckpt, 100), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_next_stage(z), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_init_heap_bytes(z, &i64), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_deinit(z), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_deinit(NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_shortfall(z, &b, &i64), PDMM_E_NOT_INITIALIZED);
    CHECK_STATUS(pdmm_shortfall(NULL, &b, &i64), PDMM_E_NULL);

    /* an initialised context, bad arguments: each refused, nothing trained */
    CHECK_STATUS(pdmm_init(a, &c, arena_a, sizeof arena_a, NULL), PDMM_OK);
    uint64_t h0 = hash(a);
    CHECK_STATUS(pdmm_train_batch(a, NULL, labels, 1), PDMM_E_NULL);
    CHECK_STATUS(pdmm_train_batch(a, features, NULL, 1), PDMM_E_NULL);
    CHECK_STATUS(pdmm_train_batch(a, features, labels, 0), PDMM_E_ZERO_ROWS);
    CHECK_STATUS(pdmm_train_batch(a, features, labels, -3), PDMM_E_ZERO_ROWS);
    CHECK_STATUS(pdmm_train_batch(a, features, labels, BATCH + 1), PDMM_E_TOO_MANY_ROWS);
    int32_t badl[BATCH];
    memcpy(badl, labels, sizeof badl);
    badl[5] = CLASSES;
    CHECK_STATUS(pdmm_train_batch(a, features, badl, BATCH), PDMM_E_LABEL_OUT_OF_RANGE);
    badl[5] = -1;
    CHECK_STATUS(pdmm_train_batch(a, features, badl, BATCH), PDMM_E_LABEL_OUT_OF_RANGE);
    CHECK_STATUS(pdmm_evaluate(a, features, badl, BATCH, &st), PDMM_E_LABEL_OUT_OF_RANGE);
    CHECK_STATUS(pdmm_evaluate(a, features, labels, 0, &st), PDMM_E_ZERO_ROWS);
    CHECK_STATUS(pdmm_evaluate(a, features, labels, 1, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_predict(a, features, 0, cls, NULL), PDMM_E_ZERO_ROWS);
    CHECK_STATUS(pdmm_predict(a, NULL, 1, cls, NULL), PDMM_E_NULL);
    static float ff[BATCH * IN];
    for (int i = 0; i < BATCH * IN; i++) ff[i] = 0.25f;
    ff[77] = __builtin_nanf("");
    CHECK_STATUS(pdmm_train_batch_f32(a, ff, labels, BATCH), PDMM_E_BAD_VALUE);
    CHECK_STATUS(pdmm_train_batch_f32(a, NULL, labels, BATCH), PDMM_E_NULL);
    CHECK_STATUS(pdmm_train_batch_f32(a, ff, labels, 0), PDMM_E_ZERO_ROWS);
    CHECK(hash(a) == h0, "a refused call changed the weights");
    pdmm_last_stats(a, &st);
    CHECK(st.steps == 0, "refused calls counted %llu steps", (unsigned long long)st.steps);
    CHECK_STATUS(pdmm_next_stage(a), PDMM_E_NO_MORE_STAGES);
    CHECK_STATUS(pdmm_last_stats(a, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_weights_hash(a, NULL), PDMM_E_NULL);

    /* checkpoints */
    size_t w = 0;
    CHECK_STATUS(pdmm_save_checkpoint(a, ckpt, 10, &w), PDMM_E_BUFFER_TOO_SMALL);
    CHECK(w > 10, "needed size %zu", w);
    CHECK_STATUS(pdmm_save_checkpoint(a, NULL, sizeof ckpt, &w), PDMM_E_NULL);
    CHECK_STATUS(pdmm_save_checkpoint(a, ckpt, sizeof ckpt, NULL), PDMM_E_NULL);
    CHECK_STATUS(pdmm_save_checkpoint(a, ckpt, sizeof ckpt, &w), PDMM_OK);
    CHECK_STATUS(pdmm_load_checkpoint(a, NULL, w), PDMM_E_NULL);
    CHECK_STATUS(pdmm_load_checkpoint(a, ckpt, 0), PDMM_E_CORRUPT_CHECKPOINT);
    CHECK_STATUS(pdmm_load_checkpoint(a, ckpt, 19), PDMM_E_CORRUPT_CHECKPOINT);
    CHECK_STATUS(pdmm_load_checkpoint(a, ckpt, w - 1), PDMM_E_CORRUPT_CHECKPOINT);
    static uint8_t broken[sizeof ckpt];
    for (size_t pos = 0; pos < w; pos += 97) { /* one flipped bit anywhere: the CRC (or the magic) catches it */
        memcpy(broken, ckpt, w);
        broken[pos] ^= 0x10;
        CHECK_STATUS(pdmm_load_checkpoint(a, broken, w), PDMM_E_CORRUPT_CHECKPOINT);
    }
    memset(broken, 0xA5, w);
    CHECK_STATUS(pdmm_load_checkpoint(a, broken, w), PDMM_E_CORRUPT_CHECKPOINT);
    CHECK(hash(a) == h0, "a refused checkpoint changed the weights");
    /* a valid checkpoint of another configuration (seed 2) */
    pdmm_config other = c;
    other.seed = 2;
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &other, arena_b, sizeof arena_b, NULL), PDMM_OK);
    CHECK_STATUS(pdmm_save_checkpoint(ctx(ctx_b), broken, sizeof broken, &w), PDMM_OK);
    CHECK_STATUS(pdmm_load_checkpoint(a, broken, w), PDMM_E_CHECKPOINT_MISMATCH);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_b)), PDMM_OK);
    other = c;
    other.net = "64: dense 16, relu, dense 10";
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &other, arena_b, sizeof arena_b, NULL), PDMM_OK);
    CHECK_STATUS(pdmm_save_checkpoint(ctx(ctx_b), broken, sizeof broken, &w), PDMM_OK);
    CHECK_STATUS(pdmm_load_checkpoint(a, broken, w), PDMM_E_CHECKPOINT_MISMATCH);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_b)), PDMM_OK);
    CHECK(hash(a) == h0, "a mismatching checkpoint changed the weights");
    /* re-initialising a live context gives its previous run's heap back first */
    alloc_counts before = alloc_count_now();
    CHECK_STATUS(pdmm_init(a, &c, arena_a, sizeof arena_a, NULL), PDMM_OK);
    /* Blocks, not bytes: glibc may serve the same requests from chunks of another usable
       size (seen: 16 B more on armv7, once), so equal live blocks is the leak check. */
    {
        alloc_counts after = alloc_count_now();
        CHECK(after.allocations - after.frees == before.allocations - before.frees,
              "re-init kept the old run (%lld blocks more, %lld B)",
              (long long)((after.allocations - after.frees) - (before.allocations - before.frees)),
              (long long)(after.live - before.live));
    }
    CHECK_STATUS(pdmm_deinit(a), PDMM_OK);
    CHECK_STATUS(pdmm_deinit(a), PDMM_E_NOT_INITIALIZED);

    /* every status has its own message */
    for (int s = 0; s >= PDMM_E_INTERNAL; s--) {
        for (int t = s - 1; t >= PDMM_E_INTERNAL; t--)
            CHECK(strcmp(pdmm_status_string(s), pdmm_status_string(t)) != 0, "statuses %d and %d share a message", s, t);
    }
    CHECK(strcmp(pdmm_status_string(-99), "unknown status") == 0, "unknown status string");
}

/* pdmm_init_heap_bytes bounds the heap pdmm_init takes, for every mode and optimizer
 * of a small, a deeper and a convolutional network; pdmm_deinit gives it all back. */
static void test_heap_bound(void) {
    static const char *nets[] = {
        "64: dense 32, relu, dense 10",
        "64: dense 128, relu, dense 128, relu, dense 128, relu, dense 128, relu, dense 128, relu, dense 128, relu, "
        "dense 10",
        "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, conv 8 3x3 same, relu, flatten, dense 10"};
    static _Alignas(16) uint8_t big[1 << 22];
    int64_t worst = 0;
    for (int n = 0; n < 3; n++) {
        for (int m = 0; m < 4; m++) {
            for (int o = 0; o < 3; o++) {
                pdmm_config c;
                pdmm_config_default(&c);
                c.net = nets[n];
                c.mode = m;
                c.optimizer = o;
                alloc_counts a = alloc_count_now();
                CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, big, sizeof big, NULL), PDMM_OK);
                int64_t taken = alloc_count_now().live - a.live, bound = 0;
                CHECK_STATUS(pdmm_init_heap_bytes(ctx(ctx_a), &bound), PDMM_OK);
                CHECK(taken <= bound, "net %d mode %d optimizer %d: heap %lld B > bound %lld B", n, m, o,
                      (long long)taken, (long long)bound);
                if (taken > worst) worst = taken;
                CHECK_STATUS(pdmm_deinit(ctx(ctx_a)), PDMM_OK);
                CHECK(alloc_count_now().live == a.live, "net %d: heap not given back", n);
            }
        }
    }
    printf("heap at init: at most %lld B over 3 networks x 4 modes x 3 optimizers\n", (long long)worst);
}

/* Frozen weights in a PROT_READ mapping while training local(1). */
static void test_frozen_read_only(void) {
    pdmm_config c;
    pdmm_bytes plan;
    dense_config(&c, PDMM_MODE_LOCAL, 1);
    c.frozen_in_place = 1;
    CHECK_STATUS(pdmm_plan(&c, &plan), PDMM_OK);
    size_t words = (size_t)plan.model_image / 4; /* 2410 words: even, no rounding */
    long page = sysconf(_SC_PAGESIZE);
    size_t map = ((words * 4 + (size_t)page - 1) / (size_t)page) * (size_t)page;
    int32_t *img = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(img != MAP_FAILED, "mmap");
    if (img == MAP_FAILED) return;
    uint64_t s = 12345;
    for (size_t i = 0; i < words; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        img[i] = (int32_t)((s >> 40) & 0x3FFF) - 0x2000; /* +-0.125 */
    }
    static int32_t copy[1 << 13];
    memcpy(copy, img, words * 4);
    CHECK(mprotect(img, map, PROT_READ) == 0, "mprotect");

    /* in place: the arena holds layer 2 only */
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, (size_t)plan.arena_frozen_in_place, img), PDMM_OK);
    train(ctx(ctx_a), 0, 20);
    uint64_t h_in_place = hash(ctx(ctx_a));
    size_t w = 0;
    CHECK_STATUS(pdmm_save_checkpoint(ctx(ctx_a), ckpt, sizeof ckpt, &w), PDMM_OK);
    CHECK_STATUS(pdmm_load_checkpoint(ctx(ctx_a), ckpt, w), PDMM_OK);
    CHECK(hash(ctx(ctx_a)) == h_in_place, "reload changed the hash");
    CHECK(memcmp(img, copy, words * 4) == 0, "the frozen weights were written");
    /* the same run from a writable copy of the image (copied into the arena) */
    c.frozen_in_place = 0;
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &c, arena_b, (size_t)plan.arena, copy), PDMM_OK);
    train(ctx(ctx_b), 0, 20);
    CHECK(hash(ctx(ctx_b)) == h_in_place, "in place %016llx vs copied %016llx", (unsigned long long)h_in_place,
          (unsigned long long)hash(ctx(ctx_b)));
    CHECK_STATUS(pdmm_deinit(ctx(ctx_a)), PDMM_OK);
    CHECK_STATUS(pdmm_deinit(ctx(ctx_b)), PDMM_OK);
    printf("frozen weights PROT_READ, local(1): %zu B mapped read-only, arena %lld B, hash %016llx\n", words * 4,
           (long long)plan.arena_frozen_in_place, (unsigned long long)h_in_place);
    munmap(img, map);
}

/* Float features are converted exactly like the tool's (round to nearest): a float batch
 * of the same values trains the same weights as its Q16.16 words. */
static void test_float_batches(void) {
    pdmm_config c;
    dense_config(&c, PDMM_MODE_BP, 1);
    static float f[SAMPLES * IN];
    for (int i = 0; i < SAMPLES * IN; i++) f[i] = (float)features[i] / 65536.0f; /* exact: |x| < 2, 17 bits */
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, sizeof arena_a, NULL), PDMM_OK);
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &c, arena_b, sizeof arena_b, NULL), PDMM_OK);
    train(ctx(ctx_a), 0, 10);
    for (int b = 0; b < 10; b++)
        CHECK_STATUS(pdmm_train_batch_f32(ctx(ctx_b), f + b * BATCH * IN, labels + b * BATCH, BATCH), PDMM_OK);
    CHECK(hash(ctx(ctx_a)) == hash(ctx(ctx_b)), "float batches train other weights");
    pdmm_deinit(ctx(ctx_a));
    pdmm_deinit(ctx(ctx_b));
}

/* Blockwise: stages advance, the last refuses; a checkpoint restores the stage. */
static void test_blockwise(void) {
    pdmm_config c;
    dense_config(&c, PDMM_MODE_BLOCKWISE, 1);
    CHECK_STATUS(pdmm_init(ctx(ctx_a), &c, arena_a, sizeof arena_a, NULL), PDMM_OK);
    train(ctx(ctx_a), 0, 5);
    CHECK_STATUS(pdmm_next_stage(ctx(ctx_a)), PDMM_OK);
    train(ctx(ctx_a), 5, 10);
    pdmm_stats st;
    pdmm_last_stats(ctx(ctx_a), &st);
    CHECK(st.stage == 1 && st.stage_count == 2, "stage %d of %d", st.stage, st.stage_count);
    CHECK_STATUS(pdmm_next_stage(ctx(ctx_a)), PDMM_E_NO_MORE_STAGES);
    size_t w = 0;
    CHECK_STATUS(pdmm_save_checkpoint(ctx(ctx_a), ckpt, sizeof ckpt, &w), PDMM_OK);
    CHECK_STATUS(pdmm_init(ctx(ctx_b), &c, arena_b, sizeof arena_b, NULL), PDMM_OK);
    CHECK_STATUS(pdmm_load_checkpoint(ctx(ctx_b), ckpt, w), PDMM_OK);
    pdmm_last_stats(ctx(ctx_b), &st);
    CHECK(st.stage == 1 && st.steps == 10, "restored stage %d steps %llu", st.stage, (unsigned long long)st.steps);
    train(ctx(ctx_a), 10, 15);
    train(ctx(ctx_b), 10, 15);
    CHECK(hash(ctx(ctx_a)) == hash(ctx(ctx_b)), "blockwise round trip");
    pdmm_deinit(ctx(ctx_a));
    pdmm_deinit(ctx(ctx_b));
}

/* `pdmm report --format csv` planned rows (mode..peak_writable) for the same settings. */
static int plan_csv(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s plan-csv NET|W,W,... BATCH sgd|momentum K...\n", argv[0]);
        return 2;
    }
    static int32_t widths[64];
    pdmm_config c;
    pdmm_config_default(&c);
    if (strchr(argv[2], ':') != NULL) {
        c.net = argv[2];
    } else {
        char *p = argv[2];
        while (*p && c.width_count < 64) {
            widths[c.width_count++] = (int32_t)strtol(p, &p, 10);
            if (*p == ',') p++;
        }
        c.widths = widths;
    }
    c.batch = atoi(argv[3]);
    c.optimizer = strcmp(argv[4], "momentum") == 0 ? PDMM_OPT_MOMENTUM : PDMM_OPT_SGD;
    struct { int mode; const char *name; } modes[] = {{PDMM_MODE_BP, "bp"}, {PDMM_MODE_BP_CHECKPOINT, "bp-checkpoint"},
                                                      {PDMM_MODE_LOCAL, "local"}, {PDMM_MODE_BLOCKWISE, "blockwise"}};
    for (int m = 0; m < 4; m++) {
        int ks = m < 2 ? 1 : argc - 5;
        for (int i = 0; i < ks; i++) {
            c.mode = modes[m].mode;
            c.k = m < 2 ? 1 : atoi(argv[5 + i]);
            pdmm_bytes b;
            pdmm_status s = pdmm_plan(&c, &b);
            if (s != PDMM_OK) {
                fprintf(stderr, "plan: %s\n", pdmm_status_string(s));
                return 1;
            }
            if (m < 2) printf("%s,planned,", modes[m].name);
            else printf("%s(%d),planned,", modes[m].name, c.k);
            printf("%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n", (long long)b.weights_trainable,
                   (long long)b.weights_frozen, (long long)b.gradients, (long long)b.optimizer, (long long)b.input,
                   (long long)b.activations_stored, (long long)b.activations_working, (long long)b.scratch,
                   (long long)b.writable);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "plan-csv") == 0) return plan_csv(argc, argv);
    /* stdout's buffer is allocated by the first printf (counted by the wrapper when libc is
       linked statically): allocate it before any heap comparison. */
    printf("pdmm_api_test: context %zu B\n", pdmm_context_size());
    make_data();
    test_plan();
    test_too_small();
    test_errors(); /* first: its checkpoint calls initialise the library's constants (40 B, once) */
    test_round_trip(PDMM_MODE_BP, PDMM_OPT_SGD);
    test_round_trip(PDMM_MODE_LOCAL, PDMM_OPT_MOMENTUM);
    test_round_trip(PDMM_MODE_BP_CHECKPOINT, PDMM_OPT_RIEMANNIAN);
    test_heap_bound();
    test_frozen_read_only();
    test_blockwise();
    test_float_batches();
    if (failures) {
        fprintf(stderr, "pdmm_api_test: %d FAILURES\n", failures);
        return 1;
    }
    printf("pdmm_api_test: all checks passed\n");
    return 0;
}
