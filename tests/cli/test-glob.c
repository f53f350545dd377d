/* test-glob: curl's URL globbing in cli/glob.c: expansions and their order, counts, huge ranges
 * produced lazily, and an error with a position for each malformed pattern. */
#include "cli.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>

/* All expansions of pattern joined by "|" (at most max of them), or "ERR: message". */
static const char *expand(const char *pattern, size_t max, uint64_t *count)
{
    static cli_buf all;
    char err[256];
    cli_glob *g;
    cli_buf one = {0};
    cli_buf_reset(&all);
    cli_buf_puts(&all, "");
    if (cli_glob_new(pattern, &g, err, sizeof err) < 0) {
        cli_buf_printf(&all, "ERR: %s", err);
        return all.p;
    }
    if (count)
        *count = cli_glob_count(g);
    for (size_t i = 0; i < max && cli_glob_next(g, &one); i++) {
        if (i)
            cli_buf_putc(&all, '|');
        cli_buf_put(&all, one.p, one.len);
    }
    cli_buf_free(&one);
    cli_glob_free(g);
    return all.p;
}

static void check(const char *name, const char *pattern, const char *want, uint64_t want_count)
{
    uint64_t count = 0;
    const char *got = expand(pattern, 1000, &count);
    int ok = strcmp(got, want) == 0 && (strncmp(want, "ERR", 3) == 0 || count == want_count);
    tap_ok(ok, "glob_%s", name);
    if (!ok)
        tap_diag("'%s': got '%s' (count %llu), want '%s' (count %llu)", pattern, got,
                 (unsigned long long)count, want, (unsigned long long)want_count);
}

static void test_expansions(void)
{
    check("no_pattern", "http://h/a", "http://h/a", 1);
    check("empty", "", "", 1);
    check("numeric", "u[1-3]", "u1|u2|u3", 3);
    check("numeric_single", "u[7-7]", "u7", 1);
    check("numeric_zero", "u[0-2]", "u0|u1|u2", 3);
    check("zero_padded", "f[001-003]", "f001|f002|f003", 3);
    check("zero_padded_grows", "f[08-11]", "f08|f09|f10|f11", 4);
    check("pad_is_start_width", "f[0098-0100]", "f0098|f0099|f0100", 3);
    check("no_pad_without_leading_zero", "f[9-11]", "f9|f10|f11", 3);
    check("step", "n[1-10:3]", "n1|n4|n7|n10", 4);
    check("step_not_reaching_end", "n[0-10:4]", "n0|n4|n8", 3);
    check("step_width", "n[1-100:99]", "n1|n100", 2);
    check("blank_after_dash", "n[1- 3]", "n1|n2|n3", 3);
    check("letters", "[a-e]", "a|b|c|d|e", 5);
    check("letters_upper", "x[X-Z]", "xX|xY|xZ", 3);
    check("letters_step", "[a-z:5]", "a|f|k|p|u|z", 6);
    check("letters_full", "[a-z]", "a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s|t|u|v|w|x|y|z", 26);
    check("set", "http://{one,two,three}.example/",
          "http://one.example/|http://two.example/|"
          "http://three.example/",
          3);
    check("set_single", "{only}", "only", 1);
    check("set_empty_elements", "a{,x,}b", "ab|axb|ab", 3);
    check("set_escapes", "{a\\,b,c\\}d,e\\\\f}", "a,b|c}d|e\\f", 3);
    check("last_fastest", "{a,b}[1-2]{x,y}", "a1x|a1y|a2x|a2y|b1x|b1y|b2x|b2y", 8);
    check("two_ranges", "[1-2]/[a-b]", "1/a|1/b|2/a|2/b", 4);
    check("escaped_brackets", "a\\[1-2\\]\\{x\\}", "a[1-2]{x}", 1);
    check("other_backslash_kept", "a\\b\\", "a\\b\\", 1);
    check("escaped_with_range", "\\[[1-2]\\]", "[1]|[2]", 2);
    check("empty_brackets_literal", "a[]b", "a[]b", 1);
    check("ipv6_literal", "http://[::1]:80/[1-2]", "http://[::1]:80/1|http://[::1]:80/2", 2);
    check("ipv6_zone", "http://[fe80::1%25eth0]/", "http://[fe80::1%25eth0]/", 1);
    check("ipv6_full", "http://[2001:db8::a:b]/{x}", "http://[2001:db8::a:b]/x", 1);
    check("top_of_64_bits", "[18446744073709551614-18446744073709551615]",
          "18446744073709551614|18446744073709551615", 2);
    check("step_overflow_stops", "[18446744073709551610-18446744073709551615:4]",
          "18446744073709551610|18446744073709551614", 2);
}

