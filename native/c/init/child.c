/* The child half of a launch: runs between clone3 and execve.
 *
 * The child is a copy of a multithreaded process (nng's threads are not copied, but
 * their locks are, possibly held), so only async-signal-safe calls are allowed here:
 * raw syscalls and pure string functions. No malloc, no stdio, no snprintf. Every
 * buffer is either on this stack or was prepared by the parent (struct pi_launch).
 *
 * Container setup follows the usual order: private propagation, bind the rootfs onto
 * itself, mounts and devices under it, pivot_root, sysctls, masked and read-only
 * paths, then oom score and rlimits (while still privileged), the seccomp filter when
 * no_new_privs is off, the bounding set, the process's identity, the remaining
 * capability sets, no_new_privs and then the filter when it is on, and execve. Mount
 * destinations are resolved with openat2(RESOLVE_IN_ROOT) and mounted through
 * /proc/self/fd/N so a symlink inside the image can never point a mount at the host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "pd_execvp.h"
#include "pd_fdpass.h"

#define PROPAGATION_FLAGS (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE)
/* paddock's own bit in a mount plan's flags (specs/mount-options.ts PD_TMPCOPYUP), never
 * passed to mount(2): fill a new tmpfs with what its destination held (runc's and
 * crun's `tmpcopyup`). */
#define PD_MS_TMPCOPYUP (1ULL << 40)
/* Directory levels tmpcopyup follows (each holds a getdents buffer on this stack). */
#define COPYUP_MAX_DEPTH 64
/* Flags a bind mount can only get through a second, remounting mount(2) call. */
#define BIND_REMOUNT_FLAGS                                                         \
  (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |     \
   MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW)

/* The error is on the child's stack; the parent only sees what report() writes. */
__attribute__((noreturn)) static void report(const struct pi_launch *l,
                                             const struct pi_error *e)
{
  struct pi_child_report r;
  size_t n;

  memset(&r, 0, sizeof r);
  r.err = e->err;
  n = strlen(e->step);
  memcpy(r.step, e->step, n < sizeof r.step - 1 ? n : sizeof r.step - 1);
  n = strlen(e->detail);
  memcpy(r.detail, e->detail, n < sizeof r.detail - 1 ? n : sizeof r.detail - 1);
  /* One write below PIPE_BUF is atomic; nothing useful to do if it fails. */
  if (write(l->errfd, &r, sizeof r) < 0) {
  }
  _exit(127);
}

/* pi_fail() is plain memcpy work, safe here too. */
static int fail(struct pi_error *e, const char *step, const char *detail)
{
  return pi_fail(e, step, errno, detail);
}

static void close_quiet(int fd)
{
  if (fd >= 0)
    close(fd);
}

