/* The launcher: clone3 a sandbox's paddock-init into fresh namespaces.
 *
 * The caller is multithreaded Node (libuv pool, V8 helpers, our watcher). After clone
 * the child is a copy of the calling thread only, and any lock some other thread held
 * at that instant stays held forever in the child. So everything the child needs
 * (argv, envp, fds, the init image) is prepared before clone3, and the child then
 * makes raw, async-signal-safe system calls only: no malloc, no stdio, and no glibc
 * set*id wrappers either, because glibc broadcasts those to every thread it believes
 * exists (the "setxid" dance) and would wait forever for threads the child lacks. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "paddock_native.h"
#include "pd_rawsys.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#define PD_IMAGE_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* struct clone_args up to CLONE_ARGS_SIZE_VER2 (cgroup, Linux 5.7); declared here so we
 * do not depend on the installed <linux/sched.h>, whose CLONE_* macros clash with <sched.h>. */
struct pd_clone_args {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

static int last_pidfd = -1;
static int last_ready_fd = -1;

int pd_last_pidfd(void) { return last_pidfd; }
int pd_last_ready_fd(void) { return last_ready_fd; }

static void close_fd(int *fd) {
  if (*fd >= 0) {
    /* EINTR from close still released the fd on Linux: never retry. */
    close(*fd);
    *fd = -1;
  }
}

/* ------------------------------------------------------------------------------ */
/* The sealed init image.                                                          */
/*                                                                                 */
/* The sandbox executes a memfd copy of paddock-init, never the host file: through */
/* /proc/<pid>/exe a process inside could otherwise open the host binary for       */
/* writing and replace it for the next launch (CVE-2019-5736). The copy is sealed  */
/* against any change, and made once per binary version (path + inode + mtime),    */
/* not once per launch: copying a static binary costs more than the launch itself. */
/* ------------------------------------------------------------------------------ */

#define IMAGE_SLOTS 4

struct init_image {
  char path[PATH_MAX];
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int fd; /* -1: slot free */
};

static struct init_image images[IMAGE_SLOTS] = {
    {.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
static unsigned next_victim;

static int same_version(const struct init_image *im, const struct stat *st) {
  return im->dev == st->st_dev && im->ino == st->st_ino && im->size == st->st_size &&
         im->mtime.tv_sec == st->st_mtim.tv_sec && im->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int make_sealed_copy(const char *path, int src, off_t size, int *out) {
  int memfd;
  off_t done = 0;

  /* MFD_EXEC states the intent explicitly so a vm.memfd_noexec=1 host does not seal
   * the copy non-executable; kernels before 6.3 do not know the flag (EINVAL). */
  memfd = memfd_create("paddock-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (memfd < 0 && errno == EINVAL)
    memfd = memfd_create("paddock-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0)
    return pd_fail("memfd_create", errno, "%s", path);

  while (done < size) {
    ssize_t n = sendfile(memfd, src, NULL, (size_t)(size - done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      close(memfd);
      return pd_fail("copy_init", err, "%s", path);
    }
    if (n == 0) /* the file shrank under us: refuse a torn copy */
      break;
    done += n;
  }
  if (done != size) {
    close(memfd);
    return pd_fail("copy_init", EIO, "%s: short copy", path);
  }

  if (fcntl(memfd, F_ADD_SEALS, PD_IMAGE_SEALS) < 0) {
    int err = errno;
    close(memfd);
    return pd_fail("seal_init", err, "%s", path);
  }
  *out = memfd;
  return 0;
}

/* A memfd sealed against every change: its content is fixed for as long as it exists. */
static int fully_sealed(int fd) {
  int seals = fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & PD_IMAGE_SEALS) == PD_IMAGE_SEALS;
}

int pd_image_is_sealed(int fd) { return fully_sealed(fd); }

/* Returns the cached sealed memfd for path (owned by the cache) or -errno. */
static int init_image_fd(const char *path) {
  struct stat st;
  struct init_image *im;
  int src, memfd = -1, ret;
  size_t len = strlen(path);
  unsigned i;

  if (len >= PATH_MAX)
    return pd_fail("open_init", ENAMETOOLONG, "%s", path);

  /* One stat per launch keeps a rebuilt paddock-init from being served stale. */
  if (stat(path, &st) < 0)
    return pd_fail("open_init", errno, "%s", path);
  for (i = 0; i < IMAGE_SLOTS; i++) {
    im = &images[i];
    if (im->fd >= 0 && strcmp(im->path, path) == 0 && same_version(im, &st))
      return im->fd;
  }

  src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (src < 0)
    return pd_fail("open_init", errno, "%s", path);
  /* Key the cache by what we actually opened, not by the earlier stat. */
  if (fstat(src, &st) < 0) {
    ret = pd_fail("open_init", errno, "%s", path);
    close(src);
    return ret;
  }
  if (!S_ISREG(st.st_mode)) {
    close(src);
    return pd_fail("open_init", EACCES, "%s: not a regular file", path);
  }
  if (fully_sealed(src)) {
    /* Already an image nothing can change (paddockd's, reached as /proc/PID/fd/N by its
     * client): a second copy would cost the launch ~1 ms and each sandbox 2 MB. */
    memfd = src;
  } else {
    ret = make_sealed_copy(path, src, st.st_size, &memfd);
    close(src);
    if (ret < 0)
      return ret;
  }

  /* Replace an older version of the same path, else take a free or the next slot. */
  im = NULL;
  for (i = 0; i < IMAGE_SLOTS && im == NULL; i++)
    if (images[i].fd >= 0 && strcmp(images[i].path, path) == 0)
      im = &images[i];
  for (i = 0; i < IMAGE_SLOTS && im == NULL; i++)
    if (images[i].fd < 0)
      im = &images[i];
  if (im == NULL)
    im = &images[next_victim++ % IMAGE_SLOTS];
  close_fd(&im->fd);
  memcpy(im->path, path, len + 1);
  im->dev = st.st_dev;
  im->ino = st.st_ino;
  im->size = st.st_size;
  im->mtime = st.st_mtim;
  im->fd = memfd;
  return memfd;
}

int pd_init_image(const char *path) { return init_image_fd(path); }

/* ------------------------------------------------------------------------------ */
/* The child, between clone3 and execveat.                                          */
/*                                                                                  */
/* posix_spawn-style: clone3(CLONE_VM) on a stack of our own, so the kernel copies  */
/* none of Node's page tables (fork of a 500 MB Node costs ~15 ms, then more again  */
/* when the child's copy is torn down at exec). The child therefore runs in the     */
/* supervisor's memory, with the calling thread's TLS: it writes nothing but its    */
/* own stack, makes raw system calls only (no errno, no glibc wrapper, no lock) and */
/* never returns (the trampoline ends it with exit_group if it ever did).           */
/* ------------------------------------------------------------------------------ */

/* Raw system calls: pd_rawsys.h (RSYS0..RSYS5). */

/* clone3 that, in the child, calls fn(arg) on the new stack (args->stack) and never
 * comes back. The child starts with every register of the parent but rax/x0 = 0 and
 * the stack pointer at the top of the new stack (16-byte aligned by the caller).
 * Returns the child's pid or -errno in the parent. */
static long clone3_run(struct pd_clone_args *args, void (*fn)(void *), void *arg) {
#if defined(__x86_64__)
  long ret;
  register long rdi __asm__("rdi") = (long)args;
  register long rsi __asm__("rsi") = (long)sizeof *args;
  register long rdx __asm__("rdx") = (long)fn;
  register long r8 __asm__("r8") = (long)arg;
  __asm__ volatile("syscall\n\t"
                   "test %%rax, %%rax\n\t"
                   "jnz 1f\n\t"
                   "xor %%ebp, %%ebp\n\t" /* end of the frame chain for unwinders */
                   "mov %%r8, %%rdi\n\t"
                   "call *%%rdx\n\t"
                   "mov $231, %%eax\n\t" /* exit_group(127): fn must not return */
                   "mov $127, %%edi\n\t"
                   "syscall\n\t"
                   "ud2\n"
                   "1:"
                   : "=a"(ret)
                   : "0"((long)SYS_clone3), "r"(rdi), "r"(rsi), "r"(rdx), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
#else
  register long x0 __asm__("x0") = (long)args;
  register long x1 __asm__("x1") = (long)sizeof *args;
  register long x2 __asm__("x2") = (long)fn;
  register long x3 __asm__("x3") = (long)arg;
  register long x8 __asm__("x8") = (long)SYS_clone3;
  __asm__ volatile("svc #0\n\t"
                   "cbnz x0, 1f\n\t"
                   "mov x29, xzr\n\t"
                   "mov x30, xzr\n\t"
                   "mov x0, x3\n\t"
                   "blr x2\n\t"
                   "mov x8, #94\n\t" /* exit_group(127) */
                   "mov x0, #127\n\t"
                   "svc #0\n\t"
                   "brk #0\n"
                   "1:"
                   : "+r"(x0)
                   : "r"(x1), "r"(x2), "r"(x3), "r"(x8)
                   : "memory");
  return x0;
#endif
}

/* Child steps travel as an index so the parent can hand out string literals. */
enum child_step {
  CS_SYNC_WAIT,
  CS_SIGNALS,
  CS_SETGROUPS,
  CS_SETRESGID,
  CS_SETRESUID,
  CS_DUP_STDIO,
  CS_CLOSE_RANGE,
  CS_EXECVEAT,
  CS_SETNS_USER,
  CS_UNSHARE,
  CS_CLONE_INIT,
  CS_COUNT
};

static const char *const child_step_names[CS_COUNT] = {
    [CS_SYNC_WAIT] = "sync_wait",       [CS_SIGNALS] = "reset_signals",
    [CS_SETGROUPS] = "setgroups",       [CS_SETRESGID] = "setresgid",
    [CS_SETRESUID] = "setresuid",       [CS_DUP_STDIO] = "dup_stdio",
    [CS_CLOSE_RANGE] = "close_range",   [CS_EXECVEAT] = "execveat",
    [CS_SETNS_USER] = "setns_user",     [CS_UNSHARE] = "unshare",
    [CS_CLONE_INIT] = "clone_init",
};

struct child_report {
  int32_t err;
  int32_t step;
};

#define PD_MAX_TASKS 12 /* v1 hierarchies a sandbox is placed in (paddock uses up to 7) */

struct child_ctx {
  int sync_rd, sync_wr; /* -1 when the parent has nothing to do before exec */
  /* v1 `tasks` files of the sandbox's cgroup, opened by the parent (-1: none): the child
   * writes "0" to each, moving itself (see place_self). */
  int tasks[PD_MAX_TASKS];
  int err_wr;
  int memfd;
  int src[4]; /* become 0, 1, 2 (stdio) and 3 (ready pipe) */
  int newuser;
  /* A user namespace to join (linux.namespaces[i].path), -1: none. The child then
   * joins it, unshares `unshare_flags` itself (so those namespaces are owned by the
   * joined one) and clones init as a sibling: see child_main. */
  int join_user;
  int unshare_flags;
  char *stack2;        /* init's stack in that case: the lower half of the child stack */
  size_t stack2_size;
  long init_pid;       /* written by the child: init's host pid (the parent sleeps) */
  char *const *argv;
  char *const *envp;
};

/* What the second stage needs from the first: fds already moved above 3. */
struct exec_args {
  const struct child_ctx *c;
  int errfd, memfd;
};

/* The kernel's struct sigaction (x86_64 and arm64 both have sa_restorer). */
struct k_sigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  uint64_t mask;
};

static __attribute__((noreturn)) void child_fail(int errfd, enum child_step step, long ret) {
  struct child_report r;

  r.err = ret < 0 ? (int32_t)-ret : EIO;
  r.step = (int32_t)step;
  /* Nothing to do if this fails: the parent then sees EOF and a dead child. */
  (void)RSYS3(SYS_write, errfd, &r, sizeof r);
  for (;;)
    (void)RSYS1(SYS_exit_group, 127);
}

static __attribute__((noreturn)) void child_exec(void *arg);

/* The child enters the sandbox's v1 cgroups itself, before it runs anything, by writing
 * "0" to each `tasks` file. A thread that moves itself is the one move the kernel makes
 * without the global threadgroup lock, whose write side waits for an RCU grace period
 * (4-15 ms here, and as long again for every launch, runc's and crun's included): with
 * one thread, moving the thread is moving the process. The parent opened the files (v1
 * checks the opener's rights at open and, at the write, that the mover is its own
 * target). A failed write is left to the supervisor, which checks /proc/PID/cgroup and
 * writes cgroup.procs where init is not yet. */
static void place_self(const struct child_ctx *c) {
  for (int i = 0; i < PD_MAX_TASKS; i++) {
    if (c->tasks[i] < 0)
      continue;
    (void)RSYS3(SYS_write, c->tasks[i], "0", 1);
    (void)RSYS1(SYS_close, c->tasks[i]); /* never into the sandbox */
  }
}

static __attribute__((noreturn)) void child_main(void *arg) {
  const struct child_ctx *c = arg;
  int errfd = c->err_wr, memfd = c->memfd, i;
  char byte;
  long r;
  uint64_t empty_mask = 0;

  place_self(c);
  if (c->sync_wr >= 0)
    (void)RSYS1(SYS_close, c->sync_wr); /* our copy of the table, not the parent's */

  /* Move the error pipe and the image above 3 first, so that installing fds 0..3
   * below can never clobber them, whatever numbers the parent happened to use. */
  if (errfd < 4) {
    r = RSYS3(SYS_fcntl, errfd, F_DUPFD_CLOEXEC, 4);
    if (r < 0)
      child_fail(errfd, CS_DUP_STDIO, r);
    errfd = (int)r;
  }
  if (memfd < 4) {
    r = RSYS3(SYS_fcntl, memfd, F_DUPFD_CLOEXEC, 4);
    if (r < 0)
      child_fail(errfd, CS_DUP_STDIO, r);
    memfd = (int)r;
  }

  /* The parent blocked every signal around clone3 so no Node handler can run in
   * here (it would run on Node's memory). Reset dispositions in our own copy of the
   * table before unblocking: SIG_IGN (Node ignores SIGPIPE) would outlive execve. */
  for (i = 1; i < 65; i++) {
    struct k_sigaction sa = {0, 0, 0, 0}; /* SIG_DFL */
    if (i == SIGKILL || i == SIGSTOP)
      continue;
    (void)RSYS4(SYS_rt_sigaction, i, &sa, 0, sizeof(uint64_t));
  }
  r = RSYS4(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, 0, sizeof empty_mask);
  if (r < 0)
    child_fail(errfd, CS_SIGNALS, r);

  if (c->sync_rd >= 0) {
    /* Wait until the parent has written our id maps. */
    do
      r = RSYS3(SYS_read, c->sync_rd, &byte, 1);
    while (r == -EINTR);
    if (r != 1)
      child_fail(errfd, CS_SYNC_WAIT, r < 0 ? r : -EPIPE);
    (void)RSYS1(SYS_close, c->sync_rd);
  }

  if (c->join_user >= 0) {
    /* Join first, create after: namespaces made from inside the joined user namespace
     * belong to it, so init (its root) has every capability over them. The kernel
     * lets a process join a user namespace when it is alone in its thread group and
     * shares no fs_struct; sharing Node's memory (CLONE_VM) does not matter. */
    if ((r = RSYS2(SYS_setns, c->join_user, CLONE_NEWUSER)) < 0)
      child_fail(errfd, CS_SETNS_USER, r);
    if ((r = RSYS1(SYS_unshare, c->unshare_flags)) < 0)
      child_fail(errfd, CS_UNSHARE, r);
  }

  if (c->newuser) {
    /* Become root of the user namespace: uid 0 across execve keeps the full
     * capability set there, which init needs to mount and pivot. Raw calls also
     * skip glibc's setxid broadcast to threads this process does not have. */
    if ((r = RSYS2(SYS_setgroups, 0, 0)) < 0)
      child_fail(errfd, CS_SETGROUPS, r);
    if ((r = RSYS3(SYS_setresgid, 0, 0, 0)) < 0)
      child_fail(errfd, CS_SETRESGID, r);
    if ((r = RSYS3(SYS_setresuid, 0, 0, 0)) < 0)
      child_fail(errfd, CS_SETRESUID, r);
  }

  if (c->join_user >= 0) {
    /* unshare(CLONE_NEWPID) moved our children, not us, into the new pid namespace:
     * init must be its pid 1, so it is cloned now. CLONE_PARENT makes it the
     * supervisor's child like any other sandbox (its exit signal is then ours,
     * SIGCHLD; clone3 insists on 0 here); CLONE_VFORK keeps this process, and so the
     * parent, asleep until init has execed or failed. */
    struct exec_args a2 = {c, errfd, memfd};
    struct pd_clone_args args2 = {0};
    struct child_ctx *wc = (struct child_ctx *)c;

    args2.flags = CLONE_VM | CLONE_VFORK | CLONE_PARENT;
    args2.stack = (uint64_t)(uintptr_t)c->stack2;
    args2.stack_size = c->stack2_size;
    r = clone3_run(&args2, child_exec, &a2);
    if (r < 0)
      child_fail(errfd, CS_CLONE_INIT, r);
    /* The one write into the parent's memory: it sleeps until we exit (CLONE_VFORK). */
    wc->init_pid = r;
    for (;;)
      (void)RSYS1(SYS_exit_group, 0);
  }
  {
    struct exec_args a = {c, errfd, memfd};
    child_exec(&a);
  }
}

/* The last steps before init runs: stdio, the fd table, execveat. */
static __attribute__((noreturn)) void child_exec(void *arg) {
  const struct exec_args *a = arg;
  const struct child_ctx *c = a->c;
  int errfd = a->errfd, memfd = a->memfd, tmp[4], i;
  long r;

  /* Two passes: first duplicate every source above 3 (F_DUPFD never reuses a live
   * number), then install. A source that is itself 0..3 is thus never overwritten
   * before it has been copied. dup3 without O_CLOEXEC clears it on 0..3. */
  for (i = 0; i < 4; i++) {
    r = RSYS3(SYS_fcntl, c->src[i], F_DUPFD_CLOEXEC, 4);
    if (r < 0)
      child_fail(errfd, CS_DUP_STDIO, r);
    tmp[i] = (int)r;
  }
  for (i = 0; i < 4; i++)
    if ((r = RSYS3(SYS_dup3, tmp[i], i, 0)) < 0)
      child_fail(errfd, CS_DUP_STDIO, r);

  /* Mark, rather than close, everything above 3: the error pipe and the image must
   * live until execveat, and exec then drops them all at once. */
  if ((r = RSYS3(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC)) < 0)
    child_fail(errfd, CS_CLOSE_RANGE, r);

  /* Until the supervisor has recorded our pid (init.pid), a supervisor that dies
   * takes us with it: nobody could find and kill a sandbox it never recorded. init
   * clears this once the record exists (native/c/init/main.c, adopted()). */
  if ((r = RSYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL)) < 0)
    child_fail(errfd, CS_EXECVEAT, r);

  /* No PR_SET_DUMPABLE here: dumpability belongs to the mm, which is Node's. The
   * parent covers the window in which our credentials differ from its own. */
  r = RSYS5(SYS_execveat, memfd, "", c->argv, c->envp, AT_EMPTY_PATH);
  child_fail(errfd, CS_EXECVEAT, r);
}

/* ------------------------------------------------------------------------------ */
/* The parent.                                                                     */
/* ------------------------------------------------------------------------------ */

/* One stack for the child of the launch in progress, made once, with a guard page
 * below it. Launches are serialised by launch_lock (the only caller is the JS main
 * thread anyway), and a child stops using the stack before pd_launch_init returns. */
#define CHILD_STACK_SIZE (64 * 1024)
static pthread_mutex_t launch_lock = PTHREAD_MUTEX_INITIALIZER;
static char *child_stack; /* lowest usable byte */

static int child_stack_get(void) {
  long page = sysconf(_SC_PAGESIZE);
  char *p;

  if (child_stack != NULL)
    return 0;
  if (page <= 0)
    page = 4096;
  p = mmap(NULL, CHILD_STACK_SIZE + (size_t)page, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (p == MAP_FAILED)
    return pd_fail("child_stack", errno, "mmap");
  if (mprotect(p + page, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE) < 0) {
    int err = errno;
    munmap(p, CHILD_STACK_SIZE + (size_t)page);
    return pd_fail("child_stack", err, "mprotect");
  }
  child_stack = p + page;
  return 0;
}

static void kill_and_reap(int pidfd) {
  siginfo_t info;

  (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
    ;
}

static int write_map(int pid, const char *file, const char *step, const char *map) {
  char path[64];
  size_t len = strlen(map);
  ssize_t n;
  int fd, err;

  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return pd_fail(step, errno, "%s", path);
  /* The kernel takes a map in one write() only. */
  n = write(fd, map, len);
  err = errno;
  close(fd);
  if (n < 0)
    return pd_fail(step, err, "%s", path);
  if ((size_t)n != len)
    return pd_fail(step, EIO, "%s: short write", path);
  return 0;
}

/* Namespaces given by path are joined by the calling thread just around clone3:
 * setns of a net, ipc, uts or cgroup namespace changes that thread only (Node's other
 * threads stay where they are), and clone3 copies the caller's namespaces into the
 * child before it applies any CLONE_NEW*. Joining before clone3 rather than in the
 * child is what makes a new user namespace work with a joined network one: inside
 * its own user namespace the child would have no capability over a namespace owned
 * by the host's (runc joins before it unshares the user namespace, for the same
 * reason). */
struct ns_join {
  int fd;    /* the namespace to join, -1: none */
  int saved; /* the thread's own, to go back to */
  int flag;
  const char *self; /* the thread's own namespace file */
};

static int join_namespaces(struct ns_join *j, int n) {
  int i;

  for (i = 0; i < n; i++) {
    if (j[i].fd < 0)
      continue;
    j[i].saved = open(j[i].self, O_RDONLY | O_CLOEXEC);
    if (j[i].saved < 0)
      return pd_fail("setns", errno, "%s", j[i].self);
    if (setns(j[i].fd, j[i].flag) < 0)
      return pd_fail("setns", errno, "fd %d (0x%x)", j[i].fd, (unsigned)j[i].flag);
  }
  return 0;
}

static void restore_namespaces(struct ns_join *j, int n) {
  int i;

  for (i = 0; i < n; i++) {
    if (j[i].saved < 0)
      continue;
    /* Setting back a namespace this thread was in a moment ago cannot fail short of
     * a kernel bug; if it did, the supervisor's main thread would go on working in
     * a sandbox's namespace, which is worse than stopping here. */
    if (setns(j[i].saved, j[i].flag) < 0)
      abort();
    close_fd(&j[i].saved);
  }
}

/* Opens the `tasks` files named in `list` ('\n'-separated) for the child; one that does
 * not open is skipped (the supervisor places init there itself). */
static void open_tasks(const char *list, int *fds) {
  int n = 0;

  for (int i = 0; i < PD_MAX_TASKS; i++)
    fds[i] = -1;
  while (list != NULL && *list != '\0' && n < PD_MAX_TASKS) {
    char path[PATH_MAX];
    const char *end = strchr(list, '\n');
    size_t len = end ? (size_t)(end - list) : strlen(list);
    if (len > 0 && len < sizeof path) {
      memcpy(path, list, len);
      path[len] = '\0';
      fds[n] = open(path, O_WRONLY | O_CLOEXEC);
      if (fds[n] >= 0)
        n++;
    }
    if (end == NULL)
      break;
    list = end + 1;
  }
}

static void close_tasks(int *fds) {
  for (int i = 0; i < PD_MAX_TASKS; i++)
    close_fd(&fds[i]);
}

static int launch_locked(const char *init_path, const char *sandbox_dir, int clone_flags,
                         const char *uid_map, const char *gid_map, int fd0, int fd1, int fd2,
                         int join_net, int join_ipc, int join_uts, int join_user,
                         int join_cgroup, int join_pid, const char *cgroup_tasks,
                         const char *cgroup_dir) {
  /* cgroup: joined here too, so the sandbox's containers (made without a cgroup
   * namespace of their own) live in it; it only changes how cgroup paths are shown
   * and mounted, and this thread is blocked in clone3 meanwhile. */
  struct ns_join joins[] = {
      {join_net, -1, CLONE_NEWNET, "/proc/thread-self/ns/net"},
      {join_ipc, -1, CLONE_NEWIPC, "/proc/thread-self/ns/ipc"},
      {join_uts, -1, CLONE_NEWUTS, "/proc/thread-self/ns/uts"},
      {join_cgroup, -1, CLONE_NEWCGROUP, "/proc/thread-self/ns/cgroup"},
      /* pid: setns only changes the namespace this thread's next children are born
       * in, so init is born in it (not its pid 1: it becomes a subreaper there, as
       * it finds itself not pid 1; docs/decisions/0036). */
      {join_pid, -1, CLONE_NEWPID, "/proc/thread-self/ns/pid_for_children"},
  };
  const int njoins = (int)(sizeof joins / sizeof joins[0]);
  int sync_p[2] = {-1, -1}, err_p[2] = {-1, -1}, ready_p[2] = {-1, -1};
  int devnull = -1, pidfd = -1, memfd, stdio[3] = {fd0, fd1, fd2}, ret, i;
  int newuser = (clone_flags & CLONE_NEWUSER) != 0 || join_user >= 0, need_sync, undump = 0;
  int init_pidfd = -1, tasks[PD_MAX_TASKS], cgroup_fd = -1;
  long pid;
  sigset_t all, old;
  struct pd_clone_args args;
  struct child_ctx ctx;
  struct child_report report;
  ssize_t n;
  char *argv[3];
  char *envp[1] = {NULL};

  if (init_path == NULL || init_path[0] != '/')
    return pd_fail("open_init", EINVAL, "init path must be absolute");
  if (sandbox_dir == NULL || sandbox_dir[0] != '/')
    return pd_fail("sandbox_dir", EINVAL, "sandbox dir must be absolute");
  if ((unsigned)clone_flags & ~(unsigned)PD_ALLOWED_CLONE_FLAGS)
    return pd_fail("clone_flags", EINVAL, "0x%x", (unsigned)clone_flags);
  for (i = 0; i < njoins; i++)
    if (joins[i].fd >= 0 && (clone_flags & joins[i].flag))
      return pd_fail("clone_flags", EINVAL, "0x%x both joined and created", (unsigned)joins[i].flag);
  if (uid_map != NULL && uid_map[0] == '\0')
    uid_map = NULL;
  if (gid_map != NULL && gid_map[0] == '\0')
    gid_map = NULL;
  /* A joined user namespace has its maps already, and nothing may be created outside it. */
  if (join_user >= 0 && (clone_flags & CLONE_NEWUSER))
    return pd_fail("clone_flags", EINVAL, "0x%x both joined and created", (unsigned)CLONE_NEWUSER);
  if (join_user >= 0 && (uid_map != NULL || gid_map != NULL))
    return pd_fail("uid_map", EINVAL, "id maps given for a joined user namespace");
  /* Only a child that must wait for its id maps needs the parent to run before it
   * execs; every other launch is a plain vfork: the parent sleeps until exec. */
  need_sync = (newuser && join_user < 0) || uid_map != NULL || gid_map != NULL;

  if ((ret = child_stack_get()) < 0)
    return ret;
  memfd = init_image_fd(init_path);
  if (memfd < 0)
    return memfd;
  open_tasks(cgroup_tasks, tasks);
  /* cgroup2 has no self-move without the global lock: clone3 places the child there at
   * birth instead (CLONE_INTO_CGROUP). Not with a joined cgroup namespace, whose root
   * need not hold the sandbox's cgroup; the supervisor moves init then, as before. */
  if (cgroup_dir != NULL && cgroup_dir[0] != '\0' && join_cgroup < 0)
    cgroup_fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  for (i = 0; i < 3; i++) {
    if (stdio[i] >= 0) {
      /* A closed fd would otherwise surface as a dup_stdio failure in the child. */
      if (fcntl(stdio[i], F_GETFD) < 0) {
        ret = pd_fail("stdio", errno, "fd %d (stdio %d)", stdio[i], i);
        goto out;
      }
      continue;
    }
    if (devnull < 0) {
      devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
      if (devnull < 0) {
        ret = pd_fail("open_devnull", errno, "/dev/null");
        goto out;
      }
    }
    stdio[i] = devnull;
  }

  /* All pipes are close-on-exec in the supervisor, so no other child Node spawns
   * meanwhile can hold a copy (that would keep EOF from ever arriving). */
  if ((need_sync && pipe2(sync_p, O_CLOEXEC) < 0) || pipe2(err_p, O_CLOEXEC) < 0 ||
      pipe2(ready_p, O_CLOEXEC) < 0) {
    ret = pd_fail("pipe2", errno, NULL);
    goto out;
  }

  argv[0] = (char *)"paddock-init";
  argv[1] = (char *)sandbox_dir;
  argv[2] = NULL;
  ctx = (struct child_ctx){
      .sync_rd = sync_p[0],
      .sync_wr = sync_p[1],
      .err_wr = err_p[1],
      .memfd = memfd,
      .src = {stdio[0], stdio[1], stdio[2], ready_p[1]},
      .newuser = newuser,
      .join_user = join_user,
      .unshare_flags = clone_flags,
      .stack2 = child_stack,
      .stack2_size = CHILD_STACK_SIZE / 2,
      .init_pid = -1,
      .argv = argv,
      .envp = envp,
  };
  memcpy(ctx.tasks, tasks, sizeof tasks);
  memset(&args, 0, sizeof args);
  /* CLONE_VM: share, do not copy, Node's address space. With CLONE_VFORK the kernel
   * resumes us once the child has execed or died; without it (id maps to write) we
   * wait for the same moment on the error pipe below, and until then ctx, argv and
   * the child stack stay untouched. */
  args.flags = CLONE_PIDFD | CLONE_VM | (need_sync ? 0 : CLONE_VFORK) |
               (join_user >= 0 ? 0 : (uint64_t)(unsigned)clone_flags);
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  /* SIGCHLD so the sandbox is an ordinary child we can waitid() for. Deliberately no
   * pdeathsig: a sandbox outlives a crashed or restarted supervisor. */
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)child_stack;
  args.stack_size = CHILD_STACK_SIZE;
  if (join_user >= 0) {
    /* Two stages on the one stack: the child on the upper half, init (cloned by it,
     * while it sleeps in clone3) on the lower half, above the guard page. */
    args.stack = (uint64_t)(uintptr_t)(child_stack + CHILD_STACK_SIZE / 2);
    args.stack_size = CHILD_STACK_SIZE / 2;
    /* setns into the user namespace hands the child other credentials while it runs in
     * our memory, and the kernel then sets the mm (Node's) to suid_dumpable: keep it
     * non-dumpable for the window on purpose (a root of the joined namespace could
     * otherwise ptrace the child) and give the flag back afterwards, as below. */
    if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
      undump = 1;
  }

  /* No signal handler may run in the child before it has reset them. */
  if ((ret = join_namespaces(joins, njoins)) < 0) {
    restore_namespaces(joins, njoins);
    goto out;
  }
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = clone3_run(&args, child_main, &ctx);
  if (pid < 0 && cgroup_fd >= 0) {
    /* Refused there (a kernel before 5.7, a cgroup with controllers for its children,
     * a namespace it is not in): born where we are, and moved by the supervisor. */
    args.flags &= ~CLONE_INTO_CGROUP;
    args.cgroup = 0;
    pid = clone3_run(&args, child_main, &ctx);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  restore_namespaces(joins, njoins);
  if (pid < 0) {
    ret = pd_fail("clone3", (int)-pid, "flags 0x%x", (unsigned)clone_flags);
    goto out;
  }

  /* Keep only our ends, or EOF on the error pipe would never come. */
  close_fd(&sync_p[0]);
  close_fd(&err_p[1]);
  close_fd(&ready_p[1]);

  if (join_user >= 0) {
    siginfo_t info;
    long ipid = ctx.init_pid;

    /* The first stage has exited (CLONE_VFORK): reap it, and from here on deal with
     * init, our child through CLONE_PARENT and so never reaped behind our back. */
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
      ;
    close_fd(&pidfd);
    if (ipid > 0) {
      init_pidfd = (int)syscall(SYS_pidfd_open, (pid_t)ipid, 0);
      if (init_pidfd < 0) {
        /* Cannot happen for an unreaped child; without a pidfd it cannot be waited
         * for through the watcher either, so it must not live on. */
        ret = pd_fail("pidfd_open", errno, "pid %ld", ipid);
        (void)kill((pid_t)ipid, SIGKILL);
        (void)waitpid((pid_t)ipid, NULL, 0);
        goto out;
      }
    }
    pidfd = init_pidfd;
    pid = ipid;
  }

  if (need_sync) {
    if (uid_map != NULL && (ret = write_map((int)pid, "uid_map", "uid_map", uid_map)) < 0)
      goto fail_child;
    if (gid_map != NULL && (ret = write_map((int)pid, "gid_map", "gid_map", gid_map)) < 0)
      goto fail_child;

    /* Once it has the byte the child takes uid 0 of its namespace, i.e. a host uid
     * that may differ from ours (0 -> 100000), while it still runs in our memory:
     * the same host uid must not ptrace or read /proc/<pid>/mem of it meanwhile.
     * The fork-based launcher set the child's copy non-dumpable; here that flag is
     * Node's own, so clear it just for the window and restore it after exec. */
    if (newuser && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 &&
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
      undump = 1;

    do
      n = write(sync_p[1], "g", 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
      ret = pd_fail("sync", n < 0 ? errno : EIO, NULL);
      goto fail_child;
    }
    close_fd(&sync_p[1]);
  }

  /* EOF: execveat succeeded and closed the child's copy (it is close-on-exec, and
   * exec closes those only after leaving our address space). */
  do
    n = read(err_p[0], &report, sizeof report);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ret = pd_fail("read_errpipe", errno, NULL);
    goto fail_child;
  }
  if (n > 0 || pidfd < 0) {
    const char *step = "child";
    if (n == 0) { /* the first stage died without a word */
      ret = pd_fail(step, EIO, "%s", init_path);
      goto out;
    }
    if (n == (ssize_t)sizeof report && report.step >= 0 && report.step < CS_COUNT)
      step = child_step_names[report.step];
    ret = pd_fail(step, n == (ssize_t)sizeof report ? report.err : EIO, "%s", init_path);
    goto fail_child;
  }

  last_pidfd = pidfd;
  last_ready_fd = ready_p[0];
  ready_p[0] = -1;
  pidfd = -1;
  ret = (int)pid;
  goto out;

fail_child:
  /* Also what makes the child stack free again: the child is gone once reaped. */
  if (pidfd >= 0)
    kill_and_reap(pidfd);
out:
  if (undump)
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  close_tasks(tasks);
  close_fd(&cgroup_fd);
  close_fd(&pidfd);
  close_fd(&devnull);
  for (i = 0; i < 2; i++) {
    close_fd(&sync_p[i]);
    close_fd(&err_p[i]);
    close_fd(&ready_p[i]);
  }
  return ret;
}

int pd_launch_init(const char *init_path, const char *sandbox_dir, int clone_flags,
                   const char *uid_map, const char *gid_map, int fd0, int fd1, int fd2,
                   int join_net, int join_ipc, int join_uts, int join_user,
                   int join_cgroup, int join_pid, const char *cgroup_tasks,
                   const char *cgroup_dir) {
  int ret;

  pd_ok();
  last_pidfd = -1;
  last_ready_fd = -1;
  pthread_mutex_lock(&launch_lock);
  ret = launch_locked(init_path, sandbox_dir, clone_flags, uid_map, gid_map, fd0, fd1, fd2,
                      join_net, join_ipc, join_uts, join_user, join_cgroup, join_pid,
                      cgroup_tasks, cgroup_dir);
  pthread_mutex_unlock(&launch_lock);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* The id maps of a user namespace given by path.                                   */
/*                                                                                  */
/* Nothing in the supervisor can read them directly (uid_map belongs to a process,  */
/* and a bind-mounted namespace may have none), so a throw-away child joins the     */
/* namespace and reads its own /proc/thread-self/{uid,gid}_map into our memory:     */
/* CLONE_VM|CLONE_VFORK on the launch stack, raw calls only, as the launch child.   */
/* As for runc, the ids are shown relative to the namespace's parent.               */
/* ------------------------------------------------------------------------------ */

#define MAP_TEXT_MAX 4096 /* the kernel caps a map at 340 lines; 4 KiB covers any real one */

static char last_uid_map[MAP_TEXT_MAX + 1];
static char last_gid_map[MAP_TEXT_MAX + 1];

const char *pd_last_uid_map(void) { return last_uid_map; }
const char *pd_last_gid_map(void) { return last_gid_map; }

struct maps_ctx {
  int fd;
  long err;  /* -errno of the step that failed, 0 */
  int step;  /* 0 setns, 1 uid_map, 2 gid_map */
  long len[2];
  char *buf[2];
};

static long read_whole(const char *path, char *buf, long cap) {
  long fd = RSYS4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0), n, got = 0;

  if (fd < 0)
    return fd;
  while (got < cap) {
    n = RSYS3(SYS_read, fd, buf + got, cap - got);
    if (n == -EINTR)
      continue;
    if (n < 0) {
      (void)RSYS1(SYS_close, fd);
      return n;
    }
    if (n == 0)
      break;
    got += n;
  }
  (void)RSYS1(SYS_close, fd);
  return got < cap ? got : -EFBIG;
}

static __attribute__((noreturn)) void maps_child(void *arg) {
  struct maps_ctx *m = arg;
  long r;

  if ((r = RSYS2(SYS_setns, m->fd, CLONE_NEWUSER)) < 0) {
    m->err = r;
    m->step = 0;
  } else if ((r = read_whole("/proc/thread-self/uid_map", m->buf[0], MAP_TEXT_MAX)) < 0) {
    m->err = r;
    m->step = 1;
  } else {
    m->len[0] = r;
    if ((r = read_whole("/proc/thread-self/gid_map", m->buf[1], MAP_TEXT_MAX)) < 0) {
      m->err = r;
      m->step = 2;
    } else {
      m->len[1] = r;
    }
  }
  for (;;)
    (void)RSYS1(SYS_exit_group, 0);
}

int pd_userns_maps(int fd) {
  static const char *const steps[3] = {"setns", "uid_map", "gid_map"};
  struct maps_ctx m = {fd, 0, 0, {0, 0}, {last_uid_map, last_gid_map}};
  struct pd_clone_args args;
  sigset_t all, old;
  siginfo_t info;
  int pidfd = -1, undump = 0, ret = 0;
  long pid;

  pd_ok();
  last_uid_map[0] = last_gid_map[0] = '\0';
  pthread_mutex_lock(&launch_lock);
  if ((ret = child_stack_get()) < 0)
    goto out;
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK;
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)child_stack;
  args.stack_size = CHILD_STACK_SIZE;
  /* The child takes the joined namespace's credentials in our memory: see the
   * launch's dumpable window. */
  if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    undump = 1;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = clone3_run(&args, maps_child, &m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (undump)
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  if (pid < 0) {
    ret = pd_fail("clone3", (int)-pid, "userns maps");
    goto out;
  }
  while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
    ;
  close_fd(&pidfd);
  if (m.err < 0) {
    last_uid_map[0] = last_gid_map[0] = '\0';
    ret = pd_fail(steps[m.step], (int)-m.err, "fd %d", fd);
    goto out;
  }
  last_uid_map[m.len[0]] = '\0';
  last_gid_map[m.len[1]] = '\0';
out:
  pthread_mutex_unlock(&launch_lock);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* The idmapped rootfs of a sandbox with an id range of its own (decision 0028).    */
/*                                                                                  */
/* The kernel lets only a caller with CAP_SYS_ADMIN over the filesystem's           */
/* superblock (host root, for a rootfs on the host's disk) idmap a mount, so the    */
/* supervisor makes it: a detached clone of the rootfs (open_tree OPEN_TREE_CLONE), */
/* idmapped to the sandbox's user namespace (mount_setattr MOUNT_ATTR_IDMAP), then  */
/* attached over the rootfs path inside init's mount namespace by a throw-away      */
/* child that joins it (setns(CLONE_NEWNS) needs an unshared fs_struct, which no    */
/* thread of ours has). Each container's mount namespace is a copy of init's, so    */
/* its bind of the rootfs (child.c, bind_rootfs) takes the idmapped mount, while    */
/* the host's mount table and the files on disk are left as they were. The mount    */
/* ends with init's namespace: nothing to undo, also after a supervisor crash.      */
/* ------------------------------------------------------------------------------ */

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define PD_PIDFD_GET_USER_NAMESPACE 0xFF09 /* _IO(PIDFS_IOCTL_MAGIC, 9), Linux 6.11 */

struct pd_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

struct idmap_ctx {
  int pidfd, tree;
  const char *target;
  long err; /* -errno of the step that failed, 0 */
  int step; /* 0 setns, 1 move_mount */
};

static __attribute__((noreturn)) void idmap_child(void *arg) {
  struct idmap_ctx *m = arg;
  long r;

  /* setns with a pidfd: the mount namespace of that very process, no pid reuse race. */
  if ((r = RSYS2(SYS_setns, m->pidfd, CLONE_NEWNS)) < 0) {
    m->err = r;
    m->step = 0;
  } else if ((r = RSYS5(SYS_move_mount, m->tree, "", AT_FDCWD, m->target,
                        MOVE_MOUNT_F_EMPTY_PATH)) < 0) {
    m->err = r;
    m->step = 1;
  }
  for (;;)
    (void)RSYS1(SYS_exit_group, 0);
}

static int userns_of(int pidfd) {
  char path[64];
  int fd = ioctl(pidfd, PD_PIDFD_GET_USER_NAMESPACE, 0), pid;
  FILE *f;
  char line[128];

  if (fd >= 0 || errno != ENOTTY)
    return fd >= 0 ? fd : -errno;
  /* A kernel before 6.11: the pid from the pidfd's fdinfo, then /proc/PID/ns/user,
   * checked afterwards against reuse by the pidfd still being alive. */
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  f = fopen(path, "re");
  if (f == NULL)
    return -errno;
  pid = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Pid: %d", &pid) == 1)
      break;
  fclose(f);
  if (pid <= 0)
    return -ESRCH;
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
    close(fd);
    return -ESRCH;
  }
  return fd;
}

/* Runs idmap_child (setns into init's mount namespace, move_mount of m->tree onto
 * m->target) in a throw-away CLONE_VM child and names the step that failed. */
static int attach_in_init(struct idmap_ctx *m, const char *const steps[2], const char *what) {
  struct pd_clone_args args;
  sigset_t all, old;
  siginfo_t info;
  int child_pidfd = -1, r;
  long pid;

  pthread_mutex_lock(&launch_lock);
  if ((r = child_stack_get()) < 0) {
    pthread_mutex_unlock(&launch_lock);
    return r;
  }
  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD | CLONE_VM | CLONE_VFORK;
  args.pidfd = (uint64_t)(uintptr_t)&child_pidfd;
  args.exit_signal = SIGCHLD;
  args.stack = (uint64_t)(uintptr_t)child_stack;
  args.stack_size = CHILD_STACK_SIZE;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = clone3_run(&args, idmap_child, m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    pthread_mutex_unlock(&launch_lock);
    return pd_fail("clone3", (int)-pid, "attach %s", what);
  }
  while (waitid((idtype_t)P_PIDFD, (id_t)child_pidfd, &info, WEXITED) < 0 && errno == EINTR)
    ;
  pthread_mutex_unlock(&launch_lock);
  close_fd(&child_pidfd);
  if (m->err < 0)
    return pd_fail(steps[m->step], (int)-m->err, "%s", what);
  return 0;
}

int pd_idmap_rootfs(int pidfd, const char *rootfs) {
  static const char *const steps[2] = {"idmap_setns", "idmap_move_mount"};
  struct idmap_ctx m = {pidfd, -1, rootfs, 0, 0};
  struct pd_mount_attr attr;
  int userns = -1, ret = 0;

  pd_ok();
  if (rootfs == NULL || rootfs[0] != '/')
    return pd_fail("idmap_rootfs", EINVAL, "rootfs must be absolute");
  userns = userns_of(pidfd);
  if (userns < 0)
    return pd_fail("idmap_userns", -userns, "pidfd %d", pidfd);
  /* AT_RECURSIVE: the rootfs with whatever is mounted below it, as bind_rootfs's
   * MS_REC bind would take it; each of those filesystems must support idmapping. */
  m.tree = (int)syscall(SYS_open_tree, AT_FDCWD, rootfs,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (m.tree < 0) {
    ret = pd_fail("idmap_open_tree", errno, "%s", rootfs);
    goto out;
  }
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (uint64_t)userns;
  if (syscall(SYS_mount_setattr, m.tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
    ret = pd_fail("idmap_mount_setattr", errno, "%s", rootfs);
    goto out;
  }
  ret = attach_in_init(&m, steps, rootfs);
out:
  if (m.tree >= 0)
    close(m.tree);
  close_fd(&userns);
  return ret;
}

/* A file bound over a path of init's mount namespace (decision 0038): /dev/kvm for a
 * user-namespaced sandbox is a node the supervisor made, owned by the sandbox's own
 * root, since a mapped id cannot open the host's root-only node. The clone is made
 * here, in the host's namespace, so `source` may sit where init cannot walk. */
int pd_bind_into(int pidfd, const char *source, const char *target) {
  static const char *const steps[2] = {"bind_setns", "bind_move_mount"};
  struct idmap_ctx m = {pidfd, -1, target, 0, 0};
  int ret;

  pd_ok();
  if (source == NULL || source[0] != '/' || target == NULL || target[0] != '/')
    return pd_fail("bind_into", EINVAL, "paths must be absolute");
  m.tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (m.tree < 0)
    return pd_fail("bind_open_tree", errno, "%s", source);
  ret = attach_in_init(&m, steps, target);
  close(m.tree);
  return ret;
}
