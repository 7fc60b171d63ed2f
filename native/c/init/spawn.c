/* The parent half of a launch: prepare everything the child needs (fds, buffers),
 * clone3, then learn from the error pipe whether execve happened.
 *
 * The error pipe is O_CLOEXEC in the child: EOF on the read end means execve
 * succeeded; a struct pi_child_report means a step failed and the child exited. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "pd_fdpass.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct launch_fds {
  int stdio[3];
  int owned[3]; /* 1 when stdio[i] was opened here and must be closed */
  int err_r, err_w;
  int cons_r, cons_w; /* TERMINAL: the child sends the pty master over cons_w */
  int hold_r, hold_w; /* HOLD: the child waits on hold_r */
};

static void close_set(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void launch_fds_release(struct launch_fds *f)
{
  for (int i = 0; i < 3; i++)
    if (f->owned[i] && f->stdio[i] >= 0)
      close(f->stdio[i]);
  close_set(&f->err_r);
  close_set(&f->err_w);
  close_set(&f->cons_r);
  close_set(&f->cons_w);
  close_set(&f->hold_r);
  close_set(&f->hold_w);
}

/* The master the child sent before it exec'd (or started to wait): already queued,
 * so this never blocks. */
static int recv_master(int sock, struct pi_error *e)
{
  char byte;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                       .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c;
  int fd;

  errno = 0;
  if (recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
    return pi_fail(e, "console_recv", errno ? errno : EPROTO, NULL);
  c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)))
    return pi_fail(e, "console_recv", EPROTO, "no fd");
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* Hands the master to the supervisor's console endpoint (a unix socket it listens on
 * in the state dir; docs/decisions/0012). The payload names the device, as runc's
 * console protocol does. connect() on a listening unix socket completes at once. */
static int send_master(const char *named, int master, struct pi_error *e)
{
  static const char name[] = "/dev/ptmx";
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char buf[4200];
  /* The endpoint is in stdin/, reached directly (statedir.c). */
  const char *path = pi_statedir_path(named, buf, sizeof buf);
  int sock, r = 0;

  if (strlen(path) >= sizeof addr.sun_path)
    return pi_fail(e, "console_connect", ENAMETOOLONG, named);
  memcpy(addr.sun_path, path, strlen(path) + 1);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return pi_fail(e, "console_socket", errno, named);
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
    r = pi_fail(e, "console_connect", errno, named);
    goto out;
  }
  if (pd_sendfd(sock, master, name, sizeof name - 1) < 0)
    r = pi_fail(e, "console_send", errno, named);
out:
  close(sock);
  return r;
}

/* A child that will never run: kill it and reap it here, before the reaper can
 * mistake it for a container's exit. */
static void kill_unstarted(pid_t pid, int pidfd)
{
  int status;

  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

/* Copies a child's failure report into e. */
static int child_failed(const struct pi_child_report *rep, int n, struct pi_error *e)
{
  if (n != (int)sizeof *rep)
    return pi_fail(e, "error_pipe", n < 0 ? -n : EPROTO, NULL);
  /* The step name lives in the child's report; keep a copy in e. */
  memcpy(e->stepbuf, rep->step, sizeof e->stepbuf);
  e->stepbuf[sizeof e->stepbuf - 1] = '\0';
  memcpy(e->detail, rep->detail, sizeof rep->detail);
  e->detail[sizeof rep->detail - 1] = '\0';
  e->step = e->stepbuf;
  e->err = rep->err > 0 ? rep->err : EPROTO;
  return -e->err;
}

static int open_stdio(int i, const char *path, uint32_t inherit, int *fd, int *owned,
                      struct pi_error *e)
{
  static const char *const steps[3] = {"open_stdin", "open_stdout", "open_stderr"};
  char buf[4200];
  const char *named = path;

  *owned = 0;
  /* The state dir may be closed to us by now: reach logs/ and stdin/ directly. */
  path = pi_statedir_path(path, buf, sizeof buf);
  if (inherit & (1u << i)) {
    *fd = i;
    return 0;
  }
  if (path == NULL) {
    *fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
  } else if (i == 0) {
    /* The supervisor already holds the FIFO open for writing, so this does not
     * block; O_NONBLOCK is only a guard and is cleared for the process. */
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd >= 0 && fcntl(*fd, F_SETFL, 0) < 0) {
      int r = pi_fail(e, steps[i], errno, path);
      close(*fd);
      *fd = -1;
      return r;
    }
  } else if (pi_log_size_max > 0) {
    /* Capped: through a pipe init reads (logrelay.c). */
    return pi_relay_open(path, fd, e) < 0 ? -e->err : (*owned = 1, 0);
  } else {
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  }
  if (*fd < 0)
    return pi_fail(e, steps[i], errno, named ? named : "/dev/null");
  *owned = 1;
  return 0;
}

