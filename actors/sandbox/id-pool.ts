import * as fs from 'node:fs';
import * as path from 'node:path';
import { PaddockError } from '../../base/errors';
import { processStartTime } from './state-store';
import { writeFileAtomic } from '../../base/files';
import { withTableLock } from './table-lock';

/*
 * Per-sandbox host id ranges (`userns: 'auto'`, docs/decisions/0028). Each sandbox
 * gets 65,536 host ids of its own from a pool; who holds which range is one JSON file
 * in the state dir, read and rewritten under a lock file, so two engines or CLI calls
 * on one root never hand out the same range, and a supervisor that restarts finds
 * every range still held.
 *
 *   <stateDir>/.userns.json   { version, cursor, ranges: { "<hostId>": { sandboxId, pid, start, at } } }
 *   <stateDir>/.userns.lock   "pid starttime" of the process changing it (O_EXCL)
 *
 * Neither name is a valid sandbox id (they start with '.') and both are files, so the
 * state dir's sandbox listing never takes them for sandboxes.
 */

/** Ids per sandbox: container ids 0..65535, as podman's and runc's usual mapping. */
export const RANGE_SIZE = 65_536;

/** A pool of host ids: ranges of RANGE_SIZE ids starting at `start`. */
export interface IdPool {
  readonly start: number;
  readonly size: number;
}

/**
 * Default pool: 4096 ranges from 0x60000000 (1,610,612,736) to 0x6fffffff. Above
 * every id a host hands its users and groups (below 2^31: several tools break on
 * larger ids), above the /etc/subuid ranges useradd gives out (from 100000 up) and in
 * the top of systemd's container band (524288–1879048191), away from where
 * systemd-nspawn's own picks usually land.
 */
export const DEFAULT_ID_POOL: IdPool = Object.freeze({ start: 0x6000_0000, size: 4096 * RANGE_SIZE });

/** A range held by a sandbox. */
export interface IdRange {
  readonly hostId: number;
  readonly size: number;
}

interface Entry {
  readonly sandboxId: string;
  /** The process that allocated it, so a create that died before its folder existed is freed. */
  readonly pid: number;
  readonly start: number;
  readonly at: string;
}

interface Table {
  version: 1;
  /** Next range to try (next-fit): a freed range is handed out again as late as possible. */
  cursor: number;
  ranges: Record<string, Entry>;
}

const MAX_ID = 0xffff_fffe; // (uid_t)-1 is "no id"

/**
 * Checks a pool setting: one line naming what is wrong, before anything is made.
 * Host ids 0..65535 are the host's own users and system ids: never handed to a sandbox.
 */
export function checkIdPool(pool: unknown, field = 'idPool'): IdPool {
  const bad = (what: string): never => {
    throw new PaddockError('EINVALID_ARGUMENT', `${field}: ${what}`, { field });
  };
  if (typeof pool !== 'object' || pool === null || Array.isArray(pool)) bad('must be an object { start, size }');
  const p = pool as Record<string, unknown>;
  for (const k of Object.keys(p)) if (k !== 'start' && k !== 'size') bad(`unknown option ${JSON.stringify(k)} (known: start, size)`);
  const { start, size } = p;
  if (typeof start !== 'number' || !Number.isInteger(start) || start < 0) bad(`start must be a non-negative integer, not ${String(start)}`);
  if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0) bad(`size must be a positive integer, not ${String(size)}`);
  const s = start as number;
  const n = size as number;
  if (s < RANGE_SIZE) bad(`start ${s} overlaps host ids 0..65535 (the host's own users); start at 65536 or above`);
  if (n % RANGE_SIZE !== 0) bad(`size ${n} is not a multiple of ${RANGE_SIZE} (one range per sandbox)`);
  if (s + n - 1 > MAX_ID) bad(`start + size ends at ${s + n - 1}, past the largest host id ${MAX_ID}`);
  return { start: s, size: n };
}

/** Where the host lists the ids it uses: its users and groups, and the ranges it delegates to users (newuidmap). */
export interface HostIdFiles {
  readonly passwd: string;
  readonly group: string;
  readonly subuid: string;
  readonly subgid: string;
}

export const HOST_ID_FILES: HostIdFiles = Object.freeze({ passwd: '/etc/passwd', group: '/etc/group', subuid: '/etc/subuid', subgid: '/etc/subgid' });

