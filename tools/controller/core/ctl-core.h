/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's core: every decision of MIKE's group controller (join,
 * refuse, rekey, key tree commits, repairs, evictions, the administrator's
 * verbs) without I/O.  Shaped like the member state machine
 * (mcsec_member_t): the daemon hands it bytes a member sent, the end of a
 * connection and the current time; it gives back bytes per connection and
 * actions (write to a connection, close one, send on a group's rekey
 * channel, log an event).  No sockets, clock, files, threads or main loop:
 * GLib's data structures only (tests/layers.sh checks the object's imports).
 *
 * Durable state (evictions, SPI, Sender-ID and update number allocations)
 * goes through mcsec_ctl_store_t, one small key-value interface with atomic
 * batches: tools/controller/store-file.c keeps it in files, a test keeps it
 * in memory, the cluster (docs/cluster.md) in etcd.
 *
 * Ownership: the core never frees a connection by itself.  When it decides
 * one ends, the connection leaves its group at once (nothing more reaches
 * it) and a CLOSE action asks the daemon to close the socket; the daemon
 * then calls mcsec_ctl_conn_free() outside any core call.  docs/controller.md
 * "Inside the controller" describes the shape.
 */
#ifndef MCSEC_CTL_CORE_H
#define MCSEC_CTL_CORE_H

#include <glib.h>
#include <openssl/evp.h>

#include <mcsec/mcsec-mike.h>

G_BEGIN_DECLS

typedef struct _McsecCtl mcsec_ctl_t;
typedef struct _McsecCtlConn mcsec_ctl_conn_t;
typedef struct _McsecCtlGroup mcsec_ctl_group_t;

/* ---- durable state ---- */

typedef struct _McsecCtlStore mcsec_ctl_store_t;
struct _McsecCtlStore {
  /* The value of key, or NULL when there is none (*error unset) or it
   * cannot be read (*error set). */
  GBytes *(*get) (mcsec_ctl_store_t *store, const char *key, GError **error);
  /* Keys that start with prefix, sorted; NULL on a read error. */
  GPtrArray *(*list) (mcsec_ctl_store_t *store, const char *prefix,
                      GError **error);
  /* Write n pairs in one atomic, durable step: all or none, on stable
   * storage when it returns TRUE.  A NULL value deletes the key. */
  gboolean (*put) (mcsec_ctl_store_t *store, const char *const *keys,
                   GBytes *const *values, guint n, GError **error);
  void (*free) (mcsec_ctl_store_t *store);
  /* Optional (NULL: get, key by key).  The values of n keys, sorted,
   * read together (in a few round trips, at one moment where the store
   * can): values[i] NULL when keys[i] has none.  FALSE on a read error,
   * values then all NULL. */
  gboolean (*get_many) (mcsec_ctl_store_t *store, const char *const *keys,
                        guint n, GBytes **values, GError **error);
};

/* Errors of a store's put: CONFLICT when another writer changed a key
 * since this store read it (the cluster's optimistic concurrency: read
 * again and retry), UNAVAILABLE when the store cannot be reached, FENCED
 * when a write of a group's state comes from a controller that does not
 * lead the group.  Other failures may use any domain. */
#define MCSEC_CTL_STORE_ERROR (mcsec_ctl_store_error_quark ())
typedef enum {
  MCSEC_CTL_STORE_ERROR_CONFLICT = 1,
  MCSEC_CTL_STORE_ERROR_UNAVAILABLE,
  MCSEC_CTL_STORE_ERROR_FENCED,
} mcsec_ctl_store_error_t;
GQuark mcsec_ctl_store_error_quark (void);

/* A store in memory (tests, fuzzing).  fail_puts: from now on, the first
 * fail_after puts succeed and every later one fails (a full disk, a lost
 * quorum); -1 lets every put succeed again.  puts: how many succeeded. */
mcsec_ctl_store_t *mcsec_ctl_memory_store_new (void);
void mcsec_ctl_memory_store_fail_puts (mcsec_ctl_store_t *store,
                                       gint fail_after);
guint mcsec_ctl_memory_store_puts (mcsec_ctl_store_t *store);
/* The next put of key fails with MCSEC_CTL_STORE_ERROR_CONFLICT after the
 * number stored there grew by bump (another controller reserved a block:
 * the cluster's race, for the tests). */
