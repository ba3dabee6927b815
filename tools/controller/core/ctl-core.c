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

#include "ctl-private.h"

/* ------------------------------------------------------------------------ */
/* Output buffers                                                            */

/* A member's output.  Every byte past len is zero or wiped (out_consume
 * wipes what it moves down from), so a wipe of the first len bytes wipes
 * all it ever held: a PONG costs no wipe of a 4 KB buffer (1,000,000
 * members ping 500,000 times a second). */
#define OUT_MIN_CAP 256

static void
out_append (OutBuf *o, const guint8 *p, gsize n)
{
  if (o->len + n > o->cap) {
    gsize cap = o->cap ? o->cap * 2 : OUT_MIN_CAP;
    guint8 *nb;
    while (cap < o->len + n)
      cap *= 2;
    nb = g_malloc (cap);
    if (o->len)
      memcpy (nb, o->data, o->len);
    if (o->data) {
      OPENSSL_cleanse (o->data, o->len);
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
  /* a drained buffer goes back to nothing (wiped: nothing is past len):
   * 50,000 idle members */
  if (o->len == 0) {
    g_free (o->data);
    o->data = NULL;
    o->cap = 0;
  }
}

static void
out_clear (OutBuf *o)
{
  if (o->data) {
    OPENSSL_cleanse (o->data, o->len);
    g_free (o->data);
  }
  memset (o, 0, sizeof *o);
}

void
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

void
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

void G_GNUC_PRINTF (3, 4)
    ctl_log (mcsec_ctl_t *ctl, const char *event, const char *fmt, ...)
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

/* Every event the controller logs (the core's, the daemon's and the
 * cluster's) and its syslog priority; the others are info. */
static const struct {
  const char *event;
  int priority;
} event_priorities[] = {
    {"error", 3},
    {"rekey-failed", 3},
    {"reload-failed", 3},
    {"lead-failed", 3},
    {"campaign-failed", 3},
    {"watch-resync-failed", 3},
    {"cluster-unavailable", 3},
    {"warning", 4},
    {"restart-needed", 4},
    {"handshake-failed", 4},
    {"not-reading", 4},
    {"flooding", 4},
    {"channel-error", 4},
    {"connections-refused", 4},
    {"accept-error", 4},
    {"join-deferred", 4},
    {"key-export-refused", 4},
    {"keys-exported", 4},
    {"lease-expired", 4},
    {"lease-lost", 4},
    {"leader-key-gone", 4},
    {"step-down", 4},
    {"watch-resync", 4},
    {"relay-link-lost", 4},
    {"relay-refused", 4},
    {"started", 5},
    {"stopped", 5},
    {"reloaded", 5},
    {"rejoin-window", 5},
    {"evicted", 5},
    {"unevicted", 5},
    {"refused", 5},
    {"replaced", 5},
    {"rekey-recovered", 5},
    {"lead", 5},
    {"resign", 5},
    {"cluster", 5},
    {"cluster-available", 5},
    {"signing-key", 5},
    {"relay-link-up", 5},
    {"resync", 7},
};

int
mcsec_ctl_event_priority (const char *event)
{
  for (guint i = 0; event && i < G_N_ELEMENTS (event_priorities); i++)
    if (strcmp (event, event_priorities[i].event) == 0)
      return event_priorities[i].priority;
  return 6; /* joined, left, rekey, rekey-sent... */
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
/* Connections                                                                */

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
gboolean
conn_queue (mcsec_ctl_conn_t *c, const guint8 *frame, gsize len, gint64 now)
{
  mcsec_ctl_t *ctl = c->ctl;
  if (c->state == C_CLOSED)
    return FALSE;
  if (c->out.len + len > ctl->cfg.max_output) {
    ctl->not_reading++;
    ctl_log (ctl, "not-reading",
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
void
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
  ctl_log (ctl, "refused", "peer=%s identity=%s group=%s reason=%s text=\"%s\"",
           c->peer, c->identity ? c->identity : "-", group ? group : "-",
           mcsec_mike_reason_name (reason), text);
  conn_goodbye (c, MCSEC_MIKE_REFUSE, reason, text, now);
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

const char *
role_name (guint role)
{
  return role == MCSEC_MIKE_ROLE_BOTH       ? "both"
         : role == MCSEC_MIKE_ROLE_SENDER   ? "sender"
         : role == MCSEC_MIKE_ROLE_FEEDBACK ? "feedback"
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
  gboolean may_send, may_receive, wants_send, wants_ids, rekey,
      store_failed = FALSE;
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
  /* a feedback member (any identity that may receive) gets Sender-IDs and
   * registers a signing key as a sender does; the others accept only RTCP
   * from it (FEEDBACK_SENDER in the updates) */
  wants_ids = mcsec_mike_role_has_sender_ids (msg->role);
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
  if (!group_may_issue (g, now) && ctl->cfg.relay && !c->relayed &&
      !g->unavailable && g->leader_hint && !g->leading) {
    /* the cluster: the leader serves it through this controller
     * (mcsec_ctl_conn_input hands the bytes over) */
    c->state = C_RELAY;
    c->relay_to = g;
    goto out;
  }
  if (!group_may_issue (g, now)) {
    /* the cluster: another controller leads the group, or none can */
    gchar *text =
        g->unavailable
            ? g_strdup ("the cluster's state store cannot be reached")
            : g_strdup_printf ("leader=%s",
                               g->leader_hint ? g->leader_hint : "unknown");
    refuse (c,
            g->unavailable ? MCSEC_MIKE_REASON_UNAVAILABLE
                           : MCSEC_MIKE_REASON_NOT_LEADER,
            text, name, now);
    g_free (text);
    goto out;
  }
  if (g->failed) {
    /* fail closed: the key that could not be rotated is handed to nobody;
     * the member is told, keeps its keys and tries again with backoff */
    gchar *text = g_strdup_printf ("key rotation failed: %s", g->failed_reason);
    ctl_log (ctl, "join-deferred",
             "group=%s identity=%s why=\"key rotation failed: %s\"",
             g->cfg->name, c->identity, g->failed_reason);
    refuse (c, MCSEC_MIKE_REASON_UNAVAILABLE, text, name, now);
    g_free (text);
    goto out;
  }
  if (wants_ids) {
    const guint8 *p = msg->signing_key;
    EVP_PKEY *k = p ? d2i_PUBKEY (NULL, &p, (long)msg->signing_key_len) : NULL;
    int id = k ? EVP_PKEY_get_base_id (k) : 0;
    int ok = k && p == msg->signing_key + msg->signing_key_len &&
             (id == EVP_PKEY_ED25519 ||
              (id == EVP_PKEY_EC && EVP_PKEY_get_bits (k) == 256));
    EVP_PKEY_free (k);
    if (!ok) {
      refuse (c, MCSEC_MIKE_REASON_BAD_REQUEST,
              wants_send
                  ? "a sender needs an Ed25519 or ECDSA P-256 signing key"
                  : "a feedback member needs an Ed25519 or ECDSA P-256 "
                    "signing key",
              name, now);
      goto out;
    }
    memcpy (c->spki, msg->signing_key, msg->signing_key_len);
    c->spki_len = msg->signing_key_len;
  }
  /* one connection per identity: the newer one wins */
  old = g_hash_table_lookup (g->by_identity, c->identity);
  if (old) {
    members_remove (g, old);
    old->group = NULL;
    departed_add (g, old); /* its mcsecenc may go on with its Sender-IDs */
    tree_leave (g, old);   /* the newcomer's join rekeys the tree */
    ctl_log (ctl, "replaced", "group=%s identity=%s", g->cfg->name,
             c->identity);
    conn_goodbye (old, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_DUPLICATE,
                  "the same identity joined again", now);
  }
  /* a new key when asked (backward secrecy), unless the newest SA is not in
   * use yet: nothing was protected with it, the newcomer may have it */
  rekey = !g->sa.valid || g->sa_stale ||
          (g->tree ? !tree_leaf_waiting (g, c->identity, wants_ids)
                   : g->cfg->rekey_on_join &&
                         (g->sa.activate_ms <= now || g->sa.adopted) &&
                         !holder_returns (g, c->identity));
  if (wants_ids) {
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
      if (!new_sender_id (g, avoid, &c->sender_ids[i], &store_failed)) {
        g_hash_table_unref (avoid);
        /* a store that failed is not an exhausted group: not final */
        if (store_failed)
          refuse (c, MCSEC_MIKE_REASON_UNAVAILABLE,
                  "cannot reserve Sender-IDs: the state store failed", name,
                  now);
        else
          refuse (c, MCSEC_MIKE_REASON_SENDER_IDS_EXHAUSTED,
                  "no free Sender-ID", name, now);
        goto out;
      }
    g_hash_table_unref (avoid);
    c->n_sender_ids = count;
    c->sender_id = c->sender_ids[0];
  }
  /* before the group's first member gets a key, the state says members
   * may hold one (a restart then waits for them to rejoin) */
  if (!group_members_joining (g)) {
    refuse (c, MCSEC_MIKE_REASON_UNAVAILABLE,
            "cannot record the group's members: the state store failed", name,
            now);
    goto out;
  }
  c->role = msg->role;
  c->group = g;
  c->state = C_MEMBER;
  awaiting_done (c);
  members_add (g, c);
  ctl->registrations++;
  /* a holder of an adopted SA is back (ctl-adopt.c); whoever is given
   * the SA as it is, holder or not, is recorded again with the Sender-IDs
   * it has now: its sender may start under the SA with them */
  holder_back (g->holders, c);
  holder_back (g->departed, c);
  if (!rekey)
    group_record_later (g, now);

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
  if (g->cfg->spi_per_sender) /* every SA a block (new_spi) */
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SPI_PER_SENDER, 1);
  if (g->tree) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS,
                           g->cfg->channel_address);
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, g->cfg->channel_port);
  }
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    conn_queue (c, wbuf, len, now);
  ctl_log (ctl, "joined",
           "group=%s identity=%s role=%s sender-id=%u sender-ids=%u peer=%s",
           g->cfg->name, c->identity, role_name (c->role), c->sender_id,
           c->n_sender_ids, c->peer);
  if (g->tree && tree_leaf_back (g, c, rekey)) {
    /* a receiver of the adopted tree (ctl-tree.c): its leaf and path as it
     * had them, no commit */
    send_path_update (g, c, now);
  } else if (g->tree && tree_window_open (g, now)) {
    /* placed in the tree when the adopted tree's window ends (ctl-tree.c):
     * no commit before then may carry its keys to a waiting leaf */
    c->place_later = c->awaiting_path = TRUE;
    group_batch (g, "join", now);
  } else if (g->tree) {
    if (!tree_place (g, c, now)) { /* its path comes with the commit */
      members_remove (g, c);
      c->group = NULL;
      refuse (c, MCSEC_MIKE_REASON_SHUTTING_DOWN, "key tree: out of memory",
              name, now);
      goto out;
    }
  } else if (rekey)
    group_change (g, TRUE, "join", now);
  else if (c->sender_id)
    group_change (g, FALSE, "sender-joined", now); /* everyone needs its key */
  else if (g->update == NULL)
    group_change (g, FALSE, "rejoin", now); /* an adopted SA's first update */
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
    ctl_log (ctl, "flooding", "peer=%s identity=%s frames-per-s-max=%d",
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
  /* no pointer into the frame outlives it (the reader wipes the frame's
   * bytes): the fields and as much of the arrays as the frame filled, not
   * 9 kB for every PING */
  OPENSSL_cleanse (msg->sas, MIN (msg->n_sas, G_N_ELEMENTS (msg->sas)) *
                                 sizeof msg->sas[0]);
  OPENSSL_cleanse (msg->senders,
                   MIN (msg->n_senders, G_N_ELEMENTS (msg->senders)) *
                       sizeof msg->senders[0]);
  OPENSSL_cleanse (msg, offsetof (mcsec_mike_msg_t, sas));
  OPENSSL_cleanse (&msg->wrapped,
                   sizeof *msg - offsetof (mcsec_mike_msg_t, wrapped));
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
    ctl_log (ctl, "handshake-failed", "peer=%s why=\"%s\"", c->peer,
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
      ctl_log (ctl, "refused",
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
      ctl_log (ctl, "refused",
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

void
mcsec_ctl_conn_set_relayed (mcsec_ctl_conn_t *c)
{
  c->relayed = TRUE;
}

const char *
mcsec_ctl_conn_identity (const mcsec_ctl_conn_t *c)
{
  return c->identity;
}

/* Its JOIN (first in the reader) and everything after it, read or not
 * yet fed, go to the leader through the daemon: the core is done with c. */
static void
conn_relay (mcsec_ctl_conn_t *c, const guint8 *rest, gsize rest_len)
{
  mcsec_ctl_t *ctl = c->ctl;
  mcsec_ctl_group_t *g = c->relay_to;
  GByteArray *all = g_byte_array_sized_new (c->reader.len + rest_len);
  mcsec_ctl_action_t *a;

  g_byte_array_append (all, c->reader.buf, c->reader.len);
  g_byte_array_append (all, rest, rest_len);
  mcsec_mike_reader_clear (&c->reader);
  awaiting_done (c);
  c->state = C_CLOSED;
  ctl->relayed++;
  push_action (ctl, MCSEC_CTL_ACTION_RELAY, c, g);
  a = g_queue_peek_tail (&ctl->actions);
  a->data = g_byte_array_free_to_bytes (all);
  a->text = g_strdup (g->leader_hint);
  ctl_log (ctl, "relayed", "peer=%s identity=%s group=%s leader=%s", c->peer,
           c->identity, g->cfg->name, g->leader_hint);
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
    while (c->state != C_CLOSED && c->state != C_RELAY &&
           (flen = mcsec_mike_reader_next (&c->reader, &frame)) > 0)
      handle_frame (c, frame, flen, now_ms);
    if (c->state == C_RELAY) {
      conn_relay (c, data, len);
      break;
    }
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
  ctl_log (c->ctl, "not-reading", "peer=%s identity=%s detail=\"%s\"", c->peer,
           c->identity ? c->identity : "-", detail);
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
      ctl_log (ctl, "not-reading",
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
    if (g->awaiting_rejoin && now >= g->recovery_until_ms)
      g->awaiting_rejoin = FALSE; /* the last run's members had their time */
    if (!group_may_issue (g, now))
      continue; /* the cluster: led elsewhere, or the lease ran out */
    /* the tree's missing leaves out first: the holders' part commits
     * nothing in a key tree group (the leaves' commit is the one) */
    tree_leaves_due (g, now);
    group_holders_due (g, now);
    group_record_due (g, now);
    (void)tree_record_due (g, now);
    if (g->failed && now >= g->retry_due && !ctl->stopping) {
      g->retry_due = now + RETRY_MS;
      if (g->tree) {
        group_batch (g, "retry", now);
        if (!tree_window_open (g, now))
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
    next =
        min_due (next, g->holders || g->tree_leaves ? g->recovery_until_ms : 0);
    next = min_due (next, g->record_due);
    next = min_due (next, g->tree_retry_due);
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
/* The cluster                                                                */

/* Fencing: only a leader whose lease holds issues anything for a group;
 * one whose lease ran out steps down first (before a single byte). */
gboolean
group_may_issue (mcsec_ctl_group_t *g, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  if (!ctl->cfg.cluster)
    return TRUE;
  if (!g->leading)
    return FALSE;
  if (now < ctl->lease_deadline_ms)
    return TRUE;
  ctl_log (ctl, "lease-expired",
           "group=%s late-ms=%" G_GINT64_FORMAT " action=\"step down\"",
           g->cfg->name, now - ctl->lease_deadline_ms);
  mcsec_ctl_group_follow (g, NULL, FALSE, now);
  return FALSE;
}

gboolean
mcsec_ctl_group_lead (mcsec_ctl_group_t *g, gint64 now_ms, gint64 real_us,
                      GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;

  if (g->leading)
    return TRUE;
  g_return_val_if_fail (g->members.length == 0, FALSE);
  group_reset (g);
  ctl->wall_offset_us = real_us - now_ms * 1000;
  /* the group's updates from here on are numbered above all it had: the
   * previous leader used only numbers below the stored limit */
  if (!counter_reread (ctl, &ctl->seq_ctr, error) ||
      !group_load_state (g, now_ms, error)) {
    group_reset (g);
    return FALSE;
  }
  g->leading = TRUE;
  g->unavailable = FALSE;
  g_clear_pointer (&g->leader_hint, g_free);
  /* members may hold the previous leader's SA and be on their way here:
   * no SA of this leadership is used before the rejoin window ends */
  g->recovery_until_ms =
      g->n_recent_spis ? now_ms + ctl->cfg.rejoin_window_ms : 0;
  ctl->leaderships++;
  ctl_log (ctl, "lead",
           "group=%s rejoin-window-ms=%u evicted=%u adopted-spi=0x%08x",
           g->cfg->name, g->recovery_until_ms ? ctl->cfg.rejoin_window_ms : 0,
           g_hash_table_size (g->evicted), g->sa.valid ? g->sa.spi : 0);
  return TRUE;
}

void
mcsec_ctl_group_follow (mcsec_ctl_group_t *g, const char *leader,
                        gboolean unavailable, gint64 now_ms)
{
  mcsec_ctl_t *ctl = g->ctl;
  gboolean was = g->leading;
  guint members = g->members.length;

  g->leading = FALSE;
  g->unavailable = unavailable;
  if (g_strcmp0 (g->leader_hint, leader) != 0) {
    g_free (g->leader_hint);
    g->leader_hint = g_strdup (leader);
  }
  if (!was)
    return;
  ctl->stepdowns++;
  /* closed without a word: the members keep their keys and go to the next
   * controller of their list, which sends them to the new leader */
  while (g->members.head)
    conn_end (g->members.head->data, "the controller no longer leads the group",
              FALSE, now_ms);
  group_reset (g);
  ctl_log (
      ctl, "step-down", "group=%s leader=%s members-closed=%u", g->cfg->name,
      unavailable ? "unavailable" : (leader ? leader : "unknown"), members);
}

gboolean
mcsec_ctl_group_leading (const mcsec_ctl_group_t *g)
{
  return g->leading;
}

void
mcsec_ctl_set_lease_deadline (mcsec_ctl_t *ctl, gint64 deadline_ms)
{
  ctl->lease_deadline_ms = deadline_ms;
}

void
mcsec_ctl_eviction_changed (mcsec_ctl_t *ctl, const char *group,
                            const char *identity, gboolean evicted,
                            gint64 now_ms)
{
  mcsec_ctl_group_t *g = g_hash_table_lookup (ctl->group_names, group);
  mcsec_ctl_conn_t *victim;

  if (g == NULL || identity == NULL)
    return;
  if (!evicted) {
    if (g_hash_table_remove (g->evicted, identity) && g->leading)
      ctl_log (ctl, "unevicted",
               "group=%s identity=%s by=\"another controller\"", g->cfg->name,
               identity);
    return;
  }
  if (g_hash_table_contains (g->evicted, identity))
    return; /* ours, or known */
  g_hash_table_add (g->evicted, g_strdup (identity));
  if (!g->leading)
    return; /* refused here from now on; the leader acts */
  victim = g_hash_table_lookup (g->by_identity, identity);
  ctl->evictions++;
  ctl_log (ctl, "evicted",
           "group=%s identity=%s connected=%s by=\"another controller\"",
           g->cfg->name, identity, victim ? "yes" : "no");
  tree_leaves_drop (g, identity, NULL, NULL, now_ms); /* an adopted leaf */
  group_evict_member (g, victim, now_ms);
  run_deferred (ctl, now_ms);
}

void
mcsec_ctl_evictions_replace (mcsec_ctl_t *ctl, const char *group,
                             const char *const *identities, gint64 now_ms)
{
  mcsec_ctl_group_t *g = g_hash_table_lookup (ctl->group_names, group);
  GHashTable *now_set;
  GHashTableIter it;
  gpointer id;

  if (g == NULL)
    return;
  now_set = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; identities && identities[i]; i++)
    g_hash_table_add (now_set, (gpointer)identities[i]);
  /* lifted ones first, then the new ones (which evict if connected) */
  g_hash_table_iter_init (&it, g->evicted);
  while (g_hash_table_iter_next (&it, &id, NULL))
    if (!g_hash_table_contains (now_set, id))
      g_hash_table_iter_remove (&it);
  for (guint i = 0; identities && identities[i]; i++)
    mcsec_ctl_eviction_changed (ctl, group, identities[i], TRUE, now_ms);
  g_hash_table_unref (now_set);
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
    g_queue_init (&g->sending);
    g_ptr_array_add (ctl->groups, g);
    g_hash_table_insert (ctl->group_names, g->cfg->name, g);
    /* config.c says so first, naming the setting */
    if (g->cfg->spi_per_sender &&
        g->cfg->sender_id_bits > MCSEC_SPI_PER_SENDER_BITS_MAX) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "[group %s] spi-per-sender: needs sender-id-bits of %u or "
                   "fewer",
                   g->cfg->name, MCSEC_SPI_PER_SENDER_BITS_MAX);
      goto fail;
    }
    /* the cluster: state is read when the group is led here */
    if (ctl->cfg.cluster)
      continue;
    g->leading = TRUE;
    if (!group_load_state (g, now_ms, error) || !group_members_load (g, error))
      goto fail;
  }
  /* each group's rejoin window: members of the last run to wait for? */
  if (!ctl->cfg.cluster && !group_members_start (ctl, restarted, now_ms, error))
    goto fail;
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
  if (!ctl->stopping && !ctl->cfg.cluster)
    group_members_stop (ctl); /* how many a restart waits for */
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
mcsec_ctl_rejoin_window_ms (const mcsec_ctl_t *ctl)
{
  gint64 until = 0;
  for (guint i = 0; i < ctl->groups->len; i++)
    until = MAX (
        until, ((mcsec_ctl_group_t *)ctl->groups->pdata[i])->recovery_until_ms);
  return until > ctl->started_ms ? (guint)(until - ctl->started_ms) : 0;
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
