import * as fs from 'node:fs';
import { PROTOCOL } from './protocol';

let cached: string | undefined;

/**
 * What client and daemon compare at each call: the wire version and the identity of
 * the daemon's bundle (size and mtime of dist/cli/paddockd.js), which the client
 * reads from its own package. A rebuilt or upgraded package therefore never talks to
 * a daemon still running the old code: that daemon drains and the client starts a new one.
 */
export function daemonVersion(script: string = process.argv[1] ?? ''): string {
  if (cached === undefined) {
    const st = fs.statSync(script);
    cached = `p${PROTOCOL} ${st.size}:${Math.floor(st.mtimeMs / 1000)}`;
  }
  return cached;
}
