/* tls-floor.c: what an idle TLS client connection costs in OpenSSL alone, as the floor under
 * asyncget-bench --hold: N connections to https://127.0.0.1:PORT/PATH, one GET each, made one
 * after another with blocking sockets, SSL_MODE_RELEASE_BUFFERS and read-ahead like asyncget's,
 * certificates verified; then malloc's live bytes and the RSS per idle connection.
 *   asyncget-tls-floor PORT PATH CA_FILE N [1.2|1.3] */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* One verified connection with one GET answered; NULL on failure. */
static SSL *open_one(SSL_CTX *ctx, int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("connect");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, n) != n) {
        ERR_print_errors_fp(stderr);
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    /* The whole response: the head, then Content-Length bytes. */
    char buf[16384];
    size_t got = 0;
    long want = -1;
    while (want < 0 || (long)got < want) {
        int k = SSL_read(ssl, buf + got, (int)(sizeof buf - got - 1));
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (want < 0 && end && cl)
            want = (long)(end + 4 - buf) + strtol(cl + 17, NULL, 10);
    }
    if (want < 0 || (long)got < want) {
        fprintf(stderr, "asyncget-tls-floor: short response\n");
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: asyncget-tls-floor PORT PATH CA_FILE N [1.2|1.3]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[4]);
    int version = argc > 5 && strcmp(argv[5], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL **conns = calloc((size_t)n, sizeof *conns);
    SSL *first = open_one(ctx, port, argv[2]);
    if (!conns || !first)
        return 1;
    long heap1 = heap_kb(), rss1 = rss_kb();
    conns[0] = first;
    for (long i = 1; i < n; i++)
        if (!(conns[i] = open_one(ctx, port, argv[2])))
            return 1;
    long heap = heap_kb(), rss = rss_kb();
    printf("OpenSSL %s alone, %s, %ld idle verified connections: %.2f kB of live heap and "
           "%.2f kB of RSS per connection (heap %ld kB with one, %ld kB with %ld)\n",
           OpenSSL_version(OPENSSL_VERSION_STRING),
           version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3", n,
           (double)(heap - heap1) / (double)(n - 1), (double)(rss - rss1) / (double)(n - 1), heap1,
           heap, n);
    for (long i = 0; i < n; i++) {
        close(SSL_get_fd(conns[i]));
        SSL_free(conns[i]);
    }
    free(conns);
    SSL_CTX_free(ctx);
    return 0;
}
