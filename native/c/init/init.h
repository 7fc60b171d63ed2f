/* paddock-init: the process that runs as PID 1 of a sandbox.
 *
 * It owns a table of containers and their processes, answers control requests on a
 * nng REP socket, publishes lifecycle events on a PUB socket and records every exit
 * durably in exits.log. See docs/protocol.md for the wire format. */
#ifndef PADDOCK_INIT_H
#define PADDOCK_INIT_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <nng/nng.h>

#include "paddock_proto.h"

/* A failed step, in the form "step: ERRNO (detail)". step is always a string
 * literal; detail is usually the path involved. */
struct pi_error {
  const char *step;
  int err; /* positive errno */
  char detail[256];
  char stepbuf[32]; /* backs step when it came from a child's report */
};

/* Fills e and returns -err so callers can `return pi_fail(...)`. */
int pi_fail(struct pi_error *e, const char *step, int err, const char *detail);

#define cleanup_fd __attribute__((cleanup(pi_close_fdp)))
void pi_close_fdp(int *fd);

struct pi_container;

struct pi_proc {
  struct pi_proc *next; /* within its container */
  struct pi_container *ct;
  pid_t pid;      /* in init's pid namespace */
  /* A held container process (plan HOLD): it waits before execve until a byte
   * arrives on hold_w; its error pipe's read end stays open to learn how execve
   * went. Both -1 otherwise. */
  int hold_w, hold_report;
  /* Held in paddock-hold (native/c/hold/holder.c) rather than as init's copy: the
   * supervisor may release it itself through the holder's fds 5 and 7. */
  int held_exec;
  pid_t host_pid; /* in the supervisor's pid namespace */
  int pidfd;      /* -1 once reaped */
  uint32_t kind;  /* PD_KIND_* */
  uint32_t state; /* PD_STATE_* */
  int32_t exit_code, signal;
};

struct pi_container {
  struct pi_container *next;
  char *cid;
  struct pi_proc *root;  /* the container's first process, kind 1 */
  struct pi_proc *procs; /* root and exec'd processes, newest first */
  uint32_t ns_flags;     /* CLONE_NEW* the container was created with */
};

struct pi_state {
  nng_socket rep, pub;
  int sigfd;
  int exits_fd;
  int own_pidns_fd; /* restores pid_ns_for_children after an EXEC */
  int any_peer_pid; /* in the host's pid namespace (tests): peers have pids there */
  int subfd;        /* eventfd: a subscriber connected to events.sock (nng callback thread) */
  struct pi_container *containers;
  struct pi_container *root_ct; /* the first container started */
};

extern struct pi_state g;

/* table.c */
struct pi_container *pi_find_container(const char *cid);
struct pi_proc *pi_find_proc(const struct pi_container *ct, pid_t pid);
struct pi_container *pi_new_container(const char *cid, uint32_t ns_flags);
void pi_link_container(struct pi_container *ct);
void pi_free_container(struct pi_container *ct);
struct pi_proc *pi_add_proc(struct pi_container *ct, pid_t pid, pid_t host_pid,
                            int pidfd, uint32_t kind);
void pi_forget_container(struct pi_container *ct);
/* Records a reaped exit: exits.log (one write + fdatasync), then the PUB event,
 * then the table. */
void pi_record_exit(struct pi_proc *p, int status);
/* waitpid(-1, WNOHANG) until nothing is left; handles the root container's exit. */
void pi_reap(void);
/* Kills everything, reaps and records it all, and exits with the root's status. */
__attribute__((noreturn)) void pi_shutdown(int status);
void pi_publish(const uint8_t *buf, size_t len);
/* Publishes EV_PROBE: tells subscribers their subscription is live. */
void pi_publish_probe(void);
pid_t pi_host_pid(int pidfd);

/* main.c */
void pi_arena_reset(struct pd_arena *a);

/* diag.c: init's diagnostics, to <sandboxDir>/init.log (capped), never to the
 * supervisor's stdio unless fd 2 was handed over on purpose. */
void pi_diag_open(const char *dir);
__attribute__((format(printf, 1, 2))) void pi_diag(const char *fmt, ...);

/* statedir.c: logs/ and stdin/ opened at startup; pi_statedir_path gives a path below
 * them as /proc/self/fd/<n>/<name> (in buf), any other path as it is, so init reaches
 * them once the supervisor has closed <sandboxDir> to it (docs/decisions/0030). */