/* "/proc/self/fd/<fd>" without snprintf. */
static void fd_path(char buf[32], int fd)
{
  static const char prefix[] = "/proc/self/fd/";
  char digits[12];
  int n = 0;

  memcpy(buf, prefix, sizeof prefix - 1);
  do {
    digits[n++] = (char)('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  for (int i = 0; i < n; i++)
    buf[sizeof prefix - 1 + i] = digits[n - 1 - i];
  buf[sizeof prefix - 1 + n] = '\0';
}

static int open_in_root(int rootfd, const char *path, int flags)
{
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);

  return fd < 0 ? -errno : (int)fd;
}

/* Symlinks a mkdir -p may follow before it gives up (the kernel's own limit). */
#define MKDIRP_MAX_LINKS 40

/* The component buf[start..end) is a symlink that does not resolve inside the root
 * (it dangles there, or would lead out of it): rewrite buf as the path it stands
 * for, its target (absolute: from the root; relative: from the directory holding
 * it) followed by the rest of buf, so the walk can restart from the root and make
 * that target inside the root, as runc's securejoin + MkdirAll does. Returns 0, or a
 * negative errno (EINVAL when the component is no symlink: a real ENOENT). */
static int splice_symlink(int parent, char *buf, size_t bufsz, size_t start, size_t end)
{
  char link[4096], rest[4096];
  size_t rest_len = strlen(buf + end), prefix = 0, n;
  ssize_t ln;

  if (rest_len >= sizeof rest)
    return -ENAMETOOLONG;
  memcpy(rest, buf + end, rest_len + 1);
  buf[end] = '\0';
  ln = readlinkat(parent, buf + start, link, sizeof link - 1);
  if (ln < 0)
    return errno == EINVAL ? -EINVAL : -errno;
  link[ln] = '\0';
  if (ln == 0)
    return -ENOENT;
  /* Relative: keep the directory part; absolute: RESOLVE_IN_ROOT reads it from the
   * root, so the leading '/' is enough. */
  if (link[0] != '/')
    prefix = start;
  n = prefix + (size_t)ln + 1 + rest_len;
  if (n >= bufsz)
    return -ENAMETOOLONG;
  memmove(buf + prefix, link, (size_t)ln);
  buf[prefix + (size_t)ln] = '/';
  memcpy(buf + prefix + (size_t)ln + 1, rest, rest_len + 1);
  return 0;
}

/* mkdir -p of path inside rootfd. Each prefix is resolved from the root
 * (openat2 RESOLVE_IN_ROOT, so ".." and absolute symlinks stop at the root) and a
 * missing component is created in the directory its parent resolved to: mkdirat on
 * an fd, never a path the host could resolve. A symlink whose target is missing is
 * followed inside the root (splice_symlink) and its target made there. Returns an
 * O_PATH fd of the directory. */
static int mkdirp_in_root(int rootfd, const char *path, struct pi_error *e)
{
  char buf[4096];
  size_t len = strlen(path), i = 0;
  int parent, links = 0;

  if (len >= sizeof buf)
    return pi_fail(e, "mkdir", ENAMETOOLONG, path);
  memcpy(buf, path, len + 1);
  parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  if (parent < 0)
    return fail(e, "mkdir", path);
  for (;;) {
    size_t start;
    char save;
    int fd;

    while (buf[i] == '/')
      i++;
    if (buf[i] == '\0')
      return parent;
    start = i;
    while (buf[i] != '\0' && buf[i] != '/')
      i++;
    save = buf[i];
    buf[i] = '\0';
    fd = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
    if (fd == -ENOENT) {
      if (mkdirat(parent, buf + start, 0755) < 0) {
        int r;

        if (errno != EEXIST) {
          close(parent);
          return fail(e, "mkdir", path);
        }
        /* It exists and still does not resolve: a dangling symlink. */
        buf[i] = save;
        r = splice_symlink(parent, buf, sizeof buf, start, i);
        close(parent);
        if (r == 0 && ++links > MKDIRP_MAX_LINKS)
          r = -ELOOP;
        if (r < 0)
          return pi_fail(e, "mkdir", r == -EINVAL ? ENOENT : -r, path);
        parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
        if (parent < 0)
          return fail(e, "mkdir", path);
        i = 0;
        continue;
      }
      fd = open_in_root(rootfd, buf, O_PATH | O_DIRECTORY);
    }
    close(parent);
    if (fd < 0)
      return pi_fail(e, "mkdir", -fd, path);
    parent = fd;
    buf[i] = save;
  }
}

/* Opens (O_PATH) a mount destination inside the root, creating it first: a
 * directory, or for a non-directory bind source an empty file, the way OCI
 * runtimes prepare bind targets. */
static int prepare_dest(int rootfd, const char *dest, int as_file, struct pi_error *e)
{
  char dir[4096];
  const char *slash;
  int fd, dirfd, r;

  if (!as_file)
    return mkdirp_in_root(rootfd, dest, e);
  fd = open_in_root(rootfd, dest, O_PATH);
  if (fd != -ENOENT)
    return fd < 0 ? pi_fail(e, "open", -fd, dest) : fd;
  slash = strrchr(dest, '/');
  if (slash == NULL || (size_t)(slash - dest) >= sizeof dir)
    return pi_fail(e, "open", EINVAL, dest);
  memcpy(dir, dest, (size_t)(slash - dest));
  dir[slash - dest] = '\0';
  dirfd = mkdirp_in_root(rootfd, dir, e);
  if (dirfd < 0)
    return dirfd;
  r = openat(dirfd, slash + 1, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  close(dirfd);
  if (r < 0 && errno != EEXIST)
    return fail(e, "create", dest);
  close_quiet(r);
  fd = open_in_root(rootfd, dest, O_PATH);
  return fd < 0 ? pi_fail(e, "open", -fd, dest) : fd;
}

/* ST_* → MS_*: the flags a mount already has. In a user namespace the flags
 * inherited from a more privileged namespace are locked, and a remount that drops
 * any of them fails with EPERM, so every remount ORs these in. */
static unsigned long current_flags(const char *target)
{
  struct statvfs sv;
  unsigned long f = 0;

  if (statvfs(target, &sv) < 0)
    return 0;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
#ifdef ST_NOSYMFOLLOW
  if (sv.f_flag & ST_NOSYMFOLLOW) f |= MS_NOSYMFOLLOW;
#endif
  return f;
}

static int remount_bind(const char *target, unsigned long flags, const char *detail,
                        struct pi_error *e)
{
  flags |= current_flags(target);
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
    return fail(e, "remount", detail);
  return 0;
}

/* A fresh O_PATH fd of dest: needed after mounting on it, because the old fd still
 * names the directory underneath the new mount. */
static int reopen_target(int rootfd, const char *dest, char target[32], struct pi_error *e)
{
  int fd = open_in_root(rootfd, dest, O_PATH);

  if (fd < 0)
    return pi_fail(e, "open", -fd, dest);
  fd_path(target, fd);
  return fd;
}

static int copy_tree(int src, int dst, int depth, struct pi_error *e);

/* The owner and mode of a copied entry; chown is best effort, as an id the user
 * namespace does not map cannot be given (the file keeps the overflow id). */
static int copy_attrs(int dst, const char *name, const struct stat *st, int is_link,
                      struct pi_error *e)
{
  if (fchownat(dst, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 &&
      errno != EINVAL && errno != EPERM)
    return fail(e, "tmpcopyup", name);
  if (!is_link && fchmodat(dst, name, st->st_mode & 07777, 0) < 0)
    return fail(e, "tmpcopyup", name);
  return 0;
}

static int copy_file(int src, int dst, const char *name, const struct stat *st,
                     struct pi_error *e)
{
  int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out, r = 0;

  if (in < 0)
    return fail(e, "tmpcopyup", name);
  out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    r = fail(e, "tmpcopyup", name);
    close(in);
    return r;
  }
  for (;;) {
    char buf[8192];
    ssize_t n = read(in, buf, sizeof buf), off = 0;

    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = fail(e, "tmpcopyup", name);
      break;
    }
    while (off < n) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));

      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        r = fail(e, "tmpcopyup", name);
        break;
      }
      off += w;
    }
    if (r < 0)
      break;
  }
  close(in);
  close(out);
  return r < 0 ? r : copy_attrs(dst, name, st, 0, e);
}

static int copy_link(int src, int dst, const char *name, const struct stat *st,
                     struct pi_error *e)
{
  char target[4096];
  ssize_t n = readlinkat(src, name, target, sizeof target - 1);

  if (n < 0)
    return fail(e, "tmpcopyup", name);
  target[n] = '\0';
  if (symlinkat(target, dst, name) < 0)
    return fail(e, "tmpcopyup", name);
  return copy_attrs(dst, name, st, 1, e);
}

static int copy_dir(int src, int dst, const char *name, const struct stat *st, int depth,
                    struct pi_error *e)
{
  int in, out, r;

