/* run.c: the run of the asyncget command. Each thread has its own loop and client, sharing
 * nothing with the others but the list of URLs (a source under a lock), the outputs (each with its
 * own lock) and a few counters. On a thread, --parallel-max coroutines each take the next URL,
 * make the request (with its retries) and record the result, until the list ends. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS    256
#define ERRORS_SHOWN   20
#define FILE_QUEUE_CAP 4096
#define GRACE_NS       (1000 * 1000000LL) /* in-flight requests get this long after Ctrl-C */
#define RETRY_FIRST_MS 1000
#define RETRY_CAP_MS   (600 * 1000)

void cli_strs_add(cli_strs *s, const char *str)
{
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            fputs("asyncget: out of memory\n", stderr);
            exit(27);
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

void cli_strs_free(cli_strs *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- curl's exit codes ---- */

int cli_exitcode(int err, bool sent)
{
    switch (err) {
    case 0:
        return 0;
    case AG_EURL:
    case AG_EREDIRECT:
        return 3;
    case AG_ESCHEME:
        return 1;
    case AG_EHEADER:
    case AG_EREQUEST:
        return 43;
    case AG_EDNS:
    case AG_EDNS_FAIL:
        return 6;
    case AG_EDNS_TIMEOUT:
    case AG_ECONNECT_TIMEOUT:
    case AG_EPOOL_TIMEOUT:
    case AG_EIDLE_TIMEOUT:
    case AG_ETOTAL_TIMEOUT:
    case -ETIMEDOUT:
        return 28;
    case AG_ETLS:
        return 35;
    case AG_ETLS_VERIFY:
    case AG_ETLS_EXPIRED:
    case AG_ETLS_UNTRUSTED:
    case AG_ETLS_HOSTNAME:
        return 60;
    case AG_EPROTO:
        return 8;
    case AG_ETOO_LARGE:
        return 63;
    case AG_EDECODE:
    case AG_EDECODE_RATIO:
        return 61; /* curl's CURLE_BAD_CONTENT_ENCODING */
    case AG_EREDIRECTS:
        return 47;
    case AG_ECLOSED:
        return 52;
    case AG_ETRUNCATED:
        return 18;
    case AG_EBODY:
        return 26;
    case AG_ESINK:
        return 23;
    case -ECANCELED:
        return 42;
    case -ENOMEM:
        return 27;
    default:
        break;
    }
    /* A system error: before the request went out it is the connection's (7), after it a
     * failure to receive (56) or, while sending, to send (55). */
    if (!sent)
        return err == -EPIPE || err == -ECONNRESET ? 55 : 7;
    return 56;
}

/* ---- the list of URLs ---- */

typedef struct item {
    uint64_t urlnum;
    char *url;
    char *bad; /* a pattern that does not glob: why (the request fails with exit code 3) */
} item;

/* Lines of the URL files, read by a thread of their own so that a list still being written
 * (a pipe) is read as it comes without blocking a loop. A NULL line ends a round. */
typedef struct fileq {
    pthread_mutex_t mu;
    pthread_cond_t room;
    char **lines;
    size_t head, count;
    bool finished; /* the reader has read everything it will */
    bool quit;     /* the run is stopping: the reader ends */
} fileq;

typedef struct source {
    pthread_mutex_t mu;
    const cli_cfg *cfg;
    uint64_t next_num;
    uint64_t round, rounds; /* rounds: UINT64_MAX with --duration */
    int64_t deadline;       /* --duration, -1: none */
    size_t arg;             /* next command-line URL of this round */
    cli_glob *glob;         /* the expansion of the current one */
    cli_buf gbuf;
    bool in_files; /* this round is past the command-line URLs */
    bool ended;
    atomic_int unreadable; /* a URL file could not be opened */
    fileq fq;
    char glob_err[160];
} source;

static int fq_push(fileq *q, char *line)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == FILE_QUEUE_CAP && !q->quit)
        pthread_cond_wait(&q->room, &q->mu);
    int rc = q->quit ? -1 : 0;
    if (rc == 0)
        q->lines[(q->head + q->count++) % FILE_QUEUE_CAP] = line;
    pthread_mutex_unlock(&q->mu);
    if (rc < 0)
        free(line);
    return rc;
}

/* Strip the line end and surrounding blanks; NULL for a blank line or a comment. */
static char *url_line(char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                 line[n - 1] == '\t'))
        line[--n] = 0;
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p || *p == '#')
        return NULL;
    return p;
}

static void *file_reader(void *arg)
{
    source *s = arg;
    const cli_cfg *cfg = s->cfg;
    /* A list read from stdin cannot be read twice: its lines are kept for the next rounds. */
    char **kept = NULL;
    size_t nkept = 0, capkept = 0;
    bool keep = s->rounds > 1;
    for (uint64_t round = 0; round < s->rounds; round++) {
        for (size_t i = 0; i < cfg->url_files.n; i++) {
            const char *path = cfg->url_files.v[i];
            bool std_in = strcmp(path, "-") == 0;
            if (std_in && round > 0) {
                for (size_t k = 0; k < nkept; k++) {
                    char *dup = strdup(kept[k]);
                    if (!dup || fq_push(&s->fq, dup) < 0)
                        goto out;
                }
                continue;
            }
            FILE *f = std_in ? stdin : fopen(path, "r");
            if (!f) {
                fprintf(stderr, "asyncget: cannot read URL file %s: %s\n", path, strerror(errno));
                atomic_store(&s->unreadable, 1);
                continue;
            }
            char *line = NULL;
            size_t cap = 0;
            ssize_t got;
            while ((got = getline(&line, &cap, f)) >= 0) {
                /* A NUL inside a line would cut it: it becomes a byte no URL takes, so the
                 * line fails whole as a bad URL rather than being requested in part. */
                for (ssize_t k = 0; k < got; k++)
                    if (line[k] == 0)
                        line[k] = '\x01';
                char *u = url_line(line);
                if (!u)
                    continue;
                char *dup = strdup(u);
                if (!dup)
                    break;
                if (std_in && keep) {
                    if (nkept == capkept) {
                        capkept = capkept ? capkept * 2 : 256;
                        char **nk = realloc(kept, capkept * sizeof *nk);
                        if (!nk)
                            break;
                        kept = nk;
                    }
                    kept[nkept] = strdup(u);
                    if (kept[nkept])
                        nkept++;
                }
                if (fq_push(&s->fq, dup) < 0) {
                    free(line);
                    if (!std_in)
                        fclose(f);
                    goto out;
                }
            }
            if (ferror(f)) { /* a directory, an I/O error */
                fprintf(stderr, "asyncget: cannot read URL file %s: %s\n", path, strerror(errno));
                atomic_store(&s->unreadable, 1);
            }
            free(line);
            if (!std_in)
                fclose(f);
        }
        if (fq_push(&s->fq, NULL) < 0) /* the round ends */
            break;
    }
out:
    for (size_t k = 0; k < nkept; k++)
        free(kept[k]);
    free(kept);
    pthread_mutex_lock(&s->fq.mu);
    s->fq.finished = true;
    pthread_mutex_unlock(&s->fq.mu);
    return NULL;
}

enum { SRC_ITEM = 1, SRC_END = 0, SRC_AGAIN = -1 };

/* The next URL in input order, with its urlnum: SRC_ITEM, SRC_END, or SRC_AGAIN when the URL
 * files have nothing yet. */
