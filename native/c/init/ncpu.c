/*
 * nng sizes its thread pools from the number of online CPUs: two task-queue threads
 * and one timer thread per CPU, on top of its fixed poller, reaper and resolver
 * threads. paddock-init serves one supervisor over one control and one event
 * connection, so one CPU's worth is plenty; every further thread is one more host
 * task (pid_max bounds how many sandboxes a host holds) and one more kernel stack per
 * sandbox. nng 1.5 has no run-time setting for this, and the only place it asks is
 * sysconf(_SC_NPROCESSORS_ONLN). The init link wraps sysconf (-Wl,--wrap=sysconf,
 * native/Makefile) so that the CPU count reads 1 inside paddock-init; every other
 * query is libc's. Nothing of paddock's own asks for the CPU count.
 */
#include <unistd.h>

long __real_sysconf(int name);
long __wrap_sysconf(int name);

long __wrap_sysconf(int name)
{
  if (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF)
    return 1;
  return __real_sysconf(name);
}
