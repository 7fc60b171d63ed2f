import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { metLayoutNeeds } from './env';
import { cgroupDirs, mountPoints, paddockInitPids, tempEntries } from './leaks';

/**
 * Names this run's state root (inherited by every test file and worker) and records
 * the paddock-init processes and test cgroups that predate the run, so the teardown blames only this run.
 */
export default async function globalSetup(): Promise<void> {
  process.env.PADDOCK_TEST_ROOT = path.join(os.tmpdir(), `paddock-test-${process.pid}`);
  process.env.PADDOCK_PREEXISTING_INITS = paddockInitPids().join(',');
  process.env.PADDOCK_PREEXISTING_CGROUPS = cgroupDirs().join('\n');
  // Anything tests make outside the state root (temp folders, bind mounts anywhere):
  // the teardown compares against these when no other run shares the machine.
  process.env.PADDOCK_PREEXISTING_MOUNTS = mountPoints().join('\n');
  process.env.PADDOCK_PREEXISTING_TEMP = tempEntries().join('\n');
  // scripts/test.sh: the layout needs this run covers, for the cgroup v2 guest's run to
  // leave to it (decision 0033).
  if (process.env.PADDOCK_CI_LAYOUT_OUT) fs.writeFileSync(process.env.PADDOCK_CI_LAYOUT_OUT, metLayoutNeeds().join(','));
}