static int source_next(source *s, item *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = SRC_END;
    const cli_cfg *cfg = s->cfg;
    out->bad = NULL;
    while (!s->ended) {
        if (s->deadline >= 0 && ag_now_ns() >= s->deadline) {
            s->ended = true;
            break;
        }
        if (!s->in_files) {
            if (s->glob) {
                if (cli_glob_next(s->glob, &s->gbuf) == 1) {
                    out->url = strdup(s->gbuf.p);
                    rc = SRC_ITEM;
                    break;
                }
                cli_glob_free(s->glob);
                s->glob = NULL;
                s->arg++;
                continue;
            }
            if (s->arg < cfg->urls.n) {
                const char *u = cfg->urls.v[s->arg];
                if (cfg->globoff) {
                    out->url = strdup(u);
                    s->arg++;
                    rc = SRC_ITEM;
                    break;
                }
                /* Checked whole at start: a pattern that fails here fails again the same. */
                if (cli_glob_new(u, &s->glob, s->glob_err, sizeof s->glob_err) < 0) {
                    s->glob = NULL;
                    out->bad = strdup(s->glob_err);
                    out->url = strdup(u);
                    s->arg++;
                    rc = SRC_ITEM;
                    break;
                }
                continue;
            }
            s->in_files = true;
        }
        if (cfg->url_files.n) {
            fileq *q = &s->fq;
            pthread_mutex_lock(&q->mu);
            if (q->count == 0) {
                bool fin = q->finished;
                pthread_mutex_unlock(&q->mu);
                if (fin) {
                    s->ended = true;
                    break;
                }
                rc = SRC_AGAIN;
                break;
            }
            char *line = q->lines[q->head];
            q->head = (q->head + 1) % FILE_QUEUE_CAP;
            q->count--;
            pthread_cond_signal(&q->room);
            pthread_mutex_unlock(&q->mu);
            if (line) {
                out->url = line;
                rc = SRC_ITEM;
                break;
            }
        }
        /* The round is over. */
        if (++s->round >= s->rounds) {
            s->ended = true;
            break;
        }
        s->arg = 0;
        s->in_files = false;
    }
    if (rc == SRC_ITEM) {
        if (!out->url) {
            rc = SRC_END; /* out of memory: the list ends here */
            s->ended = true;
        } else {
            out->urlnum = s->next_num++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void source_stop(source *s)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&s->fq.mu);
    s->fq.quit = true;
    pthread_cond_broadcast(&s->fq.room);
    pthread_mutex_unlock(&s->fq.mu);
}

/* ---- the run ---- */

typedef struct thr thr;

typedef struct run {
    cli_cfg *cfg;
    source src;
    /* the request every URL shares */
    const char *method;
    ag_header *headers;
    size_t nheaders;
    ag_tls_opts tls;
    int out_mode;
    cli_out *out;
    cli_wo *wo;
    cli_trace *trace[3]; /* -v, --trace, --trace-ascii */
    cli_har *har;
    bool want_heads; /* keep the final heads for HAR */
    /* credentials: -u split in two, or the text of the .netrc file to search per URL */
    char *username, *password;
    char *netrc_text;
    /* -T: the file (an fd shared by every request, read with pread), or a stream read once
     * (stdin, a pipe) for the one request of the run */
    int upload_fd;
    uint64_t upload_len;
    bool upload_stream;
    const char *upload_name; /* for the URL; NULL for stdin */
    ag_form *form;           /* -F, built once, sent by every request */
    ag_cookie_jar *jar;      /* -b FILE, -c: one for every thread's client */
    pthread_mutex_t stdout_mu;
    pthread_mutex_t stderr_mu; /* error messages and the progress line */
    bool progress;             /* a progress line is on stderr */
    /* counters */
    atomic_uint_fast64_t done, failed, shown_errors;
    atomic_int stop;         /* 1: start no new request */
    atomic_int epipe;        /* stdout is gone: end quietly */
    atomic_int write_failed; /* output could not be written: exit 23 */
    atomic_int setup_failed; /* a URL file could not be read (26), a client not made (2) */
    pthread_mutex_t exit_mu;
    pthread_cond_t finished_cv; /* a thread finished (under exit_mu) */
    uint64_t exit_urlnum;
    int exit_code;
    unsigned nthreads;
    thr *threads;
    int64_t start_ns;
} run;

struct thr {
    run *R;
    unsigned index;
    unsigned cap;      /* requests in flight at most on this thread */
    unsigned host_cap; /* its share of --parallel-host, 0: none given */
    _Atomic(ag_loop *) loop;
    ag_client *client;
    cli_summary *sum;
    struct worker *workers;
    ag_timer grace;
    bool stopping;
    int64_t next_due, step; /* --rate */
    pthread_t th;
    atomic_int finished;
    int setup_error;
};

/* A coroutine taking URLs one after the other. */
struct worker {
    thr *T;
    ag_coro *co;
    bool busy; /* in a request (else waiting for the next URL or its due time) */
};

/* One request in flight: what the trace hook needs to tell it apart. */
typedef struct reqctx {
    run *R;
    uint64_t urlnum;
    char *head_out, *head_in; /* the final exchange's heads, for HAR */
    size_t head_out_len, head_in_len;
} reqctx;

static run *the_run; /* for the signal handler */
static volatile sig_atomic_t interrupts;
static volatile sig_atomic_t stop_signal; /* the first: 130 for SIGINT, 143 for SIGTERM */

static void keep_copy(char **dst, size_t *dlen, const char *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (!c)
        return;
    memcpy(c, p, n);
    free(*dst);
    *dst = c;
    *dlen = n;
}

static void on_trace(void *arg, const ag_trace_event *ev)
{
    run *R = arg;
    reqctx *q = ev->user;
    uint64_t urlnum = q ? q->urlnum : UINT64_MAX;
    for (int i = 0; i < 3; i++)
        if (R->trace[i])
            cli_trace_event(R->trace[i], urlnum, ev);
    if (!q || !R->want_heads)
        return;
    if (ev->kind == AG_TRACE_HEAD_OUT) {
        keep_copy(&q->head_out, &q->head_out_len, ev->data, ev->len);
    } else if (ev->kind == AG_TRACE_HEAD_IN) {
        /* An interim response is not the answer. */
        bool interim = ev->len > 9 && ev->data[9] == '1';
        if (!interim)
            keep_copy(&q->head_in, &q->head_in_len, ev->data, ev->len);
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A non-blocking stdout (shared with another process): wait until it takes more. */
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return false;
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Output that cannot be written ends the run: quietly for a reader that went away (EPIPE),
 * with curl's 23 for anything else (a full disk). */
static void output_failed(run *R, int e)
{
    if (e == EPIPE)
        atomic_store(&R->epipe, 1);
    else
        atomic_store(&R->write_failed, 1);
    atomic_store(&R->stop, 1);
}

static void out_stdout(run *R, const char *p, size_t n)
{
    if (atomic_load(&R->epipe))
        return;
    /* Under the bodies' lock when they go to stdout too. */
    if (R->out)
        cli_out_lock(R->out);
    else
        pthread_mutex_lock(&R->stdout_mu);
    bool ok = write_all(1, p, n);
    int e = errno;
    if (R->out)
        cli_out_unlock(R->out);
    else
        pthread_mutex_unlock(&R->stdout_mu);
    if (!ok)
        output_failed(R, e);
}

static bool idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* Retry-After in milliseconds (seconds or an HTTP date), -1 when absent or unreadable. */
static int64_t retry_after_ms(const ag_response *resp)
{
    const char *v = resp ? ag_response_header(resp, "Retry-After") : NULL;
    if (!v)
        return -1;
    char *end;
    errno = 0;
    long long s = strtoll(v, &end, 10);
    if (end != v && *end == 0 && s >= 0 && errno == 0)
        return s > 86400 ? 86400000 : s * 1000;
    struct tm tm = {0};
    const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e)
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t ms = at > now ? at - now : 0;
    return ms > 86400000 ? 86400000 : ms; /* a day at most, as for seconds */
}

/* A status --fail fails on: 4xx and 5xx, and a code outside 100-599 (000 never arrives: the
 * library refuses it), which the library delivers as sent and RFC 9110 section 15 says to treat
 * as a 5xx. */
static bool http_error(int status)
{
    return status >= 400 || (status > 0 && status < 100);
}

/* The codes the library follows when a Location names something (301, 302, 303, 307, 308): a
 * 300 or an unknown 3xx is the answer, not a redirect left unfollowed. */
static bool followed_status(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A Location the library would follow: not empty nor white space only. */
static bool location_given(const char *value)
{
    return value && value[strspn(value, " \t")] != '\0';
}

static bool transient(const cli_cfg *cfg, int err, int status)
{
    if (cfg->retry_all_errors)
        return err < 0 || http_error(status);
    switch (err) {
    case AG_EDNS_TIMEOUT:
    case AG_ECONNECT_TIMEOUT:
    case AG_EPOOL_TIMEOUT:
    case AG_EIDLE_TIMEOUT:
    case AG_ETOTAL_TIMEOUT:
        return true;
    case -ECONNREFUSED:
        return cfg->retry_connrefused;
    case 0:
        return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
               status == 504;
    default:
        return false;
    }
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: jitter only, no need for more. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* "1.2.3.4:80" or "[::1]:80" into its address and port. */
static void split_peer(const char *peer, char *ip, size_t iplen, int *port)
{
    ip[0] = 0;
    *port = 0;
    if (!peer || !*peer)
        return;
    /* A Unix socket ("unix:/path", "unix:@name") has no address or port, as in curl. */
    if (strncmp(peer, "unix:", 5) == 0)
        return;
    const char *colon = strrchr(peer, ':');
    if (!colon)
        return;
    const char *a = peer, *b = colon;
    if (*a == '[' && b > a && b[-1] == ']') {
        a++;
        b--;
    }
    size_t n = (size_t)(b - a);
    if (n >= iplen)
        n = iplen - 1;
    memcpy(ip, a, n);
    ip[n] = 0;
    *port = atoi(colon + 1);
}

static int64_t pick(int64_t v, int64_t prev)
{
    return v ? v : prev;
}

/* The result of one request, from its final response (resp may be NULL: out of memory, or a
 * cancel during a retry's wait). Strings point into resp, the item and the buffers given. */
static void make_result(cli_result *r, const run *R, const item *it, const ag_response *resp,
                        int err, int64_t t0, unsigned attempts, char (*ip)[64], char *msg,
                        size_t msglen, ag_tls_info *ti)
{
    const cli_cfg *cfg = R->cfg;
    memset(r, 0, sizeof *r);
    r->urlnum = it->urlnum;
    r->url = it->url;
    r->method = R->method;
    r->attempts = attempts;
    r->error = err;
    r->resp = resp;
    r->remote_ip = "";
    r->local_ip = "";
    int64_t now = ag_now_ns();
    bool sent = false;
    if (resp) {
        ag_timings t;
        ag_response_timings(resp, &t);
        /* The library's wall clock at the final try's start, moved back to t0. */
        r->start_wall_ns = t.wall_start - (t.start - t0);
        sent = t.sent != 0 || t.first_byte != 0;
        int64_t q = pick(t.queued, t.start);
        int64_t dns = pick(t.dns, q);
        int64_t con = pick(t.connected, dns);
        int64_t pre = pick(t.tls, con);
        int64_t first = pick(t.first_byte, pick(t.sent, pre));
        int64_t done = pick(t.done, now);
        r->time_queue = q - t0;
        r->time_namelookup = dns - t0;
        r->time_connect = con - t0;
        r->time_appconnect = t.tls ? t.tls - t0 : 0;
        r->time_pretransfer = pre - t0;
        r->time_starttransfer = first - t0;
        r->time_total = done - t0;
        r->time_sent = t.sent ? t.sent - t0 : 0;
        r->http_code = ag_response_status(resp);
        r->size_download = ag_response_body_bytes(resp);
        r->size_decoded = ag_response_decoded_bytes(resp);
        r->size_header = ag_response_header_bytes(resp);
        r->num_connects = ag_response_connects(resp);
        r->num_redirects = ag_response_redirects(resp);
        r->conn_id = ag_response_conn_id(resp);
        r->reused = ag_response_reused(resp);
        const char *eff = ag_response_url(resp);
        r->url_effective = eff && *eff ? eff : it->url;
        r->content_type = ag_response_header(resp, "Content-Type");
        split_peer(ag_response_peer(resp), ip[0], sizeof ip[0], &r->remote_port);
        r->remote_ip = ip[0];
        split_peer(ag_response_local(resp), ip[1], sizeof ip[1], &r->local_port);
        r->local_ip = ip[1];
        if (ag_response_tls(resp, ti) == 0) {
            r->tls_version = ti->version;
            r->tls_resumed = ti->resumed;
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->start_wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (now - t0);
        r->url_effective = it->url;
        r->time_queue = r->time_namelookup = r->time_connect = r->time_pretransfer =
            r->time_starttransfer = r->time_total = now - t0;
    }
    r->exitcode = cli_exitcode(err, sent);
    if (err < 0) {
        /* The detail names the failure and where; the code's text alone when there is none. */
        const char *detail = resp ? ag_response_error_detail(resp) : "";
        snprintf(msg, msglen, "%s", *detail ? detail : ag_strerror(err));
        r->errormsg = msg;
    } else if (cfg->fail || cfg->fail_with_body) {
        if (http_error(r->http_code)) {
            r->exitcode = 22;
            snprintf(msg, msglen, "The requested URL returned error: %d", r->http_code);
            r->errormsg = msg;
        }
    }
    if (err == 0 && cfg->follow && cfg->max_redirs == 0 && followed_status(r->http_code) && resp &&
        location_given(ag_response_header(resp, "Location"))) {
        r->exitcode = 47;
        snprintf(msg, msglen, "Maximum (0) redirects followed");
        r->errormsg = msg;
    }
}

/* The -i head: the final response's status line and fields as parsed. */
static void include_head(cli_buf *b, const ag_response *resp)
{
    cli_buf_printf(b, "HTTP/1.%d %03d %s\r\n", ag_response_http_minor(resp),
                   ag_response_status(resp), ag_response_reason(resp));
    size_t n = ag_response_header_count(resp);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        if (ag_response_header_at(resp, i, &name, &value) == 0)
            cli_buf_printf(b, "%s: %s\r\n", name, value);
    }
    cli_buf_puts(b, "\r\n");
}

/* Text for the terminal: bytes outside printable ASCII as \xNN, so that a URL or a server's
 * words cannot move the cursor, retitle or clear the user's terminal. */
static void put_printable(cli_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            cli_buf_putc(b, (char)c);
        else
            cli_buf_printf(b, "\\x%02x", c);
    }
}

static void note_exit(run *R, uint64_t urlnum, int code)
{
    pthread_mutex_lock(&R->exit_mu);
    if (code && (R->exit_code == 0 || urlnum < R->exit_urlnum)) {
        R->exit_code = code;
        R->exit_urlnum = urlnum;
    }
    pthread_mutex_unlock(&R->exit_mu);
}

/* -T from a stream: read as the request sends it. A blocking read on the loop's thread, which
 * has nothing else to do: the run has this one request. */
static ptrdiff_t read_upload(void *arg, void *buf, size_t cap)
{
    int fd = *(int *)arg;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        return -1;
    }
}

/* One URL: the request, its retries, and everything recorded of it. */
static void do_request(thr *T, item *it, int64_t t0, cli_buf *line)
{
    run *R = T->R;
    const cli_cfg *cfg = R->cfg;
    reqctx q = {.R = R, .urlnum = it->urlnum};
    ag_request req;
    ag_request_init(&req);
    req.method = R->method;
    req.url = it->url;
    req.headers = R->headers;
    req.nheaders = R->nheaders;
    if (cfg->has_data) {
        req.body_kind = AG_BODY_MEMORY;
        req.body = cfg->data;
        req.body_len = cfg->data_len;
    } else if (R->upload_stream) {
        req.body_kind = AG_BODY_READER;
        req.body_read = read_upload;
        req.body_read_arg = &R->upload_fd;
    } else if (R->upload_fd >= 0) {
        req.body_kind = AG_BODY_FILE;
        req.body_fd = R->upload_fd;
        req.body_len = R->upload_len;
    } else if (R->form) {
        req.body_kind = AG_BODY_FORM;
        req.form = R->form;
    }
    cli_buf upload_url = {0};
    if (R->upload_name && !it->bad && cli_upload_url(it->url, R->upload_name, &upload_url) > 0)
        req.url = upload_url.p;
    char *netrc_login = NULL, *netrc_password = NULL;
    if (cfg->bearer) {
        req.bearer = cfg->bearer;
    } else if (R->username) {
        req.username = R->username;
        req.password = R->password;
    } else if (R->netrc_text && !it->bad) {
        /* The URL's own credentials come first; .netrc answers for its host otherwise. */
        char host[256];
        bool userinfo;
        if (cli_url_host(req.url, host, sizeof host, &userinfo) == 0 && !userinfo &&
            cli_netrc_find(R->netrc_text, host, &netrc_login, &netrc_password) == 1) {
            req.username = netrc_login;
            req.password = netrc_password;
        }
    }
    req.timeout_ms = cfg->max_time_ms;
    req.no_redirects = !cfg->follow || cfg->max_redirs == 0;
    req.user = &q;

    bool may_retry = cfg->retry > 0 && (cfg->retry_all_methods || idempotent(R->method));
    uint64_t seed = (uint64_t)ag_now_ns() ^ (it->urlnum * 0x9E3779B97F4A7C15ULL);
    int64_t first_ns = ag_now_ns();
    unsigned attempts = it->bad ? 1 : 0;
    ag_response *resp = NULL;
    cli_sink *sink = NULL;
    int err = 0;
    unsigned earlier_connects = 0; /* of the tries before the last */
    for (;;) {
        if (it->bad) {
            err = AG_EURL; /* a malformed glob: nothing to request */
            break;
        }
        attempts++;
        sink = NULL;
        if (R->out_mode != CLI_OUT_DISCARD) {
            err = cli_sink_open(R->out, it->url, it->urlnum, &sink);
            if (err < 0) {
                sink = NULL;
                err = AG_ESINK;
                break;
            }
        }
        req.sink = sink ? AG_SINK_CALLBACK : AG_SINK_DISCARD;
        req.on_body = sink ? cli_sink_write : NULL;
        req.on_body_arg = sink;
        err = ag_fetch(T->client, &req, &resp);
        if (!may_retry || attempts > cfg->retry || atomic_load(&R->stop) ||
            !transient(cfg, err, resp ? ag_response_status(resp) : 0))
            break;
        int64_t delay = retry_after_ms(resp);
        if (delay < 0) {
            if (cfg->retry_delay_ms) {
                delay = cfg->retry_delay_ms;
            } else {
                /* Exponential from a second, up to ten minutes, with full jitter over the
                 * upper half so that many clients do not come back in step. */
                delay = RETRY_FIRST_MS;
                for (unsigned k = 1; k < attempts && delay < RETRY_CAP_MS; k++)
                    delay *= 2;
                if (delay > RETRY_CAP_MS)
                    delay = RETRY_CAP_MS;
                delay = delay / 2 + (int64_t)(rng_next(&seed) % (uint64_t)(delay / 2 + 1));
            }
        }
        if (cfg->retry_max_time_ms &&
            (ag_now_ns() - first_ns) / 1000000 + delay > cfg->retry_max_time_ms)
            break;
        cli_sink_close(sink, false);
        sink = NULL;
        earlier_connects += ag_response_connects(resp);
        ag_response_free(resp);
        resp = NULL;
        if (ag_sleep_ms(delay) < 0) {
            err = -ECANCELED;
            break;
        }
    }

    char ip[2][64], msg[320]; /* the remote and the local address */
    ag_tls_info ti;
    cli_result r;
    make_result(&r, R, it, resp, err, t0, attempts, ip, msg, sizeof msg, &ti);
    r.num_connects += earlier_connects;
    if (it->bad) {
        snprintf(msg, sizeof msg, "bad URL glob: %s", it->bad);
        r.errormsg = msg;
    }

    /* The body: kept unless it failed, or --fail says a 4xx or 5xx has none. */
    bool keep = err == 0 && !(cfg->fail && !cfg->fail_with_body && http_error(r.http_code));
    cli_buf_reset(line);
    if (keep && sink && cfg->include && resp) {
        include_head(line, resp);
        cli_sink_head(sink, line->p, line->len);
        cli_buf_reset(line);
    }
    if (R->wo) {
        cli_wo_render(R->wo, &r, line);
        if (keep && sink && R->out_mode == CLI_OUT_STDOUT) {
            /* After its body, in the same write: never separated by another body. */
            cli_sink_write(sink, line->p, line->len);
            cli_buf_reset(line);
        }
    }
    int wrc = cli_sink_close(sink, keep);
    if (wrc < 0) {
        /* The body did not reach its place: the request failed (curl's 23), and the run
         * stops, since the output is broken for every other request too. */
        output_failed(R, -wrc);
        if (wrc != -EPIPE && !r.exitcode) {
            r.exitcode = 23;
            r.error = AG_ESINK;
            snprintf(msg, sizeof msg, "cannot write the body: %s", strerror(-wrc));
            r.errormsg = msg;
        }
    }
    if (cfg->jsonl) {
        cli_result_json(line, &r);
        cli_buf_putc(line, '\n');
    }
    if (line->len)
        out_stdout(R, line->p, line->len);
    cli_summary_add(T->sum, &r);
    if (R->trace[0])
        cli_trace_done(R->trace[0], &r);
    if (R->har)
        cli_har_add(R->har, &r, q.head_out, q.head_out_len, q.head_in, q.head_in_len);
    if (r.exitcode) {
        atomic_fetch_add(&R->failed, 1);
        /* What Ctrl-C cancelled did not fail: the run exits 130 unless something else did. */
        if (!(err == -ECANCELED && interrupts))
            note_exit(R, it->urlnum, r.exitcode);
        bool show = cfg->show_error || !cfg->silent;
        if (show && err != -ECANCELED && !atomic_load(&R->epipe) &&
            atomic_fetch_add(&R->shown_errors, 1) < ERRORS_SHOWN) {
            /* Over the progress line, which the next redraw puts back under it. */
            cli_buf_reset(line);
            cli_buf_printf(line, "%sasyncget: (%d) ", R->progress ? "\r\033[K" : "", r.exitcode);
            put_printable(line, it->url);
            cli_buf_puts(line, ": ");
            put_printable(line, r.errormsg ? r.errormsg : "failed");
            cli_buf_putc(line, '\n');
            pthread_mutex_lock(&R->stderr_mu);
            if (!line->oom)
                write_all(2, line->p, line->len);
            pthread_mutex_unlock(&R->stderr_mu);
        }
    }
    atomic_fetch_add(&R->done, 1);
    free(q.head_out);
    free(q.head_in);
    free(netrc_login);
    free(netrc_password);
    cli_buf_free(&upload_url);
    ag_response_free(resp);
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    thr *T = w->T;
    run *R = T->R;
    cli_buf line = {0};
    for (;;) {
        if (atomic_load(&R->stop) || T->stopping)
            break;
        /* Open loop (--rate): every request has its due time, whether or not a slot is free
         * then, and its times count from there. None is due after --duration. */
        int64_t t0 = T->next_due;
        if (T->step && R->src.deadline >= 0 && t0 >= R->src.deadline)
            break;
        item it;
        int rc = source_next(&R->src, &it);
        if (rc == SRC_END)
            break;
        if (rc == SRC_AGAIN) {
            if (ag_sleep_ms(1) < 0)
                break;
            continue;
        }
        if (T->step) {
            if (T->next_due > INT64_MAX - T->step)
                T->step = 0; /* past the end of time: what is left goes as fast as it can */
            else
                T->next_due += T->step;
            /* A request not yet due when the run stops was never made: it is not recorded. */
            if (ag_sleep_until(t0) < 0 || atomic_load(&R->stop)) {
                free(it.url);
                free(it.bad);
                break;
            }
        } else {
            t0 = ag_now_ns();
        }
        w->busy = true;
        do_request(T, &it, t0, &line);
        w->busy = false;
        free(it.url);
        free(it.bad);
    }
    cli_buf_free(&line);
}

static void grace_over(ag_timer *tm, void *arg)
{
    thr *T = arg;
    for (unsigned i = 0; i < T->cap; i++)
        if (T->workers[i].co && !ag_coro_done(T->workers[i].co))
            ag_coro_cancel(T->workers[i].co);
}

static void on_wake(ag_loop *loop, void *arg)
{
    thr *T = arg;
    if (!atomic_load(&T->R->stop) || T->stopping)
        return;
    T->stopping = true;
    /* Workers between requests stop now; requests in flight get a moment to finish, then are
     * cancelled. */
    bool busy = false;
    for (unsigned i = 0; i < T->cap; i++) {
        struct worker *w = &T->workers[i];
        if (!w->co || ag_coro_done(w->co))
            continue;
        if (w->busy)
            busy = true;
        else
            ag_coro_cancel(w->co);
    }
    if (busy)
        ag_timer_start(loop, &T->grace, ag_now_ns() + GRACE_NS);
}

/* The client of a thread that runs cap requests at once, host_cap connections per host (0: as
 * many as it runs). */
static void client_opts(run *R, unsigned cap, unsigned host_cap, ag_loop *loop, ag_client_opts *op)
{
    const cli_cfg *cfg = R->cfg;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns = cap > 1024 ? cap : 1024;
    o.max_conns_per_host = host_cap ? host_cap : (cap > 256 ? cap : 256);
    o.max_connecting = cap > 256 ? cap : 256;
    o.connect_timeout_ms = cfg->connect_timeout_ms;
    o.user_agent = cfg->user_agent;
    o.dns_servers = cfg->dns_servers;
    o.ip_family = cfg->ip_family;
    o.resolve = cfg->resolve.v;
    o.connect_to = cfg->connect_to.v;
    o.tls = &R->tls;
    if (cfg->max_redirs > 0)
        o.max_redirects = (unsigned)cfg->max_redirs;
    o.location_trusted = cfg->location_trusted;
    o.unix_socket = cfg->unix_socket;
    o.unix_socket_abstract = cfg->unix_abstract;
    o.compressed = cfg->compressed;
    o.cookie_jar = R->jar;
    if (R->trace[0] || R->trace[1] || R->trace[2] || R->want_heads) {
        o.trace = on_trace;
        o.trace_arg = R;
    }
    *op = o;
}

static void *thread_main(void *arg)
{
    thr *T = arg;
    run *R = T->R;
    const cli_cfg *cfg = R->cfg;
    ag_loop *loop;
    int rc = ag_loop_new(&loop, NULL);
    if (rc < 0) {
        T->setup_error = rc;
        atomic_store(&T->finished, 1);
        return NULL;
    }
    ag_client_opts o;
    client_opts(R, T->cap, T->host_cap, loop, &o);
    rc = ag_client_new(&T->client, &o);
    if (rc < 0) {
        T->setup_error = rc;
        ag_loop_free(loop);
        atomic_store(&T->finished, 1);
        return NULL;
    }
    ag_timer_init(&T->grace, grace_over, T);
    ag_loop_on_wake(loop, on_wake, T);
    atomic_store(&T->loop, loop);
    if (cfg->rate_interval_ns) {
        T->step = cfg->rate_interval_ns * (int64_t)R->nthreads;
        T->next_due = R->start_ns + cfg->rate_interval_ns * (int64_t)T->index;
    }
    for (unsigned i = 0; i < T->cap; i++) {
        T->workers[i].T = T;
        if (ag_coro_spawn(loop, worker_main, &T->workers[i], &T->workers[i].co) < 0)
            T->workers[i].co = NULL;
    }
    /* A stop that came before the loop was known: the wake found nothing to wake. */
    if (atomic_load(&R->stop))
        ag_loop_wake(loop);
    ag_loop_run(loop);
    ag_timer_stop(loop, &T->grace);
    for (unsigned i = 0; i < T->cap; i++)
        if (T->workers[i].co)
            ag_coro_unref(T->workers[i].co);
    ag_dns_stats ds;
    if (ag_client_dns_stats(T->client, &ds) == 0)
        cli_summary_dns(T->sum, ds.cache_hits, ds.queries);
    atomic_store(&T->loop, NULL);
    ag_client_free(T->client);
    ag_loop_free(loop);
    pthread_mutex_lock(&R->exit_mu);
    atomic_store(&T->finished, 1);
    pthread_cond_signal(&R->finished_cv);
    pthread_mutex_unlock(&R->exit_mu);
    return NULL;
}

/* ---- signals ---- */

static void on_sigint(int sig)
{
    run *R = the_run;
    if (!stop_signal)
        stop_signal = sig;
    if (++interrupts > 1) {
        /* The second Ctrl-C: out now, without a half-written file under a final name. */
        if (R && R->out)
            cli_out_remove_temps(R->out);
        _exit(128 + sig);
    }
    if (!R)
        return;
    atomic_store(&R->stop, 1);
    for (unsigned i = 0; i < R->nthreads; i++) {
        ag_loop *l = atomic_load(&R->threads[i].loop);
        if (l)
            ag_loop_wake(l);
    }
}

/* ---- setting up ---- */

/* Raise the soft limit to the hard one. A request's socket needs no room kept: the library
 * queues a connection that finds no free descriptor until one of its own is released. What the
 * command opens itself per request in flight does (the file of -O, or the buffer of a body
 * bound for standard output), besides a few for the rest of the process: lower --parallel-max
 * to what fits rather than failing with EMFILE midway. */
static unsigned fit_fd_limit(const cli_cfg *cfg, unsigned want, unsigned threads)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    uint64_t per = cfg->remote_name || cfg->output == NULL ? 1 : 0;
    if (per == 0)
        return want;
    uint64_t reserve = 64 + 16 * (uint64_t)threads;
    uint64_t limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
    uint64_t fit = limit > reserve ? (limit - reserve) / per : 1;
    if (fit < 1)
        fit = 1;
    if (want <= fit)
        return want;
    if (!cfg->silent)
        fprintf(stderr,
                "asyncget: --parallel-max lowered from %u to %llu: the open-file limit is %llu\n",
                want, (unsigned long long)fit, (unsigned long long)limit);
    return (unsigned)fit;
}

static int parse_headers(run *R, const cli_cfg *cfg)
{
    size_t extra = cfg->referer ? 1 : 0;
    extra += cfg->cookies.n ? 1 : 0;
    extra += cfg->json ? 2 : 0;
    extra += cfg->data_form ? 1 : 0;
    R->headers = calloc(cfg->headers.n + extra + 1, sizeof *R->headers);
    if (!R->headers)
        return -ENOMEM;
    bool have_ct = false, have_accept = false;
    for (size_t i = 0; i < cfg->headers.n; i++) {
        const char *h = cfg->headers.v[i];
        const char *colon = strchr(h, ':');
        const char *semi = strchr(h, ';');
        char *name, *value;
        if (colon && (!semi || colon < semi)) {
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (!*v)
                continue; /* "Name:" asks curl to drop a header of its own: nothing to send */
            name = strndup(h, (size_t)(colon - h));
            value = strdup(v);
        } else if (semi && semi[1] == 0) {
            name = strndup(h, (size_t)(semi - h)); /* "Name;": the header, empty */
            value = strdup("");
        } else {
            fprintf(stderr, "asyncget: -H %s: not \"Name: value\"\n", h);
            return -EINVAL;
        }
        if (!name || !value)
            return -ENOMEM;
        if (strcasecmp(name, "Content-Type") == 0)
            have_ct = true;
        if (strcasecmp(name, "Accept") == 0)
            have_accept = true;
        R->headers[R->nheaders++] = (ag_header){name, value};
    }
    if (cfg->referer)
        R->headers[R->nheaders++] = (ag_header){strdup("Referer"), strdup(cfg->referer)};
    if (cfg->cookies.n) {
        /* -b NAME=VALUE: one Cookie field, the strings joined with "; " as curl joins them, after
         * the value of a Cookie field of -H when there is one. */
        cli_buf b = {0};
        ag_header *own = NULL;
        for (size_t i = 0; i < R->nheaders; i++)
            if (strcasecmp(R->headers[i].name, "Cookie") == 0)
                own = &R->headers[i];
        if (own)
            cli_buf_puts(&b, own->value);
        for (size_t i = 0; i < cfg->cookies.n; i++) {
            if (b.len)
                cli_buf_puts(&b, "; ");
            cli_buf_puts(&b, cfg->cookies.v[i]);
        }
        if (b.oom || !b.p) {
            cli_buf_free(&b);
            return -ENOMEM;
        }
        if (own) {
            free((char *)own->value);
            own->value = b.p;
        } else {
            R->headers[R->nheaders++] = (ag_header){strdup("Cookie"), b.p};
        }
    }
    if (cfg->json && !have_ct)
        R->headers[R->nheaders++] = (ag_header){strdup("Content-Type"), strdup("application/json")};
    else if (cfg->data_form && !have_ct)
        R->headers[R->nheaders++] =
            (ag_header){strdup("Content-Type"), strdup("application/x-www-form-urlencoded")};
    if (cfg->json && !have_accept)
        R->headers[R->nheaders++] = (ag_header){strdup("Accept"), strdup("application/json")};
    for (size_t i = 0; i < R->nheaders; i++)
        if (!R->headers[i].name || !R->headers[i].value)
            return -ENOMEM;
    return 0;
}

static void free_headers(run *R)
{
    for (size_t i = 0; R->headers && i < R->nheaders; i++) {
        free((char *)R->headers[i].name);
        free((char *)R->headers[i].value);
    }
    free(R->headers);
}

/* Requests the list names, when known before the run: 0 when not (URL files, --duration). */
static uint64_t count_requests(const cli_cfg *cfg, int *bad)
{
    uint64_t n = 0;
    *bad = 0;
    for (size_t i = 0; i < cfg->urls.n; i++) {
        if (cfg->globoff) {
            n++;
            continue;
        }
        cli_glob *g;
        char err[160];
        if (cli_glob_new(cfg->urls.v[i], &g, err, sizeof err) < 0) {
            (*bad)++;
            n++;
            continue;
        }
        uint64_t c = cli_glob_count(g);
        cli_glob_free(g);
        n = c > UINT64_MAX - n ? UINT64_MAX : n + c;
    }
    if (cfg->url_files.n || cfg->duration_ns)
        return 0;
    uint64_t rounds = cfg->repeat ? cfg->repeat : 1;
    return n && rounds > UINT64_MAX / n ? UINT64_MAX : n * rounds;
}

/* -u, and the .netrc file when neither -u nor --oauth2-bearer gives the credentials: read once
 * (curl's --netrc fails on a missing or malformed file, exit 26; --netrc-optional goes on
 * without it). 0 or the exit code. */
static int setup_credentials(run *R, const cli_cfg *cfg)
{
    if (cfg->user) {
        /* USER:PASSWORD at the first ':'; without one, an empty password (curl would prompt). */
        const char *colon = strchr(cfg->user, ':');
        R->username = colon ? strndup(cfg->user, (size_t)(colon - cfg->user)) : strdup(cfg->user);
        R->password = strdup(colon ? colon + 1 : "");
        return R->username && R->password ? 0 : 27;
    }
    if (!cfg->netrc || cfg->bearer)
        return 0;
    char *path = NULL;
    int rc = cfg->netrc_file ? ((path = strdup(cfg->netrc_file)) ? 0 : -ENOMEM)
                             : cli_netrc_default_path(&path);
    if (rc == 0)
        rc = cli_netrc_read(path, &R->netrc_text);
    if (rc == 0) {
        /* A search for a host no entry names reads the whole file: a syntax error shows. */
        char *l = NULL, *p = NULL;
        rc = cli_netrc_find(R->netrc_text, "\x01", &l, &p);
        free(l);
        free(p);
        if (rc == -EINVAL) {
            free(R->netrc_text);
            R->netrc_text = NULL;
        }
    }
    int code = 0;
    if (rc == -ENOMEM) {
        code = 27;
    } else if (rc < 0 && cfg->netrc == CLI_NETRC_REQUIRED) {
        fprintf(stderr, "asyncget: .netrc error: %s: %s\n", path ? path : "~/.netrc",
                rc == -EINVAL   ? "syntax error"
                : rc == -ENOENT ? "no such file"
                                : strerror(-rc));
        code = 26;
    }
    free(path);
    return code;
}

/* -T FILE: a regular file is opened once and read by every request with pread; stdin or another
 * stream can be read once only, so it serves a run of one request. 0 or the exit code. */
static int setup_upload(run *R, const cli_cfg *cfg, uint64_t total)
{
    if (!cfg->upload)
        return 0;
    bool std_in = strcmp(cfg->upload, "-") == 0;
    int fd = std_in ? 0 : open(cfg->upload, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "asyncget: -T: cannot read %s: %s\n", cfg->upload, strerror(errno));
        if (fd > 2)
            close(fd);
        return 26;
    }
    R->upload_fd = fd;
    R->upload_name = std_in ? NULL : cfg->upload;
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "asyncget: -T: cannot read %s: %s\n", cfg->upload, strerror(EISDIR));
        return 26;
    }
    if (S_ISREG(st.st_mode) && !std_in) {
        R->upload_len = (uint64_t)st.st_size;
        return 0;
    }
    R->upload_stream = true;
    if (total != 1) {
        fprintf(stderr,
                "asyncget: -T %s is read once, as it comes: it serves one URL only (give "
                "a regular file to upload to several)\n",
                cfg->upload);
        return 2;
    }
    return 0;
}

