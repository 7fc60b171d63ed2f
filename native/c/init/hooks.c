/* OCI createContainer and startContainer hooks, run from a container's child
 * between clone3 and execve (docs/decisions/0013).
 *
 * The same rules as the rest of the child apply: it is a copy of a multithreaded
 * process, so only raw, async-signal-safe calls. The hook is started with a raw
 * clone3 (glibc's fork runs atfork handlers that take locks another thread may have
 * held at our clone), and everything the wait needs lives on this stack.
 *
 * A hook gets the state JSON on stdin, its output goes to a pipe whose last bytes
 * explain a failure, and it runs in a process group of its own that is SIGKILLed
 * when it outlives its timeout. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Bytes of the hook's output kept for the error detail. */
#define TAIL 120

struct hook_out {
  char tail[TAIL];
  size_t len;
};

/* Appends s[0..n) without allocating; returns the new length (truncating at cap-1). */
static size_t put(char *buf, size_t len, size_t cap, const char *s, size_t n)
{
  if (len + 1 >= cap)
    return len;
  if (n > cap - 1 - len)
    n = cap - 1 - len;
  memcpy(buf + len, s, n);
  len += n;
  buf[len] = '\0';
  return len;
}

static size_t put_str(char *buf, size_t len, size_t cap, const char *s)
{
  return put(buf, len, cap, s, strlen(s));
}

static size_t put_u32(char *buf, size_t len, size_t cap, uint32_t v)
{
  char d[10];
  int n = 0;

  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0)
    len = put(buf, len, cap, &d[--n], 1);
  return len;
}

/* The names a failed execve most likely reports; strerror is not safe here. */
static const char *exec_errno_name(int err)
{
  switch (err) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case ENOEXEC: return "ENOEXEC";
  case ENOTDIR: return "ENOTDIR";
  case ELOOP: return "ELOOP";
  case EPERM: return "EPERM";
  case ETXTBSY: return "ETXTBSY";
  case E2BIG: return "E2BIG";
  case ENOMEM: return "ENOMEM";
  default: return NULL;
  }
}

static void keep_tail(struct hook_out *o, const char *buf, size_t n)
{
  if (n >= TAIL) {
    memcpy(o->tail, buf + n - TAIL, TAIL);
    o->len = TAIL;
    return;
  }
  if (o->len + n > TAIL) {
    size_t drop = o->len + n - TAIL;
    memmove(o->tail, o->tail + drop, o->len - drop);
    o->len -= drop;
  }
  memcpy(o->tail + o->len, buf, n);
  o->len += n;
}

/* Reads what is there; returns 1 at EOF (every writer is gone). */
static int drain(int fd, struct hook_out *o)
{
  char buf[512];
  ssize_t n;

  while ((n = read(fd, buf, sizeof buf)) > 0)
    keep_tail(o, buf, (size_t)n);
  return n == 0;
}

