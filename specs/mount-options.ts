/**
 * OCI mount options → mount(2) flags. Shared by the validator (so a bad option is
 * reported at load, naming `mounts[i].options[j]`) and the planner (so both agree on
 * what an option means).
 */

export const MS = {
  RDONLY: 0x1n,
  NOSUID: 0x2n,
  NODEV: 0x4n,
  NOEXEC: 0x8n,
  SYNCHRONOUS: 0x10n,
  REMOUNT: 0x20n,
  MANDLOCK: 0x40n,
  DIRSYNC: 0x80n,
  NOSYMFOLLOW: 0x100n,
  NOATIME: 0x400n,
  NODIRATIME: 0x800n,
  BIND: 0x1000n,
  MOVE: 0x2000n,
  REC: 0x4000n,
  SILENT: 0x8000n,
  UNBINDABLE: 0x20000n,
  PRIVATE: 0x40000n,
  SLAVE: 0x80000n,
  SHARED: 0x100000n,
  RELATIME: 0x200000n,
  IVERSION: 0x800000n,
  STRICTATIME: 0x1000000n,
  LAZYTIME: 0x2000000n,
} as const;

/**
 * paddock's own bit in a mount plan's flags, above every MS_* flag: paddock-init fills
 * the new tmpfs with what its destination held, and never passes the bit to mount(2)
 * (native/c/init/child.c). runc and crun call the option `tmpcopyup`; podman writes it
 * for `--tmpfs` and the tmpfs mounts of `--read-only`.
 */
export const PD_TMPCOPYUP = 1n << 40n;

/** [set, clear]: an option either sets its bits or clears them (`rw` clears MS_RDONLY). */
const FLAG_OPTIONS: Readonly<Record<string, readonly [bigint, bigint]>> = {
  defaults: [0n, 0n],
  ro: [MS.RDONLY, 0n],
  rw: [0n, MS.RDONLY],
  nosuid: [MS.NOSUID, 0n],
  suid: [0n, MS.NOSUID],
  nodev: [MS.NODEV, 0n],
  dev: [0n, MS.NODEV],
  noexec: [MS.NOEXEC, 0n],
  exec: [0n, MS.NOEXEC],
  sync: [MS.SYNCHRONOUS, 0n],
  async: [0n, MS.SYNCHRONOUS],
  remount: [MS.REMOUNT, 0n],
  mand: [MS.MANDLOCK, 0n],
  nomand: [0n, MS.MANDLOCK],
  dirsync: [MS.DIRSYNC, 0n],
  atime: [0n, MS.NOATIME],
  noatime: [MS.NOATIME, 0n],
  diratime: [0n, MS.NODIRATIME],
  nodiratime: [MS.NODIRATIME, 0n],
  relatime: [MS.RELATIME, 0n],
  norelatime: [0n, MS.RELATIME],
  strictatime: [MS.STRICTATIME, 0n],
  nostrictatime: [0n, MS.STRICTATIME],
  lazytime: [MS.LAZYTIME, 0n],
  nolazytime: [0n, MS.LAZYTIME],
  iversion: [MS.IVERSION, 0n],
  noiversion: [0n, MS.IVERSION],
  silent: [MS.SILENT, 0n],
  loud: [0n, MS.SILENT],
  nosymfollow: [MS.NOSYMFOLLOW, 0n],
  symfollow: [0n, MS.NOSYMFOLLOW],
  bind: [MS.BIND, 0n],
  rbind: [MS.BIND | MS.REC, 0n],
};

export const PROPAGATION: Readonly<Record<string, bigint>> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** Every option name paddock applies (flags and propagation), sorted: for `paddock features`. */
export const MOUNT_OPTION_NAMES: readonly string[] = Object.freeze([...Object.keys(FLAG_OPTIONS), ...Object.keys(PROPAGATION), 'tmpcopyup'].sort());

/**
 * Options runc understands but paddock-init has no way to apply. Passing them on as
 * fs data would be ignored by the kernel for bind mounts, silently dropping e.g. a
 * recursive read-only request, so they are refused instead.
 */
const REFUSED_OPTIONS = new Set([
  'idmap',
  'ridmap',
  'rro',
  'rrw',
  'rnosuid',
  'rsuid',
  'rnodev',
  'rdev',
  'rnoexec',
  'rexec',
  'rnodiratime',
  'rdiratime',
  'rrelatime',
  'rnorelatime',
  'rnoatime',
  'ratime',
  'rstrictatime',
  'rnostrictatime',
  'rnosymfollow',
  'rsymfollow',
]);

export interface OptionProblem {
  readonly index: number;
  readonly unsupported: boolean;
  readonly reason: string;
}

export interface ParsedMount {
  readonly type: string;
  readonly bind: boolean;
  readonly flags: bigint;
  readonly propagation?: bigint;
  readonly data?: string;
  readonly problems: readonly OptionProblem[];
  /** Data options of a bind mount: the kernel ignores them, so they are dropped with a warning. */
  readonly ignored: readonly IgnoredOption[];
}

export interface IgnoredOption {
  readonly index: number;
  readonly option: string;
  /** Why it has no effect, for the warning. */
  readonly reason: string;
}

/**
 * Interprets one mount's type and options. `type` may be undefined for a bind mount
 * (the spec allows it there); the caller reports a missing type otherwise.
 */
export function parseMount(type: string | undefined, options: readonly string[]): ParsedMount {
  let flags = 0n;
  let propagation: bigint | undefined;
  const data: string[] = [];
  const problems: OptionProblem[] = [];
  const ignored: IgnoredOption[] = [];
  const bind =
    type === 'bind' || options.includes('bind') || options.includes('rbind');

  options.forEach((opt, index) => {
    const fl = FLAG_OPTIONS[opt];
    if (fl) {
      flags = (flags | fl[0]) & ~fl[1];
      return;
    }
    const prop = PROPAGATION[opt];
    if (prop !== undefined) {
      if (propagation !== undefined) {
        problems.push({ index, unsupported: true, reason: 'only one propagation option per mount is supported' });
      }
      propagation = prop;
      return;
    }
    if (opt === 'tmpcopyup') {
      // Meaningful for a tmpfs only; runc ignores it elsewhere.
      if (type === 'tmpfs' && !bind) flags |= PD_TMPCOPYUP;
      else ignored.push({ index, option: opt, reason: 'applies to a tmpfs mount only' });
      return;
    }
    if (REFUSED_OPTIONS.has(opt)) {
      problems.push({ index, unsupported: true, reason: `mount option "${opt}" is not supported` });
      return;
    }
    if (bind) {
      // The kernel ignores the data string of a bind mount (`mode=755`, `size=1m`):
      // runc passes it on and it has no effect. paddock drops it the same way, but says
      // so (specs/config-warnings.ts logs each one at create).
      ignored.push({ index, option: opt, reason: 'the kernel does not apply data options to a bind mount' });
      return;
    }
    data.push(opt);
  });

  let outType = type ?? 'bind';
  if (bind) {
    outType = 'bind';
    if ((flags & MS.BIND) === 0n) flags |= MS.BIND;
  } else if (type === 'cgroup') {
    // Only the unified hierarchy exists inside a paddock container, and a writable
    // cgroupfs would let the container move itself out of its own limits.
    outType = 'cgroup2';
    flags |= MS.RDONLY;
  }

  const out: ParsedMount = { type: outType, bind, flags, problems, ignored };
  if (propagation !== undefined) Object.assign(out, { propagation });
  if (data.length > 0) Object.assign(out, { data: data.join(',') });
  return out;
}
