/* main.c: the asyncget command's options, with curl's names and meanings where curl has them. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const usage[] = {
    "Usage: asyncget [options] URL...\n",
    "       asyncget summarize [--json] FILE   (the summary again, from --jsonl lines)\n",
    "Fetch many URLs at once: every URL (and every expansion of [1-100], [a-z], {a,b}) is a\n",
    "request, numbered in input order (urlnum); they run in parallel on one reactor thread.\n",
    "\n",
    "What to fetch\n",
    "  URL...                     http:// or https:// URLs, globbed as curl does\n",
    "  -g, --globoff              take [] and {} in URLs literally\n",
    "      --url URL|@FILE        one more URL, or a file of URLs (as --url-file)\n",
    "      --url-file FILE        one URL per line ('-': stdin, read as it comes); blank lines\n",
    "                             and # comments skipped; a bad line fails alone\n",
    "      --repeat N             the whole list N times\n",
    "      --duration SECONDS     the list again and again for this long\n",
    "How many at once\n",
    "  -Z, --parallel             accepted: requests always run in parallel\n",
    "      --parallel-max N       requests in flight (default 100; lowered to fit the open-file\n",
    "                             limit, with a note)\n",
    "      --parallel-host N      connections per host (shared out among the threads)\n",
    "      --threads N            reactor threads, each with its own loop and client (default 1)\n",
    "      --rate N[/s|m|h|d]     requests due at fixed times, open loop (a bare N is per hour,\n",
    "                             as curl); latency counts from the due time\n",
    "Retries\n",
    "      --retry N              retry timeouts and 408/429/500/502/503/504 N times, with\n",
    "                             exponential backoff from 1 s (jittered), Retry-After honoured;\n",
    "                             only GET HEAD PUT DELETE OPTIONS TRACE unless\n",
    "      --retry-all-methods    retry any method\n",
    "      --retry-delay S        a fixed wait between tries instead\n",
    "      --retry-max-time S     no new try after S seconds\n",
    "      --retry-connrefused    a refused connection is transient too\n",
    "      --retry-all-errors     every failure is\n",
    "The request\n",
    "  -X, --request METHOD       -H, --header 'Name: value' (repeatable)\n",
    "  -d, --data DATA|@FILE      POST form data (repeatable, joined by &)\n",
    "      --data-binary DATA|@FILE, --data-raw DATA\n",
    "      --data-urlencode [NAME]=TEXT|[NAME]@FILE   the same, TEXT or FILE percent-encoded\n",
    "      --json DATA|@FILE      POST JSON (Content-Type and Accept: application/json)\n",
    "  -F, --form NAME=TEXT|NAME=@FILE|NAME=<FILE[;type=T][;filename=N]\n",
    "                             POST multipart/form-data: a field, a file (streamed), a\n",
    "                             field read from a file ('-': stdin); repeatable\n",
    "      --form-string NAME=TEXT   a field taken literally\n",
    "  -T, --upload-file FILE     PUT FILE (streamed; to URL/FILE when the URL ends in '/');\n",
    "                             '-': stdin, for one URL only\n",
    "  -I, --head                 HEAD\n",
    "  -A, --user-agent NAME      -e, --referer URL\n",
    "  -L, --location             follow redirects   --max-redirs N (default 10)\n",
    "      --location-trusted     -L, with credentials sent to other origins too\n",
    "  -u, --user USER[:PASSWORD] Basic authentication (no ':': an empty password, never a\n",
    "                             prompt); also from the URL's USER:PASSWORD@\n",
    "      --oauth2-bearer TOKEN  Authorization: Bearer TOKEN (instead of -u)\n",
    "  -n, --netrc                credentials for the URL's host from ~/.netrc ($NETRC), which\n",
    "                             must exist   --netrc-optional   it may not\n",
    "      --netrc-file FILE      from FILE instead\n",
    "                             (credentials go to the URL's origin only, unless\n",
    "                             --location-trusted)\n",
    "  -b, --cookie NAME=VALUE[; NAME=VALUE]|FILE   cookies to send, or a cookie file\n",
    "                             (Netscape format, '-': stdin) for the jar; repeatable\n",
    "  -c, --cookie-jar FILE      keep the run's cookies in a jar and write it to FILE at the\n",
    "                             end ('-': stdout)   -j, --junk-session-cookies   drop the\n",
    "                             session cookies -b loaded\n",
    "      --compressed           ask for gzip, deflate, br, zstd (those built: see -V) and\n",
    "                             decode; size_download stays the size on the wire\n",
    "      --unix-socket PATH     connect to this Unix domain socket instead of the host\n",
    "      --abstract-unix-socket NAME   the same, in Linux's abstract namespace\n",
    "  -k, --insecure             skip the certificate checks\n",
    "      --cacert FILE, --capath DIR, --cert FILE, --key FILE\n",
    "      --connect-timeout S    name lookup, connect and TLS handshake\n",
    "  -m, --max-time S           each try, whole (default 300; 0: none, then only each\n",
    "                             wait for the server is bounded, by 60 s)\n",
    "      --resolve HOST:PORT:ADDR[,ADDR]   --connect-to HOST1:PORT1:HOST2:PORT2\n",
    "      --dns-servers ADDR[:PORT],...   -4, --ipv4   -6, --ipv6\n",
    "  -f, --fail                 4xx and 5xx are failures (exit 22), their body dropped\n",
    "      --fail-with-body       the same, the body kept\n",
    "Output\n",
    "  (default)                  bodies to stdout, each whole, in completion order (a body\n",
    "                             arriving waits in memory up to 1 MiB, then in a temporary\n",
    "                             file)\n",
    "  -o, --output FILE          every body to FILE, whole, in completion order\n",
    "                             (-o /dev/null: dropped)\n",
    "  -O, --remote-name          a file per URL named from it, in --output-dir DIR (default .),\n",
    "                             written under a temporary name, renamed when complete, never\n",
    "                             overwriting\n",
    "  -i, --include              the response head before each body\n",
    "  -s, --silent               no progress line, error messages or summary\n",
    "  -S, --show-error           error messages even with -s\n",
    "      --jsonl                a JSON object per request per line on stdout (bodies then\n",
    "                             only where -o or -O send them)\n",
    "  -w, --write-out FORMAT     curl's -w: %{http_code}, %{time_total}, %{json}, ...; @FILE\n",
    "      --summary, --no-summary   the summary on stderr (default: with more than one\n",
    "                             request), --summary-json FILE (with its histograms)\n",
    "Debugging\n",
    "  -v, --verbose              heads as sent and received, and connection events, on stderr\n",
    "      --trace FILE, --trace-ascii FILE   every byte sent and received ('-': stderr)\n",
    "      --har FILE             an HTTP Archive (HAR 1.2) of every request\n",
    "  -V, --version              -h, --help\n",
    "\n",
    "Exit status: 0 when every request succeeded, otherwise the code of the failed request with\n",
    "the lowest urlnum (curl's codes): 1 unsupported scheme, 2 bad option, 3 bad URL, 6 name not\n",
    "resolved, 7 cannot connect, 8 bad server reply, 18 body cut short, 22 HTTP error with -f,\n",
    "23 cannot write output, 26 cannot read the request body, 27 out of memory, 28 timeout,\n",
    "35 TLS handshake failed, 42 cancelled, 43 bad request settings, 47 too many redirects,\n",
    "52 empty reply, 55 send failure, 56 receive failure, 60 certificate not verified,\n",
    "61 bad content encoding, 63 response too large; 130 interrupted (Ctrl-C; 143 SIGTERM)\n",
    "with no request failed.\n",
};

enum {
    O_URL = 256,
    O_URL_FILE,
    O_REPEAT,
    O_DURATION,
    O_PMAX,
    O_PHOST,
    O_THREADS,
    O_RATE,
    O_RETRY,
    O_RETRY_DELAY,
    O_RETRY_MAX_TIME,
    O_RETRY_CONNREFUSED,
    O_RETRY_ALL_ERRORS,
    O_RETRY_ALL_METHODS,
    O_DATA_BINARY,
    O_DATA_RAW,
    O_JSON,
    O_MAX_REDIRS,
    O_CACERT,
    O_CAPATH,
    O_CERT,
    O_KEY,
    O_CONNECT_TIMEOUT,
    O_RESOLVE,
    O_CONNECT_TO,
    O_DNS_SERVERS,
    O_FAIL_WITH_BODY,
    O_OUTPUT_DIR,
    O_JSONL,
    O_SUMMARY,
    O_NO_SUMMARY,
    O_SUMMARY_JSON,
    O_TRACE,
    O_TRACE_ASCII,
    O_HAR,
    O_PARALLEL_IMMEDIATE,
    O_DATA_URLENCODE,
    O_FORM_STRING,
    O_LOCATION_TRUSTED,
    O_BEARER,
    O_NETRC_OPTIONAL,
    O_NETRC_FILE,
    O_COMPRESSED,
    O_UNIX_SOCKET,
    O_ABSTRACT_UNIX_SOCKET,
};

static const struct option longopts[] = {
    {"globoff", no_argument, NULL, 'g'},
    {"url", required_argument, NULL, O_URL},
    {"url-file", required_argument, NULL, O_URL_FILE},
    {"repeat", required_argument, NULL, O_REPEAT},
    {"duration", required_argument, NULL, O_DURATION},
    {"parallel", no_argument, NULL, 'Z'},
    {"parallel-immediate", no_argument, NULL, O_PARALLEL_IMMEDIATE},
    {"parallel-max", required_argument, NULL, O_PMAX},
    {"parallel-host", required_argument, NULL, O_PHOST},
    {"threads", required_argument, NULL, O_THREADS},
    {"rate", required_argument, NULL, O_RATE},
    {"retry", required_argument, NULL, O_RETRY},
    {"retry-delay", required_argument, NULL, O_RETRY_DELAY},
    {"retry-max-time", required_argument, NULL, O_RETRY_MAX_TIME},
    {"retry-connrefused", no_argument, NULL, O_RETRY_CONNREFUSED},
    {"retry-all-errors", no_argument, NULL, O_RETRY_ALL_ERRORS},
    {"retry-all-methods", no_argument, NULL, O_RETRY_ALL_METHODS},
    {"request", required_argument, NULL, 'X'},
    {"header", required_argument, NULL, 'H'},
    {"data", required_argument, NULL, 'd'},
    {"data-ascii", required_argument, NULL, 'd'},
    {"data-binary", required_argument, NULL, O_DATA_BINARY},
    {"data-raw", required_argument, NULL, O_DATA_RAW},
    {"json", required_argument, NULL, O_JSON},
    {"data-urlencode", required_argument, NULL, O_DATA_URLENCODE},
    {"form", required_argument, NULL, 'F'},
    {"form-string", required_argument, NULL, O_FORM_STRING},
    {"upload-file", required_argument, NULL, 'T'},
    {"location-trusted", no_argument, NULL, O_LOCATION_TRUSTED},
    {"user", required_argument, NULL, 'u'},
    {"oauth2-bearer", required_argument, NULL, O_BEARER},
    {"netrc", no_argument, NULL, 'n'},
    {"netrc-optional", no_argument, NULL, O_NETRC_OPTIONAL},
    {"netrc-file", required_argument, NULL, O_NETRC_FILE},
    {"cookie", required_argument, NULL, 'b'},
    {"cookie-jar", required_argument, NULL, 'c'},
    {"junk-session-cookies", no_argument, NULL, 'j'},
    {"compressed", no_argument, NULL, O_COMPRESSED},
    {"unix-socket", required_argument, NULL, O_UNIX_SOCKET},
    {"abstract-unix-socket", required_argument, NULL, O_ABSTRACT_UNIX_SOCKET},
    {"head", no_argument, NULL, 'I'},
    {"user-agent", required_argument, NULL, 'A'},
    {"referer", required_argument, NULL, 'e'},
    {"location", no_argument, NULL, 'L'},
    {"max-redirs", required_argument, NULL, O_MAX_REDIRS},
    {"insecure", no_argument, NULL, 'k'},
    {"cacert", required_argument, NULL, O_CACERT},
    {"capath", required_argument, NULL, O_CAPATH},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
    {"max-time", required_argument, NULL, 'm'},
    {"resolve", required_argument, NULL, O_RESOLVE},
    {"connect-to", required_argument, NULL, O_CONNECT_TO},
    {"dns-servers", required_argument, NULL, O_DNS_SERVERS},
    {"ipv4", no_argument, NULL, '4'},
    {"ipv6", no_argument, NULL, '6'},
    {"fail", no_argument, NULL, 'f'},
    {"fail-with-body", no_argument, NULL, O_FAIL_WITH_BODY},
    {"output", required_argument, NULL, 'o'},
    {"remote-name", no_argument, NULL, 'O'},
    {"output-dir", required_argument, NULL, O_OUTPUT_DIR},
    {"include", no_argument, NULL, 'i'},
    {"silent", no_argument, NULL, 's'},
    {"show-error", no_argument, NULL, 'S'},
    {"jsonl", no_argument, NULL, O_JSONL},
    {"write-out", required_argument, NULL, 'w'},
    {"summary", no_argument, NULL, O_SUMMARY},
    {"no-summary", no_argument, NULL, O_NO_SUMMARY},
    {"summary-json", required_argument, NULL, O_SUMMARY_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"trace", required_argument, NULL, O_TRACE},
    {"trace-ascii", required_argument, NULL, O_TRACE_ASCII},
    {"har", required_argument, NULL, O_HAR},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *opt_name;

static _Noreturn void bad(const char *what)
{
    fprintf(stderr,
            "asyncget: option %s: %s\nasyncget: try 'asyncget --help' for more information\n",
            opt_name, what);
    exit(2);
}

static uint64_t num(const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || *s == '-' || v > max)
        bad("expected a whole number in range");
    return v;
}

/* Seconds, fractions allowed ("0.5"), to milliseconds (at least 1 when not zero). */
static int64_t secs_ms(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0) || v > 1e9)
        bad("expected a number of seconds");
    int64_t ms = (int64_t)ceil(v * 1000);
    return ms;
}

