/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The administrator's verbs (ctl-private.h): one table, one request line,
 * one JSON answer; what changes state (evict, unevict) is written to the
 * store first.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "ctl-private.h"

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
  if (g->ctl->cfg.cluster) {
    /* the cluster: whether this controller leads the group, or who does */
    g_string_append_printf (
        s, ",\"leading\":%s,\"leader\":", g->leading ? "true" : "false");
    json_string (s, g->leading       ? "self"
                    : g->unavailable ? "unavailable"
                    : g->leader_hint ? g->leader_hint
                                     : "unknown");
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
  for (guint k = 1; k <= MCSEC_MIKE_REASON_UNAVAILABLE; k++)
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
      ",\"unlisted-identities\":%" G_GUINT64_FORMAT
      ",\"leaderships\":%" G_GUINT64_FORMAT ",\"step-downs\":%" G_GUINT64_FORMAT
      ",\"relay\":{\"relayed\":%" G_GUINT64_FORMAT
      ",\"relayed-open\":%u,\"links\":%u,\"accepted\":%" G_GUINT64_FORMAT
      ",\"accepted-open\":%u,\"link-refusals\":%" G_GUINT64_FORMAT
      ",\"link-waits\":%" G_GUINT64_FORMAT "}"
      ",\"groups\":[",
      ctl->leaves, ctl->disconnects, ctl->not_reading, ctl->evictions,
      ctl->unevictions, ctl->updates_sent, ctl->acks, ctl->rejected_messages,
      ctl->store_errors, ctl->flooding, ctl->unlisted, ctl->leaderships,
      ctl->stepdowns, ctl->relayed, io->relayed_open, io->relay_links,
      io->relay_accepted, io->relay_accepted_open, io->relay_link_refusals,
      io->relay_link_waits);
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
    ctl_log (r->ctl, "key-export-refused", "group=%s", g->cfg->name);
    g_string_append (s, "{\"ok\":false,\"error\":\"key export is off: "
                        "set allow-key-export = true in [controller]\"}");
    return;
  }
  /* Every SA the controller holds for the group: it keeps one, the newest
   * (installing the next wipes the previous key), so the list has one
   * entry; the SPIs it has forgotten the keys of are named in
   * "retired-spis", so a caller can say which packets stay sealed.
   * Everything but the key goes first, and s was sized for it all:
   * appending the key never reallocates. */
  g_string_append_printf (
      s, "{\"ok\":true,\"rekeys\":%" G_GUINT64_FORMAT ",\"retired-spis\":[",
      g->rekeys);
  for (guint i = 0, n = 0; i < g->n_recent_spis; i++)
    if (!g->sa.valid || g->recent_spis[i] != g->sa.spi)
      g_string_append_printf (s, "%s%u", n++ ? "," : "", g->recent_spis[i]);
  g_string_append (s, "],\"sas\":[");
  if (g->sa.valid && group_may_issue (g, r->now)) {
    g_string_append_printf (
        s,
        "{\"spi\":%u,\"suite\":\"%s\",\"age-ms\":%" G_GINT64_FORMAT
        ",\"activates-in-ms\":%" G_GINT64_FORMAT ",\"key\":\"",
        g->sa.spi, mcsec_suite_name (g->sa.suite),
        MAX (r->now - g->sa.created_ms, 0),
        MAX (g->sa.activate_ms - r->now, 0));
    /* digit by digit: a printf would leave pieces of the key in its own
     * buffers */
    for (gsize i = 0; i < g->sa.key_len; i++) {
      g_string_append_c (s, "0123456789abcdef"[g->sa.key[i] >> 4]);
      g_string_append_c (s, "0123456789abcdef"[g->sa.key[i] & 15]);
    }
    g_string_append (s, "\"}");
  }
  g_string_append (s, "]}");
  ctl_log (r->ctl, "keys-exported", "group=%s spi=0x%08x", g->cfg->name,
           g->sa.valid ? g->sa.spi : 0);
}

