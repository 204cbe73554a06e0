/*
 * stream.c -- a streaming sensor loop on libpdmm.a: reads CSV sample lines
 * (STREAM_FEATURES values, then the label) from stdin, trains online in a fixed
 * static arena, writes an atomic checkpoint every N samples, and prints the
 * accuracy on a held-out tail of the stream.
 *
 *   stream [--holdout H] [--every N] [--checkpoint FILE] [--resume FILE] < Data/digits.csv
 *
 *   --holdout H      the last H samples are not trained on (default 297): a ring
 *                    buffer holds the newest H; a sample is trained on when it
 *                    leaves the ring, so at the end of the stream the ring is the
 *                    held-out tail
 *   --every N        write a checkpoint every N trained samples (default 500; 0 = never)
 *   --checkpoint F   the checkpoint file (default stream.ckpt): written to F.tmp,
 *                    fsync'ed, renamed over F, and the directory fsync'ed
 *   --resume F       continue from a checkpoint file before reading
 *
 * Settings: stream_config.h. The arena is `static uint8_t arena[PDMM_ARENA_BYTES]`,
 * sized by stream_plan (pdmm_plan at build time) into the generated stream_arena.h.
 * Batches of STREAM_BATCH samples, in stream order (no shuffling); features are
 * value / 16 in Q16.16 (exact for integers). Prints the weights hash (the same on
 * every architecture) and the heap allocations made by training and prediction
 * steps (malloc wrapper alloc_count.c; must be 0).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_count.h"
#include "pdmm.h"
#include "stream_arena.h"
#include "stream_config.h"

#define MAX_HOLDOUT 1024

static _Alignas(16) uint8_t arena[PDMM_ARENA_BYTES];
static _Alignas(16) uint8_t context[PDMM_CONTEXT_BYTES];
static uint8_t checkpoint[PDMM_CHECKPOINT_BYTES];
static int32_t ring_x[MAX_HOLDOUT * STREAM_FEATURES], ring_y[MAX_HOLDOUT];
static int32_t batch_x[STREAM_BATCH * STREAM_FEATURES], batch_y[STREAM_BATCH];

static pdmm_context *ctx(void) { return (pdmm_context *)context; }

static uint64_t step_allocations; /* heap allocations inside train/predict/evaluate calls */

static int fail(const char *what, pdmm_status s) {
    fprintf(stderr, "stream: %s: %s\n", what, pdmm_status_string(s));
    return 1;
}

/* Parses "v1,...,vF,label" into Q16.16 features and a label; 0 on success. */
static int parse_line(char *line, int32_t *x, int32_t *y) {
    char *p = line;
    for (int i = 0; i <= STREAM_FEATURES; i++) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v)) return -1;
        if (i == STREAM_FEATURES) {
            if (v != floor(v) || v < 0 || v >= STREAM_CLASSES) return -1;
            *y = (int32_t)v;
        } else {
            double q = v * STREAM_INPUT_SCALE;
            x[i] = q >= 2147483647.0 ? INT32_MAX : q <= -2147483648.0 ? INT32_MIN : (int32_t)lround(q);
        }
        p = end;
        while (*p == ' ') p++;
        if (i < STREAM_FEATURES) {
            if (*p != ',') return -1;
            p++;
        }
    }
    while (*p == ' ' || *p == '\r' || *p == '\n') p++;
    return *p == '\0' ? 0 : -1;
}

static pdmm_status train_batch(int rows) {
    alloc_counts a = alloc_count_now();
    pdmm_status s = pdmm_train_batch(ctx(), batch_x, batch_y, rows);
    step_allocations += alloc_count_now().allocations - a.allocations;
    return s;
}

/* Writes the checkpoint atomically: FILE.tmp, fsync, rename, fsync of the directory. */
static int save(const char *path) {
    size_t n = 0;
    pdmm_status s = pdmm_save_checkpoint(ctx(), checkpoint, sizeof checkpoint, &n);
    if (s != PDMM_OK) return fail("save checkpoint", s);
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return 1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(tmp); return 1; }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, checkpoint + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { perror(tmp); close(fd); return 1; }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) { perror(tmp); return 1; }
    if (rename(tmp, path) != 0) { perror(path); return 1; }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return 0;
}

