import * as fs from 'node:fs';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciConfig } from '../../specs/oci';
import { LaunchError, SpecError } from '../../base/errors';

/*
 * The namespaces a container added to a sandbox (a pod's container, CRI annotations)
 * names by path. It always shares the sandbox's network, ipc, uts and user namespaces;
 * CRI passes those as paths to the pod's own (the sandbox's netns file, /proc/<pid of
 * the sandbox>/ns/ipc ...), and a path to any other namespace cannot be honoured, so it
 * is refused rather than ignored. A pid namespace by path is how Kubernetes asks for a
 * shared process namespace (shareProcessNamespace), and a cgroup one how podman shares
 * a pod's cgroup namespace: the path names the sandbox's (paddock-init's, whose pid CRI
 * and podman know) or a running container's namespace, and the container is then made
 * in that container's namespace, the sandbox's root container for the sandbox's own:
 * the root container plays the part of the pause (infra) container it stands for under
 * runc. See docs/decisions/0024 and 0025.
 */

/** /proc/<pid>/ns/<name> for each type a pod container may give by path. */
const PROC_NS: Readonly<Record<string, string>> = { network: 'net', ipc: 'ipc', uts: 'uts', user: 'user', pid: 'pid', cgroup: 'cgroup' };

/** Types whose path may name a running container's namespace, and the plan field that carries it. */
const SHARED: Readonly<Record<string, keyof PodNamespaces>> = { pid: 'pidNsOf', cgroup: 'cgroupNsOf' };

export interface PodSandboxView {
  readonly sandboxId: string;
  readonly initPid: number;
  /** Its containers that have a process, the root container first. */
  readonly containers: ReadonlyArray<{ readonly id: string; readonly hostPid: number }>;
}

export interface PodNamespaces {
  /** The container whose pid namespace this one joins. */
  readonly pidNsOf?: string;
  /** The container whose cgroup namespace this one joins. */
  readonly cgroupNsOf?: string;
}

export function podNamespaces(config: DeepReadonly<OciConfig>, sandbox: PodSandboxView, containerId: string): PodNamespaces {
  const out: { -readonly [K in keyof PodNamespaces]: PodNamespaces[K] } = {};
  (config.linux?.namespaces ?? []).forEach((ns, i) => {
    if (ns.path === undefined || ns.path === '') return;
    const field = `linux.namespaces[${i}].path`;
    if (ns.type === 'mount') {
      checkMountNamespace(ns.path, field, sandbox, containerId);
      return;
    }
    const procName = PROC_NS[ns.type];
    // A pod container cannot join a time namespace by path: refused here (specs/UNSUPPORTED.md).
    if (procName === undefined) throw new SpecError('ECONFIG_UNSUPPORTED', `${field}: joining an existing ${ns.type} namespace is not supported`, { field });
    const want = identity(ns.path, field, sandbox.sandboxId, containerId);
    const sandboxNs = identity(`/proc/${sandbox.initPid}/ns/${procName}`, field, sandbox.sandboxId, containerId);
    const key = SHARED[ns.type];
    if (key === undefined) {
      if (!same(want, sandboxNs)) {
        throw new SpecError(
          'ECONFIG_UNSUPPORTED',
          `${field}: a container added to sandbox ${sandbox.sandboxId} shares the sandbox's ${ns.type} namespace; ${ns.path} is another one`,
          { field, path: ns.path },
        );
      }
      return;
    }
    const owner = same(want, sandboxNs) ? sandbox.containers[0] : sandbox.containers.find((c) => sameAsProcess(want, c.hostPid, procName));
    if (owner === undefined) {
      throw new SpecError(
        'ECONFIG_UNSUPPORTED',
        `${field}: ${ns.path} is not the ${ns.type} namespace of sandbox ${sandbox.sandboxId} or of one of its running containers`,
        { field, path: ns.path },
      );
    }
    out[key] = owner.id;
  });
  return out;
}

/*
 * A mount namespace by path is joined by the container's child and set up there, as
 * for a sandbox's root container and as runc does: its rootfs is pivoted into that
 * namespace for good (decision 0034). pivot_root moves every process whose root is the
 * namespace's old root, so naming paddock-init's namespace would re-root init into the
 * new container's rootfs, and naming one of the sandbox's containers' would re-root that
 * container (and find none of the host's paths there): both are refused. So is any path
 * from a sandbox with a user namespace of its own, where setns needs CAP_SYS_ADMIN over
 * the namespace's owner, as for a root container (specs/validate.ts). What is left is a
 * namespace held outside the sandbox, as runc joins it (decision 0045).
 */
function checkMountNamespace(nsPath: string, field: string, sandbox: PodSandboxView, containerId: string): void {
  const refuse = (why: string): never => {
    throw new SpecError('ECONFIG_UNSUPPORTED', `${field}: ${why}`, { field, path: nsPath });
  };
  const want = identity(nsPath, field, sandbox.sandboxId, containerId);
  if (!same(identity(`/proc/${sandbox.initPid}/ns/user`, field, sandbox.sandboxId, containerId), identity('/proc/self/ns/user', field, sandbox.sandboxId, containerId))) {
    refuse(`sandbox ${sandbox.sandboxId} has a user namespace of its own, from which a mount namespace given by path cannot be joined (setns needs CAP_SYS_ADMIN over it)`);
  }
  if (same(want, identity(`/proc/${sandbox.initPid}/ns/mnt`, field, sandbox.sandboxId, containerId))) {
    refuse(`${nsPath} is sandbox ${sandbox.sandboxId}'s own mount namespace, which the container's rootfs would replace`);
  }
  const owner = sandbox.containers.find((c) => sameAsProcess(want, c.hostPid, 'mnt'));
  if (owner !== undefined) refuse(`${nsPath} is the mount namespace of container ${owner.id} of sandbox ${sandbox.sandboxId}, whose rootfs it is`);
}

interface NsIdentity {
  readonly dev: number;
  readonly ino: number;
}

function identity(path: string, field: string, sandboxId: string, containerId: string): NsIdentity {
  try {
    const st = fs.statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new LaunchError(`${field}: ${code} (${path})`, { sandboxId, containerId, step: 'namespace_path', field, path }, e);
  }
}

function sameAsProcess(want: NsIdentity, hostPid: number, procName: string): boolean {
  try {
    return same(want, fs.statSync(`/proc/${hostPid}/ns/${procName}`));
  } catch {
    return false;
  }
}

function same(a: NsIdentity, b: NsIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
