/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-lkh.h: the logical key hierarchy (RFC 2627; Wong, Gouda and Lam,
 * "Secure Group Communications Using Key Graphs"), with batch rekeying
 * (Li, Yang, Gouda and Lam).  docs/mike-protocol.md, "Key tree", is the
 * specification.
 *
 * The controller keeps a tree of degree d whose leaves are the members;
 * every node has a key and a member holds the keys of the nodes on its path
 * to the root, whose key is the group key.  Joins and leaves are queued and
 * committed together: every node on an affected path gets a new key, sent
 * wrapped (AES-128 key wrap, RFC 3394) under the key of each of its
 * children, bottom-up, so one message serves every remaining member and
 * none that left.
 */
#ifndef MCSEC_LKH_H
#define MCSEC_LKH_H

#include <mcsec/mcsec.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCSEC_LKH_KEY_LEN 16     /* node keys: AES-128 key-encryption keys */
#define MCSEC_LKH_WRAPPED_LEN 24 /* RFC 3394 wrap of one node key */
#define MCSEC_LKH_DEGREE_DEFAULT 4
#define MCSEC_LKH_DEGREE_MAX 16
#define MCSEC_LKH_NO_NODE UINT32_MAX
#define MCSEC_LKH_ROOT 0 /* the root's node number never changes */

/* One wrapped key of a rekey: the new key of `node` under the current key
 * of `wrapper`, one of its children. */
typedef struct {
  uint32_t node, wrapper;
  uint8_t wrapped[MCSEC_LKH_WRAPPED_LEN];
} mcsec_lkh_entry_t;

typedef struct {
  uint32_t node;
  uint8_t key[MCSEC_LKH_KEY_LEN];
} mcsec_lkh_key_t;

/* ---- controller side ---- */

typedef struct mcsec_lkh mcsec_lkh_t;

/* degree 0: MCSEC_LKH_DEGREE_DEFAULT; 2..MCSEC_LKH_DEGREE_MAX. */
MCSEC_API mcsec_status_t mcsec_lkh_new (unsigned degree,
                                        mcsec_lkh_t **out) MCSEC_WARN_UNUSED;
/* Wipes every key; NULL is fine. */
MCSEC_API void mcsec_lkh_free (mcsec_lkh_t *t);

/* Place a new member (a leaf with a fresh key); *member is its number,
 * stable while it stays.  Its path keys are final only after the next
 * commit (then mcsec_lkh_path). */
MCSEC_API mcsec_status_t mcsec_lkh_join (mcsec_lkh_t *t,
                                         uint32_t *member) MCSEC_WARN_UNUSED;
/* Remove a member; MCSEC_ERR_INVALID_ARG if it is not one. */
MCSEC_API mcsec_status_t mcsec_lkh_leave (mcsec_lkh_t *t,
                                          uint32_t member) MCSEC_WARN_UNUSED;
/* Queue a new group key without a membership change (key lifetime, an
 * administrator's rekey): the next commit gives the root a new key,
 * wrapped under each of its children's. */
MCSEC_API mcsec_status_t mcsec_lkh_refresh (mcsec_lkh_t *t) MCSEC_WARN_UNUSED;
/* Changes queued since the last commit. */
MCSEC_API size_t mcsec_lkh_pending (const mcsec_lkh_t *t);
/* Commit the queued joins and leaves as one rekey: every node on an
 * affected path gets a new key; *entries (owned by the tree, valid until
 * the next call) are the wrapped keys, children before parents, none under
 * the key of a member that joined in this batch (it gets its path over its
 * unicast connection).  *n is 0 when nothing was pending.  All or
 * nothing: when it fails the tree and its queued changes are as they were
 * before the call. */
MCSEC_API mcsec_status_t mcsec_lkh_commit (mcsec_lkh_t *t,
                                           const mcsec_lkh_entry_t **entries,
                                           size_t *n) MCSEC_WARN_UNUSED;
/* The keys of a member's path, leaf first, root last; the count (0 if not
 * a member).  out needs room for max entries (the depth + 1 suffices). */
MCSEC_API size_t mcsec_lkh_path (const mcsec_lkh_t *t, uint32_t member,
                                 mcsec_lkh_key_t *out, size_t max);
/* The group key (the root's). */
MCSEC_API const uint8_t *mcsec_lkh_group_key (const mcsec_lkh_t *t);
MCSEC_API size_t mcsec_lkh_members (const mcsec_lkh_t *t);
/* The longest path from a member to the root (edges). */
MCSEC_API unsigned mcsec_lkh_depth (const mcsec_lkh_t *t);
/* Bytes the tree holds. */
MCSEC_API size_t mcsec_lkh_memory (const mcsec_lkh_t *t);

/* The committed tree as bytes (docs/cluster.md, "Key trees in etcd"), for
 * a controller that takes the group over: its keys, its node numbers and
 * every member's place, so members keep their paths and the next commit
 * wraps under keys they hold.  Secret: every node key is in it.
 *
 * mcsec_lkh_export_len: the bytes export needs; 0 when changes are queued
 * (only a committed tree is exported).  mcsec_lkh_export writes them to out
 * (at least that long); MCSEC_ERR_INVALID_ARG with changes queued,
 * MCSEC_ERR_BUFFER_TOO_SMALL. */
