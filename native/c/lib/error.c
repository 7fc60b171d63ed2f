/* The result of the last native call, fetched by the facade right after a failure.
 *
 * Kept in plain globals: every entry point is called from the JS main thread only,
 * and ffi-rs may not run two calls at once there. The watcher thread reports through
 * its pipe and never writes here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "paddock_native.h"

static const char *last_step = "";
static char last_detail[512];

const char *pd_last_step(void) { return last_step; }

const char *pd_last_detail(void) { return last_detail; }

void pd_ok(void) {
  last_step = "";
  last_detail[0] = '\0';
}

int pd_fail(const char *step, int err, const char *detail_fmt, ...) {
  va_list ap;

  /* A step must never report success: an errno of 0 would read as "no error" in JS. */
  if (err <= 0)
    err = EIO;
  last_step = step;
  last_detail[0] = '\0';
  if (detail_fmt != NULL) {
    va_start(ap, detail_fmt);
    vsnprintf(last_detail, sizeof last_detail, detail_fmt, ap);
    va_end(ap);
  }
  return -err;
}
