/**
 * The messages behind the golden vectors. generate.ts writes them to disk; the unit
 * tests re-encode them and compare with the committed files, so a change to the
 * encoder that alters bytes shows up as a failing test rather than silent drift.
 */
import { Message, Tag as T } from '../messages';

const MS_RDONLY = 0x1n, MS_NOSUID = 0x2n, MS_NODEV = 0x4n, MS_NOEXEC = 0x8n;
const MS_BIND = 0x1000n, MS_REC = 0x4000n, MS_PRIVATE = 0x40000n, MS_SLAVE = 0x80000n;
const CLONE_NEWNS = 0x20000, CLONE_NEWCGROUP = 0x2000000, CLONE_NEWPID = 0x20000000;

/** A hand-assembled x86_64 filter: mkdir → EPERM, everything else allowed. */
const MKDIR_EPERM = Buffer.from([
  0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ld [4] (arch)
  0x15, 0x00, 0x00, 0x02, 0x3e, 0x00, 0x00, 0xc0, // jeq AUDIT_ARCH_X86_64, 0, 2
  0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ld [0] (nr)
  0x15, 0x00, 0x01, 0x00, 0x53, 0x00, 0x00, 0x00, // jeq 83 (mkdir), 1, 0
  0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f, // ret ALLOW
  0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x05, 0x00, // ret ERRNO(EPERM)
]);
/** ret ALLOW: the smallest valid program. */
const ALLOW_ALL = Buffer.from([0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f]);