/* Each malformed pattern and the error it must give, position included (0-based, as curl). */
static void test_errors(void)
{
    static const struct {
        const char *name, *pattern, *want;
    } cases[] = {
        {"unmatched_brace", "http://x/{a,b", "ERR: unmatched brace in URL position 9"},
        {"unmatched_bracket", "http://x/[1-2", "ERR: bad range in URL position 13"},
        {"stray_close_brace", "http://x/a}",
         "ERR: unmatched close brace/bracket in URL position 10"},
        {"stray_close_bracket", "http://x/a]",
         "ERR: unmatched close brace/bracket in URL position 10"},
        {"nested_brace", "{a,{b}}", "ERR: nested brace in URL position 3"},
        {"nested_bracket_in_set", "{a,[1-2]}", "ERR: nested brace in URL position 3"},
        {"bracket_close_in_set", "{a]}", "ERR: unexpected close bracket in URL position 2"},
        {"empty_set", "x{}", "ERR: empty string within braces in URL position 2"},
        {"range_not_number", "http://x/[1-a]", "ERR: bad range in URL position 12"},
        {"range_reversed", "[5-1]", "ERR: bad range in URL position 1"},
        {"range_step_zero", "[1-5:0]", "ERR: bad range in URL position 1"},
        {"range_step_too_big", "[1-5:5]", "ERR: bad range in URL position 1"},
        {"range_single_with_step", "[3-3:2]", "ERR: bad range in URL position 1"},
        {"range_step_missing", "[1-5:]", "ERR: bad range in URL position 5"},
        {"range_step_garbage", "[1-5:2x]", "ERR: bad range in URL position 6"},
        {"range_no_dash", "[15]", "ERR: bad range in URL position 3"},
        {"range_overflow", "[1-18446744073709551616]", "ERR: bad range in URL position 3"},
        {"range_spec", "[-5]", "ERR: bad range specification in URL position 1"},
        {"range_empty_end", "[", "ERR: bad range specification in URL position 1"},
        {"letters_reversed", "[z-a]", "ERR: bad range in URL position 1"},
        {"letters_mixed_case", "[A-z]", "ERR: bad range in URL position 1"},
        {"letters_digit_end", "[a-9]", "ERR: bad range in URL position 1"},
        {"letters_unterminated", "[a-c", "ERR: bad range in URL position 4"},
        {"letters_bad_step", "[a-z:x]", "ERR: bad range in URL position 5"},
        {"ipv6_unterminated", "http://[::1/", "ERR: bad range specification in URL position 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = expand(cases[i].pattern, 10, NULL);
        tap_ok(strcmp(got, cases[i].want) == 0, "glob_error_%s (%s)", cases[i].name, got);
    }
    /* More patterns than curl allows. */
    cli_buf p = {0};
    for (int i = 0; i < 101; i++)
        cli_buf_puts(&p, "{a}");
    const char *got = expand(p.p, 10, NULL);
    tap_ok(strncmp(got, "ERR: too many glob patterns", 27) == 0, "glob_error_too_many (%s)", got);
    cli_buf_reset(&p);
    for (int i = 0; i < 100; i++)
        cli_buf_puts(&p, "{a}");
    uint64_t count;
    got = expand(p.p, 10, &count);
    tap_ok(count == 1 && strlen(got) == 100, "glob_hundred_patterns_allowed");
    cli_buf_free(&p);

    /* The error leaves *out NULL. */
    cli_glob *g = (cli_glob *)&p;
    char err[8];
    tap_ok(cli_glob_new("{", &g, err, sizeof err) == -1 && g == NULL && strlen(err) == 7,
           "glob_error_out_null_err_truncated");
}

static void test_counts_and_laziness(void)
{
    char err[256];
    cli_glob *g;
    cli_buf b = {0};
    /* A billion expansions: made, counted and stepped through the first few at once. */
    int rc = cli_glob_new("http://h/[1-1000000000]", &g, err, sizeof err);
    tap_ok(rc == 0 && cli_glob_count(g) == 1000000000u, "glob_billion_count");
    int ok = 1;
    for (int i = 1; i <= 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "http://h/%d", i);
        ok &= cli_glob_next(g, &b) == 1 && strcmp(b.p, want) == 0;
    }
    tap_ok(ok, "glob_billion_first_five");
    cli_glob_free(g);

    /* Products that overflow 64 bits count as UINT64_MAX, and still iterate. */
    rc = cli_glob_new("[0-18446744073709551615]", &g, err, sizeof err);
    tap_ok(rc == 0 && cli_glob_count(g) == UINT64_MAX, "glob_full_range_count_saturates");
    ok = cli_glob_next(g, &b) && strcmp(b.p, "0") == 0 && cli_glob_next(g, &b) &&
         strcmp(b.p, "1") == 0;
    tap_ok(ok, "glob_full_range_iterates");
    cli_glob_free(g);
    rc = cli_glob_new("[1-4294967296][1-4294967296]{a,b}", &g, err, sizeof err);
    tap_ok(rc == 0 && cli_glob_count(g) == UINT64_MAX, "glob_product_overflow_saturates");
    cli_glob_free(g);
    rc = cli_glob_new("[1-4294967296][1-4294967295]", &g, err, sizeof err);
    tap_ok(rc == 0 && cli_glob_count(g) == UINT64_C(4294967296) * 4294967295u,
           "glob_product_just_fits");
    cli_glob_free(g);

    /* The count matches the expansions, and the end stays the end. */
    rc = cli_glob_new("{a,b,c}[01-20:3]x[a-d:2]", &g, err, sizeof err);
    uint64_t n = 0;
    while (cli_glob_next(g, &b))
        n++;
    tap_ok(rc == 0 && n == cli_glob_count(g) && n == 3 * 7 * 2, "glob_count_matches (%llu)",
           (unsigned long long)n);
    tap_ok(cli_glob_next(g, &b) == 0 && cli_glob_next(g, &b) == 0 && b.len == 0,
           "glob_end_is_sticky");
    cli_glob_free(g);

    /* A long URL with a long set, and a 100,000-value range walked to its end. */
    cli_buf pat = {0};
    cli_buf_puts(&pat, "http://h/");
    for (int i = 0; i < 5000; i++)
        cli_buf_puts(&pat, "p");
    cli_buf_puts(&pat, "{");
    for (int i = 0; i < 1000; i++)
        cli_buf_printf(&pat, "%s%d", i ? "," : "", i);
    cli_buf_puts(&pat, "}/[1-100]");
    rc = cli_glob_new(pat.p, &g, err, sizeof err);
    n = 0;
    ok = rc == 0;
    while (ok && cli_glob_next(g, &b)) {
        char tail[32];
        snprintf(tail, sizeof tail, "p%llu/%llu", (unsigned long long)(n / 100),
                 (unsigned long long)(n % 100 + 1));
        ok = b.len > 5000 && strcmp(b.p + b.len - strlen(tail), tail) == 0;
        n++;
    }
    tap_ok(ok && n == 100000 && cli_glob_count(g) == 100000, "glob_long_set_order (%llu)",
           (unsigned long long)n);
    cli_glob_free(g);
    cli_buf_free(&pat);
    cli_buf_free(&b);
}