/* -F: one form for the run, its parts in the order given. A file part is opened now and read
 * as each request sends it; a part from stdin, or a field read from a file (<), is read into
 * memory now. 0 or the exit code (26: a file that cannot be read). */
static int setup_form(run *R, const cli_cfg *cfg)
{
    if (!cfg->nforms)
        return 0;
    int rc = ag_form_new(&R->form);
    if (rc < 0)
        return 27;
    for (size_t i = 0; i < cfg->nforms; i++) {
        const cli_form_arg *a = &cfg->forms[i];
        const char *what = a->value;
        if (a->kind == CLI_FORM_TEXT) {
            rc = ag_form_add(R->form, a->name, a->value, strlen(a->value), a->filename, a->type);
        } else if (a->kind == CLI_FORM_FILE && strcmp(a->value, "-") != 0) {
            const char *name = a->filename ? a->filename : a->value;
            rc = ag_form_add_file(R->form, a->name, a->value, a->filename,
                                  a->type ? a->type : cli_form_guess_type(name));
        } else {
            cli_buf b = {0};
            rc = cli_read_all(a->value, &b);
            if (rc == 0) {
                /* A file part from stdin is named "-", as curl names it. */
                const char *fname = a->kind == CLI_FORM_FILE && !a->filename ? "-" : a->filename;
                const char *type = a->type;
                if (!type && a->kind == CLI_FORM_FILE)
                    type = cli_form_guess_type(fname);
                rc = ag_form_add(R->form, a->name, b.p ? b.p : "", b.len, fname, type);
            }
            cli_buf_free(&b);
        }
        if (rc == -ENOMEM)
            return 27;
        if (rc < 0) {
            bool file = a->kind != CLI_FORM_TEXT && rc != -EINVAL;
            fprintf(stderr, "asyncget: -F %s: %s%s%s\n", a->name, file ? "cannot read " : "",
                    file ? what : "", file ? "" : "refused (a content type with a control byte?)");
            if (file)
                fprintf(stderr, "asyncget: %s: %s\n", what, strerror(-rc));
            return rc == -EINVAL && a->kind == CLI_FORM_TEXT ? 2 : 26;
        }
    }
    return 0;
}

