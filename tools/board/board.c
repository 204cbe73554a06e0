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
/* Files                                                                */
/* ------------------------------------------------------------------ */

int pdmm_board_read_file(const uint8_t *pathBytes, uint8_t **out, int64_t *len, uint8_t *err, int64_t errSize) {
    const char *path = (const char *)pathBytes;
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf((char *)err, (size_t)errSize, "%s: cannot read file", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap > ((size_t)1 << 30)) { free(buf); buf = NULL; break; }
        uint8_t *b2 = realloc(buf, cap * 2);
        if (!b2) { free(buf); buf = NULL; break; }
        buf = b2;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf((char *)err, (size_t)errSize, "%s: %s", path, bad ? "read error" : "file too large or out of memory");
        return -1;
    }
    *out = buf;
    *len = (int64_t)n;
    return 0;
}

void pdmm_board_free(void *p) { free(p); }
