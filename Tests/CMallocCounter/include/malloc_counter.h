/* malloc_counter.h -- counts heap allocations of the whole test process by
 * interposing malloc & co (forwarding to glibc's __libc_* entry points).
 * Disabled (counts stay 0, `malloc_counter_active` returns 0) under
 * AddressSanitizer, which interposes malloc itself. */
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>
/** Allocation calls (malloc, calloc, realloc, memalign family) since start. */
uint64_t malloc_counter_calls(void);
/** 1 if the interposer is linked and counting. */
int malloc_counter_active(void);
#endif