/* The whole of a file, or of stdin for "-". */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "asyncget: cannot read %s: %s\n", path, strerror(errno));
        exit(26);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                fputs("asyncget: out of memory\n", stderr);
                exit(27);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

enum { DATA_ASCII, DATA_BINARY, DATA_RAW, DATA_JSON, DATA_URLENCODE };

/* The kinds of request curl lets a command line choose only one of. */
enum { REQ_HEAD = 1, REQ_FORM, REQ_POST, REQ_PUT };
static const char *const req_names[] = {"", "HEAD (-I, --head)", "multipart formpost (-F, --form)",
                                        "POST (-d, --data)", "PUT (-T, --upload-file)"};
static int req_kind;

/* curl refuses two kinds of request on one command line (exit 2), whatever their order. */
static void set_request(int kind)
{
    if (req_kind && req_kind != kind) {
        fprintf(stderr,
                "asyncget: you can only select one HTTP request method: you asked for both %s "
                "and %s\nasyncget: try 'asyncget --help' for more information\n",
                req_names[kind], req_names[req_kind]);
        exit(2);
    }
    req_kind = kind;
}

/* -d and friends: several are joined with '&' as curl does, --json's pieces as they are. -d
 * @file drops CR and LF. */
static void add_data(cli_cfg *c, const char *arg, int how)
{
    char *piece;
    size_t len;
    if (how == DATA_URLENCODE) {
        cli_buf b = {0};
        char err[300];
        int rc = cli_urlencode_arg(&b, arg, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "asyncget: --data-urlencode: %s\n", err);
            exit(rc == -ENOMEM ? 27 : 26);
        }
        len = b.len;
        piece = b.p ? b.p : strdup("");
    } else if (how != DATA_RAW && arg[0] == '@') {
        piece = slurp(arg + 1, &len);
        if (how == DATA_ASCII) {
            size_t k = 0;
            for (size_t i = 0; i < len; i++)
                if (piece[i] != '\r' && piece[i] != '\n')
                    piece[k++] = piece[i];
            len = k;
        }
    } else {
        len = strlen(arg);
        piece = strndup(arg, len);
    }
    if (!piece)
        exit(27);
    bool amp = c->has_data && how != DATA_JSON;
    size_t total = c->data_len + (amp ? 1 : 0) + len;
    char *nd = realloc(c->data, total + 1);
    if (!nd)
        exit(27);
    if (amp)
        nd[c->data_len++] = '&';
    memcpy(nd + c->data_len, piece, len);
    c->data_len += len;
    nd[c->data_len] = 0;
    c->data = nd;
    c->has_data = true;
    free(piece);
}