/* Arbitrary bytes: every pattern either fails with a message or expands; never a crash (the
 * sanitizers watch), and the count agrees with the expansions when it is small. */
static void test_random(void)
{
    static const char alphabet[] = "[]{},-:\\019az%.AZ";
    uint64_t rng = 88172645463325252u;
    int bad = 0, parsed = 0;
    cli_buf b = {0};
    for (int i = 0; i < 20000; i++) {
        char s[24];
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t n = rng % (sizeof s - 1);
        for (size_t k = 0; k < n; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            s[k] = (rng >> 40) & 1 ? alphabet[(rng >> 8) % (sizeof alphabet - 1)]
                                   : (char)(1 + (rng >> 16) % 255);
        }
        s[n] = 0;
        cli_glob *g;
        char err[128] = "";
        if (cli_glob_new(s, &g, err, sizeof err) < 0) {
            bad += !strstr(err, " in URL position ");
            continue;
        }
        parsed++;
        uint64_t c = cli_glob_count(g), got = 0;
        if (c <= 5000) {
            while (cli_glob_next(g, &b))
                got++;
            bad += got != c;
        }
        cli_glob_free(g);
    }
    tap_ok(bad == 0, "glob_random_patterns (%d parsed, %d wrong)", parsed, bad);
    cli_buf_free(&b);
}

int main(void)
{
    test_expansions();
    test_errors();
    test_counts_and_laziness();
    test_random();
    return tap_done();
}
