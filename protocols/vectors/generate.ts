/**
 * Writes the golden vectors: <name>.bin (encode()) and <name>.txt (dump()) for each
 * GOOD message, and bad-*.bin for each malformed input. Run after an intentional
 * format change, then commit the outputs:
 *
 *   npx tsc --outDir /tmp/pd-gen --rootDir . --module commonjs --target es2022 \
 *     --strict --skipLibCheck --types node protocols/vectors/generate.ts
 *   node /tmp/pd-gen/protocols/vectors/generate.js
 */
import { readdirSync, unlinkSync, writeFileSync } from 'fs';
import { join } from 'path';

import { dump } from '../dump';
import { encode } from '../encode';
import { BAD, GOOD } from './cases';

// The compiled script runs from elsewhere, so locate the vectors from the repo root.
const dir = join(process.argv[2] ?? process.cwd(), 'protocols', 'vectors');

for (const f of readdirSync(dir)) {
  if (f.endsWith('.bin') || f.endsWith('.txt')) unlinkSync(join(dir, f));
}
for (const [name, msg] of Object.entries(GOOD)) {
  writeFileSync(join(dir, `${name}.bin`), encode(msg));
  writeFileSync(join(dir, `${name}.txt`), dump(msg));
}
for (const [name, bytes] of Object.entries(BAD)) {
  writeFileSync(join(dir, `${name}.bin`), bytes);
}
console.log(`${Object.keys(GOOD).length} good, ${Object.keys(BAD).length} bad vectors in ${dir}`);
