import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, parseArgs, str } from '../args';
import { resolvePath, type CliContext } from '../context';

/**
 * `spec [--rootless] [--bundle DIR]`: writes a starting config.json that paddock
 * accepts as it is: runc's layout and capabilities, noNewPrivileges and paddock's
 * default seccomp profile (specs/default-spec.ts). --rootless does what runc's does:
 * container root is the calling user, no network namespace, /sys bound read-only.
 */
export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'rootless', type: 'bool' },
    { name: 'bundle', alias: 'b', type: 'string' },
  ]);
  const dir = resolvePath(ctx, str(p, 'bundle') ?? '.');
  const file = path.join(dir, 'config.json');
  if (fs.existsSync(file)) throw new Error('File config.json exists. Remove it first');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defaultSpec, toRootless } = require('../../specs/default-spec') as typeof import('../../specs/default-spec');
  const config = defaultSpec({ args: ['sh'], rootfs: 'rootfs' });
  // runc maps the effective ids.
  if (bool(p, 'rootless')) toRootless(config, { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 });
  fs.writeFileSync(file, `${JSON.stringify(config, null, '\t')}\n`);
  return 0;
}
