/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's core (ctl-core.h): MIKE's group controller without I/O.
 * docs/mike-protocol.md is the protocol, docs/controller.md the behaviour.
 *
 * Three rules hold everywhere below:
 *  - compute, then commit: a new SA, an update or a key tree commit is
 *    made whole (durable numbers reserved, key made, message signed) before
 *    any group state changes; when a step fails the group keeps its old
 *    state, stops handing its key out (fail closed) and retries;
 *  - nothing is freed under a caller: a connection that ends leaves its
 *    group at once and is freed by the daemon after its CLOSE action;
 *  - rekeys that a departure calls for run after the operation that caused
 *    it (run_deferred), never inside a loop over the members.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

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
  GHashTable *by_identity;         /* identity -> member */
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
};

typedef enum { C_AWAIT_JOIN, C_MEMBER, C_CLOSED } ConnState;

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
  ConnState state;
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
  gint64 last_resync_ms;
  gint64 unreached_until_ms; /* the channel does not reach it: rekeys go
                                over its connection too, until then */
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
  guint n_awaiting;
  gboolean restarted, stopping;
  gint64 started_ms, recovery_until_ms, sweep_due;
  mcsec_ctl_io_stats_t io;
  guint64 registrations, refusals, refused_by[16], leaves, evictions,
      unevictions, disconnects, not_reading, updates_sent, acks,
      rejected_messages, store_errors, flooding, unlisted;
  gint64 unlisted_log_ms;
};

/* ------------------------------------------------------------------------ */
/* Output buffers                                                            */

static void
out_append (OutBuf *o, const guint8 *p, gsize n)
{
  if (o->len + n > o->cap) {
    gsize cap = o->cap ? o->cap * 2 : 4096;
    guint8 *nb;
    while (cap < o->len + n)
      cap *= 2;
    nb = g_malloc (cap);
    if (o->len)
      memcpy (nb, o->data, o->len);
    if (o->data) {
      OPENSSL_cleanse (o->data, o->cap);
      g_free (o->data);
    }
    o->data = nb;
    o->cap = cap;
  }
  memcpy (o->data + o->len, p, n);
  o->len += n;
}

static void
out_consume (OutBuf *o, gsize n)
{
  memmove (o->data, o->data + n, o->len - n);
  OPENSSL_cleanse (o->data + o->len - n, n);
  o->len -= n;
  /* a drained buffer goes back to nothing: 50,000 idle members */
  if (o->len == 0) {
    OPENSSL_cleanse (o->data, o->cap);
    g_free (o->data);
    o->data = NULL;
    o->cap = 0;
  }
}

static void
out_clear (OutBuf *o)
{
  if (o->data) {
    OPENSSL_cleanse (o->data, o->cap);
    g_free (o->data);
  }
  memset (o, 0, sizeof *o);
}

static void
wipe_bytes (GBytes *bytes)
{
  gsize len;
  guint8 *data;
  if (bytes == NULL)
    return;
  data = g_bytes_unref_to_data (bytes, &len);
  OPENSSL_cleanse (data, len);
  g_free (data);
}

/* ------------------------------------------------------------------------ */
/* Actions                                                                    */

static void
push_action (mcsec_ctl_t *ctl, mcsec_ctl_action_type_t type,
             mcsec_ctl_conn_t *c, mcsec_ctl_group_t *g)
{
  mcsec_ctl_action_t *a = g_new0 (mcsec_ctl_action_t, 1);
  a->type = type;
  a->conn = c;
  a->group = g;
  if (c)
    c->n_actions++;
  g_queue_push_tail (&ctl->actions, a);
}

static void G_GNUC_PRINTF (3, 4)
    log_event (mcsec_ctl_t *ctl, const char *event, const char *fmt, ...)
{
  mcsec_ctl_action_t *a = g_new0 (mcsec_ctl_action_t, 1);
  va_list ap;
  a->type = MCSEC_CTL_ACTION_LOG;
  a->event = event;
  va_start (ap, fmt);
  a->text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_queue_push_tail (&ctl->actions, a);
}

gboolean
mcsec_ctl_next_action (mcsec_ctl_t *ctl, mcsec_ctl_action_t *action)
{
  mcsec_ctl_action_t *a = g_queue_pop_head (&ctl->actions);
  if (a == NULL)
    return FALSE;
  *action = *a;
  g_free (a);
  if (action->conn)
    action->conn->n_actions--;
  if (action->type == MCSEC_CTL_ACTION_WRITE)
    action->conn->write_queued = FALSE;
  return TRUE;
}

void
mcsec_ctl_action_clear (mcsec_ctl_action_t *action)
{
  if (action->data)
    g_bytes_unref (action->data); /* channel datagrams: no secret keys */
  g_free (action->text);
  memset (action, 0, sizeof *action);
}

/* ------------------------------------------------------------------------ */
/* Durable state                                                              */

static gboolean
store_put1 (mcsec_ctl_t *ctl, const char *key, GBytes *value, GError **error)
{
  const char *keys[1] = {key};
  GBytes *values[1] = {value};
  gboolean ok = ctl->store->put (ctl->store, keys, values, 1, error);
  if (!ok)
    ctl->store_errors++;
  return ok;
}

static gboolean
counter_open (mcsec_ctl_t *ctl, Counter *c, const char *key, guint64 block,
              gboolean *existed, GError **error)
{
  GError *err = NULL;
  GBytes *v = ctl->store->get (ctl->store, key, &err);
  c->key = g_strdup (key);
  c->block = block;
  c->next = c->limit = 0;
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  if (existed)
    *existed = v != NULL;
  if (v) {
    gsize len;
    const char *d = g_bytes_get_data (v, &len);
    gchar *s = len ? g_strndup (d, len) : g_strdup (""), *end;
    guint64 n = g_ascii_strtoull (s, &end, 10);
    gboolean ok = *s && *end == '\0';
    g_free (s);
    g_bytes_unref (v);
    if (!ok) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "the state's %s is not a number", key);
      return FALSE;
    }
    /* every value below the recorded limit may have been used */
    c->next = c->limit = n;
  }
  return TRUE;
}

/* The next value of a durable counter: FALSE when no more can be reserved
 * (nothing changes then). */
static gboolean
counter_next (mcsec_ctl_t *ctl, Counter *c, guint64 *out)
{
  if (c->next >= c->limit) {
    guint64 limit = c->next + c->block;
    gchar *s = g_strdup_printf ("%" G_GUINT64_FORMAT, limit);
    GBytes *v = g_bytes_new_take (s, strlen (s));
    GError *err = NULL;
    gboolean ok = store_put1 (ctl, c->key, v, &err);
    g_bytes_unref (v);
    if (!ok) {
      log_event (ctl, "error", "what=\"cannot reserve %s: %s\"", c->key,
                 err->message);
      g_error_free (err);
      return FALSE;
    }
    c->limit = limit;
  }
  *out = c->next++;
  return TRUE;
}

/* Values up to `value` may be used: the store records a limit above it
 * (the key tree's rekey numbers, which the channel's sender counts). */
static gboolean
counter_ensure (mcsec_ctl_t *ctl, Counter *c, guint64 value)
{
  guint64 v;
  if (value < c->limit) {
    c->next = MAX (c->next, value + 1);
    return TRUE;
  }
  c->next = value;
  return counter_next (ctl, c, &v);
}

/* The store's key of a group's fact: names are escaped ('/' included),
 * so no group name or identity can reach another's key. */
static gchar *
group_key (const char *what, const char *group)
{
  gchar *g = g_uri_escape_string (group, NULL, FALSE);
  gchar *key = g_strdup_printf ("%s/%s", what, g);
  g_free (g);
  return key;
}

static gchar *
evicted_key (const char *group, const char *identity)
{
  gchar *g = g_uri_escape_string (group, NULL, FALSE);
  gchar *i = g_uri_escape_string (identity, NULL, FALSE);
  gchar *key = g_strdup_printf ("evicted/%s/%s", g, i);
  g_free (g);
  g_free (i);
  return key;
}

/* ------------------------------------------------------------------------ */
/* Groups                                                                     */

void
mcsec_ctl_group_config_free (mcsec_ctl_group_config_t *gc)
{
  if (gc == NULL)
    return;
  g_free (gc->name);
  g_free (gc->address);
  g_strfreev (gc->senders);
  g_strfreev (gc->receivers);
  g_free (gc->channel);
  g_free (gc->channel_address);
  g_free (gc);
}

static GHashTable *
identity_set (gchar **v)
{
  GHashTable *set =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; v && v[i]; i++)
    g_hash_table_add (set, g_strdup (v[i]));
  return set;
}

static void
group_drop_update (mcsec_ctl_group_t *g)
{
  wipe_bytes (g->update);
  g->update = NULL;
}

static void
group_free (mcsec_ctl_group_t *g)
{
  g_hash_table_unref (g->senders);
  g_hash_table_unref (g->receivers);
  g_hash_table_unref (g->evicted);
  g_hash_table_unref (g->by_identity);
  if (g->sa.ids)
    g_hash_table_unref (g->sa.ids);
  OPENSSL_cleanse (&g->sa, sizeof g->sa);
  group_drop_update (g);
  g_free (g->last_rekey_reason);
  g_free (g->failed_reason);
  g_free (g->batch_reason);
  g_free (g->rekey_ctr.key);
  g_array_unref (g->timers);
  mcsec_rekey_tx_free (g->tx);
  mcsec_lkh_free (g->tree);
  mcsec_ctl_group_config_free (g->cfg);
  g_free (g);
}

