/* fuzz-dns.c: the resolver's handling of a c-ares answer (ag__dns_answer in dns/resolve.c, the
 * body of the ares_getaddrinfo callback) fed arbitrary results: address nodes of either family,
 * of a family not asked, without an address, with any TTL, in any number, aliases with their own
 * TTLs, and every status. c-ares parses the DNS message itself; what asyncget does with the
 * parsed answer is what this target reaches. The oracle, from the callback's contract in
 * resolve.h and RFC 2181:
 * - the addresses kept are the distinct addresses of the family asked, in the order given, the
 *   first AG__DNS_MAX of them;
 * - no address kept: an error with its reason, and nothing cached; an address kept: no error;
 * - the answer is cached for the least TTL of the records of that family and of the aliases
 *   (section 5.2: an RRSet whose TTLs differ is taken at its lowest TTL, every record counting,
 *   also those not kept), a negative one counting as 0 (section 8), never longer.
 * Input: byte 0: bit 0 the family asked (IPv6), bits 1-4 the status, bit 5 no result at all;
 * then records: a tag byte (low 2 bits: 3 an alias, else an address node; next 2 bits of a node:
 * IPv4, IPv6, another family, no address), a TTL (4 bytes, little-endian, signed), and a node's
 * address bytes. */
#include "dns/resolve.h"
#include "tests/fuzz/fuzz-common.h"

#include <ares.h>
#include <sys/un.h>

long ag_fuzz_accepted, ag_fuzz_refused;

const char *const ag_fuzz_dict[] = {"\x00\x00\x00\x00",
                                    "\xff\xff\xff\x7f",
                                    "\xff\xff\xff\xff",
                                    "\x7f\x00\x00\x01",
                                    "\x03",
                                    "\x04",
                                    "\x00",
                                    "\x01",
                                    NULL};

static void broken(const char *what)
{
    fuzz_broken("fuzz-dns", what);
}

static const int statuses[16] = {
    ARES_SUCCESS,   ARES_SUCCESS,  ARES_SUCCESS,      ARES_SUCCESS,
    ARES_ENOTFOUND, ARES_ENODATA,  ARES_ESERVFAIL,    ARES_EREFUSED,
    ARES_ETIMEOUT,  ARES_ENOMEM,   ARES_ECANCELLED,   ARES_EDESTRUCTION,
    ARES_EBADRESP,  ARES_EBADNAME, ARES_ECONNREFUSED, ARES_EFORMERR,
};

