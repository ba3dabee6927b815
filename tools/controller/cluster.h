/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One controller of a cluster (docs/cluster.md): its state in etcd
 * (store-etcd.c), a lease kept alive by a thread, one leader per group
 * elected with a key under that lease, a watch on the leader keys and the
 * evictions.  The daemon calls ctl_cluster_turn() at every turn of its
 * loop before anything else reaches the core, and when one of the fds is
 * readable; the turn tells the core the lease's deadline (fencing), which
 * groups it leads, and the evictions other controllers recorded.
 */
#ifndef MCSEC_CTL_CLUSTER_H
#define MCSEC_CTL_CLUSTER_H

#include <openssl/evp.h>

#include "config.h"
#include "core/ctl-core.h"

typedef struct _CtlCluster CtlCluster;

/* Reaches etcd (an error when none of its endpoints answers) and grants
 * the lease.  log: the daemon's log line writer. */
CtlCluster *ctl_cluster_new (const CtlConfig *cfg,
                             void (*log) (const char *event, const char *fmt,
                                          ...) G_GNUC_PRINTF (2, 3),
                             GError **error);
/* The [cluster] files, as a start would read them, without reaching etcd
 * (--check): etcd-ca, etcd-certificate and etcd-private-key readable, the
 * cluster key 64 hex digits that only its owner can read. */
gboolean ctl_cluster_check_files (const CtlConfig *cfg, GError **error);
/* The update-signing key every controller of the cluster signs with
 * (members check updates with one key, whichever controller sends them).
 * With [cluster] cluster-key, etcd holds it sealed (AES-256-GCM under the
 * cluster key): the first controller seals its signing-key there, the
 * others open it (their own signing-key, if any, must be the same), so a
 * controller needs no copy of the file.  Without cluster-key, *key (the
 * configured one) is used as it is.  *key may be NULL on entry (no
 * signing-key configured) and is replaced by the cluster's. */
gboolean ctl_cluster_signing_key (CtlCluster *cl, EVP_PKEY **key,
                                  GError **error);
/* The relay links' key (relay.h), derived from the cluster key: FALSE
 * without one (after ctl_cluster_signing_key, which reads it). */
gboolean ctl_cluster_relay_key (CtlCluster *cl, guint8 key[32]);
/* A cluster key file's text (64 hexadecimal digits, white space around
 * them; stripped in place) into key; FALSE, key wiped, when it is not
 * one.  The caller wipes text. */
gboolean ctl_cluster_key_parse (gchar *text, guint8 key[32]);
/* The state store (owned by the cluster; valid until ctl_cluster_free). */
mcsec_ctl_store_t *ctl_cluster_store (CtlCluster *cl);
/* Starts the watch and the first campaigns. */
gboolean ctl_cluster_attach (CtlCluster *cl, mcsec_ctl_t *core, gint64 now_ms,
                             GError **error);
/* The fds to poll (readable: call ctl_cluster_turn); -1 when absent. */
int ctl_cluster_watch_fd (CtlCluster *cl);
int ctl_cluster_lease_fd (CtlCluster *cl);
/* The next time a turn is due. */
gint64 ctl_cluster_turn (CtlCluster *cl, gint64 now_ms);
/* The lease's deadline to the core again (before its tick: the lease
 * thread may have renewed it since the turn). */
void ctl_cluster_sync_deadline (CtlCluster *cl);
/* FALSE when this controller leads a group and its lease's deadline has
 * passed at now: the daemon writes nothing to members or the rekey
 * channel then, and runs a turn first (the groups step down).  The core
 * judged with the time of its call, which an etcd call may have made
 * stale. */
gboolean ctl_cluster_may_write (CtlCluster *cl, gint64 now);
/* A JSON object for the admin's stats ("cluster": ...). */
gchar *ctl_cluster_stats_json (CtlCluster *cl, gint64 now_ms);
/* Revokes the lease: the other controllers take the groups at once. */
void ctl_cluster_free (CtlCluster *cl);

#endif
