/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's durable state in etcd (docs/cluster.md "State in
 * etcd"): mcsec_ctl_store_t over etcd's transactions.  Optimistic
 * concurrency: a put of a key this store read compares the key's revision
 * with the one it read, so two controllers can never both reserve the
 * same block of a counter (the loser gets MCSEC_CTL_STORE_ERROR_CONFLICT,
 * reads again and takes the next block).  Fencing: a put of a group's
 * state ("spis/G", "counter/rekey/G") also compares the group's leader key
 * with the one this controller created when it won the group, so a
 * controller that lost its leadership writes nothing for the group.
 * Secrets: values under "sealed/" are sealed under the cluster key on
 * their way to etcd and opened on their way back (seal.h); without a
 * cluster key such a put fails.
 */
#ifndef MCSEC_CTL_STORE_ETCD_H
#define MCSEC_CTL_STORE_ETCD_H

#include "core/ctl-core.h"
#include "etcd.h"
#include "seal.h"

/* etcd: used from the calling thread only (taken, freed with the store);
 * prefix: every key is under it ("/mcsec/"). */
mcsec_ctl_store_t *ctl_etcd_store_new (mcsec_etcd_t *etcd, const char *prefix);
/* The etcd key of a group's leader ("PREFIX" "leader/" escaped name). */
gchar *ctl_etcd_leader_key (const char *prefix, const char *group);
/* This controller leads group under the leader key it created at
 * create_revision (0: it does not lead it; its writes are refused). */
void ctl_etcd_store_set_fence (mcsec_ctl_store_t *store, const char *group,
                               gint64 create_revision);
mcsec_etcd_t *ctl_etcd_store_client (mcsec_ctl_store_t *store);
/* The cluster key (copied; wiped with the store): values under "sealed/"
 * are sealed with it.  seals: whether the store has one. */
void ctl_etcd_store_set_seal_key (mcsec_ctl_store_t *store,
                                  const guint8 key[CTL_SEAL_KEY_LEN]);
gboolean ctl_etcd_store_seals (mcsec_ctl_store_t *store);
/* Transactions sent (the benchmark counts etcd writes). */
guint64 ctl_etcd_store_writes (mcsec_ctl_store_t *store);

#endif
