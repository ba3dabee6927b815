/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A group's keys (ctl-private.h): durable numbers through the store, SAs
 * and signed updates computed whole and only then installed, key tree
 * commits and the rekey channel, repairs, fail closed, departures.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ctl-private.h"

/* ------------------------------------------------------------------------ */
/* Durable state                                                              */

G_DEFINE_QUARK (mcsec - ctl - store - error - quark, mcsec_ctl_store_error)

gboolean
store_put (mcsec_ctl_t *ctl, const char *const *keys, GBytes *const *values,
           guint n, GError **error)
{
  gboolean ok = ctl->store->put (ctl->store, keys, values, n, error);
  if (!ok)
    ctl->store_errors++;
  return ok;
}

gboolean
store_put1 (mcsec_ctl_t *ctl, const char *key, GBytes *value, GError **error)
{
  return store_put (ctl, &key, &value, 1, error);
}

gboolean
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

/* Read a counter's stored limit again after another controller moved it
 * (the cluster): every value below it may have been used. */
gboolean
counter_reread (mcsec_ctl_t *ctl, Counter *c, GError **error)
{
  Counter now = {0};
  gboolean ok = counter_open (ctl, &now, c->key, c->block, NULL, error);
  if (ok && now.limit > c->next)
    c->next = now.limit;
  g_free (now.key);
  return ok;
}

/* The next value of a durable counter: FALSE when no more can be reserved
 * (nothing changes then).  A block taken by another controller between our
 * read and our write (a conflict) is skipped: read again, reserve the next
 * one. */
