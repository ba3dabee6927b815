/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller core's insides, shared by its three files:
 *   ctl-core.c   connections, members' messages (join), time, the core's
 *                life: what the daemon calls (ctl-core.h)
 *   ctl-group.c  a group's keys: durable numbers, SAs and updates computed
 *                whole then installed, key tree commits, repairs, fail
 *                closed, departures
 *   ctl-admin.c  the administrator's verbs, one table, and their JSON
 * Nothing here is for the daemon.
 */
#ifndef MCSEC_CTL_PRIVATE_H
#define MCSEC_CTL_PRIVATE_H

#include <mcsec/mcsec-lkh.h>
#include <mcsec/mcsec-rekey.h>

#include "ctl-core.h"

#define SEQ_BLOCK 4096
#define SENDER_ID_BLOCK 64
#define REKEY_SEQ_BLOCK 1024
#define RESYNC_MIN_MS 250 /* a member gets at most one new path this often */
#define JOIN_TIMEOUT_MS MCSEC_MIKE_JOIN_TIMEOUT_MS
#define SWEEP_MS 1000
#define RETRY_MS 1000 /* a group that failed to rotate tries again */
#define SPIS_KEPT 8   /* a group's recent SPIs, never reused */
#define FEED_SLICE                                                             \
  2048                  /* bytes fed to a reader at once: a flood of tiny      \
                           frames costs linear time, not quadratic */
#define JOIN_MAX 4096   /* bytes a connection may send before its JOIN */
#define FRAMES_PER_S 50 /* a member's frames (pings, ACKs, repairs) */
#define FRAMES_BURST 200
#define AWAIT_PER_IDENTITY 4 /* connections of one identity before JOIN */

/* ------------------------------------------------------------------------ */

typedef struct {
  int valid;
  guint32 spi;
  mcsec_suite_t suite;
  guint8 key[MCSEC_MIKE_MAX_KEY_LEN];
  gsize key_len;
  gint64 created_ms, activate_ms;
  guint64 sid_base; /* the Sender-ID counter when it was made */
  /* the members' Sender-IDs when it was made (or as the record said, when
   * adopted): with [sid_base, the counter's limit) every one used under it */
  GHashTable *made_ids;
  gboolean adopted; /* from the previous leader: in use, whatever its
                       activation time says (clocks differ) */
  /* Sender-IDs valid under this key: those members held when it was made
   * and those handed out since; never handed out twice (a second sender
   * with the same Sender-ID would repeat its nonces) */
  GHashTable *ids;
} GroupSa;

typedef enum { TIMER_RESEND, TIMER_FOLLOWUP } TimerKind;

typedef struct {
  gint64 due;
  TimerKind kind;
  guint64 seq;
} GroupTimer;

/* A durable counter: values below limit may have been used. */
typedef struct {
  gchar *key;
  guint64 next, limit, block;
} Counter;

