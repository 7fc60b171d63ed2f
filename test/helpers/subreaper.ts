import { DataType, load, open } from 'ffi-rs';

/**
 * Supervisor-death tests orphan paddock-init. This machine's PID 1 does not reap
 * orphans, so the test process makes itself a child subreaper (as containerd shims
 * do): orphans of its children are reparented to it, a reattaching engine in this
 * process can reap them through their pidfds, and the teardown reaps the rest.
 */
let opened = false;
function libc(): void {
  if (!opened) {
    open({ library: 'libc', path: '' });
    opened = true;
  }
}

export function becomeSubreaper(on = true): void {
  libc();
  const PR_SET_CHILD_SUBREAPER = 36;
  const rc = load({
    library: 'libc',
    funcName: 'prctl',
    retType: DataType.I32,
    paramsType: [DataType.I32, DataType.I64, DataType.I64, DataType.I64, DataType.I64],
    paramsValue: [PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0],
  }) as number;
  if (rc !== 0) throw new Error('prctl(PR_SET_CHILD_SUBREAPER) failed');
}

/** Reaps every exited child that nobody else waits for; returns how many. */
export function reapZombies(): number {
  libc();
  const WNOHANG = 1;
  let n = 0;
  for (;;) {
    const pid = load({
      library: 'libc',
      funcName: 'waitpid',
      retType: DataType.I32,
      paramsType: [DataType.I32, DataType.I64, DataType.I32],
      paramsValue: [-1, 0, WNOHANG],
    }) as number;
    if (pid <= 0) return n;
    n++;
  }
}

/**
 * For a describe block whose paddock-init processes outlive their creator (CLI calls,
 * killed supervisors): this process is their subreaper for the block, and stops being
 * one after it, because other test files expect orphans not to become ours.
 */
export function useSubreaper(): void {
  beforeAll(() => becomeSubreaper());
  afterAll(() => {
    becomeSubreaper(false);
    reapZombies();
  });
}
