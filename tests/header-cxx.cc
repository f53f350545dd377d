// header-cxx.cc: the public header compiles as C++ and links from it.
#include <asyncget.h>

int main()
{
    ag_request req;
    ag_request_init(&req);
    return req.body_kind == AG_BODY_NONE && ag_strerror(AG_EURL) != nullptr ? 0 : 1;
}
