/* test-hist.c: the latency histogram against a sorted array: quantiles within 1%, min and max
 * exact, merging, and the buckets it shows. */
#include "cli.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible across runs and libcs. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double rnd01(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* exp without libm: halve until small, a short series, square back. */
static double my_exp(double x)
{
    int k = 0;
    while (x > 0.5 || x < -0.5) {
        x /= 2;
        k++;
    }
    double term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= x / i;
        sum += term;
    }
    while (k--)
        sum *= sum;
    return sum;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The sorted array's value at quantile q, by the definition cli_hist_quantile documents: the
 * element of rank ceil(q * n), at least 1. */
static int64_t true_quantile(const int64_t *sorted, size_t n, double q)
{
    if (q <= 0)
        return sorted[0];
    if (q >= 1)
        return sorted[n - 1];
    double r = q * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static const double qs[] = {0,   0.0001, 0.001, 0.01,  0.1,    0.25,    0.5, 0.75,
                            0.9, 0.95,   0.99,  0.999, 0.9999, 0.99999, 1};

/* Every quantile of qs (and 200 more spread over 0..1) within 1% of the sorted array's value,
 * and p0, p100, min, max, count and mean exact. */
static void check_against_sorted(const char *name, int64_t *v, size_t n)
{
    cli_hist *h = cli_hist_new();
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        cli_hist_add(h, v[i]);
        sum += v[i];
    }
    qsort(v, n, sizeof(*v), cmp64);
    int ok = 1;
    double worst = 0;
    double worst_q = 0;
    int64_t prev = INT64_MIN;
    int bounded = 1;
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]) + 201; k++) {
        double q = k < sizeof(qs) / sizeof(qs[0]) ? qs[k] : (double)(k - 15) / 200.0;
        int64_t want = true_quantile(v, n, q), got = cli_hist_quantile(h, q);
        double err = want ? (double)(got > want ? got - want : want - got) / (double)want
                          : (got == 0 ? 0 : 1);
        /* Never outside [min, max], never decreasing with q (the spread qs are in order). */
        if (got < v[0] || got > v[n - 1] || (k > sizeof(qs) / sizeof(qs[0]) && got < prev))
            bounded = 0;
        prev = got;
        if (err > worst) {
            worst = err;
            worst_q = q;
        }
        if (err > 0.01) {
            if (ok)
                tap_diag("%s: q=%g want %lld got %lld", name, q, (long long)want, (long long)got);
            ok = 0;
        }
    }
    tap_ok(ok, "hist_quantiles_within_1pct_%s: %zu values, worst relative error %.5f at q=%g", name,
           n, worst, worst_q);
    tap_ok(bounded, "hist_quantiles_bounded_monotonic_%s: within [min, max], not decreasing in q",
           name);
    long double mean = sum / (long double)n;
    long double dm = (long double)cli_hist_mean(h) - mean;
    if (dm < 0)
        dm = -dm;
    tap_ok(cli_hist_count(h) == n && cli_hist_min(h) == v[0] && cli_hist_max(h) == v[n - 1] &&
               cli_hist_quantile(h, 1.0) == v[n - 1] && cli_hist_quantile(h, 0.0) == v[0] &&
               dm <= mean * 1e-12L + 1e-6L,
           "hist_exact_min_max_mean_%s: min %lld max %lld p100 %lld mean %.3f", name,
           (long long)cli_hist_min(h), (long long)cli_hist_max(h),
           (long long)cli_hist_quantile(h, 1.0), cli_hist_mean(h));
    cli_hist_free(h);
}

static void hist_quantiles(void)
{
    enum { N = 200000 };
    int64_t *v = malloc(N * sizeof(*v));

    /* Uniform over 0..10 s. */
    for (size_t i = 0; i < N; i++)
        v[i] = (int64_t)(rnd() % 10000000000ull);
    check_against_sorted("uniform", v, N);

    /* Lognormal around 2 ms with a long tail (sigma 1.5): what latencies look like. */
    for (size_t i = 0; i < N; i++) {
        double z = -6;
        for (int k = 0; k < 12; k++)
            z += rnd01();
        v[i] = (int64_t)(2e6 * my_exp(1.5 * z));
    }
    check_against_sorted("lognormal", v, N);

    /* Log-uniform from 1 ns to 2^62: every power of two equally often. */
    for (size_t i = 0; i < N; i++) {
        unsigned k = (unsigned)(rnd() % 62);
        v[i] = (int64_t)((1ull << k) + rnd() % (1ull << k));
    }
    check_against_sorted("loguniform", v, N);

    /* Small values, where buckets are one nanosecond wide: must be exact. */
    for (size_t i = 0; i < N; i++)
        v[i] = (int64_t)(rnd() % 300);
    check_against_sorted("small", v, N);

    free(v);
}

