import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The bundled CLI, exactly what `npx paddock` runs (built by scripts/setup.sh). */
export const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'paddock.js');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one CLI call with `--root`. Output goes through files, not pipes: a detached
 * sandbox inherits the caller's stdio (as with runc), so a pipe would only see EOF when
 * the container exits.
 */
export function runCli(root: string, args: readonly string[]): CliResult {
  const io = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cli-io-'));
  const out = path.join(io, 'out');
  const err = path.join(io, 'err');
  const fds = [fs.openSync(out, 'w+'), fs.openSync(err, 'w+')] as const;
  try {
    const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { stdio: ['ignore', fds[0], fds[1]], timeout: 30_000 });
    return { code: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
  } finally {
    fs.closeSync(fds[0]);
    fs.closeSync(fds[1]);
    fs.rmSync(io, { recursive: true, force: true });
  }
}
