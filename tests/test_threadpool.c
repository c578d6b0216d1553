/*
 * The thread pool runs every share of every job exactly once, on the
 * threads it was created with, back to back and after its workers have gone
 * to sleep; the range split covers every item once, in order.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "test_util.h"
#include "threadpool.h"

struct job {
    atomic_int calls[16];
    atomic_int total;
    atomic_int nth_seen;
};

static void count(void *arg, int ith, int nth)
{
    struct job *j = arg;
    atomic_fetch_add(&j->calls[ith], 1);
    atomic_fetch_add(&j->total, 1);
    atomic_store(&j->nth_seen, nth);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_pool(int n)
{
    bn_threadpool *pool;
    char err[128];
    CHECKF(bn_threadpool_create(n, &pool, err, sizeof err) == 0, "create %d: %s", n, err);
    CHECK(bn_threadpool_size(pool) == n, "size");
    struct job j;
    memset(&j, 0, sizeof j);
    const int jobs = 600;
    for (int i = 0; i < jobs; i++) {
        bn_threadpool_run(pool, count, &j);
        if (i % 200 == 199) sleep_ms(3); /* past the spin window: the workers sleep */
    }
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= atomic_load(&j.calls[i]) == jobs;
    CHECKF(ok && atomic_load(&j.total) == jobs * n, "%d threads: every share of every job once", n);
    CHECKF(atomic_load(&j.nth_seen) == n, "nth %d", atomic_load(&j.nth_seen));
    bn_threadpool_destroy(pool);
}

static void test_split(void)
{
    for (size_t n = 0; n < 40; n++)
        for (int nth = 1; nth <= 7; nth++) {
            size_t next = 0, lo = (size_t)-1, hi = 0;
            for (int i = 0; i < nth; i++) {
                size_t b, e;
                bn_split_range(n, i, nth, &b, &e);
                CHECKF(b == next && e >= b, "split %zu/%d part %d", n, nth, i);
                next = e;
                if (e - b < lo) lo = e - b;
                if (e - b > hi) hi = e - b;
            }
            CHECKF(next == n && hi - lo <= 1, "split %zu over %d: covers, balanced", n, nth);
        }
}

int main(void)
{
    test_split();
    for (int n = 1; n <= 4; n++) test_pool(n);
    bn_threadpool_destroy(NULL);
    CHECK(bn_cpu_physical_cores() >= 1, "at least one core");
    printf("physical cores: %d\n", bn_cpu_physical_cores());
    return test_report("test_threadpool");
}
