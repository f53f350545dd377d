/* hist.c: latency histograms with bounded relative error in fixed memory (log-linear buckets). */
#include "cli.h"

#include <stdlib.h>

/* Values below 2*SUB are counted one nanosecond per bucket, exactly. Above, each power of two
 * [2^k, 2^(k+1)) is cut into SUB equal buckets, so a bucket is at most 1/SUB = 0.78% of its lower
 * bound wide, and the middle of a bucket (what a quantile reports) is within 0.4% of any value in
 * it. The buckets cover every non-negative int64_t: 7,296 counters, 57 KiB, whatever the count,
 * and no value is ever clamped into a wrong bucket. */
#define SUB_BITS 7
#define SUB      (1 << SUB_BITS)
#define NBUCKETS ((63 - SUB_BITS) * SUB + SUB)

struct cli_hist {
    uint64_t count;
    uint64_t sum_lo, sum_hi; /* 128 bits: values near INT64_MAX add up without overflow */
    int64_t min, max;
    uint64_t n[NBUCKETS];
};

/* The bucket of v >= 0: its most significant bit picks the power of two (clz, no logarithm),
 * the SUB_BITS bits below it pick the linear step within it. */
static inline unsigned bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v); /* k >= SUB_BITS + 1 */
    unsigned shift = k - SUB_BITS;
    return shift * SUB + (unsigned)(v >> shift);
}

/* [lo, hi) of bucket i; the last bucket's hi is INT64_MAX (2^63 does not fit). */
static void bucket_range(unsigned i, int64_t *lo, int64_t *hi)
{
    if (i < 2 * SUB) {
        *lo = i;
        *hi = (int64_t)i + 1;
        return;
    }
    unsigned shift = i / SUB - 1;
    uint64_t m = SUB + i % SUB;
    *lo = (int64_t)(m << shift);
    *hi = (m + 1) << shift > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)((m + 1) << shift);
}

cli_hist *cli_hist_new(void)
{
    cli_hist *h = calloc(1, sizeof(*h));
    if (h) {
        h->min = INT64_MAX;
        h->max = 0;
    }
    return h;
}

void cli_hist_free(cli_hist *h)
{
    free(h);
}

void cli_hist_add(cli_hist *h, int64_t ns)
{
    /* A negative duration can only come from a clock that stepped: it counts as 0 rather than
     * landing in a bucket of its own. */
    if (ns < 0)
        ns = 0;
    h->n[bucket_of((uint64_t)ns)]++;
    h->count++;
    h->sum_lo += (uint64_t)ns;
    h->sum_hi += h->sum_lo < (uint64_t)ns;
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
}

void cli_hist_merge(cli_hist *dst, const cli_hist *src)
{
    if (!src->count)
        return;
    unsigned a = bucket_of((uint64_t)src->min), b = bucket_of((uint64_t)src->max);
    for (unsigned i = a; i <= b; i++)
        dst->n[i] += src->n[i];
    dst->count += src->count;
    dst->sum_lo += src->sum_lo;
    dst->sum_hi += src->sum_hi + (dst->sum_lo < src->sum_lo);
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t cli_hist_count(const cli_hist *h)
{
    return h->count;
}

int64_t cli_hist_max(const cli_hist *h)
{
    return h->count ? h->max : 0;
}

int64_t cli_hist_min(const cli_hist *h)
{
    return h->count ? h->min : 0;
}

double cli_hist_mean(const cli_hist *h)
{
    if (!h->count)
        return 0.0;
    long double sum = (long double)h->sum_hi * 18446744073709551616.0L + (long double)h->sum_lo;
    return (double)(sum / (long double)h->count);
}

/* The value at quantile q is the smallest recorded value v with at least ceil(q * count) values
 * <= v (at least one): the sorted array's element of that rank. The histogram knows its bucket;
 * it reports the bucket's middle, kept within [min, max] so that q = 1 gives the max and q = 0
 * the min exactly. */
int64_t cli_hist_quantile(const cli_hist *h, double q)
{
    if (!h->count)
        return 0;
    if (!(q > 0.0)) /* also NaN */
        return h->min;
    if (q >= 1.0)
        return h->max;
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank > h->count)
        rank = h->count;
    unsigned a = bucket_of((uint64_t)h->min), b = bucket_of((uint64_t)h->max);
    uint64_t seen = 0;
    for (unsigned i = a; i <= b; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            int64_t lo, hi;
            bucket_range(i, &lo, &hi);
            int64_t v = lo + (hi - 1 - lo) / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max; /* not reached: the buckets add up to count */
}

void cli_hist_each(const cli_hist *h, void (*fn)(void *arg, int64_t lo, int64_t hi, uint64_t n),
                   void *arg)
{
    if (!h->count)
        return;
    unsigned a = bucket_of((uint64_t)h->min), b = bucket_of((uint64_t)h->max);
    for (unsigned i = a; i <= b; i++) {
        if (h->n[i]) {
            int64_t lo, hi;
            bucket_range(i, &lo, &hi);
            fn(arg, lo, hi, h->n[i]);
        }
    }
}
