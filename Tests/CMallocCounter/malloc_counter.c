/* malloc_counter.c -- see malloc_counter.h. */
#define _GNU_SOURCE
#include "malloc_counter.h"
#include <stddef.h>
#include <errno.h>

/* Under a sanitizer the runtime owns malloc (an interposer here would bypass
 * its allocator); its public allocator hooks count instead. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MC_SANITIZER_HOOKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MC_SANITIZER_HOOKS 1
#endif

static uint64_t mc_calls;

static inline void mc_count(void) { __atomic_fetch_add(&mc_calls, 1, __ATOMIC_RELAXED); }

#if defined(MC_SANITIZER_HOOKS)
/* sanitizer/allocator_interface.h; declared here so that no sanitizer header is needed.
 * Returns nonzero when the hooks were installed. The malloc hook runs for every
 * allocation the sanitizer's allocator makes: malloc, calloc, realloc, the memalign
 * family and operator new. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static int mc_active;

static void mc_malloc_hook(const volatile void *p, size_t n) { (void)p; (void)n; mc_count(); }
static void mc_free_hook(const volatile void *p) { (void)p; }

__attribute__((constructor)) static void mc_install_hooks(void) {
    mc_active = __sanitizer_install_malloc_and_free_hooks(mc_malloc_hook, mc_free_hook) != 0;
}

int malloc_counter_active(void) { return __atomic_load_n(&mc_active, __ATOMIC_RELAXED); }
#elif defined(__linux__) && defined(__GLIBC__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

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
