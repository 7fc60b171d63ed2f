import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Engine, SandboxSummary } from '../../actors/api';

/** The OCI state document (runtime-spec "State"), as `runc state` prints it. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

export function ociState(s: SandboxSummary): OciState {
  const status = s.status === 'failed' ? 'stopped' : s.status;
  let annotations: Record<string, string> | undefined;
  let rootfs: string | undefined;
  try {
    const cfg = JSON.parse(fs.readFileSync(path.join(s.bundle, 'config.json'), 'utf8')) as {
      annotations?: Record<string, string>;
      root?: { path?: string };
    };
    annotations = cfg.annotations;
    if (cfg.root?.path) rootfs = path.resolve(s.bundle, cfg.root.path);
  } catch {
    // The bundle may be gone after create; the state is still reportable.
  }
  return {
    ociVersion: '1.0.2',
    id: s.id,
    status,
    // The pid conmon/containerd wait on: paddock-init, which exits with the container's status.
    pid: status === 'stopped' ? 0 : (s.pid ?? 0),
    bundle: s.bundle,
    ...(rootfs ? { rootfs } : {}),
    created: s.createdAt,
    owner: '',
    ...(annotations ? { annotations } : {}),
  };
}

/** Attach the one sandbox this call is about and return its summary. */
export async function summaryOf(engine: Engine, id: string): Promise<SandboxSummary> {
  await engine.attach(id);
  const s = engine.list().find((x) => x.id === id);
  if (!s) throw Object.assign(new Error(`container ${id} does not exist`), { code: 'ESANDBOX_NOT_FOUND' });
  return s;
}

/** runc's convention for a container killed by a signal: 128 + signal. */
export function exitCodeOf(exit: { exitCode: number | null; signal: number | null }): number {
  if (exit.signal !== null) return 128 + exit.signal;
  return exit.exitCode ?? 255;
}