static gboolean
group_load_state (mcsec_ctl_group_t *g, gint64 now, GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;
  gchar *pg = group_key ("evicted", g->cfg->name);
  gchar *prefix = g_strconcat (pg, "/", NULL);
  gchar *key = group_key ("spis", g->cfg->name);
  GPtrArray *keys = ctl->store->list (ctl->store, prefix, error);
  GBytes *spis = NULL;
  gboolean ok = FALSE;

  if (keys == NULL)
    goto out;
  for (guint i = 0; i < keys->len; i++) {
    gchar *id = g_uri_unescape_string (
        (const char *)keys->pdata[i] + strlen (prefix), NULL);
    if (id)
      g_hash_table_add (g->evicted, id);
  }
  g_ptr_array_unref (keys);
  spis = ctl->store->get (ctl->store, key, error);
  if (error && *error)
    goto out;
  if (spis) {
    gsize len;
    const char *d = g_bytes_get_data (spis, &len);
    gchar *s = len ? g_strndup (d, len) : g_strdup ("");
    gchar **v = g_strsplit (s, " ", -1);
    for (guint i = 0; v[i] && g->n_recent_spis < SPIS_KEPT; i++)
      if (*v[i])
        g->recent_spis[g->n_recent_spis++] =
            (guint32)g_ascii_strtoull (v[i], NULL, 16);
    g_strfreev (v);
    g_free (s);
  }
  if (g->cfg->channel) {
    gchar *ck = group_key ("counter/rekey", g->cfg->name);
    mcsec_status_t st;
    guint64 zero;
    ok = counter_open (ctl, &g->rekey_ctr, ck, REKEY_SEQ_BLOCK, NULL, error);
    g_free (ck);
    if (!ok)
      goto out;
    ok = FALSE;
    /* SEQ 0 means none */
    if (g->rekey_ctr.next == 0 && !counter_next (ctl, &g->rekey_ctr, &zero)) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO,
                   "group %s: cannot reserve rekey numbers", g->cfg->name);
      goto out;
    }
    st = mcsec_lkh_new (g->cfg->tree_degree, &g->tree);
    if (st == MCSEC_OK)
      st = mcsec_rekey_tx_new (g->cfg->name, ctl->cfg.update_key,
                               g->rekey_ctr.next, &g->tx);
    if (st) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "group %s: %s",
                   g->cfg->name, mcsec_status_message (st));
      goto out;
    }
    g->heartbeat_due = now + MCSEC_REKEY_HEARTBEAT_MS;
  }
  ok = TRUE;
out:
  if (spis)
    g_bytes_unref (spis);
  g_free (prefix);
  g_free (pg);
  g_free (key);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                                */

static void member_left (mcsec_ctl_conn_t *c, const char *why, gint64 now);
static void awaiting_done (mcsec_ctl_conn_t *c);

static void
conn_want_write (mcsec_ctl_conn_t *c)
{
  if (!c->write_queued && c->state != C_CLOSED) {
    c->write_queued = TRUE;
    push_action (c->ctl, MCSEC_CTL_ACTION_WRITE, c, NULL);
  }
}

/* The connection ends now: out of its group (nothing more reaches it), a
 * CLOSE for the daemon; flush: its goodbye goes out first. */
static void
conn_end (mcsec_ctl_conn_t *c, const char *why, gboolean flush, gint64 now)
{
  if (c->state == C_CLOSED)
    return;
  awaiting_done (c);
  if (c->group)
    member_left (c, why, now);
  c->state = C_CLOSED;
  if (!flush)
    out_clear (&c->out);
  push_action (c->ctl, MCSEC_CTL_ACTION_CLOSE, c, NULL);
  if (flush) {
    mcsec_ctl_action_t *a = g_queue_peek_tail (&c->ctl->actions);
    a->flush = TRUE;
  }
}

/* Queue bytes to a member; a member whose queue passes max-output does not
 * read: it is disconnected (FALSE) rather than growing our memory. */
static gboolean
conn_queue (mcsec_ctl_conn_t *c, const guint8 *frame, gsize len, gint64 now)
{
  mcsec_ctl_t *ctl = c->ctl;
  if (c->state == C_CLOSED)
    return FALSE;
  if (c->out.len + len > ctl->cfg.max_output) {
    ctl->not_reading++;
    log_event (ctl, "not-reading",
               "peer=%s identity=%s queued=%zu max-output=%zu", c->peer,
               c->identity, c->out.len, ctl->cfg.max_output);
    conn_end (c, "does not read", FALSE, now);
    return FALSE;
  }
  if (c->out.len == 0)
    c->progress_ms = now;
  out_append (&c->out, frame, len);
  conn_want_write (c);
  return TRUE;
}

static void
conn_queue_simple (mcsec_ctl_conn_t *c, mcsec_mike_type_t type, guint reason,
                   const char *text, gint64 now)
{
  guint8 buf[512];
  mcsec_mike_builder_t b;
  size_t len;

  mcsec_mike_begin (&b, buf, sizeof buf, type);
  if (reason)
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, (uint16_t)reason);
  if (text)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_TEXT, text);
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    conn_queue (c, buf, len, now);
}

/* Refuse or evict: say why, then close once it is written. */
static void
conn_goodbye (mcsec_ctl_conn_t *c, mcsec_mike_type_t type, guint reason,
              const char *text, gint64 now)
{
  conn_queue_simple (c, type, reason, text, now);
  conn_end (c, text, TRUE, now);
}

static void
refuse (mcsec_ctl_conn_t *c, guint reason, const char *text, const char *group,
        gint64 now)
{
  mcsec_ctl_t *ctl = c->ctl;
  ctl->refusals++;
  if (reason < G_N_ELEMENTS (ctl->refused_by))
    ctl->refused_by[reason]++;
  log_event (ctl, "refused",
             "peer=%s identity=%s group=%s reason=%s text=\"%s\"", c->peer,
             c->identity ? c->identity : "-", group ? group : "-",
             mcsec_mike_reason_name (reason), text);
  conn_goodbye (c, MCSEC_MIKE_REFUSE, reason, text, now);
}

/* The Sender-IDs the group's members hold. */
static GHashTable *
members_ids (mcsec_ctl_group_t *g)
{
  GHashTable *set = g_hash_table_new (NULL, NULL);
  for (GList *l = g->members.head; l; l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    for (guint i = 0; i < m->n_sender_ids; i++)
      g_hash_table_add (set, GUINT_TO_POINTER (m->sender_ids[i]));
  }
  return set;
}

/* The next Sender-ID of the durable counter that is not in `avoid` (it is
 * added there); FALSE when there is none. */
static gboolean
new_sender_id (mcsec_ctl_group_t *g, GHashTable *avoid, guint32 *out)
{
  guint64 n, max = g->cfg->sender_id_bits == 32
                       ? G_GUINT64_CONSTANT (0xffffffff)
                       : (G_GUINT64_CONSTANT (1) << g->cfg->sender_id_bits) - 1;
  if (g_hash_table_size (avoid) >= max)
    return FALSE;
  for (;;) {
    guint32 id;
    if (!counter_next (g->ctl, &g->ctl->sid_ctr, &n))
      return FALSE;
    if (n == 0)
      continue;
    id = (guint32)(1 + (n - 1) % max);
    if (!g_hash_table_contains (avoid, GUINT_TO_POINTER (id))) {
      g_hash_table_add (avoid, GUINT_TO_POINTER (id));
      *out = id;
      return TRUE;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* SAs and updates: computed whole, then installed                            */

static gboolean
spi_recent (mcsec_ctl_group_t *g, guint32 spi)
{
  for (guint i = 0; i < g->n_recent_spis; i++)
    if (g->recent_spis[i] == spi)
      return TRUE;
  return g->sa.valid && g->sa.spi == spi;
}

/* A fresh SPI for the group, recorded in the store before it is used: no
 * restart hands out one the group used lately (members may still hold it
 * under another key). */
static gboolean
new_spi (mcsec_ctl_group_t *g, guint32 *out, GError **error)
{
  guint32 spi, kept[SPIS_KEPT];
  guint n = 0;
  GString *s = g_string_new (NULL);
  gchar *key;
  GBytes *v;
  gboolean ok;

  do {
    if (RAND_bytes ((unsigned char *)&spi, sizeof spi) != 1) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "no random bytes for an SPI");
      g_string_free (s, TRUE);
      return FALSE;
    }
  } while (spi < MCSEC_SPI_MIN || spi_recent (g, spi));
  kept[n++] = spi;
  for (guint i = 0; i < g->n_recent_spis && n < SPIS_KEPT; i++)
    kept[n++] = g->recent_spis[i];
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%08x", i ? " " : "", kept[i]);
  key = group_key ("spis", g->cfg->name);
  v = g_bytes_new (s->str, s->len);
  ok = store_put1 (g->ctl, key, v, error);
  g_bytes_unref (v);
  g_free (key);
  g_string_free (s, TRUE);
  if (ok) {
    memcpy (g->recent_spis, kept, n * sizeof *kept);
    g->n_recent_spis = n;
    *out = spi;
  }
  return ok;
}

/* A new SA for the group (not installed): fresh SPI, key from RAND_bytes,
 * or from the key tree's group key `group_key`. */
static gboolean
make_sa (mcsec_ctl_group_t *g, GroupSa *sa, guint32 spi,
         const guint8 *group_key, gint64 now)
{
  memset (sa, 0, sizeof *sa);
  sa->suite = g->cfg->suite;
  sa->key_len = mcsec_suite_key_material_len (g->cfg->suite);
  sa->spi = spi;
  /* key tree groups: from the group key the commit just made, so the
   * channel's rekey gives it to every member and nobody else */
  if ((group_key ? mcsec_lkh_derive_sa_key (group_key, g->cfg->name, sa->spi,
                                            sa->suite, sa->key, sa->key_len)
                 : mcsec_generate_key_material (sa->suite, sa->key,
                                                sa->key_len)) != MCSEC_OK) {
    OPENSSL_cleanse (sa, sizeof *sa);
    return FALSE;
  }
  sa->valid = 1;
  sa->created_ms = now;
  /* later SAs are used after the activation delay, once every member had
   * time to install them; a group's first SA at once.  After a restart
   * members may still hold the previous run's SA and be reconnecting, so no
   * SA made before the rejoin window ends is used before it ends */
  sa->activate_ms = MAX (now + (g->sa.valid ? g->cfg->activation_ms : 0),
                         g->ctl->recovery_until_ms);
  return TRUE;
}

static void
install_sa (mcsec_ctl_group_t *g, GroupSa *sa, const char *reason, gint64 now)
{
  if (g->sa.ids)
    g_hash_table_unref (g->sa.ids);
  OPENSSL_cleanse (&g->sa, sizeof g->sa);
  g->sa = *sa;
  g->sa.ids = members_ids (g);
  g->sa_stale = FALSE;
  OPENSSL_cleanse (sa, sizeof *sa);
  g->rekeys++;
  g->last_rekey_ms = now;
  g_free (g->last_rekey_reason);
  g->last_rekey_reason = g_strdup (reason);
  log_event (g->ctl, "rekey",
             "group=%s reason=%s spi=0x%08x suite=%s activate-in-ms=%u "
             "members=%u",
             g->cfg->name, reason, g->sa.spi, mcsec_suite_name (g->cfg->suite),
             (guint)(g->sa.activate_ms - now), g->members.length);
}

/* Build and sign an update with the SA `sa` and the group's senders; for a
 * key tree group's member (path_for), its path keys and the first rekey it
 * follows on the channel.  NULL on failure (logged); *seq_out: its number. */
static GBytes *
build_update (mcsec_ctl_group_t *g, const GroupSa *gsa,
              mcsec_ctl_conn_t *path_for, guint64 *seq_out, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  gsize cap = 2048 + MIN (g->members.length, MCSEC_MIKE_MAX_SENDERS) *
                         (MCSEC_MIKE_MAX_SPKI + 8);
  guint8 *buf;
  mcsec_mike_builder_t b;
  mcsec_mike_sa_t sa;
  guint64 seq;
  size_t len;
  guint n_senders = 0;
  GBytes *out;

  if (!counter_next (ctl, &ctl->seq_ctr, &seq))
    return NULL;
  if (cap > MCSEC_MIKE_MAX_FRAME + 4)
    cap = MCSEC_MIKE_MAX_FRAME + 4;
  buf = g_malloc (cap);
  mcsec_mike_begin (&b, buf, cap, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, g->cfg->name);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, g->cfg->deactivation_ms);
  sa.spi = gsa->spi;
  sa.suite = gsa->suite;
  sa.key = gsa->key;
  sa.key_len = gsa->key_len;
  sa.activate_in_ms =
      gsa->activate_ms > now ? (uint32_t)(gsa->activate_ms - now) : 0;
  sa.lifetime_s = g->cfg->key_lifetime_s;
  mcsec_mike_put_sa (&b, &sa);
  for (GList *l = g->members.head; l && n_senders < MCSEC_MIKE_MAX_SENDERS;
       l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    for (guint i = 0; i < m->n_sender_ids; i++)
      if (n_senders < MCSEC_MIKE_MAX_SENDERS) {
        mcsec_mike_put_sender (&b, m->sender_ids[i], m->spki, m->spki_len);
        n_senders++;
      }
  }
  if (path_for) {
    mcsec_lkh_key_t path[MCSEC_MIKE_MAX_PATH];
    size_t n =
        mcsec_lkh_path (g->tree, path_for->leaf, path, G_N_ELEMENTS (path));
    for (size_t i = 0; i < n; i++)
      mcsec_mike_put_path_key (&b, path[i].node, path[i].key);
    OPENSSL_cleanse (path, sizeof path);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_NEXT_REKEY,
                        mcsec_rekey_tx_next_seq (g->tx));
  }
  mcsec_mike_sign (&b, ctl->cfg.update_key);
  if (mcsec_mike_finish (&b, &len) != MCSEC_OK) {
    OPENSSL_cleanse (buf, cap);
    g_free (buf);
    log_event (ctl, "error", "group=%s what=\"cannot build the update\"",
               g->cfg->name);
    return NULL;
  }
  out = g_bytes_new (buf, len);
  OPENSSL_cleanse (buf, cap);
  g_free (buf);
  *seq_out = seq;
  return out;
}