static const char *plan_path(const struct pd_plan *p)
{
  for (uint32_t i = 0; i < p->envc; i++)
    if (strncmp(p->envp[i], "PATH=", 5) == 0)
      return p->envp[i] + 5;
  return DEFAULT_PATH;
}

static void *arena_alloc(struct pd_arena *a, size_t n)
{
  void *p;

  n = (n + 15) & ~(size_t)15;
  if (a->size - a->used < n)
    return NULL;
  p = a->base + a->used;
  a->used += n;
  return p;
}

/* The filter as the kernel reads it: struct sock_filter[] needs 4-byte alignment
 * (u32 k), which the decoder's arena copy has, but do not rely on that: copy it to
 * 16-byte-aligned arena memory here, before clone3, so the child only passes a
 * pointer. */
static int prepare_seccomp(const struct pd_plan *p, struct pd_arena *a, struct sock_fprog *prog,
                           struct pi_error *e)
{
  unsigned char *raw;
  uintptr_t at;

  memset(prog, 0, sizeof *prog);
  if (p->seccomp_bpf == NULL || p->seccomp_len == 0)
    return 0;
  if (p->seccomp_len % sizeof(struct sock_filter) != 0 ||
      p->seccomp_len / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return pi_fail(e, "seccomp", EINVAL, "filter length");
  raw = arena_alloc(a, (size_t)p->seccomp_len + 16);
  if (raw == NULL)
    return pi_fail(e, "arena", ENOMEM, NULL);
  at = ((uintptr_t)raw + 15) & ~(uintptr_t)15;
  memcpy((void *)at, p->seccomp_bpf, p->seccomp_len);
  prog->len = (unsigned short)(p->seccomp_len / sizeof(struct sock_filter));
  prog->filter = (struct sock_filter *)at;
  return 0;
}

/* paddock-hold's argv (native/c/hold/holder.c), built before clone3 so the child
 * never allocates; NULL (wait as init's copy) if the arena is full. */
static char *const *holder_argv(const struct pd_plan *p, const struct pi_launch *l,
                                struct pd_arena *a)
{
  char **v = arena_alloc(a, (4 + (size_t)p->argc + 1) * sizeof *v);
  char *num = arena_alloc(a, 48);