  if (mkdirat(dst, name, 0700) < 0)
    return fail(e, "tmpcopyup", name);
  in = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0)
    return fail(e, "tmpcopyup", name);
  out = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (out < 0) {
    r = fail(e, "tmpcopyup", name);
    close(in);
    return r;
  }
  r = copy_tree(in, out, depth + 1, e);
  close(in);
  close(out);
  /* Its mode last: a read-only directory could not have been filled. */
  return r < 0 ? r : copy_attrs(dst, name, st, 0, e);
}

/* Copies the entries of directory src into dst: directories, regular files, symlinks
 * and FIFOs with their owner and mode (what runc's tmpcopyup copies); device nodes and
 * sockets are skipped. Everything is fd-relative and O_NOFOLLOW, so a link in the image
 * is copied as a link and never followed. */
static int copy_tree(int src, int dst, int depth, struct pi_error *e)
{
  char buf[4096];

  if (depth > COPYUP_MAX_DEPTH)
    return pi_fail(e, "tmpcopyup", ELOOP, "too many directory levels");
  for (;;) {
    long n = syscall(SYS_getdents64, src, buf, sizeof buf);

    if (n == 0)
      return 0;
    if (n < 0)
      return fail(e, "tmpcopyup", "getdents");
    for (long off = 0; off < n;) {
      struct dirent64_raw {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (struct dirent64_raw *)(void *)(buf + off);
      struct stat st;
      int r = 0;

      off += d->reclen;
      if (strcmp(d->name, ".") == 0 || strcmp(d->name, "..") == 0)
        continue;
      if (fstatat(src, d->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(e, "tmpcopyup", d->name);
      if (S_ISDIR(st.st_mode))
        r = copy_dir(src, dst, d->name, &st, depth, e);
      else if (S_ISREG(st.st_mode))
        r = copy_file(src, dst, d->name, &st, e);
      else if (S_ISLNK(st.st_mode))
        r = copy_link(src, dst, d->name, &st, e);
      else if (S_ISFIFO(st.st_mode)) {
        if (mknodat(dst, d->name, S_IFIFO | 0600, 0) < 0)
          r = fail(e, "tmpcopyup", d->name);
        else
          r = copy_attrs(dst, d->name, &st, 0, e);
      }
      if (r < 0)
        return r;
    }
  }
}

/* tmpcopyup: `under` is the destination as it was before the tmpfs went on it. */
static int copy_up(int rootfd, int under, const char *dest, struct pi_error *e)
{
  int top = open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY);
  int r;

  if (top < 0)
    return pi_fail(e, "tmpcopyup", -top, dest);
  r = copy_tree(under, top, 0, e);
  close(top);
  return r;
}

static int do_mount(int rootfd, const struct pd_mount *m, struct pi_error *e)
{
  unsigned long flags = (unsigned long)(m->flags & ~PD_MS_TMPCOPYUP) & ~(unsigned long)PROPAGATION_FLAGS;
  int under = -1;
  int is_bind = (m->type != NULL && strcmp(m->type, "bind") == 0) || (flags & MS_BIND);
  int as_file = 0;
  char target[32];
  int fd, fd2 = -1, r = 0;

  if (is_bind) {
    struct stat st;

    if (m->source == NULL)
      return pi_fail(e, "mount", EINVAL, m->dest);
    if (stat(m->source, &st) < 0)
      return fail(e, "mount", m->source);
    as_file = !S_ISDIR(st.st_mode);
  }
  fd = prepare_dest(rootfd, m->dest, as_file, e);
  if (fd < 0)
    return fd;
  fd_path(target, fd);

  if (is_bind) {
    if (mount(m->source, target, NULL, MS_BIND | (flags & MS_REC), NULL) < 0) {
      r = fail(e, "mount", m->dest);
      goto out;
    }
    if (flags & BIND_REMOUNT_FLAGS) {
      fd2 = reopen_target(rootfd, m->dest, target, e);
      if (fd2 < 0 || (r = remount_bind(target, flags & BIND_REMOUNT_FLAGS, m->dest, e)) < 0) {
        r = fd2 < 0 ? fd2 : r;
        goto out;
      }
    }
  } else {
    const char *type = m->type != NULL ? m->type : "none";
    const char *source = m->source != NULL ? m->source : type;

    flags &= ~(unsigned long)(MS_BIND | MS_REC);
    /* Opened before the mount hides it (only tmpfs gets the flag, specs/mount-options.ts). */
    if ((m->flags & PD_MS_TMPCOPYUP) &&
        (under = open_in_root(rootfd, m->dest, O_RDONLY | O_DIRECTORY)) < 0) {
      r = pi_fail(e, "tmpcopyup", -under, m->dest);
      goto out;
    }
    if (mount(source, target, type, flags, m->data) < 0) {
      /* sysfs needs the net namespace's owner; without it, show the host's /sys
       * read-only instead, like runc and crun do. */
      if (errno != EPERM || strcmp(type, "sysfs") != 0) {
        r = fail(e, "mount", m->dest);
        goto out;
      }
      if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0) {
        r = fail(e, "mount", m->dest);
        goto out;
      }
      fd2 = reopen_target(rootfd, m->dest, target, e);
      if (fd2 < 0 || (r = remount_bind(target, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                       m->dest, e)) < 0) {
        r = fd2 < 0 ? fd2 : r;
        goto out;
      }
    }
  }

  if (under >= 0 && (r = copy_up(rootfd, under, m->dest, e)) < 0)
    goto out;
  if (m->propagation != 0) {
    close_quiet(fd2);
    fd2 = reopen_target(rootfd, m->dest, target, e);
    if (fd2 < 0) {
      r = fd2;
      goto out;
    }
    if (mount(NULL, target, NULL, (unsigned long)m->propagation, NULL) < 0)
      r = fail(e, "mount_propagation", m->dest);
  }
out:
  close_quiet(under);
  close_quiet(fd2);
  close(fd);
  return r;
}

/* mknod is impossible in a user namespace: bind the host's device node instead. */
static int bind_device(int rootfd, const char *path, struct pi_error *e)
{
  char target[32];
  int fd = prepare_dest(rootfd, path, 1, e);

  if (fd < 0)
    return fd;
  fd_path(target, fd);
  if (mount(path, target, NULL, MS_BIND, NULL) < 0) {
    int r = fail(e, "device", path);
    close(fd);
    return r;
  }
  close(fd);
  return 0;
}

/* linux.devices (specs/device-nodes.ts encodes each entry as a DEVICE string):
 *   "/dev/x"                                 the host's node, bound at the same path
 *                                            (above; in a user namespace);
 *   "+/dev/x\nTYPE\nMAJOR\nMINOR\nMODE\nUID\nGID"   a node made here (TYPE c, b or p),
 *                                            as runc makes them: before pivot_root,
 *                                            with the exact mode (no umask) and owner. */

/* Decimal digits of s up to the next '\n' or the end; -1 when there are none or
 * something else comes first. */
static long parse_decimal(const char **s)
{
  long v = 0;
  const char *p = *s;

  if (*p < '0' || *p > '9')
    return -1;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p - '0');
    if (v > 0xffffffffL)
      return -1;
    p++;
  }
  if (*p != '\0' && *p != '\n')
    return -1;
  *s = *p == '\n' ? p + 1 : p;
  return v;
}

