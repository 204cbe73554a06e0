/*
 * board.c -- the C side of the board program: main(), the static arena,
 * counting malloc wrappers, stderr, a clock, number parsing and the CSV
 * loader (fopen/fgets). The training itself is tools/board/main.swift on top
 * of the unchanged engine (Sources/PDMMEngine, built as Embedded Swift).
 *
 * Built by tools/cross/build.sh with the target's gcc (aarch64-linux-gnu-gcc,
 * arm-linux-gnueabihf-gcc, or the host gcc) and linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,
 *   --wrap=posix_memalign,--wrap=aligned_alloc,--wrap=memalign
 * so every heap call made by Swift code (the Embedded runtime allocates with
 * posix_memalign/malloc and frees with free), by the kernels and by this file
 * goes through the counters below. In the -static variant libc's own internal
 * allocations (stdio buffers, fopen) are counted too.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h> /* malloc_usable_size (glibc) */
#include <sys/random.h> /* getrandom (glibc 2.25) */
#include <sys/types.h>

#include "board.h"

#ifndef PDMM_BOARD_ARENA_BYTES
#define PDMM_BOARD_ARENA_BYTES (1024 * 1024)
#endif
#ifndef PDMM_BOARD_CPU
#define PDMM_BOARD_CPU "generic"
#endif

/* ------------------------------------------------------------------ */
/* Entry point                                                          */
/* ------------------------------------------------------------------ */

/* Defined in Swift (@_cdecl("pdmm_board_main")). */
extern int pdmm_board_main(int argc, char **argv);

int main(int argc, char **argv) {
    int rc = pdmm_board_main(argc, argv);
    fflush(stdout);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The arena                                                            */
/* ------------------------------------------------------------------ */

/* Zero-initialised, so it lives in .bss: it costs no file size, and pages
 * the run never touches cost no RAM either. */
static _Alignas(16) uint8_t pdmm_arena_storage[PDMM_BOARD_ARENA_BYTES];

uint8_t *pdmm_board_arena(void) { return pdmm_arena_storage; }
int64_t pdmm_board_arena_bytes(void) { return (int64_t)sizeof pdmm_arena_storage; }

/* ------------------------------------------------------------------ */
/* Counting heap wrappers (--wrap)                                      */
/* ------------------------------------------------------------------ */

static pdmm_alloc_counts pdmm_counts;
static uint64_t pdmm_live; /* usable bytes of the blocks currently allocated */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **out, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__real_memalign(size_t align, size_t n);

static void *counted(void *p, size_t requested) {
    pdmm_counts.allocations++;
    pdmm_counts.bytes += requested;
    if (p != NULL) {
        pdmm_live += malloc_usable_size(p);
        if (pdmm_live > pdmm_counts.peakLiveBytes) pdmm_counts.peakLiveBytes = pdmm_live;
    }
    return p;
}

void *__wrap_malloc(size_t n) { return counted(__real_malloc(n), n); }
void *__wrap_calloc(size_t k, size_t n) { return counted(__real_calloc(k, n), k * n); }
void *__wrap_realloc(void *p, size_t n) {
    size_t old = p != NULL ? malloc_usable_size(p) : 0;
    void *q = __real_realloc(p, n);
    if (q != NULL || n == 0) pdmm_live -= old; /* p was freed or moved */
    return counted(q, n);
}
void __wrap_free(void *p) {
    if (p != NULL) {
        pdmm_counts.frees++;
        pdmm_live -= malloc_usable_size(p);
    }
    __real_free(p);
}
int __wrap_posix_memalign(void **out, size_t align, size_t n) {
    int rc = __real_posix_memalign(out, align, n);
    counted(rc == 0 ? *out : NULL, n);
    return rc;
}
void *__wrap_aligned_alloc(size_t align, size_t n) { return counted(__real_aligned_alloc(align, n), n); }
void *__wrap_memalign(size_t align, size_t n) { return counted(__real_memalign(align, n), n); }

pdmm_alloc_counts pdmm_board_alloc_counts(void) { return pdmm_counts; }

/* Embedded Swift seeds its hashing from arc4random_buf, which glibc has only
 * since 2.36 (Debian 12). Linked with --wrap=arc4random_buf, the program asks
 * the kernel instead (getrandom, glibc 2.25), so the dynamic binaries run on
 * any glibc >= 2.34 (the floor of __libc_start_main when linking against
 * Debian 12's glibc): Ubuntu 22.04 boards included. Training never uses it. */
void __wrap_arc4random_buf(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            /* No entropy source: a fixed pattern only changes hash seeds. */
            memset(p, 0x5a, n);
            return;
        }
        p += got;
        n -= (size_t)got;
    }
}