/* Send the current update to one member, or to all of them. */
static void
group_send_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *only, gint64 now)
{
  gsize len;
  const guint8 *data;
  GList *l, *next;

  if (g->update == NULL)
    return;
  data = g_bytes_get_data (g->update, &len);
  if (only) {
    if (conn_queue (only, data, len, now)) {
      g->updates_sent++;
      g->ctl->updates_sent++;
    }
    return;
  }
  for (l = g->members.head; l; l = next) {
    mcsec_ctl_conn_t *m = l->data;
    next = l->next; /* a member that does not read leaves the list */
    if (conn_queue (m, data, len, now)) {
      g->updates_sent++;
      g->ctl->updates_sent++;
    }
  }
}

/* Fail closed: the group's key could not be rotated.  Nobody gets the old
 * key from now on (the update that carries it is dropped, joins wait);
 * the members keep what they have; tick() tries again. */
static void
group_fail (mcsec_ctl_group_t *g, const char *why, gint64 now)
{
  g->rotation_failures++;
  group_drop_update (g);
  if (!g->failed || g_strcmp0 (g->failed_reason, why) != 0)
    log_event (g->ctl, "rekey-failed",
               "group=%s why=\"%s\" members=%u action=\"key withheld; "
               "retrying every %u ms\"",
               g->cfg->name, why, g->members.length, RETRY_MS);
  g->failed = TRUE;
  g_free (g->failed_reason);
  g->failed_reason = g_strdup (why);
  g->retry_due = now + RETRY_MS;
}

static void
group_recovered (mcsec_ctl_group_t *g)
{
  if (g->failed)
    log_event (g->ctl, "rekey-recovered", "group=%s after=\"%s\"", g->cfg->name,
               g->failed_reason);
  g->failed = FALSE;
  g->retry_due = 0;
  g_free (g->failed_reason);
  g->failed_reason = NULL;
}

/* Unicast groups: a new SA (new_key) or the same one to a new member set;
 * one signed update for everyone.  All or nothing. */
static gboolean
group_rotate (mcsec_ctl_group_t *g, gboolean new_key, const char *reason,
              gint64 now)
{
  GroupSa sa;
  GBytes *u;
  guint64 seq;
  GError *err = NULL;
  guint32 spi;

  if (new_key || !g->sa.valid) {
    if (!new_spi (g, &spi, &err)) {
      gchar *why = g_strdup_printf ("no SPI: %s", err->message);
      g_error_free (err);
      group_fail (g, why, now);
      g_free (why);
      return FALSE;
    }
    if (!make_sa (g, &sa, spi, NULL, now)) {
      group_fail (g, "no random bytes for a key", now);
      return FALSE;
    }
  } else {
    sa = g->sa;
    sa.ids = NULL;
  }
  u = build_update (g, &sa, NULL, &seq, now);
  if (u == NULL) {
    OPENSSL_cleanse (&sa, sizeof sa);
    group_fail (g, "cannot number or sign the update", now);
    return FALSE;
  }
  /* commit */
  if (new_key || !g->sa.valid)
    install_sa (g, &sa, reason, now);
  OPENSSL_cleanse (&sa, sizeof sa);
  group_drop_update (g);
  g->update = u;
  g->seq = seq;
  group_recovered (g);
  group_send_update (g, NULL, now);
  return TRUE;
}

/* ---- key tree groups: the rekey channel ---- */

static void
channel_send_rekey (mcsec_ctl_group_t *g, guint64 seq)
{
  unsigned parts = mcsec_rekey_tx_parts (g->tx, seq);
  for (unsigned p = 0; p < parts; p++) {
    const guint8 *d;
    gsize len = mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
    if (len) {
      push_action (g->ctl, MCSEC_CTL_ACTION_CHANNEL, NULL, g);
      ((mcsec_ctl_action_t *)g_queue_peek_tail (&g->ctl->actions))->data =
          g_bytes_new (d, len);
    }
  }
}

static void
channel_heartbeat (mcsec_ctl_group_t *g)
{
  guint8 hb[MCSEC_REKEY_MAX_DATAGRAM];
  size_t len;
  if (mcsec_rekey_tx_heartbeat (g->tx, hb, sizeof hb, &len) == MCSEC_OK) {
    push_action (g->ctl, MCSEC_CTL_ACTION_CHANNEL, NULL, g);
    ((mcsec_ctl_action_t *)g_queue_peek_tail (&g->ctl->actions))->data =
        g_bytes_new (hb, len);
  }
}

void
mcsec_ctl_channel_sent (mcsec_ctl_group_t *g, gsize len, const char *error)
{
  if (error == NULL) {
    g->channel_datagrams++;
    g->channel_bytes += len;
    return;
  }
  /* members notice the silence and ask over their connections */
  if (g->channel_errors++ % 1000 == 0)
    log_event (g->ctl, "channel-error",
               "group=%s channel=%s errors=%" G_GUINT64_FORMAT " error=\"%s\"",
               g->cfg->name, g->cfg->channel, g->channel_errors, error);
}

static void
add_timer (mcsec_ctl_group_t *g, gint64 due, TimerKind kind, guint64 seq)
{
  GroupTimer t = {due, kind, seq};
  g_array_append_val (g->timers, t);
}

/* The channel's datagrams of rekeys first..last, over a connection. */
static void
queue_rekey (mcsec_ctl_conn_t *c, mcsec_ctl_group_t *g, guint64 first,
             guint64 last, gint64 now)
{
  for (guint64 seq = first; seq <= last; seq++) {
    unsigned parts = mcsec_rekey_tx_parts (g->tx, seq);
    for (unsigned p = 0; p < parts; p++) {
      const guint8 *d;
      gsize len = mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
      if (!conn_queue (c, d, len, now))
        return;
    }
  }
}

/* A key tree group's member gets its path (after the commit that placed
 * it, or to resynchronise). */
static void
send_path_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gint64 now)
{
  guint64 seq;
  GBytes *u = build_update (g, &g->sa, c, &seq, now);
  gsize len;
  const guint8 *data;

  if (u == NULL)
    return;
  g->seq = MAX (g->seq, seq);
  data = g_bytes_get_data (u, &len);
  if (conn_queue (c, data, len, now)) {
    g->updates_sent++;
    g->ctl->updates_sent++;
  }
  wipe_bytes (u);
}

/* Commit the tree's queued changes as one rekey: a new group key, the SA
 * derived from it, one signed message on the channel for every member
 * present before; newcomers get their path over their connections.  The
 * durable numbers and the SPI are reserved before the tree changes; the
 * tree's commit is all or nothing (mcsec_lkh_commit). */