static int make_node(int rootfd, const char *spec, struct pi_error *e)
{
  char dest[4096], dir[4096];
  const char *nl = strchr(spec, '\n'), *rest, *slash;
  long major, minor, mode, uid, gid;
  mode_t fmt;
  int dirfd, r = 0;

  if (nl == NULL || nl == spec || (size_t)(nl - spec) >= sizeof dest)
    return pi_fail(e, "device", EINVAL, spec);
  memcpy(dest, spec, (size_t)(nl - spec));
  dest[nl - spec] = '\0';
  rest = nl + 1;
  fmt = rest[0] == 'c' ? S_IFCHR : rest[0] == 'b' ? S_IFBLK : rest[0] == 'p' ? S_IFIFO : 0;
  if (fmt == 0 || rest[1] != '\n')
    return pi_fail(e, "device", EINVAL, dest);
  rest += 2;
  if ((major = parse_decimal(&rest)) < 0 || (minor = parse_decimal(&rest)) < 0 ||
      (mode = parse_decimal(&rest)) < 0 || mode > 07777 || (uid = parse_decimal(&rest)) < 0 ||
      (gid = parse_decimal(&rest)) < 0)
    return pi_fail(e, "device", EINVAL, dest);
  slash = strrchr(dest, '/');
  if (slash == NULL || slash[1] == '\0')
    return pi_fail(e, "device", EINVAL, dest);
  memcpy(dir, dest, (size_t)(slash - dest));
  dir[slash - dest] = '\0';
  /* Missing parents are made inside the root, as for mounts. */
  dirfd = mkdirp_in_root(rootfd, dir[0] != '\0' ? dir : "/", e);
  if (dirfd < 0)
    return dirfd;
  /* Something already there (an image's own /dev): replaced, as the spec's entry wins. */
  if (mknodat(dirfd, slash + 1, fmt | (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) < 0 &&
      (errno != EEXIST || unlinkat(dirfd, slash + 1, 0) < 0 ||
       mknodat(dirfd, slash + 1, fmt | (mode_t)mode, makedev((unsigned)major, (unsigned)minor)) < 0))
    r = fail(e, "mknod", dest);
  else if (fchownat(dirfd, slash + 1, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0)
    r = fail(e, "device_chown", dest);
  else if (fchmodat(dirfd, slash + 1, (mode_t)mode, 0) < 0)
    r = fail(e, "device_chmod", dest);
  close(dirfd);
  return r;
}

static int setup_device(int rootfd, const char *spec, struct pi_error *e)
{
  return spec[0] == '+' ? make_node(rootfd, spec + 1, e) : bind_device(rootfd, spec, e);
}

static int dev_symlinks(int rootfd, struct pi_error *e)
{
  static const char *const links[][2] = {
      {"pts/ptmx", "ptmx"},           {"/proc/self/fd", "fd"},
      {"/proc/self/fd/0", "stdin"},   {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  int dev = open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);

  if (dev == -ENOENT)
    return 0;
  if (dev < 0)
    return pi_fail(e, "symlink", -dev, "/dev");
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST) {
      int r = fail(e, "symlink", links[i][1]);
      close(dev);
      return r;
    }
  }
  close(dev);
  return 0;
}

static int mask_path(const char *path, struct pi_error *e)
{
  struct stat st;

  if (stat(path, &st) < 0)
    return errno == ENOENT ? 0 : fail(e, "mask", path);
  if (S_ISDIR(st.st_mode)) {
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0") < 0)
      return fail(e, "mask", path);
  } else if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
    return fail(e, "mask", path);
  }
  return 0;
}

static int readonly_path(const char *path, struct pi_error *e)
{
  if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return errno == ENOENT ? 0 : fail(e, "readonly", path);
  return remount_bind(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, path, e);
}

/* Writes all of s to a /proc file. One write(2): proc files take the value whole. */
static int write_proc(const char *path, const char *s, size_t n, const char *step,
                      const char *detail, struct pi_error *e)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  ssize_t w;

  if (fd < 0)
    return fail(e, step, detail);
  w = write(fd, s, n);
  if (w < 0) {
    int r = fail(e, step, detail);
    close(fd);
    return r;
  }
  close(fd);
  return (size_t)w == n ? 0 : pi_fail(e, step, EIO, detail);
}