void pi_statedir_open(const char *dir);
const char *pi_statedir_path(const char *path, char *buf, size_t cap);

/* logrelay.c: capped container output files (docs/decisions/0031). */
struct pollfd;
extern uint64_t pi_log_size_max; /* SANDBOX_PLAN LOG_SIZE_MAX; 0: no relay, no cap */
/* A pipe whose write end (*child_w, O_CLOEXEC) becomes the process's fd 1 or 2; init
 * copies what arrives to path, rotating it at the cap. */
int pi_relay_open(const char *path, int *child_w, struct pi_error *e);
unsigned pi_relay_count(void);
unsigned pi_relay_pollfds(struct pollfd *pfd, unsigned max);
void pi_relay_ready(const struct pollfd *pfd, unsigned n);
/* Copies whatever the pipes hold now, so an exit is never recorded before the output
 * its process wrote. */
void pi_relay_drain_all(void);

/* requests.c: receives and answers every pending request, without blocking. */
void pi_handle_requests(struct pd_arena *a);

/* spawn.c */
/* START_CONTAINER (exec_ct NULL) or EXEC into exec_ct. On success *out is the new
 * process; on failure e says which step failed. */
int pi_spawn(const char *cid, const struct pd_plan *plan, struct pi_container *exec_ct,
             struct pd_arena *arena, struct pi_proc **out, struct pi_error *e);

/* child.c: everything the child needs, computed before clone3 so the child never
 * allocates. */
struct pi_launch {
  const struct pd_plan *plan;
  int stdio[3]; /* fds that become 0/1/2 */
  int errfd;    /* write end of the error pipe, O_CLOEXEC */
  int join_pidfd; /* EXEC: the container root's pidfd, else -1 */
  uint32_t join_flags; /* EXEC: CLONE_NEWNS[|CLONE_NEWCGROUP] */
  /* START_CONTAINER: the cgroup namespace is made or joined by the child itself, once it
   * is in its own cgroups (plan->cgroup_procs), so that the namespace is rooted there:
   * new_cgroupns unshares one, cgroupns_pidfd >= 0 joins that process's instead. */
  int new_cgroupns;
  int cgroupns_pidfd;
  /* The plan->cgroup_procs entry (a cgroup2 one) clone3 placed the child in
   * (CLONE_INTO_CGROUP), which enter_cgroups then skips; -1: none. */
  int born_in;
  const char *path;    /* PATH for the executable search */
  char *candidate;     /* buffer for "<dir>/<argv0>" */
  size_t candidate_cap;
  /* The plan's seccomp filter, ready for seccomp(2): filter points at an aligned
   * copy of plan->seccomp_bpf in the arena. len == 0: no filter. */
  struct sock_fprog seccomp;
  int console_fd; /* TERMINAL: socket the pty master is sent over, else -1 */
  int hold_fd;    /* HOLD: read end the child waits on before execve, else -1 */
  int hold_w;     /* HOLD: init's write end (the child passes a copy to the holder) */
  int holder_fd;  /* HOLD: the sealed paddock-hold memfd, or -1: wait as init's copy */
  char *const *holder_argv; /* its argv: filter insns, seccomp flags, PATH, argv... */
};

/* The wire shape of a child failure report on the error pipe. */
struct pi_child_report {
  int32_t err;
  char step[32];
  char detail[220];
};

__attribute__((noreturn)) void pi_child_main(const struct pi_launch *l);

/* The step name a held child reports (err 0) once it waits before execve. */
#define PI_HELD_STEP "held"

/* holder.c: the paddock-hold program in a sealed memfd (made once), or -1 when this
 * kernel will not execute one; the child then waits as init's copy. */
int pi_holder_fd(void);

/* Lets a held container process go on to execve; fails with its launch error. */
int pi_release(struct pi_container *ct, struct pi_error *e);
/* hooks.c: runs the plan's hooks of one PD_HOOK_* kind, in order, from the child;
 * cwd NULL keeps the child's. The first failure fills e (step "hook <kind>[i]"). */
int pi_run_hooks(const struct pd_plan *p, uint32_t kind, const char *cwd, struct pi_error *e);

#endif
