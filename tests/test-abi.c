/* test-abi.c: the layout promise of the public header. Caller-allocated structs keep their size
 * within a soname: a new field must take the place of reserved words (the reserved array is last
 * and shrinks), never grow the struct. Sizes are pinned for LP64, the only data model built. */
#include "tests/tap.h"

#include <asyncget.h>
#include <errno.h>
#include <string.h>

#define PIN(type, size)                                                                            \
    tap_ok(sizeof(type) == (size) &&                                                               \
               offsetof(type, reserved) + sizeof(((type *)0)->reserved) == sizeof(type),           \
           "abi_size_" #type ": %zu bytes (pinned %d), reserved words last", sizeof(type),         \
           (int)(size))

int main(void)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8) {
        tap_skip("abi: sizes are pinned for LP64 only");
        return tap_done();
    }
    PIN(ag_request, 256);
    PIN(ag_client_opts, 512);
    PIN(ag_loop_opts, 128);
    PIN(ag_timer, 64);
    PIN(ag_timings, 128);
    PIN(ag_tls_opts, 192);
    PIN(ag_tls_info, 128);
    PIN(ag_dns_stats, 128);
    PIN(ag_pool_stats, 128);

    /* Zero means default: the _init functions make the same bytes as a zero-filled struct. */
    ag_request req, zreq;
    memset(&req, 0xa5, sizeof req);
    memset(&zreq, 0, sizeof zreq);
    ag_request_init(&req);
    tap_ok(memcmp(&req, &zreq, sizeof req) == 0, "abi_request_init_is_zero");
    ag_client_opts co, zco;
    memset(&co, 0xa5, sizeof co);
    memset(&zco, 0, sizeof zco);
    ag_client_opts_init(&co);
    tap_ok(memcmp(&co, &zco, sizeof co) == 0, "abi_client_opts_init_is_zero");
    ag_tls_opts to, zto;
    memset(&to, 0xa5, sizeof to);
    memset(&zto, 0, sizeof zto);
    ag_tls_opts_init(&to);
    tap_ok(memcmp(&to, &zto, sizeof to) == 0, "abi_tls_opts_init_is_zero");

    /* A zero-filled client (blocking) and loop options work as the defaults. */
    ag_client *c = NULL;
    tap_ok(ag_client_new(&c, &zco) == 0 && c, "abi_zero_client_opts_accepted");
    ag_client_free(c);
    zco.reserved[3] = 1;
    c = NULL;
    tap_ok(ag_client_new(&c, &zco) == -EINVAL && !c,
           "abi_client_reserved_must_be_zero: garbage in reserved words is refused");
    ag_loop_opts lo;
    memset(&lo, 0, sizeof lo);
    ag_loop *loop = NULL;
    tap_ok(ag_loop_new(&loop, &lo) == 0 && loop, "abi_zero_loop_opts_accepted");
    ag_timer t;
    memset(&t, 0, sizeof t);
    tap_ok(!ag_timer_armed(&t), "abi_zero_timer_not_armed");
    ag_timer_stop(loop, &t); /* harmless on a timer never armed */
    ag_loop_free(loop);
    return tap_done();
}