static void
verb_rekey (AdminReq *r, GString *s)
{
  mcsec_ctl_group_t *g = r->group;
  if (!group_may_issue (g, r->now)) {
    gchar *e = g_strdup_printf (
        "this controller does not lead the group (leader: %s): ask it",
        g->unavailable   ? "none, etcd cannot be reached"
        : g->leader_hint ? g->leader_hint
                         : "unknown");
    g_string_append (s, "{\"ok\":false,\"error\":");
    json_string (s, e);
    g_string_append (s, "}");
    g_free (e);
    return;
  }
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
  /* a cluster's sealed SA goes with it (ctl-adopt.c): the evicted identity
   * may hold it, named in the record or not, so no later leader adopts it
   * (a delete, which any controller may do: it can only cause a rekey) */
  gchar *keys[2] = {evicted_key (g->cfg->name, who),
                    sa_record_key (g->cfg->name)};
  GBytes *values[2] = {g_bytes_new_static ("", 0), NULL};
  GError *err = NULL;
  gboolean durable = store_put (r->ctl, (const char *const *)keys, values,
                                r->ctl->cfg.cluster ? 2 : 1, &err);

  g_bytes_unref (values[0]);
  g_free (keys[0]);
  g_free (keys[1]);
  /* refused from now on, connected or not; in memory even when the store
   * failed (said in the answer) */
  g_hash_table_add (g->evicted, g_strdup (who));
  r->ctl->evictions++;
  ctl_log (r->ctl, "evicted", "group=%s identity=%s connected=%s durable=%s",
           g->cfg->name, who, victim ? "yes" : "no", durable ? "yes" : "no");
  tree_leaves_drop (g, who, NULL, NULL, r->now); /* an adopted leaf */
  group_evict_member (g, victim, r->now);
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
  if (!g->leading) {
    /* a cluster's other controller: the leader sees the eviction in etcd
     * and rekeys */
    g_string_append (s, "{\"ok\":true,\"leading\":false,\"leader\":");
    json_string (s, g->leader_hint ? g->leader_hint : "unknown");
    g_string_append (s, "}");
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

  /* the cluster: another controller may have recorded it, so the record
   * goes whether this controller knew of it or not */
  if ((was || r->ctl->cfg.cluster) && !store_put1 (r->ctl, key, NULL, &err)) {
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
    ctl_log (r->ctl, "unevicted", "group=%s identity=%s", g->cfg->name, who);
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

/* ------------------------------------------------------------------------ */
/* A new configuration (SIGHUP)                                               */

/* A group's settings and what a reload does with a change.  Live ones are
 * read where they are used (the next rekey, batch or sweep), so the new
 * value holds from then on; the others shape what members were told when
 * they joined (address, SAM, Sender-ID width), the SAs in use (cipher),
 * the key tree or the daemon's sockets, and wait for a restart. */
typedef struct {
  const char *key;
  gsize offset, size; /* size 0: a string */
  gboolean live;
} GroupSetting;

#define GROUP_SETTING(key, field, live)                                        \
  {                                                                            \
    key, G_STRUCT_OFFSET (mcsec_ctl_group_config_t, field),                    \
        sizeof (((mcsec_ctl_group_config_t *)NULL)->field), live               \
  }
#define GROUP_STRING(key, field)                                               \
  {                                                                            \
    key, G_STRUCT_OFFSET (mcsec_ctl_group_config_t, field), 0, FALSE           \
  }

static const GroupSetting group_settings[] = {
    GROUP_STRING ("address", address),
    GROUP_SETTING ("port", port, FALSE),
    GROUP_SETTING ("cipher", suite, FALSE),
    GROUP_SETTING ("sam", sam, FALSE),
    GROUP_SETTING ("sender-id-bits", sender_id_bits, FALSE),
    GROUP_SETTING ("spi-per-sender", spi_per_sender, FALSE),
    GROUP_STRING ("rekey-channel", channel),
    GROUP_SETTING ("key-tree-degree", tree_degree, FALSE),
    GROUP_SETTING ("key-lifetime", key_lifetime_s, TRUE),
    GROUP_SETTING ("activation-delay", activation_ms, TRUE),
    GROUP_SETTING ("deactivation-delay", deactivation_ms, TRUE),
    GROUP_SETTING ("rekey-on-join", rekey_on_join, TRUE),
    GROUP_SETTING ("rekey-on-leave", rekey_on_leave, TRUE),
    GROUP_SETTING ("batch-interval", batch_ms, TRUE),
    GROUP_SETTING ("rekey-redundancy", redundancy, TRUE),
};

static gboolean
same_set (GHashTable *a, GHashTable *b)
{
  GHashTableIter it;
  gpointer k;
  if (g_hash_table_size (a) != g_hash_table_size (b))
    return FALSE;
  g_hash_table_iter_init (&it, a);
  while (g_hash_table_iter_next (&it, &k, NULL))
    if (!g_hash_table_contains (b, k))
      return FALSE;
  return TRUE;
}

/* "GROUP:IDENTITY," for each identity of from_s or from_r that is in
 * neither to_s nor to_r, sorted. */
static void
list_missing (GString *out, const char *group, GHashTable *from_s,
              GHashTable *from_r, GHashTable *to_s, GHashTable *to_r)
{
  GList *ids = g_list_concat (g_hash_table_get_keys (from_s),
                              g_hash_table_get_keys (from_r));
  const char *last = NULL;
  ids = g_list_sort (ids, (GCompareFunc)strcmp);
  for (GList *l = ids; l; l = l->next) {
    if ((last && strcmp (last, l->data) == 0) ||
        g_hash_table_contains (to_s, l->data) ||
        g_hash_table_contains (to_r, l->data))
      continue;
    g_string_append_printf (out, "%s%s:%s", out->len ? "," : "", group,
                            (const char *)l->data);
    last = l->data;
  }
  g_list_free (ids);
}

/* Those of table (identity -> Holder; may be NULL) that the access lists
 * no longer admit as they held the SA (a sender no longer allowed to send,
 * or anyone in no list), logged and removed; how many. */
static guint
evict_unlisted (mcsec_ctl_group_t *g, GHashTable *table, GHashTable *senders,
                GHashTable *receivers)
{
  GHashTableIter it;
  gpointer id, value;
  guint n = 0;

  if (table == NULL)
    return 0;
  g_hash_table_iter_init (&it, table);
  while (g_hash_table_iter_next (&it, &id, &value)) {
    gboolean sends =
        (((const Holder *)value)->role & MCSEC_MIKE_ROLE_SENDER) != 0;
    if (g_hash_table_contains (senders, id) ||
        (!sends && g_hash_table_contains (receivers, id)))
      continue;
    g->ctl->evictions++;
    ctl_log (g->ctl, "evicted",
             "group=%s identity=%s connected=no durable=no by=reload "
             "why=\"%s\"",
             g->cfg->name, (const char *)id,
             sends && g_hash_table_contains (receivers, id)
                 ? "no longer allowed to send"
                 : "no longer in the group's access lists");
    g_hash_table_iter_remove (&it);
    n++;
  }
  return n;
}

/* One group of the running configuration takes its new settings: the
 * access lists and the live settings; a joined member the new lists do
 * not admit in its role is evicted, then the group rekeys once. */
static void
reload_group (mcsec_ctl_group_t *g, mcsec_ctl_group_config_t *next,
              GPtrArray *changed, GPtrArray *restart, GString *added,
              GString *removed, guint *evicted, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  GHashTable *senders = identity_set (next->senders);
  GHashTable *receivers = identity_set (next->receivers);
  guint dropped = 0;
  GList *l, *nl;

  for (guint i = 0; i < G_N_ELEMENTS (group_settings); i++) {
    const GroupSetting *s = &group_settings[i];
    guint8 *run = (guint8 *)g->cfg + s->offset;
    const guint8 *new = (const guint8 *)next + s->offset;
    gboolean differs =
        s->size ? memcmp (run, new, s->size) != 0
                : g_strcmp0 (*(gchar **)run, *(gchar *const *)new) != 0;
    if (!differs)
      continue;
    g_ptr_array_add (s->live ? changed : restart,
                     g_strdup_printf ("[group %s] %s", g->cfg->name, s->key));
    if (s->live)
      memcpy (run, new, s->size);
  }
  if (!same_set (g->senders, senders))
    g_ptr_array_add (changed,
                     g_strdup_printf ("[group %s] senders", g->cfg->name));
  if (!same_set (g->receivers, receivers))
    g_ptr_array_add (changed,
                     g_strdup_printf ("[group %s] receivers", g->cfg->name));
  list_missing (added, g->cfg->name, senders, receivers, g->senders,
                g->receivers);
  list_missing (removed, g->cfg->name, g->senders, g->receivers, senders,
                receivers);
  g_hash_table_unref (g->senders);
  g_hash_table_unref (g->receivers);
  g->senders = senders;
  g->receivers = receivers;
  g_strfreev (g->cfg->senders);
  g_strfreev (g->cfg->receivers);
  g->cfg->senders = g_steal_pointer (&next->senders);
  g->cfg->receivers = g_steal_pointer (&next->receivers);

  for (l = g->members.head; l; l = nl) {
    mcsec_ctl_conn_t *m = l->data;
    gboolean sends = (m->role & MCSEC_MIKE_ROLE_SENDER) != 0;
    const char *why = sends && g_hash_table_contains (receivers, m->identity) &&
                              !g_hash_table_contains (senders, m->identity)
                          ? "no longer allowed to send"
                          : "no longer in the group's access lists";
    nl = l->next;
    if (g_hash_table_contains (senders, m->identity) ||
        (!sends && g_hash_table_contains (receivers, m->identity)))
      continue;
    ctl->evictions++;
    ctl_log (ctl, "evicted",
             "group=%s identity=%s connected=yes durable=no by=reload "
             "why=\"%s\"",
             g->cfg->name, m->identity, why);
    group_drop_member (g, m, why, now);
    dropped++;
  }
  /* holders of an adopted SA not back yet, and members that left without
   * a rekey, hold the key too: evicted like members */
  /* an adopted tree's leaves not back yet first (their roles are the
   * holders') */
  dropped += tree_leaves_drop (g, NULL, senders, receivers, now);
  dropped += evict_unlisted (g, g->holders, senders, receivers);
  dropped += evict_unlisted (g, g->departed, senders, receivers);
  *evicted += dropped;
  if (dropped == 0)
    return;
  if (g->members.length)
    group_change (g, TRUE, "reload", now);
  else
    g->sa_stale = TRUE; /* whoever joins next gets a new SA */
}

static gchar *
join_names (GPtrArray *names)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; names && i < names->len; i++)
    g_string_append_printf (s, "%s%s", i ? "," : "",
                            (const char *)names->pdata[i]);
  return g_string_free (s, FALSE);
}

void
mcsec_ctl_reload (mcsec_ctl_t *ctl, const mcsec_ctl_config_t *config,
                  GPtrArray *groups, GPtrArray *changed, GPtrArray *restart,
                  gint64 now_ms)
{
  GString *added = g_string_new (NULL), *removed = g_string_new (NULL);
  GHashTable *listed = g_hash_table_new (g_str_hash, g_str_equal);
  guint evicted = 0;
  gchar *changed_s;

  ctl->cfg.allow_key_export = config->allow_key_export;
  ctl->cfg.rejoin_window_ms = config->rejoin_window_ms;
  ctl->cfg.max_output =
      config->max_output ? config->max_output : MCSEC_CTL_MAX_OUTPUT_DEFAULT;
  ctl->cfg.repair_per_s = config->repair_per_s ? config->repair_per_s
                                               : MCSEC_CTL_REPAIR_PER_S_DEFAULT;
  for (guint i = 0; i < groups->len; i++) {
    mcsec_ctl_group_config_t *next = groups->pdata[i];
    mcsec_ctl_group_t *g = g_hash_table_lookup (ctl->group_names, next->name);
    g_hash_table_add (listed, next->name);
    if (g)
      reload_group (g, next, changed, restart, added, removed, &evicted,
                    now_ms);
    else
      g_ptr_array_add (
          restart, g_strdup_printf ("[group %s] (a new group)", next->name));
  }
  /* who may connect at all: every group's lists */
  g_hash_table_remove_all (ctl->admitted);
  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    gchar **lists[2] = {g->cfg->senders, g->cfg->receivers};
    if (!g_hash_table_contains (listed, g->cfg->name))
      g_ptr_array_add (restart,
                       g_strdup_printf ("[group %s] (removed)", g->cfg->name));
    for (guint k = 0; k < 2; k++)
      for (guint j = 0; lists[k] && lists[k][j]; j++)
        g_hash_table_add (ctl->admitted, g_strdup (lists[k][j]));
  }
  for (guint i = 0; i < restart->len; i++)
    ctl_log (ctl, "restart-needed",
             "setting=\"%s\" action=\"the running value stays until the "
             "controller restarts\"",
             (const char *)restart->pdata[i]);
  changed_s = join_names (changed);
  ctl_log (ctl, "reloaded",
           "groups=%u added=\"%s\" removed=\"%s\" evicted=%u changed=\"%s\" "
           "restart-needed=%u",
           ctl->groups->len, added->str, removed->str, evicted, changed_s,
           restart->len);
  g_free (changed_s);
  g_string_free (added, TRUE);
  g_string_free (removed, TRUE);
  g_hash_table_unref (listed);
  for (guint i = 0; i < groups->len; i++) {
    mcsec_ctl_group_config_free (groups->pdata[i]);
    groups->pdata[i] = NULL;
  }
  g_ptr_array_unref (groups);
  run_deferred (ctl, now_ms);
}
