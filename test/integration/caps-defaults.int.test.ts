import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createEngine } from '../../index';
import { defaultSpec, toRootless } from '../../specs/default-spec';
import { CAPABILITIES } from '../../specs/process-security';
import type { OciConfig } from '../../specs/oci';
import { makeBundle, fixtureRootfs } from '../helpers/bundle';
import { runCli } from '../helpers/cli';
import { statusField, useEngine } from '../helpers/engine-fixture';
import { describeIf, readAll, testStateDir } from '../helpers/env';

/**
 * Issue 12 items 1, 2, 7 and issue 14 items 1, 2: capabilities exactly as the spec
 * says (absent = none, as runc), the default spec's effect read from inside, the seccomp
 * filter without no_new_privs, the ambient caps `runc spec` writes, host networking
 * with --rootless, and bad input that makes nothing.
 */
describeIf(['root', 'busybox'])('capabilities and defaults (real sandboxes)', () => {
  const fx = useEngine('caps-defaults');
  const hex = (n: bigint) => n.toString(16).padStart(16, '0');
  const bit = (n: number) => 1n << BigInt(n);
  const ZERO = hex(0n);
  const RUNC3 = hex(bit(5) | bit(10) | bit(29)); // KILL, NET_BIND_SERVICE, AUDIT_WRITE
  const STATUS = 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status';
  const caps = (out: string) => Object.fromEntries(['CapBnd', 'CapEff', 'CapPrm', 'CapInh', 'CapAmb'].map((k) => [k, statusField(out, k)]));
  /** No capability field, no no_new_privs, no filter: what a hand-written minimal config has. */
  const bare = (c: OciConfig) => {
    delete c.process!.capabilities;
    delete c.process!.noNewPrivileges;
    delete c.linux!.seccomp;
  };

  test('a container made from defaultSpec(): runc\'s caps, no_new_privs, a filter, masked and read-only paths, read-only /sys', async () => {
    const script = [
      STATUS,
      'echo kcore=$(cat /proc/kcore | wc -c)',
      'echo hi > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro',
      'echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq=rw || echo sysrq=ro',
      'mkdir /sys/paddock-x 2>/dev/null && echo sys=rw || echo sys=ro',
      'grep -E " /sys sysfs " /proc/mounts | grep -q "[ ,]ro[ ,]" && echo sysmnt=ro',
      'echo nofile=$(ulimit -n)/$(ulimit -H -n)',
    ].join('; ');
    const { stdout, status } = await fx.run(['sh', '-c', script], { userns: false });
    expect(status.exitCode).toBe(0);
    expect(caps(stdout)).toEqual({ CapBnd: RUNC3, CapEff: RUNC3, CapPrm: RUNC3, CapInh: ZERO, CapAmb: ZERO });
    expect(statusField(stdout, 'NoNewPrivs')).toBe('1');
    expect(statusField(stdout, 'Seccomp')).toBe('2');
    expect(stdout).toContain('kcore=0\n');
    expect(stdout).toContain('procsys=ro\n');
    expect(stdout).toContain('sysrq=ro\n');
    expect(stdout).toContain('sys=ro\n');
    expect(stdout).toContain('sysmnt=ro\n');
    expect(stdout).toContain('nofile=1024/1024\n');
  });

  test('defaultSpec()\'s device rule: with CAP_MKNOD added, a node of another device can be made but not opened; the standard devices work', async () => {
    // One of the host's block devices: root opens its own node of it without any
    // capability, so only the rule can refuse it.
    const [major, minor] = fs.readdirSync('/sys/dev/block').sort()[0]!.split(':');
    const script = `mknod /dev/paddock-disk b ${major} ${minor} && echo mknod=ok; (exec 3</dev/paddock-disk) 2>/dev/null && echo dev=open || echo dev=denied; head -c 4 /dev/zero | wc -c`;
    const mknod = (c: OciConfig) => {
      const p = c.process!.capabilities!;
      for (const set of ['bounding', 'effective', 'permitted'] as const) p[set] = [...(p[set] ?? []), 'CAP_MKNOD'];
    };
    const ruled = await fx.run(['sh', '-c', script], { userns: false, extra: mknod });
    expect(ruled.status.exitCode).toBe(0);
    expect(ruled.stdout).toContain('mknod=ok\n');
    expect(ruled.stdout).toContain('dev=denied\n');
    expect(ruled.stdout).toMatch(/^4$/m);
    // Control: without the rule the same node opens.
    const open = await fx.run(['sh', '-c', script], { userns: false, extra: (c) => { mknod(c); delete c.linux!.resources; } });
    expect(open.stdout).toContain('dev=open\n');
  });

  test('no process.capabilities: every set empty (as runc), for the root process and an exec\'d one', async () => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, fx.bundle({ args: ['sleep', '60'], userns: false, extra: bare }));
    await fx.engine.startRoot(sid);
    const exec = async (opts: Record<string, unknown>) => {
      const ex = await fx.engine.execute(sid, sid, { args: ['sh', '-c', STATUS], ...opts });
      expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
      return readAll(ex.stdout!);
    };
    // The root process: pid 1 of the container; its status is readable from an exec.
    const root = await exec({ args: ['sh', '-c', 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/1/status'] });
    expect(caps(root)).toEqual({ CapBnd: ZERO, CapEff: ZERO, CapPrm: ZERO, CapInh: ZERO, CapAmb: ZERO });
    expect(statusField(root, 'NoNewPrivs')).toBe('0');
    expect(statusField(root, 'Seccomp')).toBe('0');
    const out = await exec({});
    expect(caps(out)).toEqual({ CapBnd: ZERO, CapEff: ZERO, CapPrm: ZERO, CapInh: ZERO, CapAmb: ZERO });
    // runc exec --cap: added to bounding, effective and permitted of this process only.
    const added = await exec({ addCapabilities: ['CAP_SYS_ADMIN'] });
    expect(statusField(added, 'CapBnd')).toBe(hex(bit(21)));
    expect(statusField(added, 'CapEff')).toBe(hex(bit(21)));
    expect(statusField(added, 'CapAmb')).toBe(ZERO);
    // A bad name is refused naming the option, and runs nothing.
    await expect(fx.engine.execute(sid, sid, { args: ['true'], addCapabilities: ['CAP_TELEPORT'] })).rejects.toMatchObject({
      code: 'EINVALID_ARGUMENT',
      context: expect.objectContaining({ field: 'addCapabilities[0]' }),
    });
    expect((await fx.engine.processes(sid, sid)).map((p) => p.kind)).toEqual(['container']);
  });

  test('the other absent fields, read as runc reads them: nothing masked or read-only, inherited rlimits and oom score, no extra groups, umask 0022, /sys as mounted', async () => {
    const script = [
      STATUS,
      'grep "^Groups:" /proc/self/status',
      'echo umask=$(umask)',
      'echo oom=$(cat /proc/self/oom_score_adj)',
      'echo nofile=$(ulimit -n)/$(ulimit -H -n)',
      'echo timer_list=$(head -c 1 /proc/timer_list | wc -c)',
      'grep -c " /proc/sys " /proc/mounts || true',
      'grep -E " /sys sysfs " /proc/mounts | grep -q "[ ,]rw[ ,]" && echo sysmnt=rw',
    ].join('; ');
    const { stdout, status } = await fx.run(['sh', '-c', script], {
      userns: false,
      extra: (c) => {
        bare(c);
        delete c.process!.rlimits;
        delete c.process!.oomScoreAdj;
        delete c.linux!.maskedPaths;
        delete c.linux!.readonlyPaths;
        delete c.linux!.resources;
        c.mounts = c.mounts!.map((m) => (m.destination === '/sys' ? { ...m, options: ['nosuid', 'noexec', 'nodev'] } : m));
      },
    });
    expect(status.exitCode).toBe(0);
    const limits = /Max open files\s+(\d+)\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))!;
    expect(stdout).toMatch(/^Groups:\s*$/m);
    expect(stdout).toContain('umask=0022\n');
    expect(stdout).toContain(`oom=${fs.readFileSync('/proc/self/oom_score_adj', 'utf8').trim()}\n`);
    expect(stdout).toContain(`nofile=${limits[1]}/${limits[2]}\n`);
    expect(stdout).toContain('timer_list=1\n');
    expect(stdout).toMatch(/^0$/m);
    expect(stdout).toContain('sysmnt=rw\n');
    expect(statusField(stdout, 'NoNewPrivs')).toBe('0');
    expect(statusField(stdout, 'Seccomp')).toBe('0');
  });

  test('an absent set inside process.capabilities is empty: a non-root user keeps nothing', async () => {
    const { stdout, status } = await fx.run(['sh', '-c', STATUS], {
      userns: false,
      extra: (c) => {
        bare(c);
        c.process!.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN'] };
        c.process!.user = { uid: 1000, gid: 1000 };
      },
    });
    expect(status.exitCode).toBe(0);
    expect(caps(stdout)).toEqual({ CapBnd: hex(bit(0) | bit(5)), CapEff: ZERO, CapPrm: ZERO, CapInh: ZERO, CapAmb: ZERO });
  });

  test.each([
    ['with CAP_SYS_ADMIN kept', ['CAP_SYS_ADMIN', 'CAP_KILL']],
    ['with runc\'s caps (loaded before the drop, as runc)', ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']],
  ])('noNewPrivileges false with a filter, %s: NoNewPrivs 0 and Seccomp 2, root and exec alike', async (_n, list) => {
    const sid = fx.id();
    await fx.engine.createSandbox(sid, fx.bundle({
      args: ['sleep', '60'],
      extra: (c) => {
        const spec = defaultSpec({ capabilities: list, noNewPrivileges: false });
        c.process!.capabilities = spec.process!.capabilities!;
        c.process!.noNewPrivileges = false;
        c.linux!.seccomp = spec.linux!.seccomp!;
      },
    }));
    await fx.engine.startRoot(sid);
    // The exec'd sh itself, then the root process (pid 1) seen from it.
    const ex = await fx.engine.execute(sid, sid, { args: ['sh', '-c', `${STATUS}; echo root; ${STATUS.replace('/proc/self/', '/proc/1/')}`] });
    expect(await fx.engine.waitPid(sid, ex.pid, { timeoutMs: 10_000 })).toMatchObject({ exitCode: 0 });
    const [self, root] = (await readAll(ex.stdout!)).split('root\n') as [string, string];
    for (const out of [self, root]) {
      expect(statusField(out, 'NoNewPrivs')).toBe('0');
      expect(statusField(out, 'Seccomp')).toBe('2');
    }
    expect(statusField(root, 'CapBnd')).toBe(hex(list.reduce((m, n) => m | bit(CAPABILITIES[n]!), 0n)));
  });

  test('the caps `runc spec` writes (ambient without inheritable) run; the ambient caps are skipped with a warning naming the field', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const stateDir = testStateDir('caps-warn');
    const engine = await createEngine({ stateDir, logger: pino({ level: 'warn' }, sink) });
    const b = makeBundle({
      args: ['sh', '-c', STATUS],
      extra: (c) => {
        const three = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
        c.process!.capabilities = { bounding: three, effective: three, permitted: three, ambient: three };
      },
    });
    try {
      const h = await engine.createSandbox('w1', b.dir);
      await engine.startRoot('w1');
      expect(await engine.wait('w1', 'w1', { timeoutMs: 20_000 })).toMatchObject({ exitCode: 0 });
      const out = await readAll(h.stdio!.stdout);
      expect(statusField(out, 'CapAmb')).toBe(ZERO);
      expect(statusField(out, 'CapBnd')).toBe(RUNC3);
      const warns = lines.map((l) => JSON.parse(l) as { level: number; field?: string; msg: string }).filter((l) => l.field?.startsWith('process.capabilities.ambient'));
      expect(warns.map((w) => w.field)).toEqual(['process.capabilities.ambient[0]', 'process.capabilities.ambient[1]', 'process.capabilities.ambient[2]']);
      expect(warns.every((w) => w.level === 40 && w.msg.startsWith(`${w.field}: `))).toBe(true);
    } finally {
      await engine.destroy('w1').catch(() => undefined);
      await engine.close();
      b.cleanup();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('toRootless(defaultSpec()) less the network namespace runs with the host\'s network: init touches no interface', async () => {
    const hostIfs = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    const { stdout, stderr, status } = await fx.run(['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort; ' + STATUS], {
      userns: false,
      extra: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'network');
        toRootless(c, { uid: process.geteuid!(), gid: process.getegid!() });
      },
    });
    expect(stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(stdout.split('\n').filter((l) => l !== '' && !l.includes(':')).sort()).toEqual(hostIfs);
    expect(statusField(stdout, 'Seccomp')).toBe('2');
  });

  test('unhonourable input is a one-line error at create naming the field, and makes nothing', async () => {
    const cases: Array<[string, (c: OciConfig) => void, string, string]> = [
      ['bad capability', (c) => { c.process!.capabilities!.permitted = ['CAP_KILL', 'CAP_SYS_TELEPORT']; }, 'ECONFIG_INVALID', 'process.capabilities.permitted[1]'],
      ['seccomp notify', (c) => { (c.linux!.seccomp as unknown as { syscalls: unknown[] }).syscalls.push({ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }); }, 'ECONFIG_UNSUPPORTED', 'linux.seccomp'],
      ['seccomp bad arg', (c) => { (c.linux!.seccomp as unknown as { syscalls: unknown[] }).syscalls.push({ names: ['mkdir'], action: 'SCMP_ACT_ALLOW', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }); }, 'ECONFIG_INVALID', 'linux.seccomp.syscalls'],
    ];
    for (const [name, edit, code, field] of cases) {
      const sid = fx.id();
      const e = await fx.engine.createSandbox(sid, fx.bundle({ args: ['true'], extra: edit })).then(() => undefined, (x: unknown) => x as Error & { code: string; context: { field: string } });
      expect([name, e?.code]).toEqual([name, code]);
      expect([name, e!.context.field.startsWith(field)]).toEqual([name, true]);
      expect(e!.message).not.toContain('\n');
      expect(e!.message.startsWith(`${e!.context.field}: `)).toBe(true);
      expect(fx.engine.list().find((s) => s.id === sid)).toBeUndefined();
      expect(fs.existsSync(path.join(fx.stateDir, sid))).toBe(false);
    }
  });

  describe('through the CLI', () => {
    let root: string;
    const dirs: string[] = [];
    beforeEach(() => { root = testStateDir('caps-cli'); });
    afterEach(() => {
      for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) runCli(root, ['delete', '--force', id]);
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
      fs.rmSync(root, { recursive: true, force: true });
    });
    /** `paddock spec [--rootless]` in a fresh bundle pointed at the fixture rootfs. */
    const specBundle = (rootless: boolean, edit: (c: OciConfig) => void) => {
      const dir = makeBundle({ args: ['true'] }).dir;
      dirs.push(dir);
      fs.rmSync(path.join(dir, 'config.json'));
      expect(runCli(root, ['spec', ...(rootless ? ['--rootless'] : []), '--bundle', dir]).code).toBe(0);
      const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as OciConfig;
      c.root = { path: fixtureRootfs(), readonly: true };
      edit(c);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
      return dir;
    };

    const hostIfs = () => fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean);

    test('paddock spec --rootless keeps a network namespace of its own: only lo, up', () => {
      const dir = specBundle(true, (c) => { c.process!.args = ['sh', '-c', 'cat /proc/net/dev; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags; grep Seccomp: /proc/self/status']; });
      const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as OciConfig;
      expect(c.linux!.namespaces!.map((n) => n.type)).toContain('network');
      expect(c.linux!.uidMappings).toEqual([{ containerID: 0, hostID: process.geteuid!(), size: 1 }]);
      const r = runCli(root, ['run', '--bundle', dir, 'rl1']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const ifs = r.stdout.split('\n').filter((l) => /^\s*[\w.-]+:/.test(l) && !l.startsWith('Seccomp')).map((l) => l.split(':')[0]!.trim());
      expect(ifs).toEqual(['lo']);
      expect(hostIfs().length).toBeGreaterThan(1);
      // IFF_UP (0x1) on lo: init brought it up in the sandbox's own namespace.
      expect(Number.parseInt(r.stdout.match(/^0x[0-9a-f]+$/m)![0], 16) & 1).toBe(1);
      expect(r.stdout).toMatch(/Seccomp:\s+2/);
    });

    test("paddock spec --rootless less its network namespace (runc's layout) runs with the host's interfaces", () => {
      const dir = specBundle(true, (c) => {
        c.process!.args = ['sh', '-c', 'cat /proc/net/dev; grep Seccomp: /proc/self/status'];
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'network');
        // sysfs needs the network namespace's owner: the host's /sys, bound read-only, as runc.
        c.mounts = c.mounts!.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] } : m));
      });
      const r = runCli(root, ['run', '--bundle', dir, 'rl2']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      for (const i of hostIfs()) expect(r.stdout).toContain(`${i}:`);
      expect(r.stdout).toMatch(/Seccomp:\s+2/);
    });

    test('the runc-spec ambient caps are a warning in --log naming the field; a bad --cap is one line', () => {
      const log = path.join(root, '..', `log-${path.basename(root)}.json`);
      dirs.push(log);
      const dir = specBundle(false, (c) => {
        c.process!.args = ['sh', '-c', 'grep CapAmb: /proc/self/status'];
        c.process!.capabilities!.ambient = [...c.process!.capabilities!.bounding!];
      });
      const r = runCli(root, ['--log', log, 'run', '--bundle', dir, 'amb1']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/CapAmb:\s+0000000000000000/);
      const warns = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { field?: string; level: number }).filter((l) => l.field !== undefined && l.level === 40);
      expect(warns.map((w) => w.field)).toEqual(['process.capabilities.ambient[0]', 'process.capabilities.ambient[1]', 'process.capabilities.ambient[2]']);

      expect(runCli(root, ['run', '-d', '--bundle', specBundle(false, (c) => { c.process!.args = ['sleep', '30']; }), 'cap1']).code).toBe(0);
      const ok = runCli(root, ['exec', '--cap', 'CAP_SYS_ADMIN', 'cap1', 'grep', 'CapBnd:', '/proc/self/status']);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/CapBnd:\s+0000000020200420/);
      // --process: the file is the whole process, so no capabilities there means none (runc).
      const proc = path.join(root, '..', `proc-${path.basename(root)}.json`);
      dirs.push(proc);
      fs.writeFileSync(proc, JSON.stringify({ args: ['sh', '-c', 'grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status'], env: ['PATH=/bin:/usr/bin'], cwd: '/', user: { uid: 0, gid: 0 }, noNewPrivileges: false }));
      const viaFile = runCli(root, ['exec', '--process', proc, 'cap1']);
      expect(viaFile.code).toBe(0);
      expect(viaFile.stdout).toMatch(/CapBnd:\s+0000000000000000/);
      expect(viaFile.stdout).toMatch(/NoNewPrivs:\s+0/);
      // create with an unknown capability: one line naming the field, nothing made.
      const badCreate = runCli(root, ['create', '--bundle', specBundle(false, (c) => { c.process!.capabilities!.bounding!.push('CAP_NOPE'); }), 'bad1']);
      expect(badCreate.code).not.toBe(0);
      expect(badCreate.stderr.trim().split('\n')).toHaveLength(1);
      expect(badCreate.stderr).toContain('process.capabilities.bounding[3]');
      expect(fs.existsSync(path.join(root, 'bad1'))).toBe(false);
      const bad = runCli(root, ['exec', '--cap', 'CAP_NOPE', 'cap1', 'true']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain('addCapabilities[0]');
    });
  });
});
