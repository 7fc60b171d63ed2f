/* "L": start paddock-init as our child, from the launch paddockd planned.
 *
 * The payload is the launcher's arguments, NUL-terminated: init path, sandbox dir,
 * clone flags, uid map, gid map, then fds 0-2 ("0"/"1"/"2": ours, "-": /dev/null),
 * then the namespace files to join (net, ipc, uts, user, cgroup, pid; "" for none),
 * as paths we open ourselves (paddockd names its own open fds, /proc/<pid>/fd/<n>),
 * then paddockd's sealed copy of paddock-init ("" for none): launched from as it is
 * when it opens and is sealed against every change, else the init path is copied;
 * then the sandbox's v1 `tasks` files ('\n'-separated) and its cgroup2 directory, where
 * the launch places init as it is born ("" for none; pd_launch_init).
 * The answer "R" is "pid pidfd readyfd" with our fd numbers, which paddockd copies
 * with pidfd_getfd while this call is open; or "-errno step detail". We keep both fds
 * until we exit (a copy of the ready pipe's read end changes nothing for init). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch_request.h"
#include "paddock_native.h"

#define FIELDS 17

static int send_reply(int sock, const char *text) {
  size_t n = strlen(text);
  unsigned char head[5] = {'R', n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >> 24) & 0xff};
  if (write(sock, head, 5) != 5)
    return -1;
  return write(sock, text, n) == (ssize_t)n ? 0 : -1;
}

/* paddockd's image can be used when it is there and can never change (a root client may
 * open it; one that may not launches from the file, as it did before the image). */
static int shared_image(const char *path) {
  int fd, ok;
  if (path[0] == '\0')
    return 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ok = pd_image_is_sealed(fd);
  close(fd);
  return ok;
}

void launch_from_request(int sock, const char *payload, uint32_t len) {
  const char *f[FIELDS];
  int joins[6] = {-1, -1, -1, -1, -1, -1}, stdio[3];
  char reply[600];
  int n = 0, pid;
  uint32_t off = 0;

  while (off < len && n < FIELDS) {
    f[n++] = payload + off;
    off += (uint32_t)strnlen(payload + off, len - off) + 1;
  }
  if (n != FIELDS) {
    snprintf(reply, sizeof reply, "-%d launch_request %d fields, not %d", EPROTO, n, FIELDS);
    send_reply(sock, reply);
    return;
  }
  for (int i = 0; i < 3; i++)
    stdio[i] = strcmp(f[5 + i], "-") == 0 ? -1 : atoi(f[5 + i]);
  for (int i = 0; i < 6; i++) {
    if (f[8 + i][0] == '\0')
      continue;
    joins[i] = open(f[8 + i], O_RDONLY | O_CLOEXEC);
    if (joins[i] < 0) {
      snprintf(reply, sizeof reply, "-%d setns open %s", errno, f[8 + i]);
      goto out;
    }
  }
  pid = pd_launch_init(shared_image(f[14]) ? f[14] : f[0], f[1], atoi(f[2]), f[3], f[4], stdio[0], stdio[1], stdio[2], joins[0],
                       joins[1], joins[2], joins[3], joins[4], joins[5], f[15], f[16]);
  if (pid < 0)
    snprintf(reply, sizeof reply, "%d %s %s", pid, pd_last_step(), pd_last_detail());
  else
    snprintf(reply, sizeof reply, "%d %d %d", pid, pd_last_pidfd(), pd_last_ready_fd());
out:
  for (int i = 0; i < 6; i++)
    if (joins[i] >= 0)
      close(joins[i]);
  send_reply(sock, reply);
}