static void
group_commit (mcsec_ctl_group_t *g, const char *reason, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  const mcsec_lkh_entry_t *e;
  mcsec_mike_sender_t *senders;
  mcsec_mike_sa_t msa = {0};
  mcsec_rekey_t r = {0};
  GroupSa sa;
  size_t n, ns = 0, bytes = 0;
  guint64 seq = 0;
  guint32 spi;
  unsigned parts = 0;
  mcsec_status_t st;
  GError *err = NULL;
  GList *l, *next;

  g->batch_due = 0;
  g_clear_pointer (&g->batch_reason, g_free);
  /* 1. everything that can fail without touching the tree */
  if (!counter_ensure (ctl, &g->rekey_ctr, mcsec_rekey_tx_next_seq (g->tx))) {
    group_fail (g, "cannot reserve a rekey number", now);
    return;
  }
  if (!new_spi (g, &spi, &err)) {
    gchar *why = g_strdup_printf ("no SPI: %s", err->message);
    g_error_free (err);
    group_fail (g, why, now);
    g_free (why);
    return;
  }
  /* 2. the tree: all or nothing */
  st = mcsec_lkh_commit (g->tree, &e, &n);
  if (st) {
    gchar *why = g_strdup_printf ("key tree: %s", mcsec_status_message (st));
    group_fail (g, why, now);
    g_free (why);
    return;
  }
  /* 3. after the tree moved, members must follow it: if the rekey cannot
   * be made, each gets its path over its connection once it can */
  if (!make_sa (g, &sa, spi, mcsec_lkh_group_key (g->tree), now)) {
    g->resync_all = TRUE;
    group_fail (g, "cannot derive the SA key", now);
    return;
  }
  senders = g_new0 (mcsec_mike_sender_t, MCSEC_MIKE_MAX_SENDERS);
  for (l = g->members.head; l; l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    for (guint i = 0; i < m->n_sender_ids && ns < MCSEC_MIKE_MAX_SENDERS; i++) {
      senders[ns].sender_id = m->sender_ids[i];
      senders[ns].spki = m->spki;
      senders[ns++].spki_len = m->spki_len;
    }
  }
  msa.spi = sa.spi;
  msa.suite = sa.suite;
  msa.activate_in_ms =
      sa.activate_ms > now ? (uint32_t)(sa.activate_ms - now) : 0;
  msa.lifetime_s = g->cfg->key_lifetime_s;
  r.entries = e;
  r.n = n;
  r.sa = &msa;
  r.deactivation_ms = g->cfg->deactivation_ms;
  r.senders = senders;
  r.n_senders = ns;
  st = mcsec_rekey_tx_publish (g->tx, &r, &seq, &parts);
  g_free (senders);
  if (st) {
    gchar *why = g_strdup_printf ("cannot publish the rekey: %s",
                                  mcsec_status_message (st));
    OPENSSL_cleanse (&sa, sizeof sa);
    g->resync_all = TRUE;
    group_fail (g, why, now);
    g_free (why);
    return;
  }
  /* 4. commit */
  install_sa (g, &sa, reason, now);
  channel_send_rekey (g, seq);
  for (guint k = 1; k <= g->cfg->redundancy; k++)
    add_timer (g, now + k * MCSEC_REKEY_REPEAT_MS, TIMER_RESEND, seq);
  add_timer (g, now + MCSEC_REKEY_FOLLOWUP1_MS, TIMER_FOLLOWUP, 0);
  add_timer (g, now + MCSEC_REKEY_FOLLOWUP2_MS, TIMER_FOLLOWUP, 0);
  for (unsigned p = 0; p < parts; p++) {
    const guint8 *d;
    bytes += mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
  }
  g->channel_rekeys++;
  g->last_rekey_bytes = bytes;
  g->last_rekey_entries = n;
  g->last_rekey_datagrams = parts;
  log_event (ctl, "rekey-sent",
             "group=%s seq=%" G_GUINT64_FORMAT " wrapped-keys=%zu datagrams=%u "
             "bytes=%zu members=%zu depth=%u",
             g->cfg->name, seq, n, parts, bytes, mcsec_lkh_members (g->tree),
             mcsec_lkh_depth (g->tree));
  for (l = g->members.head; l; l = next) {
    mcsec_ctl_conn_t *m = l->data;
    next = l->next;
    if (m->awaiting_path || g->resync_all) {
      m->awaiting_path = FALSE;
      send_path_update (g, m, now);
    } else if (m->unreached_until_ms > now) {
      queue_rekey (m, g, seq, seq, now);
      g->direct_rekeys++;
    }
  }
  g->resync_all = FALSE;
  group_recovered (g);
}

/* A join or leave of a key tree group: committed with the others of the
 * batch interval. */
static void
group_batch (mcsec_ctl_group_t *g, const char *reason, gint64 now)
{
  if (g->batch_reason && strcmp (g->batch_reason, reason) != 0) {
    g_free (g->batch_reason);
    g->batch_reason = g_strdup ("batch"); /* joins and leaves */
  } else if (g->batch_reason == NULL) {
    g->batch_reason = g_strdup (reason);
  }
  if (g->batch_due == 0)
    g->batch_due = now + g->cfg->batch_ms;
}

static void
tree_leave (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c)
{
  if (g->tree && c->in_tree) {
    if (mcsec_lkh_leave (g->tree, c->leaf) != MCSEC_OK)
      log_event (g->ctl, "error", "group=%s what=\"key tree: no leaf %u\"",
                 g->cfg->name, c->leaf);
    c->in_tree = FALSE;
  }
}

/* A member asks for the channel's rekeys from SEQ on (it lacks them, or
 * the channel is silent for it), or for its path (SEQ 0, or older than
 * the controller keeps).  At most repair-per-s a second (a burst of
 * repair-burst): what a member asks beyond that is ignored, and a member
 * that asks without reading is disconnected by its output cap. */
static void
group_repair (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, guint64 from,
              gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  guint64 oldest, newest;

  c->repair_tokens +=
      (double)(now - c->repair_tokens_ms) * ctl->cfg.repair_per_s / 1000.0;
  c->repair_tokens_ms = now;
  if (c->repair_tokens > ctl->cfg.repair_burst)
    c->repair_tokens = ctl->cfg.repair_burst;
  if (c->repair_tokens < 1.0) {
    g->repairs_limited++;
    return;
  }
  c->repair_tokens -= 1.0;
  if (c->awaiting_path || g->failed)
    return; /* its path comes with the next commit */
  mcsec_rekey_tx_range (g->tx, &oldest, &newest);
  if (from == 0 || (newest && from < oldest)) {
    if (now - c->last_resync_ms < RESYNC_MIN_MS)
      return;
    c->last_resync_ms = now;
    g->resyncs_served++;
    log_event (ctl, "resync", "group=%s identity=%s asked=%" G_GUINT64_FORMAT,
               g->cfg->name, c->identity, from);
    send_path_update (g, c, now);
    return;
  }
  if (from > newest) {
    /* nothing newer: a poll of a member that hears no heartbeat; the
     * channel does not reach it, so rekeys go to it directly for a while
     * (it polls again every MCSEC_MIKE_CHANNEL_SILENT_MS while deaf) */
    g->repair_polls++;
    c->unreached_until_ms = now + 3 * MCSEC_MIKE_CHANNEL_SILENT_MS;
    return;
  }
  g->repairs_served++;
  queue_rekey (c, g, from, newest, now);
}

/* Rekey (or only redistribute, when new_key is FALSE) to every member. */
static void
group_change (mcsec_ctl_group_t *g, gboolean new_key, const char *reason,
              gint64 now)
{
  if (g->tree) {
    /* a new group key at once, with whatever the batch holds */
    if (mcsec_lkh_refresh (g->tree) != MCSEC_OK) {
      group_fail (g, "key tree: out of memory", now);
      return;
    }
    group_commit (g, reason, now);
    return;
  }
  group_rotate (g, new_key, reason, now);
}

static void
member_left (mcsec_ctl_conn_t *c, const char *why, gint64 now)
{
  mcsec_ctl_group_t *g = c->group;

  (void)now;
  g_queue_unlink (&g->members, &c->group_link);
  if (g_hash_table_lookup (g->by_identity, c->identity) == c)
    g_hash_table_remove (g->by_identity, c->identity);
  log_event (g->ctl, "left", "group=%s identity=%s sender-id=%u why=\"%s\"",
             g->cfg->name, c->identity, c->sender_id, why);
  c->group = NULL;
  tree_leave (g, c);
  if (c->state == C_MEMBER)
    c->state = C_AWAIT_JOIN;
  if (g->ctl->stopping)
    return;
  /* the last one out: no rekey now (nobody to send it to), but the next
   * member must not be given the SA the departed one holds */
  if (g->members.length == 0 && g->cfg->rekey_on_leave)
    g->sa_stale = TRUE;
  /* forward secrecy: the departed member gets nothing new; the rekey
   * runs when the operation that removed it ends (run_deferred) */
  if (g->tree || g->cfg->rekey_on_leave)
    g->leave_pending = TRUE;
  else if (c->sender_id)
    g->sender_left_pending = TRUE;
}

static void
run_deferred (mcsec_ctl_t *ctl, gint64 now)
{
  for (guint round = 0; round < 8; round++) {
    gboolean any = FALSE;
    for (guint i = 0; i < ctl->groups->len; i++) {
      mcsec_ctl_group_t *g = ctl->groups->pdata[i];
      gboolean leave = g->leave_pending, sender = g->sender_left_pending;
      g->leave_pending = g->sender_left_pending = FALSE;
      if (!(leave || sender) || ctl->stopping)
        continue;
      any = TRUE;
      if (g->members.length == 0)
        continue;
      if (g->tree)
        group_batch (g, "leave", now);
      else if (leave)
        group_change (g, TRUE, "leave", now);
      else
        group_change (g, FALSE, "sender-left", now);
    }
    if (!any)
      return;
  }
}

/* ------------------------------------------------------------------------ */
/* Messages from members                                                      */

static gboolean
safe_token (const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"' ||
        s[i] == '\\' || s[i] == ';')
      return FALSE;
  return TRUE;
}

static const char *
role_name (guint role)
{
  return role == MCSEC_MIKE_ROLE_BOTH     ? "both"
         : role == MCSEC_MIKE_ROLE_SENDER ? "sender"
                                          : "receiver";
}

/* The connection no longer waits for its JOIN (joined, or gone). */
static void
awaiting_done (mcsec_ctl_conn_t *c)
{
  mcsec_ctl_t *ctl = c->ctl;
  guint n;
  if (!c->counted_awaiting)
    return;
  c->counted_awaiting = FALSE;
  n = GPOINTER_TO_UINT (g_hash_table_lookup (ctl->awaiting, c->identity));
  if (n <= 1)
    g_hash_table_remove (ctl->awaiting, c->identity);
  else
    g_hash_table_insert (ctl->awaiting, g_strdup (c->identity),
                         GUINT_TO_POINTER (n - 1));
}

