/* paddock-init only speaks ipc://, yet libnng's resolver (for tcp://) references
 * getaddrinfo. glibc's static getaddrinfo drags in NSS, which needs the host's
 * shared libraries at run time and makes the link warn. This definition takes its
 * place: name resolution simply fails, which nothing here ever asks for. */
#include <netdb.h>
#include <stddef.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
  *res = NULL;
  return EAI_FAIL;
}

void freeaddrinfo(struct addrinfo *res)
{
}
