// What the Swift side of the C ABI needs from C (not part of the installed header datadist/datadist.h).
#ifndef DATADIST_SUPPORT_H
#define DATADIST_SUPPORT_H

#include <stddef.h>

/// Sets this thread's last error message to the `length` bytes at `message`.
void datadist_support_set_last_error(const char *message, size_t length);
/// A malloc'ed, NUL-terminated copy of `length` bytes (NULL if out of memory); freed by datadist_free_string.
char *datadist_support_copy_string(const char *text, size_t length);

#endif
