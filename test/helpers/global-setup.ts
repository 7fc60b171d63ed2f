import * as os from 'node:os';
import * as path from 'node:path';
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
}
