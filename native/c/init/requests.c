/* Control requests: decode, act, reply. Every handler returns without waiting for
 * anything but a launching child's execve (or, for DESTROY, processes it SIGKILLed);
 * waiting for an exit is the supervisor's job, through events and WAIT polling. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

/* Large enough for a 1 MiB STACKS text; only the pages a reply uses get touched. */
#define REPLY_CAP (PD_HEADER_SIZE + PD_MAX_TEXT + 64)
static uint8_t reply_buf[REPLY_CAP] __attribute__((aligned(4096)));
static char text_buf[PD_MAX_TEXT + 1] __attribute__((aligned(4096)));
static struct pd_writer w;
/* The process whose EV_STARTED goes out once the reply has: the supervisor waits on
 * the reply, nobody on the event, so the event must not delay it (nng hands each
 * publish to its own threads, which on a busy host costs a reply tenths of ms). */
static const struct pi_proc *started_after_reply;

static void reply_begin(uint16_t type)
{
  pd_w_begin(&w, reply_buf, sizeof reply_buf, type);
}

static void reply_error(uint32_t code, int err, const char *step, const char *msg)
{
  reply_begin(PD_ERROR);
  pd_w_u32(&w, PD_T_CODE, code);
  if (err != 0)
    pd_w_i32(&w, PD_T_ERRNO, err);
  pd_w_str(&w, PD_T_STEP, step);
  if (msg != NULL && msg[0] != '\0')
    pd_w_str(&w, PD_T_MSG, msg);
}

static void send_reply(void)
{
  long len = pd_w_finish(&w);
  int rv;

  if (len < 0) {
    reply_error(PD_E_INTERNAL, E2BIG, "reply", "reply too large");
    len = pd_w_finish(&w);
  }
  rv = nng_send(g.rep, reply_buf, (size_t)len, 0);
  if (rv != 0)
    pi_diag("reply: %s", nng_strerror(rv));
  if (len > (64 << 10))
    madvise(reply_buf, ((size_t)len + 4095) & ~(size_t)4095, MADV_DONTNEED);
}

static void publish_started(const struct pi_proc *p)
{
  uint8_t buf[PD_HEADER_SIZE + PD_MAX_STR + 64];
  struct pd_writer ev;
  long len;

  pd_w_begin(&ev, buf, sizeof buf, PD_EV_STARTED);
  pd_w_str(&ev, PD_T_CID, p->ct->cid);
  pd_w_i32(&ev, PD_T_PID, p->pid);
  pd_w_i32(&ev, PD_T_HOST_PID, p->host_pid);
  pd_w_u32(&ev, PD_T_KIND, p->kind);
  if ((len = pd_w_finish(&ev)) > 0)
    pi_publish(buf, (size_t)len);
}

static void put_status(struct pd_writer *wr, const struct pi_proc *p)
{
  pd_w_u32(wr, PD_T_STATE, p->state);
  if (p->state == PD_STATE_EXITED) {
    pd_w_i32(wr, PD_T_EXIT_CODE, p->exit_code);
    pd_w_i32(wr, PD_T_SIGNAL, p->signal);
  }
}

static void do_spawn(const struct pd_msg *m, struct pd_arena *a)
{
  struct pi_container *ct = pi_find_container(m->cid);
  struct pi_proc *p;
  struct pi_error e;

  memset(&e, 0, sizeof e);
  if (m->type == PD_START_CONTAINER && ct != NULL && ct->root != NULL && ct->root->hold_w >= 0) {
    /* create made it with HOLD; this is its start. The plan was applied then. */
    if (pi_release(ct, &e) < 0)
      return reply_error(PD_E_LAUNCH, e.err, e.step, e.detail);
    p = ct->root;
    started_after_reply = p;
    reply_begin(PD_OK);
    pd_w_i32(&w, PD_T_PID, p->pid);
    pd_w_i32(&w, PD_T_HOST_PID, p->host_pid);
    return;
  }
  if (m->type == PD_START_CONTAINER && ct != NULL)
    return reply_error(PD_E_EXISTS, EEXIST, NULL, m->cid);
  if (m->type == PD_EXEC) {
    if (ct == NULL)
      return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, m->cid);
    if (ct->root == NULL || ct->root->state != PD_STATE_RUNNING)
      return reply_error(PD_E_BAD_STATE, ESRCH, NULL, "container has exited");
  }
  if (pi_spawn(m->cid, m->plan, m->type == PD_EXEC ? ct : NULL, a, &p, &e) < 0)
    return reply_error(PD_E_LAUNCH, e.err, e.step, e.detail);
  /* A held process starts when it is released. */
  if (p->hold_w < 0)
    started_after_reply = p;
  reply_begin(PD_OK);
  pd_w_i32(&w, PD_T_PID, p->pid);
  pd_w_i32(&w, PD_T_HOST_PID, p->host_pid);
  if (p->held_exec)
    pd_w_u32(&w, PD_T_HELD_EXEC, 1);
}

