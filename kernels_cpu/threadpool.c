/*
 * Thread pool (threadpool.h): a generation counter that workers watch,
 * a countdown of workers still busy, and a mutex with two condition
 * variables: one for workers that have spun long enough to sleep, one for
 * the caller when the workers' share outlasts its own.
 *
 * No-lost-wakeup argument (both directions alike): a thread about to sleep
 * announces itself (n_sleeping, caller_waiting) and re-reads the condition
 * while holding the mutex; the other side changes the condition and then
 * reads the announcement (all sequentially consistent). Either the sleeper
 * sees the change and does not sleep, or the other side sees the sleeper
 * and signals under the mutex, which it can take only once the sleeper is
 * inside pthread_cond_wait.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long an idle worker spins before sleeping: decode runs a few hundred
 * ops per token with microseconds between them, and sampling between tokens
 * takes a fraction of a millisecond. Past that, spinning only takes the
 * core from someone else. */
#define SPIN_NS 1000000L
/* How long the caller spins for the workers' share before sleeping: the
 * shares are equal, so a much longer wait means a worker lost its core. */
#define CALLER_SPIN_NS 200000L

struct worker {
    bn_threadpool *pool;
    int ith;
    pthread_t tid;
};

struct bn_threadpool {
    int n_threads;
    struct worker *workers; /* [n_threads - 1] */
    bn_threadpool_fn fn;    /* the current job, valid while pending > 0  */
    void *arg;
    atomic_uint gen;        /* bumped once per job                        */
    atomic_int pending;     /* workers that have not finished the job     */
    atomic_int n_sleeping;
    atomic_bool caller_waiting;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers: a new job or stop                  */
    pthread_cond_t done_cv; /* the caller: pending reached 0               */
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("pause");
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Waits until gen differs from seen; returns the new gen. */
static unsigned wait_job(bn_threadpool *p, unsigned seen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned spins = 0;; spins++) {
        unsigned g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
        if ((spins & 1023) == 1023 && elapsed_ns(&t0) > SPIN_NS) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    unsigned g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bn_threadpool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->arg, w->ith, p->n_threads);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int bn_threadpool_create(int n_threads, bn_threadpool **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    bn_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "thread pool: out of memory");
        return -1;
    }
    p->n_threads = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->caller_waiting, false);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        bn_threadpool_destroy(p);
        snprintf(err, errlen, "thread pool: out of memory");
        return -1;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker *w = &p->workers[i - 1];
        w->pool = p;
        w->ith = i;
        int rc = pthread_create(&w->tid, NULL, worker_main, w);
        if (rc != 0) {
            p->n_threads = i; /* destroy joins the ones that started */
            bn_threadpool_destroy(p);
            snprintf(err, errlen, "thread pool: cannot start thread %d of %d: %s", i + 1, n_threads, strerror(rc));
            return -1;
        }
    }
    *out = p;
    return 0;
}

void bn_threadpool_destroy(bn_threadpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads && p->workers; i++) pthread_join(p->workers[i - 1].tid, NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int bn_threadpool_size(const bn_threadpool *p) { return p->n_threads; }

void bn_threadpool_run(bn_threadpool *p, bn_threadpool_fn fn, void *arg)
{
    if (p->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->gen, 1); /* publishes fn, arg and pending */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n_threads);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned spins = 0; atomic_load(&p->pending) > 0; spins++) {
        cpu_relax();
        if ((spins & 255) == 255 && elapsed_ns(&t0) > CALLER_SPIN_NS) break;
    }
    if (atomic_load(&p->pending) == 0) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_waiting, true);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    atomic_store(&p->caller_waiting, false);
    pthread_mutex_unlock(&p->mu);
}

void bn_split_range(size_t n, int ith, int nth, size_t *begin, size_t *end)
{
    const size_t base = n / (size_t)nth, extra = n % (size_t)nth, i = (size_t)ith;
    *begin = i * base + (i < extra ? i : extra);
    *end = *begin + base + (i < extra ? 1 : 0);
}

/* Reads the first integer of a small sysfs file; -1 if absent. */
static long read_first_int(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

int bn_cpu_physical_cores(void)
{
    /* A CPU is the first of its core when the first entry of its
     * thread_siblings_list is itself. Offline CPUs have no topology
     * directory and are skipped. */
    const long configured = sysconf(_SC_NPROCESSORS_CONF), online = sysconf(_SC_NPROCESSORS_ONLN);
    int cores = 0;
    for (long cpu = 0; cpu < configured && cpu < 4096; cpu++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/thread_siblings_list", cpu);
        long first = read_first_int(path);
        if (first == cpu) cores++;
    }
    if (cores <= 0) cores = online > 0 ? (int)online : 1;
    if (online > 0 && cores > online) cores = (int)online;
    return cores;
}
