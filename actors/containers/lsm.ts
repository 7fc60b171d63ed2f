/**
 * AppArmor and SELinux fields of a spec (process.apparmorProfile, process.selinuxLabel,
 * linux.mountLabel). paddock applies neither, so what happens depends on the host, as
 * with runc, which skips them where the LSM is off (docs/decisions/0013):
 *
 * - LSM not enabled: the field could not take effect under any runtime; the create
 *   goes on with a warning in the log.
 * - LSM enabled: runc would confine the process; paddock cannot, and running it
 *   unconfined would silently weaken isolation, so the create fails with
 *   ECONFIG_UNSUPPORTED naming the field.
 */
import * as fs from 'node:fs';
import { SpecError } from '../../base/errors';
import type { Logger } from '../../base/logger';
import type { DeepReadonly } from '../../specs/freeze';
import type { OciConfig } from '../../specs/oci';
import { readText } from '../../base/files';

export interface HostLsms {
  readonly apparmor: boolean;
  readonly selinux: boolean;
}


/**
 * Which of the two LSMs the kernel runs. /sys/kernel/security/lsm lists the active
 * ones when securityfs is mounted; without it, the places runc looks: AppArmor's
 * module parameter and a mounted selinuxfs.
 */
export function detectLsms(): HostLsms {
  const list = readText('/sys/kernel/security/lsm');
  if (list !== undefined) {
    const names = list.trim().split(',');
    return { apparmor: names.includes('apparmor'), selinux: names.includes('selinux') };
  }
  return {
    apparmor: (readText('/sys/module/apparmor/parameters/enabled') ?? '').startsWith('Y'),
    selinux: fs.existsSync('/sys/fs/selinux/enforce'),
  };
}

let cached: HostLsms | undefined;
function hostLsms(): HostLsms {
  cached ??= detectLsms();
  return cached;
}

/** The non-empty LSM fields of a spec, each with the LSM it belongs to. */
export function lsmFields(config: DeepReadonly<OciConfig>): Array<{ field: string; value: string; lsm: keyof HostLsms }> {
  const out: Array<{ field: string; value: string; lsm: keyof HostLsms }> = [];
  const add = (field: string, value: string | undefined, lsm: keyof HostLsms): void => {
    if (typeof value === 'string' && value !== '') out.push({ field, value, lsm });
  };
  add('process.apparmorProfile', config.process?.apparmorProfile, 'apparmor');
  add('process.selinuxLabel', config.process?.selinuxLabel, 'selinux');
  add('linux.mountLabel', config.linux?.mountLabel, 'selinux');
  return out;
}

/**
 * Warns about each LSM field the host cannot enforce anyway; throws for one it would
 * enforce. Called once per bundle before anything is created.
 */
export function checkLsmFields(config: DeepReadonly<OciConfig>, log: Logger, lsms: HostLsms = hostLsms()): void {
  for (const f of lsmFields(config)) {
    if (lsms[f.lsm]) {
      throw new SpecError('ECONFIG_UNSUPPORTED', `${f.field}: ${f.lsm} is enabled on this host and paddock cannot apply ${f.lsm} labels`, {
        field: f.field,
      });
    }
  }
  for (const f of lsmFields(config)) {
    log.warn({ field: f.field, value: f.value, step: 'lsm' }, `${f.field} ignored: ${f.lsm} is not enabled on this host`);
  }
}
