/* alloc_count.h -- counting heap wrappers for programs linked against libpdmm.a
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,
 * --wrap=aligned_alloc (every heap call of the library's Embedded Swift code and of the
 * caller goes through them). */
#ifndef ALLOC_COUNT_H
#define ALLOC_COUNT_H
#include <stdint.h>

typedef struct alloc_counts {
    uint64_t allocations; /* calls that allocated */
    uint64_t frees;       /* calls of free with a non-NULL pointer */
    int64_t live;         /* usable bytes currently allocated */
    int64_t peak;         /* high-water mark of live */
} alloc_counts;

/* The counters so far. */
alloc_counts alloc_count_now(void);

#endif
