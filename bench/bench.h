/* bench.h: declarations shared by the files of asyncget-bench (server, modes, report, system). */
#ifndef AG_BENCH_H
#define AG_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

/* ---- the loopback server (server.c) ---- */

typedef struct server_opts {
    int port;        /* 0: the kernel picks one */
    int port_fd;     /* >= 0: write the bound port there as text, then close it */
    int delay_ms;    /* default delay of /uuid; a "delay=MS" query overrides it */
    bool pin;        /* run on the last CPU */
    bool tls;        /* https: a certificate made at start, its path written after the port */
    int tls_version; /* 12 or 13 pins the version; 0: TLS 1.2 or 1.3 */
} server_opts;

/* Serve until killed. Returns an exit status when setting up fails. */
int server_main(const server_opts *opts);

/* ---- the server's certificate (cert.c) ---- */

/* A TLS server context with a new P-256 key and a self-signed certificate for 127.0.0.1 and
 * localhost, whose PEM is written to a new temporary file, named into path. version 12 or 13 pins
 * the protocol version. Returns NULL (and prints OpenSSL's errors) when anything fails. */
struct ssl_ctx_st *cert_server_ctx(int version, char *path, size_t len);
/* Remove the certificate file and its directory; safe in a signal handler. */
void cert_cleanup(void);

/* ---- request heads (request.c) ---- */

/* One parsed request head. */
typedef struct request {
    size_t head_len;    /* bytes up to and including the blank line */
    const char *target; /* path and query, not NUL-terminated */
    size_t target_len;
    uint64_t content_length;
    bool head; /* HEAD: answer without a body */
    bool http10;
    bool keep_alive;
    bool chunked; /* a chunked request body, which this server refuses */
} request;

/* Parse one request head at the start of buf. Returns 1 with *r filled, 0 when the head is not
 * complete yet, -1 when it is malformed. Lines end in CRLF or a bare LF. */
int request_parse(const char *buf, size_t len, request *r);
/* Decimal digits, all of s[0..n), as a number; false if any is not a digit or too many. */
bool request_parse_u64(const char *s, size_t n, uint64_t *out);

/* ---- what one mode measured (modes.c, report.c) ---- */

typedef struct mode_result {
    char mode[16];
    long requests;
    long ok;
    int concurrency;
    int delay_ms;
    double wall_s;
    double rps;
    double p50_ms;
    double p99_ms;
    double cpu_s;
    long peak_rss_kb;
    int first_error; /* first failure: a negative asyncget code, or an HTTP status */
    bool failed;     /* the mode could not run at all (child crashed, setup failed) */
    /* https only: what the first new connection negotiated, how many responses came over a
     * new connection (a handshake each), and how many of those handshakes resumed a session */
    char tls_version[16];
    char tls_cipher[48];
    long tls_handshakes;
    long tls_resumed;
} mode_result;

typedef struct run_cfg {
    const char *url; /* what every request fetches */
    long requests;
    int concurrency;               /* async: coroutines in flight */
    int workers;                   /* fork: processes */
    int threads;                   /* thread: threads */
    int delay_ms;                  /* reported only; the server applies it */
    const char *dns_server;        /* the resolver's server, "ADDR:PORT" (NULL: /etc/resolv.conf) */
    bool close;                    /* every request says "Connection: close": a connect (and, for a
                                    * name, a lookup) per request */
    const struct ag_tls_opts *tls; /* https settings of every client; NULL: the defaults */
} run_cfg;

/* The modes in their canonical order, and whether a name is one of them. */
extern const char *const mode_names[4];
bool mode_known(const char *name);
/* Requests in flight at once for a mode under cfg. */
int mode_concurrency(const char *name, const run_cfg *cfg);
/* Rough wall time of a mode in seconds, from the delay alone, to skip runs of minutes. */
double mode_estimate_s(const char *name, const run_cfg *cfg);
/* Run one mode in a forked child, so that its CPU time and peak RSS are its own. */
int mode_run(const char *name, const run_cfg *cfg, mode_result *out);
/* Peak RSS (KiB) of the async mode with one request in flight: the base that memory per
 * in-flight request is measured from. */
