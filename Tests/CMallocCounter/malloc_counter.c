/* malloc_counter.c -- see malloc_counter.h. */
#define _GNU_SOURCE
#include "malloc_counter.h"
#include <stddef.h>
#include <errno.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MC_DISABLED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MC_DISABLED 1
#endif

static uint64_t mc_calls;

#if !defined(MC_DISABLED) && defined(__linux__) && defined(__GLIBC__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static inline void mc_count(void) { __atomic_fetch_add(&mc_calls, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) { mc_count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { mc_count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { mc_count(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t al, size_t n) { mc_count(); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { mc_count(); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n) {
    mc_count();
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
int malloc_counter_active(void) { return 1; }
#else
int malloc_counter_active(void) { return 0; }
#endif

uint64_t malloc_counter_calls(void) { return __atomic_load_n(&mc_calls, __ATOMIC_RELAXED); }
