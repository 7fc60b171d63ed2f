/**
 * paddock's default seccomp profile: the `linux.seccomp` that defaultSpec() (so
 * `paddock spec` and the library's builder) writes. Pure data plus one function; it
 * compiles through the ordinary path (specs/seccomp.ts, libseccomp).
 *
 * An allow list, denying everything else with ERRNO(EPERM), as container engines ship:
 * a deny list silently lets through every syscall added to the kernel after it was
 * written (io_uring, the new mount API and bpf all arrived that way), while an allow
 * list fails closed and a missing entry is a visible EPERM.
 *
 * Which syscalls and arguments are allowed follows moby's/podman's default profile
 * (the reference, not the source: the lists below are paddock's own), including its
 * capability-conditional parts: a syscall whose only legitimate use needs a capability
 * is allowed only when the container's bounding set holds it. Where paddock is
 * stricter than moby, and why (docs/decisions/0027):
 *  - ptrace, process_vm_readv/writev, kcmp, pidfd_getfd and process_madvise need
 *    CAP_SYS_PTRACE (moby allows the first three to everyone on kernels >= 4.8): they
 *    reach into other processes, and nothing a sandboxed program needs depends on it.
 *  - io_uring_setup/enter/register are never allowed (moby dropped them too in 2023):
 *    io_uring bypasses this very filter for the operations it performs.
 *  - socket() is allowed for every family but AF_VSOCK, as moby.
 */

import { ALL_NAMESPACES } from '../protocols/messages';
import type { SeccompProfile, SeccompSyscall } from './seccomp';

const EPERM = 1;
const ENOSYS = 38;
/** AF_VSOCK: talks to the hypervisor, past every network namespace. */
const AF_VSOCK = 40;

/**
 * Allowed to every container. Everything else, among them: module loading, kexec,
 * the mount API, unshare/setns, keyrings (add_key, keyctl, request_key), userfaultfd,
 * io_uring, swapon/swapoff, the clock setters, pivot_root, uselib, ustat, sysfs,
 * _sysctl, vm86, nfsservctl, move_pages/migrate_pages, and the capability-conditional
 * calls below without their capability.
 */
export const DEFAULT_SECCOMP_ALLOW: readonly string[] = Object.freeze([
  // files and directories
  'access', 'faccessat', 'faccessat2', 'chdir', 'fchdir', 'getcwd', 'chmod', 'fchmod', 'fchmodat',
  'fchmodat2', 'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown', 'lchown32',
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64',
  'read', 'readv', 'pread64', 'preadv', 'preadv2', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2',
  'lseek', '_llseek', 'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
  'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'fstatat64', 'newfstatat', 'statx',
  'statfs', 'statfs64', 'fstatfs', 'fstatfs64', 'getdents', 'getdents64', 'readlink', 'readlinkat',
  'mkdir', 'mkdirat', 'mknod', 'mknodat', 'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat',
  'symlink', 'symlinkat', 'unlink', 'unlinkat', 'truncate', 'truncate64', 'ftruncate', 'ftruncate64',
  'fallocate', 'fadvise64', 'fadvise64_64', 'arm_fadvise64_64', 'readahead', 'flock', 'fsync',
  'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'sync_file_range2', 'arm_sync_file_range', 'umask',
  'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat', 'cachestat', 'name_to_handle_at',
  'getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr', 'listxattr',
  'llistxattr', 'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr',
  'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark', 'ioctl',
  'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents',
  'io_pgetevents_time64',
  // memory
  'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'pkey_mprotect', 'pkey_alloc', 'pkey_free',
  'madvise', 'mincore', 'msync', 'mlock', 'mlock2', 'mlockall', 'munlock', 'munlockall', 'membarrier',
  'memfd_create', 'memfd_secret', 'remap_file_pages', 'map_shadow_stack', 'mseal', 'process_mrelease',
  // processes, threads, signals (clone and personality: argument rules below)
  'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid',
  'kill', 'tkill', 'tgkill', 'pidfd_open', 'pidfd_send_signal', 'rt_sigaction', 'rt_sigpending',
  'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'sigaltstack', 'sigreturn', 'sigprocmask',
  'signalfd', 'signalfd4', 'pause', 'restart_syscall', 'futex', 'futex_time64', 'futex_waitv',
  'futex_wake', 'futex_wait', 'futex_requeue', 'set_robust_list', 'get_robust_list', 'set_tid_address',
  'rseq', 'arch_prctl', 'modify_ldt', 'set_thread_area', 'get_thread_area', 'set_tls', 'cacheflush',
  'breakpoint', 'riscv_flush_icache', 'swapcontext', 's390_pci_mmio_read', 's390_pci_mmio_write',
  's390_runtime_instr', 'prctl', 'seccomp', 'landlock_create_ruleset', 'landlock_add_rule',
  'landlock_restrict_self', 'capget', 'capset',
  'getpid', 'getppid', 'gettid', 'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid',
  'getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid', 'getegid32',
  'getresuid', 'getresuid32', 'getresgid', 'getresgid32', 'getgroups', 'getgroups32',
  'setuid', 'setuid32', 'setgid', 'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32',
  'setresuid', 'setresuid32', 'setresgid', 'setresgid32', 'setgroups', 'setgroups32',
  'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32',
  'getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'getpriority', 'setpriority',
  'ioprio_get', 'ioprio_set', 'sched_yield', 'sched_getaffinity', 'sched_setaffinity',
  'sched_getattr', 'sched_setattr', 'sched_getparam', 'sched_setparam', 'sched_getscheduler',
  'sched_setscheduler', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'getcpu', 'uname', 'sysinfo', 'getrandom', 'times',
  // time (reading; adjtimex and clock_adjtime only change the clock with CAP_SYS_TIME
  // in the initial user namespace, which the kernel checks)
  'time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64',
  'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep', 'alarm', 'getitimer', 'setitimer',
  'adjtimex', 'clock_adjtime', 'clock_adjtime64',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64',
  'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64',
  'timerfd_settime', 'timerfd_settime64',
  // polling, pipes, events
  'pipe', 'pipe2', 'poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6',
  'pselect6_time64', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait',
  'epoll_wait_old', 'epoll_pwait', 'epoll_pwait2', 'eventfd', 'eventfd2',
  // sockets (socket itself: argument rule below)
  'socketpair', 'socketcall', 'bind', 'listen', 'accept', 'accept4', 'connect',
  'getsockname', 'getpeername', 'getsockopt', 'setsockopt', 'shutdown', 'send', 'sendto', 'sendmsg',
  'sendmmsg', 'recv', 'recvfrom', 'recvmsg', 'recvmmsg', 'recvmmsg_time64',
  // System V and POSIX IPC (namespaced)
  'ipc', 'msgget', 'msgctl', 'msgrcv', 'msgsnd', 'semget', 'semctl', 'semop', 'semtimedop',
  'semtimedop_time64', 'shmget', 'shmctl', 'shmat', 'shmdt', 'mq_open', 'mq_unlink', 'mq_notify',
  'mq_getsetattr', 'mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64',
]);