gboolean
counter_next (mcsec_ctl_t *ctl, Counter *c, guint64 *out)
{
  for (guint attempt = 0; c->next >= c->limit; attempt++) {
    guint64 limit = c->next + c->block;
    gchar *s = g_strdup_printf ("%" G_GUINT64_FORMAT, limit);
    GBytes *v = g_bytes_new_take (s, strlen (s));
    GError *err = NULL;
    gboolean ok = store_put1 (ctl, c->key, v, &err);
    g_bytes_unref (v);
    if (ok) {
      c->limit = limit;
      break;
    }
    if (attempt < 8 && g_error_matches (err, MCSEC_CTL_STORE_ERROR,
                                        MCSEC_CTL_STORE_ERROR_CONFLICT)) {
      g_clear_error (&err);
      if (counter_reread (ctl, c, &err))
        continue;
    }
    ctl_log (ctl, "error", "what=\"cannot reserve %s: %s\"", c->key,
             err->message);
    g_error_free (err);
    return FALSE;
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
gchar *
group_key (const char *what, const char *group)
{
  gchar *g = g_uri_escape_string (group, NULL, FALSE);
  gchar *key = g_strdup_printf ("%s/%s", what, g);
  g_free (g);
  return key;
}

gchar *
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

GHashTable *
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

void
group_free (mcsec_ctl_group_t *g)
{
  if (g->holders)
    g_hash_table_unref (g->holders);
  if (g->departed)
    g_hash_table_unref (g->departed);
  g_hash_table_unref (g->senders);
  g_hash_table_unref (g->receivers);
  g_hash_table_unref (g->evicted);
  g_hash_table_unref (g->by_identity);
  group_sa_clear (&g->sa);
  group_drop_update (g);
  g_free (g->last_rekey_reason);
  g_free (g->failed_reason);
  g_free (g->batch_reason);
  g_free (g->rekey_ctr.key);
  g_free (g->leader_hint);
  g_free (g->members_key);
  g_array_unref (g->timers);
  mcsec_rekey_tx_free (g->tx);
  tree_log_reset (g);
  mcsec_lkh_free (g->tree);
  mcsec_ctl_group_config_free (g->cfg);
  g_free (g);
}

/* Forget what a leader holds (the cluster: stepping down, or about to
 * read the state again): keys wiped, the key tree, timers and batches
 * gone.  The group has no members here. */
void
group_reset (mcsec_ctl_group_t *g)
{
  group_sa_clear (&g->sa);
  group_drop_update (g);
  g_clear_pointer (&g->holders, g_hash_table_unref);
  g_clear_pointer (&g->departed, g_hash_table_unref);
  g->record_due = g->record_retry_due = 0;
  g->record_dropped = FALSE;
  g_clear_pointer (&g->tx, mcsec_rekey_tx_free);
  tree_log_reset (g);
  g_clear_pointer (&g->tree, mcsec_lkh_free);
  g_clear_pointer (&g->rekey_ctr.key, g_free);
  g_clear_pointer (&g->batch_reason, g_free);
  g_clear_pointer (&g->failed_reason, g_free);
  g_array_set_size (g->timers, 0);
  g->n_recent_spis = 0;
  g->batch_due = g->heartbeat_due = g->retry_due = 0;
  g->failed = g->resync_all = g->sa_stale = FALSE;
  g->leave_pending = g->sender_left_pending = FALSE;
}

/* The group's recent SPIs as the store holds them, ahead of those we
 * knew (another leader's, or ours from a write whose outcome was unknown). */
static gboolean
spis_read (mcsec_ctl_group_t *g, GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;
  gchar *key = group_key ("spis", g->cfg->name);
  GError *err = NULL;
  GBytes *v = ctl->store->get (ctl->store, key, &err);
  guint32 merged[SPIS_KEPT];
  guint n = 0;

  g_free (key);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  if (v) {
    gsize len;
    const char *d = g_bytes_get_data (v, &len);
    gchar *str = len ? g_strndup (d, len) : g_strdup ("");
    gchar **items = g_strsplit (str, " ", -1);
    for (guint i = 0; items[i] && n < SPIS_KEPT; i++)
      if (*items[i])
        merged[n++] = (guint32)g_ascii_strtoull (items[i], NULL, 16);
    g_strfreev (items);
    g_free (str);
    g_bytes_unref (v);
  }
  for (guint i = 0; i < g->n_recent_spis && n < SPIS_KEPT; i++) {
    gboolean dup = FALSE;
    for (guint k = 0; k < n; k++)
      dup |= merged[k] == g->recent_spis[i];
    if (!dup)
      merged[n++] = g->recent_spis[i];
  }
  memcpy (g->recent_spis, merged, n * sizeof *merged);
  g->n_recent_spis = n;
  return TRUE;
}

gboolean
group_load_state (mcsec_ctl_group_t *g, gint64 now, GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;
  guint64 last_seq = 0;
  gchar *pg = group_key ("evicted", g->cfg->name);
  gchar *prefix = g_strconcat (pg, "/", NULL);
  GPtrArray *keys = ctl->store->list (ctl->store, prefix, error);
  gboolean ok = FALSE;

  if (keys == NULL)
    goto out;
  g_hash_table_remove_all (g->evicted); /* the store's, exactly */
  for (guint i = 0; i < keys->len; i++) {
    gchar *id = g_uri_unescape_string (
        (const char *)keys->pdata[i] + strlen (prefix), NULL);
    if (id)
      g_hash_table_add (g->evicted, id);
  }
  g_ptr_array_unref (keys);
  if (!spis_read (g, error))
    goto out;
  /* the group's SA as the previous leader left it (ctl-adopt.c), and a
   * key tree group's tree with it (ctl-tree.c) */
  if (ctl->cfg.cluster && ctl->cfg.store_seals &&
      !group_adopt_sa (g, now, error))
    goto out;
  if (g->cfg->channel && g->sa.adopted && !tree_adopt (g, &last_seq, error))
    goto out;
  if (g->cfg->channel && g->sa.adopted && g->tree == NULL) {
    /* no tree to go with the SA: a new one, and a new SA (as without a
     * cluster key) */
    group_sa_clear (&g->sa);
    g_clear_pointer (&g->holders, g_hash_table_unref);
  }
  if (g->cfg->channel) {
    gchar *ck = group_key ("counter/rekey", g->cfg->name);
    mcsec_status_t st = MCSEC_OK;
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
    /* an adopted tree's channel goes on from its last rekey: the members
     * that have not rejoined yet follow the next one (its number was not
     * used: the SA of the next commit would be the group's newest) */
    if (g->tree && last_seq + 1 < g->rekey_ctr.next)
      g->rekey_ctr.next = last_seq + 1;
    if (g->tree == NULL)
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
  g_free (prefix);
  g_free (pg);
  return ok;
}

/* The Sender-IDs the group's members hold. */
GHashTable *
members_ids (mcsec_ctl_group_t *g)
{
  GHashTable *set = g_hash_table_new (NULL, NULL);
  for (GList *l = g->sending.head; l; l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    for (guint i = 0; i < m->n_sender_ids; i++)
      g_hash_table_add (set, GUINT_TO_POINTER (m->sender_ids[i]));
  }
  return set;
}

/* The next Sender-ID of the durable counter that is not in `avoid` (it is
 * added there); FALSE when there is none, or (*store_failed) when no more
 * could be reserved in the store. */
gboolean
new_sender_id (mcsec_ctl_group_t *g, GHashTable *avoid, guint32 *out,
               gboolean *store_failed)
{
  guint64 n, max = g->cfg->sender_id_bits == 32
                       ? G_GUINT64_CONSTANT (0xffffffff)
                       : (G_GUINT64_CONSTANT (1) << g->cfg->sender_id_bits) - 1;
  if (g_hash_table_size (avoid) >= max)
    return FALSE;
  for (;;) {
    guint32 id;
    if (!counter_next (g->ctl, &g->ctl->sid_ctr, &n)) {
      *store_failed = TRUE;
      return FALSE;
    }
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
/* The cold start: were members joined when the controller stopped?           */

/* A restarted controller waits rejoin-window before its first SA is used,
 * so that the members of the last run, who still hold its SA, rejoin and
 * get the new one first (docs/mike-protocol.md "Controller behaviour").
 * When no member held a key of the group at the stop there is nobody to
 * wait for.  Keys are fresh in every run and Sender-IDs and SPIs come from
 * durable counters, so the window is about losing no packet, never about
 * nonces: skipping it cannot repeat a (key, nonce) pair.  The record errs
 * towards waiting: it is written before the first member of the group gets
 * a key, and a record that cannot be removed stays. */

/* The group's record as the store holds it (a single controller). */
gboolean
group_members_load (mcsec_ctl_group_t *g, GError **error)
{
  GError *err = NULL;
  GBytes *v;

  g->members_key = group_key ("members", g->cfg->name);
  v = g->ctl->store->get (g->ctl->store, g->members_key, &err);
  if (err) {
    g_propagate_error (error, err);
    return FALSE;
  }
  g->members_recorded = v != NULL;
  g->members_at_stop = 0;
  if (v) {
    gsize len;
    const char *d = g_bytes_get_data (v, &len);
    gchar *s = g_strndup (d, len), *end;
    guint64 n = g_ascii_strtoull (s, &end, 10);
    /* MEMBERS_RUNNING, or anything but a count: it did not stop cleanly */
    g->members_at_stop = strcmp (s, MEMBERS_REJOINING) == 0 ? MEMBERS_AWAITED
                         : *s && *end == '\0' && n < MEMBERS_AWAITED
                             ? (guint)n
                             : MEMBERS_UNKNOWN;
    g_free (s);
    g_bytes_unref (v);
  }
  return TRUE;
}

/* Before the group's first member gets a key: recorded, or refused. */
gboolean
group_members_joining (mcsec_ctl_group_t *g)
{
  GBytes *v;
  gboolean ok;

  if (g->ctl->cfg.cluster || g->members_recorded)
    return TRUE;
  v = g_bytes_new_static (MEMBERS_RUNNING, strlen (MEMBERS_RUNNING));
  ok = store_put1 (g->ctl, g->members_key, v, NULL);
  g_bytes_unref (v);
  g->members_recorded = ok;
  return ok;
}

static void
bytes_unref0 (gpointer b)
{
  if (b)
    g_bytes_unref (b);
}

/* A clean stop: each group's members, counted (none: no record), or
 * MEMBERS_REJOINING when the members of the run before may still be on
 * their way back (the stop came inside the rejoin window). */
void
group_members_stop (mcsec_ctl_t *ctl)
{
  GPtrArray *keys = g_ptr_array_new ();
  GPtrArray *values = g_ptr_array_new_with_free_func (bytes_unref0);
  GError *err = NULL;

  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    gchar *n = g->members.length    ? g_strdup_printf ("%u", g->members.length)
               : g->awaiting_rejoin ? g_strdup (MEMBERS_REJOINING)
                                    : NULL;
    if (n == NULL && !g->members_recorded)
      continue;
    g_ptr_array_add (keys, g->members_key);
    g_ptr_array_add (values, n ? g_bytes_new_take (n, strlen (n)) : NULL);
  }
  if (keys->len &&
      !ctl->store->put (ctl->store, (const char *const *)keys->pdata,
                        (GBytes *const *)values->pdata, keys->len, &err)) {
    ctl->store_errors++;
    ctl_log (ctl, "error", "what=\"cannot record the members at the stop: %s\"",
             err->message);
    g_error_free (err);
  }
  g_ptr_array_unref (keys);
  g_ptr_array_unref (values);
}

/* The start: each group's rejoin window, and why; then the members of a
 * clean stop are recorded as MEMBERS_RUNNING (the record says "they may
 * hold keys" until the last one leaves, whatever happens to this run). */
gboolean
group_members_start (mcsec_ctl_t *ctl, gboolean restarted, gint64 now,
                     GError **error)
{
  GPtrArray *keys = g_ptr_array_new ();
  GPtrArray *values =
      g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  GError *err = NULL;
  GBytes *marker = ctl->store->get (ctl->store, MEMBERS_MARKER, &err);
  guint window = ctl->cfg.rejoin_window_ms;
  gboolean ok = TRUE;

  if (err) {
    g_propagate_error (error, err);
    ok = FALSE;
    goto out;
  }
  for (guint i = 0; i < ctl->groups->len; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    gchar *why = NULL;
    if (!restarted)
      break; /* a fresh state: nobody holds a key of this controller */
    if (marker == NULL)
      why = g_strdup ("the state does not record who was joined (written "
                      "by an older controller)");
    else if (g->members_at_stop == MEMBERS_UNKNOWN)
      why = g_strdup ("members were joined when the last run ended "
                      "without a clean stop");
    else if (g->members_at_stop == MEMBERS_AWAITED)
      why = g_strdup ("the last run stopped before the members of the run "
                      "before it had rejoined");
    else if (g->members_at_stop)
      why = g_strdup_printf ("%u member%s joined at the last stop",
                             g->members_at_stop,
                             g->members_at_stop == 1 ? " was" : "s were");
    g->recovery_until_ms = why ? now + window : 0;
    g->awaiting_rejoin = why && window;
    ctl_log (ctl, "rejoin-window", "group=%s ms=%u why=\"%s\"", g->cfg->name,
             why ? window : 0,
             why ? why : "no member was joined at the last stop");
    g_free (why);
    if (g->members_recorded && g->members_at_stop != MEMBERS_UNKNOWN) {
      g_ptr_array_add (keys, g->members_key);
      g_ptr_array_add (values, g_bytes_new_static (MEMBERS_RUNNING,
                                                   strlen (MEMBERS_RUNNING)));
    }
  }
  if (marker == NULL) {
    g_ptr_array_add (keys, (gpointer)MEMBERS_MARKER);
    g_ptr_array_add (values, g_bytes_new_static ("1", 1));
  }
  if (keys->len &&
      !ctl->store->put (ctl->store, (const char *const *)keys->pdata,
                        (GBytes *const *)values->pdata, keys->len, error)) {
    ctl->store_errors++;
    ok = FALSE;
  }
out:
  if (marker)
    g_bytes_unref (marker);
  g_ptr_array_unref (keys);
  g_ptr_array_unref (values);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* SAs and updates: computed whole, then installed                            */

/* Blocks, not values: a recent SPI may be the base of a block of SPIs
 * (per-sender SPIs, docs/mike-protocol.md), and an SA whose SPI or block
 * overlaps another's is refused by a receiver holding both (spi-exists).
 * The widest block is 2^MCSEC_SPI_PER_SENDER_BITS_MAX, and the setting and
 * sender-id-bits may have changed across a restart: two SPIs collide when
 * they share that neighbourhood, whatever the group's blocks now. */
#define SPI_NEIGHBOURHOOD                                                      \
  (~((UINT32_C (1) << MCSEC_SPI_PER_SENDER_BITS_MAX) - 1))

static gboolean
spi_recent (mcsec_ctl_group_t *g, guint32 spi)
{
  spi &= SPI_NEIGHBOURHOOD;
  for (guint i = 0; i < g->n_recent_spis; i++)
    if ((g->recent_spis[i] & SPI_NEIGHBOURHOOD) == spi)
      return TRUE;
  return g->sa.valid && (g->sa.spi & SPI_NEIGHBOURHOOD) == spi;
}

/* A fresh SPI for the group, recorded in the store before it is used: no
 * restart hands out one the group used lately (members may still hold it
 * under another key).  With per-sender SPIs it is a block's base: the
 * Sender-ID's bits zero (SPI | Sender-ID is each sender's). */
static gboolean make_sa (mcsec_ctl_group_t *g, GroupSa *sa, guint32 spi,
                         const guint8 *group_key, gint64 now);

/* sa: for a unicast group, the new SA made with the SPI (and, in a
 * cluster whose store seals, recorded with it in one write: ctl-adopt.c). */
static gboolean
new_spi (mcsec_ctl_group_t *g, GroupSa *sa, gint64 now, guint32 *out,
         GError **error)
{
  for (guint attempt = 0;; attempt++) {
    guint32 spi, kept[SPIS_KEPT];
    guint n = 0;
    GString *s;
    gchar *keys[2];
    GBytes *values[2];
    guint n_puts = 1;
    GError *err = NULL;
    gboolean ok;

    do {
      if (RAND_bytes ((unsigned char *)&spi, sizeof spi) != 1) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                     "no random bytes for an SPI");
        return FALSE;
      }
      if (g->cfg->spi_per_sender)
        spi &= ~((UINT32_C (1) << g->cfg->sender_id_bits) - 1);
    } while (spi < MCSEC_SPI_MIN || spi_recent (g, spi));
    kept[n++] = spi;
    for (guint i = 0; i < g->n_recent_spis && n < SPIS_KEPT; i++)
      kept[n++] = g->recent_spis[i];
    s = g_string_new (NULL);
    for (guint i = 0; i < n; i++)
      g_string_append_printf (s, "%s%08x", i ? " " : "", kept[i]);
    keys[0] = group_key ("spis", g->cfg->name);
    values[0] = g_bytes_new (s->str, s->len);
    g_string_free (s, TRUE);
    if (sa && !make_sa (g, sa, spi, NULL, now)) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "no random bytes for a key");
      g_bytes_unref (values[0]);
      g_free (keys[0]);
      return FALSE;
    }
    if (sa && g->ctl->cfg.cluster && g->ctl->cfg.store_seals) {
      keys[1] = sa_record_key (g->cfg->name);
      values[1] = sa_record_build (g, sa);
      n_puts = 2;
    }
    ok = g->ctl->store->put (g->ctl->store, (const char *const *)keys, values,
                             n_puts, &err);
    if (!ok)
      g->ctl->store_errors++;
    for (guint i = 0; i < n_puts; i++) {
      if (i == 1)
        wipe_bytes (values[i]);
      else
        g_bytes_unref (values[i]);
      g_free (keys[i]);
    }
    if (ok) {
      memcpy (g->recent_spis, kept, n * sizeof *kept);
      g->n_recent_spis = n;
      *out = spi;
      return TRUE;
    }
    if (sa)
      OPENSSL_cleanse (sa, sizeof *sa);
    /* changed elsewhere, or our last write's outcome is unknown: read the
     * list again (and avoid what it holds) */
    if (attempt < 4 && g_error_matches (err, MCSEC_CTL_STORE_ERROR,
                                        MCSEC_CTL_STORE_ERROR_CONFLICT)) {
      g_clear_error (&err);
      if (spis_read (g, &err))
        continue;
    }
    g_propagate_error (error, err);
    return FALSE;
  }
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
  sa->sid_base = g->ctl->sid_ctr.next;
  /* later SAs are used after the activation delay, once every member had
   * time to install them; a group's first SA at once.  After a restart
   * members may still hold the previous run's SA and be reconnecting, so no
   * SA made before the rejoin window ends is used before it ends */
  sa->activate_ms = MAX (now + (g->sa.valid ? g->cfg->activation_ms : 0),
                         g->recovery_until_ms);
  return TRUE;
}

/* The group's SA and its sets, wiped. */
void
group_sa_clear (GroupSa *sa)
{
  if (sa->ids)
    g_hash_table_unref (sa->ids);
  if (sa->made_ids)
    g_hash_table_unref (sa->made_ids);
  OPENSSL_cleanse (sa, sizeof *sa);
}

static void
install_sa (mcsec_ctl_group_t *g, GroupSa *sa, const char *reason, gint64 now)
{
  group_sa_clear (&g->sa);
  g->sa = *sa;
  g->sa.ids = members_ids (g);
  g->sa.made_ids = members_ids (g);
  g->sa_stale = FALSE;
  g->record_dropped = FALSE; /* recorded with its SPI (new_spi) */
  /* a new key: every sender takes it with its current Sender-IDs */
  g_clear_pointer (&g->holders, g_hash_table_unref);
  g_clear_pointer (&g->departed, g_hash_table_unref);
  for (GList *l = g->sending.head; l; l = l->next) /* only they have any */
    ((mcsec_ctl_conn_t *)l->data)->n_old_ids = 0;
  g->record_due = 0; /* recorded with its SPI */
  OPENSSL_cleanse (sa, sizeof *sa);
  g->rekeys++;
  g->last_rekey_ms = now;
  g_free (g->last_rekey_reason);
  g->last_rekey_reason = g_strdup (reason);
  ctl_log (g->ctl, "rekey",
           "group=%s reason=%s spi=0x%08x suite=%s activate-in-ms=%u "
           "members=%u",
           g->cfg->name, reason, g->sa.spi, mcsec_suite_name (g->cfg->suite),
           (guint)(g->sa.activate_ms - now), g->members.length);
}

/* One SENDER attribute (a feedback member's datagrams are accepted as
 * RTCP only); 1 when listed (or counted), 0 past the limit. */
static guint
put_sender (mcsec_mike_builder_t *b, guint n, gboolean feedback, guint32 id,
            const guint8 *spki, gsize spki_len)
{
  if (n >= MCSEC_MIKE_MAX_SENDERS)
    return 0;
  if (b && feedback)
    mcsec_mike_put_feedback_sender (b, id, spki, spki_len);
  else if (b)
    mcsec_mike_put_sender (b, id, spki, spki_len);
  return 1;
}

/* The Sender-IDs an update lists: every sender's and feedback member's,
 * and under an adopted SA those its holders had (ctl-adopt.c); media
 * senders first: past MCSEC_MIKE_MAX_SENDERS, feedback members are the
 * ones left out, never a sender.  b: where to put them (NULL: count);
 * old: with the holders' earlier ones (an update of the adopted SA, not of
 * the SA that replaces it). */
static guint
list_senders (const mcsec_ctl_group_t *g, mcsec_mike_builder_t *b, gboolean old)
{
  guint n = 0;
  for (int feedback = 0; feedback < 2; feedback++) {
    GHashTableIter it;
    gpointer value;
    for (const GList *l = g->sending.head; l; l = l->next) {
      const mcsec_ctl_conn_t *m = l->data;
      if ((m->role == MCSEC_MIKE_ROLE_FEEDBACK) != feedback)
        continue;
      for (guint i = 0; i < m->n_sender_ids + (old ? m->n_old_ids : 0); i++)
        n += put_sender (b, n, feedback,
                         i < m->n_sender_ids ? m->sender_ids[i]
                                             : m->old_ids[i - m->n_sender_ids],
                         m->spki, m->spki_len);
    }
    if (g->holders == NULL || !old)
      continue;
    g_hash_table_iter_init (&it, g->holders);
    while (g_hash_table_iter_next (&it, NULL, &value)) {
      const Holder *h = value;
      if ((h->role == MCSEC_MIKE_ROLE_FEEDBACK) != feedback)
        continue;
      for (guint i = 0; i < h->n_ids; i++)
        n += put_sender (b, n, feedback, h->ids[i], h->spki, h->spki_len);
    }
  }
  return n;
}

/* Build and sign an update with the SA `sa` and the group's senders; for a
 * key tree group's member (path_for), its path keys and the first rekey it
 * follows on the channel.  NULL on failure (logged); *seq_out: its number. */
static GBytes *
build_update (mcsec_ctl_group_t *g, const GroupSa *gsa,
              mcsec_ctl_conn_t *path_for, guint64 *seq_out, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  gboolean old = g->sa.valid && gsa->spi == g->sa.spi;
  gsize cap = 2048 + list_senders (g, NULL, old) * (MCSEC_MIKE_MAX_SPKI + 8);
  guint8 *buf;
  mcsec_mike_builder_t b;
  mcsec_mike_sa_t sa;
  guint64 seq;
  size_t len;
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
  list_senders (g, &b, old);
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
    ctl_log (ctl, "error", "group=%s what=\"cannot build the update\"",
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
void
group_send_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *only, gint64 now)
{
  gsize len;
  const guint8 *data;
  GList *l, *next;
  if (!group_may_issue (g, now))
    return;

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
    ctl_log (g->ctl, "rekey-failed",
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
    ctl_log (g->ctl, "rekey-recovered", "group=%s after=\"%s\"", g->cfg->name,
             g->failed_reason);
  g->failed = FALSE;
  g->retry_due = 0;
  g_free (g->failed_reason);
  g->failed_reason = NULL;
}

/* Unicast groups: a new SA (new_key) or the same one to a new member set;
 * one signed update for everyone.  All or nothing. */
gboolean
group_rotate (mcsec_ctl_group_t *g, gboolean new_key, const char *reason,
              gint64 now)
{
  GroupSa sa;
  GBytes *u;
  guint64 seq;
  GError *err = NULL;
  guint32 spi;
  if (!group_may_issue (g, now))
    return FALSE;

  /* a group whose rotation failed owes a new key: a newcomer may be in
   * the list whose rekey failed, and must not get the current one */
  if (g->failed)
    new_key = TRUE;
  if (new_key || !g->sa.valid) {
    if (!new_spi (g, &sa, now, &spi, &err)) {
      gchar *why = g_strdup_printf ("no SPI: %s", err->message);
      g_error_free (err);
      group_fail (g, why, now);
      g_free (why);
      return FALSE;
    }
  } else {
    sa = g->sa;
    sa.ids = sa.made_ids = NULL; /* the group's own, not this copy's */
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

void
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

void
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
    ctl_log (g->ctl, "channel-error",
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
void
send_path_update (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gint64 now)
{
  guint64 seq;
  GBytes *u;
  gsize len;
  const guint8 *data;

  if (!group_may_issue (g, now))
    return;
  u = build_update (g, &g->sa, c, &seq, now);

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
void
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
  if (!group_may_issue (g, now))
    return;

  g->batch_due = 0;
  g_clear_pointer (&g->batch_reason, g_free);
  /* 1. everything that can fail without touching the tree */
  if (!counter_ensure (ctl, &g->rekey_ctr, mcsec_rekey_tx_next_seq (g->tx))) {
    group_fail (g, "cannot reserve a rekey number", now);
    return;
  }
  if (!new_spi (g, NULL, now, &spi, &err)) {
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
  /* media senders first, as in build_update */
  for (int feedback = 0; feedback < 2; feedback++)
    for (l = g->sending.head; l; l = l->next) {
      mcsec_ctl_conn_t *m = l->data;
      if ((m->role == MCSEC_MIKE_ROLE_FEEDBACK) != feedback)
        continue;
      for (guint i = 0; i < m->n_sender_ids && ns < MCSEC_MIKE_MAX_SENDERS;
           i++) {
        senders[ns].sender_id = m->sender_ids[i];
        senders[ns].spki = m->spki;
        senders[ns].feedback = feedback;
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
  tree_record (g, seq, now); /* the cluster: for the next leader */
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
  ctl_log (ctl, "rekey-sent",
           "group=%s seq=%" G_GUINT64_FORMAT " wrapped-keys=%zu datagrams=%u "
           "bytes=%zu members=%zu depth=%u",
           g->cfg->name, seq, n, parts, bytes, mcsec_lkh_members (g->tree),
           mcsec_lkh_depth (g->tree));
  for (l = g->members.head; l; l = next) {
    mcsec_ctl_conn_t *m = l->data;
    next = l->next;
    if (m->place_later)
      continue; /* not in the tree yet (ctl-tree.c) */
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
void
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
  /* an adopted tree's leaves are waiting for their members: a commit now
   * would reach the channel under keys of any that left unseen, so the
   * joins wait for the window's end (where those leave) */
  if (tree_window_open (g, now) && g->batch_due < g->recovery_until_ms)
    g->batch_due = g->recovery_until_ms;
}

/* c takes a new leaf of g's tree; its path goes out with the batch's
 * commit.  FALSE when the tree has no room (out of memory). */
gboolean
tree_place (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gint64 now)
{
  if (mcsec_lkh_join (g->tree, &c->leaf) != MCSEC_OK)
    return FALSE;
  c->in_tree = c->awaiting_path = TRUE;
  tree_note (g, c->leaf, c->identity);
  group_batch (g, "join", now);
  return TRUE;
}

void
tree_leave (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c)
{
  if (g->tree && c->in_tree) {
    if (mcsec_lkh_leave (g->tree, c->leaf) != MCSEC_OK)
      ctl_log (g->ctl, "error", "group=%s what=\"key tree: no leaf %u\"",
               g->cfg->name, c->leaf);
    else
      tree_note (g, c->leaf, NULL);
    c->in_tree = FALSE;
  }
}

/* A member asks for the channel's rekeys from SEQ on (it lacks them, or
 * the channel is silent for it), or for its path (SEQ 0, or older than
 * the controller keeps).  At most repair-per-s a second (a burst of
 * repair-burst): what a member asks beyond that is ignored, and a member
 * that asks without reading is disconnected by its output cap. */
void
group_repair (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, guint64 from,
              gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  guint64 oldest, newest;
  if (!group_may_issue (g, now))
    return;

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
    ctl_log (ctl, "resync", "group=%s identity=%s asked=%" G_GUINT64_FORMAT,
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
void
group_change (mcsec_ctl_group_t *g, gboolean new_key, const char *reason,
              gint64 now)
{
  if (!group_may_issue (g, now))
    return;
  if (g->tree) {
    /* a new group key at once, with whatever the batch holds */
    if (mcsec_lkh_refresh (g->tree) != MCSEC_OK) {
      group_fail (g, "key tree: out of memory", now);
      return;
    }
    /* an adopted tree's window (ctl-tree.c): only an eviction (an
     * administrator's, or a reload's, which commits only when it dropped
     * someone) commits before it ends; anything else waits for it */
    if (tree_window_open (g, now) && strcmp (reason, "evict") != 0 &&
        strcmp (reason, "reload") != 0) {
      group_batch (g, reason, now);
      return;
    }
    group_commit (g, reason, now);
    return;
  }
  group_rotate (g, new_key, reason, now);
}

/* A member goes (evicted): out of the group first, so no new key reaches
 * it, then told why (EVICTED, final) and closed.  The caller rekeys. */
void
group_drop_member (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *victim,
                   const char *why, gint64 now)
{
  members_remove (g, victim);
  victim->group = NULL;
  g->members_left = TRUE;
  tree_leave (g, victim);
  conn_goodbye (victim, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_EVICTED, why,
                now);
}

/* An evicted identity: its connection (if any) out of the group first, so
 * the new key does not reach it, then told; the rest rekeyed. */
void
group_evict_member (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *victim, gint64 now)
{
  if (victim)
    group_drop_member (g, victim, "evicted by an administrator", now);
  if (g->members.length)
    group_change (g, TRUE, "evict", now);
  else
    g->sa_stale = TRUE; /* whoever joins next gets a new SA */
}

void
member_left (mcsec_ctl_conn_t *c, const char *why, gint64 now)
{
  mcsec_ctl_group_t *g = c->group;

  (void)now;
  members_remove (g, c);
  ctl_log (g->ctl, "left", "group=%s identity=%s sender-id=%u why=\"%s\"",
           g->cfg->name, c->identity, c->sender_id, why);
  c->group = NULL;
  tree_leave (g, c);
  if (c->state == C_MEMBER)
    c->state = C_AWAIT_JOIN;
  if (g->ctl->stopping || !g->leading)
    return;
  departed_add (g, c);
  g->members_left = TRUE;
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

/* c is one of g's members: in its list, by its identity, and when its role
 * has Sender-IDs in g->sending (only those have Sender-IDs to list:
 * holder_is, old_ids_add need n_sender_ids).  Every update is built from
 * g->sending: walking all members for each member's update made a key
 * tree commit quadratic (16,384 joins took seconds, a 1,048,576-member
 * group never finished). */
void
members_add (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c)
{
  c->send_link.data = c;
  g_queue_push_tail_link (&g->members, &c->group_link);
  if (mcsec_mike_role_has_sender_ids (c->role))
    g_queue_push_tail_link (&g->sending, &c->send_link);
  g_hash_table_insert (g->by_identity, c->identity, c);
}

void
members_remove (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c)
{
  g_queue_unlink (&g->members, &c->group_link);
  if (mcsec_mike_role_has_sender_ids (c->role))
    g_queue_unlink (&g->sending, &c->send_link);
  if (g_hash_table_lookup (g->by_identity, c->identity) == c)
    g_hash_table_remove (g->by_identity, c->identity);
}

/* Sender-IDs c may send with under the group's SA besides its own (ids:
 * earliest first); past MCSEC_MIKE_MAX_SENDER_IDS the earliest are kept:
 * the ones a long-running mcsecenc took the SA with. */
void
old_ids_add (mcsec_ctl_conn_t *c, const guint32 *ids, guint n)
{
  for (guint i = 0; i < n && c->n_old_ids < G_N_ELEMENTS (c->old_ids); i++) {
    gboolean have = FALSE;
    for (guint k = 0; k < c->n_sender_ids; k++)
      have |= c->sender_ids[k] == ids[i];
    for (guint k = 0; k < c->n_old_ids; k++)
      have |= c->old_ids[k] == ids[i];
    if (!have)
      c->old_ids[c->n_old_ids++] = ids[i];
  }
}

/* A member leaves (or its connection is replaced) while the group keeps
 * its SA, which it holds.  A sender's mcsecenc changes Sender-ID only with
 * the SA, so if it joins again under this SA, with new Sender-IDs (never
 * one used under the key before), the ones it had are listed with them
 * (holder_back).  Until the SA changes (group_rotate, group_reset). */
void
departed_add (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c)
{
  Holder *h;
  guint n_old;

  if (!g->sa.valid)
    return;
  h = g_new0 (Holder, 1);
  h->identity = g_strdup (c->identity);
  h->role = c->role;
  memcpy (h->spki, c->spki, c->spki_len);
  h->spki_len = c->spki_len;
  /* the earliest it had (a long-running mcsecenc's), then its current ones
   * (a restarted sender's), always kept: past the limit, those between go */
  n_old = MIN (c->n_old_ids, G_N_ELEMENTS (h->ids) - c->n_sender_ids);
  memcpy (h->ids, c->old_ids, n_old * sizeof h->ids[0]);
  memcpy (h->ids + n_old, c->sender_ids, c->n_sender_ids * sizeof h->ids[0]);
  h->n_ids = n_old + c->n_sender_ids;
  holders_put (&g->departed, h);
}

/* Whether c, joining, is the sender h was: the same role and signing key
 * (a running mcsecenc signs with the key it started with; bound to another
 * key, its Sender-IDs would be anyone's who has the identity's
 * certificate). */
gboolean
holder_is (const Holder *h, const mcsec_ctl_conn_t *c)
{
  return c->n_sender_ids && h->role == c->role && h->spki_len == c->spki_len &&
         CRYPTO_memcmp (h->spki, c->spki, c->spki_len) == 0;
}

/* h (taken) into the identity -> Holder table *table, made on first use. */
void
holders_put (GHashTable **table, Holder *h)
{
  if (*table == NULL)
    *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, holder_free);
  g_hash_table_replace (*table, h->identity, h);
}

/* c joins again under the SA it held (table: an adopted SA's holders, or
 * the members that left the group's SA): the Sender-IDs it had stay listed
 * with its connection (its sender may go on with them) until the SA
 * changes, when it is the same sender (holder_is). */
void
holder_back (GHashTable *table, mcsec_ctl_conn_t *c)
{
  Holder *h = table ? g_hash_table_lookup (table, c->identity) : NULL;
  if (h == NULL)
    return;
  if (holder_is (h, c))
    old_ids_add (c, h->ids, h->n_ids);
  g_hash_table_remove (table, c->identity);
}

void
run_deferred (mcsec_ctl_t *ctl, gint64 now)
{
  /* the last member left: nobody holds the group's keys any more (the
   * record stays when it cannot be removed: a restart waits, no harm; and
   * in the rejoin window, while the last run's members may come back) */
  for (guint i = 0; i < ctl->groups->len && !ctl->stopping; i++) {
    mcsec_ctl_group_t *g = ctl->groups->pdata[i];
    if (g->members_left && g->members.length == 0 && g->members_recorded &&
        !g->awaiting_rejoin && !ctl->cfg.cluster &&
        store_put1 (ctl, g->members_key, NULL, NULL))
      g->members_recorded = FALSE;
    g->members_left = FALSE;
    group_record_stale (g, now); /* the cluster: nobody adopts a stale SA */
  }
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
