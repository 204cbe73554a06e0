/*
 * q16_team.c -- a caller-owned team of persistent worker threads (see q16_team.h).
 *
 * Protocol: q16_team_run stores (fn, ctx), sets `pending` to the number of
 * helper threads and bumps the generation counter (release), then broadcasts the
 * wake-up condition under the mutex. A helper waits for a new generation by
 * spinning a little (acquire loads), then sleeping on the condition variable
 * (re-checking the generation under the mutex, so no wake-up is lost); it runs
 * fn and decrements `pending` (acq_rel). The caller runs worker 0, then waits for
 * pending == 0 the same way (spin, then the `done` condition that the last helper
 * signals under the mutex). The atomics are the GCC/clang __atomic builtins.
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
#define Q16_TEAM_SPIN 2000
#define Q16_TEAM_YIELD 20

struct q16_team {
    int count;   /* workers, the caller included */
    int started; /* helper threads running */
#ifdef Q16_TEAM_THREADS
    unsigned generation; /* bumped by every run (atomic) */
    unsigned pending;    /* helpers still running this generation (atomic) */
    int stop;            /* set (under the mutex) to end the helpers */
    q16_team_fn fn;
    void *ctx;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    struct q16_team_helper {
        struct q16_team *team;
        int index;
        pthread_t thread;
    } helper[Q16_TEAM_MAX];
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

static void *q16t_main(void *arg) {
    struct q16_team_helper *h = (struct q16_team_helper *)arg;
    q16_team *t = h->team;
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
        t->fn(t->ctx, h->index, t->count);
        if (__atomic_sub_fetch(&t->pending, 1u, __ATOMIC_ACQ_REL) == 0u) {
            pthread_mutex_lock(&t->mutex);
            pthread_cond_signal(&t->done);
            pthread_mutex_unlock(&t->mutex);
        }
    }
}

q16_status q16_team_init(q16_team *t, int threads) {
    int i;
    if (t == NULL) return Q16_ERR_NULL;
    t->count = 1;
    t->started = 0;
    if (threads < 1 || threads > Q16_TEAM_MAX) return Q16_ERR_SIZE;
    t->generation = 0;
    t->pending = 0;
    t->stop = 0;
    t->fn = NULL;
    t->ctx = NULL;
    if (threads == 1) return Q16_OK;
    if (pthread_mutex_init(&t->mutex, NULL) != 0) return Q16_ERR_DOMAIN;
    if (pthread_cond_init(&t->wake, NULL) != 0) {
        pthread_mutex_destroy(&t->mutex);
        return Q16_ERR_DOMAIN;
    }
    if (pthread_cond_init(&t->done, NULL) != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->mutex);
        return Q16_ERR_DOMAIN;
    }
    t->count = threads;
    t->started = 1; /* marks the synchronisation objects as live for destroy */
    for (i = 1; i < threads; i++) {
        t->helper[i].team = t;
        t->helper[i].index = i;
        if (pthread_create(&t->helper[i].thread, NULL, q16t_main, &t->helper[i]) != 0) {
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
    for (i = 1; i < t->count; i++) pthread_join(t->helper[i].thread, NULL);
    pthread_cond_destroy(&t->done);
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
    __atomic_store_n(&t->pending, (unsigned)(t->count - 1), __ATOMIC_RELAXED);
    pthread_mutex_lock(&t->mutex);
    __atomic_add_fetch(&t->generation, 1u, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mutex);
    fn(ctx, 0, t->count);
    if (q16t_await(&t->pending, 0u, 1) == 0u) return;
    pthread_mutex_lock(&t->mutex);
    while (__atomic_load_n(&t->pending, __ATOMIC_ACQUIRE) != 0u) pthread_cond_wait(&t->done, &t->mutex);
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