/* "net.ipv4.ip_forward=1" → "1" into /proc/sys/net/ipv4/ip_forward. The key was
 * checked on the TypeScript side (namespaced, no "/" or ".."); the '=' split is
 * the first one, so values may contain '='. */
static int write_sysctl(const char *kv, struct pi_error *e)
{
  static const char prefix[] = "/proc/sys/";
  char path[512];
  const char *eq = strchr(kv, '=');
  size_t klen;

  if (eq == NULL || eq == kv)
    return pi_fail(e, "sysctl", EINVAL, kv);
  klen = (size_t)(eq - kv);
  if (sizeof prefix - 1 + klen + 1 > sizeof path)
    return pi_fail(e, "sysctl", ENAMETOOLONG, kv);
  memcpy(path, prefix, sizeof prefix - 1);
  for (size_t i = 0; i < klen; i++)
    path[sizeof prefix - 1 + i] = kv[i] == '.' ? '/' : kv[i];
  path[sizeof prefix - 1 + klen] = '\0';
  return write_proc(path, eq + 1, strlen(eq + 1), "sysctl", kv, e);
}

/* Decimal without snprintf; v is in -1000..1000 but any int32 works. */
static size_t fmt_i32(char buf[12], int32_t v)
{
  char digits[11];
  uint32_t u = v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v;
  size_t n = 0, k = 0;

  do {
    digits[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0)
    buf[k++] = '-';
  while (n > 0)
    buf[k++] = digits[--n];
  buf[k] = '\0';
  return k;
}

/* Before the uid change: lowering the score needs privileges the process may
 * give up. /proc/self is the child itself in either pid namespace view. */
static int setup_oom(const struct pd_plan *p, struct pi_error *e)
{
  char buf[12];
  size_t n;

  if (!p->has_oom_score_adj)
    return 0;
  n = fmt_i32(buf, p->oom_score_adj);
  return write_proc("/proc/self/oom_score_adj", buf, n, "oom_score_adj", buf, e);
}

static const char *rlimit_name(uint32_t type)
{
  static const char *const names[] = {
      "RLIMIT_CPU",     "RLIMIT_FSIZE",  "RLIMIT_DATA",    "RLIMIT_STACK",
      "RLIMIT_CORE",    "RLIMIT_RSS",    "RLIMIT_NPROC",   "RLIMIT_NOFILE",
      "RLIMIT_MEMLOCK", "RLIMIT_AS",     "RLIMIT_LOCKS",   "RLIMIT_SIGPENDING",
      "RLIMIT_MSGQUEUE", "RLIMIT_NICE",  "RLIMIT_RTPRIO",  "RLIMIT_RTTIME",
  };
  return type < sizeof names / sizeof names[0] ? names[type] : "RLIMIT_?";
}

/* Before the uid change too, so a limit that needs privilege to raise has its best
 * chance. Raising a hard limit without CAP_SYS_RESOURCE (in the initial user
 * namespace) is EPERM: a launch error, never a silently weaker limit. prlimit64
 * takes 64-bit values, so RLIM_INFINITY passes through unchanged. */
static int setup_rlimits(const struct pd_plan *p, struct pi_error *e)
{
  for (uint32_t i = 0; i < p->n_rlimits; i++) {
    struct {
      uint64_t cur, max;
    } rl = {p->rlimits[i].soft, p->rlimits[i].hard};

    if (syscall(SYS_prlimit64, 0, p->rlimits[i].type, &rl, NULL) < 0)
      return fail(e, "setrlimit", rlimit_name(p->rlimits[i].type));
  }
  return 0;
}

/* Bounding set first, while the effective set still has CAP_SETPCAP; KEEPCAPS so
 * a change to a non-zero uid keeps the permitted set for capset() below (the
 * order runc and crun use). Caps past the kernel's last one give EINVAL: stop.
 * A plan without capability fields gets every set empty (has_caps is not read):
 * capabilities are granted by the spec, never inherited from init (decision 0026). */
static int caps_before_identity(const struct pd_plan *p, struct pi_error *e)
{
  for (unsigned long cap = 0; cap < 64; cap++) {
    if (p->cap_bounding & (UINT64_C(1) << cap))
      continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL)
        break;
      return fail(e, "capbset_drop", NULL);
    }
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return fail(e, "keepcaps", NULL);
  return 0;
}

/* After setresuid: the exact effective/permitted/inheritable sets, then ambient
 * (which the kernel only allows for caps both permitted and inheritable). Raw
 * capset, as libcap would allocate. */
static int caps_after_identity(const struct pd_plan *p, struct pi_error *e)
{
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];

  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return fail(e, "keepcaps", NULL);
  for (int i = 0; i < 2; i++) {
    data[i].effective = (uint32_t)(p->cap_effective >> (32 * i));
    data[i].permitted = (uint32_t)(p->cap_permitted >> (32 * i));
    data[i].inheritable = (uint32_t)(p->cap_inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) < 0)
    return fail(e, "capset", NULL);
  /* Start from nothing so the ambient set is exactly what the plan says. */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
    return fail(e, "cap_ambient", NULL);
  for (unsigned long cap = 0; cap < 64; cap++) {
    if (!(p->cap_ambient & (UINT64_C(1) << cap)))
      continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return fail(e, "cap_ambient_raise", NULL);
  }
  return 0;
}

/* linux.namespaces[{type: "mount", path}]: enter that namespace and build the rootfs
 * there, as runc does (which pivots that namespace into the rootfs for good: decision
 * 0034). The child was cloned without CLONE_NEWNS for it; setns also moves its root and
 * cwd to the namespace's. */
