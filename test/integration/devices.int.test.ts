import * as fs from 'node:fs';
import * as path from 'node:path';
import { detectLayout, SandboxCgroup, sandboxCgroupPath } from '../../actors/cgroups/sandbox-cgroup';
import { FORCE_BPF_ENV } from '../../actors/cgroups/devices';
import { NativeError } from '../../native/facade';
import { loadNative } from '../../native/ffi';
import { deviceProgram } from '../../specs/device-bpf';
import { reduceDeviceRules } from '../../specs/device-rules';
import { useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';

/**
 * Device rules enforced by a BPF_PROG_TYPE_CGROUP_DEVICE program on the sandbox's
 * cgroup2 directory (docs/decisions/0019), on a real kernel. A v2-only host takes
 * this path by itself; on a hybrid host PADDOCK_DEVICE_CGROUP=bpf sends the rules to
 * the unified tree instead of the v1 devices controller, so the same path runs here.
 */
const layout = detectLayout();
const unifiedRoot = layout.unified;
const needsUnified = describeIf(['root', 'busybox', 'cgroups', 'cgroup2']);

const STANDARD = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
];

needsUnified('device rules as a cgroup v2 device program (real kernel)', () => {
  const saved = process.env[FORCE_BPF_ENV];
  beforeAll(() => {
    process.env[FORCE_BPF_ENV] = 'bpf';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env[FORCE_BPF_ENV];
    else process.env[FORCE_BPF_ENV] = saved;
  });

  const fx = useEngine('devices');
  let seq = 0;
  const id = () => `dev${++seq}`;
  const cgOf = (sid: string) => new SandboxCgroup(layout, sandboxCgroupPath(fx.stateDir, sid), { cpuset: true, devices: true });
  const unifiedOf = (sid: string) => cgOf(sid).dirOf('unified') as string;

  /** A container without a user namespace, with CAP_MKNOD and a tmpfs that allows device nodes. */
  const bundle = (args: string[], devices: unknown[]) =>
    fx.bundle({
      userns: false,
      args,
      extra: (c) => {
        c.process!.capabilities = { bounding: ['CAP_MKNOD'], effective: ['CAP_MKNOD'], permitted: ['CAP_MKNOD'] };
        c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=1777'] }];
        c.linux!.resources = { devices: devices as never };
      },
    });

  test('allowed by the spec or by the runtime defaults, or denied: opening /dev/mem or a disk fails with EPERM; destroy takes the program with the directory', async () => {
    const sid = id();
    const dir = bundle(
      [
        'sh',
        '-c',
        [
          'head -c 0 /dev/null && echo null-ok',
          // Not in the spec, but among the devices runc always allows after it.
          'head -c 1 /dev/zero >/dev/null && echo zero-ok',
          // mknod of any device is allowed (runc's defaults); opening it is not.
          'mknod /tmp/mem c 1 1 && echo mknod-mem-ok; head -c 1 /tmp/mem; echo "mem-rc=$?"',
          'mknod /tmp/sda b 8 0 && echo mknod-sda-ok; head -c 1 /tmp/sda; echo "sda-rc=$?"',
          'mknod /tmp/null c 1 3 && head -c 0 /tmp/null && echo mknod-null-ok',
        ].join('; '),
      ],
      [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        { allow: true, type: 'c', major: 136, access: 'rwm' },
      ],
    );
    const h = await fx.engine.createSandbox(sid, dir);
    const unified = unifiedOf(sid);
    expect(loadNative().deviceProgramCount(unified)).toBe(1);
    // The BPF path, not the v1 controller.
    if (layout.v1.devices) expect(fs.existsSync(path.join(layout.v1.devices, sandboxCgroupPath(fx.stateDir, sid)))).toBe(false);
    await fx.engine.startRoot(sid);
    expect(await fx.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    const out = await readAll(h.stdio!.stdout);
    const err = await readAll(h.stdio!.stderr);
    expect(out).toBe('null-ok\nzero-ok\nmknod-mem-ok\nmem-rc=1\nmknod-sda-ok\nsda-rc=1\nmknod-null-ok\n');
    expect(err).toMatch(/\/tmp\/mem: Operation not permitted/);
    expect(err).toMatch(/\/tmp\/sda: Operation not permitted/);
    await fx.engine.destroy(sid);
    expect(fs.existsSync(unified)).toBe(false);
    for (const d of cgOf(sid).paths) expect(fs.existsSync(d)).toBe(false);
  });

  test("containerd's default rules (deny all, then the standard devices): a busybox container runs normally", async () => {
    const sid = id();
    const dir = bundle(
      ['sh', '-c', 'echo x > /dev/null && head -c 4 /dev/urandom | wc -c && head -c 2 /dev/zero | wc -c && ls / >/dev/null && echo done'],
      STANDARD,
    );
    const h = await fx.engine.createSandbox(sid, dir);
    expect(loadNative().deviceProgramCount(unifiedOf(sid))).toBe(1);
    await fx.engine.startRoot(sid);
    expect(await fx.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect((await readAll(h.stdio!.stdout)).replace(/ +/g, '')).toBe('4\n2\ndone\n');
    await fx.engine.destroy(sid);
    expect(fs.existsSync(unifiedOf(sid))).toBe(false);
  });

  test('an engine that sees a v2-only layout attaches the program by itself (no override)', async () => {
    const { createEngine } = await import('../../index');
    const { quietLogger } = await import('../helpers/env');
    const v2 = { mode: 'v2' as const, unified: unifiedRoot as string, v1: {} };
    delete process.env[FORCE_BPF_ENV];
    const eng = await createEngine({ stateDir: fx.stateDir, logger: quietLogger(), cgroups: v2, reattach: false });
    const sid = id();
    const unified = path.join(unifiedRoot as string, sandboxCgroupPath(fx.stateDir, sid));
    try {
      const dir = bundle(['sh', '-c', 'head -c 0 /dev/null && echo null-ok; mknod /tmp/mem c 1 1; head -c 1 /tmp/mem; echo "mem-rc=$?"'], STANDARD);
      const h = await eng.createSandbox(sid, dir);
      expect(loadNative().deviceProgramCount(unified)).toBe(1);
      await eng.startRoot(sid);
      expect(await eng.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
      expect(await readAll(h.stdio!.stdout)).toBe('null-ok\nmem-rc=1\n');
      await eng.destroy(sid);
      expect(fs.existsSync(unified)).toBe(false);
    } finally {
      process.env[FORCE_BPF_ENV] = 'bpf';
      await eng.destroy(sid).catch(() => undefined);
      await eng.close();
    }
  });

  test('a rule with an invalid type or access is ECONFIG_INVALID naming the field; nothing is created', async () => {
    for (const [bad, field] of [
      [{ allow: true, type: 'x', major: 1, minor: 3, access: 'rwm' }, 'linux.resources.devices[1].type'],
      [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwx' }, 'linux.resources.devices[1].access'],
    ] as const) {
      const sid = id();
      const dir = bundle(['true'], [{ allow: false, access: 'rwm' }, bad]);
      await expect(fx.engine.createSandbox(sid, dir)).rejects.toMatchObject({ code: 'ECONFIG_INVALID', context: expect.objectContaining({ field }) });
      expect(fs.existsSync(path.join(fx.stateDir, sid))).toBe(false);
      for (const d of cgOf(sid).paths) expect(fs.existsSync(d)).toBe(false);
    }
  });

  test('native: a program the verifier refuses fails with its log; a good one attaches and goes with rmdir', () => {
    const native = loadNative();
    const dir = path.join(unifiedRoot as string, `paddock-devbpf-test-${process.pid}`);
    fs.mkdirSync(dir);
    try {
      // `exit` with r0 never written: the verifier refuses it.
      const bad = Buffer.from([0x95, 0, 0, 0, 0, 0, 0, 0]);
      let err: unknown;
      try {
        native.attachDeviceProgram(dir, bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NativeError);
      expect((err as NativeError).step).toBe('bpf_prog_load');
      expect((err as NativeError).message).toMatch(/verifier log:[\s\S]*R0 !read_ok/);
      expect(native.deviceProgramCount(dir)).toBe(0);

      native.attachDeviceProgram(dir, deviceProgram(reduceDeviceRules(STANDARD)));
      expect(native.deviceProgramCount(dir)).toBe(1);
    } finally {
      fs.rmdirSync(dir);
    }
    expect(fs.existsSync(dir)).toBe(false);
  });
});

/**
 * podman and containerd write "deny all" and count on the runtime to allow the standard
 * devices, as runc does by appending its own rules (specs/device-rules.ts). Here through
 * whichever enforcement the host uses by itself (the v1 controller on a hybrid host).
 */
describeIf(['root', 'busybox', 'cgroups'])('runtime default device rules (real kernel, host enforcement)', () => {
  const fx = useEngine('devdef');
  test('a spec that only denies everything still has /dev/null, /dev/zero, /dev/urandom and ttys; /dev/mem stays closed', async () => {
    const sid = fx.id();
    const h = await fx.engine.createSandbox(
      sid,
      fx.bundle({
        userns: false,
        args: ['sh', '-c', 'echo x > /dev/null && head -c 2 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c; mknod /tmp/mem c 1 1; head -c 1 /tmp/mem; echo "mem-rc=$?"'],
        extra: (c) => {
          c.process!.capabilities = { bounding: ['CAP_MKNOD'], effective: ['CAP_MKNOD'], permitted: ['CAP_MKNOD'] };
          c.mounts = [...(c.mounts ?? []), { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=1777'] }];
          c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] };
        },
      }),
    );
    await fx.engine.startRoot(sid);
    expect(await fx.engine.wait(sid, sid, { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
    expect((await readAll(h.stdio!.stdout)).replace(/ +/g, '')).toBe('2\n3\nmem-rc=1\n');
    expect(await readAll(h.stdio!.stderr)).toMatch(/\/tmp\/mem: Operation not permitted/);
  });
});
