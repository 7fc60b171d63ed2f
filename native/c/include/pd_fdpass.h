/* One fd over a connected unix socket (SCM_RIGHTS): shared by libpaddock (console
 * hand-off to --console-socket) and paddock-init (pty master from a container's child
 * to init, and on to the supervisor). Header-only, so the static init and the shared
 * library each get a copy without sharing an object file; no allocation, so the child
 * may call it between clone and execve. */
#ifndef PD_FDPASS_H
#define PD_FDPASS_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Sends fd with `len` bytes of payload (at least one: an empty message carries no
 * rights on a stream socket). 0 on success, else -1 with errno (EPROTO: short send). */
static inline int pd_sendfd(int sock, int fd, const void *payload, size_t len)
{
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c;
  ssize_t n;

  memset(ctl.buf, 0, sizeof ctl.buf);
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  errno = 0;
  n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  if (n == (ssize_t)len)
    return 0;
  if (n >= 0 || errno == 0)
    errno = EPROTO;
  return -1;
}

#endif
