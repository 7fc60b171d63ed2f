/* paddock-hold: where a prepared container waits for its start (docs/decisions/0020).
 *
 * A prepared container's process is a copy of paddock-init, with init's threads'
 * stacks and heaps in its address space. Were it to wait as that copy, its final
 * execve would first tear all of that down, which on a paravirtualised host is a
 * millisecond of page-table writes on the start's critical path. So once everything
 * is in place, the child execs this program from a sealed memfd instead: a few pages
 * with no libc, which wait on the release and then only load the seccomp filter and
 * execve the container's program.
 *
 * The child hands over, on fixed descriptors:
 *   0-2  the container's stdio
 *   3    HOLD_R   read end of the release pipe: one byte starts the container
 *   4    REPORT_W init's error pipe: a failure report, or EOF at execve
 *   5    HOLD_W   a write end of the release pipe, for the supervisor to take with
 *                 pidfd_getfd(2) and release the container without a round trip
 *   6    FILTER   a memfd with the seccomp program, when argv[1] is not "0"
 * and makes 7 (NOTIFY_R, for the supervisor) / 8 (NOTIFY_W) here: the supervisor's
 * own error pipe, so it learns the outcome without asking init.
 * argv: paddock-hold <filter insns> <seccomp flags> <PATH> <argv0> [args...]
 * envp: exactly the container's environment.
 *
 * No libc: its start-up (IRELATIVE relocations, TLS, tunables from the container's
 * environment) is more than this program does. Raw syscalls only. */
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "pd_execvp.h"
#include "pd_rawsys.h"

#define HOLD_R 3
#define REPORT_W 4
#define HOLD_W 5
#define FILTER 6
#define NOTIFY_R 7
#define NOTIFY_W 8

#define O_CLOEXEC_ 02000000
#define F_DUPFD_CLOEXEC_ 1030
#define EINTR_ 4
#define ESRCH_ 3
#define EINVAL_ 22
#define CLOSE_RANGE_CLOEXEC_ (1U << 2)

#if defined(__x86_64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call hold_main\n"
        "  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  and sp, x0, #-16\n"
        "  bl hold_main\n"
        "  brk #0\n");
#else
#error "paddock-hold: add this architecture's entry point"
#endif

#define sys(n, a, b, c) pd_rsys((n), (long)(a), (long)(b), (long)(c), 0, 0)

/* The shape of init's struct pi_child_report (native/c/init/init.h). */
struct report {
  int32_t err;
  char step[32];
  char detail[220];
};

/* The compiler may turn loops into calls to these; there is no libc to provide them. */
void *memset(void *d, int c, size_t n)
{
  unsigned char *p = d;

  while (n--)
    *p++ = (unsigned char)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
  unsigned char *p = d;
  const unsigned char *q = s;

  while (n--)
    *p++ = *q++;
  return d;
}

static void scopy(char *d, size_t cap, const char *s)
{
  size_t i = 0;

  for (; s != NULL && s[i] && i + 1 < cap; i++)
    d[i] = s[i];
  d[i] = '\0';
}

static void write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    long n = sys(SYS_write, fd, p, len);

    if (n == -EINTR_)
      continue;
    if (n <= 0)
      return;
    p += n;
    len -= (size_t)n;
  }
}

static __attribute__((noreturn)) void quit(int code)
{
  for (;;)
    sys(SYS_exit_group, code, 0, 0);
}

/* Reports to init and to the supervisor, then exits 127 as a failed execve does:
 * the reaper records that as the container's exit. */
static __attribute__((noreturn)) void fail(const char *step, long err, const char *detail)
{
  struct report r;

  memset(&r, 0, sizeof r);
  r.err = (int32_t)err;
  scopy(r.step, sizeof r.step, step);
  scopy(r.detail, sizeof r.detail, detail);
  write_all(REPORT_W, &r, sizeof r);
  write_all(NOTIFY_W, &r, sizeof r);
  quit(127);
}

