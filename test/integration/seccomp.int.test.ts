import type { OciConfig } from '../../specs/oci';
import * as seccomp from '../../actors/containers/seccomp';
import type { SeccompProfile } from '../../specs/seccomp';
import { defaultSeccompProfile } from '../../specs/seccomp-default';
import { keepSeccompIn } from '../../actors/containers/seccomp-cache';
import { statusField, useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll } from '../helpers/env';

/**
 * linux.seccomp end to end: compiled by libseccomp on the TypeScript side, carried in
 * the plan (SECCOMP_BPF), loaded by paddock-init as the last step before execve, for
 * the root process and for exec'd processes.
 */
describeIf(['root', 'busybox'])('linux.seccomp (real sandboxes)', () => {
  const fx = useEngine('seccomp');
  const id = () => fx.id();
  const run = (args: string[], extra: (c: OciConfig) => void) => fx.run(args, { extra });

  /** Everything allowed but mkdir/mkdirat, which fail with EPERM. */
  const NO_MKDIR: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }],
  };

  /** A writable /tmp, so a failing mkdir is the filter (EPERM), not the read-only rootfs (EROFS). */
  function withTmp(profile: SeccompProfile): (c: OciConfig) => void {
    return (c) => {
      c.linux!.seccomp = profile;
      c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    };
  }

  test('the default profile: Seccomp: 2, ls works, unshare -U is refused', async () => {
    const script = [
      'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status',
      'ls / >/dev/null && echo ls=ok',
      'if unshare -U true 2>/dev/null; then echo unshare=allowed; else echo unshare=refused; fi',
    ].join('; ');
    const { stdout, stderr, status } = await run(['sh', '-c', script], (c) => {
      c.linux!.seccomp = defaultSeccompProfile();
    });
    expect(stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(statusField(stdout, 'Seccomp')).toBe('2');
    expect(stdout).toContain('ls=ok\n');
    expect(stdout).toContain('unshare=refused\n');
  });

  test('without linux.seccomp there is no filter and unshare -U works', async () => {
    const { stdout, status } = await run(
      ['sh', '-c', 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo unshare=allowed'],
      (c) => { delete c.linux!.seccomp; },
    );
    expect(status.exitCode).toBe(0);
    expect(statusField(stdout, 'Seccomp')).toBe('0');
    expect(stdout).toContain('unshare=allowed\n');
  });

  test('a custom profile denying mkdir: EPERM from the filter, other syscalls untouched', async () => {
    const { stdout, stderr, status } = await run(
      ['sh', '-c', 'touch /tmp/f && echo touch=ok; mkdir /tmp/x; echo mkdir=$?'],
      withTmp(NO_MKDIR),
    );
    expect(status.exitCode).toBe(0);
    expect(stdout).toContain('touch=ok\n');
    expect(stdout).toContain('mkdir=1\n');
    expect(stderr).toMatch(/mkdir.*Operation not permitted/);
    expect(stderr).not.toMatch(/Read-only file system/);
  });

  test('the same mkdir works without the filter (the tmpfs is writable)', async () => {
    const { stdout, stderr, status } = await run(['sh', '-c', 'mkdir /tmp/x && echo mkdir=ok'], (c) => {
      c.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
    });
    expect(stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(stdout).toContain('mkdir=ok\n');
  });

  test('an exec\'d process gets the container\'s filter', async () => {
    const sid = id();
    await fx.engine.createSandbox(sid, fx.bundle({
      args: ['sleep', '60'],
      extra: (c) => {
        withTmp(NO_MKDIR)(c);
        c.process!.noNewPrivileges = false;
      },
    }));
    await fx.engine.startRoot(sid);

    const ex = await fx.engine.execute(sid, sid, {
      args: ['sh', '-c', 'grep "^Seccomp:" /proc/self/status; mkdir /tmp/y; echo mkdir=$?'],
    });
    expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const out = await readAll(ex.stdout!);
    const err = await readAll(ex.stderr!);
    expect(statusField(out, 'Seccomp')).toBe('2');
    expect(out).toContain('mkdir=1\n');
    expect(err).toMatch(/mkdir.*Operation not permitted/);

    // Also a non-root exec, which ends without CAP_SYS_ADMIN: as runc, the filter went on
    // before the uid change, and no_new_privs stays off since nobody asked for it.
    const ex2 = await fx.engine.execute(sid, sid, {
      args: ['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'],
      user: { uid: 1000, gid: 1000 },
    });
    expect(await fx.engine.waitPid(sid, ex2.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const out2 = await readAll(ex2.stdout!);
    expect(statusField(out2, 'Seccomp')).toBe('2');
    expect(statusField(out2, 'NoNewPrivs')).toBe('0');
  });

  test('root keeping CAP_SYS_ADMIN gets the filter without no_new_privs, as with runc', async () => {
    const { stdout, status } = await run(
      ['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'],
      (c) => {
        c.linux!.seccomp = NO_MKDIR;
        c.process!.noNewPrivileges = false;
        c.process!.capabilities = { bounding: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'], permitted: ['CAP_SYS_ADMIN'] };
      },
    );
    expect(status.exitCode).toBe(0);
    expect(statusField(stdout, 'Seccomp')).toBe('2');
    expect(statusField(stdout, 'NoNewPrivs')).toBe('0');
  });

  test('a program the kernel refuses is a launch error at step seccomp; nothing runs', async () => {
    // libseccomp never emits one, so hand init a program without a final RET. The
    // process keeps what it compiled (actors/containers/seccomp-cache.ts): forget it first, so this
    // profile, used by earlier tests, is compiled (by the stub) again.
    keepSeccompIn(undefined);
    const spy = jest.spyOn(seccomp, 'compileSeccomp').mockReturnValue({
      bpf: Buffer.from([0x20, 0, 0, 0, 0, 0, 0, 0]), // ld [0]
      flags: 0,
      skipped: [],
    });
    try {
      const sid = id();
      await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], extra: (c) => { c.linux!.seccomp = NO_MKDIR; } }));
      const err = await fx.engine.startRoot(sid).then(() => undefined, (e: unknown) => e as Error & { code: string });
      expect(spy).toHaveBeenCalled();
      expect(err).toMatchObject({ code: 'ELAUNCH_STEP' });
      expect(err!.message).toMatch(/^seccomp: EINVAL/);
      expect(fx.engine.list().find((s) => s.id === sid)?.status).toBe('created');
    } finally {
      spy.mockRestore();
      keepSeccompIn(undefined); // nothing the stub made stays kept
    }
  });

  test('an unknown action is ECONFIG_INVALID naming the field, and creates nothing', async () => {
    const sid = id();
    const dir = fx.bundle({
      args: ['true'],
      extra: (c) => {
        c.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_TELEPORT' }] };
      },
    });
    await expect(fx.engine.createSandbox(sid, dir)).rejects.toMatchObject({
      code: 'ECONFIG_INVALID',
      message: expect.stringContaining('linux.seccomp.syscalls[0].action: unknown action SCMP_ACT_TELEPORT'),
      context: expect.objectContaining({ field: 'linux.seccomp.syscalls[0].action' }),
    });
    expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
  });
});
