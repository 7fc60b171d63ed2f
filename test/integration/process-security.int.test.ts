import * as fs from 'node:fs';
import type { OciConfig } from '../../specs/oci';
import { statusField, useEngine } from '../helpers/engine-fixture';
import { describeIf, poll, readAll } from '../helpers/env';

/**
 * process.capabilities / rlimits / noNewPrivileges / oomScoreAdj and linux.sysctl,
 * read back from inside real containers (root process and exec'd process).
 */
describeIf(['root', 'busybox'])('process security (real sandboxes)', () => {
  const fx = useEngine('process-security');
  const id = () => fx.id();
  const run = (args: string[], extra: (c: OciConfig) => void) => fx.run(args, { extra });

  const CAPS3 = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const hex = (n: number) => n.toString(16).padStart(16, '0');
  const MASK3 = hex((1 << 0) | (1 << 5) | (1 << 10)); // 0x421
  const NBS = hex(1 << 10);

  const REPORT = [
    'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status',
    'echo nofile=$(ulimit -n)',
    'grep "Max open files" /proc/self/limits',
    'echo oom=$(cat /proc/self/oom_score_adj)',
    'echo fwd=$(cat /proc/sys/net/ipv4/ip_forward)',
  ].join('; ');

  function secure(c: OciConfig): void {
    const p = c.process!;
    p.capabilities = { bounding: CAPS3, effective: CAPS3, permitted: CAPS3, inheritable: CAPS3, ambient: ['CAP_NET_BIND_SERVICE'] };
    p.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 1024 }];
    p.noNewPrivileges = true;
    p.oomScoreAdj = 321;
    c.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    delete c.linux!.seccomp; // linux.seccomp has its own tests
  }

  test('the root process gets exactly the spec\'s caps, rlimits, no_new_privs, oom score and sysctl', async () => {
    const hostFwd = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const { stdout, stderr, status } = await run(['sh', '-c', REPORT], secure);
    expect(stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(statusField(stdout, 'CapBnd')).toBe(MASK3);
    expect(statusField(stdout, 'CapEff')).toBe(MASK3);
    expect(statusField(stdout, 'CapPrm')).toBe(MASK3);
    expect(statusField(stdout, 'CapInh')).toBe(MASK3);
    expect(statusField(stdout, 'CapAmb')).toBe(NBS);
    expect(statusField(stdout, 'NoNewPrivs')).toBe('1');
    expect(statusField(stdout, 'Seccomp')).toBe('0');
    expect(stdout).toContain('nofile=512\n');
    expect(stdout).toMatch(/Max open files\s+512\s+1024\s+files/);
    expect(stdout).toContain('oom=321\n');
    expect(stdout).toContain('fwd=1\n');
    // The sysctl changed the sandbox's network namespace, not the host's.
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostFwd);
  });

  test('without the fields: no capability at all (as runc), no_new_privs off', async () => {
    const { stdout, status } = await run(['sh', '-c', REPORT], (c) => {
      delete c.process!.capabilities;
      delete c.process!.noNewPrivileges;
      delete c.linux!.seccomp;
    });
    expect(status.exitCode).toBe(0);
    expect(statusField(stdout, 'NoNewPrivs')).toBe('0');
    for (const k of ['CapBnd', 'CapEff', 'CapPrm', 'CapInh', 'CapAmb']) expect([k, statusField(stdout, k)]).toEqual([k, hex(0)]);
  });

  test('an exec\'d process gets the container\'s settings; a non-root uid keeps only ambient caps', async () => {
    const sid = id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], extra: secure }));
    await fx.engine.startRoot(sid);

    const ex = await fx.engine.execute(sid, sid, { args: ['sh', '-c', REPORT], user: { uid: 1000, gid: 1000 } });
    expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const out = await readAll(ex.stdout!);
    expect(statusField(out, 'CapBnd')).toBe(MASK3);
    expect(statusField(out, 'CapInh')).toBe(MASK3);
    expect(statusField(out, 'CapPrm')).toBe(NBS);
    expect(statusField(out, 'CapEff')).toBe(NBS);
    expect(statusField(out, 'CapAmb')).toBe(NBS);
    expect(statusField(out, 'NoNewPrivs')).toBe('1');
    expect(statusField(out, 'Seccomp')).toBe('0');
    expect(out).toContain('nofile=512\n');
    expect(out).toContain('oom=321\n');
    expect(out).toContain('fwd=1\n');

    // Exec options override the container's settings, as runc exec --process does.
    const ex2 = await fx.engine.execute(sid, sid, {
      args: ['sh', '-c', REPORT],
      capabilities: { bounding: ['CAP_KILL'] },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 64, hard: 128 }],
      noNewPrivileges: false,
    });
    expect(await fx.engine.waitPid(sid, ex2.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const out2 = await readAll(ex2.stdout!);
    expect(statusField(out2, 'CapBnd')).toBe(hex(1 << 5));
    // uid 0 execve: permitted/effective become the bounding set.
    expect(statusField(out2, 'CapEff')).toBe(hex(1 << 5));
    expect(statusField(out2, 'CapAmb')).toBe(hex(0));
    expect(statusField(out2, 'NoNewPrivs')).toBe('0');
    expect(out2).toContain('nofile=64\n');
  });

  test('a bad capability name fails at createSandbox naming the field, and creates nothing', async () => {
    const sid = id();
    const dir = fx.bundle({
      args: ['true'],
      extra: (c) => { c.process!.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_TELEPORT'] }; },
    });
    await expect(fx.engine.createSandbox(sid, dir)).rejects.toMatchObject({
      code: 'ECONFIG_INVALID',
      context: expect.objectContaining({ field: 'process.capabilities.bounding[2]' }),
    });
    expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
  });

  test('a non-namespaced sysctl is refused naming the key, and creates nothing', async () => {
    const sid = id();
    const before = fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8');
    const dir = fx.bundle({ args: ['true'], extra: (c) => { c.linux!.sysctl = { 'kernel.pid_max': '4096' }; } });
    await expect(fx.engine.createSandbox(sid, dir)).rejects.toMatchObject({
      code: 'ECONFIG_UNSUPPORTED',
      context: expect.objectContaining({ field: 'linux.sysctl.kernel.pid_max' }),
    });
    expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
    expect(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8')).toBe(before);
  });

  test('an rlimit above the hard limit init inherited: raised by the supervisor when it may (as runc prlimits its child), else a launch error at create naming prlimit', async () => {
    // Inside the sandbox's user namespace nothing holds CAP_SYS_RESOURCE over the host,
    // so the supervisor raises init's hard limit before init forks the process. That
    // needs CAP_SYS_RESOURCE in the supervisor: root on an ordinary host has it; this
    // project's own build machines drop it from every process (CapBnd bit 24 clear), so
    // there the create fails naming the step, instead of a container that cannot start.
    const canRaise = (BigInt(`0x${statusField(fs.readFileSync('/proc/self/status', 'utf8'), 'CapEff')}`) >> 24n) & 1n;
    const hard = Number(/Max open files\s+\d+\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1]);
    const nofile = "grep 'Max open files' /proc/self/limits | tr -s ' ' | cut -d' ' -f4,5";
    const sid = id();
    const dir = fx.bundle({
      args: ['sh', '-c', `${nofile}; sleep 60`],
      extra: (c) => {
        expect(c.linux!.namespaces!.map((n) => n.type)).toContain('user');
        c.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 64, hard: hard + 1 }];
      },
    });
    if (canRaise === 0n) {
      const err = await fx.engine.createSandbox(sid, dir).then(() => undefined, (e: unknown) => e as Error & { code: string; context: { step: string } });
      expect(err).toMatchObject({ code: 'ELAUNCH_STEP', context: expect.objectContaining({ step: 'prlimit' }) });
      expect(err!.message).toMatch(/^prlimit: EPERM/);
      expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
    } else {
      await raisedInside(sid, dir, hard, nofile);
    }
  });

  /** The container and an exec see the raised limits; the running container is untouched. */
  async function raisedInside(sid: string, dir: string, hard: number, nofile: string): Promise<void> {
    const h = await fx.engine.createSandbox(sid, dir);
    await fx.engine.startRoot(sid);
    let out = '';
    h.stdio!.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await poll(() => (out.includes('\n') ? true : undefined), 10_000, 'the container to report its limits');
    expect(out).toBe(`64 ${hard + 1}\n`);
    // An exec naming a higher one gets it too; the running container is untouched.
    const ex = await fx.engine.execute(sid, sid, { args: ['sh', '-c', nofile], rlimits: [{ type: 'RLIMIT_NOFILE', soft: hard + 2, hard: hard + 2 }] });
    expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    expect(await readAll(ex.stdout!)).toBe(`${hard + 2} ${hard + 2}\n`);
    expect((await fx.engine.processes(sid, sid)).map((p) => p.kind)).toEqual(['container']);
  }

  test('a hard limit the kernel refuses (nofile above fs.nr_open) is a launch error naming the step; nothing is made', async () => {
    const nrOpen = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8'));
    const sid = id();
    const err = await fx.engine.createSandbox(sid, fx.bundle({
      args: ['true'],
      extra: (c) => { c.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 64, hard: nrOpen + 1 }]; },
    })).then(() => undefined, (e: unknown) => e as Error & { code: string; context: { step: string } });
    expect(err).toMatchObject({ code: 'ELAUNCH_STEP', context: expect.objectContaining({ step: 'prlimit' }) });
    expect(err!.message).toMatch(/^prlimit: EPERM/);
    expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
  });
});
