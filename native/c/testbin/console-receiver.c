/* console-receiver: the test's stand-in for conmon's console socket.
 *
 *   console-receiver <socket-path> <input> [timeout-ms]
 *
 * Listens on <socket-path>, prints "listening" on stderr, accepts one connection and
 * receives a pty master with SCM_RIGHTS (the payload, the pty's name, goes to stderr
 * as "name <payload>"). Writes <input> to the master, then copies everything the
 * terminal prints to stdout until the last slave closes (EIO/EOF on the master).
 * Exits 0 after that, 2 on a timeout (default 20000 ms per wait), 1 on any other
 * failure, removing the socket in every case. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *sock_path;

static int die(int code, const char *what)
{
  fprintf(stderr, "console-receiver: %s: %s\n", what, strerror(errno));
  unlink(sock_path);
  return code;
}

static int wait_in(int fd, int timeout_ms)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;

  do
    r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r;
}

int main(int argc, char **argv)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char name[256], buf[4096];
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name - 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                       .msg_controllen = sizeof ctl.b};
  struct cmsghdr *c;
  int timeout = 20000, lfd, conn, master = -1;
  ssize_t n;

  if (argc < 3) {
    fprintf(stderr, "usage: console-receiver <socket-path> <input> [timeout-ms]\n");
    return 1;
  }
  sock_path = argv[1];
  if (argc > 3)
    timeout = atoi(argv[3]);
  if (strlen(sock_path) >= sizeof addr.sun_path)
    return 1;
  strcpy(addr.sun_path, sock_path);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1) < 0)
    return die(1, "listen");
  fprintf(stderr, "listening\n");
  if (wait_in(lfd, timeout) <= 0)
    return die(2, "no connection");
  conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0 || wait_in(conn, timeout) <= 0)
    return die(1, "accept");
  n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0)
    return die(1, "recvmsg");
  name[n] = '\0';
  for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy(&master, CMSG_DATA(c), sizeof master);
  close(conn);
  close(lfd);
  unlink(sock_path);
  if (master < 0) {
    errno = EPROTO;
    return die(1, "no fd");
  }
  fprintf(stderr, "name %s\n", name);
  if (write(master, argv[2], strlen(argv[2])) < 0)
    return die(1, "write");
  for (;;) {
    int r = wait_in(master, timeout);

    if (r == 0) {
      errno = ETIMEDOUT;
      return die(2, "terminal output");
    }
    n = read(master, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) /* EIO: every slave fd is closed, the process is gone */
      break;
    if (write(1, buf, (size_t)n) < 0)
      return die(1, "stdout");
  }
  return 0;
}
