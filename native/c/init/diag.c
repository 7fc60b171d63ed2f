/* paddock-init's own diagnostics: <sandboxDir>/init.log, capped.
 *
 * init holds none of the embedding process's stdio (docs/decisions/0031): a message
 * written to an inherited stderr would keep a pipe of the supervisor's caller open for
 * the sandbox's whole life. So every diagnostic goes to a file of its own, which is
 * cut back to a marker line when it reaches PI_DIAG_MAX, so a sandbox that keeps
 * failing (say, refusing peers in a loop) cannot fill the disk either. When init's
 * fd 2 is a real stream (the sandbox was made with stdio 'inherit', or with
 * EngineOptions.initStderr 'inherit'), each line is also copied there. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define PI_DIAG_MAX (256u << 10)

static int diag_fd = -1;
static int mirror_stderr;
static off_t diag_size;
/* nng's threads log refused peers too. */
static pthread_mutex_t diag_lock = PTHREAD_MUTEX_INITIALIZER;

void pi_diag_open(const char *dir)
{
  char path[4200];
  struct stat st;

  /* /dev/null (char 1:3) or a closed fd 2: nobody is reading; anything else is a
   * stream someone asked to see init's messages on. */
  mirror_stderr = fstat(2, &st) == 0 &&
                  !(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
  if ((size_t)snprintf(path, sizeof path, "%s/init.log", dir) >= sizeof path)
    return;
  diag_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (diag_fd >= 0 && fstat(diag_fd, &st) == 0)
    diag_size = st.st_size;
}

static void write_all(int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, buf, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    buf += n;
    len -= (size_t)n;
  }
}

void pi_diag(const char *fmt, ...)
{
  static const char cut[] = "paddock-init: init.log reached its cap and was cut here\n";
  char line[1024];
  struct timespec ts;
  struct tm tm;
  va_list ap;
  int n, m;
  int saved = errno;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ paddock-init: ",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               ts.tv_nsec / 1000000);
  va_start(ap, fmt);
  m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    m = 0;
  n += m;
  if ((size_t)n > sizeof line - 2)
    n = (int)sizeof line - 2;
  line[n++] = '\n';

  pthread_mutex_lock(&diag_lock);
  if (diag_fd >= 0) {
    if (diag_size + n > (off_t)PI_DIAG_MAX && ftruncate(diag_fd, 0) == 0) {
      write_all(diag_fd, cut, sizeof cut - 1);
      diag_size = (off_t)(sizeof cut - 1);
    }
    write_all(diag_fd, line, (size_t)n);
    diag_size += n;
  }
  /* Before init.log is open (a usage error, an early startup failure), fd 2 is all
   * there is; the launcher's report names the step anyway. */
  if (mirror_stderr || diag_fd < 0)
    write_all(2, line + 25, (size_t)n - 25); /* without the timestamp, as before */
  pthread_mutex_unlock(&diag_lock);
  errno = saved;
}
