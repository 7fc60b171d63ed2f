import { paddockInitPids } from './leaks';

/** Records paddock-init processes that predate the run, so the teardown blames only this run. */
export default async function globalSetup(): Promise<void> {
  process.env.PADDOCK_PREEXISTING_INITS = paddockInitPids().join(',');
}
