/* Small system calls the supervisor needs and Node does not offer. Each returns
 * >= 0 or -errno and names its step for the facade's NativeError. */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "paddock_native.h"

/* A copy of another process's fd (pidfd_getfd(2), close-on-exec): how the supervisor
 * takes a held container's release and notify pipes from paddock-hold. */
int pd_pidfd_getfd(int pidfd, int target) {
  long fd;

  pd_ok();
  if (pidfd < 0 || target < 0)
    return pd_fail("pidfd_getfd", EINVAL, "fd %d of pidfd %d", target, pidfd);
  fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
  if (fd < 0)
    return pd_fail("pidfd_getfd", errno, "fd %d", target);
  return (int)fd;
}

/* The credentials of a unix socket's peer as they were at connect(2) (SO_PEERCRED):
 * `which` 0 the pid, 1 the uid, 2 the gid. How paddockd checks who calls it (Node
 * has no way to ask). >= 0 or -errno (step peercred). */
long pd_peer_cred(int fd, int which) {
  struct ucred cred;
  socklen_t len = sizeof cred;

  pd_ok();
  if (fd < 0 || which < 0 || which > 2)
    return pd_fail("peercred", EINVAL, "fd %d, field %d", fd, which);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return pd_fail("peercred", errno, "fd %d", fd);
  return which == 0 ? (long)cred.pid : which == 1 ? (long)cred.uid : (long)cred.gid;
}

/* Sets O_APPEND on fd's open file description, which a process criu restored shares:
 * criu gives an inherited fd the dumped fd's flags (a pipe's: no O_APPEND), so a log
 * file handed in for a pipe would be written from offset 0, and dumped next time as a
 * file whose size must match (docs/decisions/0040). */
int pd_fd_set_append(int fd) {
  int fl;

  pd_ok();
  if (fd < 0)
    return pd_fail("fcntl", EINVAL, "fd %d", fd);
  if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_APPEND) < 0)
    return pd_fail("fcntl", errno, "fd %d", fd);
  return 0;
}

/* Blocks the caller up to timeout_ms for fd to be readable (data, EOF or hang-up):
 * 1 when it is, 0 on timeout. For waits known to end within a millisecond or so,
 * where a trip through the event loop costs more than the wait (actors/containers/held-release.ts). */
