import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoOf } from '../../base/errno';
import { CONTAINERS_CHILD, INIT_CHILD, isCgroupFs, type SandboxCgroup } from './sandbox-cgroup';
import { PaddockError } from '../../base/errors';
import { readText } from '../../base/files';

/**
 * Pause and resume with the cgroup freezer (docs/decisions/0014).
 *
 * paddock-init must keep answering the control channel while a sandbox is paused (so
 * `state`, `kill` and `delete --force` still work, and a CLI call can reattach), so it
 * is not frozen: at pause the container processes are moved from the sandbox's cgroup
 * into a child, `<sandbox>/containers`, and only that child is frozen. runsc pauses its
 * whole sandbox, but its sandbox process is not PID 1 of a runtime that has to answer;
 * runc freezes only the container's cgroup, which is what this amounts to.
 *
 * Two freezers: cgroup v2's `cgroup.freeze` (complete when `cgroup.events` says
 * `frozen 1`) wherever the sandbox has a cgroup2 directory (v2, and the unified tree of
 * a hybrid host), else v1's `freezer.state` (complete when it reads FROZEN).
 */

export type FreezerKind = 'v2' | 'v1';
export type FreezerState = 'thawed' | 'freezing' | 'frozen';

export class FreezerError extends PaddockError {
  constructor(message: string, context: ConstructorParameters<typeof PaddockError>[2] = {}, code: 'EFREEZER' | 'ETIMEOUT' = 'EFREEZER') {
    super(code, message, context);
    this.name = 'FreezerError';
  }
}

/** How long the freezer waits before it gives up, thaws and fails. */
export const DEFAULT_FREEZE_TIMEOUT_MS = 5_000;

/**
 * The freezer of a sandbox's cgroup: v2 where it has a cgroup2 directory with
 * `cgroup.freeze`, v1's freezer hierarchy otherwise; undefined when it has neither.
 * `prefer` picks v1 on a hybrid host (tests, and hosts whose cgroup2 tree is too old
 * to freeze).
 */
export function sandboxFreezer(cg: SandboxCgroup | undefined, prefer?: FreezerKind): SandboxFreezer | undefined {
  return pickFreezer(cg, prefer, 'child');
}

/**
 * The freezer of a pod container's own cgroup (docs/decisions/0022): the directory
 * itself is frozen; nothing of paddock's runs in it, so nothing is moved first.
 */
export function containerFreezer(cg: SandboxCgroup | undefined, prefer?: FreezerKind): SandboxFreezer | undefined {
  return pickFreezer(cg, prefer, 'self');
}

function pickFreezer(cg: SandboxCgroup | undefined, prefer: FreezerKind | undefined, target: FreezeTarget): SandboxFreezer | undefined {
  if (!cg) return undefined;
  const unified = cg.dirOf('unified');
  const v2 = unified !== undefined && fs.existsSync(path.join(unified, 'cgroup.freeze')) ? unified : undefined;
  const v1Dir = cg.layout.mode === 'v2' ? undefined : cg.dirOf('freezer');
  const v1 = v1Dir !== undefined && fs.existsSync(path.join(v1Dir, 'freezer.state')) ? v1Dir : undefined;
  if (prefer === 'v1' && v1) return new SandboxFreezer('v1', v1, target);
  if (v2) return new SandboxFreezer('v2', v2, target);
  if (v1) return new SandboxFreezer('v1', v1, target);
  return undefined;
}

/**
 * `child`: a sandbox's processes but paddock-init are moved into `<parent>/containers`,
 * which is frozen. `self`: `parent` itself is frozen (a pod container's own cgroup).
 */
export type FreezeTarget = 'child' | 'self';

export class SandboxFreezer {
  /** The cgroup that is frozen: the `containers` child, or the directory itself. */
  readonly dir: string;
  /** Where processes to freeze are collected from (none for `self`). */
  private readonly sweepFrom: readonly string[];

  /** `parent` is the sandbox's (or pod container's) directory in the freezer's hierarchy. */
  constructor(
    readonly kind: FreezerKind,
    readonly parent: string,
    target: FreezeTarget = 'child',
  ) {
    this.dir = target === 'self' ? parent : path.join(parent, CONTAINERS_CHILD);
    // On cgroup v2 a sandbox with pod containers keeps init and what it forks in `init` (cgroups.ts).
    this.sweepFrom = target === 'self' ? [] : [parent, path.join(parent, INIT_CHILD)];
  }

  /** The file that says whether the freeze is complete (watched while waiting). */
  private get stateFile(): string {
    return path.join(this.dir, this.kind === 'v2' ? 'cgroup.events' : 'freezer.state');
  }

  /** Where the child stands now; `thawed` when it does not exist. */
  state(): FreezerState {
    const text = readText(this.stateFile);
    if (text === undefined) return 'thawed';
    if (this.kind === 'v2') {
      if (/^frozen 1$/m.test(text)) return 'frozen';
      return readText(path.join(this.dir, 'cgroup.freeze'))?.trim() === '1' ? 'freezing' : 'thawed';
    }
    const s = text.trim();
    return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
  }