struct _McsecCtlGroup {
  mcsec_ctl_t *ctl;
  mcsec_ctl_group_config_t *cfg;
  GHashTable *senders, *receivers; /* identity sets */
  GHashTable *evicted;             /* durable (store "evicted/G/ID") */
  GQueue members;                  /* mcsec_ctl_conn_t, by group_link */
  /* the members whose role has Sender-IDs (by send_link, in join order):
   * every update lists theirs, and walks them, not a key tree group's
   * million receivers (members_add, members_remove) */
  GQueue sending;
  GHashTable *by_identity; /* identity -> member */
  GroupSa sa;
  guint32 recent_spis[SPIS_KEPT]; /* durable (store "spis/G") */
  guint n_recent_spis;
  guint64 seq;    /* of the last update */
  GBytes *update; /* the signed update frame, for everyone */
  guint64 rekeys, updates_sent;
  gint64 last_rekey_ms;
  gchar *last_rekey_reason;
  /* fail closed: the key could not be rotated */
  gboolean failed, resync_all;
  gchar *failed_reason;
  gint64 retry_due;
  guint64 rotation_failures;
  /* departures wait for the end of the operation (run_deferred) */
  gboolean leave_pending, sender_left_pending;
  /* a member that held the current SA left an empty group, or was
   * evicted: the next member gets a new SA whatever rekey-on-join says */
  gboolean sa_stale;
  /* key tree groups */
  mcsec_lkh_t *tree;
  /* ... the tree in the store (ctl-tree.c): the log's generation (0: the
   * next commit writes a snapshot), its next index and snapshot chunks,
   * the changes' bytes since the snapshot and the snapshot's; the leaves
   * given or freed since the last entry (leaf, identity) */
  guint64 tlog_gen;
  guint32 tlog_next, tlog_chunks;
  gsize tlog_bytes, tlog_snapshot_bytes;
  GByteArray *tree_notes;
  guint tree_notes_n;
  /* the SA record was deleted after a leave (ctl-tree.c record_drop);
   * a write that failed is tried again then */
  gboolean tree_record_dropped, tree_drop_pending;
  gint64 tree_retry_due;
  /* ... an adopted tree's leaves whose members have not rejoined:
   * identity -> leaf; a receiver back takes its leaf again (no commit),
   * those missing when the rejoin window ends leave */
  GHashTable *tree_leaves;
  mcsec_rekey_tx_t *tx;
  Counter rekey_ctr;
  gint64 batch_due, heartbeat_due;
  gchar *batch_reason;
  GArray *timers; /* GroupTimer */
  guint64 channel_rekeys, channel_datagrams, channel_bytes, channel_errors,
      repairs_served, repairs_limited, resyncs_served, repair_polls,
      direct_rekeys;
  gsize last_rekey_bytes, last_rekey_entries;
  guint last_rekey_datagrams;
  gpointer user_data;
  /* the cluster: only the leader issues anything for the group */
  gboolean leading, unavailable;
  gchar *leader_hint;       /* "HOST:PORT" of the leader, or NULL */
  gint64 recovery_until_ms; /* no SA of this leadership used before */
  /* the SA adopted from the previous leader (ctl-adopt.c): identity ->
   * Holder that held it and has not rejoined yet; they rejoin without a
   * rekey, their Sender-IDs stay listed meanwhile, and those still missing
   * when the rejoin window ends count as left */
  GHashTable *holders;
  /* members that left while the group kept its SA (they hold it):
   * identity -> Holder with the Sender-IDs they had under it; a sender
   * that joins again under the same SA gets them listed again (its
   * mcsecenc goes on with them, ctl-group.c departed_add); not listed
   * while it is away; a reload that no longer lists it rekeys */
  GHashTable *departed;
  gint64 record_due;       /* the sealed SA's holders are written again then */
  gboolean record_dropped; /* its SA went stale: the record is deleted */
  gint64 record_retry_due; /* ... a failed deletion tried again then */
  /* the cold start (a single controller): the store records that members
   * may hold the group's keys (store "members/G": MEMBERS_RUNNING while
   * it runs, their number after a clean stop), written before the first
   * member gets a key, removed when the last one leaves */
  gchar *members_key;
  gboolean members_recorded, members_left;
  guint members_at_stop;    /* read at the start, or MEMBERS_UNKNOWN... */
  gboolean awaiting_rejoin; /* in the rejoin window the start gave it */
};

#define MEMBERS_RUNNING "running"
#define MEMBERS_REJOINING "rejoining"
#define MEMBERS_UNKNOWN G_MAXUINT /* "running": no clean stop */
#define MEMBERS_AWAITED                                                        \
  (G_MAXUINT - 1u)                        /* "rejoining": a stop in the window \
                                           */
#define MEMBERS_MARKER "members-recorded" /* the state records members */

/* C_RELAY: its JOIN is for a group another controller leads, and this
 * one relays (docs/cluster.md "Relaying"): the input stops there and a
 * RELAY action hands the connection's bytes to the daemon. */
typedef enum { C_AWAIT_JOIN, C_MEMBER, C_RELAY, C_CLOSED } ConnState;

/* What waits to be written to a member: updates hold keys, so the buffer
 * grows and shrinks by hand, wiping what it leaves behind (a realloc or a
 * GByteArray would leave copies in freed or unused memory). */
typedef struct {
  guint8 *data;
  gsize len, cap;
} OutBuf;

struct _McsecCtlConn {
  mcsec_ctl_t *ctl;
  gpointer user_data;
  GList all_link, group_link;
  GList send_link; /* in its group's sending, when its role sends */
  ConnState state;
  mcsec_ctl_group_t *relay_to; /* C_RELAY: the group its JOIN named */
  gboolean relayed;            /* it came over a relay link: not again */
  mcsec_mike_reader_t reader;
  OutBuf out;
  gchar *peer, *identity;
  mcsec_ctl_group_t *group;
  guint role;
  guint32 sender_id; /* the first of sender_ids, 0 for receivers */
  guint n_sender_ids;
  guint32 sender_ids[MCSEC_MIKE_MAX_SENDER_IDS];
  guint8 spki[MCSEC_MIKE_MAX_SPKI];
  gsize spki_len;
  gint64 started_ms, last_rx_ms, joined_real_us, progress_ms;
  guint64 acked_seq;
  gboolean write_queued;
  guint n_actions;           /* queued actions that name it */
  double frame_tokens;       /* frames it may still send now */
  gboolean counted_awaiting; /* in ctl->awaiting */
  gint64 frame_tokens_ms;
  /* REPAIR requests: a token bucket */
  double repair_tokens;
  gint64 repair_tokens_ms;
  /* key tree groups: the member's leaf; its path goes out with the commit
   * that places it */
  guint32 leaf;
  gboolean in_tree, awaiting_path;
  gboolean place_later; /* joined in an adopted tree's window (ctl-tree.c) */
  gint64 last_resync_ms;
  gint64 unreached_until_ms; /* the channel does not reach it: rekeys go
                                over its connection too, until then */
  /* an adopted SA (ctl-adopt.c): the Sender-IDs it held under the
   * previous leader; a sender that kept running goes on with them, so they
   * stay listed until the group's SA changes */
  guint n_old_ids;
  guint32 old_ids[MCSEC_MIKE_MAX_SENDER_IDS];
};