static void
handle_join (mcsec_ctl_conn_t *c, const mcsec_mike_msg_t *msg, gint64 now)
{
  mcsec_ctl_t *ctl = c->ctl;
  gchar *name = g_strndup ((const char *)msg->group, msg->group_len);
  mcsec_ctl_group_t *g = safe_token (name, strlen (name))
                             ? g_hash_table_lookup (ctl->group_names, name)
                             : NULL;
  gboolean may_send, may_receive, wants_send, rekey;
  guint8 wbuf[2048];
  mcsec_mike_builder_t b;
  size_t len;
  mcsec_ctl_conn_t *old;

  if (g == NULL) {
    refuse (c, MCSEC_MIKE_REASON_UNKNOWN_GROUP, "no such group",
            safe_token (name, strlen (name)) ? name : "(not printable)", now);
    goto out;
  }
  may_send = g_hash_table_contains (g->senders, c->identity);
  may_receive = may_send || g_hash_table_contains (g->receivers, c->identity);
  wants_send = (msg->role & MCSEC_MIKE_ROLE_SENDER) != 0;
  if (g_hash_table_contains (g->evicted, c->identity)) {
    refuse (c, MCSEC_MIKE_REASON_NOT_AUTHORISED, "evicted by an administrator",
            name, now);
    goto out;
  }
  if (!may_receive) {
    refuse (c, MCSEC_MIKE_REASON_NOT_AUTHORISED,
            "identity not in the group's access lists", name, now);
    goto out;
  }
  if (wants_send && !may_send) {
    refuse (c, MCSEC_MIKE_REASON_ROLE_NOT_ALLOWED,
            "identity may receive but not send", name, now);
    goto out;
  }
  if (g->failed) {
    /* fail closed: the key that could not be rotated is handed to nobody;
     * the member reconnects with backoff and is served once it recovers */
    log_event (ctl, "join-deferred",
               "group=%s identity=%s why=\"key rotation failed: %s\"",
               g->cfg->name, c->identity, g->failed_reason);
    conn_end (c, "group key cannot be rotated", FALSE, now);
    goto out;
  }
  if (wants_send) {
    const guint8 *p = msg->signing_key;
    EVP_PKEY *k = p ? d2i_PUBKEY (NULL, &p, (long)msg->signing_key_len) : NULL;
    int id = k ? EVP_PKEY_get_base_id (k) : 0;
    int ok = k && p == msg->signing_key + msg->signing_key_len &&
             (id == EVP_PKEY_ED25519 ||
              (id == EVP_PKEY_EC && EVP_PKEY_get_bits (k) == 256));
    EVP_PKEY_free (k);
    if (!ok) {
      refuse (c, MCSEC_MIKE_REASON_BAD_REQUEST,
              "a sender needs an Ed25519 or ECDSA P-256 signing key", name,
              now);
      goto out;
    }
    memcpy (c->spki, msg->signing_key, msg->signing_key_len);
    c->spki_len = msg->signing_key_len;
  }
  /* one connection per identity: the newer one wins */
  old = g_hash_table_lookup (g->by_identity, c->identity);
  if (old) {
    g_queue_unlink (&g->members, &old->group_link);
    g_hash_table_remove (g->by_identity, old->identity);
    old->group = NULL;
    tree_leave (g, old); /* the newcomer's join rekeys the tree */
    log_event (ctl, "replaced", "group=%s identity=%s", g->cfg->name,
               c->identity);
    conn_goodbye (old, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_DUPLICATE,
                  "the same identity joined again", now);
  }
  /* a new key when asked (backward secrecy), unless the newest SA is not in
   * use yet: nothing was protected with it, the newcomer may have it */
  rekey = !g->sa.valid || g->tree || g->sa_stale ||
          (g->cfg->rekey_on_join && g->sa.activate_ms <= now);
  if (wants_send) {
    guint max = g->cfg->sender_id_bits == 32
                    ? G_MAXUINT
                    : (1u << g->cfg->sender_id_bits) - 1;
    guint count = msg->sender_count ? msg->sender_count : 1;
    GHashTable *avoid;
    if (!rekey && g_hash_table_size (g->sa.ids) + count > max)
      rekey = TRUE; /* every Sender-ID of this key is used */
    /* under the current key: none it ever had; under a new one: none a
     * member holds (the new key starts with those) */
    avoid = rekey ? members_ids (g) : g_hash_table_ref (g->sa.ids);
    for (guint i = 0; i < count; i++)
      if (!new_sender_id (g, avoid, &c->sender_ids[i])) {
        g_hash_table_unref (avoid);
        refuse (c, MCSEC_MIKE_REASON_SENDER_IDS_EXHAUSTED, "no free Sender-ID",
                name, now);
        goto out;
      }
    g_hash_table_unref (avoid);
    c->n_sender_ids = count;
    c->sender_id = c->sender_ids[0];
  }
  c->role = msg->role;
  c->group = g;
  c->state = C_MEMBER;
  awaiting_done (c);
  g_queue_push_tail_link (&g->members, &c->group_link);
  g_hash_table_insert (g->by_identity, c->identity, c);
  ctl->registrations++;

  mcsec_mike_begin (&b, wbuf, sizeof wbuf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, g->cfg->name);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, c->identity);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)c->role);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl->update_spki,
                  ctl->update_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS,
                     (uint8_t)g->cfg->sender_id_bits);
  for (guint i = 0; i < c->n_sender_ids; i++)
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, c->sender_ids[i]);
  if (g->cfg->address && *g->cfg->address)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_ADDRESS, g->cfg->address);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_PORT, g->cfg->port);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, g->cfg->sam);
  if (g->tree) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS,
                           g->cfg->channel_address);
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, g->cfg->channel_port);
  }
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    conn_queue (c, wbuf, len, now);
  log_event (ctl, "joined",
             "group=%s identity=%s role=%s sender-id=%u sender-ids=%u peer=%s",
             g->cfg->name, c->identity, role_name (c->role), c->sender_id,
             c->n_sender_ids, c->peer);
  if (g->tree) {
    if (mcsec_lkh_join (g->tree, &c->leaf) != MCSEC_OK) {
      g_queue_unlink (&g->members, &c->group_link);
      g_hash_table_remove (g->by_identity, c->identity);
      c->group = NULL;
      refuse (c, MCSEC_MIKE_REASON_SHUTTING_DOWN, "key tree: out of memory",
              name, now);
      goto out;
    }
    c->in_tree = c->awaiting_path = TRUE;
    group_batch (g, "join", now);
  } else if (rekey)
    group_change (g, TRUE, "join", now);
  else if (c->sender_id)
    group_change (g, FALSE, "sender-joined", now); /* everyone needs its key */
  else
    group_send_update (g, c, now);
out:
  g_free (name);
}

static void
handle_frame (mcsec_ctl_conn_t *c, const guint8 *frame, gsize len, gint64 now)
{
  mcsec_ctl_t *ctl = c->ctl;
  mcsec_mike_msg_t *msg = ctl->msg;
  mcsec_status_t st;

  /* a member sends a ping every 2 s, an ACK per update and repairs at
   * most repair-rate a second: more than FRAMES_PER_S is a flood */
  c->frame_tokens += (double)(now - c->frame_tokens_ms) * FRAMES_PER_S / 1000.0;
  c->frame_tokens_ms = now;
  if (c->frame_tokens > FRAMES_BURST)
    c->frame_tokens = FRAMES_BURST;
  if (c->frame_tokens < 1.0) {
    ctl->flooding++;
    log_event (ctl, "flooding", "peer=%s identity=%s frames-per-s-max=%d",
               c->peer, c->identity, FRAMES_PER_S);
    conn_end (c, "sends too many messages", FALSE, now);
    return;
  }
  c->frame_tokens -= 1.0;
  c->last_rx_ms = now; /* alive: a whole message, not a trickle of bytes */
  st = mcsec_mike_parse (frame, len, msg);
  if (st == MCSEC_OK && c->state == C_AWAIT_JOIN &&
      msg->type != MCSEC_MIKE_JOIN)
    st = MCSEC_ERR_MALFORMED; /* nothing but a JOIN before the JOIN */
  if (st) {
    ctl->rejected_messages++;
    if (c->state == C_AWAIT_JOIN)
      refuse (c, MCSEC_MIKE_REASON_BAD_REQUEST, "malformed message", NULL, now);
    else
      conn_end (c, "malformed message", FALSE, now);
    goto out;
  }
  switch (msg->type) {
  case MCSEC_MIKE_JOIN:
    if (c->state != C_AWAIT_JOIN)
      conn_end (c, "JOIN twice", FALSE, now);
    else
      handle_join (c, msg, now);
    break;
  case MCSEC_MIKE_ACK:
    if (c->state == C_MEMBER && msg->seq > c->acked_seq &&
        msg->seq <= c->group->seq) {
      c->acked_seq = msg->seq;
      ctl->acks++;
    }
    break;
  case MCSEC_MIKE_PING:
    conn_queue_simple (c, MCSEC_MIKE_PONG, 0, NULL, now);
    break;
  case MCSEC_MIKE_REPAIR:
    if (c->state != C_MEMBER || c->group->tree == NULL) {
      ctl->rejected_messages++;
      conn_end (c, "REPAIR outside a key tree group", FALSE, now);
      break;
    }
    group_repair (c->group, c, msg->seq, now);
    break;
  case MCSEC_MIKE_PONG:
    break;
  case MCSEC_MIKE_LEAVE:
    ctl->leaves++;
    conn_end (c, "left", FALSE, now);
    break;
  default:
    ctl->rejected_messages++;
    conn_end (c, "unexpected message", FALSE, now);
  }
out:
  OPENSSL_cleanse (msg, sizeof *msg);
}

mcsec_ctl_conn_t *
mcsec_ctl_conn_new (mcsec_ctl_t *ctl, const char *peer, const char *identity,
                    gint64 now_ms, gint64 real_us)
{
  mcsec_ctl_conn_t *c = g_new0 (mcsec_ctl_conn_t, 1);
  c->ctl = ctl;
  c->all_link.data = c->group_link.data = c;
  c->peer = g_strdup (peer ? peer : "-");
  c->identity = identity && safe_token (identity, strlen (identity))
                    ? g_strdup (identity)
                    : NULL;
  c->started_ms = c->last_rx_ms = c->progress_ms = now_ms;
  c->joined_real_us = real_us;
  c->repair_tokens = ctl->cfg.repair_burst;
  c->repair_tokens_ms = now_ms;
  c->frame_tokens = FRAMES_BURST;
  c->frame_tokens_ms = now_ms;
  c->state = C_AWAIT_JOIN;
  g_queue_push_tail_link (&ctl->conns, &c->all_link);
  if (c->identity == NULL) {
    log_event (ctl, "handshake-failed", "peer=%s why=\"%s\"", c->peer,
               "certificate without a usable common name");
    conn_end (c, "no identity", FALSE, now_ms);
  } else if (!g_hash_table_contains (ctl->admitted, c->identity)) {
    /* a certificate of the CA for nobody the configuration lists: told so
     * and closed at once, before it can hold anything (before its JOIN);
     * logged once a second at most, with the count */
    ctl->unlisted++;
    ctl->refusals++;
    ctl->refused_by[MCSEC_MIKE_REASON_NOT_AUTHORISED]++;
    if (now_ms - ctl->unlisted_log_ms >= 1000) {
      ctl->unlisted_log_ms = now_ms;
      log_event (ctl, "refused",
                 "peer=%s identity=%s group=- reason=not-authorised "
                 "text=\"identity in no access list\" "
                 "count=%" G_GUINT64_FORMAT,
                 c->peer, c->identity, ctl->unlisted);
    }
    conn_goodbye (c, MCSEC_MIKE_REFUSE, MCSEC_MIKE_REASON_NOT_AUTHORISED,
                  "identity not in the group's access lists", now_ms);
  } else {
    guint n =
        GPOINTER_TO_UINT (g_hash_table_lookup (ctl->awaiting, c->identity));
    if (n >= AWAIT_PER_IDENTITY) {
      log_event (ctl, "refused",
                 "peer=%s identity=%s group=- reason=duplicate "
                 "text=\"%u connections of this identity wait to join\"",
                 c->peer, c->identity, n);
      conn_end (c, "too many connections before JOIN", FALSE, now_ms);
    } else {
      g_hash_table_insert (ctl->awaiting, g_strdup (c->identity),
                           GUINT_TO_POINTER (n + 1));
      c->counted_awaiting = TRUE;
    }
  }
  return c;
}

