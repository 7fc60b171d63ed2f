/* Internal to the protocols/ C code and its tests: per-tag value kinds and names.
 * Not part of the paddock-init API (that is paddock_proto.h). */
#ifndef PD_SCHEMA_H
#define PD_SCHEMA_H

#include <stdint.h>

/* PD_K_BYTES: raw bytes, NUL allowed; length rules per tag (decode.c). */
enum pd_kind_of_value { PD_K_NONE = 0, PD_K_U32, PD_K_I32, PD_K_U64, PD_K_STR, PD_K_NEST, PD_K_BYTES };

/* PD_K_NONE for tags that do not exist in version 1. */
int pd_tag_kind(uint16_t tag);
/* Lowercase tag name ("mount_dest"), or "?" for unknown tags. */
const char *pd_tag_name(uint16_t tag);
/* Lowercase message type name ("start_container"), or NULL for unknown types. */
const char *pd_type_name(uint16_t type);

#endif
