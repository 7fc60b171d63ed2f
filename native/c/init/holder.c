/* The holder program (native/c/hold/holder.c) travels inside paddock-init (see
 * holder_blob.S) and is executed from a sealed memfd: nothing on the host's disk is
 * reachable from a container through /proc/<pid>/exe, and nothing can change the
 * bytes between one container and the next. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

extern const unsigned char pi_holder_start[];
extern const unsigned char pi_holder_end[];

static int make_holder(void)
{
  size_t len = (size_t)(pi_holder_end - pi_holder_start), done = 0;
  int fd;

  /* MFD_EXEC says what this memfd is for where vm.memfd_noexec asks; older kernels
   * do not know the flag and make every memfd executable. */
  fd = (int)syscall(SYS_memfd_create, "paddock-hold", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL)
    fd = (int)syscall(SYS_memfd_create, "paddock-hold", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -1;
  while (done < len) {
    ssize_t n = write(fd, pi_holder_start + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      goto fail;
    done += (size_t)n;
  }
  /* Execute-only: a container user that is not root cannot read it, which keeps
   * the held process non-dumpable from its execve on. */
  if (fchmod(fd, 0111) < 0)
    goto fail;
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_EXEC | F_SEAL_SEAL) < 0 &&
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

int pi_holder_fd(void)
{
  static int fd = -2;

  if (fd == -2) {
    fd = make_holder();
    if (fd < 0)
      pi_diag("no holder memfd (%s); held containers wait as init's copy", strerror(errno));
  }
  return fd;
}