void mcsec_ctl_memory_store_conflict (mcsec_ctl_store_t *store, const char *key,
                                      guint64 bump);

/* ---- configuration (parsed by the daemon, tools/controller/config.c) ---- */

typedef struct {
  gchar *name, *address;
  guint16 port;
  mcsec_suite_t suite;
  guint8 sam;
  guint sender_id_bits;
  /* every SA a block of SPIs, one per sender (SPI | Sender-ID), for kernel
   * receivers: sender_id_bits <= MCSEC_SPI_PER_SENDER_BITS_MAX */
  gboolean spi_per_sender;
  guint key_lifetime_s, activation_ms, deactivation_ms;
  gboolean rekey_on_join, rekey_on_leave;
  gchar **senders, **receivers; /* identities, NULL-terminated */
  /* key tree groups: the rekey channel ("ADDRESS:PORT"), NULL: unicast */
  gchar *channel, *channel_address;
  guint16 channel_port;
  guint tree_degree, batch_ms, redundancy;
} mcsec_ctl_group_config_t;

void mcsec_ctl_group_config_free (mcsec_ctl_group_config_t *gc);

typedef struct {
  EVP_PKEY *update_key;   /* Ed25519; the core takes a reference */
  guint rejoin_window_ms; /* after a restart (the store held state) */
  gboolean allow_key_export;
  /* limits against members that misbehave (0: the defaults) */
  gsize max_output;      /* bytes queued to one connection */
  guint output_stall_ms; /* queued output that does not move */
  guint repair_per_s;    /* REPAIR requests answered, per member */
  guint repair_burst;
  /* one of several controllers (docs/cluster.md): groups start without a
   * leader (mcsec_ctl_group_lead), and nothing is issued past the lease
   * deadline (mcsec_ctl_set_lease_deadline) */
  gboolean cluster;
  /* the store seals values under "sealed/" (the cluster's etcd with a
   * cluster key): a leader keeps its unicast groups' SAs there, sealed,
   * and the next leader adopts them instead of rekeying (docs/cluster.md
   * "Failover without a rekey") */
  gboolean store_seals;
  /* a JOIN for a group another controller leads is relayed to it (a
   * RELAY action), not refused with not-leader (docs/cluster.md
   * "Relaying"); the daemon has a link to the leader */
  gboolean relay;
} mcsec_ctl_config_t;

#define MCSEC_CTL_MAX_OUTPUT_DEFAULT (1024 * 1024)
#define MCSEC_CTL_OUTPUT_STALL_MS_DEFAULT 10000
#define MCSEC_CTL_REPAIR_PER_S_DEFAULT 4
#define MCSEC_CTL_REPAIR_BURST_DEFAULT 8

/* What the daemon counts (its sockets and TLS), shown by the `stats` verb;
 * the daemon writes the fields, the core only reads them. */
typedef struct {
  guint64 connections, handshake_failures, handshake_timeouts,
      refused_per_source, refused_total, accept_errors, accept_backoffs;
  guint open_connections, pending_handshakes, workers;
  /* relaying (docs/cluster.md): links to and from other controllers, the
   * members relayed through them now, those accepted from followers and
   * links refused (a HELLO that did not prove the cluster key), times a
   * link filled up to relay-queue (its members waited) */
  guint relay_links, relayed_open, relay_accepted_open;
  guint64 relay_accepted, relay_link_refusals, relay_link_waits;
} mcsec_ctl_io_stats_t;

/* ---- the core ---- */

/* groups: taken (freed by the core); now_ms: a monotonic clock. */
mcsec_ctl_t *mcsec_ctl_new (const mcsec_ctl_config_t *config,
                            mcsec_ctl_store_t *store, GPtrArray *groups,
                            gint64 now_ms, GError **error);
/* Frees every connection left (the daemon closed their sockets without a
 * word: members keep their keys and reconnect to the next controller). */
void mcsec_ctl_free (mcsec_ctl_t *ctl);
/* The daemon stops: departures from now on rekey nothing.  The store
 * records how many members each group has (a single controller): the next
 * start waits rejoin-window only for groups that had some. */
void mcsec_ctl_stop (mcsec_ctl_t *ctl);
void mcsec_ctl_set_io_stats (mcsec_ctl_t *ctl,
                             const mcsec_ctl_io_stats_t *stats);
