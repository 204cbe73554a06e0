/*
 * q16_team.c -- a caller-owned team of persistent worker threads (see q16_team.h).
 *
 * A run has `count` blocks. Whoever runs -- the caller or a helper -- claims the next
 * block with an atomic fetch-add on `claim` and runs fn on it, until every block is
 * claimed; the caller then waits until `done` reaches count. So every block runs exactly
 * once, and when a helper is not scheduled (more threads than free cores) the caller
 * simply runs its block too instead of waiting for it. The results cannot depend on who
 * runs a block (each block writes only its own outputs, scratch and counters).
 *
 * Publishing a run: fn and ctx are written, done = 0, claim = 0 (release), then the
 * generation counter is bumped and the wake-up condition broadcast under the mutex. A
 * helper waits for a new generation by spinning a little, then yielding, then sleeping on
 * the condition variable (the generation re-checked under the mutex: no lost wake-up). A
 * block's fn and ctx are read only after claiming it (acquire), and the run cannot end
 * before that block is done, so a late helper never sees another run's ctx; between runs
 * claim >= count, so nothing is claimed while the next run is being published. The last
 * block to finish on a helper signals `done` under the mutex for a sleeping caller. The
 * atomics are the GCC/clang __atomic builtins.
 */
#if defined(__linux__) && !defined(Q16_NO_THREADS)
#define _GNU_SOURCE 1
#define Q16_TEAM_THREADS 1
#include <pthread.h>
#include <sched.h>
#endif
#include "q16.h"

/* A waiting worker checks Q16_TEAM_SPIN times with a pause between, then Q16_TEAM_YIELD
   times giving its core away (sched_yield: a helper that is not running gets it when the
   cores are oversubscribed), then sleeps. */
#define Q16_TEAM_SPIN 20000
#define Q16_TEAM_YIELD 20

struct q16_team {
    int count;   /* workers, the caller included */
    int started; /* helper threads running */
#ifdef Q16_TEAM_THREADS
    unsigned generation; /* bumped by every run: wakes the helpers (atomic) */
    unsigned claim;      /* the next block of the current run; >= count when all are taken (atomic) */
    unsigned done;       /* blocks of the current run finished (atomic) */
    int stop;            /* set (under the mutex) to end the helpers */
    q16_team_fn fn;
    void *ctx;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done_cv;
    pthread_t thread[Q16_TEAM_MAX];
#endif
};

size_t q16_team_size(void) { return sizeof(struct q16_team); }

int q16_team_count(const q16_team *t) { return t ? t->count : 1; }

#ifdef Q16_TEAM_THREADS

static void q16t_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins, then yields, while *word is (equal = 0) or is not (equal = 1) `value`; returns the
   last value read (still a waiting one when the caller should go to sleep). */
static unsigned q16t_await(const unsigned *word, unsigned value, int equal) {
    unsigned g = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    int i;
    for (i = 0; (g == value) != equal && i < Q16_TEAM_SPIN; i++) {
        q16t_pause();
        g = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    }
    for (i = 0; (g == value) != equal && i < Q16_TEAM_YIELD; i++) {
        sched_yield();
        g = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    }
    return g;
}

/* Claims and runs blocks of the current run until none is left. */
static void q16t_work(q16_team *t) {
    const unsigned n = (unsigned)t->count;
    for (;;) {
        unsigned b = __atomic_fetch_add(&t->claim, 1u, __ATOMIC_ACQ_REL);
        if (b >= n) return;
        t->fn(t->ctx, (int)b, (int)n);
        if (__atomic_add_fetch(&t->done, 1u, __ATOMIC_ACQ_REL) == n) {
            pthread_mutex_lock(&t->mutex);
            pthread_cond_signal(&t->done_cv);
            pthread_mutex_unlock(&t->mutex);
        }
    }
}

static void *q16t_main(void *arg) {
    q16_team *t = (q16_team *)arg;
    unsigned seen = 0; /* the generation of init */
    for (;;) {
        unsigned g = q16t_await(&t->generation, seen, 0);
        if (g == seen) {
            pthread_mutex_lock(&t->mutex);
            while ((g = __atomic_load_n(&t->generation, __ATOMIC_ACQUIRE)) == seen && !t->stop)
                pthread_cond_wait(&t->wake, &t->mutex);
            pthread_mutex_unlock(&t->mutex);
        }
        if (__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) return NULL;
        seen = g;
        q16t_work(t);
    }
}

q16_status q16_team_init(q16_team *t, int threads) {
    int i;
    if (t == NULL) return Q16_ERR_NULL;
    t->count = 1;
    t->started = 0;
    if (threads < 1 || threads > Q16_TEAM_MAX) return Q16_ERR_SIZE;
    t->generation = 0;
    t->claim = (unsigned)Q16_TEAM_MAX; /* nothing to claim before the first run */
    t->done = 0;
    t->stop = 0;
    t->fn = NULL;
    t->ctx = NULL;
    if (threads == 1) return Q16_OK;
    if (pthread_mutex_init(&t->mutex, NULL) != 0) return Q16_ERR_DOMAIN;
    if (pthread_cond_init(&t->wake, NULL) != 0) {
        pthread_mutex_destroy(&t->mutex);
        return Q16_ERR_DOMAIN;
    }
    if (pthread_cond_init(&t->done_cv, NULL) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->mutex);
        return Q16_ERR_DOMAIN;
    }
    t->count = threads;
    t->started = 1; /* marks the synchronisation objects as live for destroy */
    for (i = 1; i < threads; i++) {
        if (pthread_create(&t->thread[i], NULL, q16t_main, t) != 0) {
            t->count = i; /* helpers 1..i-1 run */
            q16_team_destroy(t);
            return Q16_ERR_DOMAIN;
        }
    }
    return Q16_OK;
}

void q16_team_destroy(q16_team *t) {
    int i;
    if (t == NULL || !t->started) {
        if (t) t->count = 1;
        return;
    }
    pthread_mutex_lock(&t->mutex);
    __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&t->generation, 1u, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mutex);
    for (i = 1; i < t->count; i++) pthread_join(t->thread[i], NULL);
    pthread_cond_destroy(&t->done_cv);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mutex);
    t->started = 0;
    t->count = 1;
}

void q16_team_run(q16_team *t, q16_team_fn fn, void *ctx) {
    if (t == NULL || t->count <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    t->fn = fn;
    t->ctx = ctx;
    __atomic_store_n(&t->done, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&t->claim, 0u, __ATOMIC_RELEASE);
    pthread_mutex_lock(&t->mutex);
    __atomic_add_fetch(&t->generation, 1u, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mutex);
    q16t_work(t);
    if (q16t_await(&t->done, (unsigned)t->count, 1) == (unsigned)t->count) return;
    pthread_mutex_lock(&t->mutex);
    while (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE) != (unsigned)t->count)
        pthread_cond_wait(&t->done_cv, &t->mutex);
    pthread_mutex_unlock(&t->mutex);
}

#else /* no threads: the caller is the only worker */

q16_status q16_team_init(q16_team *t, int threads) {
    if (t == NULL) return Q16_ERR_NULL;
    t->count = 1;
    t->started = 0;
    return threads == 1 ? Q16_OK : Q16_ERR_SIZE;
}

void q16_team_destroy(q16_team *t) {
    if (t) t->count = 1;
}

void q16_team_run(q16_team *t, q16_team_fn fn, void *ctx) {
    (void)t;
    fn(ctx, 0, 1);
}

#endif
