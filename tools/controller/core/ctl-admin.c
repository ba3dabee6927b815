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
      ",\"groups\":[",
      ctl->leaves, ctl->disconnects, ctl->not_reading, ctl->evictions,
      ctl->unevictions, ctl->updates_sent, ctl->acks, ctl->rejected_messages,
      ctl->store_errors, ctl->flooding, ctl->unlisted, ctl->leaderships,
      ctl->stepdowns);
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
  /* s was sized for this: appending the key never reallocates */
  g_string_append (s, "{\"ok\":true,\"sas\":[");
  if (g->sa.valid && group_may_issue (g, r->now)) {
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
  ctl_log (r->ctl, "evicted", "group=%s identity=%s connected=%s durable=%s",
           g->cfg->name, who, victim ? "yes" : "no", durable ? "yes" : "no");
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