void
mcsec_ctl_conn_set_user_data (mcsec_ctl_conn_t *c, gpointer data)
{
  c->user_data = data;
}

gpointer
mcsec_ctl_conn_get_user_data (const mcsec_ctl_conn_t *c)
{
  return c->user_data;
}

const char *
mcsec_ctl_conn_identity (const mcsec_ctl_conn_t *c)
{
  return c->identity;
}

void
mcsec_ctl_conn_input (mcsec_ctl_conn_t *c, const guint8 *data, gsize len,
                      gint64 now_ms)
{
  const guint8 *frame;
  gsize flen;

  /* in slices: each frame taken out of the reader moves what follows it,
   * so a flood of tiny frames must not sit in one big buffer */
  while (len && c->state != C_CLOSED) {
    gsize n = MIN (len, FEED_SLICE);
    if (c->state == C_AWAIT_JOIN && c->reader.len + n > JOIN_MAX) {
      c->ctl->rejected_messages++;
      conn_end (c, "too much before its JOIN", FALSE, now_ms);
      break;
    }
    if (mcsec_mike_reader_feed (&c->reader, data, n) != MCSEC_OK) {
      c->ctl->rejected_messages++;
      conn_end (c, "bad framing", FALSE, now_ms);
      break;
    }
    data += n;
    len -= n;
    while (c->state != C_CLOSED &&
           (flen = mcsec_mike_reader_next (&c->reader, &frame)) > 0)
      handle_frame (c, frame, flen, now_ms);
  }
  /* nothing partial left: the buffer goes (50,000 idle members) */
  if (c->state != C_CLOSED && c->reader.len == 0)
    mcsec_mike_reader_clear (&c->reader);
  run_deferred (c->ctl, now_ms);
}

gsize
mcsec_ctl_conn_output (const mcsec_ctl_conn_t *c, const guint8 **data)
{
  *data = c->out.data;
  return c->out.len;
}

void
mcsec_ctl_conn_written (mcsec_ctl_conn_t *c, gsize n, gint64 now_ms)
{
  if (n == 0)
    return;
  out_consume (&c->out, MIN (n, c->out.len));
  c->progress_ms = now_ms;
}

void
mcsec_ctl_conn_lost (mcsec_ctl_conn_t *c, const char *why, gint64 now_ms)
{
  if (c->state == C_CLOSED)
    return;
  awaiting_done (c);
  if (c->group && g_strcmp0 (why, "left") != 0)
    c->ctl->disconnects++;
  if (c->group)
    member_left (c, why, now_ms);
  c->state = C_CLOSED;
  out_clear (&c->out);
  run_deferred (c->ctl, now_ms);
}

void
mcsec_ctl_conn_not_reading (mcsec_ctl_conn_t *c, const char *detail,
                            gint64 now_ms)
{
  if (c->state == C_CLOSED)
    return;
  c->ctl->not_reading++;
  log_event (c->ctl, "not-reading", "peer=%s identity=%s detail=\"%s\"",
             c->peer, c->identity ? c->identity : "-", detail);
  conn_end (c, "does not read", FALSE, now_ms);
  run_deferred (c->ctl, now_ms);
}

static gboolean
action_is_for (gconstpointer a, gconstpointer c)
{
  return ((const mcsec_ctl_action_t *)a)->conn == c ? 0 : 1;
}

void
mcsec_ctl_conn_free (mcsec_ctl_conn_t *c)
{
  mcsec_ctl_t *ctl = c->ctl;
  GList *l;

  if (c->state != C_CLOSED)
    mcsec_ctl_conn_lost (c, "freed", c->last_rx_ms);
  /* no action may name it any more (a walk only when one does: freeing
   * 50,000 connections at a stop stays linear) */
  while (c->n_actions &&
         (l = g_queue_find_custom (&ctl->actions, c,
                                   (GCompareFunc)action_is_for)) != NULL) {
    mcsec_ctl_action_t *a = l->data;
    c->n_actions--;
    g_queue_delete_link (&ctl->actions, l);
    mcsec_ctl_action_clear (a);
    g_free (a);
  }
  g_queue_unlink (&ctl->conns, &c->all_link);
  mcsec_mike_reader_clear (&c->reader);
  out_clear (&c->out);
  g_free (c->peer);
  g_free (c->identity);
  OPENSSL_cleanse (c, sizeof *c);
  g_free (c);
}

/* ------------------------------------------------------------------------ */
/* Time                                                                       */

static gint64
min_due (gint64 a, gint64 b)
{
  if (a == 0)
    return b;
  if (b == 0)
    return a;
  return MIN (a, b);
}

static void
sweep (mcsec_ctl_t *ctl, gint64 now)
{
  GList *l, *next;

  for (l = ctl->conns.head; l; l = next) {
    mcsec_ctl_conn_t *c = l->data;
    next = l->next;
    if (c->state == C_AWAIT_JOIN && now - c->started_ms > JOIN_TIMEOUT_MS)
      conn_end (c, "too slow to join", FALSE, now);
    else if (c->state == C_MEMBER && now - c->last_rx_ms > MCSEC_MIKE_DEAD_MS)
      conn_end (c, "silent", FALSE, now);
    else if (c->state != C_CLOSED && c->out.len &&
             now - c->progress_ms > (gint64)ctl->cfg.output_stall_ms) {
      ctl->not_reading++;
      log_event (ctl, "not-reading",
                 "peer=%s identity=%s queued=%zu stalled-ms=%" G_GINT64_FORMAT,
                 c->peer, c->identity ? c->identity : "-", c->out.len,
                 now - c->progress_ms);
      conn_end (c, "does not read", FALSE, now);
    }
  }
  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    if (g->sa.valid && g->members.length && !g->failed &&
        now - g->sa.created_ms >= (gint64)g->cfg->key_lifetime_s * 1000)
      group_change (g, TRUE, "lifetime", now);
  }
}

gint64
mcsec_ctl_tick (mcsec_ctl_t *ctl, gint64 now)
{
  gint64 next = 0;

  if (now >= ctl->sweep_due) {
    ctl->sweep_due = now + SWEEP_MS;
    sweep (ctl, now);
  }
  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    if (g->failed && now >= g->retry_due && !ctl->stopping) {
      g->retry_due = now + RETRY_MS;
      if (g->tree) {
        group_batch (g, "retry", now);
        g->batch_due = now;
      } else {
        group_rotate (g, TRUE, "retry", now);
      }
    }
    if (g->batch_due && now >= g->batch_due) {
      gchar *reason = g_steal_pointer (&g->batch_reason);
      group_commit (g, reason ? reason : "batch", now);
      g_free (reason);
    }
    if (g->tree && now >= g->heartbeat_due) {
      channel_heartbeat (g);
      g->heartbeat_due = now + MCSEC_REKEY_HEARTBEAT_MS;
    }
    for (guint t = 0; t < g->timers->len;) {
      GroupTimer *gt = &g_array_index (g->timers, GroupTimer, t);
      if (now < gt->due) {
        next = min_due (next, gt->due);
        t++;
        continue;
      }
      if (gt->kind == TIMER_RESEND)
        channel_send_rekey (g, gt->seq);
      else
        channel_heartbeat (g);
      g_array_remove_index_fast (g->timers, t);
    }
    next = min_due (next, g->batch_due);
    next = min_due (next, g->tree ? g->heartbeat_due : 0);
    next = min_due (next, g->failed ? g->retry_due : 0);
  }
  run_deferred (ctl, now);
  /* a commit above may have set new timers or a batch */
  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    next = min_due (next, g->batch_due);
    for (guint t = 0; t < g->timers->len; t++)
      next = min_due (next, g_array_index (g->timers, GroupTimer, t).due);
  }
  return min_due (next, ctl->sweep_due);
}

/* ------------------------------------------------------------------------ */
/* The core                                                                   */

mcsec_ctl_t *
mcsec_ctl_new (const mcsec_ctl_config_t *config, mcsec_ctl_store_t *store,
               GPtrArray *groups, gint64 now_ms, GError **error)
{
  mcsec_ctl_t *ctl = g_new0 (mcsec_ctl_t, 1);
  gboolean restarted = FALSE;

  ctl->cfg = *config;
  EVP_PKEY_up_ref (ctl->cfg.update_key);
  if (ctl->cfg.max_output == 0)
    ctl->cfg.max_output = MCSEC_CTL_MAX_OUTPUT_DEFAULT;
  if (ctl->cfg.output_stall_ms == 0)
    ctl->cfg.output_stall_ms = MCSEC_CTL_OUTPUT_STALL_MS_DEFAULT;
  if (ctl->cfg.repair_per_s == 0)
    ctl->cfg.repair_per_s = MCSEC_CTL_REPAIR_PER_S_DEFAULT;
  if (ctl->cfg.repair_burst == 0)
    ctl->cfg.repair_burst = MCSEC_CTL_REPAIR_BURST_DEFAULT;
  ctl->store = store;
  ctl->started_ms = now_ms;
  ctl->sweep_due = now_ms + SWEEP_MS;
  ctl->groups = g_ptr_array_new_with_free_func ((GDestroyNotify)group_free);
  ctl->msg = g_malloc0 (sizeof *ctl->msg);
  ctl->awaiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  ctl->admitted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  ctl->group_names = g_hash_table_new (g_str_hash, g_str_equal);
  if (mcsec_mike_public_key_der (ctl->cfg.update_key, ctl->update_spki,
                                 sizeof ctl->update_spki,
                                 &ctl->update_spki_len) != MCSEC_OK) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "the signing key is not usable");
    goto fail;
  }
  if (!counter_open (ctl, &ctl->seq_ctr, "counter/update-seq", SEQ_BLOCK,
                     &restarted, error) ||
      !counter_open (ctl, &ctl->sid_ctr, "counter/sender-ids", SENDER_ID_BLOCK,
                     NULL, error))
    goto fail;
  ctl->restarted = restarted;
  if (restarted)
    ctl->recovery_until_ms = now_ms + ctl->cfg.rejoin_window_ms;
  for (guint i = 0; groups && i < groups->len; i++) {
    mcsec_ctl_group_t *g = g_new0 (mcsec_ctl_group_t, 1);
    g->ctl = ctl;
    g->cfg = groups->pdata[i];
    groups->pdata[i] = NULL;
    g->senders = identity_set (g->cfg->senders);
    g->receivers = identity_set (g->cfg->receivers);
    for (guint k = 0; g->cfg->senders && g->cfg->senders[k]; k++)
      g_hash_table_add (ctl->admitted, g_strdup (g->cfg->senders[k]));
    for (guint k = 0; g->cfg->receivers && g->cfg->receivers[k]; k++)
      g_hash_table_add (ctl->admitted, g_strdup (g->cfg->receivers[k]));
    g->evicted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g->by_identity = g_hash_table_new (g_str_hash, g_str_equal);
    g->timers = g_array_new (FALSE, FALSE, sizeof (GroupTimer));
    g_queue_init (&g->members);
    g_ptr_array_add (ctl->groups, g);
    g_hash_table_insert (ctl->group_names, g->cfg->name, g);
    if (!group_load_state (g, now_ms, error))
      goto fail;
  }
  /* the first SEQ of this run is reserved now: "restarted" next time */
  if (!restarted) {
    guint64 first;
    if (!counter_next (ctl, &ctl->seq_ctr, &first)) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO,
                   "cannot write the controller's state");
      goto fail;
    }
  }
  if (groups)
    g_ptr_array_unref (groups);
  return ctl;