struct _McsecCtl {
  mcsec_ctl_config_t cfg;
  mcsec_ctl_store_t *store;
  GPtrArray *groups;       /* mcsec_ctl_group_t */
  GHashTable *group_names; /* name -> group */
  guint8 update_spki[MCSEC_MIKE_MAX_SPKI];
  gsize update_spki_len;
  GQueue conns;
  GQueue actions;
  Counter seq_ctr, sid_ctr;
  mcsec_mike_msg_t *msg; /* parsed frames, reused (no alloc per frame) */
  GHashTable *awaiting;  /* identity -> connections before their JOIN */
  GHashTable *admitted;  /* identities in some access list */
  gboolean restarted, stopping;
  gint64 started_ms, sweep_due;
  gint64 lease_deadline_ms; /* the cluster: nothing issued at or after */
  gint64 wall_offset_us;    /* wall clock minus now_ms (set when leading) */
  guint64 leaderships, stepdowns;
  mcsec_ctl_io_stats_t io;
  guint64 registrations, refusals, refused_by[16], leaves, evictions,
      unevictions, disconnects, not_reading, updates_sent, acks,
      rejected_messages, store_errors, flooding, unlisted, relayed;
  gint64 unlisted_log_ms;
};

/* ctl-core.c */
/* a LOG action: one key=value line, never a key byte */
void ctl_log (mcsec_ctl_t *ctl, const char *event, const char *fmt, ...)
    G_GNUC_PRINTF (3, 4);
void conn_goodbye (mcsec_ctl_conn_t *c, mcsec_mike_type_t type, guint reason,
                   const char *text, gint64 now);
gboolean conn_queue (mcsec_ctl_conn_t *c, const guint8 *frame, gsize len,
                     gint64 now);
void push_action (mcsec_ctl_t *ctl, mcsec_ctl_action_type_t type,
                  mcsec_ctl_conn_t *c, mcsec_ctl_group_t *g);
const char *role_name (guint role);
void wipe_bytes (GBytes *bytes);

/* ctl-adopt.c: a leader's SA sealed in the store, adopted by the next */
#define SA_RECORD_VERSION 2 /* 1: the key first, no Sender-ID layout */
/* A member that held the SA, as recorded. */
typedef struct {
  gchar *identity;
  guint role;
  guint n_ids;
  guint32 ids[MCSEC_MIKE_MAX_SENDER_IDS]; /* the ones it may send with */
  guint8 spki[MCSEC_MIKE_MAX_SPKI];
  gsize spki_len;
} Holder;
void holder_free (gpointer h);
typedef struct {
  guint32 spi;
  guint8 suite;
  guint8 key[MCSEC_MIKE_MAX_KEY_LEN];
  gsize key_len;
  guint8 sender_id_bits, spi_per_sender; /* the group's, when it was made */
  gint64 created_us, activate_us;        /* wall clock */
  guint64 sid_base;   /* the Sender-ID counter when it was made */
  GArray *ids;        /* guint32: the members' Sender-IDs when made */
  GPtrArray *holders; /* Holder: the members then */
} SaRecord;
gboolean sa_record_parse (const guint8 *data, gsize len, SaRecord *r);
void sa_record_clear (SaRecord *r);
GBytes *sa_record_build (mcsec_ctl_group_t *g, const GroupSa *sa);
gchar *sa_record_key (const char *group);
/* n bytes of v, big-endian; and back, FALSE when fewer than n are left */
void put_be (GByteArray *b, guint64 v, guint n);
gboolean get_be (const guint8 **p, const guint8 *end, guint n, guint64 *v);
gboolean group_adopt_sa (mcsec_ctl_group_t *g, gint64 now, GError **error);
gboolean holder_returns (mcsec_ctl_group_t *g, const char *identity);
void group_holders_due (mcsec_ctl_group_t *g, gint64 now);
void group_record_later (mcsec_ctl_group_t *g, gint64 now);
void group_record_due (mcsec_ctl_group_t *g, gint64 now);
void group_sa_clear (GroupSa *sa);
void group_record_stale (mcsec_ctl_group_t *g, gint64 now);

