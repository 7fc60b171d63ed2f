/* The supervisor's half of the console hand-off (docs/decisions/0012): paddock-init
 * sends a container's pty master to a unix socket the supervisor listens on in the
 * sandbox's state dir; the supervisor passes it on to the caller's --console-socket.
 * Node cannot pass fds over unix sockets, so these three calls do it. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "paddock_native.h"
#include "pd_fdpass.h"

static int fill_addr(struct sockaddr_un *addr, const char *path, const char *step)
{
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path == NULL || path[0] == '\0')
    return pd_fail(step, EINVAL, "empty socket path");
  if (strlen(path) >= sizeof addr->sun_path)
    return pd_fail(step, ENAMETOOLONG, "%s", path);
  memcpy(addr->sun_path, path, strlen(path) + 1);
  return 0;
}

int pd_console_listen(const char *path, int uid, int gid)
{
  struct sockaddr_un addr;
  int fd, r;

  pd_ok();
  if ((r = fill_addr(&addr, path, "console_listen")) < 0)
    return r;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return pd_fail("console_listen", errno, "socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    r = pd_fail("console_listen", errno, "%s", path);
    close(fd);
    return r;
  }
  /* Only the sandbox's root (the id paddock-init runs as) may connect. */
  if (chmod(path, 0600) < 0 || chown(path, (uid_t)uid, (gid_t)gid) < 0 || listen(fd, 1) < 0) {
    r = pd_fail("console_listen", errno, "%s", path);
    close(fd);
    unlink(path);
    return r;
  }
  return fd;
}

int pd_console_accept(int listen_fd, int expect_pid, int timeout_ms)
{
  struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};
  struct ucred cred;
  socklen_t clen = sizeof cred;
  char name[256];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c;
  int conn, fd = -1, r;
  ssize_t n;

  pd_ok();
  r = poll(&pfd, 1, timeout_ms);
  if (r < 0)
    return pd_fail("console_accept", errno, "poll");
  if (r == 0)
    return pd_fail("console_accept", ETIMEDOUT, "no pty master within %d ms", timeout_ms);
  conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0)
    return pd_fail("console_accept", errno, "accept");
  /* Anyone who can reach the state dir could connect: take the fd only from init. */
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
    r = pd_fail("console_accept", errno, "SO_PEERCRED");
    goto out;
  }
  if (expect_pid > 0 && cred.pid != expect_pid) {
    r = pd_fail("console_accept", EPERM, "peer pid %d is not paddock-init %d", (int)cred.pid, expect_pid);
    goto out;
  }
  pfd.fd = conn;
  if (poll(&pfd, 1, timeout_ms) <= 0) {
    r = pd_fail("console_recv", ETIMEDOUT, "no message");
    goto out;
  }
  n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) {
    r = pd_fail("console_recv", errno, "recvmsg");
    goto out;
  }
  for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
  if (fd < 0 || (msg.msg_flags & MSG_CTRUNC)) {
    if (fd >= 0)
      close(fd);
    r = pd_fail("console_recv", EPROTO, "no fd in the message");
    goto out;
  }
  r = fd;
out:
  close(conn);
  return r;
}

int pd_send_fd(const char *path, int fd, const char *name)
{
  struct sockaddr_un addr;
  size_t len = name ? strlen(name) : 0;
  int sock, r;

  pd_ok();
  if ((r = fill_addr(&addr, path, "console_socket")) < 0)
    return r;
  if (len == 0)
    return pd_fail("console_socket", EINVAL, "empty name");
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return pd_fail("console_socket", errno, "socket");
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    r = pd_fail("console_socket", errno, "%s", path);
    goto out;
  }
  if (pd_sendfd(sock, fd, name, len) < 0) {
    r = pd_fail("console_send", errno, "%s", path);
    goto out;
  }
  r = 0;
out:
  close(sock);
  return r;
}
