/* test-trace.c: what the public API tells an embedder about each request, against nginx: whole
 * request and response heads through the trace hook, the request's own pointer in every event,
 * the reason phrase, the bytes of every head, the connections opened, the wall-clock start. */
#include "tests/http/util.h"

#include <stdbool.h>
#include <time.h>

static int port;

typedef struct seen {
    int head_out, head_in, other_user;
    uint64_t head_in_bytes;
    bool out_whole, in_whole;
    char first_out[64];
} seen;

static void *marker_user;

static bool ends_blank(const char *p, size_t n)
{
    return n >= 4 && memcmp(p + n - 4, "\r\n\r\n", 4) == 0 &&
           memmem(p, n, "\r\n\r\n", 4) == p + n - 4;
}

static void hook(void *arg, const ag_trace_event *ev)
{
    seen *s = arg;
    if (ev->user != marker_user)
        s->other_user++;
    if (ev->kind == AG_TRACE_HEAD_OUT) {
        if (s->head_out++ == 0) {
            size_t n = ev->len < sizeof s->first_out - 1 ? ev->len : sizeof s->first_out - 1;
            memcpy(s->first_out, ev->data, n);
            s->first_out[n] = 0;
        }
        s->out_whole = s->out_whole && ends_blank(ev->data, ev->len);
    } else if (ev->kind == AG_TRACE_HEAD_IN) {
        s->head_in++;
        s->head_in_bytes += ev->len;
        s->in_whole = s->in_whole && ev->len > 9 && memcmp(ev->data, "HTTP/1.1 ", 9) == 0 &&
                      ends_blank(ev->data, ev->len);
    }
}

static ag_client *client_with(seen *s)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    if (s) {
        o.trace = hook;
        o.trace_arg = s;
    }
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    return c;
}

static ag_response *fetch_user(ag_client *c, const char *path, void *user, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, path);
    req.user = user;
    ag_response *r;
    *rc = ag_fetch(c, &req, &r);
    return r;
}

static void trace_heads_whole_across_a_redirect(void)
{
    seen s = {.out_whole = true, .in_whole = true};
    ag_client *c = client_with(&s);
    int marker;
    marker_user = &marker;
    int rc;
    ag_response *r = fetch_user(c, "/redirect", &marker, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1,
           "trace_redirect_followed: %s, status %d", ag_err_name(rc), ag_response_status(r));
    tap_ok(s.head_out == 2 && s.out_whole &&
               strncmp(s.first_out, "GET /redirect HTTP/1.1\r\n", 24) == 0,
           "trace_head_out_whole_per_request: %d heads, whole %d, first \"%.22s\"", s.head_out,
           s.out_whole, s.first_out);
    tap_ok(s.head_in == 2 && s.in_whole, "trace_head_in_whole_per_response: %d heads, whole %d",
           s.head_in, s.in_whole);
    tap_ok(s.other_user == 0, "trace_user_pointer_in_every_event: %d events without it",
           s.other_user);
    tap_ok(ag_response_header_bytes(r) == s.head_in_bytes && s.head_in_bytes > 0,
           "trace_header_bytes_count_every_head: %llu counted, %llu traced",
           (unsigned long long)ag_response_header_bytes(r), (unsigned long long)s.head_in_bytes);
    tap_ok(ag_response_connects(r) == 1, "connects_redirect_same_host_one: %u",
           ag_response_connects(r));
    ag_response_free(r);
    ag_client_free(c);
}

static void response_reason_and_connects(void)
{
    ag_client *c = client_with(NULL);
    int rc;
    ag_response *r = fetch_user(c, "/hello", NULL, &rc);
    tap_ok(rc == 0 && strcmp(ag_response_reason(r), "OK") == 0 && ag_response_connects(r) == 1,
           "reason_ok_and_first_connect: \"%s\", %u connects", ag_response_reason(r),
           ag_response_connects(r));
    uint64_t hb = ag_response_header_bytes(r);
    ag_response_free(r);
    r = fetch_user(c, "/hello", NULL, &rc);
    tap_ok(rc == 0 && ag_response_reused(r) && ag_response_connects(r) == 0,
           "connects_zero_when_reused: reused %d, %u connects", ag_response_reused(r),
           ag_response_connects(r));
    tap_ok(ag_response_header_bytes(r) == hb && hb > 0,
           "header_bytes_counted_without_trace: %llu and %llu", (unsigned long long)hb,
           (unsigned long long)ag_response_header_bytes(r));
    ag_response_free(r);
    r = fetch_user(c, "/no-such-file", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 404 &&
               strcmp(ag_response_reason(r), "Not Found") == 0,
           "reason_not_found: %d \"%s\"", ag_response_status(r), ag_response_reason(r));
    ag_response_free(r);
    r = fetch_user(c, "/close", NULL, &rc);
    ag_response_free(r);
    r = fetch_user(c, "/close", NULL, &rc);
    tap_ok(rc == 0 && ag_response_connects(r) == 1, "connects_one_after_server_close: %u",
           ag_response_connects(r));
    ag_response_free(r);
    tap_ok(strcmp(ag_response_reason(NULL), "") == 0 && ag_response_connects(NULL) == 0 &&
               ag_response_header_bytes(NULL) == 0,
           "response_info_null_safe");
    ag_client_free(c);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void timings_wall_start(void)
{
    ag_client *c = client_with(NULL);
    int64_t before = wall_ns();
    int rc;
    ag_response *r = fetch_user(c, "/redirect", NULL, &rc);
    int64_t after = wall_ns();
    ag_timings t;
    ag_response_timings(r, &t);
    /* The wall clock is derived from the monotonic one: allow a millisecond of rounding. */
    tap_ok(rc == 0 && t.wall_start >= before - 1000000 && t.wall_start <= after,
           "timings_wall_start_between_before_and_after: %lld ns after the call",
           (long long)(t.wall_start - before));
    ag_response_free(r);
    ag_client_free(c);
}

int main(void)
{
    port = env_port("AG_NGINX_PORT");
    trace_heads_whole_across_a_redirect();
    response_reason_and_connects();
    timings_wall_start();
    return tap_done();
}
