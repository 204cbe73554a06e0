/* board.h -- the C side of the board program (tools/board/board.c), as Swift sees it.
 *
 * Only <stdint.h> types cross this boundary, so the header imports the same way
 * for an Embedded Swift target (aarch64-none-none-elf, armv7-none-none-eabi,
 * x86_64-unknown-linux-gnu) as for the C compiler that builds board.c. */
#ifndef PDMM_BOARD_H
#define PDMM_BOARD_H
#include <stdint.h>

/* ---- the arena: a static buffer (.bss), never malloc'ed ---- */
/** The static arena, 16-byte aligned. */
uint8_t *pdmm_board_arena(void);
/** Its size in bytes (PDMM_BOARD_ARENA_BYTES at build time). */
int64_t pdmm_board_arena_bytes(void);

/* ---- heap accounting: malloc & co. are wrapped at link time (-Wl,--wrap=...) ---- */
typedef struct pdmm_alloc_counts {
    uint64_t allocations; /* malloc + calloc + realloc + posix_memalign + aligned_alloc + memalign */
    uint64_t frees;       /* free of a non-NULL pointer */
    uint64_t bytes;       /* bytes requested by those allocations */
    uint64_t peakLiveBytes; /* high-water mark of the usable bytes allocated at one moment */
} pdmm_alloc_counts;
pdmm_alloc_counts pdmm_board_alloc_counts(void);

/* ---- text I/O ---- */
/** Writes n bytes to stderr. */
void pdmm_board_write_err(const uint8_t *p, int64_t n);
/** Flushes stdout (Embedded Swift's print writes through putchar). */
void pdmm_board_flush(void);
/** A NUL-terminated string describing the build: "aarch64 cortex-a53 neon", ... */
const char *pdmm_board_target(void);
/** Monotonic clock in microseconds. */
int64_t pdmm_board_micros(void);

/** v printed as printf's "%.*f" with `digits` decimals into buf (NUL-terminated); returns the length. */
int64_t pdmm_board_format_fixed(double v, int32_t digits, uint8_t *buf, int64_t size);
/** The tools/cross/build.sh target of this build: "aarch64", "armv7" or "host". */
const char *pdmm_board_build_target(void);

/* ---- files ---- */
/**
 * Reads the whole file at path (NUL-terminated bytes) into a malloc'ed buffer
 * (*out, *len; free with pdmm_board_free): checkpoints. Returns 0 on success;
 * otherwise nonzero and a message in err (NUL-terminated).
 */
int pdmm_board_read_file(const uint8_t *path, uint8_t **out, int64_t *len, uint8_t *err, int64_t errSize);
void pdmm_board_free(void *p);

/** A file opened for reading in chunks (unbuffered stdio), or NULL. */
void *pdmm_board_open(const uint8_t *path);
/** Reads up to n bytes; returns the count (0 at the end) or -1 on an error. */
int64_t pdmm_board_read(void *file, uint8_t *buf, int64_t n);
/** Back to the start: 0, or -1. */
int pdmm_board_rewind(void *file);
/** 1 when the file starts with gzip's magic bytes 1f 8b (and rewinds it). */
int pdmm_board_is_gzip(void *file);
void pdmm_board_close(void *file);

/**
 * Writes n bytes to path atomically (path.tmp, fsync, rename, fsync of the
 * directory): 0, or -1 with a message in err ("PATH: cannot write (...)", ...).
 */
int pdmm_board_write_atomic(const uint8_t *path, const uint8_t *bytes, int64_t n, uint8_t *err, int64_t errSize);

#endif
