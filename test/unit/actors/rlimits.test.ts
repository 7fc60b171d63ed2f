/** raiseInitRlimits (actors/containers/rlimits.ts): which hard limits the supervisor raises on init. */
import { raiseInitRlimits } from '../../../actors/containers/rlimits';
import type { OciConfig } from '../../../specs/oci';

const withUserns: OciConfig = { ociVersion: '1.0.2', linux: { namespaces: [{ type: 'pid' }, { type: 'user' }] } };
const noUserns: OciConfig = { ociVersion: '1.0.2', linux: { namespaces: [{ type: 'pid' }] } };

function recorder() {
  const calls: Array<[number, number, bigint]> = [];
  return { calls, native: { raiseRlimit: (pid: number, resource: number, hard: bigint) => (calls.push([pid, resource, hard]), true) } };
}

describe('raiseInitRlimits', () => {
  test('each named hard limit, by RLIMIT number, for a sandbox with a user namespace', () => {
    const r = recorder();
    raiseInitRlimits(r.native, 42, withUserns, [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 1048576 },
      { type: 'RLIMIT_NPROC', soft: 10, hard: 20 },
    ]);
    expect(r.calls).toEqual([[42, 7, 1048576n], [42, 6, 20n]]);
  });
  test('unlimited (2^64 in JSON) stays RLIM_INFINITY', () => {
    const r = recorder();
    raiseInitRlimits(r.native, 42, withUserns, [{ type: 'RLIMIT_CORE', soft: 0, hard: 2 ** 64 }]);
    expect(r.calls).toEqual([[42, 4, 0xffffffffffffffffn]]);
  });
  test('nothing without a user namespace (init is root on the host and the container raises its own) or without rlimits', () => {
    const r = recorder();
    raiseInitRlimits(r.native, 42, noUserns, [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }]);
    raiseInitRlimits(r.native, 42, withUserns, undefined);
    raiseInitRlimits(r.native, 42, withUserns, []);
    expect(r.calls).toEqual([]);
  });
  test('a refusal reaches the caller', () => {
    const native = { raiseRlimit: () => { throw new Error('prlimit: EPERM'); } };
    expect(() => raiseInitRlimits(native, 42, withUserns, [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }])).toThrow('prlimit: EPERM');
  });
});
