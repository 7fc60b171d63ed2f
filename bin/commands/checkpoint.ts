import { bool, expectPositionals, parseArgs, str, UsageError, type Parsed } from '../args';
import { resolvePath, type CliContext } from '../context';
import { resolveAttached } from './common';
import { PaddockError } from '../../base/errors';
import type { RestoreOptions } from '../../actors/engine/api';

/** The CRIU flags runc's `checkpoint` and `restore` share. */
export const CRIU_FLAGS = [
  { name: 'image-path', type: 'string' },
  { name: 'work-path', type: 'string' },
  { name: 'tcp-established', type: 'bool' },
  { name: 'ext-unix-sk', type: 'bool' },
  { name: 'shell-job', type: 'bool' },
  { name: 'file-locks', type: 'bool' },
  { name: 'manage-cgroups-mode', type: 'string' },
] as const;

/** runc's `checkpoint` flags that paddock honours; the rest of runc's (page server, parent path) are refused by name. */
const CHECKPOINT_FLAGS = [
  ...CRIU_FLAGS,
  { name: 'leave-running', type: 'bool' },
  { name: 'pre-dump', type: 'bool' },
  { name: 'parent-path', type: 'string' },
  { name: 'page-server', type: 'string' },
] as const;

/** What the shared flags ask of engine.checkpoint and engine.restore (runc's default image path: ./checkpoint). */
export function criuOptions(ctx: CliContext, p: Parsed): Pick<RestoreOptions, 'imagePath' | 'workPath' | 'tcpEstablished' | 'extUnixSk' | 'shellJob' | 'fileLocks' | 'manageCgroupsMode'> {
  const work = str(p, 'work-path');
  const mode = cgroupsMode(str(p, 'manage-cgroups-mode'));
  return {
    imagePath: resolvePath(ctx, str(p, 'image-path') ?? 'checkpoint'),
    ...(work !== undefined ? { workPath: resolvePath(ctx, work) } : {}),
    tcpEstablished: bool(p, 'tcp-established'),
    extUnixSk: bool(p, 'ext-unix-sk'),
    shellJob: bool(p, 'shell-job'),
    fileLocks: bool(p, 'file-locks'),
    ...(mode !== undefined ? { manageCgroupsMode: mode } : {}),
  };
}

function cgroupsMode(v: string | undefined): 'soft' | 'full' | 'strict' | 'ignore' | undefined {
  if (v === undefined) return undefined;
  if (v === 'soft' || v === 'full' || v === 'strict' || v === 'ignore') return v;
  throw new UsageError(`--manage-cgroups-mode: must be soft, full, strict or ignore, not ${JSON.stringify(v)}`);
}

/**
 * `checkpoint [--image-path DIR] ID` (docs/decisions/0040): CRIU dumps the container into
 * DIR (runc's default: ./checkpoint). Without --leave-running the container stops.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, CHECKPOINT_FLAGS);
  const [id] = expectPositionals(p, 'checkpoint', ['container-id']) as [string];
  for (const f of ['parent-path', 'page-server'] as const) {
    if (str(p, f) !== undefined) throw new PaddockError('ENOT_SUPPORTED', `--${f} is not supported: pre-dumps and page servers need dirty-page tracking, which paddock does not use`);
  }
  const engine = await ctx.engine();
  const r = await resolveAttached(engine, ctx.root, id);
  if (r.sub) throw new PaddockError('ENOT_SUPPORTED', `container ${id} is not its sandbox's root: only a sandbox's root container can be checkpointed`);
  await engine.checkpoint(r.sandboxId, { ...criuOptions(ctx, p), leaveRunning: bool(p, 'leave-running'), preDump: bool(p, 'pre-dump') });
  return 0;
}
