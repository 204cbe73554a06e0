/* alloc_count.c -- see alloc_count.h. */
#define _GNU_SOURCE 1
#include <malloc.h> /* malloc_usable_size (glibc) */
#include <stddef.h>
#include <stdlib.h>

#include "alloc_count.h"

static alloc_counts counts;

#include "../include/wrap_real.h"

static void *counted(void *p) {
    if (p != NULL) {
        counts.allocations++;
        counts.live += (int64_t)malloc_usable_size(p);
        if (counts.live > counts.peak) counts.peak = counts.live;
    }
    return p;
}

void *__wrap_malloc(size_t n) { return counted(__real_malloc(n)); }
void *__wrap_calloc(size_t k, size_t n) { return counted(__real_calloc(k, n)); }
void *__wrap_realloc(void *p, size_t n) {
    int64_t old = p != NULL ? (int64_t)malloc_usable_size(p) : 0;
    void *q = __real_realloc(p, n);
    if (q != NULL || n == 0) counts.live -= old;
    return counted(q);
}
void __wrap_free(void *p) {
    if (p != NULL) {
        counts.frees++;
        counts.live -= (int64_t)malloc_usable_size(p);
    }
    __real_free(p);
}
int __wrap_posix_memalign(void **out, size_t align, size_t n) {
    int rc = __real_posix_memalign(out, align, n);
    if (rc == 0) counted(*out);
    return rc;
}
void *__wrap_aligned_alloc(size_t align, size_t n) { return counted(__real_aligned_alloc(align, n)); }

alloc_counts alloc_count_now(void) { return counts; }