/**
 * Refuses a pool that overlaps ids the host uses: a user or group of /etc/passwd or
 * /etc/group (a sandbox's root would be that user on the host), or a range /etc/subuid
 * or /etc/subgid delegates to a user (that user's rootless containers would share ids
 * with a sandbox). One line naming the file and the entry. Missing files are skipped.
 */
export function checkPoolAgainstHost(pool: IdPool, files: HostIdFiles = HOST_ID_FILES, field = 'idPool'): void {
  const end = pool.start + pool.size; // exclusive
  const read = (f: string): string[] => {
    try {
      return fs.readFileSync(f, 'utf8').split('\n');
    } catch {
      return [];
    }
  };
  const fail = (what: string): never => {
    throw new PaddockError('EINVALID_ARGUMENT', `${field}: ${pool.start}..${end - 1} overlaps ${what}; choose another idPool`, { field });
  };
  for (const [file, kind] of [[files.passwd, 'user'], [files.group, 'group']] as const) {
    for (const line of read(file)) {
      const f = line.split(':');
      const id = Number(f[2]);
      if (f.length >= 3 && f[2] !== '' && Number.isInteger(id) && id >= pool.start && id < end) fail(`${kind} ${f[0]} (${id}) of ${file}`);
    }
  }
  for (const file of [files.subuid, files.subgid]) {
    for (const line of read(file)) {
      const f = line.trim().split(':');
      const s = Number(f[1]);
      const n = Number(f[2]);
      if (f.length !== 3 || !Number.isInteger(s) || !Number.isInteger(n) || n <= 0) continue;
      if (s < end && pool.start < s + n) fail(`the ids ${s}..${s + n - 1} ${file} gives ${f[0]}`);
    }
  }
}

/** The pool's ranges as a JSON-able table, changed only under the lock. */
export class IdPoolStore {
  private readonly file: string;
  private readonly lockFile: string;
  /** The host's ids were checked against the pool (once per store: at its first allocation). */
  private hostChecked = false;
  constructor(readonly stateDir: string, readonly pool: IdPool, private readonly hostFiles: HostIdFiles = HOST_ID_FILES) {
    this.file = path.join(stateDir, '.userns.json');
    this.lockFile = path.join(stateDir, '.userns.lock');
  }

  /**
   * Takes a free range for `sandboxId`; EUSERNS_EXHAUSTED when none is. A range is
   * free when no entry holds it; an entry holds it while the sandbox's folder exists or
   * the process that allocated it is still alive (a create in progress).
   */
  allocate(sandboxId: string): IdRange {
    if (!this.hostChecked) {
      // Checked here for the default pool (a pool given to createEngine is checked there
      // too): a host whose users sit in the pool gets a one-line error, not a sandbox
      // whose root is one of them.
      checkPoolAgainstHost(this.pool, this.hostFiles);
      this.hostChecked = true;
    }
    return this.withLock((t) => {
      this.collect(t);
      const count = this.pool.size / RANGE_SIZE;
      // Held ranges, sorted: a candidate is free only if it meets none of them, not just
      // if its own key is absent. Engines on one state dir may be given different pools
      // (another start, a misaligned one); their ranges must still never overlap.
      const held = Object.keys(t.ranges).map(Number).sort((x, y) => x - y);
      for (let i = 0; i < count; i++) {
        const index = (t.cursor + i) % count;
        const hostId = this.pool.start + index * RANGE_SIZE;
        if (overlapsHeld(held, hostId)) continue;
        t.ranges[String(hostId)] = { sandboxId, pid: process.pid, start: processStartTime(process.pid) ?? 0, at: new Date().toISOString() };
        t.cursor = (index + 1) % count;
        return { hostId, size: RANGE_SIZE };
      }
      throw new PaddockError(
        'EUSERNS_EXHAUSTED',
        `no free host id range for sandbox ${sandboxId}: all ${count} ranges of the pool ${this.pool.start}..${this.pool.start + this.pool.size - 1} are in use`,
        { sandboxId, field: 'idPool' },
      );
    });
  }

