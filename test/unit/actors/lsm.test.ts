import pino from 'pino';
import { Writable } from 'node:stream';
import { checkLsmFields, detectLsms, lsmFields } from '../../../actors/containers/lsm';
import { isPaddockError } from '../../../base/errors';
import { defaultSpec } from '../../../specs/default-spec';
import type { OciConfig } from '../../../specs/oci';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

function labelled(): OciConfig {
  const c = defaultSpec({ args: ['true'], rootfs: '/r' });
  c.process!.apparmorProfile = 'docker-default';
  c.process!.selinuxLabel = 'system_u:system_r:container_t:s0';
  c.linux!.mountLabel = 'system_u:object_r:container_file_t:s0';
  return c;
}

describe('AppArmor / SELinux fields', () => {
  it('lists only the non-empty fields, each with its LSM', () => {
    const c = labelled();
    c.process!.selinuxLabel = '';
    expect(lsmFields(c).map((f) => [f.field, f.lsm])).toEqual([
      ['process.apparmorProfile', 'apparmor'],
      ['linux.mountLabel', 'selinux'],
    ]);
  });

  it('warns once per field when neither LSM is enabled', () => {
    const { log, lines } = capture();
    checkLsmFields(labelled(), log, { apparmor: false, selinux: false });
    expect(lines.map((l) => [l.level, l.field])).toEqual([
      [40, 'process.apparmorProfile'],
      [40, 'process.selinuxLabel'],
      [40, 'linux.mountLabel'],
    ]);
    expect(String(lines[0]?.msg)).toMatch(/apparmor is not enabled/);
  });

  it('refuses a field whose LSM the host enforces, and logs nothing', () => {
    const { log, lines } = capture();
    let err: unknown;
    try {
      checkLsmFields(labelled(), log, { apparmor: false, selinux: true });
    } catch (e) {
      err = e;
    }
    expect(isPaddockError(err, 'ECONFIG_UNSUPPORTED')).toBe(true);
    expect((err as { context: { field: string } }).context.field).toBe('process.selinuxLabel');
    expect(lines).toEqual([]);
  });

  it('is silent for a spec without labels', () => {
    const { log, lines } = capture();
    checkLsmFields(defaultSpec({ args: ['true'], rootfs: '/r' }), log, { apparmor: true, selinux: true });
    expect(lines).toEqual([]);
  });

  it('detects the host without throwing', () => {
    const l = detectLsms();
    expect(typeof l.apparmor).toBe('boolean');
    expect(typeof l.selinux).toBe('boolean');
  });
});
