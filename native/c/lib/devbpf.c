/* The cgroup v2 device controller: a BPF_PROG_TYPE_CGROUP_DEVICE program, generated
 * in TypeScript (specs/device-bpf.ts) and loaded and attached here with the raw bpf()
 * syscall, so no libbpf is needed (docs/decisions/0019).
 *
 * The program is attached once, to a sandbox directory paddock has just made, with
 * BPF_F_ALLOW_MULTI: programs of ancestors keep running too (every one must allow),
 * and a parent that also filters devices (systemd's DevicePolicy) does not make the
 * attach fail. Nothing is replaced or detached later: the program lives as long as
 * the directory and goes with its rmdir. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "paddock_native.h"

/* The verifier's log of the last failed load; kept for pd_last_bpf_log(). */
static char bpf_log[64 * 1024];

const char *pd_last_bpf_log(void) { return bpf_log; }

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* The last lines of the log that fit in the error's detail: the verifier ends with
 * the instruction it refused and why. */
static const char *log_tail(size_t room) {
  size_t n = strlen(bpf_log);
  const char *p;

  while (n > 0 && bpf_log[n - 1] == '\n')
    bpf_log[--n] = '\0';
  if (n <= room)
    return bpf_log;
  p = bpf_log + n - room;
  while (*p != '\0' && *p != '\n')
    p++;
  return *p == '\n' ? p + 1 : bpf_log + n - room;
}

int pd_devbpf_attach(const char *cgroup_dir, const uint8_t *insns, uint32_t insn_count) {
  union bpf_attr attr;
  int dirfd, progfd, ret = 0;

  pd_ok();
  bpf_log[0] = '\0';
  if (cgroup_dir == NULL || cgroup_dir[0] != '/')
    return pd_fail("bpf_device", EINVAL, "cgroup dir must be absolute");
  if (insns == NULL || insn_count == 0 || insn_count > BPF_MAXINSNS)
    return pd_fail("bpf_device", EINVAL, "%u instructions", insn_count);

  dirfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return pd_fail("bpf_device_open", errno, "%s", cgroup_dir);

  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = insn_count;
  /* No GPL-only helper is called: any license string will do. */
  attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
  attr.log_buf = (uint64_t)(uintptr_t)bpf_log;
  attr.log_size = sizeof bpf_log;
  /* Level 1 logs only when the verifier refuses; a log buffer too small for a
   * successful load's trace would turn it into ENOSPC. */
  attr.log_level = 1;
  memcpy(attr.prog_name, "paddock_dev", sizeof "paddock_dev");
  progfd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
  if (progfd < 0 && errno == ENOSPC) {
    /* The log overflowed on a load that did not fail for a reason of its own: load
     * again without it. */
    bpf_log[0] = '\0';
    attr.log_buf = 0;
    attr.log_size = 0;
    attr.log_level = 0;
    progfd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
  }
  if (progfd < 0) {
    int err = errno;
    ret = pd_fail("bpf_prog_load", err, "%s", bpf_log[0] ? log_tail(400) : "no verifier log");
    goto out;
  }
  bpf_log[0] = '\0';

  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)dirfd;
  attr.attach_bpf_fd = (uint32_t)progfd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
    ret = pd_fail("bpf_prog_attach", errno, "%s", cgroup_dir);
  /* The attachment holds its own reference to the program. */
  close(progfd);
out:
  close(dirfd);
  return ret;
}

int pd_devbpf_count(const char *cgroup_dir) {
  union bpf_attr attr;
  int dirfd;

  pd_ok();
  if (cgroup_dir == NULL || cgroup_dir[0] != '/')
    return pd_fail("bpf_prog_query", EINVAL, "cgroup dir must be absolute");
  dirfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return pd_fail("bpf_prog_query_open", errno, "%s", cgroup_dir);
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)dirfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  /* prog_ids NULL and prog_cnt 0: the kernel only reports how many there are. */
  if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) {
    int err = errno;
    close(dirfd);
    return pd_fail("bpf_prog_query", err, "%s", cgroup_dir);
  }
  close(dirfd);
  return (int)attr.query.prog_cnt;
}