  /** Frees every range `sandboxId` holds (destroy, a failed create). */
  release(sandboxId: string): void {
    // Most sandboxes hold none: no lock and no write for them.
    if (this.rangeOf(sandboxId) === undefined) return;
    this.withLock((t) => {
      for (const [k, e] of Object.entries(t.ranges)) if (e.sandboxId === sandboxId) delete t.ranges[k];
    });
  }

  /** The range a sandbox holds, if any (no lock: a read of an atomically replaced file). */
  rangeOf(sandboxId: string): IdRange | undefined {
    const t = this.read();
    for (const [k, e] of Object.entries(t.ranges)) if (e.sandboxId === sandboxId) return { hostId: Number(k), size: RANGE_SIZE };
    return undefined;
  }

  /** Every range held now, by first host id. */
  held(): Array<{ hostId: number; sandboxId: string }> {
    return Object.entries(this.read().ranges)
      .map(([k, e]) => ({ hostId: Number(k), sandboxId: e.sandboxId }))
      .sort((a, b) => a.hostId - b.hostId);
  }

  /** Drops entries nobody holds any more: no sandbox folder and the allocating process gone. */
  private collect(t: Table): void {
    for (const [k, e] of Object.entries(t.ranges)) {
      if (fs.existsSync(path.join(this.stateDir, e.sandboxId))) continue;
      const alive = processStartTime(e.pid) === e.start && e.start !== 0;
      if (!alive) delete t.ranges[k];
    }
  }

  private read(): Table {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return { version: 1, cursor: 0, ranges: {} };
    }
    try {
      const t = JSON.parse(text) as Table;
      if (t.version !== 1 || typeof t.ranges !== 'object' || t.ranges === null) throw new Error('unknown version');
      if (!Number.isInteger(t.cursor) || t.cursor < 0) t.cursor = 0;
      return t;
    } catch (e) {
      throw new PaddockError('ESTATE_CORRUPT', `${this.file} cannot be read: ${(e as Error).message}`, { path: this.file });
    }
  }

  /** Held for a read and a small write, so waiting is short: up to 10 s. */
  private withLock<T>(fn: (t: Table) => T): T {
    return withTableLock(this.lockFile, `the id pool of ${this.stateDir}`, 10_000, () => {
      const t = this.read();
      const out = fn(t);
      // Atomic (temp + rename), without fsync as every state file (decision 0004): a host
      // crash ends the sandboxes holding the ranges, and folders left behind still
      // count as holders (collect).
      writeFileAtomic(this.file, JSON.stringify(t), 0o600);
      return out;
    });
  }

}

/** Whether [hostId, hostId + RANGE_SIZE) meets a held range (`held`: sorted first ids, each RANGE_SIZE long). */
function overlapsHeld(held: readonly number[], hostId: number): boolean {
  // The first held range starting at or after hostId, and the one before it.
  let lo = 0;
  let hi = held.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((held[mid] as number) < hostId) lo = mid + 1;
    else hi = mid;
  }
  const next = held[lo];
  const prev = held[lo - 1];
  return (next !== undefined && next < hostId + RANGE_SIZE) || (prev !== undefined && prev + RANGE_SIZE > hostId);
}

/**
 * The config with its user namespace given `range` (added when the spec has none):
 * container ids 0..size-1 map to the range, for uids and gids alike. A user namespace
 * the spec joins by path cannot take a range: ECONFIG_UNSUPPORTED.
 */
export function withIdRange<C extends { linux?: { namespaces?: ReadonlyArray<{ type: string; path?: string }>; uidMappings?: unknown; gidMappings?: unknown } }>(
  config: C,
  range: IdRange,
): C {
  const linux = { ...(config.linux ?? {}) };
  const namespaces = [...(linux.namespaces ?? [])];
  const user = namespaces.findIndex((n) => n.type === 'user');
  if (user >= 0 && namespaces[user]?.path) {
    throw new PaddockError('ECONFIG_UNSUPPORTED', `linux.namespaces[${user}].path: a user namespace given by path cannot take an id range of the pool (userns: 'auto')`, {
      field: `linux.namespaces[${user}].path`,
    });
  }
  if (user < 0) namespaces.push({ type: 'user' });
  const mapping = [{ containerID: 0, hostID: range.hostId, size: range.size }];
  return { ...config, linux: { ...linux, namespaces, uidMappings: mapping, gidMappings: mapping } };
}
