/* dns-gai.c: wall time to resolve N distinct names with getaddrinfo in a pool of threads (what
 * libcurl's threaded resolver does) against asyncget's resolver on one loop, printed as JSON.
 *
 * Both sides read the system configuration unless --server is given (then only asyncget's
 * client uses it): run it inside tests/servers/with-system-dns, whose /etc/resolv.conf names a
 * dnsmasq on loopback. It refuses to run a side that would read an /etc/resolv.conf naming a
 * server off this machine. Every failed lookup is counted; a run with failures says
 * "valid": false, since a side that gave up early is not faster. */
#include <asyncget.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ADDRS    16
#define MAX_ERRKINDS 16
#define MAX_EXAMPLES 5

/* Failures by kind (an error code of the side that failed), and a few names that failed. */
struct failures {
    pthread_mutex_t lock;
    unsigned long total;
    int codes[MAX_ERRKINDS];
    unsigned long counts[MAX_ERRKINDS];
    int nkinds;
    const char *examples[MAX_EXAMPLES];
    int nexamples;
};

struct side {
    const char *name;
    double wall_ms;
    unsigned long ok;
    unsigned long addresses;
    struct failures fail;
};

static void failures_init(struct failures *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
}

static void failure_add(struct failures *f, int code, const char *name)
{
    pthread_mutex_lock(&f->lock);
    f->total++;
    int i = 0;
    while (i < f->nkinds && f->codes[i] != code)
        i++;
    if (i == f->nkinds && f->nkinds < MAX_ERRKINDS) {
        f->codes[i] = code;
        f->nkinds++;
    }
    if (i < f->nkinds)
        f->counts[i]++;
    if (f->nexamples < MAX_EXAMPLES)
        f->examples[f->nexamples++] = name;
    pthread_mutex_unlock(&f->lock);
}

/* ---- the names ---- */

static char **names;
static size_t nnames;

static void add_name(const char *s, size_t len)
{
    static size_t cap;
    if (nnames == cap) {
        cap = cap ? cap * 2 : 1024;
        names = realloc(names, cap * sizeof *names);
        if (!names) {
            perror("dns-gai");
            exit(1);
        }
    }
    names[nnames] = strndup(s, len);
    if (!names[nnames]) {
        perror("dns-gai");
        exit(1);
    }
    nnames++;
}

static void read_names(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "dns-gai: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, " \t\r\n#");
        if (len > 0)
            add_name(line, len);
    }
    if (f != stdin)
        fclose(f);
}

/* ---- the guard: never query a server off this machine ---- */

static int loopback_text(const char *a)
{
    return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 || strncmp(a, "[::1]", 5) == 0;
}

/* 0 when every nameserver line of /etc/resolv.conf is a loopback address (and there is one);
 * else prints why and returns -1. */
static int resolv_conf_is_loopback(void)
{
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (!f) {
        fprintf(stderr, "dns-gai: /etc/resolv.conf: %s\n", strerror(errno));
        return -1;
    }
    char line[512];
    int servers = 0, remote = 0;
    while (fgets(line, sizeof line, f)) {
        char addr[256];
        if (sscanf(line, " nameserver %255s", addr) != 1)
            continue;
        servers++;
        if (!loopback_text(addr)) {
            fprintf(stderr, "dns-gai: /etc/resolv.conf names %s, which is not on loopback\n", addr);
            remote++;
        }
    }
    fclose(f);
    if (servers == 0)
        fprintf(stderr, "dns-gai: /etc/resolv.conf names no server\n");
    if (servers == 0 || remote) {
        fprintf(stderr, "dns-gai: run it inside tests/servers/with-system-dns (or give asyncget "
                        "--server and --only asyncget)\n");
        return -1;
    }
    return 0;
}

/* ---- (a) getaddrinfo from a pool of threads ---- */

static atomic_size_t gai_next;
static atomic_ulong gai_ok, gai_addrs;
static pthread_barrier_t gai_start;
static struct side gai_side = {.name = "getaddrinfo"};

static void *gai_worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&gai_start);
    for (;;) {
        size_t i = atomic_fetch_add(&gai_next, 1);
        if (i >= nnames)
            break;
        struct addrinfo hints, *res;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(names[i], NULL, &hints, &res);
        if (rc != 0) {
            /* EAI_SYSTEM says more in errno; keep them apart. */
            failure_add(&gai_side.fail, rc == EAI_SYSTEM ? 1000 + errno : rc, names[i]);
            continue;
        }
        unsigned long n = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            n++;
        freeaddrinfo(res);
        atomic_fetch_add(&gai_ok, 1);
        atomic_fetch_add(&gai_addrs, n);
    }
    return NULL;
}

