/* hosts.h: the hosts file (/etc/hosts), parsed once and again when it changes. */
#ifndef AG_DNS_HOSTS_H
#define AG_DNS_HOSTS_H

#include "dns/resolve.h"

typedef struct ag__hosts ag__hosts;

/* Read path (kept, not copied). A missing or unreadable file is an empty one. -ENOMEM only. */
int ag__hosts_new(ag__hosts **out, const char *path);
void ag__hosts_free(ag__hosts *h);
/* Read the file again if it changed; looks at it at most once a second. */
void ag__hosts_refresh(ag__hosts *h);
/* The addresses of name (lower case) when the file lists it: both families done, in file order,
 * a family without address failed with AG_EDNS. false when the file does not list the name. */
bool ag__hosts_find(const ag__hosts *h, const char *name, ag__lookup_fam out[2]);

#endif
