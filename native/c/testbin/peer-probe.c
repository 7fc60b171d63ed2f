/* A test probe for decision 0030: tries to drive a sandbox from where it must not.
 *
 *   peer-probe [-u UID] connect SOCKET req|sub HEXBODY
 *     connects to one of paddock-init's nng ipc sockets as a bare SP peer (REQ or
 *     SUB), sends HEXBODY as one request (REQ) and prints what came back:
 *     "connect EACCES", or "connect ok" and then "reply N" (bytes of a message), "eof"
 *     (the peer was dropped) or "timeout".
 *   peer-probe [-u UID] proc PID
 *     prints whether /proc/PID/environ opens, /proc/PID/exe resolves and PTRACE_ATTACH
 *     works: "environ ok|EACCES", "exe ok|EACCES", "ptrace ok|EPERM".
 *
 * -u drops to that uid (and gid) first, so a root test can act as another user. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err_name(int e)
{
  switch (e) {
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case ECONNREFUSED: return "ECONNREFUSED";
  case ESRCH: return "ESRCH";
  default: return strerror(e);
  }
}

static int read_full(int fd, uint8_t *buf, size_t len, int timeout_ms)
{
  size_t got = 0;

  while (got < len) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    ssize_t n;

    if (r == 0)
      return -2; /* timeout */
    if (r < 0 && errno == EINTR)
      continue;
    n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1; /* eof or reset */
    got += (size_t)n;
  }
  return 0;
}

static int cmd_connect(const char *path, const char *proto, const char *hex)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int req = strcmp(proto, "req") == 0;
  uint8_t hello[8] = {0, 'S', 'P', 0, 0, req ? 0x30 : 0x21, 0, 0}, peer[8], hdr[9];
  size_t blen = strlen(hex) / 2;
  uint8_t *msg = malloc(9 + 4 + blen + 1);
  uint64_t len;
  int fd, r;

  if (msg == NULL || strlen(path) >= sizeof a.sun_path)
    return 2;
  memcpy(a.sun_path, path, strlen(path) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    printf("connect %s\n", err_name(errno));
    return 0;
  }
  printf("connect ok\n");
  fflush(stdout);
  if (write(fd, hello, sizeof hello) != (ssize_t)sizeof hello || read_full(fd, peer, 8, 5000) != 0) {
    /* Dropped during the handshake: the same as a refusal. */
    printf("eof\n");
    return 0;
  }
  if (req) {
    /* One SP message: 0x01, u64 length (BE), then the request id (high bit set) and the body. */
    len = 4 + blen;
    msg[0] = 1;
    for (int i = 0; i < 8; i++)
      msg[1 + i] = (uint8_t)(len >> (56 - 8 * i));
    msg[9] = 0x80;
    msg[10] = 0;
    msg[11] = 0;
    msg[12] = 1;
    for (size_t i = 0; i < blen; i++)
      sscanf(hex + 2 * i, "%2hhx", &msg[13 + i]);
    /* A refused pipe may already be closed: a failed write is an answer too. */
    signal(SIGPIPE, SIG_IGN);
    if (write(fd, msg, 9 + len) != (ssize_t)(9 + len)) {
      printf("eof\n");
      return 0;
    }
  }
  r = read_full(fd, hdr, 9, 5000);
  if (r == -2) {
    printf("timeout\n");
    return 0;
  }
  if (r < 0) {
    printf("eof\n");
    return 0;
  }
  len = 0;
  for (int i = 1; i < 9; i++)
    len = (len << 8) | hdr[i];
  printf("reply %llu\n", (unsigned long long)len);
  return 0;
}

static int cmd_proc(pid_t pid)
{
  char path[64], target[256];
  int fd, st;

  snprintf(path, sizeof path, "/proc/%d/environ", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  printf("environ %s\n", fd >= 0 ? "ok" : err_name(errno));
  if (fd >= 0)
    close(fd);
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  printf("exe %s\n", readlink(path, target, sizeof target) >= 0 ? "ok" : err_name(errno));
  if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) == 0) {
    waitpid(pid, &st, __WALL);
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    printf("ptrace ok\n");
  } else {
    printf("ptrace %s\n", err_name(errno));
  }
  return 0;
}

int main(int argc, char **argv)
{
  int i = 1;

  if (argc > 2 && strcmp(argv[1], "-u") == 0) {
    uid_t id = (uid_t)strtoul(argv[2], NULL, 10);

    if (setgroups(0, NULL) < 0 || setresgid(id, id, id) < 0 || setresuid(id, id, id) < 0) {
      perror("peer-probe: setuid");
      return 2;
    }
    i = 3;
  }
  if (argc - i == 4 && strcmp(argv[i], "connect") == 0)
    return cmd_connect(argv[i + 1], argv[i + 2], argv[i + 3]);
  if (argc - i == 2 && strcmp(argv[i], "proc") == 0)
    return cmd_proc((pid_t)strtol(argv[i + 1], NULL, 10));
  fprintf(stderr, "usage: peer-probe [-u UID] connect SOCKET req|sub HEXBODY | proc PID\n");
  return 2;
}
