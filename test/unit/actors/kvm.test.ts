import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { createEngine, type Engine } from '../../../index';
import { FakeNative } from '../../../native/fake';
import { defaultSpec } from '../../../specs/default-spec';
import { KVM_DEVICE, listsKvm, withKvm } from '../../../specs/kvm';

/** kvm: true with the fake native layer (docs/decisions/0038): refusals change nothing. */
describe('kvm option', () => {
  let dir: string;
  let engine: Engine;
  let native: FakeNative;
  let bundle: string;
  const setUp = async (kvm?: ConstructorParameters<typeof FakeNative>[0]) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-kvm-'));
    native = new FakeNative(kvm);
    engine = await createEngine({ stateDir: path.join(dir, 'state'), native, logger: pino({ level: 'silent' }), reattach: false, cgroups: false });
    bundle = path.join(dir, 'bundle');
    fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(defaultSpec({ args: ['true'], rootfs: 'rootfs', userns: false })));
  };
  afterEach(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a host without KVM: EKVM_UNAVAILABLE with the probe reason, no launch, no folder', async () => {
    await setUp({ kvm: { available: false, reason: 'open_kvm: ENOENT (/dev/kvm)' } });
    await expect(engine.createSandbox('a', bundle, { kvm: true })).rejects.toMatchObject({ code: 'EKVM_UNAVAILABLE', message: expect.stringContaining('open_kvm: ENOENT') });
    expect(native.calls.filter((c) => c.fn === 'launchInit')).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'state'))).toEqual([]);
    expect(engine.kvm()).toEqual({ available: false, reason: 'open_kvm: ENOENT (/dev/kvm)' });
  });

  test('a bundle listing /dev/kvm itself is probed too', async () => {
    await setUp({ kvm: { available: false, reason: 'open_kvm: ENOENT (/dev/kvm)' } });
    const c = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    c.linux.devices = [{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(c));
    await expect(engine.createSandbox('a', bundle)).rejects.toMatchObject({ code: 'EKVM_UNAVAILABLE' });
    expect(native.calls.filter((c) => c.fn === 'launchInit')).toEqual([]);
  });

  test('kvm that is not a boolean is EINVALID_ARGUMENT before the probe', async () => {
    await setUp();
    await expect(engine.createSandbox('a', bundle, { kvm: 'yes' } as never)).rejects.toMatchObject({ code: 'EINVALID_ARGUMENT', context: expect.objectContaining({ field: 'kvm' }) });
    expect(native.calls.filter((c) => c.fn === 'kvmProbe' || c.fn === 'launchInit')).toEqual([]);
  });
});

describe('withKvm', () => {
  test('adds the node and an allow rule after the existing rules; keeps a listed node', () => {
    const c = defaultSpec({ args: ['true'], rootfs: '/r', userns: false });
    const before = c.linux?.resources?.devices?.length ?? 0;
    const out = withKvm(JSON.parse(JSON.stringify(c)));
    expect(listsKvm(c)).toBe(false);
    expect(listsKvm(out)).toBe(true);
    expect(out.linux?.devices?.filter((d) => d.path === KVM_DEVICE.path)).toEqual([{ path: '/dev/kvm', type: 'c', major: 10, minor: 232, fileMode: 0o666, uid: 0, gid: 0 }]);
    expect(out.linux?.resources?.devices?.length).toBe(before + 1);
    expect(out.linux?.resources?.devices?.at(-1)).toEqual({ allow: true, type: 'c', major: 10, minor: 232, access: 'rwm' });
    const twice = withKvm(JSON.parse(JSON.stringify(out)));
    expect(twice.linux?.devices?.filter((d) => d.path === KVM_DEVICE.path)).toHaveLength(1);
  });
});