export const GOOD: Readonly<Record<string, Message>> = {
  'ping': { type: 'PING' },
  'start-container-full': {
    type: 'START_CONTAINER',
    cid: 'web-1',
    plan: {
      args: ['/usr/bin/env', 'node', '-e', 'console.log("hi \\ there")'],
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'GREETING=héllo ☃ 🐎'],
      cwd: '/srv/app',
      uid: 1000,
      gid: 1000,
      additionalGids: [4, 24, 27],
      umask: 0o027,
      stdinPath: '/run/paddock/sb1/web-1/stdin',
      stdoutPath: '/var/log/paddock/web-1.out',
      stderrPath: '/var/log/paddock/web-1.err',
      stdioInherit: 0,
      rootfs: '/var/lib/paddock/rootfs/alpine',
      rootfsReadonly: true,
      rootfsPropagation: MS_REC | MS_SLAVE,
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', flags: MS_NOSUID, data: 'mode=755,size=65536k' },
        { destination: '/data', type: 'bind', source: '/srv/data', flags: MS_BIND | MS_REC | MS_RDONLY, propagation: MS_PRIVATE },
        { destination: '/tmp', type: 'tmpfs', flags: 0n },
      ],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/sys/firmware'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
      devices: ['/dev/null', '/dev/zero', '/dev/urandom'],
      nsFlags: CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWCGROUP,
      noPivot: false,
      terminal: false,
    },
  },
  'start-container-minimal': {
    type: 'START_CONTAINER',
    cid: 'c',
    plan: { args: ['/bin/true'], env: [], uid: 0, gid: 0, rootfs: '/r' },
  },
  // A pod container in the pid namespace of container `pause` (NS_FLAGS without NEWPID).
  'start-container-shared-pid': {
    type: 'START_CONTAINER',
    cid: 'app',
    plan: { args: ['/bin/true'], env: [], uid: 0, gid: 0, rootfs: '/r', nsFlags: 0x20000, pidNsOf: 'pause' },
  },
  // A pod container that joins its own cgroups (two hierarchies) and then the cgroup
  // namespace of container `pause` (NS_FLAGS without NEWCGROUP).
  'start-container-pod-cgroup': {
    type: 'START_CONTAINER',
    cid: 'app',
    plan: {
      args: ['/bin/true'],
      env: [],
      uid: 0,
      gid: 0,
      rootfs: '/r',
      nsFlags: 0x20000,
      cgroupProcs: ['/sys/fs/cgroup/memory/paddock/s/ctr-app/cgroup.procs', '/sys/fs/cgroup/unified/paddock/s/ctr-app/cgroup.procs'],
      cgroupNsOf: 'pause',
    },
  },
  // An exec'd process that joins its container's cgroup before it joins the container.
  'exec-pod-cgroup': {
    type: 'EXEC',
    cid: 'app',
    plan: { args: ['/bin/cat', '/proc/self/cgroup'], env: [], uid: 0, gid: 0, cgroupProcs: ['/sys/fs/cgroup/unified/paddock/s/ctr-app/cgroup.procs'] },
  },
  'exec': {
    type: 'EXEC',
    cid: 'web-1',
    plan: {
      args: ['/bin/sh', '-c', 'echo $0; exit 3'],
      env: ['PATH=/bin'],
      cwd: '/',
      uid: 65534,
      gid: 65534,
      stdioInherit: 7,
      noPivot: true,
    },
  },
  // Every process-security field; caps with bit 40 (CAP_CHECKPOINT_RESTORE) and an
  // empty ambient set, RLIM_INFINITY, a negative oom score.
  'start-container-security': {
    type: 'START_CONTAINER',
    cid: 'sec',
    plan: {
      args: ['/bin/sh'],
      env: [],
      uid: 1000,
      gid: 1000,
      rootfs: '/r',
      capabilities: {
        bounding: (1n << 0n) | (1n << 5n) | (1n << 10n) | (1n << 40n),
        effective: 1n << 10n,
        permitted: (1n << 10n) | (1n << 40n),
        inheritable: 0n,
        ambient: 0n,
      },
      rlimits: [
        { type: 7, soft: 1024n, hard: 4096n },
        { type: 4, soft: 0n, hard: 0xffffffffffffffffn },
      ],
      noNewPrivileges: true,
      oomScoreAdj: -500,
      sysctls: ['net.ipv4.ip_forward=1', 'kernel.shmmax=65536'],
    },
  },
  'exec-security': {
    type: 'EXEC',
    cid: 'sec',
    plan: {
      args: ['/bin/id'],
      env: [],
      uid: 0,
      gid: 0,
      capabilities: { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
      rlimits: [{ type: 7, soft: 64n, hard: 64n }],
      noNewPrivileges: false,
      oomScoreAdj: 0,
    },
  },
  // A filter with NUL bytes and SECCOMP_FILTER_FLAG_TSYNC.
  'start-container-seccomp': {
    type: 'START_CONTAINER',
    cid: 'sc',
    plan: {
      args: ['/bin/sh'], env: [], uid: 0, gid: 0, rootfs: '/r', noNewPrivileges: true,
      seccompBpf: MKDIR_EPERM, seccompFlags: 1,
    },
  },
  'exec-seccomp': {
    type: 'EXEC',
    cid: 'sc',
    plan: { args: ['/bin/true'], env: [], uid: 0, gid: 0, seccompBpf: ALLOW_ALL, seccompFlags: 0 },
  },
  // A held terminal container: pty master to a socket, 24x80.
  'start-container-terminal': {
    type: 'START_CONTAINER',
    cid: 'tty',
    plan: {
      args: ['/bin/sh'], env: [], uid: 0, gid: 0, rootfs: '/r', terminal: true,
      consoleSocket: '/run/paddock/tty/console-1.sock', consoleRows: 24, consoleCols: 80, hold: true,
    },
  },
  'exec-terminal': {
    type: 'EXEC',
    cid: 'tty',
    plan: { args: ['/bin/sh'], env: [], uid: 0, gid: 0, terminal: true, consoleSocket: '/run/paddock/tty/console-2.sock' },
  },
  'processes-all': { type: 'PROCESSES' },
  'processes-cid': { type: 'PROCESSES', cid: 'web-1' },
  'signal': { type: 'SIGNAL', cid: 'web-1', signo: 15 },
  'signal-all': { type: 'SIGNAL', cid: 'web-1', signo: 9, pid: 0, all: true },
  'wait': { type: 'WAIT', cid: 'web-1' },
  'wait-pid': { type: 'WAIT_PID', cid: 'web-1', pid: 42 },
  'stacks': { type: 'STACKS' },
  'destroy-container': { type: 'DESTROY_CONTAINER', cid: 'web-1' },
  'probe-events': { type: 'PROBE_EVENTS' },
  'adopt': { type: 'ADOPT', cid: 'web-1', pid: 93 },
  'start-container-hooks': {
    type: 'START_CONTAINER',
    cid: 'hk',
    plan: {
      args: ['/bin/sh'],
      env: [],
      uid: 0,
      gid: 0,
      rootfs: '/r',
      hooks: [
        { kind: 1, path: '/usr/libexec/oci/mark', args: ['mark', '--into', '/r/tmp'], env: ['A=1', 'B=two'], timeoutSec: 30 },
        { kind: 2, path: '/bin/announce', timeoutSec: 5 },
      ],
      hookState: '{"ociVersion":"1.2.0","id":"hk","bundle":"/b/hk","annotations":{"org.example":"é"}}',
    },
  },
  'sandbox-plan': {
    type: 'SANDBOX_PLAN', sandboxId: 'sb-7f3a', hostname: 'box', domainname: 'paddock.local', loUp: true,
  },
  'sandbox-plan-log-cap': { type: 'SANDBOX_PLAN', sandboxId: 'sb-cap', logSizeMax: 4194304n },
  'ev-started': { type: 'EV_STARTED', cid: 'web-1', pid: 1, hostPid: 31337, kind: 1 },
  'ev-exited': {
    type: 'EV_EXITED', cid: 'web-1', pid: 7, hostPid: 31340, kind: 2, exitCode: -1, signal: 9,
    timeNs: 1767225600123456789n,
  },
  'ev-probe': { type: 'EV_PROBE' },
  'ok-empty': { type: 'OK' },
  'ok-ready': { type: 'OK', pid: 1 },
  'ok-start': { type: 'OK', pid: 1, hostPid: 31337 },
  'ok-wait-exited': { type: 'OK', state: 2, exitCode: 3, signal: 0 },
  'ok-stacks': { type: 'OK', text: 'thread 1:\n  #0 main\n\ttab "q" back\\slash é\n' },
  'ok-procs': {
    type: 'OK',
    procs: [
      { cid: 'web-1', pid: 1, hostPid: 31337, kind: 1, state: 1 },
      { cid: 'web-1', pid: 7, hostPid: 31340, kind: 2, state: 2, exitCode: -1, signal: 9 },
      { cid: 'db', pid: 1, hostPid: 31400, kind: 1, state: 2, exitCode: 0, signal: 0 },
    ],
  },
  'error-launch': { type: 'ERROR', code: 3, errno: 2, step: 'pivot_root', msg: 'No such file or directory' },
  'error-not-found': { type: 'ERROR', code: 1 },
};

