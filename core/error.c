/* error.c: names and texts for asyncget's error codes and negative errno values. */
#include "asyncget.h"
#include "core/compat.h"

#include <errno.h>
#include <string.h>

const char *ag_strerror(int err)
{
    switch (err) {
#define AG__ERR_TEXT(name, value, text)                                                            \
    case value:                                                                                    \
        return text;
        AG_ERRORS(AG__ERR_TEXT)
#undef AG__ERR_TEXT
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc's table is static, so the pointer stays valid */
    return "unknown error";
}

const char *ag_err_name(int err)
{
    switch (err) {
#define AG__ERR_NAME(name, value, text)                                                            \
    case value:                                                                                    \
        return "AG_E" #name;
        AG_ERRORS(AG__ERR_NAME)
#undef AG__ERR_NAME
    case 0:
        return "OK";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *name = ag__errno_name(-err);
        if (name)
            return name;
    }
    return "EUNKNOWN";
}