static unsigned long parse_ul(const char *s)
{
  unsigned long v = 0;

  if (s == NULL || *s == '\0')
    fail("holder_args", EINVAL_, "number");
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      fail("holder_args", EINVAL_, "number");
    v = v * 10 + (unsigned long)(*s - '0');
  }
  return v;
}

/* 4096 instructions at most (BPF_MAXINSNS); bss, so only what is used is touched. */
static struct sock_filter filter[4096];
static char candidate[4096 + 256 + 2];

static long raw_execve(const char *file, char *const argv[], char *const envp[])
{
  return sys(SYS_execve, file, argv, envp);
}

static __attribute__((noreturn)) void exec_container(const char *path, char **argv, char **envp)
{
  const char *failed;
  int err = pd_execvp(argv[0], path, argv, envp, candidate, sizeof candidate, raw_execve, &failed);

  fail("execve", err, failed);
}

__attribute__((noreturn, used)) void hold_main(long *sp)
{
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  unsigned long insns, flags;
  struct report held;
  int notify[2];
  long r;
  char go;

  /* Nothing in the container may open this process through /proc before it is the
   * container's program (the init copy it replaces was non-dumpable for the same
   * reason); the memfd is also unreadable to a non-root container user, which
   * keeps the exec itself non-dumpable. */
  sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0);
  if (argc < 5)
    fail("holder_args", EINVAL_, "argc");
  insns = parse_ul(argv[1]);
  flags = parse_ul(argv[2]);
  if (insns > sizeof filter / sizeof filter[0])
    fail("holder_args", EINVAL_, "filter length");
  if (insns > 0) {
    size_t want = insns * sizeof filter[0], got = 0;

    while (got < want) {
      r = pd_rsys(SYS_pread64, FILTER, (long)((char *)filter + got), (long)(want - got), (long)got, 0);
      if (r == -EINTR_)
        continue;
      if (r <= 0)
        fail("seccomp_read", r < 0 ? -r : EINVAL_, NULL);
      got += (size_t)r;
    }
    sys(SYS_close, FILTER, 0, 0);
  }

  /* Made wherever the kernel puts it, then moved to 7/8 through fds above both, so
   * neither end can land on the other's number. */
  if ((r = sys(SYS_pipe2, notify, O_CLOEXEC_, 0)) < 0)
    fail("pipe", -r, NULL);
  for (int i = 0; i < 2; i++) {
    long high = sys(SYS_fcntl, notify[i], F_DUPFD_CLOEXEC_, 16);

    if (high < 0)
      fail("dup", -high, NULL);
    sys(SYS_close, notify[i], 0, 0);
    notify[i] = (int)high;
  }
  for (int i = 0; i < 2; i++) {
    if ((r = sys(SYS_dup3, notify[i], NOTIFY_R + i, O_CLOEXEC_)) < 0)
      fail("dup3", -r, NULL);
    sys(SYS_close, notify[i], 0, 0);
  }

  /* Ready: init reads this as "held" and tells the supervisor it may use 5 and 7. */
  memset(&held, 0, sizeof held);
  scopy(held.step, sizeof held.step, "held");
  scopy(held.detail, sizeof held.detail, "holder");
  write_all(REPORT_W, &held, sizeof held);

  do
    r = sys(SYS_read, HOLD_R, &go, 1);
  while (r == -EINTR_);
  if (r != 1) /* no release can come any more: never run the container */
    quit(127);

  /* Everything above 2 leaves at execve: the release pipe, the reports (their EOF is
   * the success both readers wait for). */
  sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC_);
  if (insns > 0) {
    struct sock_fprog prog = {.len = (unsigned short)insns, .filter = filter};

    /* no_new_privs was set before this program was exec'd (the child decides). */
    r = sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0)
      fail("seccomp", -r, NULL);
    if (r > 0)
      fail("seccomp", ESRCH_, "tsync");
  }
  exec_container(argv[3], argv + 4, envp);
}
