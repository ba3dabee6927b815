/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A small client of etcd v3 (3.4 and later) for the controller cluster,
 * through etcd's JSON gateway (HTTP/1.1 POSTs of JSON, keys and values in
 * base64): reads, writes, transactions, leases, a watcher and a lease
 * keeper, each of the last two with its own thread.  etcd.c describes the
 * design and the gateway's behaviour it relies on.
 *
 * Errors are GErrors in MCSEC_ETCD_ERROR.  A message names the endpoint
 * and what failed; it never holds a value's bytes (values may be secret).
 */
#ifndef MCSEC_ETCD_H
#define MCSEC_ETCD_H

#include <glib.h>

G_BEGIN_DECLS

#define MCSEC_ETCD_ERROR (mcsec_etcd_error_quark ())
GQuark mcsec_etcd_error_quark (void);

typedef enum {
  /* no endpoint answered in time: down, unreachable, or the cluster has
   * lost its quorum (etcd then holds writes and linearizable reads until
   * the client gives up).  A write that ends so may still be applied. */
  MCSEC_ETCD_ERROR_UNREACHABLE,
  MCSEC_ETCD_ERROR_FAILED,     /* etcd answered no */
  MCSEC_ETCD_ERROR_PROTOCOL,   /* an answer this client does not understand */
  MCSEC_ETCD_ERROR_LEASE_GONE, /* the lease does not exist (expired) */
  MCSEC_ETCD_ERROR_INVALID,    /* a bad argument: endpoint list, empty key */
  MCSEC_ETCD_ERROR_COMPACTED,  /* a read at a revision since compacted */
} mcsec_etcd_error_t;

/* ---- a client: one per thread, not thread-safe ---- */

typedef struct _McsecEtcd mcsec_etcd_t;

/* endpoints: "http://127.0.0.1:23790,http://127.0.0.1:23792"; each request
 * is bounded by timeout_ms on each endpoint it tries.  NULL (error set) on
 * a bad endpoint list. */
/* TLS for https:// endpoints, for every handle made after: ca (PEM: the
 * CA of etcd's certificates; NULL: the system's), cert and key (PEM: this
 * client's, for etcd's --client-cert-auth; both or neither: FALSE and
 * *error otherwise).  The files are read by curl at each connection: the
 * caller checks them first, where it can name its settings (the
 * controller: ctl_config_check_file). */
gboolean mcsec_etcd_set_tls (const char *ca, const char *cert, const char *key,
                             GError **error);
mcsec_etcd_t *mcsec_etcd_new (const char *endpoints, guint timeout_ms,
                              GError **error);
void mcsec_etcd_free (mcsec_etcd_t *e);
/* the endpoint in use: the one that answered last */
const char *mcsec_etcd_endpoint (const mcsec_etcd_t *e);

typedef struct {
  gchar *key;
  GBytes *value; /* NULL with keys_only, and for a DELETE event */
  gint64 create_revision, mod_revision, version, lease;
} mcsec_etcd_kv_t;

void mcsec_etcd_kv_free (mcsec_etcd_kv_t *kv);

/* key alone, or every key starting with key (prefix = TRUE; "" is every
 * key), sorted by key; values left out with keys_only.  A linearizable
 * read.  revision (may be NULL): the store's revision of the answer.
 * Returns a GPtrArray of mcsec_etcd_kv_t (free function set), empty if
 * none; NULL on error. */
GPtrArray *mcsec_etcd_get (mcsec_etcd_t *e, const char *key, gboolean prefix,
                           gboolean keys_only, gint64 *revision,
                           GError **error);
/* The keys from first to last (both included; first left out with
 * after_first: the page after one that ended at first), sorted by key,
 * with their values: at most limit of them (0: no limit), read at
 * at_revision (0: a linearizable read now; a revision since compacted is
 * the error MCSEC_ETCD_ERROR_COMPACTED).  revision (may be NULL): the
 * store's revision when it answered (read at 0, the one to read the next
 * pages at); more (may be NULL): the range holds keys after the last one
 * returned.  Returns as mcsec_etcd_get. */
GPtrArray *mcsec_etcd_range (mcsec_etcd_t *e, const char *first,
                             gboolean after_first, const char *last,
                             gint64 limit, gint64 at_revision, gint64 *revision,
                             gboolean *more, GError **error);
