import * as fs from 'node:fs';
import * as path from 'node:path';
import { createEngine, PaddockError } from '../../index';
import type { NativeFacade } from '../../native/facade';
import { loadNative } from '../../native/ffi';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, quietLogger, readAll, testStateDir } from '../helpers/env';
import { buildStaticFixture } from '../helpers/syscall-probe';
import { makeBundle, type TestBundle } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { reapZombies, useSubreaper } from '../helpers/subreaper';

/**
 * /dev/kvm in a sandbox (docs/decisions/0038): a static guest program (test/fixtures/
 * kvm-guest.c) makes a VM and a vCPU inside the container, runs real-mode code that
 * writes 42 to port 0x10 and halts, and prints what KVM reported.
 */
const GUEST = path.resolve(__dirname, '..', 'fixtures', 'kvm-guest.c');
const withGuest = (bin: string) => (c: import('../../specs/oci').OciConfig) => {
  (c.mounts ??= []).push({ destination: '/kvm-guest', type: 'bind', source: bin, options: ['bind', 'ro'] });
};

function expectGuestRan(out: string): void {
  expect(out).toMatch(/^out port=0x10 value=42$/m);
  expect(out).toMatch(/^exit=hlt$/m);
}

describeIf(['root', 'busybox', 'kvm', 'cgroups'])('kvm: true gives the container /dev/kvm', () => {
  const fx = useEngine('kvm');
  let guest: string;
  beforeAll(() => {
    guest = buildStaticFixture(GUEST);
  });

  test('engine.kvm() reports API 12 and the extensions', () => {
    const k = fx.engine.kvm();
    expect(k.available).toBe(true);
    expect(k.apiVersion).toBe(12);
    expect(k.extensions?.userMemory).toBe(1);
    expect(k.extensions?.maxVcpus).toBeGreaterThan(0);
  });

  test('in a user namespace of its own (userns auto): the guest runs as the sandbox root, through a node of the sandbox', async () => {
    const sid = fx.id();
    const dir = fx.bundle({ args: ['sh', '-c', 'ls -ln /dev/kvm; /kvm-guest'], extra: withGuest(guest) });
    const h = await fx.engine.createSandbox(sid, dir, { kvm: true, userns: 'auto' });
    await fx.engine.startRoot(sid);
    const status = await fx.engine.wait(sid, sid, { timeoutMs: 20_000 });
    const out = await readAll(h.stdio!.stdout);
    expect({ status, stderr: await readAll(h.stdio!.stderr), out }).toMatchObject({ status: { exitCode: 0, signal: null }, stderr: '' });
    expectGuestRan(out);
    // The container's root owns the node (crw-rw-rw- 0 0), not the host's root-only one.
    expect(out).toMatch(/^crw-rw-rw-\s+1\s+0\s+0\s+10,\s+232 .*\/dev\/kvm$/m);
    // The host's node is untouched.
    expect(fs.statSync('/dev/kvm').uid).toBe(0);
  });

  test('without a user namespace: the node is made as runc makes it, and the device cgroup allows it', async () => {
    const r = await fx.run(['/kvm-guest'], { userns: false, extra: withGuest(guest) }, { kvm: true });
    expect(r.status).toMatchObject({ exitCode: 0, signal: null });
    expectGuestRan(r.stdout);
  });

  test('without kvm: true the container has no /dev/kvm (the guest fails to open it)', async () => {
    const r = await fx.run(['/kvm-guest'], { extra: withGuest(guest) });
    expect(r.status.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^error step=open errno=2 /m);
  });

  test('a bundle that lists /dev/kvm without a device-cgroup allow: the node is there but does not open (the rules decide)', async () => {
    const r = await fx.run(['/kvm-guest'], {
      extra: (c) => {
        withGuest(guest)(c);
        c.linux!.devices = [{ path: '/dev/kvm', type: 'c', major: 10, minor: 232, fileMode: 0o666, uid: 0, gid: 0 }];
        c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
      },
    });
    expect(r.status.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^error step=open errno=1 /m);
  });
});

describeIf(['root', 'busybox'])('kvm: true on a host without KVM', () => {
  test('EKVM_UNAVAILABLE at create, and nothing is made', async () => {
    // The real native layer, its probe pointed at a path that does not exist.
    const real = loadNative();
    const native = new Proxy(real, {
      get: (t, k) => (k === 'kvmProbe' ? () => t.kvmProbe('/nonexistent/kvm') : (Reflect.get(t, k, t) as unknown)),
    }) as NativeFacade;
    const stateDir = testStateDir('nokvm');
    const engine = await createEngine({ stateDir, logger: quietLogger(), native });
    const fx = { dir: '' };
    try {
      const b = makeBundle({ args: ['true'] });
      fx.dir = b.dir;
      expect(engine.kvm()).toEqual({ available: false, reason: 'open_kvm: ENOENT (/nonexistent/kvm)' });
      const before = fs.readdirSync(stateDir).sort();
      const err = await engine.createSandbox('nokvm1', b.dir, { kvm: true, userns: 'auto' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PaddockError);
      expect((err as PaddockError).code).toBe('EKVM_UNAVAILABLE');
      expect((err as PaddockError).message).toMatch(/open_kvm: ENOENT/);
      expect(fs.readdirSync(stateDir).sort()).toEqual(before);
      expect(engine.list()).toEqual([]);
      b.cleanup();
    } finally {
      await engine.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

describeIf(['root', 'busybox', 'kvm', 'cgroups'])('paddock run with /dev/kvm in linux.devices (as podman --device /dev/kvm writes it)', () => {
  let root: string;
  const bundles: TestBundle[] = [];
  useSubreaper();
  beforeEach(() => {
    root = testStateDir('kvmcli');
  });
  afterEach(() => {
    for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) runCli(root, ['delete', '--force', id]);
    for (const b of bundles.splice(0)) b.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
    reapZombies();
  });

  test.each([
    ['a user namespace', true],
    ['no user namespace', false],
  ])('with %s: the guest runs', (_what, userns) => {
    const guest = buildStaticFixture(GUEST);
    const b = makeBundle({
      args: ['/kvm-guest'],
      userns,
      extra: (c) => {
        withGuest(guest)(c);
        c.linux!.devices = [{ path: '/dev/kvm', type: 'c', major: 10, minor: 232, fileMode: 0o666, uid: 0, gid: 0 }];
        c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 232, access: 'rwm' }] };
      },
    });
    bundles.push(b);
    const r = runCli(root, ['run', '--bundle', b.dir, `kvmcli-${userns ? 'u' : 'n'}`]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expectGuestRan(r.stdout);
  });
});