static int run_gai(unsigned threads)
{
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!tids)
        return -1;
    failures_init(&gai_side.fail);
    atomic_store(&gai_next, 0);
    atomic_store(&gai_ok, 0);
    atomic_store(&gai_addrs, 0);
    /* The threads are made before the clock starts (libcurl's would be running already). */
    pthread_barrier_init(&gai_start, NULL, threads + 1);
    unsigned started = 0;
    for (; started < threads; started++) {
        int rc = pthread_create(&tids[started], NULL, gai_worker, NULL);
        if (rc != 0) {
            fprintf(stderr, "dns-gai: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
    }
    pthread_barrier_wait(&gai_start);
    int64_t t0 = ag_now_ns();
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    int64_t t1 = ag_now_ns();
    pthread_barrier_destroy(&gai_start);
    free(tids);
    gai_side.wall_ms = (double)(t1 - t0) / 1e6;
    gai_side.ok = atomic_load(&gai_ok);
    gai_side.addresses = atomic_load(&gai_addrs);
    return 0;
}

/* ---- (b) asyncget: one loop, one client, a coroutine per name ---- */

static struct side ag_side = {.name = "asyncget"};
static ag_client *ag_cli;
static ag_dns_stats ag_stats;

static void ag_resolve_one(void *arg)
{
    const char *name = arg;
    ag_addr addrs[MAX_ADDRS];
    size_t count = 0;
    int rc = ag_client_resolve(ag_cli, name, addrs, MAX_ADDRS, &count);
    if (rc != 0) {
        failure_add(&ag_side.fail, rc, name);
        return;
    }
    ag_side.ok++;
    ag_side.addresses += count;
}

static int run_ag(const char *server, int64_t timeout_ms)
{
    ag_loop *loop;
    int rc = ag_loop_new(&loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "dns-gai: ag_loop_new: %s\n", ag_strerror(rc));
        return -1;
    }
    ag_client_opts opts;
    ag_client_opts_init(&opts);
    opts.loop = loop;
    opts.dns_servers = server; /* NULL: /etc/resolv.conf, as getaddrinfo */
    if (timeout_ms > 0)
        opts.connect_timeout_ms = timeout_ms;
    rc = ag_client_new(&ag_cli, &opts);
    if (rc < 0) {
        fprintf(stderr, "dns-gai: ag_client_new: %s\n", ag_strerror(rc));
        ag_loop_free(loop);
        return -1;
    }
    failures_init(&ag_side.fail);
    ag_side.ok = ag_side.addresses = 0;
    int64_t t0 = ag_now_ns();
    for (size_t i = 0; i < nnames; i++) {
        rc = ag_coro_spawn(loop, ag_resolve_one, names[i], NULL);
        if (rc < 0)
            failure_add(&ag_side.fail, rc, names[i]);
    }
    rc = ag_loop_run(loop);
    int64_t t1 = ag_now_ns();
    ag_side.wall_ms = (double)(t1 - t0) / 1e6;
    ag_client_dns_stats(ag_cli, &ag_stats);
    ag_client_free(ag_cli);
    ag_loop_free(loop);
    if (rc < 0) {
        fprintf(stderr, "dns-gai: ag_loop_run: %s\n", ag_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- output ---- */

static void print_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

static const char *gai_error_name(int code)
{
    static char buf[64];
    if (code >= 1000) {
        snprintf(buf, sizeof buf, "EAI_SYSTEM: %s", strerror(code - 1000));
        return buf;
    }
    return gai_strerror(code);
}

static void print_side(const struct side *s, int is_gai)
{
    printf("  \"%s\": {\"wall_ms\": %.3f, \"ok\": %lu, \"failed\": %lu, \"addresses\": %lu,\n",
           s->name, s->wall_ms, s->ok, s->fail.total, s->addresses);
    printf("    \"errors\": {");
    for (int i = 0; i < s->fail.nkinds; i++) {
        printf("%s", i ? ", " : "");
        print_string(is_gai ? gai_error_name(s->fail.codes[i]) : ag_err_name(s->fail.codes[i]));
        printf(": %lu", s->fail.counts[i]);
    }
    printf("},\n    \"failed_names\": [");
    for (int i = 0; i < s->fail.nexamples; i++) {
        printf("%s", i ? ", " : "");
        print_string(s->fail.examples[i]);
    }
    printf("]");
    if (!is_gai)
        printf(",\n    \"dns_stats\": {\"queries\": %llu, \"cache_hits\": %llu, "
               "\"cache_misses\": %llu, \"joined\": %llu, \"failures\": %llu, \"entries\": %llu}",
               (unsigned long long)ag_stats.queries, (unsigned long long)ag_stats.cache_hits,
               (unsigned long long)ag_stats.cache_misses, (unsigned long long)ag_stats.joined,
               (unsigned long long)ag_stats.failures, (unsigned long long)ag_stats.entries);
    printf("}");
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: asyncget-dns-gai [--count N] [--prefix P] [--names FILE] [--threads T]\n"
            "                        [--server ADDR:PORT] [--only getaddrinfo|asyncget]\n"
            "                        [--asyncget-first] [--timeout-ms MS] [NAME...]\n"
            "Resolves N distinct names (default 1000: h0.bulk.test ... h999.bulk.test; P is the\n"
            "part after hN, default \".bulk.test\"; or the names given, or those of FILE, one a\n"
            "line, - for stdin) with getaddrinfo(AF_UNSPEC, SOCK_STREAM) from T threads (default\n"
            "20) and with ag_client_resolve from one coroutine per name on one loop, and prints\n"
            "both wall times as JSON. --server sets asyncget's dns_servers (getaddrinfo always\n"
            "reads /etc/resolv.conf, which must name loopback servers only).\n");
}

int main(int argc, char **argv)
{
    unsigned long count = 1000;
    unsigned threads = 20;
    const char *prefix = ".bulk.test";
    const char *server = NULL;
    const char *only = NULL;
    int ag_first = 0;
    long timeout_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--count") == 0 && v) {
            count = strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--prefix") == 0 && v) {
            prefix = v;
            i++;
        } else if (strcmp(a, "--names") == 0 && v) {
            read_names(v);
            i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            threads = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--server") == 0 && v) {
            server = v;
            i++;
        } else if (strcmp(a, "--only") == 0 && v) {
            only = v;
            i++;
        } else if (strcmp(a, "--timeout-ms") == 0 && v) {
            timeout_ms = strtol(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--asyncget-first") == 0) {
            ag_first = 1;
        } else if (a[0] == '-') {
            usage(stderr);
            return 2;
        } else {
            add_name(a, strlen(a));
        }
    }
    if (threads == 0 || (only && strcmp(only, "getaddrinfo") != 0 && strcmp(only, "asyncget"))) {
        usage(stderr);
        return 2;
    }
    if (nnames == 0) {
        for (unsigned long i = 0; i < count; i++) {
            char name[256];
            int n = snprintf(name, sizeof name, "h%lu%s", i, prefix);
            if (n < 0 || (size_t)n >= sizeof name) {
                fprintf(stderr, "dns-gai: --prefix too long\n");
                return 2;
            }
            add_name(name, (size_t)n);
        }
    }
    int do_gai = !only || strcmp(only, "getaddrinfo") == 0;
    int do_ag = !only || strcmp(only, "asyncget") == 0;
    if ((do_gai || (do_ag && !server)) && resolv_conf_is_loopback() < 0)
        return 1;

    int status = 0;
    for (int round = 0; round < 2; round++) {
        int ag_turn = (round == 0) == (ag_first != 0);
        if (ag_turn && do_ag && run_ag(server, timeout_ms) < 0)
            status = 1;
        if (!ag_turn && do_gai && run_gai(threads) < 0)
            status = 1;
    }

    int valid =
        status == 0 && (!do_gai || gai_side.fail.total == 0) && (!do_ag || ag_side.fail.total == 0);
    printf("{\n  \"names\": %zu, \"threads\": %u, \"server\": ", nnames, threads);
    if (server)
        print_string(server);
    else
        printf("\"/etc/resolv.conf\"");
    printf(", \"first\": \"%s\",\n", ag_first ? "asyncget" : "getaddrinfo");
    if (do_gai) {
        print_side(&gai_side, 1);
        printf(",\n");
    }
    if (do_ag) {
        print_side(&ag_side, 0);
        printf(",\n");
    }
    if (do_gai && do_ag && gai_side.wall_ms > 0)
        printf("  \"ratio_asyncget_to_getaddrinfo\": %.3f,\n", ag_side.wall_ms / gai_side.wall_ms);
    printf("  \"valid\": %s", valid ? "true" : "false");
    if (!valid)
        printf(", \"invalid_because\": \"%s\"",
               status ? "a side could not run" : "lookups failed: the times are not comparable");
    printf("\n}\n");
    if (!valid)
        fprintf(stderr, "dns-gai: INVALID: %s\n",
                status ? "a side could not run" : "lookups failed: the times are not comparable");
    return valid ? 0 : 1;
}
