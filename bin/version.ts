import * as fs from 'node:fs';
import * as path from 'node:path';

/** runc-style `--version` text: runtime version, commit if known, spec version. */
export function version(): string {
  let v = 'unknown';
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      const j = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (j.name === 'paddock') {
        v = j.version ?? v;
        break;
      }
    }
  }
  return `paddock version ${v}\nspec: 1.0.2\n`;
}