MCSEC_API size_t mcsec_lkh_export_len (const mcsec_lkh_t *t);
MCSEC_API mcsec_status_t mcsec_lkh_export (const mcsec_lkh_t *t, uint8_t *out,
                                           size_t len) MCSEC_WARN_UNUSED;
/* A tree from an export, with every length, number and link checked:
 * MCSEC_ERR_MALFORMED for anything a tree cannot be (a cycle, a node under
 * a leaf or a missing one, more children than the degree, an inner node
 * without children, a path deeper than 63), and a node number of 16 per
 * node plus 65,536 or more (the tree is held in an array as long as its
 * highest number: a tree that shrank far below its peak is refused). */
MCSEC_API mcsec_status_t mcsec_lkh_import (const uint8_t *data, size_t len,
                                           mcsec_lkh_t **out) MCSEC_WARN_UNUSED;
/* What changed since the changes were last taken (or the tree was made
 * or imported): the nodes made, freed, moved or given a new key, as
 * records of an export (a freed node's leaf byte is 2).  A controller
 * writes them after each commit; a snapshot (mcsec_lkh_export) and the
 * changes taken after it, applied in order, make the tree
 * (mcsec_lkh_import_log).  Secret, as an export.  Taking them clears
 * them; mcsec_lkh_changes_clear clears them without taking them (after a
 * snapshot).  Lengths and errors as for the export. */
MCSEC_API size_t mcsec_lkh_changes_len (const mcsec_lkh_t *t);
MCSEC_API mcsec_status_t mcsec_lkh_export_changes (
    mcsec_lkh_t *t, uint8_t *out, size_t len) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_lkh_changes_clear (mcsec_lkh_t *t);
/* The tree of a snapshot and the changes taken after it, in order; checked
 * as mcsec_lkh_import checks (the changes must have the snapshot's
 * degree). */
MCSEC_API mcsec_status_t mcsec_lkh_import_log (
    const uint8_t *snapshot, size_t len, const uint8_t *const *changes,
    const size_t *lens, size_t n_changes, mcsec_lkh_t **out) MCSEC_WARN_UNUSED;
/* Is member a member's leaf (a number mcsec_lkh_join gave, still there)? */
MCSEC_API int mcsec_lkh_is_member (const mcsec_lkh_t *t, uint32_t member);

/* ---- member side ---- */

#define MCSEC_LKH_KEYRING_MAX 48

typedef struct {
  size_t n;
  struct {
    uint32_t node, parent;
    uint8_t key[MCSEC_LKH_KEY_LEN];
  } keys[MCSEC_LKH_KEYRING_MAX];
} mcsec_lkh_keyring_t;

/* Take a path (leaf first) as delivered at join or resynchronisation. */
MCSEC_API void mcsec_lkh_keyring_set (mcsec_lkh_keyring_t *kr,
                                      const mcsec_lkh_key_t *path, size_t n);
/* Unwrap what this member can of a rekey (entries children first) and keep
 * its path; the number of keys learnt.  MCSEC_ERR_AUTH in *status when an
 * entry under one of its keys does not unwrap (damaged or forged). */
MCSEC_API size_t mcsec_lkh_keyring_apply (mcsec_lkh_keyring_t *kr,
                                          const mcsec_lkh_entry_t *entries,
                                          size_t n, mcsec_status_t *status);
/* The group key this member holds (its path's top), or NULL. */
MCSEC_API const uint8_t *
mcsec_lkh_keyring_group_key (const mcsec_lkh_keyring_t *kr);
/* Wipe it. */
MCSEC_API void mcsec_lkh_keyring_clear (mcsec_lkh_keyring_t *kr);

/* The key material (key || salt, `len` bytes) of an SA of a key tree
 * group: HKDF-SHA256 (RFC 5869) of the group key, no salt, info "mcsec sa
 * v1" || 0 || group name || 0 || SPI (4, big-endian) || suite (1).  Each
 * commit gives the group a fresh random key and each SA a fresh SPI, so no
 * two SAs share key material. */
MCSEC_API mcsec_status_t mcsec_lkh_derive_sa_key (
    const uint8_t *group_key, const char *group, uint32_t spi,
    mcsec_suite_t suite, uint8_t *out, size_t len) MCSEC_WARN_UNUSED;

/* RFC 3394 AES-128 key wrap of one node key (exposed for tests). */
MCSEC_API mcsec_status_t mcsec_lkh_wrap (const uint8_t *kek, const uint8_t *key,
                                         uint8_t *out) MCSEC_WARN_UNUSED;
MCSEC_API mcsec_status_t mcsec_lkh_unwrap (const uint8_t *kek,
                                           const uint8_t *wrapped,
                                           uint8_t *out) MCSEC_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif /* MCSEC_LKH_H */