/* -b FILE and -c: one jar for the run. A cookie file that does not exist counts as empty, as in
 * curl (so -b '' turns the jar on); -j then drops the session cookies loaded. 0 or the exit
 * code. */
static int setup_cookies(run *R, const cli_cfg *cfg)
{
    if (!cfg->cookie_files.n && !cfg->cookie_jar)
        return 0;
    if (ag_cookie_jar_new(&R->jar) < 0)
        return 27;
    for (size_t i = 0; i < cfg->cookie_files.n; i++) {
        const char *f = cfg->cookie_files.v[i];
        if (!*f)
            continue;
        int rc = ag_cookie_jar_load(R->jar, strcmp(f, "-") == 0 ? "/dev/stdin" : f);
        if (rc == -ENOMEM)
            return 27;
        /* curl goes on without a file it cannot read; a missing one is no news. */
        if (rc < 0 && rc != -ENOENT && !cfg->silent)
            fprintf(stderr, "asyncget: warning: -b %s: %s\n", f, strerror(-rc));
    }
    if (cfg->junk_session)
        ag_cookie_jar_clear_session(R->jar);
    return 0;
}

/* -c FILE: the jar written at the end; "-" is stdout, after the bodies (the jar is written to a
 * private temporary file first, then copied). A failure is a warning, as in curl. */
