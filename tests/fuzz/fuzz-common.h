/* fuzz-common.h: what the fuzz targets share: reporting a broken promise with its input, and the
 * outcome counters the deterministic driver (fuzz-driver.c) reads. Every oracle here is written
 * from the RFCs, never through the library's own checks. */
#ifndef AG_TESTS_FUZZ_COMMON_H
#define AG_TESTS_FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs the code under test accepted and refused: the deterministic driver checks that its
 * mutations reach both. */
extern long ag_fuzz_accepted, ag_fuzz_refused;

/* The input being judged, shown when a promise breaks (the deterministic run has no crash
 * file). */
static const uint8_t *fuzz_input;
static size_t fuzz_input_len;

static inline void fuzz_begin(const uint8_t *data, size_t size)
{
    fuzz_input = data;
    fuzz_input_len = size;
}

static inline void fuzz_print_bytes(const char *label, const void *p, size_t n)
{
    const unsigned char *s = p;
    fprintf(stderr, "%s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\' && s[i] != '"')
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    fputs("\"\n", stderr);
}

/* A promise broke: say which, show the input, and abort (libFuzzer saves the input as a crash,
 * the deterministic run fails). */
__attribute__((noreturn)) static inline void fuzz_broken(const char *target, const char *what)
{
    fprintf(stderr, "%s: %s\n", target, what);
    fuzz_print_bytes("input", fuzz_input, fuzz_input_len);
    abort();
}

/* The input as a C string of its own allocation, exactly its size plus the NUL, so an over-read
 * is caught; NULL when memory ran out. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = 0;
    }
    return s;
}

static inline int fuzz_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
