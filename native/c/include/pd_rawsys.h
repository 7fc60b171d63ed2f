/* Raw system calls, for code that may not use glibc's wrappers: the launcher's
 * CLONE_VM child (it shares the supervisor's memory and TLS) and paddock-hold (no
 * libc at all). No errno, no locks, no memory touched but what the call is given.
 * Header-only, without libc headers, so a -nostdlib program can include it. */
#ifndef PD_RAWSYS_H
#define PD_RAWSYS_H

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "pd_rawsys.h: raw system calls exist for x86_64 and aarch64 only"
#endif

/* Returns the raw kernel result: >= 0, or -errno. */
static inline __attribute__((always_inline)) long pd_rsys(long n, long a, long b, long c, long d,
                                                          long e) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
#else
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
#endif
}
#define RSYS0(n) pd_rsys((n), 0, 0, 0, 0, 0)
#define RSYS1(n, a) pd_rsys((n), (long)(a), 0, 0, 0, 0)
#define RSYS2(n, a, b) pd_rsys((n), (long)(a), (long)(b), 0, 0, 0)
#define RSYS3(n, a, b, c) pd_rsys((n), (long)(a), (long)(b), (long)(c), 0, 0)
#define RSYS4(n, a, b, c, d) pd_rsys((n), (long)(a), (long)(b), (long)(c), (long)(d), 0)
#define RSYS5(n, a, b, c, d, e) pd_rsys((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

#endif
