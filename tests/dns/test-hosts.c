/* test-hosts.c: the hosts file reader (dns/hosts.c) on files of the test's own: the format of
 * hosts(5), file order, and a reload when the file changes (looked at once a second at most). */
#include "dns/hosts.h"
#include "tests/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_file(const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    rename(tmp, path); /* a new inode, as editors and package managers replace the file */
}

/* "4:1.2.3.4 6:::1" for a found name, "-" for one not listed. */
static const char *find(ag__hosts *h, const char *name)
{
    static char out[256];
    ag__lookup_fam f[2];
    if (!ag__hosts_find(h, name, f))
        return "-";
    out[0] = 0;
    for (int fam = 0; fam < 2; fam++) {
        for (unsigned i = 0; i < f[fam].n; i++) {
            char a[64];
            if (fam == AG__FAM4)
                ag__ipv4_format(a, f[fam].addr[i]);
            else
                ag__ipv6_format(a, f[fam].addr[i]);
            size_t l = strlen(out);
            snprintf(out + l, sizeof out - l, "%s%d:%s", l ? " " : "", fam == AG__FAM4 ? 4 : 6, a);
        }
        if (f[fam].state != AG__LK_DONE || (f[fam].n == 0 && f[fam].error != AG_EDNS))
            return "bad state";
    }
    return out;
}

#define CHECK(h, name, want)                                                                       \
    do {                                                                                           \
        const char *got_ = find(h, name);                                                          \
        tap_ok(strcmp(got_, want) == 0, "hosts_lookup: %s -> \"%s\" (want \"%s\")", name, got_,    \
               want);                                                                              \
    } while (0)

int main(void)
{
    snprintf(path, sizeof path, "/tmp/ag-hosts-test.%d", (int)getpid());
    write_file("# a comment line\n"
               "127.0.0.1\tlocalhost\n"
               "10.0.0.1   alpha.test  Alpha  # comment after the names\n"
               "::1 alpha.test\n"
               "10.0.0.2 alpha.test\n"
               "10.0.0.1 alpha.test\n" /* a repeat: listed once */
               "fe80::1%eth0 zoned.test\n"
               "   \n"
               "not-an-address bogus.test\n"
               "10.0.0.3\n" /* an address without a name */
               "2001:db8::7 v6only.test\r\n"
               "10.0.0.9 last.test");
    ag__hosts *h;
    tap_ok(ag__hosts_new(&h, path) == 0, "hosts_new");
    CHECK(h, "alpha.test", "4:10.0.0.1 4:10.0.0.2 6:::1");
    CHECK(h, "alpha", "4:10.0.0.1");
    CHECK(h, "v6only.test", "6:2001:db8::7");
    CHECK(h, "last.test", "4:10.0.0.9");
    CHECK(h, "zoned.test", "-");
    CHECK(h, "bogus.test", "-");
    CHECK(h, "absent.test", "-");
    ag__lookup_fam f[2];
    ag__hosts_find(h, "v6only.test", f);
    tap_ok(f[AG__FAM4].n == 0 && f[AG__FAM4].error == AG_EDNS && f[AG__FAM4].why,
           "hosts_listed_name_without_family_is_not_found: the file speaks for the name");

    /* Changed: read again, but only once a second has passed since the last look. */
    write_file("10.0.0.5 beta.test\n");
    ag__hosts_refresh(h);
    CHECK(h, "alpha.test", "4:10.0.0.1 4:10.0.0.2 6:::1");
    sleep(1);
    usleep(50 * 1000);
    ag__hosts_refresh(h);
    CHECK(h, "beta.test", "4:10.0.0.5");
    CHECK(h, "alpha.test", "-");

    /* Gone: no names; back: read again. */
    unlink(path);
    sleep(1);
    usleep(50 * 1000);
    ag__hosts_refresh(h);
    CHECK(h, "beta.test", "-");
    write_file("10.0.0.6 gamma.test\n");
    sleep(1);
    usleep(50 * 1000);
    ag__hosts_refresh(h);
    CHECK(h, "gamma.test", "4:10.0.0.6");
    ag__hosts_free(h);
    unlink(path);

    /* A file that never existed is an empty one. */
    tap_ok(ag__hosts_new(&h, "/nonexistent/hosts") == 0 && !ag__hosts_find(h, "x", f),
           "hosts_missing_file_is_empty");
    ag__hosts_free(h);
    return tap_done();
}