/* TRUE when the store held state: the controller restarted. */
gboolean mcsec_ctl_restarted (const mcsec_ctl_t *ctl);
/* The longest rejoin window the start gave a group (0: none).  A restarted
 * single controller gives one to each group whose members may hold the
 * last run's keys (the store says so: docs/controller.md "Restarts and
 * failures"), and logs each group's (event=rejoin-window, with why). */
guint mcsec_ctl_rejoin_window_ms (const mcsec_ctl_t *ctl);
guint mcsec_ctl_n_groups (const mcsec_ctl_t *ctl);

/* Run what is due (batches, heartbeats, deadlines, key lifetimes); the
 * next time something is due. */
gint64 mcsec_ctl_tick (mcsec_ctl_t *ctl, gint64 now_ms);

/* ---- connections (after the TLS handshake) ---- */

/* identity: the certificate's common name; peer: "ADDRESS:PORT". */
mcsec_ctl_conn_t *mcsec_ctl_conn_new (mcsec_ctl_t *ctl, const char *peer,
                                      const char *identity, gint64 now_ms,
                                      gint64 real_us);
void mcsec_ctl_conn_set_user_data (mcsec_ctl_conn_t *c, gpointer data);
gpointer mcsec_ctl_conn_get_user_data (const mcsec_ctl_conn_t *c);
const char *mcsec_ctl_conn_identity (const mcsec_ctl_conn_t *c);
/* c came from a follower over a relay link (docs/cluster.md "Relaying"):
 * it is never relayed on (a JOIN for a group led elsewhere is refused
 * with not-leader, as without relaying), so no member goes round from
 * controller to controller. */
void mcsec_ctl_conn_set_relayed (mcsec_ctl_conn_t *c);
/* Bytes the member sent (decrypted TLS records). */
void mcsec_ctl_conn_input (mcsec_ctl_conn_t *c, const guint8 *data, gsize len,
                           gint64 now_ms);
/* What waits to be written, and how much of it was. */
gsize mcsec_ctl_conn_output (const mcsec_ctl_conn_t *c, const guint8 **data);
void mcsec_ctl_conn_written (mcsec_ctl_conn_t *c, gsize n, gint64 now_ms);
/* The socket ended (why: for the log); the connection leaves its group. */
void mcsec_ctl_conn_lost (mcsec_ctl_conn_t *c, const char *why, gint64 now_ms);
/* The daemon saw the member stop reading (its TCP window stays shut):
 * counted and logged as not-reading, and closed (a CLOSE action). */
void mcsec_ctl_conn_not_reading (mcsec_ctl_conn_t *c, const char *detail,
                                 gint64 now_ms);
/* After its CLOSE action (or conn_lost): no core call uses it again. */
void mcsec_ctl_conn_free (mcsec_ctl_conn_t *c);

/* ---- actions ---- */

typedef enum {
  MCSEC_CTL_ACTION_WRITE = 1, /* conn has output */
  MCSEC_CTL_ACTION_CLOSE,     /* close conn (after its output if flush) */
  MCSEC_CTL_ACTION_CHANNEL,   /* send data on group's rekey channel */
  MCSEC_CTL_ACTION_LOG,       /* event and text (key=value ...) */
  /* (config relay) conn's JOIN is for a group led by the controller at
   * text ("HOST:PORT"): data holds every byte the member sent, its JOIN
   * first; the daemon takes the connection to that controller.  The
   * core is done with conn: free it (its socket stays the daemon's). */
  MCSEC_CTL_ACTION_RELAY,
} mcsec_ctl_action_type_t;

typedef struct {
  mcsec_ctl_action_type_t type;
  mcsec_ctl_conn_t *conn;
  mcsec_ctl_group_t *group;
  gboolean flush;
  GBytes *data;
  const char *event;
  gchar *text;
} mcsec_ctl_action_t;

gboolean mcsec_ctl_next_action (mcsec_ctl_t *ctl, mcsec_ctl_action_t *action);
void mcsec_ctl_action_clear (mcsec_ctl_action_t *action);

/* ---- groups, for the daemon's rekey channel sockets ---- */

mcsec_ctl_group_t *mcsec_ctl_group_nth (mcsec_ctl_t *ctl, guint i);
const mcsec_ctl_group_config_t *
mcsec_ctl_group_config (const mcsec_ctl_group_t *g);
guint mcsec_ctl_group_members (const mcsec_ctl_group_t *g);
void mcsec_ctl_group_set_user_data (mcsec_ctl_group_t *g, gpointer data);
gpointer mcsec_ctl_group_get_user_data (const mcsec_ctl_group_t *g);
/* The daemon's account of a CHANNEL action: sent or not (error text). */
void mcsec_ctl_channel_sent (mcsec_ctl_group_t *g, gsize len,
                             const char *error);