/* ctl-group.c */
gchar *group_key (const char *what, const char *group);
void channel_heartbeat (mcsec_ctl_group_t *g);
void channel_send_rekey (mcsec_ctl_group_t *g, guint64 seq);
gboolean counter_next (mcsec_ctl_t *ctl, Counter *c, guint64 *out);
gboolean counter_reread (mcsec_ctl_t *ctl, Counter *c, GError **error);
gboolean counter_open (mcsec_ctl_t *ctl, Counter *c, const char *key,
                       guint64 block, gboolean *existed, GError **error);
gchar *evicted_key (const char *group, const char *identity);
void group_batch (mcsec_ctl_group_t *g, const char *reason, gint64 now);
void group_change (mcsec_ctl_group_t *g, gboolean new_key, const char *reason,
                   gint64 now);
void group_commit (mcsec_ctl_group_t *g, const char *reason, gint64 now);
void group_drop_member (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *victim,
                        const char *why, gint64 now);
void group_evict_member (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *victim,
                         gint64 now);
gboolean group_members_load (mcsec_ctl_group_t *g, GError **error);
gboolean group_members_joining (mcsec_ctl_group_t *g);
void group_members_stop (mcsec_ctl_t *ctl);
gboolean group_members_start (mcsec_ctl_t *ctl, gboolean restarted, gint64 now,
                              GError **error);
void group_free (mcsec_ctl_group_t *g);
void group_reset (mcsec_ctl_group_t *g);
gboolean group_load_state (mcsec_ctl_group_t *g, gint64 now, GError **error);
void group_repair (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, guint64 from,
                   gint64 now);
gboolean group_rotate (mcsec_ctl_group_t *g, gboolean new_key,
                       const char *reason, gint64 now);
void group_send_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *only,
                        gint64 now);
GHashTable *identity_set (gchar **v);
void member_left (mcsec_ctl_conn_t *c, const char *why, gint64 now);
void members_add (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c);
void members_remove (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c);
GHashTable *members_ids (mcsec_ctl_group_t *g);
gboolean new_sender_id (mcsec_ctl_group_t *g, GHashTable *avoid, guint32 *out,
                        gboolean *store_failed);
void run_deferred (mcsec_ctl_t *ctl, gint64 now);
gboolean group_may_issue (mcsec_ctl_group_t *g, gint64 now);
gboolean store_put (mcsec_ctl_t *ctl, const char *const *keys,
                    GBytes *const *values, guint n, GError **error);
gboolean store_put1 (mcsec_ctl_t *ctl, const char *key, GBytes *value,
                     GError **error);
/* identity -> Holder tables: an adopted SA's holders not back yet, the
 * members that left the group's SA (departed) */
void holders_put (GHashTable **table, Holder *h);
gboolean holder_is (const Holder *h, const mcsec_ctl_conn_t *c);
void holder_back (GHashTable *table, mcsec_ctl_conn_t *c);
void departed_add (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c);
void old_ids_add (mcsec_ctl_conn_t *c, const guint32 *ids, guint n);
void tree_leave (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c);
gboolean tree_place (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gint64 now);
void send_path_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gint64 now);

/* ctl-tree.c: a key tree group's tree in the store, adopted by the next
 * leader */
void tree_note (mcsec_ctl_group_t *g, guint32 leaf, const char *identity);
void tree_record (mcsec_ctl_group_t *g, guint64 seq, gint64 now);
gboolean tree_record_due (mcsec_ctl_group_t *g, gint64 now);
void tree_log_reset (mcsec_ctl_group_t *g);
gboolean tree_adopt (mcsec_ctl_group_t *g, guint64 *last_seq, GError **error);
/* One generation's entries (opened, in index order) as a tree: NULL when
 * they are not one; by_leaf (leaf -> identity, g_free'd values) filled. */
mcsec_lkh_t *tree_log_parse (GBytes *const *values, guint n,
                             GHashTable *by_leaf, guint64 *last_seq);
gboolean tree_leaf_back (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c,
                         gboolean rekey);
gboolean tree_leaf_waiting (mcsec_ctl_group_t *g, const char *identity,
                            gboolean sends);
guint tree_leaves_drop (mcsec_ctl_group_t *g, const char *only,
                        GHashTable *senders, GHashTable *receivers, gint64 now);
void tree_leaves_due (mcsec_ctl_group_t *g, gint64 now);
gboolean tree_window_open (mcsec_ctl_group_t *g, gint64 now);

#endif
