import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, parseArgs, str } from '../args';
import type { CliContext } from '../context';

/**
 * `spec [--rootless] [--bundle DIR]`: writes a starting config.json that paddock
 * accepts as it is (runc's layout, without the fields paddock cannot honour yet).
 * --rootless maps container root to the calling user (runc does the same).
 */
export async function run(_ctx: CliContext, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'rootless', type: 'bool' },
    { name: 'bundle', alias: 'b', type: 'string' },
  ]);
  const dir = path.resolve(str(p, 'bundle') ?? '.');
  const file = path.join(dir, 'config.json');
  if (fs.existsSync(file)) throw new Error('File config.json exists. Remove it first');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defaultSpec } = require('../../specs/default-spec') as typeof import('../../specs/default-spec');
  const uid = process.getuid?.() ?? 0;
  const config = defaultSpec({ args: ['sh'], rootfs: 'rootfs', userns: bool(p, 'rootless') ? { hostId: uid, size: 1 } : false });
  fs.writeFileSync(file, `${JSON.stringify(config, null, '\t')}\n`);
  return 0;
}