static void free_result(struct ares_addrinfo *ai)
{
    if (!ai)
        return;
    for (struct ares_addrinfo_node *n = ai->nodes, *next; n; n = next) {
        next = n->ai_next;
        free(n->ai_addr);
        free(n);
    }
    for (struct ares_addrinfo_cname *c = ai->cnames, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(ai);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_begin(data, size);
    uint8_t fam = data[0] & 1 ? AG__FAM6 : AG__FAM4;
    int family = fam == AG__FAM4 ? AF_INET : AF_INET6;
    size_t alen = fam == AG__FAM4 ? 4 : 16;
    int status = statuses[(data[0] >> 1) & 15];
    struct ares_addrinfo *ai = NULL;
    if (!(data[0] & 0x20)) {
        ai = calloc(1, sizeof *ai);
        if (!ai)
            abort();
    }
    struct ares_addrinfo_node **tail = ai ? &ai->nodes : NULL;
    struct ares_addrinfo_cname **ctail = ai ? &ai->cnames : NULL;

    /* What the oracle expects, computed as the records are made. */
    uint8_t want[AG__DNS_MAX][16];
    unsigned nwant = 0;
    bool any_ttl = false;
    int64_t least = 0;

    size_t i = 1;
    while (ai && i + 5 <= size) {
        uint8_t tag = data[i];
        uint32_t u = (uint32_t)data[i + 1] | (uint32_t)data[i + 2] << 8 |
                     (uint32_t)data[i + 3] << 16 | (uint32_t)data[i + 4] << 24;
        int ttl = (int)u;
        i += 5;
        if ((tag & 3) == 3) {
            struct ares_addrinfo_cname *c = calloc(1, sizeof *c);
            if (!c)
                abort();
            c->ttl = ttl;
            *ctail = c;
            ctail = &c->next;
            if (!any_ttl || ttl < least)
                least = ttl;
            any_ttl = true;
            continue;
        }
        int kind = (tag >> 2) & 3;
        int nfam = kind == 0 ? AF_INET : kind == 1 ? AF_INET6 : kind == 2 ? AF_UNIX : family;
        size_t need = nfam == AF_INET ? 4 : nfam == AF_INET6 ? 16 : 0;
        if (i + need > size)
            break;
        struct ares_addrinfo_node *n = calloc(1, sizeof *n);
        if (!n)
            abort();
        n->ai_family = nfam;
        n->ai_ttl = ttl;
        if (nfam == AF_INET) {
            struct sockaddr_in *sa = calloc(1, sizeof *sa);
            if (!sa)
                abort();
            sa->sin_family = AF_INET;
            memcpy(&sa->sin_addr, data + i, 4);
            n->ai_addr = (struct sockaddr *)sa;
            n->ai_addrlen = sizeof *sa;
        } else if (nfam == AF_INET6) {
            struct sockaddr_in6 *sa = calloc(1, sizeof *sa);
            if (!sa)
                abort();
            sa->sin6_family = AF_INET6;
            memcpy(&sa->sin6_addr, data + i, 16);
            n->ai_addr = (struct sockaddr *)sa;
            n->ai_addrlen = sizeof *sa;
        } else if (nfam == AF_UNIX) {
            struct sockaddr_un *sa = calloc(1, sizeof *sa);
            if (!sa)
                abort();
            sa->sun_family = AF_UNIX;
            n->ai_addr = (struct sockaddr *)sa;
            n->ai_addrlen = sizeof *sa;
        }
        *tail = n;
        tail = &n->ai_next;
        if (nfam == family && n->ai_addr) {
            /* Every record of the family counts for the TTL, kept or not (RFC 2181 5.2). */
            if (!any_ttl || ttl < least)
                least = ttl;
            any_ttl = true;
            bool dup = false;
            for (unsigned k = 0; k < nwant && !dup; k++)
                dup = memcmp(want[k], data + i, alen) == 0;
            if (!dup && nwant < AG__DNS_MAX)
                memcpy(want[nwant++], data + i, alen);
        }
        i += need;
    }

    ag__lookup_fam a;
    memset(&a, 0x5a, sizeof a); /* whatever was there before must not show through */
    int64_t ttl_ns = ag__dns_answer(&a, fam, status, ai);
    if (a.state != AG__LK_DONE)
        broken("left the answer not done");
    bool usable = status == ARES_SUCCESS && ai && nwant > 0;
    if (!usable) {
        ag_fuzz_refused++;
        if (a.n != 0 || a.error == 0)
            broken("kept addresses, or no error, from an answer without any of the family");
        if (!a.why && a.error != -ENOMEM)
            broken("gave an error without its reason");
        if (ttl_ns != 0)
            broken("gave a lifetime to a failed answer (the caller applies its negative TTL)");
    } else {
        ag_fuzz_accepted++;
        if (a.error != 0)
            broken("gave an error beside its addresses");
        if (a.n != nwant)
            broken("kept another number of addresses than the distinct ones of the family");
        for (unsigned k = 0; k < nwant; k++)
            if (memcmp(a.addr[k], want[k], alen) != 0)
                broken("kept other addresses, or in another order, than the answer gave");
        int64_t want_ns = least > 0 ? least * 1000000000 : 0;
        if (ttl_ns != want_ns) {
            fprintf(stderr, "lifetime %lld ns, the least TTL is %lld s\n", (long long)ttl_ns,
                    (long long)least);
            broken("caches the answer for another time than its least TTL");
        }
    }
    free_result(ai);
    return 0;
}
