/* form.h: the multipart/form-data body of a form, read piece by piece at any offset. */
#ifndef AG_HTTP_FORM_H
#define AG_HTTP_FORM_H

#include "asyncget.h"

#include <stddef.h>
#include <stdint.h>

/* Copy up to cap bytes of the form's body starting at off into buf: the parts' heads from
 * memory, files with pread(2), so that a body of any size is streamed and can be read again
 * from the start (a redirect, a retry). Returns the count (less than cap only at the end, 0
 * there), or AG_EBODY when a file is shorter than when it was added or cannot be read. */
int ag__form_read(const ag_form *form, uint64_t off, char *buf, size_t cap);

#endif
