/*
 * wrap_real.h -- the glibc heap functions behind `-Wl,--wrap=...`: the linker
 * resolves __real_X to the real X, so a counting __wrap_X can call it. Shared by
 * the board program's counters (board.c) and the C examples' (examples/alloc_count.c).
 */
#ifndef PDMM_WRAP_REAL_H
#define PDMM_WRAP_REAL_H
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **out, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__real_memalign(size_t align, size_t n);

#endif
