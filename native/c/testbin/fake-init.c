/* fake-init: a stand-in for paddock-init that tests the launcher alone.
 *
 *   fake-init <sandboxDir> [mode]
 *
 * Writes <sandboxDir>/fake-init.out ("key value" lines: uid, gid, pid, ppid, the
 * inode of each namespace it is in, whether fd 3 is open, dev:inode of fds 0..2),
 * then the ready report on fd 3 (docs/protocol.md: OK {PID} or, in mode fail-ready,
 * ERROR {CODE=LAUNCH, ERRNO, STEP}), then acts out its mode. The launcher passes only argv[1], so without argv[2] the mode is read
 * from <sandboxDir>/fake-init.mode:
 *   exit:N      exit with status N (default: exit:0)
 *   sleep       pause until killed
 *   fail-ready  report ERROR on fd 3, then exit 1
 * The out file is complete before the report is written, so a test that has read
 * the report can read the file. Messages are built by hand (12-byte header + fields)
 * to keep this binary independent of the protocol library under test elsewhere. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_PID 2
#define T_CODE 10
#define T_ERRNO 11
#define T_STEP 12
#define TYPE_OK 0x8000
#define TYPE_ERROR 0x8001
#define CODE_LAUNCH 3

struct msg {
  uint8_t buf[256];
  size_t len;
};

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)v);
  put16(p + 2, (uint16_t)(v >> 16));
}

static void msg_begin(struct msg *m, uint16_t type) {
  memset(m, 0, sizeof *m);
  m->buf[0] = 0x50; /* "PD" */
  m->buf[1] = 0x44;
  m->buf[2] = 1; /* version */
  put16(m->buf + 4, type);
  m->len = 12;
}

static void msg_field(struct msg *m, uint16_t tag, const void *val, uint32_t len) {
  put16(m->buf + m->len, tag);
  put32(m->buf + m->len + 2, len);
  memcpy(m->buf + m->len + 6, val, len);
  m->len += 6 + len;
}

static void msg_i32(struct msg *m, uint16_t tag, int32_t v) {
  uint8_t b[4];
  put32(b, (uint32_t)v);
  msg_field(m, tag, b, 4);
}

static void msg_send(struct msg *m) {
  size_t off = 0;

  put32(m->buf + 8, (uint32_t)(m->len - 12));
  while (off < m->len) {
    ssize_t n = write(3, m->buf + off, m->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  close(3);
}

static unsigned long ns_inode(const char *name) {
  char path[64];
  struct stat st;

  snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  return stat(path, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

static void read_mode(const char *dir, char *mode, size_t cap) {
  char path[4096];
  ssize_t n;
  int fd;

  snprintf(path, sizeof path, "%s/fake-init.mode", dir);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  n = read(fd, mode, cap - 1);
  close(fd);
  if (n <= 0)
    return;
  mode[n] = '\0';
  mode[strcspn(mode, "\r\n")] = '\0';
}

static int write_out(const char *dir) {
  static const char *const ns[] = {"user", "pid", "net", "uts", "ipc", "mnt", "cgroup"};
  char path[4096], tmp[4096];
  FILE *f;
  size_t i;

  snprintf(path, sizeof path, "%s/fake-init.out", dir);
  snprintf(tmp, sizeof tmp, "%s/fake-init.out.tmp", dir);
  f = fopen(tmp, "we");
  if (f == NULL)
    return -errno;
  fprintf(f, "uid %u\ngid %u\npid %d\nppid %d\n", (unsigned)getuid(), (unsigned)getgid(),
          (int)getpid(), (int)getppid());
  for (i = 0; i < sizeof ns / sizeof ns[0]; i++)
    fprintf(f, "ns_%s %lu\n", ns[i], ns_inode(ns[i]));
  fprintf(f, "fd3 %s\n", fcntl(3, F_GETFD) >= 0 ? "open" : "closed");
  /* Which files 0..2 are, as dev:inode, so a test can match them with its own. */
  for (i = 0; i < 3; i++) {
    struct stat st;
    if (fstat((int)i, &st) == 0)
      fprintf(f, "stdio%zu %lu:%lu\n", i, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    else
      fprintf(f, "stdio%zu closed\n", i);
  }
  if (fclose(f) != 0)
    return -errno;
  /* Atomic: a reader sees all of it or nothing. */
  return rename(tmp, path) < 0 ? -errno : 0;
}

int main(int argc, char **argv) {
  char mode[64] = "exit:0";
  struct msg m;
  int ret;

  if (argc < 2)
    return 2;
  if (argc > 2)
    snprintf(mode, sizeof mode, "%s", argv[2]);
  else
    read_mode(argv[1], mode, sizeof mode);

  ret = write_out(argv[1]);

  if (ret < 0 || strcmp(mode, "fail-ready") == 0) {
    static const char step[] = "fake_step";
    msg_begin(&m, TYPE_ERROR);
    msg_i32(&m, T_CODE, CODE_LAUNCH);
    msg_i32(&m, T_ERRNO, ret < 0 ? -ret : EPERM);
    msg_field(&m, T_STEP, ret < 0 ? "write_out" : step,
              ret < 0 ? sizeof "write_out" - 1 : sizeof step - 1);
    msg_send(&m);
    return 1;
  }

  msg_begin(&m, TYPE_OK);
  msg_i32(&m, T_PID, (int32_t)getpid());
  msg_send(&m);

  if (strncmp(mode, "exit:", 5) == 0)
    return atoi(mode + 5);
  if (strcmp(mode, "sleep") == 0)
    for (;;)
      pause();
  return 3; /* unknown mode */
}
