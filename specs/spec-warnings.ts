/**
 * Fields paddock accepts but does not apply as written, each named for the log
 * (issue 14: "every warning names the field"). The engine logs them at create, at
 * level warn, with `field`; the CLI's --log shows them.
 */

import { DeepReadonly } from './freeze';
import { OciConfig } from './oci';
import { skippedAmbient } from './process-security';

export interface SpecWarning {
  readonly field: string;
  /** `field: what happens instead`, ready to be a log message. */
  readonly message: string;
}

export function specWarnings(config: DeepReadonly<OciConfig>): SpecWarning[] {
  const out: SpecWarning[] = [];
  for (const { index, cap } of skippedAmbient(config.process?.capabilities)) {
    const field = `process.capabilities.ambient[${index}]`;
    out.push({ field, message: `${field}: ${cap} is skipped: an ambient capability must also be permitted and inheritable (as runc, the kernel would refuse it)` });
  }
  return out;
}