static int resume(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    size_t n = fread(checkpoint, 1, sizeof checkpoint, f);
    fclose(f);
    pdmm_status s = pdmm_load_checkpoint(ctx(), checkpoint, n);
    return s == PDMM_OK ? 0 : fail(path, s);
}

int main(int argc, char **argv) {
    long holdout = 297, every = 500;
    const char *path = "stream.ckpt", *from = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--holdout") == 0) holdout = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--every") == 0) every = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--checkpoint") == 0) path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--resume") == 0) from = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--holdout H] [--every N] [--checkpoint FILE] [--resume FILE] < data.csv\n",
                    argv[0]);
            return 2;
        }
    }
    if (holdout < 1 || holdout > MAX_HOLDOUT || every < 0) {
        fprintf(stderr, "stream: --holdout must be 1...%d, --every >= 0\n", MAX_HOLDOUT);
        return 2;
    }

    pdmm_config c;
    stream_config(&c);
    pdmm_status s = pdmm_init(ctx(), &c, arena, sizeof arena, NULL);
    if (s != PDMM_OK) return fail("init", s);
    int64_t heap = 0;
    pdmm_init_heap_bytes(ctx(), &heap);
    if (from && resume(from) != 0) return 1;

    char line[8192];
    long lines = 0, in_ring = 0, head = 0, trained = 0, rows = 0, checkpoints = 0;
    while (fgets(line, sizeof line, stdin)) {
        lines++;
        if (line[0] == '\n' || line[0] == '#') continue;
        int32_t *x = ring_x + head * STREAM_FEATURES, *y = ring_y + head;
        if (in_ring == holdout) { /* the oldest sample leaves the ring: train on it */
            memcpy(batch_x + rows * STREAM_FEATURES, x, sizeof(int32_t) * STREAM_FEATURES);
            batch_y[rows++] = *y;
            if (rows == STREAM_BATCH) {
                if ((s = train_batch(rows)) != PDMM_OK) return fail("train", s);
                trained += rows;
                rows = 0;
                if (every > 0 && trained % every < STREAM_BATCH) {
                    if (save(path) != 0) return 1;
                    checkpoints++;
                }
            }
        } else {
            in_ring++;
        }
        if (parse_line(line, x, y) != 0) {
            fprintf(stderr, "stream: line %ld: expected %d numbers and a label in 0..%d\n", lines, STREAM_FEATURES,
                    STREAM_CLASSES - 1);
            return 1;
        }
        head = (head + 1) % holdout;
    }
    if (rows > 0) {
        if ((s = train_batch(rows)) != PDMM_OK) return fail("train", s);
        trained += rows;
    }
    if (every > 0) {
        if (save(path) != 0) return 1;
        checkpoints++;
    }

    /* The held-out tail: the ring, oldest first (evaluation order does not matter). */
    pdmm_stats st;
    alloc_counts a = alloc_count_now();
    s = in_ring > 0 ? pdmm_evaluate(ctx(), ring_x, ring_y, (int32_t)in_ring, &st) : PDMM_OK;
    step_allocations += alloc_count_now().allocations - a.allocations;
    if (s != PDMM_OK) return fail("evaluate", s);
    uint64_t hash = 0;
    pdmm_weights_hash(ctx(), &hash);
    pdmm_stats last;
    pdmm_last_stats(ctx(), &last);

    printf("arena: static %zu B (pdmm_plan), context %zu B, heap at init <= %lld B\n", sizeof arena,
           pdmm_context_size(), (long long)heap);
    printf("samples: %ld trained in %llu steps of up to %d, %ld held out\n", trained, (unsigned long long)last.steps,
           STREAM_BATCH, in_ring);
    if (every > 0) printf("checkpoints: %ld written to %s (%zu B each)\n", checkpoints, path, sizeof checkpoint);
    if (in_ring > 0) {
        long pct = (10000L * st.correct + in_ring / 2) / in_ring;
        printf("held-out accuracy: %d/%ld = %ld.%02ld%%\n", st.correct, in_ring, pct / 100, pct % 100);
    }
    printf("saturations: %llu\n", (unsigned long long)last.saturations);
    printf("heap allocations during steps: %llu\n", (unsigned long long)step_allocations);
    printf("weights hash %016llx\n", (unsigned long long)hash);
    pdmm_deinit(ctx());
    return step_allocations == 0 ? 0 : 1;
}