/** Syscalls allowed only when the container's bounding set holds the capability. */
export const CAPABILITY_SYSCALLS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_ADMIN: [
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick',
    'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open',
    'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'syslog', 'umount',
    'umount2', 'unshare',
  ],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['delete_module', 'init_module', 'finit_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
});

/**
 * personality(2) values that only select the Linux ABI (PER_LINUX, PER_LINUX32, their
 * UNAME26 forms) or query (0xffffffff): no ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC or
 * foreign personas.
 */
export const ALLOWED_PERSONAS: readonly number[] = Object.freeze([0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);

export interface DefaultSeccompOptions {
  /**
   * The container's bounding set: opens the capability-conditional syscalls of the
   * caps in it. Default: none (the strictest profile; runc's default caps open none).
   */
  readonly capabilities?: readonly string[];
}

/** The OCI architectures a filter for this host should also cover (its compat ABIs). */
export function defaultArchitectures(arch: string = process.arch): string[] {
  switch (arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'riscv64':
      return ['SCMP_ARCH_RISCV64'];
    case 'ppc64':
      return ['SCMP_ARCH_PPC64LE'];
    case 's390x':
      return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    default:
      return [];
  }
}

/** A fresh profile each call (callers may edit it before writing it into a config). */
export function defaultSeccompProfile(opts: DefaultSeccompOptions = {}): SeccompProfile {
  const caps = new Set(opts.capabilities ?? []);
  const allow = new Set(DEFAULT_SECCOMP_ALLOW);
  for (const [cap, names] of Object.entries(CAPABILITY_SYSCALLS)) {
    if (caps.has(cap)) names.forEach((n) => allow.add(n));
  }
  const syscalls: SeccompSyscall[] = [{ names: [...allow], action: 'SCMP_ACT_ALLOW' }];
  if (!caps.has('CAP_SYS_ADMIN')) {
    // Without CAP_SYS_ADMIN: clone without any CLONE_NEW* flag (threads, fork), and
    // clone3 answers ENOSYS (its flags live in memory seccomp cannot read), so libc
    // falls back to clone, which is filtered. s390 passes the flags second.
    const index = process.arch === 's390x' ? 1 : 0;
    syscalls.push(
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index, value: ALL_NAMESPACES, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    );
  }
  syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] });
  for (const p of ALLOWED_PERSONAS) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }] });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: defaultArchitectures(),
    syscalls,
  };
}
