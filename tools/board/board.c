/*
 * board.c -- the C side of the board program: main(), the static arena,
 * counting malloc wrappers, stderr, a clock, number parsing and printing,
 * file streams for the CSV loader (fopen/fread in chunks) and the atomic
 * checkpoint write (temporary file, fsync, rename). The training itself is tools/board/main.swift on top
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
#include <fcntl.h>
#include <unistd.h>

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

#include "wrap_real.h"

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

/* Swift's Double(String) needs _swift_stdlib_strtod_clocale: tools/cross/swift_strtod.c. */

int64_t pdmm_board_format_fixed(double v, int32_t digits, uint8_t *buf, int64_t size) {
    int n = snprintf((char *)buf, (size_t)size, "%.*f", (int)digits, v);
    return n < 0 ? 0 : (n >= size ? size - 1 : n);
}

const char *pdmm_board_build_target(void) {
#if defined(__aarch64__)
    return "aarch64";
#elif defined(__arm__)
    return "armv7";
#else
    return "host";
#endif
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

/* Reads a small file whole (checkpoints). */
int pdmm_board_read_file(const uint8_t *pathBytes, uint8_t **out, int64_t *len, uint8_t *err, int64_t errSize) {
    const char *path = (const char *)pathBytes;
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf((char *)err, (size_t)errSize, "%s: cannot read file", path);
        return -1;
    }
    int bad = fseek(f, 0, SEEK_END) != 0;
    long n = bad ? -1 : ftell(f);
    bad = bad || n < 0 || fseek(f, 0, SEEK_SET) != 0;
    uint8_t *buf = bad ? NULL : malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) bad = 1;
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf((char *)err, (size_t)errSize, "%s: cannot read file", path);
        return -1;
    }
    *out = buf;
    *len = (int64_t)n;
    return 0;
}

void pdmm_board_free(void *p) { free(p); }

void *pdmm_board_open(const uint8_t *path) {
    FILE *f = fopen((const char *)path, "rb");
    /* Unbuffered: the reader asks for whole chunks, so stdio's buffer would be a second copy. */
    if (f) setvbuf(f, NULL, _IONBF, 0);
    return f;
}

int64_t pdmm_board_read(void *file, uint8_t *buf, int64_t n) {
    FILE *f = file;
    size_t r = fread(buf, 1, (size_t)n, f);
    if (r == 0 && ferror(f)) return -1;
    return (int64_t)r;
}

int pdmm_board_rewind(void *file) { return fseek((FILE *)file, 0, SEEK_SET) == 0 ? 0 : -1; }

int pdmm_board_is_gzip(void *file) {
    uint8_t m[2];
    FILE *f = file;
    size_t r = fread(m, 1, 2, f);
    fseek(f, 0, SEEK_SET);
    return r == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

void pdmm_board_close(void *file) { fclose((FILE *)file); }

/* Atomic replace: temporary file PATH.tmp, write, fsync, rename over PATH, fsync
 * the directory; the previous file survives a crash at any point. */
int pdmm_board_write_atomic(const uint8_t *pathBytes, const uint8_t *bytes, int64_t n, uint8_t *err, int64_t errSize) {
    const char *path = (const char *)pathBytes;
    char tmp[4096], dir[4096];
    if (strlen(path) + 5 > sizeof tmp) {
        snprintf((char *)err, (size_t)errSize, "%.200s...: path too long", path);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf((char *)err, (size_t)errSize, "%s: cannot write (%s)", path, strerror(errno));
        return -1;
    }
    int64_t done = 0;
    int ok = 1;
    while (done < n) {
        ssize_t w = write(fd, bytes + done, (size_t)(n - done > (1 << 20) ? (1 << 20) : n - done));
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            ok = 0;
            break;
        }
        done += w;
    }
    if (ok && fsync(fd) != 0) ok = 0;
    int saved = errno;
    close(fd);
    if (!ok) {
        unlink(tmp);
        snprintf((char *)err, (size_t)errSize, "%s: write failed (%s); the previous checkpoint is intact", path,
                 strerror(saved));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        snprintf((char *)err, (size_t)errSize, "%s: cannot replace (%s)", path, strerror(saved));
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = 0; else *slash = 0;
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