long mode_baseline_rss_kb(const run_cfg *cfg);

/* ---- connections held idle in the pool (hold.c) ---- */

/* Open n connections to cfg->url at once (one request each), leave them idle in the pool,
 * then reuse every one of them once; print the process's memory at each step (a JSON line
 * when json). Runs in a forked child so that the figures are its own. Returns an exit status. */
int hold_run(const run_cfg *cfg, long n, bool json);

/* ---- a long run through one client (soak.c) ---- */

/* Make cfg->requests keep-alive requests to cfg->url through one client, cfg->concurrency in
 * flight, and print the process's RSS, live heap and open fds at every tenth of the run (JSON
 * lines when json). Runs in a forked child. Returns 0 when every request succeeded, nothing
 * grew after the first tenth and the pool ended at rest (all its connections idle), else 1. */
int soak_run(const run_cfg *cfg, bool json);

/* ---- output (report.c) ---- */

/* Latency percentile p (0..100) of n values, sorting v in place; 0 when n is 0. */
double report_percentile(double *v, size_t n, double p);
/* Fill the derived fields (rps, percentiles) of r from its latencies in ms. */
void report_finish(mode_result *r, double *lat_ms, size_t n);
void report_table(FILE *f, const mode_result *rs, size_t n);
void report_bars(FILE *f, const mode_result *rs, size_t n);
/* With tls, the CSV rows and JSON lines gain the TLS fields; without, they are as they were. */
void report_csv_header(FILE *f, bool tls);
void report_csv(FILE *f, const mode_result *r, bool tls);
void report_json(FILE *f, const mode_result *r, bool tls);
/* One line under the table: the TLS version and cipher, and handshakes (resumed) per mode. */
void report_tls(FILE *f, const mode_result *rs, size_t n);

/* ---- processes, CPUs and limits (sys.c) ---- */

/* CPUs this process may run on. */
int sys_ncpus(void);
/* Pin the calling process to its first (last = false) or last allowed CPU. Writes what was done
 * into note. Returns 0, or -1 when there is only one CPU (then nothing is pinned). */
int sys_pin(bool last, char *note, size_t len);
/* Raise RLIMIT_NOFILE to the hard limit, or higher as root. Returns the new soft limit. */
long sys_raise_nofile(void);
/* User plus system seconds of a rusage. */
double sys_cpu_s(const struct rusage *ru);
/* Start this program as the server on a kernel-picked port, pinned to the last CPU if pin;
 * *port gets the port. tls: 0 plain HTTP, 1 https (TLS 1.2 or 1.3), 12 or 13 https pinned to
 * that version; then ca[0..ca_len) gets the path of the certificate to trust, which the server
 * removes when stopped. The server dies with its parent. Returns its pid or -1. */
pid_t sys_spawn_server(int delay_ms, bool pin, int tls, int *port, char *ca, size_t ca_len);
/* Stop a server started by sys_spawn_server. */
void sys_stop_server(pid_t pid);
/* Read exactly len bytes, or fewer at end of file. Returns the count or -1. */
ssize_t sys_read_full(int fd, void *buf, size_t len);
/* Write all len bytes. Returns 0 or -1. */
int sys_write_full(int fd, const void *buf, size_t len);
/* A "Vm...:" line of /proc/self/status (field: "VmRSS", "VmHWM", ...) in kB, or -1. */
long sys_status_kb(const char *field);
/* Bytes malloc has handed out and not had back, in kB: what is live, whatever RSS keeps of freed
 * memory (handshake buffers freed in the middle of the heap stay resident). */
long sys_heap_kb(void);
/* Open descriptors of this process; -1 without /proc. */
long sys_count_fds(void);

#endif