/* --rate N/U: U one of s, m, h, d; a bare N is per hour (curl's rule). */
static int64_t rate_interval(const char *s)
{
    char *end;
    errno = 0;
    double n = strtod(s, &end);
    if (end == s || errno || !(n > 0))
        bad("expected N/s, N/m, N/h or N/d");
    double unit = 3600;
    if (*end == '/') {
        switch (end[1]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            bad("the unit is one of s, m, h, d");
        }
        if (end[2])
            bad("the unit is one of s, m, h, d");
    } else if (*end) {
        bad("expected N/s, N/m, N/h or N/d");
    }
    double ns = unit * 1e9 / n;
    if (ns < 1)
        ns = 1;
    if (ns > 1e15) /* over eleven days between two requests */
        bad("the rate is too low (at least one request per 11 days)");
    return (int64_t)ns;
}

/* Whether ag_codings() lists coding (its items are separated by ", "). */
static bool built(const char *coding)
{
    size_t n = strlen(coding);
    for (const char *c = ag_codings(); *c;) {
        size_t len = strcspn(c, ", ");
        if (len == n && strncmp(c, coding, n) == 0)
            return true;
        c += len;
        c += strspn(c, ", ");
    }
    return false;
}

static void version(void)
{
    printf("asyncget %s\n%s\n", ag_version(), ag_version_details());
    printf("Reactor: %s\n", ag_loop_backend());
    printf("Protocols: http https\n");
    /* curl's names, in curl's order: the codings as the libraries that decode them. */
    printf("Features: AsynchDNS%s IPv6 Largefile%s SSL UnixSockets%s\n",
           built("br") ? " brotli" : "", built("gzip") || built("deflate") ? " libz" : "",
           built("zstd") ? " zstd" : "");
}

