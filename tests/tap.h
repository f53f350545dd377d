/* tap.h: minimal Test Anything Protocol output for the test programs. */
#ifndef AG_TESTS_TAP_H
#define AG_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count;
static int tap_failed;
static int tap_planned;

static inline void tap_plan(int n)
{
    tap_planned = 1;
    printf("1..%d\n", n);
    fflush(stdout);
}

/* A test's description on one line: a newline in it (a captured stderr, a server's body) would
 * start a line TAP cannot read. */
static inline void tap_vline(const char *fmt, va_list ap)
{
    char small[4096];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, fmt, aq);
    va_end(aq);
    char *text = small;
    if (n >= (int)sizeof small) {
        text = malloc((size_t)n + 1);
        if (text)
            vsnprintf(text, (size_t)n + 1, fmt, ap);
        else
            text = small; /* cut short */
    }
    for (const char *p = n < 0 ? "" : text; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else
            putchar(*p);
    }
    if (text != small)
        free(text);
    putchar('\n');
}

__attribute__((format(printf, 2, 3))) static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    va_start(ap, fmt);
    tap_vline(fmt, ap);
    va_end(ap);
    fflush(stdout);
    return cond;
}

__attribute__((format(printf, 1, 2))) static inline void tap_skip(const char *fmt, ...)
{
    va_list ap;
    tap_count++;
    printf("ok %d # SKIP ", tap_count);
    va_start(ap, fmt);
    tap_vline(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static inline void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Print the plan at the end (when the count was not known up front) and return the exit code. */
static inline int tap_done(void)
{
    if (!tap_planned)
        printf("1..%d\n", tap_count);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}

#endif