static int join_mount_ns(const struct pd_plan *p, struct pi_error *e)
{
  int fd, r = 0;

  if (p->mount_ns_path == NULL)
    return 0;
  fd = open(p->mount_ns_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(e, "mount_ns_path", p->mount_ns_path);
  if (setns(fd, CLONE_NEWNS) < 0)
    r = fail(e, "setns_mount", p->mount_ns_path);
  close(fd);
  return r;
}

static int setup_rootfs(const struct pd_plan *p, struct pi_error *e)
{
  /* runc's default when the spec names none: rslave (host mounts flow in, none out). */
  unsigned long prop = p->rootfs_propagation ? (unsigned long)p->rootfs_propagation
                                             : MS_REC | MS_SLAVE;
  int rootfd, r = 0;

  /* A shared "/" would both leak our mounts and make pivot_root fail; a slave one
   * is what the caller asked for and is allowed. */
  if (mount(NULL, "/", NULL, (prop & MS_SLAVE) ? MS_REC | MS_SLAVE : MS_REC | MS_PRIVATE,
            NULL) < 0)
    return fail(e, "make_private", "/");
  if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return fail(e, "bind_rootfs", p->rootfs);
  rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return fail(e, "open_rootfs", p->rootfs);

  for (uint32_t i = 0; i < p->n_mounts && r == 0; i++)
    r = do_mount(rootfd, &p->mounts[i], e);
  for (uint32_t i = 0; i < p->n_devices && r == 0; i++)
    r = setup_device(rootfd, p->devices[i], e);
  if (r == 0)
    r = dev_symlinks(rootfd, e);
  /* OCI: in the container's mount namespace, after the mounts, before pivot_root. */
  if (r == 0)
    r = pi_run_hooks(p, PD_HOOK_CREATE_CONTAINER, p->rootfs, e);
  if (r == 0 && fchdir(rootfd) < 0)
    r = fail(e, "chdir", p->rootfs);
  close(rootfd);
  if (r < 0)
    return r;

  if (p->no_pivot) {
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
      return fail(e, "move_root", p->rootfs);
    if (chroot(".") < 0)
      return fail(e, "chroot", p->rootfs);
  } else {
    /* pivot_root(".", ".") stacks the old root under the new one; detaching "."
     * then removes it without needing a directory for it in the image. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
      return fail(e, "pivot_root", p->rootfs);
    if (umount2(".", MNT_DETACH) < 0)
      return fail(e, "umount_old_root", p->rootfs);
  }
  if (chdir("/") < 0)
    return fail(e, "chdir", "/");
  if ((prop & PROPAGATION_FLAGS) != MS_PRIVATE &&
      mount(NULL, "/", NULL, prop, NULL) < 0)
    return fail(e, "rootfs_propagation", "/");

  /* Sysctls now: /proc is the container's, and readonly_path() is about to make
   * /proc/sys read-only. */
  for (uint32_t i = 0; i < p->n_sysctls; i++)
    if ((r = write_sysctl(p->sysctls[i], e)) < 0)
      return r;
  for (uint32_t i = 0; i < p->n_masked; i++)
    if ((r = mask_path(p->masked[i], e)) < 0)
      return r;
  for (uint32_t i = 0; i < p->n_readonly; i++)
    if ((r = readonly_path(p->readonly[i], e)) < 0)
      return r;
  if (p->rootfs_ro && remount_bind("/", MS_RDONLY, "/", e) < 0)
    return -e->err;
  return 0;
}

/* The pty comes from the container's own devpts (its /dev/ptmx, after pivot_root or
 * setns), so `tty` in the container names a /dev/pts/N that exists there. The slave
 * is opened from the master (TIOCGPTPEER), never by path, so nothing in the image
 * can swap the node. The master leaves over the console socket; the slave becomes
 * the controlling terminal (this child is a session leader by now) and fds 0-2. */
static int setup_console(const struct pi_launch *l, int stdio[3], struct pi_error *e)
{
  const struct pd_plan *p = l->plan;
  int unlock = 0, master, slave;
  static const char byte = 'T';

  master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0)
    return fail(e, "open_ptmx", "/dev/ptmx");
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) {
    fail(e, "unlockpt", NULL);
    goto err_master;
  }
  slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    fail(e, "open_pty_peer", NULL);
    goto err_master;
  }
  if (p->console_rows > 0 && p->console_cols > 0) {
    struct winsize ws = {.ws_row = (unsigned short)p->console_rows,
                         .ws_col = (unsigned short)p->console_cols};

    if (ioctl(slave, TIOCSWINSZ, &ws) < 0) {
      fail(e, "console_size", NULL);
      goto err_both;
    }
  }
  if (pd_sendfd(l->console_fd, master, &byte, 1) < 0) {
    fail(e, "console_send", NULL);
    goto err_both;
  }
  close(master);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) {
    int r = fail(e, "tiocsctty", NULL);
    close(slave);
    return r;
  }
  stdio[0] = stdio[1] = stdio[2] = slave;
  return 0;

err_both:
  close(slave);
err_master:
  close(master);
  return -e->err;
}

/* HOLD: tell the parent this child is ready, then wait for the go byte. EOF means
 * init went away or gave up on the container: never execve then. */