static void save_cookies(run *R, const cli_cfg *cfg)
{
    const char *path = cfg->cookie_jar;
    char dir[] = "/tmp/asyncget-jar.XXXXXX";
    char tmp[sizeof dir + 8];
    bool to_stdout = strcmp(path, "-") == 0;
    /* The library renames a new file over path: over /dev/null, a FIFO, or a symlink such as
     * /dev/stdout that would put a regular file in the node's place (for everyone, when run as
     * root). Such a path gets the text written into it instead (through the link). */
    struct stat st;
    bool into = !to_stdout && lstat(path, &st) == 0 &&
                (S_ISLNK(st.st_mode) || (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)));
    int rc = 0;
    if (to_stdout || into) {
        if (!mkdtemp(dir)) {
            rc = -errno;
            goto done;
        }
        snprintf(tmp, sizeof tmp, "%s/jar", dir);
        path = tmp;
    }
    rc = ag_cookie_jar_save(R->jar, path);
    if (to_stdout || into) {
        cli_buf b = {0};
        if (rc == 0)
            rc = cli_read_all(tmp, &b);
        if (rc == 0 && to_stdout && b.len) {
            out_stdout(R, b.p, b.len);
        } else if (rc == 0 && into) {
            int fd = open(cfg->cookie_jar, O_WRONLY | O_TRUNC | O_CLOEXEC);
            if (fd < 0)
                rc = -errno;
            for (size_t off = 0; fd >= 0 && rc == 0 && off < b.len;) {
                ssize_t n = write(fd, b.p + off, b.len - off);
                if (n > 0)
                    off += (size_t)n;
                else if (n == 0 || errno != EINTR)
                    rc = n == 0 ? -EIO : -errno;
            }
            if (fd >= 0 && close(fd) < 0 && rc == 0)
                rc = -errno;
        }
        cli_buf_free(&b);
        unlink(tmp);
        rmdir(dir);
    }
