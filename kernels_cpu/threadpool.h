/*
 * threadpool.h - a fixed set of worker threads for the CPU backend's ops.
 *
 *     bn_threadpool *pool;
 *     bn_threadpool_create(4, &pool, err, sizeof err);  // the caller + 3 workers
 *     bn_threadpool_run(pool, fn, arg);                  // fn(arg, ith, nth) on every thread
 *     bn_threadpool_destroy(pool);
 *
 * Threads are created once. bn_threadpool_run calls fn(arg, ith, nth) for
 * ith = 0 .. nth-1, ith 0 on the calling thread, and returns when all have
 * returned; each op splits its work statically by ith, so a result never
 * depends on timing. Between jobs the workers spin for a short while (ops
 * of a forward pass follow each other within microseconds, and waking a
 * sleeping thread costs tens of them), then sleep on a condition variable
 * until the next job. Run jobs from one thread at a time.
 */
#ifndef BN_THREADPOOL_H
#define BN_THREADPOOL_H

#include <stddef.h>

typedef struct bn_threadpool bn_threadpool;
typedef void (*bn_threadpool_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 counts the caller. Returns 0, or -1 with err set. */
int bn_threadpool_create(int n_threads, bn_threadpool **out, char *err, size_t errlen);
void bn_threadpool_destroy(bn_threadpool *pool); /* accepts NULL */
int bn_threadpool_size(const bn_threadpool *pool);
void bn_threadpool_run(bn_threadpool *pool, bn_threadpool_fn fn, void *arg);

/* Physical cores this process may use (SMT siblings counted once); at
 * least 1. The default thread count of the CPU backend. */
int bn_cpu_physical_cores(void);

/* [*begin, *end) of n items for thread ith of nth: contiguous, as equal as
 * possible, in order. */
void bn_split_range(size_t n, int ith, int nth, size_t *begin, size_t *end);

#endif