/* ------------------------------------------------------------------ */
/* Text I/O, clock                                                      */
/* ------------------------------------------------------------------ */

void pdmm_board_write_err(const uint8_t *p, int64_t n) {
    fflush(stdout);
    if (n > 0) fwrite(p, 1, (size_t)n, stderr);
    fflush(stderr);
}

void pdmm_board_flush(void) { fflush(stdout); }

#if defined(__aarch64__)
#define PDMM_ARCH "aarch64"
#elif defined(__arm__)
#define PDMM_ARCH "armv7"
#elif defined(__x86_64__)
#define PDMM_ARCH "x86_64"
#else
#define PDMM_ARCH "unknown-arch"
#endif
#if defined(__ARM_NEON)
#define PDMM_SIMD " neon"
#elif defined(__AVX2__)
#define PDMM_SIMD " avx2"
#elif defined(__x86_64__)
#define PDMM_SIMD " sse2 (avx2/avx-512 clones)"
#else
#define PDMM_SIMD " no-simd"
#endif
#if defined(PDMM_BOARD_NO_VECTORIZE)
#define PDMM_VEC ", scalar kernels"
#else
#define PDMM_VEC ", auto-vectorised kernels"
#endif

const char *pdmm_board_target(void) { return PDMM_ARCH " " PDMM_BOARD_CPU PDMM_SIMD PDMM_VEC; }

int64_t pdmm_board_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                              */
/* ------------------------------------------------------------------ */

/* strtod over exactly [s, s+n): the whole text must be consumed. Like
 * Swift's Double(String), no surrounding whitespace is allowed. */
static int parse_double_any(const char *s, size_t n, double *out) {
    char buf[128];
    char *end = NULL;
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n' || buf[0] == '\r' || buf[0] == '\v' ||
        buf[0] == '\f')
        return 0;
    errno = 0;
    *out = strtod(buf, &end);
    /* ERANGE is not an error: Swift's Double("1e999") is +infinity, Double("1e-999") is 0. */
    return end == buf + n;
}

