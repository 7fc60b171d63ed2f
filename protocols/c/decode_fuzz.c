/* libFuzzer target: `make -C native fuzz`, then
 *   build/proto-fuzz -max_len=65536 ../protocols/vectors   (the .bin files seed it)
 * Any accepted input must also satisfy the plan invariants paddock-init relies on. */
#include <stdlib.h>
#include <string.h>

#include "paddock_proto.h"

static unsigned char arena_mem[4 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct pd_arena a = {arena_mem, sizeof arena_mem, 0};
  struct pd_msg m;
  char err[128];
  long n = pd_message_length(data, size);

  if (pd_decode(data, size, &a, &m, err, sizeof err) != 0) return 0;
  if (n != (long)size) abort();
  if (m.plan) {
    const struct pd_plan *p = m.plan;
    if (p->argc < 1 || p->argv[p->argc] || p->envp[p->envc]) abort();
    for (uint32_t i = 0; i < p->n_mounts; i++)
      if (!p->mounts[i].dest || !p->mounts[i].type || strlen(p->mounts[i].dest) > PD_MAX_STR) abort();
  }
  return 0;
}
