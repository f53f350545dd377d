/* run.h: the command's settings (filled by main.c from the options) and the run itself (run.c). */
#ifndef AG_CLI_RUN_H
#define AG_CLI_RUN_H

#include "cli.h"

/* A try's whole time when -m does not say: a server that trickles a byte just inside every idle
 * wait could otherwise hold a request, and the run, for ever. Generous for API calls and pages;
 * a long download says -m 0. */
#define CLI_MAX_TIME_MS 300000

typedef struct cli_strs {
    const char **v; /* NULL-terminated */
    size_t n, cap;
} cli_strs;

void cli_strs_add(cli_strs *s, const char *str);
void cli_strs_free(cli_strs *s); /* the array only: the strings are argv's or the caller's */

enum { CLI_NETRC_REQUIRED = 1, CLI_NETRC_OPTIONAL };

typedef struct cli_cfg {
    /* what to fetch */
    cli_strs urls;      /* URLs of the command line (globbed unless globoff) */
    cli_strs url_files; /* --url-file, --url @FILE; "-" is stdin */
    bool globoff;
    uint64_t repeat;     /* 0: 1 */
    int64_t duration_ns; /* --duration: repeat the list until then; 0: off */
    /* how many at once */
    unsigned parallel_max;  /* 0: 100 */
    unsigned parallel_host; /* 0: the client's default */
    unsigned threads;       /* 0: 1 */
    int64_t
        rate_interval_ns; /* --rate: one request due every interval; 0: as fast as slots allow */
    /* retries */
    unsigned retry;
    int64_t retry_delay_ms;    /* 0: exponential from 1 s */
    int64_t retry_max_time_ms; /* 0: no bound */
    bool retry_connrefused, retry_all_errors, retry_all_methods;
    /* the request */
    const char *method; /* NULL: GET, or POST with data, HEAD with -I */
    cli_strs headers;   /* "Name: value" as given */
    char *data;         /* -d, --data-binary, --json: the body (owned) */
    size_t data_len;
    bool has_data, data_form, json;
    bool follow;     /* -L */
    long max_redirs; /* -1: default */
    bool insecure;
    const char *cacert, *capath, *cert, *key;
    /* max_time_ms: each try, whole; CLI_MAX_TIME_MS unless -m says (-m 0: none) */
    int64_t connect_timeout_ms, max_time_ms;
    cli_strs resolve, connect_to;
    const char *dns_servers;
    int ip_family;
    const char *user_agent, *referer;
    bool fail, fail_with_body, head, include;
    /* uploads: -T FILE ("-": stdin), -F and --form-string fields in order */
    const char *upload;
    cli_form_arg *forms;
    size_t nforms;
    /* credentials */
    const char *user;   /* -u USER[:PASSWORD] */
    const char *bearer; /* --oauth2-bearer */
    int netrc;          /* 0: no .netrc, CLI_NETRC_REQUIRED or CLI_NETRC_OPTIONAL */
    const char *netrc_file;
    bool location_trusted;
    /* cookies */
    cli_strs cookies;       /* -b name=value strings, sent as they are */
    cli_strs cookie_files;  /* -b FILE, loaded into the jar */
    const char *cookie_jar; /* -c FILE ("-": stdout) */
    bool junk_session;      /* -j */
    /* connections and content */
    const char *unix_socket;
    bool unix_abstract;
    bool compressed;
    /* output */
    const char *output;     /* -o */
    bool remote_name;       /* -O */
    const char *output_dir; /* --output-dir */
    bool silent, show_error;
    bool jsonl;
    const char *writeout; /* -w */
    int summary;          /* -1: off, 0: when more than one request, 1: always */
    const char *summary_json;
    /* debugging */
    bool verbose;
    const char *trace, *trace_ascii, *har;
} cli_cfg;

/* Run the requests the settings name; returns the exit code. */
int cli_run(cli_cfg *cfg);

/* curl's exit code for a request that ended with asyncget's code err (0 for success), given
 * whether its request was sent (a failure after it is a receive failure). */
int cli_exitcode(int err, bool sent);

#endif
