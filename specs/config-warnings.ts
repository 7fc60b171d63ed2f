/**
 * Fields of a valid config that paddock accepts and does not apply, because the kernel
 * would not apply them either (runc and crun accept them the same way). Each one is
 * logged at create (level warn, `field`, `step: "config"`) by the engine, so the CLI's
 * `--log` and the library's pino log both name it; nothing else changes.
 *
 * What is refused instead (it would weaken isolation or change behaviour in silence)
 * is the validator's business (specs/validate.ts, specs/UNSUPPORTED.md).
 */

import { devicePath } from './device-nodes';
import { KVM_DEVICE } from './kvm';
import type { DeepReadonly } from './freeze';
import { parseMount } from './mount-options';
import type { OciConfig } from './oci';
import { skippedAmbient } from './process-security';

export interface ConfigWarning {
  readonly field: string;
  /** `field: why`, one line. */
  readonly message: string;
}

/**
 * linux.resources.memory keys that are validated (same range as limit) and then
 * ignored: the kernel dropped kernel-memory limits (v1 `memory.kmem.*` is gone since
 * Linux 6.x and has no v2 form), and runc 1.1 ignores both.
 */
export const IGNORED_MEMORY_KEYS: readonly string[] = ['kernel', 'kernelTCP'];

/** Every warning for a config that passed validateConfig, in document order. */
export function configWarnings(config: DeepReadonly<OciConfig>): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  // runc's own `runc spec` lists ambient caps that are not inheritable: the kernel would
  // refuse to raise them, and runc skips them.
  for (const { index, cap } of skippedAmbient(config.process?.capabilities)) {
    const field = `process.capabilities.ambient[${index}]`;
    out.push({ field, message: `${field}: ${cap} is skipped: an ambient capability must also be permitted and inheritable (as runc, the kernel would refuse it)` });
  }
  (config.mounts ?? []).forEach((m, i) => {
    for (const { index, option, reason } of parseMount(m.type, m.options ?? []).ignored) {
      const field = `mounts[${i}].options[${index}]`;
      out.push({ field, message: `${field}: "${option}" ignored: ${reason}` });
    }
  });
  // In a user namespace a char or block node is the host's own, bound in (runc does
  // the same): the spec's mode and owner cannot be given to it.
  const userns = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
  (config.linux?.devices ?? []).forEach((d, i) => {
    // /dev/kvm is a node of the sandbox's own there, with the spec's mode and owner (specs/kvm.ts).
    if (!userns || d.type === 'p' || devicePath(d.path) === KVM_DEVICE.path) return;
    for (const k of ['fileMode', 'uid', 'gid'] as const) {
      if (d[k] === undefined) continue;
      const field = `linux.devices[${i}].${k}`;
      out.push({ field, message: `${field} ignored: inside a user namespace the host's ${d.path} is bound with its own mode and owner` });
    }
  });
  if (!(config.linux?.namespaces ?? []).some((ns) => ns.type === 'mount')) {
    out.push({
      field: 'linux.namespaces',
      message: 'linux.namespaces: no mount namespace listed: the container gets one of its own all the same, so its mounts never reach the host\'s mount table',
    });
  }
  const memory = config.linux?.resources?.memory as Readonly<Record<string, unknown>> | undefined;
  for (const key of IGNORED_MEMORY_KEYS) {
    if (memory?.[key] === undefined) continue;
    const field = `linux.resources.memory.${key}`;
    out.push({ field, message: `${field} ignored: the kernel no longer supports kernel memory limits` });
  }
  return out;
}

/**
 * Warnings by config object: a loaded config is frozen and reused while its text is
 * unchanged (specs/load.ts), so each sandbox made from it skips the walk (~5 µs).
 */
const byConfig = new WeakMap<object, readonly ConfigWarning[]>();

/** Logs each warning of `config` (see configWarnings). */
export function logConfigWarnings(config: DeepReadonly<OciConfig>, log: { warn(obj: object, msg: string): void }): void {
  let warnings = byConfig.get(config);
  if (warnings === undefined) {
    warnings = configWarnings(config);
    if (Object.isFrozen(config)) byConfig.set(config, warnings);
  }
  for (const w of warnings) log.warn({ field: w.field, step: 'config' }, w.message);
}