static void wait_for_release(const struct pi_launch *l)
{
  struct pi_child_report r;
  char go;
  ssize_t n;

  memset(&r, 0, sizeof r);
  memcpy(r.step, PI_HELD_STEP, sizeof PI_HELD_STEP);
  if (write(l->errfd, &r, sizeof r) != (ssize_t)sizeof r)
    _exit(127);
  do
    n = read(l->hold_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit(127);
}

static int has_cap_sys_admin(void);

/* The holder (native/c/hold/holder.c) finishes a start with only no_new_privs set
 * beforehand, the filter loaded and execve. It cannot run startContainer hooks, and
 * without no_new_privs it could not load a filter once the capabilities are gone: a
 * process with a filter and without no_new_privs got its filter before the
 * capabilities were dropped (setup_seccomp) and waits as init's copy. */
static int holder_can_finish(const struct pi_launch *l)
{
  const struct pd_plan *p = l->plan;

  if (l->holder_fd < 0 || l->holder_argv == NULL)
    return 0;
  for (uint32_t i = 0; i < p->n_hooks; i++)
    if (p->hooks[i].kind == PD_HOOK_START_CONTAINER)
      return 0;
  return l->seccomp.len == 0 || p->no_new_privs;
}

/* HOLD, the fast way: the fds the holder expects go to 3-6 and everything else is
 * closed at its execve, so the held process is a few pages rather than a copy of
 * init. Returns only on failure, with e filled and the reports now going to fd 4. */
static void exec_holder(const struct pi_launch *l, struct pi_launch *after, struct pi_error *e)
{
  const struct pd_plan *p = l->plan;
  int from[5], tmp[5], filter = -1;
  size_t want;

  *after = *l;
  signal(SIGPIPE, SIG_DFL);
  /* Only when the spec asks: holder_can_finish() sends a filter here only with it. */
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    fail(e, "no_new_privs", NULL);
    return;
  }
  if (l->seccomp.len > 0) {
    filter = (int)syscall(SYS_memfd_create, "paddock-seccomp", MFD_CLOEXEC);
    want = (size_t)l->seccomp.len * sizeof(struct sock_filter);
    if (filter < 0 || write(filter, l->seccomp.filter, want) != (ssize_t)want) {
      fail(e, "seccomp_memfd", NULL);
      return;
    }
  }
  from[0] = l->hold_fd;
  from[1] = l->errfd;
  from[2] = l->hold_w;
  from[3] = filter;
  from[4] = l->holder_fd;
  for (int i = 0; i < 5; i++) {
    tmp[i] = from[i] < 0 ? -1 : fcntl(from[i], F_DUPFD_CLOEXEC, 16);
    if (from[i] >= 0 && tmp[i] < 0) {
      fail(e, "holder_fds", NULL);
      return;
    }
  }
  after->errfd = tmp[1];
  for (int i = 0; i < 4; i++) {
    if (tmp[i] >= 0 && dup2(tmp[i], 3 + i) < 0) { /* without O_CLOEXEC: the holder's */
      fail(e, "holder_fds", NULL);
      return;
    }
  }
  after->errfd = 4;
  syscall(SYS_close_range, 7, ~0U, CLOSE_RANGE_CLOEXEC);
  syscall(SYS_execveat, tmp[4], "", l->holder_argv, p->envp, AT_EMPTY_PATH);
  fail(e, "holder_exec", NULL);
}

/* Moves the prepared fds to 0/1/2. Each is first copied above 2 so that a source
 * that is itself 0, 1 or 2 cannot be overwritten before it is used. */
static int setup_stdio(const int fds[3], struct pi_error *e)
{
  int tmp[3];

  for (int i = 0; i < 3; i++) {
    tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    if (tmp[i] < 0)
      return fail(e, "stdio", NULL);
  }
  for (int i = 0; i < 3; i++) {
    if (dup2(tmp[i], i) < 0) /* dup2 leaves the new fd without O_CLOEXEC */
      return fail(e, "stdio", NULL);
    close(tmp[i]);
  }
  return 0;
}

/* Raw syscalls, not the glibc wrappers: those broadcast the change to every thread
 * glibc believes exists (SIGSETXID), and this child inherited the parent's thread
 * list but none of its threads, so the wrapper spins forever. */
static int setup_identity(const struct pd_plan *p, struct pi_error *e)
{
  if (p->n_add_gids > 0) {
    if (syscall(SYS_setgroups, (size_t)p->n_add_gids, p->add_gids) < 0)
      return fail(e, "setgroups", NULL);
  } else if (syscall(SYS_setgroups, (size_t)0, NULL) < 0 && errno != EPERM) {
    /* EPERM: the user namespace has setgroups denied; there is nothing to drop. */
    return fail(e, "setgroups", NULL);
  }
  if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
    return fail(e, "setresgid", NULL);
  if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
    return fail(e, "setresuid", NULL);
  return 0;
}

/* CAP_SYS_ADMIN in the effective set, right now (raw capget: no allocation). */
static int has_cap_sys_admin(void)
{
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];

  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) < 0)
    return 0;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

/* Installing a filter needs no_new_privs or CAP_SYS_ADMIN. As runc does: with
 * no_new_privs (set first) the filter is the very last step before execve, so it
 * constrains as little of the setup as possible; without it, no_new_privs is never
 * set behind the spec's back, and the filter is loaded before the capabilities are
 * dropped, while the process still holds CAP_SYS_ADMIN. The setup calls after that
 * point (setgroups, setres[ug]id, prctl, capset, chdir, umask, rt_sigprocmask,
 * rt_sigaction, close_range, read/write, execve) then go through the filter, as they
 * do under runc. A process without CAP_SYS_ADMIN there (never, as paddock launches:
 * the child is root of its user namespace until the drop) gets runc's EACCES. */
static int setup_seccomp(const struct pi_launch *l, struct pi_error *e)
{
  long rc;

  if (l->seccomp.len == 0)
    return 0;
  if (!l->plan->no_new_privs && !has_cap_sys_admin())
    return pi_fail(e, "seccomp", EACCES, "a filter without noNewPrivileges needs CAP_SYS_ADMIN");
  rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, l->plan->seccomp_flags, &l->seccomp);
  if (rc < 0)
    return fail(e, "seccomp", NULL);
  if (rc != 0) /* TSYNC: the id of a thread that could not sync (none exist here) */
    return pi_fail(e, "seccomp", ESRCH, "tsync");
  return 0;
}

static long libc_execve(const char *file, char *const argv[], char *const envp[])
{
  execve(file, argv, envp);
  return -errno;
}