/* value may be NULL (empty); lease 0: none; revision (may be NULL): the
 * revision of the write */
gboolean mcsec_etcd_put (mcsec_etcd_t *e, const char *key, GBytes *value,
                         gint64 lease, gint64 *revision, GError **error);
/* deleted, revision: may be NULL */
gboolean mcsec_etcd_delete (mcsec_etcd_t *e, const char *key, gboolean prefix,
                            gint64 *deleted, gint64 *revision, GError **error);

/* ---- transactions ---- */

typedef enum {
  MCSEC_ETCD_CMP_VALUE,
  MCSEC_ETCD_CMP_VERSION,
  MCSEC_ETCD_CMP_CREATE, /* create_revision: 0 when the key does not exist */
  MCSEC_ETCD_CMP_MOD,    /* mod_revision */
  MCSEC_ETCD_CMP_LEASE,
} mcsec_etcd_cmp_target_t;

typedef enum {
  MCSEC_ETCD_EQUAL,
  MCSEC_ETCD_GREATER,
  MCSEC_ETCD_LESS,
  MCSEC_ETCD_NOT_EQUAL,
} mcsec_etcd_cmp_result_t;

/* key's target compared with number (VERSION, CREATE, MOD, LEASE) or value
 * (VALUE; a VALUE comparison with a key that does not exist is false) */
typedef struct {
  const char *key;
  mcsec_etcd_cmp_target_t target;
  mcsec_etcd_cmp_result_t result;
  gint64 number;
  GBytes *value;
} mcsec_etcd_cmp_t;

typedef enum {
  MCSEC_ETCD_OP_PUT,
  MCSEC_ETCD_OP_DELETE,
  MCSEC_ETCD_OP_GET,
} mcsec_etcd_op_type_t;

/* PUT: key, value (NULL: empty), lease (0: none); DELETE and GET: key, or
 * every key starting with it (prefix) */
typedef struct {
  mcsec_etcd_op_type_t type;
  const char *key;
  GBytes *value;
  gint64 lease;
  gboolean prefix;
} mcsec_etcd_op_t;

/* All comparisons true: the success operations run, otherwise the failure
 * ones; atomically.  TRUE when etcd answered; *succeeded (may be NULL):
 * which branch ran; *revision (may be NULL): the store's revision after
 * it.  The GET operations' pairs are appended, in order, to *got when got
 * is not NULL (a new array when *got is NULL).  etcd refuses two
 * operations on one key in a branch.  A transaction that timed out on one
 * endpoint is tried on the next: if the first one was applied after all,
 * its compare-and-swap fails the second time, so after a failed one
 * re-read rather than assume someone else wrote. */
gboolean mcsec_etcd_txn (mcsec_etcd_t *e, const mcsec_etcd_cmp_t *cmp,
                         guint n_cmp, const mcsec_etcd_op_t *on_success,
                         guint n_success, const mcsec_etcd_op_t *on_failure,
                         guint n_failure, gboolean *succeeded, gint64 *revision,
                         GPtrArray **got, GError **error);

/* ---- leases ---- */

/* etcd raises a TTL below its minimum (1.5 election timeouts, rounded up
 * to a second); granted_ttl_s (may be NULL): the TTL granted.  A grant
 * that timed out on one endpoint and went to the next may have left an
 * unused lease behind; it expires. */
gboolean mcsec_etcd_lease_grant (mcsec_etcd_t *e, gint64 ttl_s, gint64 *id,
                                 gint64 *granted_ttl_s, GError **error);
/* one keepalive: *ttl_s the TTL from now on, <= 0 (and TRUE returned) when
 * the lease is gone */
gboolean mcsec_etcd_lease_keepalive (mcsec_etcd_t *e, gint64 id, gint64 *ttl_s,
                                     GError **error);
/* the lease and every key attached to it deleted; LEASE_GONE when it does
 * not exist (any more) */
gboolean mcsec_etcd_lease_revoke (mcsec_etcd_t *e, gint64 id, GError **error);

/* ---- a watcher with its own thread ---- */