static void do_processes(const struct pd_msg *m)
{
  if (m->cid != NULL && pi_find_container(m->cid) == NULL)
    return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, m->cid);
  reply_begin(PD_OK);
  for (struct pi_container *ct = g.containers; ct != NULL; ct = ct->next) {
    if (m->cid != NULL && strcmp(m->cid, ct->cid) != 0)
      continue;
    for (struct pi_proc *p = ct->procs; p != NULL; p = p->next) {
      pd_w_nest_begin(&w, PD_T_PROC);
      pd_w_str(&w, PD_T_CID, ct->cid);
      pd_w_i32(&w, PD_T_PID, p->pid);
      pd_w_i32(&w, PD_T_HOST_PID, p->host_pid);
      pd_w_u32(&w, PD_T_KIND, p->kind);
      put_status(&w, p);
      pd_w_nest_end(&w);
    }
  }
}

static int send_signal(struct pi_proc *p, int signo)
{
  /* ESRCH: it exited and is not reaped yet; its exit record is on its way. */
  if (syscall(SYS_pidfd_send_signal, p->pidfd, signo, NULL, 0) < 0 && errno != ESRCH)
    return -errno;
  return 0;
}

static void do_signal(const struct pd_msg *m)
{
  struct pi_container *ct;
  struct pi_proc *target;
  int r = 0, sent = 0;

  if (!m->has_signo || m->signo < 1 || m->signo > 64)
    return reply_error(PD_E_BAD_SIGNAL, EINVAL, NULL, "signal must be 1..64");
  if ((ct = pi_find_container(m->cid)) == NULL)
    return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, m->cid);
  if (m->all) {
    for (struct pi_proc *p = ct->procs; p != NULL && r == 0; p = p->next) {
      if (p->state != PD_STATE_RUNNING)
        continue;
      r = send_signal(p, m->signo);
      sent++;
    }
    if (r == 0 && sent == 0)
      return reply_error(PD_E_BAD_STATE, ESRCH, NULL, "no running process");
  } else {
    target = (m->has_pid && m->pid != 0) ? pi_find_proc(ct, m->pid) : ct->root;
    if (target == NULL)
      return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, "no such process");
    if (target->state != PD_STATE_RUNNING)
      return reply_error(PD_E_BAD_STATE, ESRCH, NULL, "process has exited");
    r = send_signal(target, m->signo);
  }
  if (r < 0)
    return reply_error(PD_E_INTERNAL, -r, "pidfd_send_signal", NULL);
  reply_begin(PD_OK);
}

static void do_wait(const struct pd_msg *m)
{
  struct pi_container *ct = pi_find_container(m->cid);
  struct pi_proc *p;

  if (ct == NULL)
    return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, m->cid);
  if (m->type == PD_WAIT_PID && !m->has_pid)
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "WAIT_PID without PID");
  p = m->type == PD_WAIT ? ct->root : pi_find_proc(ct, m->pid);
  if (p == NULL)
    return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, "no such process");
  reply_begin(PD_OK);
  put_status(&w, p);
}

static void do_stacks(void)
{
  size_t n = 0, cap = sizeof text_buf;
  int k;

  k = snprintf(text_buf, cap, "paddock-init pid=%d root=%s\n", (int)getpid(),
               g.root_ct != NULL ? g.root_ct->cid : "-");
  n = k > 0 ? (size_t)k : 0;
  for (struct pi_container *ct = g.containers; ct != NULL && n < cap; ct = ct->next) {
    for (struct pi_proc *p = ct->procs; p != NULL && n < cap; p = p->next) {
      k = snprintf(text_buf + n, cap - n, "%s pid=%d host_pid=%d kind=%s state=%s",
                   ct->cid, (int)p->pid, (int)p->host_pid,
                   p->kind == PD_KIND_CONTAINER ? "container" : "exec",
                   p->state == PD_STATE_RUNNING ? "running" : "exited");
      if (k > 0)
        n += (size_t)k;
      if (p->state == PD_STATE_EXITED && n < cap) {
        k = snprintf(text_buf + n, cap - n, " exit_code=%d signal=%d", p->exit_code,
                     p->signal);
        if (k > 0)
          n += (size_t)k;
      }
      if (n < cap - 1)
        text_buf[n++] = '\n';
    }
  }
  if (n >= cap)
    n = cap - 1; /* truncated: snprintf already NUL-terminated it */
  text_buf[n] = '\0';
  reply_begin(PD_OK);
  pd_w_str(&w, PD_T_TEXT, text_buf);
  if (n > (64u << 10))
    madvise(text_buf, (n + 4095) & ~(size_t)4095, MADV_DONTNEED);
}

static void reap_one(struct pi_proc *p)
{
  int status;

  while (waitpid(p->pid, &status, 0) < 0) {
    if (errno != EINTR)
      return;
  }
  pi_record_exit(p, status);
}