int pd_wait_readable(int fd, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r;

  pd_ok();
  if (fd < 0 || timeout_ms < 0)
    return pd_fail("poll", EINVAL, "fd %d", fd);
  do
    r = poll(&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return pd_fail("poll", errno, "fd %d", fd);
  return r > 0 ? 1 : 0;
}

int pd_pidfd_open(int pid) {
  long fd;

  pd_ok();
  if (pid <= 0)
    return pd_fail("pidfd_open", EINVAL, "pid %d", pid);
  /* pidfds are always close-on-exec. */
  fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return pd_fail("pidfd_open", errno, "pid %d", pid);
  return (int)fd;
}

#ifndef NS_GET_NSTYPE
#define NS_GET_NSTYPE _IO(0xb7, 0x3)
#endif

int pd_ns_type(int fd) {
  int r;

  pd_ok();
  r = ioctl(fd, NS_GET_NSTYPE);
  if (r < 0)
    return pd_fail("ns_type", errno, "fd %d", fd);
  return r;
}

int pd_pidfd_send_signal(int pidfd, int sig) {
  pd_ok();
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
    return pd_fail("pidfd_send_signal", errno, "signal %d", sig);
  return 0;
}

int pd_close(int fd) {
  pd_ok();
  /* On Linux the fd is gone even when close() says EINTR: retrying could close an
   * fd another thread has just been given. Only EBADF is worth reporting. */
  if (close(fd) < 0 && errno != EINTR)
    return pd_fail("close", errno, "fd %d", fd);
  return 0;
}

int pd_mkfifo(const char *path, int mode) {
  pd_ok();
  if (path == NULL || path[0] != '/')
    return pd_fail("mkfifo", EINVAL, "path must be absolute");
  if (mode < 0 || mode > 07777)
    return pd_fail("mkfifo", EINVAL, "mode %o", (unsigned)mode);
  if (mkfifo(path, (mode_t)mode) < 0)
    return pd_fail("mkfifo", errno, "%s", path);
  /* mkfifo obeys the umask; the caller asked for this exact mode. */
  if (chmod(path, (mode_t)mode) < 0) {
    int err = errno;
    unlink(path);
    return pd_fail("chmod_fifo", err, "%s", path);
  }
  return 0;
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Why not rename(2): on ext4 a rename that replaces a file first flushes the new
 * file's delayed allocation (auto_da_alloc), 0.3-1 ms here on every state write.
 * Exchanging the two names is as atomic for a reader (it sees the old or the new
 * file, never neither) and skips that flush; like the plain rename without fsync it
 * promises nothing across a host crash (decision 0004). The old content stays at
 * tmp: the caller overwrites that file next time instead of creating and unlinking
 * one per write (an inode allocation and a free, most of a write's cost here).
 * Returns 1 after an exchange, 0 after a plain rename (tmp is gone then). */
int pd_replace_file(const char *tmp, const char *target) {
  pd_ok();
  if (tmp == NULL || tmp[0] != '/' || target == NULL || target[0] != '/')
    return pd_fail("replace_file", EINVAL, "paths must be absolute");
  if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) == 0)
    return 1;
  if (errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
    return pd_fail("replace_file", errno, "%s", target);
  if (rename(tmp, target) < 0)
    return pd_fail("replace_file", errno, "%s", target);
  return 0;
}

/* The KVM system fd of `path` (absolute), or -errno with step open_kvm. */
static int open_kvm(const char *path) {
  int fd;

  if (path == NULL || path[0] != '/')
    return pd_fail("open_kvm", EINVAL, "path must be absolute");
  fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return pd_fail("open_kvm", errno, "%s", path);
  return fd;
}

/* path is /dev/kvm but for tests (a missing path is how "no KVM" is shown without a
 * host that lacks it). Returns the API version (12) or -errno with the step. */
int pd_kvm_probe(const char *path) {
  int fd, version, ret;

  pd_ok();
  if ((fd = open_kvm(path)) < 0)
    return fd;
  version = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version < 0) {
    ret = pd_fail("kvm_get_api_version", errno, NULL);
    goto out;
  }
  /* 12 is the only stable KVM API there has ever been; anything else is not KVM as
   * we know it. */
  if (version != KVM_API_VERSION) {
    ret = pd_fail("kvm_get_api_version", EPROTO, "api version %d, want %d", version,
                  KVM_API_VERSION);
    goto out;
  }
  /* Guest memory is set up with KVM_SET_USER_MEMORY_REGION. */
  ret = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY);
  if (ret < 0) {
    ret = pd_fail("kvm_check_extension", errno, "KVM_CAP_USER_MEMORY");
    goto out;
  }
  if (ret == 0) {
    ret = pd_fail("kvm_check_extension", ENOTSUP, "KVM_CAP_USER_MEMORY missing");
    goto out;
  }
  ret = version;
out:
  close(fd);
  return ret;
}

/* Raises the hard limit `resource` of process `pid` to at least hard_hi:hard_lo (a u64
 * in two halves: ffi has no exact 64-bit integer), leaving its soft limit alone. Only
 * ever upward. Why: a container's setrlimit above the hard limit it inherited needs
 * CAP_SYS_RESOURCE in the initial user namespace, which nothing inside a user namespace
 * has; runc answers this by prlimit-ing its child from the runtime. paddock raises
 * paddock-init (whose children inherit it) from the supervisor, before init forks the
 * container that asked; the container then sets exactly what its spec says. Returns 1
 * when raised, 0 when already high enough. */
int pd_raise_rlimit(int pid, int resource, unsigned hard_hi, unsigned hard_lo) {
  struct {
    uint64_t cur, max;
  } old, want;
  uint64_t hard = ((uint64_t)hard_hi << 32) | hard_lo;

  pd_ok();
  if (pid <= 0 || resource < 0)
    return pd_fail("prlimit", EINVAL, "pid %d resource %d", pid, resource);
  if (syscall(SYS_prlimit64, pid, resource, NULL, &old) < 0)
    return pd_fail("prlimit", errno, "read %d of pid %d", resource, pid);
  if (old.max >= hard)
    return 0;
  want.cur = old.cur;
  want.max = hard;
  if (syscall(SYS_prlimit64, pid, resource, &want, NULL) < 0)
    return pd_fail("prlimit", errno, "raise %d of pid %d", resource, pid);
  return 1;
}

