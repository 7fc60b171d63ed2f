/* The table of containers and processes, and everything that happens when one of
 * them exits: reaping, the durable exit record, the event, the sandbox shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

struct pi_container *pi_find_container(const char *cid)
{
  for (struct pi_container *ct = g.containers; ct != NULL; ct = ct->next)
    if (strcmp(ct->cid, cid) == 0)
      return ct;
  return NULL;
}

struct pi_proc *pi_find_proc(const struct pi_container *ct, pid_t pid)
{
  /* Newest first: after pid reuse the running process shadows an old record. */
  for (struct pi_proc *p = ct->procs; p != NULL; p = p->next)
    if (p->pid == pid)
      return p;
  return NULL;
}

/* The live process a reaped pid belongs to, if init started it. */
static struct pi_proc *find_live(pid_t pid)
{
  for (struct pi_container *ct = g.containers; ct != NULL; ct = ct->next)
    for (struct pi_proc *p = ct->procs; p != NULL; p = p->next)
      if (p->pid == pid && p->state == PD_STATE_RUNNING)
        return p;
  return NULL;
}

struct pi_container *pi_new_container(const char *cid, uint32_t ns_flags)
{
  struct pi_container *ct = calloc(1, sizeof *ct);

  if (ct == NULL)
    return NULL;
  ct->cid = strdup(cid);
  if (ct->cid == NULL) {
    free(ct);
    return NULL;
  }
  ct->ns_flags = ns_flags;
  return ct;
}

void pi_link_container(struct pi_container *ct)
{
  ct->next = g.containers;
  g.containers = ct;
}

void pi_free_container(struct pi_container *ct)
{
  struct pi_proc *p = ct->procs;

  while (p != NULL) {
    struct pi_proc *next = p->next;

    if (p->pidfd >= 0)
      close(p->pidfd);
    if (p->hold_w >= 0)
      close(p->hold_w);
    if (p->hold_report >= 0)
      close(p->hold_report);
    free(p);
    p = next;
  }
  free(ct->cid);
  free(ct);
}

void pi_forget_container(struct pi_container *ct)
{
  for (struct pi_container **pp = &g.containers; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == ct) {
      *pp = ct->next;
      break;
    }
  }
  pi_free_container(ct);
}

struct pi_proc *pi_add_proc(struct pi_container *ct, pid_t pid, pid_t host_pid,
                            int pidfd, uint32_t kind)
{
  struct pi_proc *p = calloc(1, sizeof *p);

  if (p == NULL)
    return NULL;
  p->ct = ct;
  p->pid = pid;
  p->host_pid = host_pid;
  p->pidfd = pidfd;
  p->hold_w = -1;
  p->hold_report = -1;
  p->kind = kind;
  p->state = PD_STATE_RUNNING;
  p->next = ct->procs;
  ct->procs = p;
  if (kind == PD_KIND_CONTAINER)
    ct->root = p;
  return p;
}

/* The "Pid:" line of a pidfd's fdinfo is in the pid namespace of the procfs that
 * shows it. init keeps the host's /proc, so this is the supervisor's view. */
pid_t pi_host_pid(int pidfd)
{
  char path[64], buf[1024];
  const char *line;
  ssize_t n;
  int fd;

  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  line = strstr(buf, "\nPid:");
  return line != NULL ? (pid_t)strtol(line + 5, NULL, 10) : -1;
}

void pi_publish_probe(void)
{
  uint8_t buf[PD_HEADER_SIZE];
  struct pd_writer ev;
  long len;

  pd_w_begin(&ev, buf, sizeof buf, PD_EV_PROBE);
  if ((len = pd_w_finish(&ev)) > 0)
    pi_publish(buf, (size_t)len);
}

void pi_publish(const uint8_t *buf, size_t len)
{
  /* PUB never waits for subscribers; a slow one loses events, not init. */
  nng_send(g.pub, (void *)buf, len, NNG_FLAG_NONBLOCK);
}

void pi_record_exit(struct pi_proc *p, int status)
{
  /* CID is at most 4096 bytes; the rest of the record is fixed-size. */
  static uint8_t rec[PD_HEADER_SIZE + PD_MAX_STR + 128];
  struct pd_writer w;
  struct timespec ts;
  long len;

  p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  p->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  clock_gettime(CLOCK_REALTIME, &ts);

  pd_w_begin(&w, rec, sizeof rec, PD_EV_EXITED);
  pd_w_str(&w, PD_T_CID, p->ct->cid);
  pd_w_i32(&w, PD_T_PID, p->pid);
  pd_w_i32(&w, PD_T_HOST_PID, p->host_pid);
  pd_w_u32(&w, PD_T_KIND, p->kind);
  pd_w_i32(&w, PD_T_EXIT_CODE, p->exit_code);
  pd_w_i32(&w, PD_T_SIGNAL, p->signal);
  pd_w_u64(&w, PD_T_TIME_NS, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
  len = pd_w_finish(&w);

  /* Its output first: a supervisor that sees the exit stops following the files. */
  pi_relay_drain_all();

  /* The log first, then the event: a supervisor that missed the event (or
   * restarted) must still find the status in exits.log. One write() keeps each
   * record whole (O_APPEND). Once write() returns the record is in the page cache,
   * which outlives any process; no fdatasync: only a host crash could lose it, and
   * that takes the sandbox with it (docs/decisions/0003). */
  if (len > 0) {
    ssize_t n;

    do
      n = write(g.exits_fd, rec, (size_t)len);
    while (n < 0 && errno == EINTR);
    if (n != len)
      pi_diag("exits.log write: %s", n < 0 ? strerror(errno) : "short write");
    pi_publish(rec, (size_t)len);
  }

  p->state = PD_STATE_EXITED;
  if (p->pidfd >= 0) {
    close(p->pidfd);
    p->pidfd = -1;
  }
}

void pi_reap(void)
{
  for (;;) {
    struct pi_proc *p;
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);

    if (pid < 0 && errno == EINTR)
      continue;
    if (pid <= 0)
      return;
    p = find_live(pid);
    if (p == NULL)
      continue; /* an orphan reparented to init: reaping it is all we owe it */
    pi_record_exit(p, status);
    if (g.root_ct != NULL && p == g.root_ct->root)
      pi_shutdown(status);
  }
}

void pi_shutdown(int status)
{
  int code = WIFEXITED(status) ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                   : 1;

  /* As PID 1 of the sandbox, kill(-1) reaches exactly the sandbox. When run outside
   * a pid namespace (tests), it would reach the host: signal our own processes. */
  if (getpid() == 1) {
    kill(-1, SIGKILL);
  } else {
    for (struct pi_container *ct = g.containers; ct != NULL; ct = ct->next)
      for (struct pi_proc *p = ct->procs; p != NULL; p = p->next)
        if (p->state == PD_STATE_RUNNING && p->pidfd >= 0)
          syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
  }
  for (;;) {
    struct pi_proc *p;
    int st;
    pid_t pid = waitpid(-1, &st, 0);

    if (pid < 0 && errno == EINTR)
      continue;
    if (pid < 0)
      break;
    p = find_live(pid);
    if (p != NULL)
      pi_record_exit(p, st);
  }
  /* Every writer is gone: what is left in the pipes is the last output. */
  pi_relay_drain_all();
  nng_close(g.rep);
  nng_close(g.pub);
  _exit(code);
}
