/*
 * key: names and the NAS's checkpoint keys.
 *
 * Key layout: node \0 component \0 seq (uint64 big-endian), so an LMDB cursor
 * walks a node's components and their sequences in order and a component's
 * latest checkpoint is the last key with its prefix.
 *
 * Names (node ids, component names) are 1..KEY_NAME_MAX bytes of
 * [A-Za-z0-9._-]: safe in keys, topics, file names and URLs.
 */
#ifndef CKPT_KEY_H
#define CKPT_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "limit.h"

#define KEY_NAME_MAX LIMIT_NAME_MAX
#define KEY_MAX (2 * (KEY_NAME_MAX + 1) + 8)

/* 0 if s is a valid name, -EINVAL otherwise. */
int key_name_check(const char *s);
/* Writes the key into buf (KEY_MAX bytes). Names must pass key_name_check. */
int key_encode(const char *node, const char *component, uint64_t seq, uint8_t *buf,
    size_t *ret_len);
/* Prefix node \0 (component == NULL) or node \0 component \0. */
int key_prefix(const char *node, const char *component, uint8_t *buf, size_t *ret_len);
/* Splits a key. node and component must hold KEY_NAME_MAX + 1 bytes. */
int key_decode(const uint8_t *key, size_t len, char *ret_node, char *ret_component,
    uint64_t *ret_seq);

/* "NODE/COMPONENT[@SEQ]" -> parts; seq 0 when absent. */
int key_parse_ref(const char *ref, char *ret_node, char *ret_component, uint64_t *ret_seq);

#endif
