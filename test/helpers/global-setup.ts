import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { metLayoutNeeds } from './env';
import { cgroupDirs, mountPoints, paddockInitPids, preexistingFile, tempEntries, type Preexisting } from './leaks';

/**
 * Names this run's state root (inherited by every test file and worker) and records
 * the paddock-init processes and test cgroups that predate the run, so the teardown blames only this run.
 */
export default async function globalSetup(): Promise<void> {
  process.env.PADDOCK_TEST_ROOT = path.join(os.tmpdir(), `paddock-test-${process.pid}`);
  // In a file, not the environment: every test file's child processes inherit the
  // environment, and a host with a few hundred leftover cgroups made one variable long
  // enough (over 128 KiB) for every spawn to fail with E2BIG. The temp entries are read
  // first, so the file itself is not among them.
  const before: Preexisting = {
    inits: paddockInitPids(),
    cgroups: cgroupDirs(),
    // Anything tests make outside the state root (temp folders, bind mounts anywhere):
    // the teardown compares against these when no other run shares the machine.
    mounts: mountPoints(),
    temp: tempEntries(),
  };
  fs.writeFileSync(preexistingFile(process.env.PADDOCK_TEST_ROOT), JSON.stringify(before), { mode: 0o600 });
  // scripts/test.sh: the layout needs this run covers, for the cgroup v2 guest's run to
  // leave to it (decision 0033).
  if (process.env.PADDOCK_CI_LAYOUT_OUT) fs.writeFileSync(process.env.PADDOCK_CI_LAYOUT_OUT, metLayoutNeeds().join(','));
}