/* Data chosen against the buckets: values on every bucket edge and one below it, all values
 * equal, two clusters twelve orders of magnitude apart with the quantiles falling on the seam,
 * zeros, and the largest int64_t. */
static void hist_adversarial(void)
{
    enum { N = 100000 };
    int64_t *v = malloc(N * sizeof(*v));
    size_t n = 0;
    for (unsigned k = 0; k < 63 && n + 4 <= N; k++) {
        int64_t p = (int64_t)(1ull << k);
        v[n++] = p;
        v[n++] = p - 1;
        v[n++] = p + 1;
        v[n++] = p + p / 2 + (k > 1 ? p / 256 : 0);
    }
    v[n++] = INT64_MAX;
    v[n++] = INT64_MAX - 1;
    check_against_sorted("edges", v, n);

    for (size_t i = 0; i < N; i++)
        v[i] = 123456789;
    check_against_sorted("constant", v, N);
    /* In the upper half of its bucket [235 * 2^19, 236 * 2^19): the bucket's middle is below it. */
    for (size_t i = 0; i < N; i++)
        v[i] = 235 * 524288 + 500000;
    check_against_sorted("constant_high", v, N);

    /* 99% at ~1 µs, 1% at ~1000 s: p99 is the last of the first cluster, p99.1 the second. */
    for (size_t i = 0; i < N; i++)
        v[i] = i < N / 100 ? 1000000000000ll + (int64_t)(rnd() % 1000) : 1000 + (int64_t)(i % 7);
    check_against_sorted("two_clusters", v, N);

    for (size_t i = 0; i < N; i++)
        v[i] = i % 2 ? 0 : 255 + (int64_t)(i % 3); /* 255, 256, 257: the first wide bucket */
    check_against_sorted("zeros_and_seam", v, N);

    v[0] = 42;
    check_against_sorted("single", v, 1);

    free(v);
}

static void hist_empty(void)
{
    cli_hist *h = cli_hist_new();
    tap_ok(h && cli_hist_count(h) == 0 && cli_hist_min(h) == 0 && cli_hist_max(h) == 0 &&
               cli_hist_quantile(h, 0.5) == 0 && cli_hist_quantile(h, 1) == 0 &&
               cli_hist_mean(h) == 0,
           "hist_empty: count, min, max, mean and quantiles are 0");
    cli_hist_free(h);
    cli_hist_free(NULL);
}

static void hist_negative_is_zero(void)
{
    cli_hist *h = cli_hist_new();
    cli_hist_add(h, -5);
    cli_hist_add(h, 10);
    tap_ok(cli_hist_min(h) == 0 && cli_hist_max(h) == 10 && cli_hist_count(h) == 2 &&
               cli_hist_quantile(h, 0.5) == 0,
           "hist_negative_is_zero: a negative duration (a stepped clock) counts as 0");
    cli_hist_free(h);
}

/* Merging two histograms gives exactly the histogram of all the values: same buckets, same
 * quantiles, same min, max and mean; merging an empty one changes nothing. */
struct bk {
    int64_t lo[8000], hi[8000];
    uint64_t n[8000];
    size_t len;
};

static void collect(void *arg, int64_t lo, int64_t hi, uint64_t n)
{
    struct bk *b = arg;
    if (b->len < 8000) {
        b->lo[b->len] = lo;
        b->hi[b->len] = hi;
        b->n[b->len] = n;
    }
    b->len++;
}

static int same_buckets(const cli_hist *a, const cli_hist *b)
{
    static struct bk x, y;
    x.len = y.len = 0;
    cli_hist_each(a, collect, &x);
    cli_hist_each(b, collect, &y);
    if (x.len != y.len)
        return 0;
    for (size_t i = 0; i < x.len; i++)
        if (x.lo[i] != y.lo[i] || x.hi[i] != y.hi[i] || x.n[i] != y.n[i])
            return 0;
    return 1;
}

