import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeTree } from '../../../base/remove-tree';

describe('removeTree', () => {
  let base: string;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-rmtree-'));
  });
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  it('removes files, nested folders, symlinks (not their targets) and sockets', async () => {
    const dir = path.join(base, 'sb');
    fs.mkdirSync(path.join(dir, '.supervision', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'state.json'), '{}');
    fs.writeFileSync(path.join(dir, '.supervision', 'deeper', 'x.json'), '{}');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'keep'), 'k');
    fs.symlinkSync(outside, path.join(dir, 'link'));
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(dir, 'ctl.sock'), r));
    try {
      removeTree(dir);
    } finally {
      server.close();
    }
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('k');
  });

  it('accepts a folder that is already gone', () => {
    expect(() => removeTree(path.join(base, 'never'))).not.toThrow();
  });

  it('still fails on what it cannot remove', () => {
    const dir = path.join(base, 'ro');
    fs.mkdirSync(path.join(dir, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'inner', 'f'), '');
    // Immutable folder: even root cannot unlink from it (tmpfs has the flag since 6.0).
    expect(spawnSync('chattr', ['+i', path.join(dir, 'inner')]).status).toBe(0);
    try {
      expect(() => removeTree(dir)).toThrow(/EPERM/);
      expect(fs.existsSync(path.join(dir, 'inner', 'f'))).toBe(true);
    } finally {
      spawnSync('chattr', ['-i', path.join(dir, 'inner')]);
    }
  });
});
