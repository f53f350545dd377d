/* test-system.c: the resolver with the system's configuration, no server given: /etc/resolv.conf
 * names the server and /etc/hosts is honoured. Runs only inside tests/servers/with-system-dns,
 * which bind-mounts both files in a private mount namespace over a dnsmasq on 127.0.0.77:53;
 * anywhere else it skips, for the machine's own resolv.conf may name a server off this machine. */
#include "tests/dns/util.h"
#include "tests/tap.h"

#include <asyncget.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dns_log;
static ag_loop *loop;

static void run(void *arg)
{
    const char *mode = arg;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = ag_coro_self() ? loop : NULL;
    ag_client *c;
    int rc = ag_client_new(&c, &o);
    char t[256];
    rc = resolve_text(c, "both.test", t, sizeof t);
    int q = 0;
    for (int i = 0; i < 100 && (q = logged("A", "both.test")) < 1; i++)
        usleep(10 * 1000);
    tap_ok(rc == 0 && strcmp(t, "::1 127.0.0.1") == 0 && q >= 1,
           "dns_system_resolv_conf%s: both.test through the server of /etc/resolv.conf (%s: "
           "\"%s\", %d queries logged)",
           mode, ag_err_name(rc), t, q);
    int before = logged("A", "hosts-only.test") + logged("AAAA", "hosts-only.test");
    rc = resolve_text(c, "hosts-only.test", t, sizeof t);
    usleep(100 * 1000);
    int after = logged("A", "hosts-only.test") + logged("AAAA", "hosts-only.test");
    tap_ok(rc == 0 && strcmp(t, "127.0.0.9") == 0 && after == before,
           "dns_system_etc_hosts%s: hosts-only.test from /etc/hosts, no query of either family "
           "(%s: \"%s\", %d queries)",
           mode, ag_err_name(rc), t, after - before);
    rc = resolve_text(c, "nx.test", t, sizeof t);
    tap_ok(rc == AG_EDNS, "dns_system_nxdomain%s: %s", mode, ag_err_name(rc));
    ag_client_free(c);
}

/* Whether /etc/resolv.conf names the test server (AG_DNS_SERVER, "ADDR:53") and no other. */
static int resolv_conf_is_ours(void)
{
    const char *server = getenv("AG_DNS_SERVER");
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (!server || !f) {
        if (f)
            fclose(f);
        return 0;
    }
    char line[256], want[128];
    snprintf(want, sizeof want, "nameserver %s", server);
    char *colon = strrchr(want, ':');
    if (!colon || strcmp(colon, ":53") != 0) {
        fclose(f);
        return 0;
    }
    *colon = 0;
    int ours = 0, others = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strncmp(line, "nameserver", 10) != 0)
            continue;
        if (strcmp(line, want) == 0)
            ours++;
        else
            others++;
    }
    fclose(f);
    return ours == 1 && others == 0;
}

int main(void)
{
    dns_log = getenv("AG_DNS_LOG");
    if (!dns_log || !resolv_conf_is_ours()) {
        tap_skip("dns_system: runs only inside tests/servers/with-system-dns (where "
                 "/etc/resolv.conf names the test dnsmasq)");
        return tap_done();
    }
    run("_blocking");
    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, run, "", NULL);
    ag_loop_run(loop);
    ag_loop_free(loop);
    return tap_done();
}
