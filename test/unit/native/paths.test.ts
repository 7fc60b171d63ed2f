import * as fs from 'fs';
import * as path from 'path';
import { initBinaryPath, libraryPath, nativeBuildDir, packageRoot } from '../../../native/paths';

test('packageRoot is the directory of the package.json named paddock', () => {
  const root = packageRoot();
  expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('paddock');
  expect(fs.existsSync(path.join(root, 'native', 'facade.ts'))).toBe(true);
});

test('build paths hang off native/build', () => {
  expect(nativeBuildDir()).toBe(path.join(packageRoot(), 'native', 'build'));
  expect(libraryPath()).toBe(path.join(nativeBuildDir(), 'libpaddock.so'));
  expect(initBinaryPath()).toBe(path.join(nativeBuildDir(), 'paddock-init'));
});
