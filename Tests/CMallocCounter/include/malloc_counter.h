/* malloc_counter.h -- counts heap allocations of the whole test process.
 * Plain builds (glibc): interposes malloc & co, forwarding to glibc's __libc_*
 * entry points. Sanitizer builds (AddressSanitizer, ThreadSanitizer), whose
 * runtime interposes malloc itself: installs the runtime's public allocator
 * hooks (__sanitizer_install_malloc_and_free_hooks) from a constructor.
 * Elsewhere inactive: counts stay 0 and `malloc_counter_active` returns 0. */
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>
/** Allocation calls (malloc, calloc, realloc, memalign family) since start. */
uint64_t malloc_counter_calls(void);
/** 1 if the interposer or the sanitizer hooks are counting. */
int malloc_counter_active(void);
#endif