static long now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The hook's side of the clone: never returns. */
__attribute__((noreturn)) static void hook_exec(const struct pd_hook *h, const char *cwd, int in_fd,
                                                int out_fd, int err_fd)
{
  const char *argv0[2] = {h->path, NULL};
  sigset_t none;
  int err;

  /* Its own group, so a timeout kills what it started too. */
  setpgid(0, 0);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
    goto fail;
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  /* init ignores SIGPIPE and blocks what it reads through its signalfd. */
  signal(SIGPIPE, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (cwd != NULL && chdir(cwd) < 0)
    goto fail;
  execve(h->path, (char *const *)(h->argc > 0 ? h->argv : argv0), (char *const *)h->envp);
fail:
  err = errno;
  if (write(err_fd, &err, sizeof err) < 0) {
  }
  _exit(127);
}

static void close_all(int *fds, int n)
{
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
}

/* The failure, as "hook <kind>[i]" and "<path>: <what>[: <output>]". */
static int hook_fail(struct pi_error *e, const char *kind, uint32_t index, int err,
                     const struct pd_hook *h, const char *what, uint32_t num,
                     const char *unit, const struct hook_out *o)
{
  char detail[sizeof e->detail];
  size_t len = 0, step_len = 0;

  step_len = put_str(e->stepbuf, 0, sizeof e->stepbuf, "hook ");
  step_len = put_str(e->stepbuf, step_len, sizeof e->stepbuf, kind);
  step_len = put_str(e->stepbuf, step_len, sizeof e->stepbuf, "[");
  step_len = put_u32(e->stepbuf, step_len, sizeof e->stepbuf, index);
  put_str(e->stepbuf, step_len, sizeof e->stepbuf, "]");

  detail[0] = '\0';
  len = put_str(detail, len, sizeof detail, h->path);
  len = put_str(detail, len, sizeof detail, ": ");
  len = put_str(detail, len, sizeof detail, what);
  if (num != UINT32_MAX)
    len = put_u32(detail, len, sizeof detail, num);
  len = put_str(detail, len, sizeof detail, unit);
  if (o != NULL && o->len > 0) {
    size_t start = len;

    len = put_str(detail, len, sizeof detail, ": ");
    start = len;
    len = put(detail, len, sizeof detail, o->tail, o->len);
    /* One line: the error travels as a single message. */
    for (size_t i = start; i < len; i++)
      if (detail[i] == '\n' || detail[i] == '\r' || detail[i] == '\0')
        detail[i] = ' ';
    while (len > start && detail[len - 1] == ' ')
      detail[--len] = '\0';
  }
  pi_fail(e, e->stepbuf, err, detail);
  return -err;
}

/* The state JSON as the hook reads it: HOOK_STATE with status and pid added. */
static int state_suffix(const char *state, size_t *head_len, char *suffix, size_t cap,
                        const char *status)
{
  const char *brace = strrchr(state, '}');
  size_t len = 0, i;

  if (brace == NULL)
    return -EINVAL;
  *head_len = (size_t)(brace - state);
  /* No comma after an empty object's "{". */
  for (i = *head_len; i > 0 && (state[i - 1] == ' ' || state[i - 1] == '\n'); i--) {
  }
  suffix[0] = '\0';
  if (i > 0 && state[i - 1] != '{')
    len = put_str(suffix, len, cap, ",");
  len = put_str(suffix, len, cap, "\"status\":\"");
  len = put_str(suffix, len, cap, status);
  len = put_str(suffix, len, cap, "\",\"pid\":");
  len = put_u32(suffix, len, cap, (uint32_t)getpid());
  put_str(suffix, len, cap, "}\n");
  return 0;
}

static int run_one(const struct pd_hook *h, const char *kind, uint32_t index, const char *state,
                   const char *status, const char *cwd, struct pi_error *e)
{
  int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, pidfd = -1, r;
  struct hook_out out = {.len = 0};
  char suffix[96];
  const char *chunks[2];
  size_t sizes[2], head_len, sent = 0, total;
  struct clone_args args;
  siginfo_t info;
  long deadline, pid;
  int exec_err = 0, out_eof = 0;

  if (state_suffix(state, &head_len, suffix, sizeof suffix, status) < 0)
    return hook_fail(e, kind, index, EINVAL, h, "bad state JSON", UINT32_MAX, "", NULL);
  chunks[0] = state;
  sizes[0] = head_len;
  chunks[1] = suffix;
  sizes[1] = strlen(suffix);
  total = sizes[0] + sizes[1];

  if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
    r = pi_fail(e, "hook_pipe", errno, h->path);
    goto out;
  }
  /* Our ends never block: the loop below waits in poll only. */
  fcntl(in_p[1], F_SETFL, O_NONBLOCK);
  fcntl(out_p[0], F_SETFL, O_NONBLOCK);

  memset(&args, 0, sizeof args);
  args.flags = CLONE_PIDFD;
  args.pidfd = (uint64_t)(uintptr_t)&pidfd;
  args.exit_signal = SIGCHLD;
  pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) {
    r = pi_fail(e, "hook_clone3", errno, h->path);
    goto out;
  }
  if (pid == 0)
    hook_exec(h, cwd, in_p[0], out_p[1], err_p[1]);
  close(in_p[0]);
  close(out_p[1]);
  close(err_p[1]);
  in_p[0] = out_p[1] = err_p[1] = -1;

  deadline = now_ms() + (long)h->timeout_s * 1000;
  for (;;) {
    /* poll skips negative fds: an output at EOF or a stdin fully written drop out. */
    struct pollfd pf[3] = {{pidfd, POLLIN, 0}, {out_eof ? -1 : out_p[0], POLLIN, 0},
                           {in_p[1], POLLOUT, 0}};
    long left = deadline - now_ms();
    int n;

    if (left <= 0) {
      /* The group first, then the hook itself in case it left the group. */
      kill(-(pid_t)pid, SIGKILL);
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
      while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR) {
      }
      drain(out_p[0], &out);
      r = hook_fail(e, kind, index, ETIMEDOUT, h, "timed out after ", h->timeout_s, "s", &out);
      goto out;
    }
    n = poll(pf, 3, left > 1000 ? 1000 : (int)left);
    if (n < 0 && errno != EINTR) {
      r = pi_fail(e, "hook_poll", errno, h->path);
      kill(-(pid_t)pid, SIGKILL);
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
      while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR) {
      }
      goto out;
    }
    if (n <= 0)
      continue;
    if (pf[1].revents)
      out_eof = drain(out_p[0], &out);
    if (in_p[1] >= 0 && pf[2].revents) {
      /* EPIPE (SIGPIPE is ignored here) or EAGAIN: a hook that does not read its
       * stdin is not an error; stop feeding it. */
      int werr = 0;

      while (sent < total) {
        size_t at = sent < sizes[0] ? sent : sent - sizes[0];
        const char *c = sent < sizes[0] ? chunks[0] : chunks[1];
        size_t want = (sent < sizes[0] ? sizes[0] : total) - sent;
        ssize_t w = write(in_p[1], c + at, want);

        if (w < 0) {
          werr = errno;
          break;
        }
        sent += (size_t)w;
      }
      if (sent == total || (pf[2].revents & (POLLERR | POLLHUP)) ||
          (werr != 0 && werr != EAGAIN && werr != EINTR)) {
        close(in_p[1]);
        in_p[1] = -1;
      }
    }
    if (pf[0].revents & POLLIN)
      break;
  }

  while ((r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED)) < 0 && errno == EINTR) {
  }
  if (r < 0) {
    r = pi_fail(e, "hook_wait", errno, h->path);
    goto out;
  }
  drain(out_p[0], &out);
  if (read(err_p[0], &exec_err, sizeof exec_err) == (ssize_t)sizeof exec_err) {
    const char *name = exec_errno_name(exec_err);
    char what[40];
    size_t wl = put_str(what, 0, sizeof what, "cannot execute: ");

    if (name != NULL)
      put_str(what, wl, sizeof what, name);
    else
      put_u32(what, put_str(what, wl, sizeof what, "errno "), sizeof what, (uint32_t)exec_err);
    r = hook_fail(e, kind, index, exec_err > 0 ? exec_err : EIO, h, what, UINT32_MAX, "", NULL);
  } else if (info.si_code == CLD_EXITED && info.si_status == 0) {
    r = 0;
  } else if (info.si_code == CLD_EXITED) {
    r = hook_fail(e, kind, index, ECHILD, h, "exit status ", (uint32_t)info.si_status, "", &out);
  } else {
    r = hook_fail(e, kind, index, ECHILD, h, "killed by signal ", (uint32_t)info.si_status, "", &out);
  }

out:
  if (pidfd >= 0)
    close(pidfd);
  close_all(in_p, 2);
  close_all(out_p, 2);
  close_all(err_p, 2);
  return r;
}

int pi_run_hooks(const struct pd_plan *p, uint32_t kind, const char *cwd, struct pi_error *e)
{
  const char *name = kind == PD_HOOK_CREATE_CONTAINER ? "createContainer" : "startContainer";
  const char *status = kind == PD_HOOK_CREATE_CONTAINER ? "creating" : "created";
  uint32_t index = 0;
  int r;

  for (uint32_t i = 0; i < p->n_hooks; i++) {
    if (p->hooks[i].kind != kind)
      continue;
    if (p->hook_state == NULL)
      return pi_fail(e, "hook_state", EINVAL, "a plan with hooks needs HOOK_STATE");
    if ((r = run_one(&p->hooks[i], name, index, p->hook_state, status, cwd, e)) < 0)
      return r;
    index++;
  }
  return 0;
}