  if (v == NULL || num == NULL)
    return NULL;
  v[0] = "paddock-hold";
  v[1] = num;
  v[2] = num + 24;
  snprintf(v[1], 24, "%u", (unsigned)l->seccomp.len);
  snprintf(v[2], 24, "%u", (unsigned)p->seccomp_flags);
  v[3] = (char *)l->path;
  for (uint32_t i = 0; i < p->argc; i++)
    v[4 + i] = (char *)p->argv[i];
  v[4 + p->argc] = NULL;
  return v;
}

static pid_t do_clone(uint64_t flags, int *pidfd, int cgroup_fd)
{
  struct clone_args args;

  memset(&args, 0, sizeof args);
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)pidfd;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* The directory of the plan's cgroup2 `cgroup.procs` entry, opened for clone3: on
 * cgroup2 the child's own "0" would take the kernel's global threadgroup lock, whose
 * write side waits for an RCU grace period; being born there does not (decision 0046).
 * Sets l->born_in to the entry; -1 (and no fd) when there is none or it does not open. */
static int cgroup2_dir(struct pi_launch *l)
{
  const struct pd_plan *p = l->plan;

  for (uint32_t i = 0; i < p->n_cgroup_procs; i++) {
    const char *procs = p->cgroup_procs[i], *slash = strrchr(procs, '/');
    char dir[4096];
    struct statfs st;
    int fd;

    if (slash == NULL || strcmp(slash, "/cgroup.procs") != 0 || (size_t)(slash - procs) >= sizeof dir)
      continue;
    memcpy(dir, procs, (size_t)(slash - procs));
    dir[slash - procs] = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      continue;
    if (fstatfs(fd, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) {
      l->born_in = (int)i;
      return fd;
    }
    close(fd);
  }
  return -1;
}

/* Waits for EOF (execve happened) or a report. Only as long as the child's setup
 * takes: the child either execs or exits. */
static int read_report(int fd, struct pi_child_report *r)
{
  size_t got = 0;

  while (got < sizeof *r) {
    ssize_t n = read(fd, (char *)r + got, sizeof *r - got);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (int)got;
}

static int spawn_child(struct pi_launch *l, uint64_t clone_flags, int *pidfd,
                       pid_t *pid, struct pi_error *e)
{
  int cgroup_fd = cgroup2_dir(l), err;

  *pid = do_clone(clone_flags, pidfd, cgroup_fd);
  if (*pid < 0 && cgroup_fd >= 0) {
    /* Refused there (a kernel before 5.7, a namespace that does not hold the cgroup, a
     * cgroup with controllers for its children): born here, and the child moves itself
     * with "0" as before. The child reads born_in from its copy of memory, made now. */
    l->born_in = -1;
    *pid = do_clone(clone_flags, pidfd, -1);
  }
  err = errno;
  if (cgroup_fd >= 0)
    close(cgroup_fd); /* in the child too: nothing of the host's cgroup tree goes in */
  if (*pid < 0)
    return pi_fail(e, "clone3", err, NULL);
  if (*pid == 0)
    pi_child_main(l);
  return 0;
}

/* The running container a plan names to share one of its namespaces with. */
static int running_container(const char *cid, const char *step, struct pi_container **out,
                             struct pi_error *e)
{
  struct pi_container *c = pi_find_container(cid);

  if (c == NULL || c->root == NULL || c->root->state != PD_STATE_RUNNING)
    return pi_fail(e, step, ESRCH, cid);
  *out = c;
  return 0;
}

/* The pid `state` and the pid file report is ours, not the container's (conmon and
 * containerd-shim wait on it), so whoever reads /proc/<that pid>/ns/cgroup to check a
 * new cgroup namespace would see the host's. When the root container made one of its
 * own, our main thread (whose namespace /proc/<pid>/ns shows) joins it: it only
 * changes how cgroup paths read from here, and the child has made it by now (it
 * reports held, or exec'd, only after enter_cgroups). Pod containers that neither make
 * nor name one are then made in it too: the sandbox's cgroup namespace is its root
 * container's, as a path to ours already means (docs/decisions/0045). */
static void follow_root_cgroupns(const struct pi_container *ct, const struct pi_launch *l, int pidfd)
{
  if (!l->new_cgroupns || l->cgroupns_pidfd >= 0)
    return;
  if (setns(pidfd, CLONE_NEWCGROUP) < 0)
    pi_diag("setns_cgroup: %s (container %s): init stays in its cgroup namespace", strerror(errno), ct->cid);
}

int pi_spawn(const char *cid, const struct pd_plan *plan, struct pi_container *exec_ct,
             struct pd_arena *arena, struct pi_proc **out, struct pi_error *e)
{
  struct launch_fds f = {.stdio = {-1, -1, -1}, .err_r = -1, .err_w = -1,
                         .cons_r = -1, .cons_w = -1, .hold_r = -1, .hold_w = -1};
  struct pi_launch l;
  struct pi_child_report rep;
  struct pi_container *ct = exec_ct;
  uint64_t clone_flags;
  int pid_setns = 0;
  int pidfd = -1, r, n, pipefd[2], status, held = 0;
  pid_t pid;

  memset(&l, 0, sizeof l);
  l.plan = plan;
  l.join_pidfd = -1;
  l.cgroupns_pidfd = -1;
  l.born_in = -1;
  l.console_fd = -1;
  l.hold_fd = -1;
  l.hold_w = -1;
  l.holder_fd = -1;
  if (plan->terminal) {
    if (plan->console_socket == NULL)
      return pi_fail(e, "console", EINVAL, "terminal without a console socket");
    /* SEQPACKET: the one message with the fd arrives whole or not at all. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pipefd) < 0)
      return pi_fail(e, "socketpair", errno, NULL);
    f.cons_r = pipefd[0];
    f.cons_w = pipefd[1];
    l.console_fd = f.cons_w;
  }
  if (plan->hold && exec_ct == NULL) {
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
      r = pi_fail(e, "pipe", errno, NULL);
      goto out;
    }
    f.hold_r = pipefd[0];
    f.hold_w = pipefd[1];
    l.hold_fd = f.hold_r;
  }
  for (int i = 0; i < 3; i++) {
    const char *path = i == 0 ? plan->stdin_path : i == 1 ? plan->stdout_path
                                                          : plan->stderr_path;
    r = open_stdio(i, path, plan->stdio_inherit, &f.stdio[i], &f.owned[i], e);
    if (r < 0)
      goto out;
    l.stdio[i] = f.stdio[i];
  }
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    r = pi_fail(e, "pipe", errno, NULL);
    goto out;
  }
  f.err_r = pipefd[0];
  f.err_w = pipefd[1];
  l.errfd = f.err_w;
  l.path = plan_path(plan);
  l.candidate_cap = strlen(l.path) + strlen(plan->argv[0]) + 2;
  l.candidate = arena_alloc(arena, l.candidate_cap);
  if (l.candidate == NULL) {
    r = pi_fail(e, "arena", ENOMEM, NULL);
    goto out;
  }
  r = prepare_seccomp(plan, arena, &l.seccomp, e);
  if (r < 0)
    goto out;
  if (f.hold_w >= 0) {
    l.hold_w = f.hold_w;
    l.holder_fd = pi_holder_fd();
    if (l.holder_fd >= 0)
      l.holder_argv = holder_argv(plan, &l, arena);
  }

  if (exec_ct == NULL) {
    struct pi_container *pid_owner = NULL, *cgroup_owner = NULL;

    if (plan->rootfs == NULL) {
      r = pi_fail(e, "rootfs", EINVAL, "START_CONTAINER plan without ROOTFS");
      goto out;
    }
    /* A pod's shared process namespace: the container is made in the namespace of
     * a running container (the pod's first), as an exec is, but with its own rootfs. */
    if (plan->pid_ns_of != NULL && (r = running_container(plan->pid_ns_of, "pid_ns_of", &pid_owner, e)) < 0)
      goto out;
    if (plan->cgroup_ns_of != NULL) {
      if (plan->ns_flags & CLONE_NEWCGROUP) {
        r = pi_fail(e, "cgroup_ns_of", EINVAL, "NS_FLAGS also asks for a new cgroup namespace");
        goto out;
      }
      if ((r = running_container(plan->cgroup_ns_of, "cgroup_ns_of", &cgroup_owner, e)) < 0)
        goto out;
    }
    ct = pi_new_container(cid, plan->ns_flags);
    if (ct == NULL) {
      r = pi_fail(e, "malloc", ENOMEM, NULL);
      goto out;
    }
    /* No CLONE_NEWCGROUP: a namespace made by clone3 would be rooted at init's cgroup,
     * the sandbox's; the child makes it once it has entered its own (runc's order). */
    clone_flags = plan->ns_flags & (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                                    CLONE_NEWNET);
    /* The rootfs setup needs its own mount namespace, whatever the plan says. */
    clone_flags |= CLONE_NEWNS;
    l.new_cgroupns = (plan->ns_flags & CLONE_NEWCGROUP) != 0;
    /* A container in init's cgroup namespace has nothing to join (and joining the
     * host's from a user namespace would be EPERM). Otherwise its execs join the
     * container's namespace, as for one it made itself. */
    if (cgroup_owner != NULL && (cgroup_owner->ns_flags & CLONE_NEWCGROUP)) {
      l.cgroupns_pidfd = cgroup_owner->root->pidfd;
      ct->ns_flags |= CLONE_NEWCGROUP;
    }
    /* An owner without a pid namespace of its own is in ours (a root container in
     * the pid namespace the spec named, decision 0036): children land there anyway,
     * and setns into it would need CAP_SYS_ADMIN over its owner, which a user-
     * namespaced init lacks for a namespace the host's owns. */
    pid_setns = pid_owner != NULL && (pid_owner->ns_flags & CLONE_NEWPID) != 0;
    if (pid_owner != NULL) {
      clone_flags &= ~(uint64_t)CLONE_NEWPID;
      ct->ns_flags &= ~(uint32_t)CLONE_NEWPID;
    }
    /* As for an exec: pid_ns_for_children of this thread only, undone after clone3. */
    if (pid_setns && setns(pid_owner->root->pidfd, CLONE_NEWPID) < 0) {
      r = pi_fail(e, "setns_pid", errno, pid_owner->cid);
      goto out_ct;
    }
    r = spawn_child(&l, clone_flags, &pidfd, &pid, e);
    if (pid_setns && setns(g.own_pidns_fd, CLONE_NEWPID) < 0) {
      /* Every later START would land in the other container: not survivable. */
      abort();
    }
  } else {
    l.join_pidfd = exec_ct->root->pidfd;
    l.join_flags = CLONE_NEWNS | (exec_ct->ns_flags & CLONE_NEWCGROUP);
    /* setns(CLONE_NEWPID) on this thread only changes the namespace of the
     * children it creates next; it is undone right after clone3. A container without
     * a pid namespace of its own is in ours (see above): nothing to join. */
    pid_setns = (exec_ct->ns_flags & CLONE_NEWPID) != 0;
    if (pid_setns && setns(exec_ct->root->pidfd, CLONE_NEWPID) < 0) {
      r = pi_fail(e, "setns_pid", errno, exec_ct->cid);
      goto out;
    }
    r = spawn_child(&l, 0, &pidfd, &pid, e);
    if (pid_setns && setns(g.own_pidns_fd, CLONE_NEWPID) < 0) {
      /* Every later START would land in the container: not survivable. */
      abort();
    }
  }
  if (r < 0)
    goto out_ct;

  close_set(&f.err_w);
  close_set(&f.cons_w);
  close_set(&f.hold_r);
  n = read_report(f.err_r, &rep);
  held = f.hold_w >= 0 && n == (int)sizeof rep && rep.err == 0 &&
         strncmp(rep.step, PI_HELD_STEP, sizeof rep.step) == 0;
  if (n != 0 && !held) {
    /* The child failed (or the pipe did): it has exited or is about to. */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(pidfd);
    r = child_failed(&rep, n, e);
    goto out_ct;
  }
  if (f.cons_r >= 0) {
    int master = recv_master(f.cons_r, e);

    r = master < 0 ? master : send_master(plan->console_socket, master, e);
    if (master >= 0)
      close(master);
    if (r < 0) {
      kill_unstarted(pid, pidfd);
      close(pidfd);
      goto out_ct;
    }
  }

  if (exec_ct == NULL) {
    pi_link_container(ct);
    if (g.root_ct == NULL) {
      g.root_ct = ct;
      follow_root_cgroupns(ct, &l, pidfd);
    }
  }
  *out = pi_add_proc(ct, pid, pi_host_pid(pidfd), pidfd,
                     exec_ct == NULL ? PD_KIND_CONTAINER : PD_KIND_EXEC);
  if (*out == NULL) {
    /* Out of memory after the process started: do not leave it untracked. */
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(pidfd);
    r = pi_fail(e, "malloc", ENOMEM, NULL);
    if (exec_ct == NULL)
      pi_forget_container(ct);
    goto out;
  }
  if (held) {
    (*out)->held_exec = strncmp(rep.detail, "holder", sizeof rep.detail) == 0;
    (*out)->hold_w = f.hold_w;
    (*out)->hold_report = f.err_r;
    f.hold_w = f.err_r = -1;
  }
  r = 0;
  goto out;

out_ct:
  if (exec_ct == NULL && ct != NULL)
    pi_free_container(ct);
out:
  launch_fds_release(&f);
  return r;
}

int pi_release(struct pi_container *ct, struct pi_error *e)
{
  struct pi_proc *p = ct->root;
  struct pi_child_report rep;
  int n;

  if (p == NULL || p->hold_w < 0)
    return pi_fail(e, "release", EINVAL, ct->cid);
  if (p->held_exec) {
    struct pollfd pf = {.fd = p->hold_report, .events = POLLIN};

    /* The supervisor may have released it through the holder's own fds; then its
     * outcome is already on the pipe (or on its way: the byte below is harmless). */
    if (poll(&pf, 1, 0) == 1) {
      siginfo_t si;

      /* EOF also comes from a holder killed while it waited: that is no start. */
      memset(&si, 0, sizeof si);
      if (p->state != PD_STATE_RUNNING ||
          (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0))
        return pi_fail(e, "release", ESRCH, "exited while held");
      close_set(&p->hold_w);
      n = read_report(p->hold_report, &rep);
      close_set(&p->hold_report);
      return n == 0 ? 0 : child_failed(&rep, n, e);
    }
  }
  if (write(p->hold_w, "g", 1) != 1) {
    /* EPIPE: it died while held; its exit is being recorded like any other. */
    int r = pi_fail(e, "release", errno, ct->cid);
    close_set(&p->hold_w);
    close_set(&p->hold_report);
    return r;
  }
  close_set(&p->hold_w);
  n = read_report(p->hold_report, &rep);
  close_set(&p->hold_report);
  if (n == 0)
    return 0;
  /* execve failed: the child exits 127 and the reaper records that as the
   * container's exit, as it would for a process that died right after starting. */
  return child_failed(&rep, n, e);
}
