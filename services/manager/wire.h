/*
 * wire: protobuf messages <-> registry structs, with the checks that make
 * wire input safe to keep (names, lengths, digest sizes).
 *
 * *_from_pb validate and copy: -EINVAL with a one-line message in err.
 * *_to_pb build messages in a call's arena: NULL when out of memory.
 */
#ifndef CKPT_MGR_WIRE_H
#define CKPT_MGR_WIRE_H

#include <stddef.h>

#include "arena.h"
#include "ckpt/v1/common.pb-c.h"
#include "registry.h"

#define WIRE_ERR_MAX 192

/* 0 when s is at most max bytes of printable ASCII (empty allowed). */
int wire_text_check(const char *s, size_t max);

/* NULL pb gives zeros (capacity unknown). */
void wire_cap_from_pb(const Ckpt__V1__Capacity *pb, struct reg_capacity *ret_cap);
int wire_label_from_pb(const Ckpt__V1__Label *pb, struct reg_label *ret_label, char *err,
    size_t errlen);
/* Labels a component requires (ComponentStatus.requires, RestoreRequest.requires). */
int wire_requires_from_pb(Ckpt__V1__Label *const *pb, size_t n, struct reg_req *ret_reqs,
    size_t *ret_n, char *err, size_t errlen);
int wire_comp_from_pb(const Ckpt__V1__ComponentStatus *pb, struct reg_comp *ret_comp, char *err,
    size_t errlen);
int wire_ckpt_from_pb(const Ckpt__V1__CheckpointInfo *pb, struct reg_ckpt *ret_ckpt, char *err,
    size_t errlen);

Ckpt__V1__Capacity *wire_cap_to_pb(struct arena *a, const struct reg_capacity *c);
Ckpt__V1__Label *wire_label_to_pb(struct arena *a, const struct reg_label *l);
Ckpt__V1__CheckpointRef *wire_ref_to_pb(struct arena *a, const struct reg_ref *r);
Ckpt__V1__ComponentStatus *wire_comp_to_pb(struct arena *a, const struct reg_comp *c);
Ckpt__V1__CheckpointInfo *wire_ckpt_to_pb(struct arena *a, const struct reg_ckpt *c);

#endif
