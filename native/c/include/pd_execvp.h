/* execvp's search without allocation and without libc, shared by paddock-init's child
 * and paddock-hold: argv[0] with a '/' is executed as is, else each PATH entry in
 * turn (an empty entry is the current directory); EACCES from one entry wins over a
 * later ENOENT, and an error other than "not here" ends the search, as in glibc. */
#ifndef PD_EXECVP_H
#define PD_EXECVP_H

#include <stddef.h>

/* exec returns only on failure, with -errno. */
typedef long (*pd_exec_fn)(const char *file, char *const argv[], char *const envp[]);

/* Returns the errno to report (positive); *failed names what it was about: the
 * candidate that failed, or name when nothing was found. buf holds candidates. */
static inline int pd_execvp(const char *name, const char *path, char *const argv[],
                            char *const envp[], char *buf, size_t cap, pd_exec_fn exec,
                            const char **failed) {
  size_t nlen = 0;
  int saw_eacces = 0;

  *failed = name;
  while (name[nlen])
    nlen++;
  if (nlen == 0)
    return 2; /* ENOENT */
  for (size_t i = 0; i < nlen; i++)
    if (name[i] == '/')
      return (int)-exec(name, argv, envp);
  for (const char *dir = path;;) {
    const char *end = dir;
    size_t dlen;

    while (*end && *end != ':')
      end++;
    dlen = (size_t)(end - dir);
    if (dlen + 1 + nlen + 1 <= cap) {
      size_t n = 0;
      long r;

      for (; n < dlen; n++)
        buf[n] = dir[n];
      if (dlen > 0)
        buf[n++] = '/';
      for (size_t i = 0; i <= nlen; i++)
        buf[n + i] = name[i];
      r = exec(buf, argv, envp);
      if (r == -13) /* EACCES */
        saw_eacces = 1;
      else if (r != -2 && r != -20 && r != -116 && r != -19 && r != -110) {
        /* not ENOENT, ENOTDIR, ESTALE, ENODEV or ETIMEDOUT: a real failure */
        *failed = buf;
        return (int)-r;
      }
    }
    if (*end == '\0')
      break;
    dir = end + 1;
  }
  return saw_eacces ? 13 : 2;
}

#endif