/* execvp's search (pd_execvp.h) into the buffer spawn.c sized for it. */
static int do_exec(const struct pi_launch *l, struct pi_error *e)
{
  const struct pd_plan *p = l->plan;
  const char *failed;
  int err = pd_execvp(p->argv[0], l->path, (char *const *)p->argv, (char *const *)p->envp,
                      l->candidate, l->candidate_cap, libc_execve, &failed);

  return pi_fail(e, "execve", err, failed);
}

/* Into the plan's cgroups ("0": this process), then into the cgroup namespace: made now
 * it is rooted at the container's own cgroup, so /proc/self/cgroup and a cgroup mount
 * inside show "/" and the container's limits, not the sandbox's. For an exec, the same
 * writes put the process in its container's cgroup before it runs anything. The paths
 * are init's view (the host's), so this comes before any setns or pivot_root. */
/* On v1, "0" in the sibling `tasks` file moves this thread, which is the whole process
 * (the child has one thread), without the kernel's global threadgroup lock and the RCU
 * grace period its write side waits for (docs/decisions/0046). cgroup2 has no `tasks`
 * file, and one this process may not write falls back to cgroup.procs as before. */
static int enter_cgroup(const char *procs, struct pi_error *e)
{
  static const char suffix[] = "cgroup.procs";
  char tasks[4096];
  size_t n = strlen(procs), stem;

  if (n >= sizeof suffix - 1 && strcmp(procs + n - (sizeof suffix - 1), suffix) == 0 &&
      (stem = n - (sizeof suffix - 1)) + sizeof "tasks" <= sizeof tasks) {
    int fd;

    memcpy(tasks, procs, stem);
    memcpy(tasks + stem, "tasks", sizeof "tasks");
    fd = open(tasks, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t w = write(fd, "0", 1);

      close(fd);
      if (w == 1)
        return 0;
    }
  }
  return write_proc(procs, "0", 1, "cgroup_procs", procs, e);
}

static int enter_cgroups(const struct pi_launch *l, struct pi_error *e)
{
  const struct pd_plan *p = l->plan;
  int r;

  for (uint32_t i = 0; i < p->n_cgroup_procs; i++)
    if ((int)i != l->born_in && (r = enter_cgroup(p->cgroup_procs[i], e)) < 0)
      return r;
  if (l->cgroupns_pidfd >= 0 && setns(l->cgroupns_pidfd, CLONE_NEWCGROUP) < 0)
    return fail(e, "setns_cgroup", NULL);
  if (l->new_cgroupns && unshare(CLONE_NEWCGROUP) < 0)
    return fail(e, "unshare_cgroup", NULL);
  return 0;
}

void pi_child_main(const struct pi_launch *l)
{
  const struct pd_plan *p = l->plan;
  struct pi_error e = {.step = "child", .err = 0};
  sigset_t all;
  int stdio[3];

  /* CVE-2019-5736: a non-dumpable process cannot be opened through /proc/<pid>/exe
   * by the container before execve replaces this image. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    fail(&e, "prctl_dumpable", NULL);
    report(l, &e);
  }
  if (enter_cgroups(l, &e) < 0)
    report(l, &e);
  if (l->join_pidfd >= 0) {
    /* EXEC: enter the container's mount (and cgroup) namespace; the pid namespace
     * was already chosen by the parent before clone3. setns(CLONE_NEWNS) also moves
     * root and cwd to the namespace's root, i.e. the container's rootfs. */
    if (setns(l->join_pidfd, (int)l->join_flags) < 0) {
      fail(&e, "setns", NULL);
      report(l, &e);
    }
  } else if (join_mount_ns(p, &e) < 0 || setup_rootfs(p, &e) < 0) {
    report(l, &e);
  }
  if (setsid() < 0) {
    fail(&e, "setsid", NULL);
    report(l, &e);
  }
  memcpy(stdio, l->stdio, sizeof stdio);
  if (p->terminal && setup_console(l, stdio, &e) < 0)
    report(l, &e);
  if (setup_stdio(stdio, &e) < 0 || setup_oom(p, &e) < 0 || setup_rlimits(p, &e) < 0 ||
      (!p->no_new_privs && setup_seccomp(l, &e) < 0) || caps_before_identity(p, &e) < 0 ||
      setup_identity(p, &e) < 0 || caps_after_identity(p, &e) < 0)
    report(l, &e);
  if (chdir(p->cwd != NULL ? p->cwd : "/") < 0) {
    fail(&e, "chdir", p->cwd);
    report(l, &e);
  }
  umask((mode_t)p->umask);
  /* init blocks the signals it reads through its signalfd; they must not stay blocked
   * in the container, and a held container must die of a kill as runc's does. */
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  /* create/start: everything the container needs is in place; start decides. The
   * startContainer hooks belong to start, so they run after the release. */
  if (l->hold_fd >= 0) {
    if (holder_can_finish(l)) {
      struct pi_launch after;

      exec_holder(l, &after, &e);
      report(&after, &e);
    }
    wait_for_release(l);
  }

  /* OCI: in the container, before the user process; as runc, with its identity and
   * capabilities, before no_new_privs and seccomp. Still with init's SIGPIPE
   * disposition (ignored), so a hook that closes its stdin cannot kill us. */
  if (pi_run_hooks(p, PD_HOOK_START_CONTAINER, NULL, &e) < 0)
    report(l, &e);

  /* init ignores SIGPIPE; that must not leak into the container. */
  signal(SIGPIPE, SIG_DFL);
  /* nng may own fds without O_CLOEXEC; the error pipe stays open until execve. */
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);

  /* Last, so nothing above is affected; execve is what it is meant to constrain. */
  if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    fail(&e, "no_new_privs", NULL);
    report(l, &e);
  }
  if (p->no_new_privs && setup_seccomp(l, &e) < 0)
    report(l, &e);

  do_exec(l, &e);
  report(l, &e);
}
