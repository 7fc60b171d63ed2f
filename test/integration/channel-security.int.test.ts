import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encode } from '../../protocols/encode';
import type { OciConfig } from '../../specs/oci';
import { useEngine, useSuccessiveEngines } from '../helpers/engine-fixture';
import { useSubreaper } from '../helpers/subreaper';
import { describeIf, readAll, testStateDir } from '../helpers/env';
import { TEST_USERNS } from '../helpers/bundle';

/**
 * Decision 0030: only the supervisor can drive a sandbox. paddock-init's sockets are
 * 0600 and the supervisor's, its state dir 0700, and init itself refuses every peer
 * but the supervisor's uid from outside the sandbox, even when the socket is opened up
 * to everyone; init and a container process waiting before its execve are not
 * dumpable. The probe (native/c/testbin/peer-probe.c) is a bare SP peer.
 */
const TESTBIN = path.resolve(__dirname, '..', '..', 'native', 'build', 'testbin');
const PROBE = path.join(TESTBIN, 'peer-probe');
const PING = encode({ type: 'PING' }).toString('hex');
const OTHER_UID = 1000;

function probe(args: string[]): string {
  const r = spawnSync(PROBE, args, { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`peer-probe ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/**
 * A copy of the probe that user-namespaced sandboxes can reach: they run as unprivileged
 * host ids, and a checkout below a closed folder (a mktemp -d clone) is out of their reach.
 */
let probeDir = '';

/** Mounts the state dir at /root and the probe's folder at /tmp (both exist in the read-only fixture rootfs). */
function withProbe(stateDir: string) {
  return (c: OciConfig): void => {
    c.mounts = [
      ...(c.mounts ?? []),
      { destination: '/root', type: 'bind', source: stateDir, options: ['rbind', 'ro'] },
      { destination: '/tmp', type: 'bind', source: probeDir, options: ['rbind', 'ro'] },
    ];
  };
}

describeIf(['root', 'busybox'])('only the supervisor can drive a sandbox (decision 0030)', () => {
  const fx = useEngine('chansec');

  beforeAll(() => {
    if (!fs.existsSync(PROBE)) throw new Error(`${PROBE} is not built: make -C native`);
    probeDir = testStateDir('peer-probe');
    fs.chmodSync(probeDir, 0o755);
    fs.copyFileSync(PROBE, path.join(probeDir, 'peer-probe'));
    fs.chmodSync(path.join(probeDir, 'peer-probe'), 0o755);
  });
  afterAll(() => {
    if (probeDir) fs.rmSync(probeDir, { recursive: true, force: true });
  });

  test.each([
    ['user-namespaced', true],
    ['without a user namespace', false],
  ])('%s: state dir 0700 and the supervisor\'s, sockets 0600 and the supervisor\'s, init.log 0600', async (_n, userns) => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], userns }));
    const dir = path.join(fx.stateDir, sid);
    const mode = (p: string) => fs.statSync(p).mode & 0o7777;
    expect(mode(dir)).toBe(0o700);
    expect([fs.statSync(dir).uid, fs.statSync(dir).gid]).toEqual([process.geteuid!(), process.getegid!()]);
    // init's own folders inside it (it writes output files and takes FIFOs there).
    for (const d of ['logs', 'stdin']) expect(mode(path.join(dir, d))).toBe(0o700);
    for (const s of ['control.sock', 'events.sock']) {
      const st = fs.statSync(path.join(dir, s));
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o7777).toBe(0o600);
      expect([st.uid, st.gid]).toEqual([process.geteuid!(), process.getegid!()]);
    }
    expect(mode(path.join(dir, 'init.log'))).toBe(0o600);
    // The sandbox still works through them.
    await fx.engine.startRoot(sid);
    expect(fx.engine.list().find((s) => s.id === sid)).toBeDefined();
  });

  test('another uid cannot connect; with the socket opened up to all, init still refuses it', async () => {
    const sid = fx.id();
    // Without a user namespace the supervisor's uid (0) is distinct in init's view from every other.
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], userns: false }));
    await fx.engine.startRoot(sid);
    const dir = path.join(fx.stateDir, sid);
    const control = path.join(dir, 'control.sock');
    const events = path.join(dir, 'events.sock');

    // The supervisor's uid is served: the probe can tell a refusal from an answer.
    expect(probe(['connect', control, 'req', PING])).toBe('connect ok\nreply 16\n');
    expect(probe(['connect', events, 'sub', ''])).toMatch(/^connect ok\nreply \d+\n$/);

    expect(probe(['-u', String(OTHER_UID), 'connect', control, 'req', PING])).toBe('connect EACCES\n');
    expect(probe(['-u', String(OTHER_UID), 'connect', events, 'sub', ''])).toBe('connect EACCES\n');

    // Past the file modes, the peer check is what is left.
    fs.chmodSync(dir, 0o711);
    fs.chmodSync(control, 0o666);
    fs.chmodSync(events, 0o666);
    expect(probe(['-u', String(OTHER_UID), 'connect', control, 'req', PING])).toBe('connect ok\neof\n');
    expect(probe(['-u', String(OTHER_UID), 'connect', events, 'sub', ''])).toBe('connect ok\neof\n');
    expect(fs.readFileSync(path.join(dir, 'init.log'), 'utf8')).toMatch(/control\.sock: refused a peer \(uid 1000, pid 0;/);
    // The refused peers changed nothing: the sandbox still answers its supervisor.
    expect(await fx.engine.processes(sid, sid)).toHaveLength(1);
  });

  test('processes of the same sandbox and of another sandbox with the same ids are refused', async () => {
    const a = fx.id();
    const b = fx.id();
    await fx.engine.createSandbox(a, fx.bundle({ args: ['sleep', '60'], extra: withProbe(fx.stateDir) }));
    await fx.engine.startRoot(a);
    await fx.engine.createSandbox(b, fx.bundle({ args: ['sleep', '60'], extra: withProbe(fx.stateDir) }));
    await fx.engine.startRoot(b);
    const sockIn = `/root/${a}/control.sock`;
    const fromInside = async (sid: string) => {
      const ex = await fx.engine.execute(sid, sid, { args: ['/tmp/peer-probe', 'connect', sockIn, 'req', PING] });
      const out = await readAll(ex.stdout!);
      expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
      return out;
    };

    // Both run as host uid TEST_USERNS.hostId, a's init's own: the state dir (the
    // supervisor's, 0700) stops them, and past it the socket's mode.
    expect(await fromInside(a)).toBe('connect EACCES\n');
    expect(await fromInside(b)).toBe('connect EACCES\n');
    fs.chmodSync(path.join(fx.stateDir, a), 0o711);
    expect(await fromInside(a)).toBe('connect EACCES\n');
    expect(await fromInside(b)).toBe('connect EACCES\n');

    // Opened up, init refuses both: a's process has a pid in init's namespace, b's a uid init maps (0).
    fs.chmodSync(path.join(fx.stateDir, a, 'control.sock'), 0o666);
    expect(await fromInside(a)).toBe('connect ok\neof\n');
    expect(await fromInside(b)).toBe('connect ok\neof\n');
    const log = fs.readFileSync(path.join(fx.stateDir, a, 'init.log'), 'utf8');
    expect(log).toMatch(/control\.sock: refused a peer \(uid 0, pid [1-9]\d*;/);
    expect(log).toMatch(/control\.sock: refused a peer \(uid 0, pid 0;/);
    // ...while the supervisor, from outside, is served.
    expect(probe(['connect', path.join(fx.stateDir, a, 'control.sock'), 'req', PING])).toBe('connect ok\nreply 16\n');
  });

  test('a process running as init\'s own host uid cannot read init through /proc or ptrace it', async () => {
    const sid = fx.id();
    const h = await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'] }));
    expect(fs.statSync(`/proc/${h.pid}`).uid).toBe(TEST_USERNS.hostId);
    expect(probe(['-u', String(TEST_USERNS.hostId), 'proc', String(h.pid)])).toBe('environ EACCES\nexe EACCES\nptrace EPERM\n');
  });

  test('a container process held before its execve is not dumpable; once released, its program is', async () => {
    const sid = fx.id();
    // No user namespace, uid 1000, no capabilities: for a probe of the same uid and
    // (empty) capability set, dumpability is the only thing that decides.
    const h = await fx.engine.createSandbox(
      sid,
      fx.bundle({
        args: ['sleep', '60'],
        userns: false,
        extra: (c) => {
          c.process!.user = { uid: OTHER_UID, gid: OTHER_UID };
          c.process!.capabilities = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
        },
      }),
      { prepare: true },
    );
    const children = fs.readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    expect(children).toHaveLength(1);
    const held = children[0] as string;
    expect(fs.readFileSync(`/proc/${held}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(probe(['-u', String(OTHER_UID), 'proc', held])).toBe('environ EACCES\nexe EACCES\nptrace EPERM\n');
    await fx.engine.startRoot(sid);
    expect(probe(['-u', String(OTHER_UID), 'proc', held])).toBe('environ ok\nexe ok\nptrace ok\n');
  });
});

describeIf(['root', 'busybox'])('a reattaching supervisor takes over sockets left open (decision 0030)', () => {
  const t = useSuccessiveEngines('chansec-re');
  useSubreaper();

  test('sockets of an older init (0755, the sandbox root\'s) are the supervisor\'s and 0600 after a reattach', async () => {
    const e1 = await t.open();
    await e1.createSandbox('old', t.bundle(['sleep', '60']));
    await e1.startRoot('old');
    await e1.shutdown({ mode: 'detach' });
    const socks = ['control.sock', 'events.sock'].map((n) => path.join(t.stateDir, 'old', n));
    for (const sock of socks) {
      fs.lchownSync(sock, TEST_USERNS.hostId, TEST_USERNS.hostId);
      fs.chmodSync(sock, 0o755);
    }
    const e2 = await t.open();
    for (const sock of socks) {
      const st = fs.statSync(sock);
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o600, process.geteuid!(), process.getegid!()]);
    }
    expect(await e2.processes('old', 'old')).toHaveLength(1);
  });
});