// ---- hand-built malformed messages ----

function u16(v: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; }
function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; }

export function field(tag: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([u16(tag), u32(v.length), v]);
}

export function message(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat(fields);
  return Buffer.concat([Buffer.from([0x50, 0x44, 1, 0]), u16(type), u16(0), u32(body.length), body]);
}

const WAIT = 0x0006, START = 0x0002, EXEC = 0x0003, SIGNAL = 0x0005, OK = 0x8000, PING = 0x0001;
const arg = field(T.ARG, '/bin/true');
const plan = (...fs: Buffer[]): Buffer => field(T.PLAN, Buffer.concat([arg, ...fs]));
const cid = field(T.CID, 'c');
const ping = message(PING);

function patch(buf: Buffer, at: number, bytes: number[]): Buffer {
  const b = Buffer.from(buf);
  bytes.forEach((x, i) => { b[at + i] = x; });
  return b;
}

export const BAD: Readonly<Record<string, Buffer>> = {
  'bad-empty': Buffer.alloc(0),
  'bad-truncated-header': ping.subarray(0, 8),
  'bad-magic': patch(ping, 0, [0x50, 0x58]),
  'bad-version': patch(ping, 2, [2]),
  'bad-reserved': patch(ping, 3, [1]),
  'bad-flags': patch(ping, 6, [1, 0]),
  'bad-unknown-type': patch(ping, 4, [0x08, 0x00]),
  'bad-length-past-end': patch(message(WAIT, cid), 8, [100, 0, 0, 0]),
  'bad-body-too-long': patch(ping, 8, [1, 0, 0x10, 0]),
  'bad-trailing-bytes': Buffer.concat([message(WAIT, cid), Buffer.from([0])]),
  'bad-truncated-field-header': message(WAIT, cid, Buffer.from([1, 0, 0])),
  'bad-field-past-end': message(WAIT, Buffer.concat([u16(T.CID), u32(5), Buffer.from('ab')])),
  'bad-duplicate-cid': message(WAIT, cid, field(T.CID, 'd')),
  'bad-duplicate-uid': message(START, cid, plan(field(T.UID, u32(0)), field(T.UID, u32(1)))),
  'bad-unknown-tag': message(WAIT, cid, field(99, 'x')),
  'bad-unknown-tag-in-plan': message(START, cid, plan(field(39, u32(0)))),
  'bad-tag-not-allowed': message(PING, cid),
  'bad-plan-tag-at-top': message(WAIT, cid, field(T.ARG, 'x')),
  'bad-nul-in-string': message(WAIT, field(T.CID, 'a\0b')),
  'bad-invalid-utf8': message(WAIT, field(T.CID, Buffer.from([0x61, 0xc3, 0x28]))),
  'bad-surrogate-utf8': message(WAIT, field(T.CID, Buffer.from([0xed, 0xa0, 0x80]))),
  'bad-oversized-string': message(WAIT, field(T.CID, 'x'.repeat(4097))),
  'bad-too-deep': message(START, cid, plan(field(T.MOUNT, field(T.MOUNT, field(T.MOUNT, field(T.MOUNT_DEST, '/')))))),
  'bad-missing-cid': message(WAIT),
  'bad-plan-without-arg': message(START, cid, field(T.PLAN, field(T.UID, u32(0)))),
  'bad-mount-without-type': message(START, cid, plan(field(T.MOUNT, field(T.MOUNT_DEST, '/x')))),
  'bad-rootfs-in-exec': message(EXEC, cid, plan(field(T.ROOTFS, '/r'))),
  'bad-u32-size': message(SIGNAL, cid, field(T.SIGNO, u16(9))),
  'bad-u64-size': message(START, cid, plan(field(T.ROOTFS_PROPAGATION, u32(0)))),
  'bad-bool-value': message(SIGNAL, cid, field(T.SIGNO, u32(9)), field(T.ALL, u32(2))),
  'bad-proc-missing-state': message(OK, field(T.PROC, Buffer.concat([
    cid, field(T.PID, u32(1)), field(T.HOST_PID, u32(2)), field(T.KIND, u32(1)),
  ]))),
  'bad-hold-in-exec': message(EXEC, cid, plan(field(T.HOLD, u32(1)))),
  'bad-pid-ns-of-in-exec': message(EXEC, cid, plan(field(T.PID_NS_OF, 'pause'))),
  'bad-cgroup-ns-of-in-exec': message(EXEC, cid, plan(field(T.CGROUP_NS_OF, 'pause'))),
  'bad-too-many-cgroup-procs': message(START, cid, plan(...Array.from({ length: 17 }, () => field(T.CGROUP_PROCS, '/c')))),
  'bad-hold-value': message(START, cid, plan(field(T.HOLD, u32(2)))),
  'bad-sysctl-in-exec': message(EXEC, cid, plan(field(T.SYSCTL, 'net.ipv4.ip_forward=1'))),
  'bad-rlimit-without-hard': message(START, cid, plan(field(T.RLIMIT, Buffer.concat([
    field(T.RLIMIT_TYPE, u32(7)), field(T.RLIMIT_SOFT, Buffer.alloc(8)),
  ])))),
  'bad-too-many-rlimits': message(START, cid, plan(...Array.from({ length: 65 }, () => field(T.RLIMIT, Buffer.concat([
    field(T.RLIMIT_TYPE, u32(7)), field(T.RLIMIT_SOFT, Buffer.alloc(8)), field(T.RLIMIT_HARD, Buffer.alloc(8)),
  ]))))),
  'bad-no-new-privs-value': message(START, cid, plan(field(T.NO_NEW_PRIVS, u32(2)))),
  'bad-seccomp-not-multiple-of-8': message(START, cid, plan(field(T.SECCOMP_BPF, Buffer.alloc(12)))),
  'bad-seccomp-empty': message(EXEC, cid, plan(field(T.SECCOMP_BPF, Buffer.alloc(0)))),
  'bad-seccomp-too-long': message(START, cid, plan(field(T.SECCOMP_BPF, Buffer.alloc(32768 + 8)))),
  'bad-seccomp-flags-size': message(START, cid, plan(field(T.SECCOMP_FLAGS, Buffer.alloc(8)))),
  'bad-hook-in-exec': message(EXEC, cid, plan(field(T.HOOK, Buffer.concat([
    field(T.HOOK_KIND, u32(2)), field(T.HOOK_PATH, '/h'), field(T.HOOK_TIMEOUT, u32(1)),
  ])))),
  'bad-hook-state-in-exec': message(EXEC, cid, plan(field(T.HOOK_STATE, '{}'))),
  'bad-hook-without-path': message(START, cid, plan(field(T.HOOK, Buffer.concat([
    field(T.HOOK_KIND, u32(1)), field(T.HOOK_TIMEOUT, u32(1)),
  ])))),
  'bad-too-many-add-gids': message(START, cid, plan(...Array.from({ length: 65 }, () => field(T.ADD_GID, u32(5))))),
};
