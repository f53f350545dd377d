/* header-c99.c: the public header compiles as strict C99 with every warning an error. */
#include <asyncget.h>

int main(void)
{
    ag_client_opts opts;
    ag_client_opts_init(&opts);
    return opts.max_conns == 0 ? 0 : 1;
}