fail:
  if (groups)
    g_ptr_array_unref (groups);
  mcsec_ctl_free (ctl);
  return NULL;
}

void
mcsec_ctl_stop (mcsec_ctl_t *ctl)
{
  ctl->stopping = TRUE;
}

void
mcsec_ctl_free (mcsec_ctl_t *ctl)
{
  mcsec_ctl_action_t *a;
  if (ctl == NULL)
    return;
  ctl->stopping = TRUE;
  for (int round = 0; round < 2; round++) {
    while ((a = g_queue_pop_head (&ctl->actions)) != NULL) {
      if (a->conn)
        a->conn->n_actions--;
      mcsec_ctl_action_clear (a);
      g_free (a);
    }
    while (round == 0 && ctl->conns.head)
      mcsec_ctl_conn_free (ctl->conns.head->data);
  }
  g_ptr_array_unref (ctl->groups);
  g_hash_table_unref (ctl->group_names);
  g_hash_table_unref (ctl->awaiting);
  g_hash_table_unref (ctl->admitted);
  OPENSSL_cleanse (ctl->msg, sizeof *ctl->msg);
  g_free (ctl->msg);
  g_free (ctl->seq_ctr.key);
  g_free (ctl->sid_ctr.key);
  EVP_PKEY_free (ctl->cfg.update_key);
  g_free (ctl);
}

void
mcsec_ctl_set_io_stats (mcsec_ctl_t *ctl, const mcsec_ctl_io_stats_t *stats)
{
  ctl->io = *stats;
}

gboolean
mcsec_ctl_restarted (const mcsec_ctl_t *ctl)
{
  return ctl->restarted;
}

guint
mcsec_ctl_n_groups (const mcsec_ctl_t *ctl)
{
  return ctl->groups->len;
}

mcsec_ctl_group_t *
mcsec_ctl_group_nth (mcsec_ctl_t *ctl, guint i)
{
  return i < ctl->groups->len ? ctl->groups->pdata[i] : NULL;
}

const mcsec_ctl_group_config_t *
mcsec_ctl_group_config (const mcsec_ctl_group_t *g)
{
  return g->cfg;
}

guint
mcsec_ctl_group_members (const mcsec_ctl_group_t *g)
{
  return g->members.length;
}

void
mcsec_ctl_group_set_user_data (mcsec_ctl_group_t *g, gpointer data)
{
  g->user_data = data;
}

gpointer
mcsec_ctl_group_get_user_data (const mcsec_ctl_group_t *g)
{
  return g->user_data;
}

/* ------------------------------------------------------------------------ */
/* Administration: one table of verbs                                         */

static void
json_string (GString *s, const char *v)
{
  g_string_append_c (s, '"');
  for (const char *p = v ? v : ""; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (s, "\\%c", *p);
    else if ((unsigned char)*p < 0x20)
      g_string_append_printf (s, "\\u%04x", *p);
    else
      g_string_append_c (s, *p);
  }
  g_string_append_c (s, '"');
}

static void
json_group (GString *s, mcsec_ctl_group_t *g, gboolean with_members, gint64 now)
{
  guint n = 0;

  g_string_append (s, "{\"name\":");
  json_string (s, g->cfg->name);
  g_string_append (s, ",\"address\":");
  json_string (s, g->cfg->address);
  g_string_append_printf (
      s,
      ",\"port\":%u,\"cipher\":\"%s\",\"sam\":\"%s\",\"spi\":%u,"
      "\"key-age-s\":%" G_GINT64_FORMAT ",\"seq\":%" G_GUINT64_FORMAT
      ",\"rekeys\":%" G_GUINT64_FORMAT ",\"updates-sent\":%" G_GUINT64_FORMAT
      ",\"rotation-failed\":%s,\"rotation-failures\":%" G_GUINT64_FORMAT
      ",\"evicted\":%u,\"last-rekey-reason\":",
      g->cfg->port, mcsec_suite_name (g->cfg->suite),
      g->cfg->sam == MCSEC_SAM_BLOCK        ? "block"
      : g->cfg->sam == MCSEC_SAM_PER_PACKET ? "per-packet"
                                            : "none",
      g->sa.valid ? g->sa.spi : 0,
      g->sa.valid ? (now - g->sa.created_ms) / 1000 : 0, g->seq, g->rekeys,
      g->updates_sent, g->failed ? "true" : "false", g->rotation_failures,
      g_hash_table_size (g->evicted));
  json_string (s, g->last_rekey_reason);
  if (g->failed) {
    g_string_append (s, ",\"rotation-failed-reason\":");
    json_string (s, g->failed_reason);
  }
  for (GList *l = g->members.head; l; l = l->next)
    n += ((mcsec_ctl_conn_t *)l->data)->acked_seq == g->seq;
  g_string_append_printf (s, ",\"members-count\":%u,\"members-current\":%u",
                          g->members.length, n);
  if (g->tree) {
    guint unreached = 0;
    for (GList *l = g->members.head; l; l = l->next)
      unreached += ((mcsec_ctl_conn_t *)l->data)->unreached_until_ms > now;
    g_string_append (s, ",\"rekey-channel\":");
    json_string (s, g->cfg->channel);
    g_string_append_printf (
        s,
        ",\"tree\":{\"degree\":%u,\"depth\":%u,\"members\":%zu,"
        "\"pending\":%zu,\"memory-bytes\":%zu,\"batch-interval-ms\":%u},"
        "\"channel\":{\"rekeys\":%" G_GUINT64_FORMAT
        ",\"datagrams\":%" G_GUINT64_FORMAT ",\"bytes\":%" G_GUINT64_FORMAT
        ",\"send-errors\":%" G_GUINT64_FORMAT ",\"repairs\":%" G_GUINT64_FORMAT
        ",\"repairs-limited\":%" G_GUINT64_FORMAT
        ",\"resyncs\":%" G_GUINT64_FORMAT ",\"polls\":%" G_GUINT64_FORMAT
        ",\"direct\":%" G_GUINT64_FORMAT ",\"unreached-members\":%u"
        ",\"last-rekey-bytes\":%zu,\"last-rekey-datagrams\":%u,"
        "\"last-rekey-wrapped-keys\":%zu,\"next-seq\":%" G_GUINT64_FORMAT "}",
        g->cfg->tree_degree, mcsec_lkh_depth (g->tree),
        mcsec_lkh_members (g->tree), mcsec_lkh_pending (g->tree),
        mcsec_lkh_memory (g->tree), g->cfg->batch_ms, g->channel_rekeys,
        g->channel_datagrams, g->channel_bytes, g->channel_errors,
        g->repairs_served, g->repairs_limited, g->resyncs_served,
        g->repair_polls, g->direct_rekeys, unreached, g->last_rekey_bytes,
        g->last_rekey_datagrams, g->last_rekey_entries,
        mcsec_rekey_tx_next_seq (g->tx));
  }
  if (with_members) {
    g_string_append (s, ",\"members\":[");
    for (GList *l = g->members.head; l; l = l->next) {
      mcsec_ctl_conn_t *c = l->data;
      GDateTime *dt =
          g_date_time_new_from_unix_utc (c->joined_real_us / G_USEC_PER_SEC);
      gchar *since = dt ? g_date_time_format_iso8601 (dt) : g_strdup ("-");
      g_string_append (s, "{\"identity\":");
      json_string (s, c->identity);
      g_string_append_printf (
          s,
          ",\"role\":\"%s\",\"sender-id\":%u,\"peer\":\"%s\","
          "\"connected-since\":\"%s\",\"acked-seq\":%" G_GUINT64_FORMAT "}%s",
          role_name (c->role), c->sender_id, c->peer, since, c->acked_seq,
          l->next ? "," : "");
      g_free (since);
      if (dt)
        g_date_time_unref (dt);
    }
    g_string_append (s, "],\"evicted-identities\":[");
    {
      GList *ids = g_list_sort (g_hash_table_get_keys (g->evicted),
                                (GCompareFunc)strcmp);
      for (GList *l = ids; l; l = l->next) {
        json_string (s, l->data);
        if (l->next)
          g_string_append_c (s, ',');
      }
      g_list_free (ids);
    }
    g_string_append (s, "]");
  }
  g_string_append (s, "}");
}

/* Key tree groups: the SEQ of the last rekey on the channel; closes the
 * object. */
static void
json_rekey_seq (GString *s, mcsec_ctl_group_t *g)
{
  if (g->tree)
    g_string_append_printf (s, ",\"rekey-seq\":%" G_GUINT64_FORMAT,
                            mcsec_rekey_tx_next_seq (g->tx) - 1);
  g_string_append (s, "}");
}

typedef struct {
  mcsec_ctl_t *ctl;
  gchar **args; /* after the verb */
  mcsec_ctl_group_t *group;
  gint64 now, real_us;
} AdminReq;

