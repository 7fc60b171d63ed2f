/* Minimal writer for the messages paddock-init produces. Errors are sticky: any
 * misuse or overflow marks the writer and pd_w_finish reports -1, so call sites can
 * write a whole message and check once. */
#include <string.h>

#include "paddock_proto.h"

static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint8_t *reserve(struct pd_writer *w, size_t n) {
  uint8_t *p;
  if (w->overflow || !w->buf || n > w->cap - w->len) {
    w->overflow = 1;
    return NULL;
  }
  p = w->buf + w->len;
  w->len += n;
  return p;
}

static void field(struct pd_writer *w, uint16_t tag, const void *v, uint32_t len) {
  uint8_t *p = reserve(w, 6 + (size_t)len);
  if (!p) return;
  wr16(p, tag);
  wr32(p + 2, len);
  if (len) memcpy(p + 6, v, len);
}

void pd_w_begin(struct pd_writer *w, uint8_t *buf, size_t cap, uint16_t type) {
  uint8_t *p;
  w->buf = buf;
  w->cap = buf ? cap : 0;
  w->len = 0;
  w->depth = 0;
  w->overflow = 0;
  p = reserve(w, PD_HEADER_SIZE);
  if (!p) return;
  p[0] = PD_MAGIC0;
  p[1] = PD_MAGIC1;
  p[2] = PD_VERSION;
  p[3] = 0;
  wr16(p + 4, type);
  wr16(p + 6, 0);
  wr32(p + 8, 0);
}

void pd_w_u32(struct pd_writer *w, uint16_t tag, uint32_t v) {
  uint8_t b[4];
  wr32(b, v);
  field(w, tag, b, 4);
}

void pd_w_i32(struct pd_writer *w, uint16_t tag, int32_t v) { pd_w_u32(w, tag, (uint32_t)v); }

void pd_w_u64(struct pd_writer *w, uint16_t tag, uint64_t v) {
  uint8_t b[8];
  wr32(b, (uint32_t)v);
  wr32(b + 4, (uint32_t)(v >> 32));
  field(w, tag, b, 8);
}

void pd_w_str(struct pd_writer *w, uint16_t tag, const char *s) {
  size_t n;
  if (!s) return;
  n = strlen(s);
  /* A string the decoder would reject must not be sent: fail the whole message. */
  if (n > (tag == PD_T_TEXT ? PD_MAX_TEXT : PD_MAX_STR)) {
    w->overflow = 1;
    return;
  }
  field(w, tag, s, (uint32_t)n);
}

void pd_w_nest_begin(struct pd_writer *w, uint16_t tag) {
  size_t at = w->len;
  if (w->depth >= (int)(sizeof w->nest / sizeof w->nest[0])) {
    w->overflow = 1;
    return;
  }
  field(w, tag, NULL, 0);
  if (w->overflow) return;
  w->nest[w->depth++] = at;
}

void pd_w_nest_end(struct pd_writer *w) {
  size_t at;
  if (w->depth <= 0) {
    w->overflow = 1;
    return;
  }
  at = w->nest[--w->depth];
  if (!w->overflow) wr32(w->buf + at + 2, (uint32_t)(w->len - at - 6));
}

long pd_w_finish(struct pd_writer *w) {
  size_t body;
  if (w->overflow || w->depth != 0 || w->len < PD_HEADER_SIZE) return -1;
  body = w->len - PD_HEADER_SIZE;
  if (body > PD_MAX_BODY) return -1;
  wr32(w->buf + 8, (uint32_t)body);
  return (long)w->len;
}