  /**
   * Freezes every process of the sandbox's cgroup except `keep` (paddock-init). The
   * processes are moved into the child first; a process forked meanwhile by one not yet
   * moved lands in the parent, so the move is repeated until only `keep` is left, also
   * after the freeze was asked for (a process moved into a freezing cgroup freezes).
   * Resolves once the kernel reports the freeze complete; on failure or after
   * `timeoutMs` the child is thawed again and a FreezerError (EFREEZER/ETIMEOUT) thrown.
   */
  async freeze(opts: { keep: readonly number[]; timeoutMs?: number; sandboxId?: string }): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const keep = new Set(opts.keep);
    const ctx = { ...(opts.sandboxId !== undefined ? { sandboxId: opts.sandboxId } : {}), step: 'freeze', path: this.dir };
    try {
      try {
        fs.mkdirSync(this.dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      await this.sweep(keep, deadline);
      this.writeState(true);
      await this.sweep(keep, deadline);
      await this.waitFor('frozen', deadline, () => {
        // v1 can stay FREEZING while a task is busy in the kernel; asking again nudges it (runc does the same).
        if (this.kind === 'v1') this.writeState(true);
      });
    } catch (e) {
      try {
        this.writeState(false);
      } catch {
        // the child is gone: nothing is frozen
      }
      if (e instanceof FreezerError) throw new FreezerError(e.message, { ...ctx, ...e.context }, e.code as 'EFREEZER' | 'ETIMEOUT');
      throw new FreezerError(`freeze: ${errnoOf(e) ?? String((e as Error)?.message ?? e)} (${this.dir})`, ctx);
    }
  }

  /** Thaws the child and waits until the kernel reports it thawed. Nothing to do without a child. */
  async thaw(opts: { timeoutMs?: number; sandboxId?: string } = {}): Promise<void> {
    if (!fs.existsSync(this.dir)) return;
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS);
    const ctx = { ...(opts.sandboxId !== undefined ? { sandboxId: opts.sandboxId } : {}), step: 'thaw', path: this.dir };
    try {
      this.writeState(false);
      await this.waitFor('thawed', deadline);
    } catch (e) {
      if (e instanceof FreezerError) throw new FreezerError(e.message, { ...ctx, ...e.context }, e.code as 'EFREEZER' | 'ETIMEOUT');
      throw new FreezerError(`thaw: ${errnoOf(e) ?? String((e as Error)?.message ?? e)} (${this.dir})`, ctx);
    }
  }