static void
verb_list (AdminReq *r, GString *s)
{
  g_string_append (s, "{\"ok\":true,\"groups\":[");
  for (guint i = 0; i < r->ctl->groups->len; i++) {
    if (i)
      g_string_append_c (s, ',');
    json_group (s, r->ctl->groups->pdata[i], TRUE, r->now);
  }
  g_string_append (s, "]}");
}

static void
verb_stats (AdminReq *r, GString *s)
{
  mcsec_ctl_t *ctl = r->ctl;
  const mcsec_ctl_io_stats_t *io = &ctl->io;
  g_string_append_printf (
      s,
      "{\"ok\":true,\"uptime-s\":%" G_GINT64_FORMAT
      ",\"connections\":%" G_GUINT64_FORMAT ",\"open-connections\":%u,"
      "\"pending-handshakes\":%u,\"workers\":%u,"
      "\"handshake-failures\":%" G_GUINT64_FORMAT
      ",\"handshake-timeouts\":%" G_GUINT64_FORMAT
      ",\"refused-connections\":{\"per-source\":%" G_GUINT64_FORMAT
      ",\"total\":%" G_GUINT64_FORMAT "},\"accept-errors\":%" G_GUINT64_FORMAT
      ",\"accept-backoffs\":%" G_GUINT64_FORMAT
      ",\"registrations\":%" G_GUINT64_FORMAT ",\"refusals\":%" G_GUINT64_FORMAT
      ",\"refused-by\":{",
      (r->now - ctl->started_ms) / 1000, io->connections, io->open_connections,
      io->pending_handshakes, io->workers, io->handshake_failures,
      io->handshake_timeouts, io->refused_per_source, io->refused_total,
      io->accept_errors, io->accept_backoffs, ctl->registrations,
      ctl->refusals);
  for (guint k = 1; k <= MCSEC_MIKE_REASON_SHUTTING_DOWN; k++)
    g_string_append_printf (s, "%s\"%s\":%" G_GUINT64_FORMAT, k > 1 ? "," : "",
                            mcsec_mike_reason_name (k), ctl->refused_by[k]);
  g_string_append_printf (
      s,
      "},\"leaves\":%" G_GUINT64_FORMAT ",\"disconnects\":%" G_GUINT64_FORMAT
      ",\"not-reading\":%" G_GUINT64_FORMAT ",\"evictions\":%" G_GUINT64_FORMAT
      ",\"unevictions\":%" G_GUINT64_FORMAT
      ",\"updates-sent\":%" G_GUINT64_FORMAT ",\"acks\":%" G_GUINT64_FORMAT
      ",\"rejected-messages\":%" G_GUINT64_FORMAT
      ",\"store-errors\":%" G_GUINT64_FORMAT ",\"flooding\":%" G_GUINT64_FORMAT
      ",\"unlisted-identities\":%" G_GUINT64_FORMAT ",\"groups\":[",
      ctl->leaves, ctl->disconnects, ctl->not_reading, ctl->evictions,
      ctl->unevictions, ctl->updates_sent, ctl->acks, ctl->rejected_messages,
      ctl->store_errors, ctl->flooding, ctl->unlisted);
  for (guint i = 0; i < ctl->groups->len; i++) {
    if (i)
      g_string_append_c (s, ',');
    json_group (s, ctl->groups->pdata[i], FALSE, r->now);
  }
  g_string_append (s, "]}");
}

static void
verb_export_keys (AdminReq *r, GString *s)
{
  mcsec_ctl_group_t *g = r->group;
  if (!r->ctl->cfg.allow_key_export) {
    log_event (r->ctl, "key-export-refused", "group=%s", g->cfg->name);
    g_string_append (s, "{\"ok\":false,\"error\":\"key export is off: "
                        "set allow-key-export = true in [controller]\"}");
    return;
  }
  /* s was sized for this: appending the key never reallocates */
  g_string_append (s, "{\"ok\":true,\"sas\":[");
  if (g->sa.valid) {
    g_string_append_printf (s, "{\"spi\":%u,\"suite\":\"%s\",\"key\":\"",
                            g->sa.spi, mcsec_suite_name (g->sa.suite));
    /* digit by digit: a printf would leave pieces of the key in its own
     * buffers */
    for (gsize i = 0; i < g->sa.key_len; i++) {
      g_string_append_c (s, "0123456789abcdef"[g->sa.key[i] >> 4]);
      g_string_append_c (s, "0123456789abcdef"[g->sa.key[i] & 15]);
    }
    g_string_append (s, "\"}");
  }
  g_string_append (s, "]}");
  log_event (r->ctl, "keys-exported", "group=%s spi=0x%08x", g->cfg->name,
             g->sa.valid ? g->sa.spi : 0);
}

static void
verb_rekey (AdminReq *r, GString *s)
{
  mcsec_ctl_group_t *g = r->group;
  group_change (g, TRUE, "admin", r->now);
  if (g->failed) {
    g_string_append (s, "{\"ok\":false,\"error\":");
    json_string (s, g->failed_reason);
    g_string_append (s, "}");
    return;
  }
  g_string_append_printf (
      s, "{\"ok\":true,\"spi\":%u,\"seq\":%" G_GUINT64_FORMAT ",\"members\":%u",
      g->sa.spi, g->seq, g->members.length);
  json_rekey_seq (s, g);
}

static void
verb_evict (AdminReq *r, GString *s)
{
  mcsec_ctl_group_t *g = r->group;
  const char *who = r->args[1];
  mcsec_ctl_conn_t *victim = g_hash_table_lookup (g->by_identity, who);
  gchar *key = evicted_key (g->cfg->name, who);
  GBytes *v = g_bytes_new_static ("", 0);
  GError *err = NULL;
  gboolean durable = store_put1 (r->ctl, key, v, &err);

  g_bytes_unref (v);
  g_free (key);
  /* refused from now on, connected or not; in memory even when the store
   * failed (said in the answer) */
  g_hash_table_add (g->evicted, g_strdup (who));
  r->ctl->evictions++;
  log_event (r->ctl, "evicted", "group=%s identity=%s connected=%s durable=%s",
             g->cfg->name, who, victim ? "yes" : "no", durable ? "yes" : "no");
  if (victim) {
    /* out of the group first: the new key must not reach it */
    g_queue_unlink (&g->members, &victim->group_link);
    g_hash_table_remove (g->by_identity, victim->identity);
    victim->group = NULL;
    tree_leave (g, victim);
    conn_goodbye (victim, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_EVICTED,
                  "evicted by an administrator", r->now);
  }
  if (g->members.length)
    group_change (g, TRUE, "evict", r->now);
  else
    g->sa_stale = TRUE; /* whoever joins next gets a new SA */
  if (!durable) {
    g_string_append (s, "{\"ok\":false,\"error\":");
    {
      gchar *e = g_strdup_printf (
          "evicted until the controller stops, but not recorded: %s",
          err->message);
      json_string (s, e);
      g_free (e);
    }
    g_string_append (s, "}");
    g_error_free (err);
    return;
  }
  g_string_append_printf (s,
                          "{\"ok\":true,\"was-connected\":%s,\"spi\":%u,"
                          "\"seq\":%" G_GUINT64_FORMAT
                          ",\"rotation-failed\":%s",
                          victim ? "true" : "false", g->sa.spi, g->seq,
                          g->failed ? "true" : "false");
  json_rekey_seq (s, g);
}

static void
verb_unevict (AdminReq *r, GString *s)
{
  mcsec_ctl_group_t *g = r->group;
  const char *who = r->args[1];
  gchar *key = evicted_key (g->cfg->name, who);
  GError *err = NULL;
  gboolean was = g_hash_table_contains (g->evicted, who);

  if (was && !store_put1 (r->ctl, key, NULL, &err)) {
    /* still evicted: lifting must be durable too */
    g_string_append (s, "{\"ok\":false,\"error\":");
    json_string (s, err->message);
    g_string_append (s, "}");
    g_error_free (err);
    g_free (key);
    return;
  }
  g_free (key);
  g_hash_table_remove (g->evicted, who);
  if (was) {
    r->ctl->unevictions++;
    log_event (r->ctl, "unevicted", "group=%s identity=%s", g->cfg->name, who);
  }
  g_string_append_printf (s, "{\"ok\":true,\"was-evicted\":%s}",
                          was ? "true" : "false");
}

typedef struct {
  const char *name;
  guint n_args; /* after the verb; the first names a group when > 0 */
  const char *usage;
  void (*fn) (AdminReq *r, GString *s);
} Verb;

static const Verb verbs[] = {
    {"list", 0, "list", verb_list},
    {"stats", 0, "stats", verb_stats},
    {"rekey", 1, "rekey GROUP", verb_rekey},
    {"evict", 2, "evict GROUP IDENTITY", verb_evict},
    {"unevict", 2, "unevict GROUP IDENTITY", verb_unevict},
    {"export-keys", 1, "export-keys GROUP", verb_export_keys},
};

gchar *
mcsec_ctl_admin (mcsec_ctl_t *ctl, const char *line, gint64 now_ms,
                 gint64 real_us)
{
  /* sized once: export-keys never reallocates (no copy of a key left) */
  GString *s = g_string_sized_new (4096 + 2 * MCSEC_MIKE_MAX_KEY_LEN);
  gchar **argv = g_strsplit_set (line, " \t\r\n", -1);
  gchar *words[4] = {0};
  guint n = 0;
  const Verb *verb = NULL;

  for (int i = 0; argv[i] && n < G_N_ELEMENTS (words); i++)
    if (*argv[i])
      words[n++] = argv[i];
  for (guint i = 0; n && i < G_N_ELEMENTS (verbs); i++)
    if (strcmp (words[0], verbs[i].name) == 0)
      verb = &verbs[i];
  if (verb == NULL) {
    g_string_append (s, "{\"ok\":false,\"error\":\"unknown request (");
    for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
      g_string_append_printf (s, "%s%s", i ? ", " : "", verbs[i].usage);
    g_string_append (s, ")\"}");
  } else if (n - 1 != verb->n_args) {
    g_string_append_printf (s, "{\"ok\":false,\"error\":\"usage: %s\"}",
                            verb->usage);
  } else {
    AdminReq r = {ctl, words + 1, NULL, now_ms, real_us};
    if (verb->n_args)
      r.group = g_hash_table_lookup (ctl->group_names, words[1]);
    if (verb->n_args && r.group == NULL)
      g_string_append (s, "{\"ok\":false,\"error\":\"no such group\"}");
    else
      verb->fn (&r, s);
  }
  g_strfreev (argv);
  g_string_append_c (s, '\n');
  run_deferred (ctl, now_ms);
  return g_string_free (s, FALSE);
}