typedef enum {
  MCSEC_ETCD_EVENT_PUT = 1,
  MCSEC_ETCD_EVENT_DELETE,
  /* events were lost (their revisions were compacted): re-read the prefix
   * (mcsec_etcd_get gives its revision R) and skip the events that follow
   * with a mod_revision <= R.  kv.key is the prefix, kv.mod_revision the
   * compacted revision C; the events from C on follow. */
  MCSEC_ETCD_EVENT_RESYNC,
} mcsec_etcd_event_type_t;

typedef struct {
  mcsec_etcd_event_type_t type;
  mcsec_etcd_kv_t kv; /* for DELETE: key and mod_revision only */
} mcsec_etcd_event_t;

typedef struct _McsecEtcdWatch mcsec_etcd_watch_t;

/* Watches every key starting with prefix from start_revision (0: from
 * when the watch starts, some time after this returns; to read, then
 * follow: mcsec_etcd_get's revision R, then a watch from R + 1) on.  Survives
 * an endpoint dying, going silent or losing its leader: it reconnects to the
 * next endpoint and resumes after the last revision it delivered, so no event
 * is lost or repeated.  Events are queued (no bound: read them); the fd becomes
 * readable when there are some.  NULL (error set) on a bad endpoint list only:
 * a cluster that is down is waited for. */
mcsec_etcd_watch_t *mcsec_etcd_watch_new (const char *endpoints,
                                          const char *prefix,
                                          gint64 start_revision,
                                          GError **error);
/* ... only the keys from prefix up to until (excluded; a key that starts
 * with prefix), so that values outside it do not stream to the watcher */
mcsec_etcd_watch_t *mcsec_etcd_watch_new_until (const char *endpoints,
                                                const char *prefix,
                                                const char *until,
                                                gint64 start_revision,
                                                GError **error);
/* an eventfd, readable while events are queued */
int mcsec_etcd_watch_fd (mcsec_etcd_watch_t *w);
/* pops the oldest event into *ev (cleared with mcsec_etcd_event_clear);
 * FALSE when there is none */
gboolean mcsec_etcd_watch_next (mcsec_etcd_watch_t *w, mcsec_etcd_event_t *ev);
void mcsec_etcd_event_clear (mcsec_etcd_event_t *ev);
/* the stream is up now (etcd confirmed the watch, the member has a leader
 * and answers) */
gboolean mcsec_etcd_watch_connected (mcsec_etcd_watch_t *w);
/* the endpoint of the stream that is up (a copy), NULL when none is */
gchar *mcsec_etcd_watch_endpoint (mcsec_etcd_watch_t *w);
/* stops the thread at once, drops the events still queued */
void mcsec_etcd_watch_free (mcsec_etcd_watch_t *w);

/* ---- a lease keeper with its own thread ---- */

typedef struct _McsecEtcdLease mcsec_etcd_lease_t;

/* Grants a lease of ttl_s (NULL, error set, when that fails) and keeps it
 * alive: a keepalive every ttl/3 s from its own thread and client. */
mcsec_etcd_lease_t *mcsec_etcd_lease_new (const char *endpoints, gint64 ttl_s,
                                          GError **error);
gint64 mcsec_etcd_lease_id (mcsec_etcd_lease_t *l);
/* The monotonic time (g_get_monotonic_time, us) until which the lease is
 * certainly alive: when the last successful keepalive (or the grant) was
 * sent, plus the TTL etcd gave; 0 once the lease is known to be gone.  Act
 * as the lease's holder only while g_get_monotonic_time () < this. */
gint64 mcsec_etcd_lease_valid_until (mcsec_etcd_lease_t *l);
/* etcd said the lease is gone (it expired or was revoked): final, make a
 * new one */
gboolean mcsec_etcd_lease_lost (mcsec_etcd_lease_t *l);
/* an eventfd, readable once the lease is lost */
int mcsec_etcd_lease_fd (mcsec_etcd_lease_t *l);
/* stops the thread (after the keepalive it may be sending) and revokes the
 * lease if etcd answers in time: each of the two takes at most ttl/3 s
 * (between 0.25 and 2 s) per endpoint */
void mcsec_etcd_lease_free (mcsec_etcd_lease_t *l);

G_END_DECLS

#endif /* MCSEC_ETCD_H */
