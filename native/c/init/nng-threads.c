/*
 * How many threads nng starts inside paddock-init. Each is a host task (pid_max bounds
 * how many sandboxes a host holds) and a kernel stack, per sandbox; Debian's nng 1.5 has
 * no run-time setting for either pool below, so the init link wraps two calls
 * (-Wl,--wrap=..., native/Makefile). docs/decisions/0023.
 *
 * - nng sizes its task-queue (2 per CPU) and timer (1 per CPU) pools from
 *   sysconf(_SC_NPROCESSORS_ONLN). paddock-init serves one supervisor over one control
 *   and one event connection, so one CPU's worth is plenty: the CPU count reads 1 here;
 *   every other sysconf query is libc's. Nothing of paddock's own asks for it.
 * - nng starts 4 threads at init for TCP/UDP name lookups (its resolver). paddock-init
 *   only listens on ipc:// paths and never resolves a name, so the resolver's set-up
 *   and tear-down are skipped. A lookup would wait forever; none is ever asked for.
 *
 * The engine's tests check the thread names and counts of a running paddock-init, so
 * an nng whose internals differ fails them instead of silently starting the threads.
 */
#include <unistd.h>

long __real_sysconf(int name);
long __wrap_sysconf(int name);
int __wrap_nni_posix_resolv_sysinit(void);
void __wrap_nni_posix_resolv_sysfini(void);

long __wrap_sysconf(int name)
{
  if (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF)
    return 1;
  return __real_sysconf(name);
}

int __wrap_nni_posix_resolv_sysinit(void)
{
  return 0;
}

void __wrap_nni_posix_resolv_sysfini(void)
{
}