/* ---- the cluster (docs/cluster.md) ---- */

/* This controller leads g from now on: its state is read again from the
 * store (evictions, recent SPIs, a fresh block of numbers, the previous
 * leader's sealed SA with store_seals); members that held the previous
 * leader's SA are given the rejoin window.  real_us: the wall clock (the
 * sealed SA's times are wall-clock times).  FALSE (and
 * the group stays without a leader here) when the store cannot be read. */
gboolean mcsec_ctl_group_lead (mcsec_ctl_group_t *g, gint64 now_ms,
                               gint64 real_us, GError **error);
/* Another controller leads g (leader: its "HOST:PORT", NULL when none is
 * known), or none can while the store is unreachable (unavailable).  A
 * group this controller led steps down: its members' connections close
 * without a word (they keep their keys and go to the next controller),
 * its keys are wiped, nothing more is issued for it. */
void mcsec_ctl_group_follow (mcsec_ctl_group_t *g, const char *leader,
                             gboolean unavailable, gint64 now_ms);
gboolean mcsec_ctl_group_leading (const mcsec_ctl_group_t *g);
/* Before a leader hands g over: what it owes the store now (the sealed
 * SA's holders, normally written within 200 ms) is written at once.
 * FALSE: not a group to hand over now (its key rotation failed: the next
 * leader would find no good record). */
gboolean mcsec_ctl_group_save (mcsec_ctl_group_t *g, gint64 now_ms);
/* Fencing: the lease that makes this controller a leader holds until
 * deadline_ms (the core's clock); at or after it, every group steps down
 * before anything is issued.  0: no lease (nothing is led).  A single
 * controller never calls it. */
void mcsec_ctl_set_lease_deadline (mcsec_ctl_t *ctl, gint64 deadline_ms);
/* Another controller recorded (or removed) an eviction in the store.  A
 * group led here evicts the member it holds and rekeys; elsewhere the
 * identity is refused from now on. */
void mcsec_ctl_eviction_changed (mcsec_ctl_t *ctl, const char *group,
                                 const char *identity, gboolean evicted,
                                 gint64 now_ms);
/* The group's evictions are exactly these (read from the store at the
 * start, or after watch events were lost). */
void mcsec_ctl_evictions_replace (mcsec_ctl_t *ctl, const char *group,
                                  const char *const *identities, gint64 now_ms);

/* ---- a new configuration (SIGHUP) ---- */

/* The daemon read its configuration again (docs/controller.md
 * "Reloading").  config: the limits it applies at once (allow_key_export,
 * max_output, repair_per_s, rejoin_window_ms; the rest is ignored).
 * groups: as mcsec_ctl_new takes them (taken).  Applied at once to each
 * group of the running configuration: the access lists (a joined member
 * they no longer admit in its role is evicted: told EVICTED, closed, and
 * the group rekeys once; nothing durable is recorded: the lists refuse it
 * from now on) and key-lifetime, activation-delay, deactivation-delay,
 * rekey-on-join, rekey-on-leave, batch-interval, rekey-redundancy.  Every
 * other change (a group added or removed, its address, cipher, channel...)
 * waits for a restart.  changed and restart: the daemon's own findings
 * ("[controller] listen"), to which the core adds its own; one
 * event=restart-needed line per setting that waits, then event=reloaded. */
void mcsec_ctl_reload (mcsec_ctl_t *ctl, const mcsec_ctl_config_t *config,
                       GPtrArray *groups, GPtrArray *changed,
                       GPtrArray *restart, gint64 now_ms);

/* ---- logs ---- */

/* The syslog priority of an event (3 error, 4 warning, 5 notice, 6 info,
 * 7 debug), for journald: the daemon's own events and the core's. */
int mcsec_ctl_event_priority (const char *event);

/* ---- administration: one request line, one JSON answer ---- */

/* The answer may hold keys (export-keys): wipe it before freeing. */
gchar *mcsec_ctl_admin (mcsec_ctl_t *ctl, const char *line, gint64 now_ms,
                        gint64 real_us);

G_END_DECLS

#endif
