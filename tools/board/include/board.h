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

/** Parses a whole decimal/hex floating-point number (strtod, "C" locale), finite only.
 *  p[0..<n] need not be NUL-terminated. Returns 1 and sets *out on success, else 0. */
int pdmm_board_parse_double(const uint8_t *p, int64_t n, double *out);
/** (int64_t)(v * mult) as the host tool computes Int(v * mult) for sizes; -1 if out of range. */
int64_t pdmm_board_scaled_size(double v, double mult);

/**
 * Reads the whole file at path (NUL-terminated bytes) into a malloc'ed buffer
 * (*out, *len; free with pdmm_board_free). The engine's CSVParser parses it.
 * Returns 0 on success; otherwise nonzero and a message in err (NUL-terminated).
 */
int pdmm_board_read_file(const uint8_t *path, uint8_t **out, int64_t *len, uint8_t *err, int64_t errSize);
void pdmm_board_free(void *p);

#endif