/* KVM_CHECK_EXTENSION of one capability on the system fd: 0 absent, > 0 present (some
 * answer a count, e.g. KVM_CAP_MAX_VCPUS), -errno when the device does not open. The
 * list of capabilities worth reporting lives on the TS side (native/ffi.ts). */
int pd_kvm_extension(const char *path, int cap) {
  int fd, ret;

  pd_ok();
  if ((fd = open_kvm(path)) < 0)
    return fd;
  ret = ioctl(fd, KVM_CHECK_EXTENSION, cap);
  if (ret < 0)
    ret = pd_fail("kvm_check_extension", errno, "cap %d", cap);
  close(fd);
  return ret;
}

/* A character device node at `path` (which must not exist), owned by uid:gid with the
 * exact mode (no umask): the supervisor's own copy of a host node, for a sandbox whose
 * mapped ids cannot open the host's (decision 0038). Node has no mknod(2). */
int pd_mknod_char(const char *path, int major, int minor, int mode, int uid, int gid) {
  pd_ok();
  if (path == NULL || path[0] != '/' || major < 0 || minor < 0 || mode < 0 || mode > 07777)
    return pd_fail("mknod", EINVAL, "%s", path == NULL ? "(null)" : path);
  if (mknod(path, S_IFCHR | 0600, makedev((unsigned)major, (unsigned)minor)) < 0)
    return pd_fail("mknod", errno, "%s", path);
  /* Owner first, mode last: chown clears set-id bits, and the node is 0600 root's
   * until both are right. */
  if (lchown(path, (uid_t)uid, (gid_t)gid) < 0) {
    int r = pd_fail("device_chown", errno, "%s", path);
    unlink(path);
    return r;
  }
  if (chmod(path, (mode_t)mode) < 0) {
    int r = pd_fail("device_chmod", errno, "%s", path);
    unlink(path);
    return r;
  }
  return 0;
}

/* cgroup v1 OOM notification (Documentation/admin-guide/cgroup-v1/memory.rst, 9):
 * an eventfd registered through cgroup.event_control against memory.oom_control of
 * `memdir`. The counter goes up on each OOM in that cgroup, and once more when the
 * cgroup is removed; the caller tells the two apart by oom_control's oom_kill. The
 * registration holds the cgroup, not the oom_control fd, which is closed here.
 * Returns the eventfd (non-blocking, close-on-exec) or -errno. */
int pd_oom_eventfd(const char *memdir) {
  char path[4096], line[64];
  int ofd = -1, cfd = -1, efd = -1, n;
  ssize_t w;

  pd_ok();
  if (memdir == NULL || memdir[0] != '/')
    return pd_fail("oom_eventfd", EINVAL, "path must be absolute");
  if (snprintf(path, sizeof path, "%s/memory.oom_control", memdir) >= (int)sizeof path)
    return pd_fail("oom_eventfd", ENAMETOOLONG, "%s", memdir);
  ofd = open(path, O_RDONLY | O_CLOEXEC);
  if (ofd < 0)
    return pd_fail("open_oom_control", errno, "%s", path);
  efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    n = pd_fail("eventfd", errno, NULL);
    close(ofd);
    return n;
  }
  snprintf(path, sizeof path, "%s/cgroup.event_control", memdir);
  cfd = open(path, O_WRONLY | O_CLOEXEC);
  if (cfd < 0) {
    n = pd_fail("open_event_control", errno, "%s", path);
    goto fail;
  }
  n = snprintf(line, sizeof line, "%d %d", efd, ofd);
  w = write(cfd, line, (size_t)n);
  if (w != n) {
    n = pd_fail("event_control", w < 0 ? errno : EIO, "%s", path);
    goto fail;
  }
  close(cfd);
  close(ofd);
  return efd;
fail:
  if (cfd >= 0)
    close(cfd);
  close(ofd);
  close(efd);
  return n;
}