done:
    if (rc < 0)
        fprintf(stderr, "asyncget: warning: failed to save cookies in %s: %s\n", cfg->cookie_jar,
                strerror(-rc));
}

/* The run lives in static storage: a URL file reader still blocked in a read of stdin when the
 * run ends keeps pointing at it. */
static run the_run_storage;

int cli_run(cli_cfg *cfg)
{
    run *R = &the_run_storage;
    R->cfg = cfg;
    char err[256];
    int code = 0;

    if (cfg->urls.n == 0 && cfg->url_files.n == 0) {
        fputs("asyncget: no URL specified\nasyncget: try 'asyncget --help' for more information\n",
              stderr);
        return 2;
    }
    R->method = cfg->method                    ? cfg->method
                : cfg->head                    ? "HEAD"
                : cfg->upload                  ? "PUT"
                : cfg->has_data || cfg->nforms ? "POST"
                                               : "GET";
    R->upload_fd = -1;
    if (parse_headers(R, cfg) < 0) {
        free_headers(R);
        return 2;
    }
    ag_tls_opts_init(&R->tls);
    R->tls.insecure = cfg->insecure;
    R->tls.ca_file = cfg->cacert;
    R->tls.ca_path = cfg->capath;
    R->tls.cert_file = cfg->cert;
    R->tls.key_file = cfg->key;

    int bad_globs;
    uint64_t total = count_requests(cfg, &bad_globs);
    code = setup_credentials(R, cfg);
    if (code)
        goto out;
    code = setup_upload(R, cfg, total);
    if (code)
        goto out;
    code = setup_form(R, cfg);
    if (code)
        goto out;
    code = setup_cookies(R, cfg);
    if (code)
        goto out;

    if (cfg->writeout && cli_wo_compile(cfg->writeout, &R->wo, err, sizeof err) < 0) {
        fprintf(stderr, "asyncget: -w: %s\n", err);
        code = 2;
        goto out;
    }
    if (R->wo && cli_wo_warning(R->wo) && !cfg->silent)
        fprintf(stderr, "asyncget: warning: %s\n", cli_wo_warning(R->wo));
    /* Everything that can refuse the run is checked before a file is opened (-o truncates):
     * -w, and the client's settings (--resolve, --connect-to, -A, ...), once here rather than
     * in every thread. */
    {
        ag_client_opts o;
        client_opts(R, 1, 1, NULL, &o);
        ag_client *probe;
        int rc = ag_client_new(&probe, &o);
        if (rc < 0) {
            fprintf(stderr,
                    "asyncget: the request settings are refused (%s): check --resolve, "
                    "--connect-to, --dns-servers, -A and the TLS options\n",
                    ag_strerror(rc));
            code = 2;
            goto out;
        }
        ag_client_free(probe);
    }

    R->out_mode = CLI_OUT_STDOUT;
    if (cfg->remote_name)
        R->out_mode = CLI_OUT_REMOTE;
    else if (cfg->output && strcmp(cfg->output, "/dev/null") == 0)
        R->out_mode = CLI_OUT_DISCARD;
    else if (cfg->output)
        R->out_mode = CLI_OUT_FILE;
    else if (cfg->jsonl || (cfg->har && strcmp(cfg->har, "-") == 0))
        R->out_mode = CLI_OUT_DISCARD; /* stdout carries the lines, or the archive */
    if (R->out_mode != CLI_OUT_DISCARD &&
        cli_out_new(&R->out, R->out_mode, cfg->output, cfg->output_dir, 0, err, sizeof err) < 0) {
        fprintf(stderr, "asyncget: %s\n", err);
        code = 23;
        goto out;
    }
    if (cfg->verbose && cli_trace_new(&R->trace[0], CLI_TRACE_VERBOSE, "-", err, sizeof err) < 0) {
        fprintf(stderr, "asyncget: -v: %s\n", err);
        code = 2;
        goto out;
    }
    if (cfg->verbose) {
        /* The bounds a stalled or trickling server meets, where -v shows the rest. */
        char each[32] = "none";
        if (cfg->max_time_ms)
            snprintf(each, sizeof each, "%g s", (double)cfg->max_time_ms / 1000);
        fprintf(stderr,
                "[0#-] * timeouts: each try %s, connect %g s, each wait for the server 60 s\n",
                each, (double)(cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 30000) / 1000);
    }
    if (cfg->trace && cli_trace_new(&R->trace[1], CLI_TRACE_HEX, cfg->trace, err, sizeof err) < 0) {
        fprintf(stderr, "asyncget: --trace: %s\n", err);
        code = 23;
        goto out;
    }
    if (cfg->trace_ascii &&
        cli_trace_new(&R->trace[2], CLI_TRACE_ASCII, cfg->trace_ascii, err, sizeof err) < 0) {
        fprintf(stderr, "asyncget: --trace-ascii: %s\n", err);
        code = 23;
        goto out;
    }
    if (cfg->har) {
        if (cli_har_open(&R->har, cfg->har, err, sizeof err) < 0) {
            fprintf(stderr, "asyncget: --har: %s\n", err);
            code = 23;
            goto out;
        }
        R->want_heads = true;
    }

    /* How many at once, per thread. */
    unsigned threads = cfg->threads ? cfg->threads : 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    unsigned pmax = cfg->parallel_max ? cfg->parallel_max : 100;
    if (total && total < pmax)
        pmax = (unsigned)total;
    pmax = fit_fd_limit(cfg, pmax, threads);
    if (threads > pmax)
        threads = pmax;
    /* --parallel-host is shared out among the threads, at least one connection each. */
    if (cfg->parallel_host && threads > cfg->parallel_host)
        threads = cfg->parallel_host;
    R->nthreads = threads;

    /* The list. */
    source *s = &R->src;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->fq.mu, NULL);
    pthread_cond_init(&s->fq.room, NULL);
    s->cfg = cfg;
    s->rounds = cfg->duration_ns ? UINT64_MAX : cfg->repeat ? cfg->repeat : 1;
    R->start_ns = ag_now_ns();
    s->deadline = cfg->duration_ns ? R->start_ns + cfg->duration_ns : -1;
    pthread_t reader;
    if (cfg->url_files.n) {
        s->fq.lines = calloc(FILE_QUEUE_CAP, sizeof *s->fq.lines);
        if (!s->fq.lines || pthread_create(&reader, NULL, file_reader, s) != 0) {
            fputs("asyncget: cannot start the URL file reader\n", stderr);
            code = 2;
            goto out;
        }
        /* It may block in a read of a list still being written: never joined, it ends with
         * the process when the run stops first. */
        pthread_detach(reader);
    }

    pthread_mutex_init(&R->stdout_mu, NULL);
    pthread_mutex_init(&R->stderr_mu, NULL);
    pthread_mutex_init(&R->exit_mu, NULL);
    pthread_cond_init(&R->finished_cv, NULL);
    R->threads = calloc(threads, sizeof *R->threads);
    if (!R->threads) {
        code = 27;
        goto out;
    }
    the_run = R;
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    /* A signal the caller ignores stays ignored (a shell's background job must not stop at the
     * Ctrl-C meant for its script). */
    int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);

    /* No progress line where it would run into other output: -v and traces on stderr, or
     * anything on a stdout that is a terminal too. */
    bool on_stdout = R->out_mode == CLI_OUT_STDOUT || cfg->jsonl || cfg->writeout ||
                     (cfg->output && strcmp(cfg->output, "-") == 0);
    cli_progress *prog =
        (cfg->silent || cfg->verbose || (cfg->trace && strcmp(cfg->trace, "-") == 0) ||
         (cfg->trace_ascii && strcmp(cfg->trace_ascii, "-") == 0) || (on_stdout && isatty(1)))
            ? NULL
            : cli_progress_new(2, total);
    R->progress = prog != NULL;
    unsigned started = 0;
    for (unsigned i = 0; i < threads; i++) {
        thr *T = &R->threads[i];
        T->R = R;
        T->index = i;
        T->cap = pmax / threads + (i < pmax % threads ? 1 : 0);
        T->host_cap = cfg->parallel_host ? cfg->parallel_host / threads +
                                               (i < cfg->parallel_host % threads ? 1 : 0)
                                         : 0;
        T->sum = cli_summary_new();
        T->workers = calloc(T->cap, sizeof *T->workers);
        if (!T->sum || !T->workers || pthread_create(&T->th, NULL, thread_main, T) != 0) {
            fputs("asyncget: cannot start a thread\n", stderr);
            atomic_store(&R->stop, 1);
            break;
        }
        started++;
    }
    /* The main thread draws the progress line while the others run. */
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < started; i++)
            all = all && atomic_load(&R->threads[i].finished);
        if (all)
            break;
        if (prog) {
            pthread_mutex_lock(&R->stderr_mu);
            cli_progress_update(prog, atomic_load(&R->done), atomic_load(&R->failed), ag_now_ns());
            pthread_mutex_unlock(&R->stderr_mu);
        }
        /* Woken when a thread ends, else every 100 ms for the progress line. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&R->exit_mu);
        bool any_left = false;
        for (unsigned i = 0; i < started; i++)
            any_left = any_left || !atomic_load(&R->threads[i].finished);
        if (any_left)
            pthread_cond_timedwait(&R->finished_cv, &R->exit_mu, &until);
        pthread_mutex_unlock(&R->exit_mu);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(R->threads[i].th, NULL);
    /* The jar is written however the run ended (Ctrl-C too), once its threads are over; a run
     * refused before it started leaves the file as it was. */
    if (R->jar && cfg->cookie_jar)
        save_cookies(R, cfg);
    int64_t wall = ag_now_ns() - R->start_ns;
    cli_progress_free(prog);
    source_stop(s);

    cli_summary *sum = cli_summary_new();
    for (unsigned i = 0; i < threads; i++) {
        thr *T = &R->threads[i];
        if (T->setup_error && !cfg->silent)
            fprintf(stderr, "asyncget: thread %u could not start: %s\n", i,
                    ag_strerror(T->setup_error));
        if (sum && T->sum)
            cli_summary_merge(sum, T->sum);
    }
    uint64_t done = atomic_load(&R->done);
    bool show_summary =
        cfg->summary > 0 || (cfg->summary == 0 && !cfg->silent && done > 1 && !R->epipe);
    if (sum && show_summary)
        cli_summary_print(sum, stderr, wall);
    if (sum && cfg->summary_json) {
        cli_buf b = {0};
        cli_summary_json(sum, &b, wall);
        cli_buf_putc(&b, '\n');
        FILE *f = fopen(cfg->summary_json, "w");
        bool ok = f && !b.oom && fwrite(b.p, 1, b.len, f) == b.len;
        if (f && fclose(f) != 0) /* where a buffered write fails */
            ok = false;
        f = NULL;
        if (!ok) {
            fprintf(stderr, "asyncget: --summary-json %s: cannot write\n", cfg->summary_json);
            if (!code)
                code = 23;
        }
        if (f)
            fclose(f);
        cli_buf_free(&b);
    }
    cli_summary_free(sum);
    for (unsigned i = 0; i < threads; i++) {
        cli_summary_free(R->threads[i].sum);
        free(R->threads[i].workers);
    }
    if (!code)
        code = R->exit_code;
    if (!code && atomic_load(&R->write_failed))
        code = 23;
    if (!code && atomic_load(&s->unreadable))
        code = 26;
    for (unsigned i = 0; i < threads && !code; i++)
        if (R->threads[i].setup_error)
            code = 2;
    if (interrupts && !code)
        code = 128 + stop_signal;
    if (R->epipe && !code)
        code = 23;
out:
    the_run = NULL;
    ag_cookie_jar_free(R->jar);
    ag_form_free(R->form);
    if (R->har && cli_har_close(R->har) < 0 && !code)
        code = 23;
    for (int i = 0; i < 3; i++)
        if (R->trace[i])
            cli_trace_free(R->trace[i]);
    cli_wo_free(R->wo);
    if (R->out)
        cli_out_free(R->out);
    free(R->threads);
    cli_buf_free(&R->src.gbuf);
    if (R->src.glob)
        cli_glob_free(R->src.glob);
    free_headers(R);
    free(R->username);
    free(R->password);
    free(R->netrc_text);
    if (R->upload_fd > 2)
        close(R->upload_fd);
    (void)bad_globs;
    return code;
}