int pdmm_board_parse_double(const uint8_t *p, int64_t n, double *out) {
    double v;
    if (n <= 0 || !parse_double_any((const char *)p, (size_t)n, &v) || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int64_t pdmm_board_scaled_size(double v, double mult) {
    double r = v * mult;
    if (!(r >= 0) || r >= 9.2e18) return -1;
    return (int64_t)r;
}

/* ------------------------------------------------------------------ */
/* CSV                                                                  */
/* ------------------------------------------------------------------ */

typedef struct {
    char *text;     /* every kept line, NUL-terminated, back to back */
    size_t len, cap;
    size_t *start;  /* offset of line i in text */
    long *number;   /* 1-based line number in the file */
    size_t count, capLines;
} line_store;

static void trim(const char **s, size_t *n) {
    while (*n > 0 && (**s == ' ' || **s == '\t')) { (*s)++; (*n)--; }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static int store_line(line_store *ls, const char *s, size_t n, long number) {
    if (ls->len + n + 1 > ls->cap) {
        size_t cap = ls->cap ? ls->cap : 4096;
        while (ls->len + n + 1 > cap) cap *= 2;
        char *t = realloc(ls->text, cap);
        if (!t) return -1;
        ls->text = t;
        ls->cap = cap;
    }
    if (ls->count == ls->capLines) {
        size_t cap = ls->capLines ? 2 * ls->capLines : 256;
        size_t *st = realloc(ls->start, cap * sizeof *st);
        if (!st) return -1;
        ls->start = st;
        long *nu = realloc(ls->number, cap * sizeof *nu);
        if (!nu) return -1;
        ls->number = nu;
        ls->capLines = cap;
    }
    ls->start[ls->count] = ls->len;
    ls->number[ls->count] = number;
    ls->count++;
    memcpy(ls->text + ls->len, s, n);
    ls->text[ls->len + n] = 0;
    ls->len += n + 1;
    return 0;
}

static void free_lines(line_store *ls) {
    free(ls->text);
    free(ls->start);
    free(ls->number);
}

/* Reads every line with fgets (any length), drops one trailing '\r', keeps
 * the non-blank ones with their line numbers. */
static int read_lines(FILE *f, line_store *ls) {
    size_t cap = 1024, len = 0;
    char *buf = malloc(cap);
    long number = 0;
    int rc = 0;
    if (!buf) return -1;
    for (;;) {
        if (!fgets(buf + len, (int)(cap - len), f)) {
            if (ferror(f)) { rc = -2; break; }
            if (len == 0) break; /* EOF, nothing pending */
            /* EOF after a last line without '\n': fall through with it */
        } else {
            len += strlen(buf + len);
            if (len > 0 && buf[len - 1] != '\n' && !feof(f)) {
                if (len + 1 >= cap) { /* the line goes on beyond the buffer */
                    char *t = realloc(buf, cap * 2);
                    if (!t) { rc = -1; break; }
                    buf = t;
                    cap *= 2;
                }
                continue;
            }
        }
        number++;
        size_t n = len;
        if (n > 0 && buf[n - 1] == '\n') n--;
        if (n > 0 && buf[n - 1] == '\r') n--;
        const char *s = buf;
        size_t tn = n;
        trim(&s, &tn);
        if (tn > 0 && store_line(ls, buf, n, number) != 0) { rc = -1; break; }
        len = 0;
        if (feof(f)) break;
    }
    free(buf);
    return rc;
}

/* Field i of a line (split on ',', empty fields kept), trimmed. */
static size_t split_fields(const char *line, const char **fs, size_t *fn, size_t max) {
    size_t count = 0;
    const char *p = line;
    for (;;) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (count < max) {
            const char *s = p;
            size_t tn = n;
            trim(&s, &tn);
            fs[count] = s;
            fn[count] = tn;
        }
        count++;
        if (!q) break;
        p = q + 1;
    }
    return count;
}

static int fail(uint8_t *err, int64_t errSize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static int fail(uint8_t *err, int64_t errSize, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errSize > 0) vsnprintf((char *)err, (size_t)errSize, fmt, ap);
    va_end(ap);
    return 1;
}

/* Swift's Int(String): optional sign, then decimal digits only. */
static int parse_int_strict(const char *s, long *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (*p == 0) return 0;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return 0;
    errno = 0;
    *out = strtol(s, NULL, 10);
    return errno == 0;
}

int pdmm_board_load_csv(const uint8_t *pathBytes, const uint8_t *labelColumnBytes, pdmm_csv *out,
                        uint8_t *err, int64_t errSize) {
    const char *path = (const char *)pathBytes;
    const char *labelColumn = (const char *)labelColumnBytes;
    memset(out, 0, sizeof *out);
    size_t plen = strlen(path);
    if (plen > 3 && strcmp(path + plen - 3, ".gz") == 0)
        return fail(err, errSize, "%s: compressed files are not supported on the board (gunzip it first)", path);
    FILE *f = fopen(path, "r");
    if (!f) return fail(err, errSize, "%s: cannot read file", path);
    line_store ls = {0};
    int rc = read_lines(f, &ls);
    fclose(f);
    if (rc != 0) {
        free_lines(&ls);
        return fail(err, errSize, "%s: %s", path, rc == -1 ? "out of memory" : "read error");
    }
    if (ls.count == 0) {
        free_lines(&ls);
        return fail(err, errSize, "%s: empty file (no data rows)", path);
    }

    /* Header: a first line with a non-numeric field. */
    size_t maxFields = 1;
    for (const char *p = ls.text + ls.start[0]; *p; p++) maxFields += *p == ',';
    size_t firstFields = maxFields;
    const char **fs = malloc(maxFields * sizeof *fs);
    size_t *fn = malloc(maxFields * sizeof *fn);
    if (!fs || !fn) {
        free(fs); free(fn); free_lines(&ls);
        return fail(err, errSize, "%s: out of memory", path);
    }
    split_fields(ls.text + ls.start[0], fs, fn, maxFields);
    int header = 0;
    for (size_t i = 0; i < firstFields; i++) {
        double v;
        if (!parse_double_any(fs[i], fn[i], &v)) { header = 1; break; }
    }
    size_t columns = firstFields;
    size_t first = header ? 1 : 0;
    long labelIndex = -1;
    int status = 0;
    int32_t *features = NULL, *labels = NULL;
    size_t rows = ls.count - first;
    if (rows == 0) {
        status = fail(err, errSize, "%s: header only, no data rows", path);
        goto done;
    }
    if (columns < 2) {
        status = fail(err, errSize, "%s: need at least 2 columns (features and a label), got %zu", path, columns);
        goto done;
    }
    labelIndex = (long)columns - 1;
    if (labelColumn) {
        long i;
        if (parse_int_strict(labelColumn, &i)) {
            if (i < 0 || i >= (long)columns) {
                status = fail(err, errSize, "%s: label column %ld outside 0..<%zu", path, i, columns);
                goto done;
            }
            labelIndex = i;
        } else {
            long found = -1;
            if (header) {
                for (size_t c = 0; c < columns; c++)
                    if (strlen(labelColumn) == fn[c] && memcmp(labelColumn, fs[c], fn[c]) == 0) { found = (long)c; break; }
            }
            if (found < 0) {
                status = fail(err, errSize, "%s: no column named '%s'", path, labelColumn);
                goto done;
            }
            labelIndex = found;
        }
    }
    features = malloc(rows * (columns - 1) * sizeof *features + 1);
    labels = malloc(rows * sizeof *labels + 1);
    if (!features || !labels) {
        status = fail(err, errSize, "%s: out of memory", path);
        goto done;
    }
    {
        size_t saturated = 0, nf = 0;
        long maxLabel = -1;
        for (size_t r = 0; r < rows; r++) {
            const char *line = ls.text + ls.start[first + r];
            long lineNo = ls.number[first + r];
            size_t nfields = 1;
            for (const char *p = line; *p; p++) nfields += *p == ',';
            if (nfields != columns) {
                status = fail(err, errSize, "%s:%ld: expected %zu fields, found %zu", path, lineNo, columns, nfields);
                goto done;
            }
            split_fields(line, fs, fn, columns);
            for (size_t c = 0; c < columns; c++) {
                double v;
                if (!parse_double_any(fs[c], fn[c], &v)) {
                    status = fail(err, errSize, "%s:%ld: column %zu: '%.*s' is not a number", path, lineNo, c + 1,
                                  (int)fn[c], fs[c]);
                    goto done;
                }
                if (!isfinite(v)) {
                    status = fail(err, errSize, "%s:%ld: column %zu: '%.*s' is not a finite number", path, lineNo,
                                  c + 1, (int)fn[c], fs[c]);
                    goto done;
                }
                if ((long)c == labelIndex) {
                    if (!(v == round(v) && v >= 0 && v < 65536)) {
                        status = fail(err, errSize, "%s:%ld: column %zu: label '%.*s' is not a class index 0...65535",
                                      path, lineNo, c + 1, (int)fn[c], fs[c]);
                        goto done;
                    }
                    labels[r] = (int32_t)v;
                    if ((long)v > maxLabel) maxLabel = (long)v;
                } else {
                    /* (v * 65536).rounded(.toNearestOrAwayFromZero), clamped: as the host. */
                    double q = round(v * 65536.0);
                    if (q > 2147483647.0 || q < -2147483648.0) saturated++;
                    if (q > 2147483647.0) q = 2147483647.0;
                    if (q < -2147483648.0) q = -2147483648.0;
                    features[nf++] = (int32_t)q;
                }
            }
        }
        int distinct = 0;
        for (size_t r = 1; r < rows; r++)
            if (labels[r] != labels[0]) { distinct = 1; break; }
        if (!distinct) {
            status = fail(err, errSize, "%s: only one class (%d) in the data: nothing to learn", path, (int)labels[0]);
            goto done;
        }
        if (saturated > 0) {
            status = fail(err, errSize, "%s: %zu feature values lie outside the Q16.16 range [-32768, 32768)", path,
                          saturated);
            goto done;
        }
        out->features = features;
        out->labels = labels;
        out->rows = (int64_t)rows;
        out->featureCount = (int64_t)(columns - 1);
        out->classes = maxLabel + 1;
        features = NULL;
        labels = NULL;
    }
done:
    free(features);
    free(labels);
    free(fs);
    free(fn);
    free_lines(&ls);
    return status;
}

void pdmm_board_free_csv(pdmm_csv *csv) {
    free(csv->features);
    free(csv->labels);
    csv->features = NULL;
    csv->labels = NULL;
}
