/* fuzz-driver.c: the deterministic run of a fuzz target, the unit test meson runs in every
 * configuration (the sanitizer build too). It replays every file of the directories it is given
 * (the target's committed seed corpus and the regression inputs of faults found), then feeds a
 * fixed number of deterministic mutations of them: bytes flipped, deleted, duplicated, replaced,
 * the target's dictionary tokens inserted, and two inputs spliced. A broken promise aborts inside
 * the target, which fails the test; reaching the end means none broke.
 * Usage: test-fuzz-NAME ITERATIONS DIR...; AG_FUZZ_ITERATIONS overrides ITERATIONS. */
#include "tests/fuzz/fuzz-common.h"
#include "tests/tap.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Tokens worth inserting for this target, NULL-terminated (each target defines its own). */
extern const char *const ag_fuzz_dict[];

typedef struct {
    uint8_t *p;
    size_t n;
} input;

static input *inputs;
static size_t ninputs, cap_inputs;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (so the run is the same everywhere); a missing
 * directory holds nothing. */
static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                abort();
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 16);
        size_t len = buf ? fread(buf, 1, 1 << 16, f) : 0;
        fclose(f);
        if (!buf)
            abort();
        if (ninputs == cap_inputs) {
            cap_inputs = cap_inputs ? cap_inputs * 2 : 64;
            inputs = realloc(inputs, cap_inputs * sizeof *inputs);
            if (!inputs)
                abort();
        }
        inputs[ninputs++] = (input){buf, len};
    }
    free(names);
}

static size_t insert(uint8_t *buf, size_t len, size_t cap, size_t at, const void *s, size_t n)
{
    if (len + n > cap)
        return len;
    memmove(buf + at + n, buf + at, len - at);
    memcpy(buf + at, s, n);
    return len + n;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    size_t ndict = 0;
    while (ag_fuzz_dict[ndict])
        ndict++;
    int rounds = 1 + next() % 4;
    for (int k = 0; k < rounds; k++) {
        size_t at = len ? next() % (len + 1) : 0;
        switch (next() % 7) {
        case 0: /* flip a bit */
            if (at < len)
                buf[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: { /* delete a run */
            size_t n = 1 + next() % 8;
            if (n > len - at)
                n = len - at;
            memmove(buf + at, buf + at + n, len - at - n);
            len -= n;
            break;
        }
        case 2: /* insert a token of the dictionary */
        case 3:
            if (ndict) {
                const char *s = ag_fuzz_dict[next() % ndict];
                len = insert(buf, len, cap, at, s, strlen(s) ? strlen(s) : 1);
            }
            break;
        case 4: { /* duplicate a run */
            size_t n = 1 + next() % 32;
            if (n > len - at)
                n = len - at;
            uint8_t tmp[32];
            memcpy(tmp, buf + at, n);
            len = insert(buf, len, cap, at, tmp, n);
            break;
        }
        case 5: { /* splice: a piece of another input */
            const input *o = &inputs[next() % ninputs];
            if (o->n) {
                size_t from = next() % o->n, n = 1 + next() % 64;
                if (n > o->n - from)
                    n = o->n - from;
                len = insert(buf, len, cap, at, o->p + from, n);
            }
            break;
        }
        default: /* a random byte */
            if (at < len)
                buf[at] = (uint8_t)next();
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 10000;
    const char *env = getenv("AG_FUZZ_ITERATIONS");
    if (env && *env)
        iterations = atol(env);
    for (int i = 2; i < argc; i++)
        load_dir(argv[i]);
    if (!ninputs) {
        tap_skip("no seed inputs found in the directories given");
        return tap_done();
    }
    /* Each input in an allocation of exactly its size, so an over-read is caught. */
    for (size_t i = 0; i < ninputs; i++) {
        uint8_t *copy = malloc(inputs[i].n ? inputs[i].n : 1);
        if (!copy)
            abort();
        memcpy(copy, inputs[i].p, inputs[i].n);
        LLVMFuzzerTestOneInput(copy, inputs[i].n);
        free(copy);
    }
    tap_ok(1, "fuzz_replay: %zu seed and regression inputs kept every promise", ninputs);

    enum { CAP = 8192 };
    static uint8_t buf[CAP];
    for (long i = 0; i < iterations; i++) {
        const input *in = &inputs[next() % ninputs];
        size_t len = in->n < CAP ? in->n : CAP;
        memcpy(buf, in->p, len);
        len = mutate(buf, len, CAP);
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            abort();
        memcpy(copy, buf, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
    }
    tap_diag("%ld inputs accepted, %ld refused", ag_fuzz_accepted, ag_fuzz_refused);
    /* The mutations must reach both outcomes, or the run proves little. */
    tap_ok(iterations == 0 ||
               (ag_fuzz_accepted > iterations / 50 && ag_fuzz_refused > iterations / 50),
           "fuzz_mutations: %ld mutated inputs, every promise kept", iterations);
    for (size_t i = 0; i < ninputs; i++)
        free(inputs[i].p);
    free(inputs);
    return tap_done();
}
