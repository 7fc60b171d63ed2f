/* The client's half of a launch (docs/decisions/0044): paddockd plans paddock-init,
 * the client starts it with libpaddock's launcher, so it is the client's child. */
#ifndef PD_LAUNCH_REQUEST_H
#define PD_LAUNCH_REQUEST_H

#include <stdint.h>

/* Serves one "L" frame from paddockd on `sock` and answers "R". */
void launch_from_request(int sock, const char *payload, uint32_t len);

#endif