static void do_destroy(const struct pd_msg *m)
{
  struct pi_container *ct = pi_find_container(m->cid);

  if (ct == NULL)
    return reply_error(PD_E_NOT_FOUND, ESRCH, NULL, m->cid);
  if (ct == g.root_ct)
    return reply_error(PD_E_BAD_STATE, EBUSY, NULL,
                       "the root container goes away with the sandbox");
  /* Kill every process, not only the root: without its own pid namespace the
   * container's exec'd processes would not die with it. */
  for (struct pi_proc *p = ct->procs; p != NULL; p = p->next)
    if (p->state == PD_STATE_RUNNING)
      syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
  /* Exec'd processes first: the container's PID 1 does not finish exiting until
   * every task of its pid namespace is reaped, and those are our children. */
  for (struct pi_proc *p = ct->procs; p != NULL; p = p->next)
    if (p->state == PD_STATE_RUNNING && p != ct->root)
      reap_one(p);
  if (ct->root != NULL && ct->root->state == PD_STATE_RUNNING)
    reap_one(ct->root);
  pi_forget_container(ct);
  reply_begin(PD_OK);
}

/* A process tree CRIU restored into this sandbox (docs/decisions/0040): criu ran in
 * init's pid namespace and detached, so its restored root is now init's child, and
 * becomes the root process of container CID, reaped and recorded like any other.
 * Not a child (yet, or any more: it exited before this request and was reaped as an
 * orphan) is an error: no status could be promised for it. */
static void do_adopt(const struct pd_msg *m)
{
  struct pi_container *ct;
  struct pi_proc *p;
  siginfo_t si;
  pid_t host_pid;
  int pidfd;

  if (m->pid <= 1)
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "PID must be a child of init");
  if (pi_find_container(m->cid) != NULL)
    return reply_error(PD_E_EXISTS, EEXIST, NULL, m->cid);
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)m->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
    return reply_error(PD_E_NOT_FOUND, errno, "waitid", "not a child of init");
  pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0);
  if (pidfd < 0)
    return reply_error(PD_E_NOT_FOUND, errno, "pidfd_open", NULL);
  host_pid = pi_host_pid(pidfd);
  /* paddock checkpoints only root containers with a pid and a mount namespace of their
   * own, and CRIU makes both again: exec joins them through the pidfd. */
  ct = pi_new_container(m->cid, CLONE_NEWNS | CLONE_NEWPID);
  if (ct == NULL || (p = pi_add_proc(ct, m->pid, host_pid, pidfd, PD_KIND_CONTAINER)) == NULL) {
    if (ct != NULL)
      pi_free_container(ct);
    close(pidfd);
    return reply_error(PD_E_INTERNAL, ENOMEM, "adopt", NULL);
  }
  pi_link_container(ct);
  if (g.root_ct == NULL)
    g.root_ct = ct;
  started_after_reply = p;
  reply_begin(PD_OK);
  pd_w_i32(&w, PD_T_PID, p->pid);
  pd_w_i32(&w, PD_T_HOST_PID, p->host_pid);
  /* Exited already but not reaped (WNOWAIT): the SIGCHLD still waits in the main
   * loop, whose reap now finds it known. */
}

static void handle(const struct pd_msg *m, struct pd_arena *a)
{
  int needs_cid = m->type != PD_PING && m->type != PD_PROCESSES &&
                  m->type != PD_STACKS && m->type != PD_PROBE_EVENTS;

  /* Replies, events and the sandbox plan decode fine but are not requests. */
  if (m->type >= PD_SANDBOX_PLAN)
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "not a request type");
  if (needs_cid && m->cid == NULL)
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "missing CID");
  if ((m->type == PD_START_CONTAINER || m->type == PD_EXEC) &&
      (m->plan == NULL || m->plan->argc < 1))
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "missing PLAN");

  switch (m->type) {
  case PD_PING:
    return reply_begin(PD_OK);
  case PD_START_CONTAINER:
  case PD_EXEC:
    return do_spawn(m, a);
  case PD_PROCESSES:
    return do_processes(m);
  case PD_SIGNAL:
    return do_signal(m);
  case PD_WAIT:
  case PD_WAIT_PID:
    return do_wait(m);
  case PD_STACKS:
    return do_stacks();
  case PD_DESTROY_CONTAINER:
    return do_destroy(m);
  case PD_PROBE_EVENTS:
    pi_publish_probe();
    return reply_begin(PD_OK);
  case PD_ADOPT:
    return do_adopt(m);
  default:
    return reply_error(PD_E_BAD_MESSAGE, EINVAL, NULL, "not a request type");
  }
}

void pi_handle_requests(struct pd_arena *a)
{
  for (;;) {
    char reason[128];
    struct pd_msg m;
    nng_msg *msg;
    int r;

    if (nng_recvmsg(g.rep, &msg, NNG_FLAG_NONBLOCK) != 0)
      return; /* NNG_EAGAIN: nothing more queued */
    memset(&m, 0, sizeof m);
    reason[0] = '\0';
    /* Strings are copied into the arena, so the message can go right away. */
    r = pd_decode(nng_msg_body(msg), nng_msg_len(msg), a, &m, reason, sizeof reason);
    nng_msg_free(msg);
    if (r < 0)
      reply_error(PD_E_BAD_MESSAGE, -r, NULL, reason[0] ? reason : "malformed request");
    else
      handle(&m, a);
    send_reply();
    if (started_after_reply != NULL) {
      publish_started(started_after_reply);
      started_after_reply = NULL;
    }
    pi_arena_reset(a);
  }
}