static void hist_merge(void)
{
    cli_hist *a = cli_hist_new(), *b = cli_hist_new(), *all = cli_hist_new(),
             *empty = cli_hist_new(), *into_empty = cli_hist_new();
    for (int i = 0; i < 50000; i++) {
        int64_t x = (int64_t)(rnd() % 5000000000ull);
        cli_hist_add(i % 3 ? a : b, x);
        cli_hist_add(all, x);
    }
    cli_hist_add(b, 7); /* b alone holds the min */
    cli_hist_add(all, 7);
    cli_hist_add(a, 99999999999); /* a alone holds the max */
    cli_hist_add(all, 99999999999);
    cli_hist_merge(a, b);
    cli_hist_merge(a, empty);
    cli_hist_merge(into_empty, a);
    int same = same_buckets(a, all) && same_buckets(into_empty, all);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
        same = same && cli_hist_quantile(a, qs[k]) == cli_hist_quantile(all, qs[k]) &&
               cli_hist_quantile(into_empty, qs[k]) == cli_hist_quantile(all, qs[k]);
    tap_ok(same && cli_hist_count(a) == cli_hist_count(all) && cli_hist_min(a) == 7 &&
               cli_hist_max(a) == 99999999999 && cli_hist_mean(a) == cli_hist_mean(all) &&
               cli_hist_min(into_empty) == 7 && cli_hist_max(into_empty) == 99999999999,
           "hist_merge: merged halves equal the histogram of all values (buckets, quantiles, "
           "min, max, mean); an empty side changes nothing");
    cli_hist_free(a);
    cli_hist_free(b);
    cli_hist_free(all);
    cli_hist_free(empty);
    cli_hist_free(into_empty);
}

/* Buckets come in increasing order, do not overlap, hold every value in [lo, hi), are one
 * nanosecond wide below 256 and at most 1/128 of lo wide above, and add up to the count. */
static void hist_each(void)
{
    static struct bk b;
    cli_hist *h = cli_hist_new();
    enum { N = 20000 };
    static int64_t v[N];
    for (size_t i = 0; i < N; i++) {
        unsigned k = (unsigned)(rnd() % 63);
        v[i] = (int64_t)(rnd() >> (63 - k) >> 1);
        if (i < 300)
            v[i] = (int64_t)i;
        cli_hist_add(h, v[i]);
    }
    b.len = 0;
    cli_hist_each(h, collect, &b);
    int ok = b.len > 0 && b.len <= 8000;
    uint64_t total = 0;
    for (size_t i = 0; ok && i < b.len; i++) {
        total += b.n[i];
        if (b.lo[i] >= b.hi[i] || (i && b.lo[i] < b.hi[i - 1]))
            ok = 0;
        if (b.lo[i] < 256 && b.hi[i] - b.lo[i] != 1)
            ok = 0;
        if (b.lo[i] >= 256 && (double)(b.hi[i] - b.lo[i]) > (double)b.lo[i] / 128.0)
            ok = 0;
    }
    /* Every value falls in exactly one shown bucket (found by bisection). */
    uint64_t found = 0;
    for (size_t i = 0; ok && i < N; i++) {
        size_t l = 0, r = b.len;
        while (l < r) {
            size_t m = (l + r) / 2;
            if (b.hi[m] <= v[i] && !(b.hi[m] == INT64_MAX && v[i] == INT64_MAX))
                l = m + 1;
            else
                r = m;
        }
        if (l < b.len && b.lo[l] <= v[i])
            found++;
    }
    tap_ok(ok && total == N && found == N,
           "hist_each: %zu buckets in order, disjoint, widths within 1/128, counts add up to %llu "
           "of %d, all %llu values inside",
           b.len, (unsigned long long)total, N, (unsigned long long)found);
    cli_hist_free(h);
}

/* Not a bound (the machine is shared): the cost of one add, for the report. */
static void hist_add_cost(void)
{
    cli_hist *h = cli_hist_new();
    enum { N = 10000000 };
    struct timespec a, b;
    uint64_t x = 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        cli_hist_add(h, (int64_t)(x >> 34));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    tap_ok(cli_hist_count(h) == N, "hist_add_cost: %d adds, %.2f ns each (with the generator)", N,
           ns / N);
    cli_hist_free(h);
}

int main(void)
{
    hist_empty();
    hist_negative_is_zero();
    hist_quantiles();
    hist_adversarial();
    hist_merge();
    hist_each();
    hist_add_cost();
    return tap_done();
}