int main(int argc, char **argv)
{
    /* A descriptor 0, 1 or 2 closed by the caller would be the next file opened (-o FILE as
     * stdout): each takes /dev/null first. */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
            return 2;
    if (argc > 1 && strcmp(argv[1], "summarize") == 0)
        return cli_summarize_main(argc - 1, argv + 1);
    cli_cfg c = {.max_redirs = -1, .max_time_ms = CLI_MAX_TIME_MS};
    int ch, idx;
    while ((ch = getopt_long(argc, argv, "gZX:H:d:IA:e:Lkm:46fo:OisSw:vVhu:nb:c:jT:F:", longopts,
                             &idx)) != -1) {
        static char shortname[3] = "-?";
        if (ch < 256) {
            shortname[1] = (char)ch;
            opt_name = shortname;
        } else {
            opt_name = longopts[idx].name;
        }
        switch (ch) {
        case 'g':
            c.globoff = true;
            break;
        case O_URL:
            if (optarg[0] == '@')
                cli_strs_add(&c.url_files, optarg + 1);
            else
                cli_strs_add(&c.urls, optarg);
            break;
        case O_URL_FILE:
            cli_strs_add(&c.url_files, optarg);
            break;
        case O_REPEAT:
            c.repeat = num(optarg, UINT64_MAX);
            if (!c.repeat)
                bad("at least 1");
            break;
        case O_DURATION:
            c.duration_ns = secs_ms(optarg) * 1000000;
            break;
        case 'Z':
        case O_PARALLEL_IMMEDIATE:
            break;
        case O_PMAX:
            c.parallel_max = (unsigned)num(optarg, 1000000);
            if (!c.parallel_max)
                bad("at least 1");
            break;
        case O_PHOST:
            c.parallel_host = (unsigned)num(optarg, 1000000);
            break;
        case O_THREADS:
            c.threads = (unsigned)num(optarg, 256);
            if (!c.threads)
                bad("at least 1");
            break;
        case O_RATE:
            c.rate_interval_ns = rate_interval(optarg);
            break;
        case O_RETRY:
            c.retry = (unsigned)num(optarg, 1000000);
            break;
        case O_RETRY_DELAY:
            c.retry_delay_ms = secs_ms(optarg);
            break;
        case O_RETRY_MAX_TIME:
            c.retry_max_time_ms = secs_ms(optarg);
            break;
        case O_RETRY_CONNREFUSED:
            c.retry_connrefused = true;
            break;
        case O_RETRY_ALL_ERRORS:
            c.retry_all_errors = true;
            break;
        case O_RETRY_ALL_METHODS:
            c.retry_all_methods = true;
            break;
        case 'X':
            c.method = optarg;
            break;
        case 'H':
            cli_strs_add(&c.headers, optarg);
            break;
        case 'd':
            set_request(REQ_POST);
            add_data(&c, optarg, DATA_ASCII);
            c.data_form = true;
            break;
        case O_DATA_BINARY:
            set_request(REQ_POST);
            add_data(&c, optarg, DATA_BINARY);
            c.data_form = true;
            break;
        case O_DATA_RAW:
            set_request(REQ_POST);
            add_data(&c, optarg, DATA_RAW);
            c.data_form = true;
            break;
        case O_JSON:
            set_request(REQ_POST);
            add_data(&c, optarg, DATA_JSON);
            c.json = true;
            break;
        case O_DATA_URLENCODE:
            set_request(REQ_POST);
            add_data(&c, optarg, DATA_URLENCODE);
            c.data_form = true;
            break;
        case 'F':
        case O_FORM_STRING: {
            set_request(REQ_FORM);
            cli_form_arg *nf = realloc(c.forms, (c.nforms + 1) * sizeof *nf);
            if (!nf)
                exit(27);
            c.forms = nf;
            char err[200];
            int rc =
                cli_form_parse(optarg, ch == O_FORM_STRING, &c.forms[c.nforms], err, sizeof err);
            if (rc == -ENOMEM)
                exit(27);
            if (rc < 0)
                bad(err);
            c.nforms++;
            break;
        }
        case 'T':
            set_request(REQ_PUT);
            c.upload = optarg;
            break;
        case O_LOCATION_TRUSTED:
            /* curl's --location-trusted follows redirects as -L does. */
            c.location_trusted = true;
            c.follow = true;
            break;
        case 'u':
            c.user = optarg;
            break;
        case O_BEARER:
            c.bearer = optarg;
            break;
        case 'n':
            c.netrc = CLI_NETRC_REQUIRED;
            break;
        case O_NETRC_OPTIONAL:
            c.netrc = CLI_NETRC_OPTIONAL;
            break;
        case O_NETRC_FILE: {
            /* curl refuses a --netrc-file that does not exist, before anything is sent. */
            struct stat st;
            if (stat(optarg, &st) < 0)
                bad("the file does not exist");
            c.netrc_file = optarg;
            if (!c.netrc)
                c.netrc = CLI_NETRC_REQUIRED;
            break;
        }
        case 'b':
            /* curl's rule: a value with '=' is cookies to send, anything else a file. */
            if (strchr(optarg, '='))
                cli_strs_add(&c.cookies, optarg);
            else
                cli_strs_add(&c.cookie_files, optarg);
            break;
        case 'c':
            if (!*optarg)
                bad("a file name is needed");
            c.cookie_jar = optarg;
            break;
        case 'j':
            c.junk_session = true;
            break;
        case O_COMPRESSED:
            c.compressed = true;
            break;
        case O_UNIX_SOCKET:
        case O_ABSTRACT_UNIX_SOCKET:
            c.unix_socket = optarg;
            c.unix_abstract = ch == O_ABSTRACT_UNIX_SOCKET;
            break;
        case 'I':
            set_request(REQ_HEAD);
            c.head = true;
            c.include = true; /* curl -I writes the head where a body would go */
            break;
        case 'A':
            c.user_agent = optarg;
            break;
        case 'e':
            c.referer = optarg;
            break;
        case 'L':
            c.follow = true;
            break;
        case O_MAX_REDIRS:
            c.max_redirs = (long)num(optarg, 100000);
            break;
        case 'k':
            c.insecure = true;
            break;
        case O_CACERT:
            c.cacert = optarg;
            break;
        case O_CAPATH:
            c.capath = optarg;
            break;
        case O_CERT:
            c.cert = optarg;
            break;
        case O_KEY:
            c.key = optarg;
            break;
        case O_CONNECT_TIMEOUT:
            c.connect_timeout_ms = secs_ms(optarg);
            break;
        case 'm':
            c.max_time_ms = secs_ms(optarg);
            break;
        case O_RESOLVE:
            cli_strs_add(&c.resolve, optarg);
            break;
        case O_CONNECT_TO:
            cli_strs_add(&c.connect_to, optarg);
            break;
        case O_DNS_SERVERS:
            c.dns_servers = optarg;
            break;
        case '4':
            c.ip_family = AG_IP_V4;
            break;
        case '6':
            c.ip_family = AG_IP_V6;
            break;
        case 'f':
            c.fail = true;
            break;
        case O_FAIL_WITH_BODY:
            c.fail_with_body = true;
            break;
        case 'o':
            c.output = optarg;
            break;
        case 'O':
            c.remote_name = true;
            break;
        case O_OUTPUT_DIR:
            c.output_dir = optarg;
            break;
        case 'i':
            c.include = true;
            break;
        case 's':
            c.silent = true;
            break;
        case 'S':
            c.show_error = true;
            break;
        case O_JSONL:
            c.jsonl = true;
            break;
        case 'w':
            c.writeout = optarg;
            break;
        case O_SUMMARY:
            c.summary = 1;
            break;
        case O_NO_SUMMARY:
            c.summary = -1;
            break;
        case O_SUMMARY_JSON:
            c.summary_json = optarg;
            break;
        case 'v':
            c.verbose = true;
            break;
        case O_TRACE:
            c.trace = optarg;
            break;
        case O_TRACE_ASCII:
            c.trace_ascii = optarg;
            break;
        case O_HAR:
            c.har = optarg;
            break;
        case 'V':
            version();
            return 0;
        case 'h':
            for (size_t i = 0; i < sizeof usage / sizeof *usage; i++)
                fputs(usage[i], stdout);
            return 0;
        default:
            fputs("asyncget: try 'asyncget --help' for more information\n", stderr);
            return 2;
        }
    }
    for (int i = optind; i < argc; i++)
        cli_strs_add(&c.urls, argv[i]);
    int code;
    if (c.fail && c.fail_with_body) {
        fputs("asyncget: --fail and --fail-with-body cannot go together\n", stderr);
        code = 2;
    } else if (c.har && strcmp(c.har, "-") == 0 && (c.jsonl || c.writeout)) {
        fputs("asyncget: --har - needs stdout to itself: not with --jsonl or -w\n", stderr);
        code = 2;
    } else if (c.cookie_jar && strcmp(c.cookie_jar, "-") == 0 &&
               (c.jsonl || (c.har && strcmp(c.har, "-") == 0))) {
        /* The cookie file written at the end would land among the JSON lines or inside the
         * archive. */
        fputs("asyncget: -c - writes the cookie file to stdout: not with --jsonl or --har -\n",
              stderr);
        code = 2;
    } else {
        code = cli_run(&c);
    }
    cli_strs_free(&c.urls);
    cli_strs_free(&c.url_files);
    cli_strs_free(&c.headers);
    cli_strs_free(&c.resolve);
    cli_strs_free(&c.connect_to);
    cli_strs_free(&c.cookies);
    cli_strs_free(&c.cookie_files);
    for (size_t i = 0; i < c.nforms; i++)
        cli_form_arg_free(&c.forms[i]);
    free(c.forms);
    free(c.data);
    return code;
}