  /**
   * For destroy: SIGKILL every process of the child, then thaw it. v1 holds even
   * SIGKILL until a task is thawed, and paddock-init, once killed, waits for every
   * process of its pid namespace: thawing after the kill lets them die without running
   * another instruction of their own. v2 delivers SIGKILL to frozen tasks; the thaw is
   * harmless there. Does not wait.
   */
  killAndThaw(): void {
    if (!fs.existsSync(this.dir)) return;
    if (this.kind === 'v2' && fs.existsSync(path.join(this.dir, 'cgroup.kill'))) {
      tryWrite(path.join(this.dir, 'cgroup.kill'), '1');
    } else {
      for (const pid of readPids(this.dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    tryWrite(path.join(this.dir, this.kind === 'v2' ? 'cgroup.freeze' : 'freezer.state'), this.kind === 'v2' ? '0' : 'THAWED');
  }

  /** Moves every process but `keep` from the parent into the child, until none is left. */
  private async sweep(keep: ReadonlySet<number>, deadline: number): Promise<void> {
    if (this.sweepFrom.length === 0) return;
    for (;;) {
      const strays = this.sweepFrom.flatMap(readPids).filter((p) => !keep.has(p));
      if (strays.length === 0) return;
      for (const pid of strays) {
        try {
          fs.writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
        } catch (e) {
          // It exited between the read and the move.
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
        }
      }
      if (Date.now() > deadline) {
        throw new FreezerError(`freeze: ETIMEOUT (processes kept forking into ${this.parent})`, {}, 'ETIMEOUT');
      }
      // A plain directory (tests' fake tree) does not move anything: one pass is all it gets.
      if (!isCgroupFs(this.parent)) return;
    }
  }

  private writeState(frozen: boolean): void {
    const file = this.kind === 'v2' ? 'cgroup.freeze' : 'freezer.state';
    const value = this.kind === 'v2' ? (frozen ? '1' : '0') : frozen ? 'FROZEN' : 'THAWED';
    fs.writeFileSync(path.join(this.dir, file), value);
  }

  /**
   * Waits until the child reaches `want`: woken by inotify on the state file (the
   * kernel signals cgroup.events changes) and polled as well, because v1's
   * freezer.state is not signalled; bounded by `deadline`.
   */
  private async waitFor(want: FreezerState, deadline: number, onPoll?: () => void): Promise<void> {
    let wake: (() => void) | undefined;
    let watcher: fs.FSWatcher | undefined;
    try {
      watcher = fs.watch(this.stateFile, () => wake?.());
      watcher.on('error', () => undefined);
    } catch {
      // polling alone
    }
    try {
      for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
        if (this.state() === want) return;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new FreezerError(`${want === 'frozen' ? 'freeze' : 'thaw'}: ETIMEOUT (${path.basename(this.stateFile)} did not report ${want})`, {}, 'ETIMEOUT');
        }
        onPoll?.();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(delay, left));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      watcher?.close();
    }
  }
}


function readPids(dir: string): number[] {
  return (readText(path.join(dir, 'cgroup.procs')) ?? '')
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

function tryWrite(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch {
    // best effort: destroy goes on and reports what is left
  }
}



/** What the engine passes for a sandbox (its Runtime, narrowed). */
export interface FreezerHost {
  readonly id: string;
  readonly cgroup?: SandboxCgroup;
  /** The own cgroups of its pod containers (docs/decisions/0022): frozen with it. */
  readonly podCgroups?: readonly SandboxCgroup[];
}

/**
 * The freezeSandbox effect: the sandbox's containers child, then every pod container's
 * own cgroup; on a failure whatever was frozen is thawed back. ENOT_SUPPORTED when the
 * sandbox has no freezer cgroup.
 */
export async function freezeSandbox(rt: FreezerHost, opts: { keep: readonly number[]; timeoutMs?: number; prefer?: FreezerKind }): Promise<void> {
  const fz = sandboxFreezer(rt.cgroup, opts.prefer);
  if (!fz) {
    throw new PaddockError('ENOT_SUPPORTED', `cannot pause sandbox ${rt.id}: it has no freezer cgroup (no cgroup could be made for it)`, { sandboxId: rt.id, verb: 'pause' });
  }
  const timeout = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
  await fz.freeze({ keep: opts.keep, sandboxId: rt.id, ...timeout });
  const frozen: SandboxFreezer[] = [fz];
  try {
    for (const cg of rt.podCgroups ?? []) {
      const own = containerFreezer(cg, opts.prefer);
      if (!own) continue;
      await own.freeze({ keep: [], sandboxId: rt.id, ...timeout });
      frozen.push(own);
    }
  } catch (e) {
    for (const f of frozen) await f.thaw({ sandboxId: rt.id, ...timeout }).catch(() => undefined);
    throw e;
  }
}

/** The thawSandbox effect. Thaws whichever freezer holds the sandbox (and its pod containers) frozen. */
export async function thawSandbox(rt: FreezerHost, opts: { timeoutMs?: number } = {}): Promise<void> {
  for (const fz of freezersOf(rt)) await fz.thaw({ sandboxId: rt.id, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
}

/** Before a destroy: kill and thaw whatever a pause left frozen (see killAndThaw); a thawed child is left to the usual kill. */
export function killFrozen(rt: FreezerHost): void {
  for (const fz of freezersOf(rt)) if (fz.state() !== 'thawed') fz.killAndThaw();
}

/** Freezes one pod container's own cgroup (pause of that container alone). */
export async function freezeContainer(host: { sandboxId: string; containerId: string; cgroup?: SandboxCgroup }, opts: { timeoutMs?: number; prefer?: FreezerKind } = {}): Promise<void> {
  const fz = containerFreezer(host.cgroup, opts.prefer);
  if (!fz) {
    throw new PaddockError('ENOT_SUPPORTED', `cannot pause container ${host.containerId}: it has no freezer cgroup of its own`, { sandboxId: host.sandboxId, containerId: host.containerId, verb: 'pause' });
  }
  await fz.freeze({ keep: [], sandboxId: host.sandboxId, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
}

/** Thaws one pod container's own cgroup, whichever freezer froze it. */
export async function thawContainer(host: { sandboxId: string; cgroup?: SandboxCgroup }, opts: { timeoutMs?: number } = {}): Promise<void> {
  for (const fz of ownFreezers(host.cgroup)) await fz.thaw({ sandboxId: host.sandboxId, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
}

/** Before a pod container is destroyed: kill and thaw it if it is frozen. */
export function killFrozenContainer(cg: SandboxCgroup | undefined): void {
  for (const fz of ownFreezers(cg)) if (fz.state() !== 'thawed') fz.killAndThaw();
}

/** Every freezer a sandbox and its pod containers may have been paused with (the one preferred may differ between callers). */
function freezersOf(rt: FreezerHost): SandboxFreezer[] {
  return [...bothFreezers(rt.cgroup, 'child'), ...(rt.podCgroups ?? []).flatMap((cg) => ownFreezers(cg))];
}

function ownFreezers(cg: SandboxCgroup | undefined): SandboxFreezer[] {
  return bothFreezers(cg, 'self');
}

function bothFreezers(cg: SandboxCgroup | undefined, target: FreezeTarget): SandboxFreezer[] {
  const out: SandboxFreezer[] = [];
  const v2 = pickFreezer(cg, 'v2', target);
  const v1 = pickFreezer(cg, 'v1', target);
  if (v2) out.push(v2);
  if (v1 && v1.parent !== v2?.parent) out.push(v1);
  return out.filter((f) => fs.existsSync(f.dir));
}
