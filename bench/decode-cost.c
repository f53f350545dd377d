/* decode-cost.c: what content codings cost and save, through the public API: the same file
 * fetched plain and coded (each coding), its wire and decoded sizes, and the client's CPU per
 * MiB decoded (getrusage over many fetches, the median of several runs), side by side.
 *   asyncget-decode-cost BASE_URL [FETCHES [RUNS]] LABEL=PATH[:raw] ...
 * A PATH ending in ":raw" is fetched without decoding (the plain baseline); the others with
 * ag_client_opts.compressed. Bodies go to the discard sink: the copy into memory is not what
 * is measured. */
#include <asyncget.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BASE_URL [FETCHES [RUNS]] LABEL=PATH[:raw] ...\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    int argi = 2, fetches = 50, runs = 5;
    if (argi < argc && strchr(argv[argi], '=') == NULL)
        fetches = atoi(argv[argi++]);
    if (argi < argc && strchr(argv[argi], '=') == NULL)
        runs = atoi(argv[argi++]);
    if (fetches < 1 || runs < 1 || runs > 99) {
        fprintf(stderr, "FETCHES and RUNS must be positive (RUNS at most 99)\n");
        return 2;
    }
    printf("asyncget decode cost: %s, %d fetches per run, median of %d runs\n",
           ag_version_details(), fetches, runs);
    printf("%-14s %-10s %12s %12s %7s %12s %12s %12s\n", "case", "coding", "wire B", "decoded B",
           "ratio", "CPU us/fetch", "CPU ms/MiB", "wall ms/fetch");
    for (; argi < argc; argi++) {
        char label[64], path[512];
        const char *eq = strchr(argv[argi], '=');
        if (!eq || (size_t)(eq - argv[argi]) >= sizeof label || strlen(eq + 1) >= sizeof path) {
            fprintf(stderr, "bad case: %s\n", argv[argi]);
            return 2;
        }
        memcpy(label, argv[argi], (size_t)(eq - argv[argi]));
        label[eq - argv[argi]] = 0;
        snprintf(path, sizeof path, "%s", eq + 1);
        int raw = 0;
        size_t pl = strlen(path);
        if (pl > 4 && strcmp(path + pl - 4, ":raw") == 0) {
            raw = 1;
            path[pl - 4] = 0;
        }
        char url[1024];
        snprintf(url, sizeof url, "%s%s", base, path);
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.compressed = !raw;
        ag_client *c;
        if (ag_client_new(&c, &o) < 0)
            return 1;
        ag_request req;
        ag_request_init(&req);
        req.url = url;
        req.sink = AG_SINK_DISCARD;
        double cpu[100], wall[100];
        uint64_t wire = 0, decoded = 0;
        char coding[32] = "identity";
        int failed = 0;
        /* One fetch first: the connection is open and warm for every run. */
        for (int r = -1; r < runs && !failed; r++) {
            double c0 = cpu_seconds();
            int64_t w0 = ag_now_ns();
            for (int i = 0; i < (r < 0 ? 1 : fetches); i++) {
                ag_response *resp;
                int rc = ag_fetch(c, &req, &resp);
                if (rc < 0 || ag_response_status(resp) != 200) {
                    fprintf(stderr, "%s: %s %s\n", url, ag_err_name(rc),
                            resp ? ag_response_error_detail(resp) : "");
                    failed = 1;
                } else {
                    wire = ag_response_body_bytes(resp);
                    decoded = ag_response_decoded_bytes(resp);
                    const char *ce = ag_response_header(resp, "Content-Encoding");
                    snprintf(coding, sizeof coding, "%s", ce && !raw ? ce : "identity");
                }
                ag_response_free(resp);
                if (failed)
                    break;
            }
            if (r >= 0) {
                cpu[r] = (cpu_seconds() - c0) / fetches;
                wall[r] = (double)(ag_now_ns() - w0) / 1e9 / fetches;
            }
        }
        ag_client_free(c);
        if (failed)
            return 1;
        qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
        qsort(wall, (size_t)runs, sizeof *wall, cmp_double);
        double mcpu = cpu[runs / 2], mwall = wall[runs / 2];
        double mib = (double)decoded / (1024.0 * 1024.0);
        printf("%-14s %-10s %12llu %12llu %7.2f %12.1f %12.2f %12.3f\n", label, coding,
               (unsigned long long)wire, (unsigned long long)decoded,
               wire ? (double)decoded / (double)wire : 0.0, mcpu * 1e6,
               mib > 0 ? mcpu * 1e3 / mib : 0.0, mwall * 1e3);
        fflush(stdout);
    }
    return 0;
}
