/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A key tree group's tree in the store, for the next leader (docs/cluster.md,
 * "Key trees in etcd").  With a cluster key, the leader writes after each
 * commit, sealed, under "sealed/tree/GROUP/": a snapshot of the tree
 * (mcsec_lkh_export, and each member's leaf by identity) in chunks, then the
 * changes of each commit (mcsec_lkh_export_changes, and the leaves given or
 * freed), one entry per commit in the same store write as the group's SA
 * record (ctl-adopt.c).  When the changes since the snapshot outgrow it, the
 * next commit writes a new snapshot under a new generation and the old
 * entries are deleted.
 *
 * Key: sealed/tree/GROUP/GENERATION-INDEX (16 and 8 hexadecimal digits;
 * the snapshot's chunks first, from 0).  Entry (big-endian): version (1: 1)
 * | kind (1: 0 a snapshot's chunk, 1 a commit's changes) | SPI (4: the
 * group's SA after the commit) | rekey number (8: the commit's on the
 * channel) | chunks (4: the snapshot's) | body.  A snapshot's chunks' bodies
 * together: export length (4) | export | n (4) | n leaves: leaf (4) |
 * identity length (2) | identity.  A changes body: changes length (4) |
 * changes | n (4) | n leaves as in the snapshot, identity length 0 for a
 * leaf freed.
 *
 * The next leader adopts the tree with the group's SA (ctl-adopt.c) when
 * the last entry of a generation names that SA's SPI: the members keep
 * their leaves and paths, rejoin without a commit, and the channel's rekey
 * numbers go on from the last one.  Any gap (a write lost, a commit whose
 * entry did not make it) leaves a last SPI that is not the group's newest,
 * and the tree is not adopted: a new one is made, as without a cluster key.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ctl-private.h"

#define ENTRY_VERSION 1
#define ENTRY_HEAD 18
#define CHUNK_MAX (1000 * 1000) /* etcd's requests: at most 1.5 MiB */
#define LOG_MIN (256 * 1024)    /* changes kept before a new snapshot */
#define LOG_ENTRIES_MAX 4096
#define DELETE_BATCH 100 /* keys per etcd transaction (etcd: at most 128) */

enum { ENTRY_CHUNK = 0, ENTRY_CHANGES = 1 };

static gchar *
tree_prefix (const char *group)
{
  gchar *k = group_key ("sealed/tree", group);
  gchar *p = g_strconcat (k, "/", NULL);
  g_free (k);
  return p;
}

static gchar *
entry_key (const char *group, guint64 gen, guint32 index)
{
  gchar *p = tree_prefix (group);
  gchar *k =
      g_strdup_printf ("%s%016" G_GINT64_MODIFIER "x-%08x", p, gen, index);
  g_free (p);
  return k;
}

static void
put_leaf (GByteArray *b, guint32 leaf, const char *identity)
{
  gsize len = identity ? strlen (identity) : 0;
  put_be (b, leaf, 4);
  put_be (b, len, 2);
  g_byte_array_append (b, (const guint8 *)identity, (guint)len);
}

static gboolean
recording (mcsec_ctl_group_t *g)
{
  return g->ctl->cfg.cluster && g->ctl->cfg.store_seals && g->tree &&
         g->leading && !g->ctl->stopping;
}

/* A leaf left the tree; the commit that takes its keys away comes with the
 * batch.  Until that commit's entry is written, the store's tree still
 * holds the leaf, and a leader adopting it would wrap its next key under
 * keys the departed member holds.  So the SA record goes at once (the tree
 * is adopted only with it), as an eviction's does; the commit writes it
 * again.  A deletion etcd refuses is tried again at the next leave and
 * the commit's write replaces the record anyway. */
static void
record_drop (mcsec_ctl_group_t *g)
{
  gchar *key;
  GError *err = NULL;

  if (g->tree_record_dropped)
    return;
  key = sa_record_key (g->cfg->name);
  if (store_put1 (g->ctl, key, NULL, &err)) {
    g->tree_record_dropped = TRUE;
    g->tree_drop_pending = FALSE;
  } else {
    g->tree_drop_pending = TRUE; /* tried again every second */
    ctl_log (g->ctl, "error",
             "group=%s what=\"cannot delete the SA's record after a leave: "
             "%s\"",
             g->cfg->name, err->message);
    g_error_free (err);
  }
  g_free (key);
}

void
tree_note (mcsec_ctl_group_t *g, guint32 leaf, const char *identity)
{
  if (!recording (g))
    return;
  if (identity == NULL)
    record_drop (g);
  if (g->tlog_gen == 0)
    return; /* the next snapshot holds it */
  if (g->tree_notes == NULL)
    g->tree_notes = g_byte_array_new ();
  put_leaf (g->tree_notes, leaf, identity);
  g->tree_notes_n++;
}

static void
notes_clear (mcsec_ctl_group_t *g)
{
  g_clear_pointer (&g->tree_notes, g_byte_array_unref);
  g->tree_notes_n = 0;
}

void
tree_log_reset (mcsec_ctl_group_t *g)
{
  notes_clear (g);
  g->tlog_gen = 0;
  g->tlog_next = g->tlog_chunks = 0;
  g->tlog_bytes = g->tlog_snapshot_bytes = 0;
  g->tree_record_dropped = g->tree_drop_pending = FALSE;
  g->tree_retry_due = 0;
  g_clear_pointer (&g->tree_leaves, g_hash_table_unref);
}

static void
wipe_array (GByteArray *b)
{
  if (b) {
    OPENSSL_cleanse (b->data, b->len);
    g_byte_array_unref (b);
  }
}

static GBytes *
entry_value (guint kind, guint32 spi, guint64 seq, guint32 chunks,
             const guint8 *body, gsize len)
{
  GByteArray *b = g_byte_array_sized_new ((guint)(ENTRY_HEAD + len));
  GBytes *v;
  put_be (b, ENTRY_VERSION, 1);
  put_be (b, kind, 1);
  put_be (b, spi, 4);
  put_be (b, seq, 8);
  put_be (b, chunks, 4);
  g_byte_array_append (b, body, (guint)len);
  v = g_bytes_new (b->data, b->len);
  wipe_array (b);
  return v;
}

/* The store write of one entry, with the SA record when sa_record. */
static gboolean
put_entry (mcsec_ctl_group_t *g, guint64 gen, guint32 index, GBytes *value,
           gboolean sa_record, GError **error)
{
  gchar *keys[2] = {entry_key (g->cfg->name, gen, index),
                    sa_record_key (g->cfg->name)};
  GBytes *values[2] = {value, sa_record ? sa_record_build (g, &g->sa) : NULL};
  gboolean ok = store_put (g->ctl, (const char *const *)keys, values,
                           sa_record ? 2 : 1, error);
  if (values[1])
    wipe_bytes (values[1]);
  g_free (keys[0]);
  g_free (keys[1]);
  return ok;
}

/* Every entry of the group's but those of generation keep (0: all). */
static void
delete_others (mcsec_ctl_group_t *g, guint64 keep)
{
  gchar *prefix = tree_prefix (g->cfg->name);
  gchar *mine = g_strdup_printf ("%s%016" G_GINT64_MODIFIER "x-", prefix, keep);
  GPtrArray *keys = g->ctl->store->list (g->ctl->store, prefix, NULL);
  GPtrArray *gone = g_ptr_array_new ();
  GError *err = NULL;

  for (guint i = 0; keys && i < keys->len; i++)
    if (keep == 0 || !g_str_has_prefix (keys->pdata[i], mine))
      g_ptr_array_add (gone, keys->pdata[i]);
  for (guint i = 0; i < gone->len && err == NULL; i += DELETE_BATCH) {
    guint n = MIN (DELETE_BATCH, gone->len - i);
    GBytes **none = g_new0 (GBytes *, n);
    store_put (g->ctl, (const char *const *)gone->pdata + i, none, n, &err);
    g_free (none);
  }
  if (err) {
    /* left for the next snapshot; their SPI is not the newest */
    ctl_log (g->ctl, "error",
             "group=%s what=\"cannot delete the old key tree entries: %s\"",
             g->cfg->name, err->message);
    g_error_free (err);
  }
  g_ptr_array_unref (gone);
  if (keys)
    g_ptr_array_unref (keys);
  g_free (mine);
  g_free (prefix);
}

static gboolean
write_snapshot (mcsec_ctl_group_t *g, guint64 seq, GError **error)
{
  gsize len = mcsec_lkh_export_len (g->tree), total, leaves = 0;
  GByteArray *b;
  guint32 n = 0, chunks;
  gsize n_at;
  guint64 gen = 0;
  gboolean ok = TRUE;

  /* sized once: the buffer holds every node key, and a GByteArray that
   * grows leaves copies behind in freed memory */
  for (GList *l = g->members.head; l; l = l->next)
    if (((mcsec_ctl_conn_t *)l->data)->in_tree)
      leaves += 6 + strlen (((mcsec_ctl_conn_t *)l->data)->identity);
  if (g->tree_leaves) {
    GHashTableIter it;
    gpointer id;
    g_hash_table_iter_init (&it, g->tree_leaves);
    while (g_hash_table_iter_next (&it, &id, NULL))
      leaves += 6 + strlen (id);
  }
  b = g_byte_array_sized_new ((guint)(8 + len + leaves));
  mcsec_lkh_changes_clear (g->tree);
  notes_clear (g);
  while (gen == 0)
    if (RAND_bytes ((unsigned char *)&gen, sizeof gen) != 1) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "no random bytes");
      g_byte_array_unref (b);
      return FALSE;
    }
  put_be (b, len, 4);
  g_byte_array_set_size (b, (guint)(4 + len));
  if (len == 0 || mcsec_lkh_export (g->tree, b->data + 4, len) != MCSEC_OK) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                 "the key tree does not export");
    wipe_array (b);
    return FALSE;
  }
  n_at = b->len;
  put_be (b, 0, 4);
  for (GList *l = g->members.head; l; l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    if (m->in_tree) {
      put_leaf (b, m->leaf, m->identity);
      n++;
    }
  }
  if (g->tree_leaves) {
    GHashTableIter it;
    gpointer id, leaf;
    g_hash_table_iter_init (&it, g->tree_leaves);
    while (g_hash_table_iter_next (&it, &id, &leaf)) {
      put_leaf (b, GPOINTER_TO_UINT (leaf), id);
      n++;
    }
  }
  for (guint i = 0; i < 4; i++)
    b->data[n_at + i] = (guint8)(n >> (8 * (3 - i)));
  total = b->len;
  chunks = (guint32)((total + CHUNK_MAX - 1) / CHUNK_MAX);
  for (guint32 i = 0; i < chunks && ok; i++) {
    gsize off = (gsize)i * CHUNK_MAX, part = MIN (CHUNK_MAX, total - off);
    GBytes *v =
        entry_value (ENTRY_CHUNK, g->sa.spi, seq, chunks, b->data + off, part);
    ok = put_entry (g, gen, i, v, i + 1 == chunks, error);
    wipe_bytes (v);
  }
  wipe_array (b);
  if (!ok)
    return FALSE;
  g->tlog_gen = gen;
  g->tree_drop_pending = FALSE; /* written anew with the last chunk */
  g->tlog_next = g->tlog_chunks = chunks;
  g->tlog_bytes = 0;
  g->tlog_snapshot_bytes = total;
  delete_others (g, gen);
  return TRUE;
}

void
tree_record (mcsec_ctl_group_t *g, guint64 seq, gint64 now)
{
  gsize len, body_len;
  GError *err = NULL;
  gboolean ok;

  if (!recording (g))
    return;
  /* this write holds the SA record (whatever its outcome, the next leave
   * deletes it again) */
  g->tree_record_dropped = FALSE;
  len = mcsec_lkh_changes_len (g->tree);
  body_len = 8 + len + (g->tree_notes ? g->tree_notes->len : 0);
  if (g->tlog_gen == 0 || len == 0 ||
      g->tlog_bytes + body_len > MAX (g->tlog_snapshot_bytes, LOG_MIN) ||
      g->tlog_next >= LOG_ENTRIES_MAX || body_len > CHUNK_MAX) {
    ok = write_snapshot (g, seq, &err);
  } else {
    GByteArray *b = g_byte_array_sized_new ((guint)body_len);
    GBytes *v;
    put_be (b, len, 4);
    g_byte_array_set_size (b, (guint)(4 + len));
    ok = mcsec_lkh_export_changes (g->tree, b->data + 4, len) == MCSEC_OK;
    put_be (b, g->tree_notes_n, 4);
    if (g->tree_notes)
      g_byte_array_append (b, g->tree_notes->data, g->tree_notes->len);
    notes_clear (g);
    v = entry_value (ENTRY_CHANGES, g->sa.spi, seq, g->tlog_chunks, b->data,
                     b->len);
    wipe_array (b);
    if (!ok)
      g_set_error (&err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "the key tree's changes do not export");
    else
      ok = put_entry (g, g->tlog_gen, g->tlog_next, v, TRUE, &err);
    wipe_bytes (v);
    if (ok) {
      g->tlog_next++;
      g->tlog_bytes += body_len;
      g->tree_drop_pending = FALSE; /* written anew with the entry */
    }
  }
  if (!ok) {
    /* the log has a gap: the next commit writes a snapshot; until then the
     * store's last entry names an older SPI, and nobody adopts it */
    ctl_log (g->ctl, "error",
             "group=%s what=\"cannot record the key tree: %s\"", g->cfg->name,
             err->message);
    g_error_free (err);
    g->tlog_gen = 0;
    notes_clear (g);
    g->tree_retry_due = now + RETRY_MS;
  } else {
    g->tree_retry_due = 0;
  }
}

/* A write that failed is tried again (a snapshot) until it lands, so that
 * a quiet group can still be adopted.  Also before a handoff (due now).
 * FALSE while the store holds no tree for the group's SA. */
gboolean
tree_record_due (mcsec_ctl_group_t *g, gint64 now)
{
  GError *err = NULL;
  if (!recording (g))
    return TRUE;
  if (g->tree_drop_pending && now >= g->tree_retry_due) {
    record_drop (g); /* a leave's deletion etcd refused */
    if (g->tree_drop_pending)
      g->tree_retry_due = now + RETRY_MS;
  }
  if (g->tree_retry_due == 0 || g->tree_drop_pending)
    return !g->tree_drop_pending && g->tree_retry_due == 0;
  if (now < g->tree_retry_due)
    return FALSE;
  if (g->failed || mcsec_lkh_pending (g->tree)) {
    /* a commit (or the group's retry) writes it: no spin meanwhile */
    g->tree_retry_due = now + RETRY_MS;
    return FALSE;
  }
  if (write_snapshot (g, mcsec_rekey_tx_next_seq (g->tx) - 1, &err)) {
    g->tree_retry_due = 0;
    return TRUE;
  }
  ctl_log (g->ctl, "error", "group=%s what=\"cannot record the key tree: %s\"",
           g->cfg->name, err->message);
  g_error_free (err);
  g->tree_retry_due = now + RETRY_MS;
  return FALSE;
}

/* ---- adoption ---- */

typedef struct {
  guint kind;
  guint32 spi, chunks;
  guint64 seq;
  GBytes *value;
} Entry;

static gboolean
entry_parse (GBytes *v, Entry *e)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (v, &len), *end;
  guint64 x;
  if (p == NULL || len < ENTRY_HEAD || p[0] != ENTRY_VERSION ||
      p[1] > ENTRY_CHANGES)
    return FALSE;
  end = p + len;
  e->kind = p[1];
  p += 2;
  get_be (&p, end, 4, &x);
  e->spi = (guint32)x;
  get_be (&p, end, 8, &e->seq);
  get_be (&p, end, 4, &x);
  e->chunks = (guint32)x;
  e->value = v;
  return e->chunks > 0;
}

/* The leaves of a body (after its tree part), into leaf -> identity. */
static gboolean
leaves_apply (const guint8 **p, const guint8 *end, GHashTable *by_leaf,
              gboolean snapshot)
{
  guint64 n, leaf, len;
  if (!get_be (p, end, 4, &n))
    return FALSE;
  for (guint64 i = 0; i < n; i++) {
    if (!get_be (p, end, 4, &leaf) || !get_be (p, end, 2, &len) ||
        (gsize)(end - *p) < len || (snapshot && len == 0) ||
        memchr (*p, 0, (gsize)len) != NULL)
      return FALSE;
    if (len)
      g_hash_table_insert (by_leaf, GUINT_TO_POINTER ((guint32)leaf),
                           g_strndup ((const char *)*p, (gsize)len));
    else
      g_hash_table_remove (by_leaf, GUINT_TO_POINTER ((guint32)leaf));
    *p += len;
  }
  return *p == end;
}

/* The tree of one generation's entries (in index order), or NULL with
 * *why. */
static mcsec_lkh_t *
tree_build (GArray *entries, GHashTable *by_leaf, const char **why)
{
  Entry *e = (Entry *)entries->data;
  guint32 chunks = e[0].chunks;
  GByteArray *snap = g_byte_array_new ();
  GPtrArray *changes = g_ptr_array_new ();
  GArray *lens = g_array_new (FALSE, FALSE, sizeof (gsize));
  mcsec_lkh_t *tree = NULL;
  const guint8 *p, *end;
  guint64 len;

  *why = "a malformed entry";
  if (chunks > entries->len)
    goto out;
  {
    /* sized once: the snapshot holds every node key (no copy left behind
     * by a growing array) */
    gsize total = 0, vl;
    for (guint i = 0; i < chunks; i++) {
      g_bytes_get_data (e[i].value, &vl);
      total += vl - ENTRY_HEAD;
    }
    g_byte_array_unref (snap);
    snap = g_byte_array_sized_new ((guint)total);
  }
  for (guint i = 0; i < entries->len; i++) {
    gsize vl;
    const guint8 *d = g_bytes_get_data (e[i].value, &vl);
    if (e[i].chunks != chunks ||
        e[i].kind != (i < chunks ? ENTRY_CHUNK : ENTRY_CHANGES))
      goto out;
    if (i < chunks)
      g_byte_array_append (snap, d + ENTRY_HEAD, (guint)(vl - ENTRY_HEAD));
  }
  if (snap->len == 0)
    goto out;
  p = snap->data;
  end = p + snap->len;
  if (!get_be (&p, end, 4, &len) || (gsize)(end - p) < len)
    goto out;
  {
    const guint8 *tree_at = p;
    p += len;
    if (!leaves_apply (&p, end, by_leaf, TRUE))
      goto out;
    for (guint i = chunks; i < entries->len; i++) {
      gsize vl, cl;
      const guint8 *d = g_bytes_get_data (e[i].value, &vl);
      const guint8 *q = d + ENTRY_HEAD, *qend = d + vl;
      guint64 x;
      if (!get_be (&q, qend, 4, &x) || (gsize)(qend - q) < x)
        goto out;
      cl = (gsize)x;
      g_ptr_array_add (changes, (gpointer)q);
      g_array_append_val (lens, cl);
      q += cl;
      if (!leaves_apply (&q, qend, by_leaf, FALSE))
        goto out;
    }
    if (mcsec_lkh_import_log (tree_at, (gsize)len,
                              (const uint8_t *const *)changes->pdata,
                              (const size_t *)(void *)lens->data, changes->len,
                              &tree) != MCSEC_OK)
      goto out;
  }
  /* every leaf named is one, and every one is named */
  {
    GHashTableIter it;
    gpointer leaf;
    g_hash_table_iter_init (&it, by_leaf);
    while (g_hash_table_iter_next (&it, &leaf, NULL))
      if (!mcsec_lkh_is_member (tree, GPOINTER_TO_UINT (leaf)))
        g_clear_pointer (&tree, mcsec_lkh_free);
    if (tree && mcsec_lkh_members (tree) != g_hash_table_size (by_leaf))
      g_clear_pointer (&tree, mcsec_lkh_free);
  }
  if (tree)
    *why = NULL;
out:
  wipe_array (snap);
  g_ptr_array_unref (changes);
  g_array_unref (lens);
  return tree;
}

/* GENERATION-INDEX after the prefix. */
static gboolean
entry_name (const char *key, gsize plen, guint64 *gen, guint32 *index)
{
  const char *s = key + plen;
  gchar *end;
  if (strlen (key) != plen + 25 || s[16] != '-' || !g_ascii_isxdigit (s[0]) ||
      !g_ascii_isxdigit (s[17]))
    return FALSE;
  *gen = g_ascii_strtoull (s, &end, 16);
  if (end != s + 16)
    return FALSE;
  *index = (guint32)g_ascii_strtoull (s + 17, &end, 16);
  return end == s + 25;
}

static void
entries_free (GArray *entries)
{
  for (guint i = 0; i < entries->len; i++) {
    Entry *e = &g_array_index (entries, Entry, i);
    if (e->value)
      g_bytes_unref (e->value); /* the store's copy wipes itself */
  }
  g_array_unref (entries);
}

mcsec_lkh_t *
tree_log_parse (GBytes *const *values, guint n, GHashTable *by_leaf,
                guint64 *last_seq)
{
  GArray *entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  mcsec_lkh_t *tree = NULL;
  const char *why;
  for (guint i = 0; i < n; i++) {
    Entry e = {0};
    if (!entry_parse (values[i], &e))
      goto out;
    g_bytes_ref (values[i]);
    g_array_append_val (entries, e);
  }
  if (n && (tree = tree_build (entries, by_leaf, &why)) != NULL)
    *last_seq = g_array_index (entries, Entry, n - 1).seq;
out:
  entries_free (entries);
  return tree;
}

/* The values of keys[0..n) (sorted): in one range read where the store
 * has one, else key by key.  FALSE on a read error (values all NULL). */
static gboolean
get_values (mcsec_ctl_store_t *store, const char *const *keys, guint n,
            GBytes **values, GError **error)
{
  if (store->get_many)
    return store->get_many (store, keys, n, values, error);
  memset (values, 0, n * sizeof *values);
  for (guint i = 0; i < n; i++) {
    GError *err = NULL;
    values[i] = store->get (store, keys[i], &err);
    if (err) {
      g_propagate_error (error, err);
      for (guint k = 0; k < i; k++)
        g_clear_pointer (&values[k], g_bytes_unref);
      return FALSE;
    }
  }
  return TRUE;
}

/* Read one generation's entries (keys[from..to)), in order. */
static GArray *
read_entries (mcsec_ctl_group_t *g, GPtrArray *keys, guint from, guint to,
              GError **error)
{
  GArray *entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  guint n = to - from;
  GBytes **values = g_new0 (GBytes *, n ? n : 1);
  GError *err = NULL;
  gboolean ok = get_values (
      g->ctl->store, (const char *const *)keys->pdata + from, n, values, &err);

  for (guint i = 0; i < n && ok; i++) {
    Entry e = {0};
    if (values[i] == NULL || !entry_parse (values[i], &e)) {
      ok = FALSE;
    } else {
      g_array_append_val (entries, e);
      values[i] = NULL; /* (the entry holds its reference) */
    }
  }
  for (guint i = 0; i < n; i++)
    if (values[i])
      g_bytes_unref (values[i]); /* the store's copy wipes itself */
  g_free (values);
  if (ok)
    return entries;
  if (err && err->domain == MCSEC_CTL_STORE_ERROR) {
    g_propagate_error (error, err);
  } else {
    g_clear_error (&err);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s",
                 "an entry that does not open");
  }
  entries_free (entries);
  return NULL;
}

/* The senders of the adopted tree (the SA record's holders with
 * Sender-IDs) leave it at once, their leaves' changes queued for the next
 * commit: a sender rejoins as a newcomer anyway, and one that has not
 * rejoined must never follow the channel to a new key, under which it
 * would go on with Sender-IDs that the new key's newcomers may be given
 * (nonce reuse).  Its earlier Sender-IDs stay listed under the adopted SA
 * meanwhile (holders). */
static void
senders_out (mcsec_ctl_group_t *g)
{
  GHashTableIter it;
  gpointer id, leaf;
  g_hash_table_iter_init (&it, g->tree_leaves);
  while (g_hash_table_iter_next (&it, &id, &leaf)) {
    const Holder *h = g->holders ? g_hash_table_lookup (g->holders, id) : NULL;
    if (h == NULL || h->n_ids == 0)
      continue;
    if (mcsec_lkh_leave (g->tree, GPOINTER_TO_UINT (leaf)) != MCSEC_OK)
      continue;
    g_hash_table_iter_remove (&it);
  }
}

/* The tree's group key gives the adopted SA's key (a key tree group's SA
 * key is derived from it, ctl-group.c make_sa): the tree is the SA's. */
static gboolean
gives_sa_key (mcsec_ctl_group_t *g, mcsec_lkh_t *tree)
{
  guint8 key[MCSEC_MIKE_MAX_KEY_LEN];
  gboolean same;
  if (g->sa.key_len == 0 || g->sa.key_len > sizeof key ||
      mcsec_lkh_derive_sa_key (mcsec_lkh_group_key (tree), g->cfg->name,
                               g->sa.spi, g->sa.suite, key,
                               g->sa.key_len) != MCSEC_OK)
    return FALSE;
  same = CRYPTO_memcmp (key, g->sa.key, g->sa.key_len) == 0;
  OPENSSL_cleanse (key, sizeof key);
  return same;
}

gboolean
tree_adopt (mcsec_ctl_group_t *g, guint64 *last_seq, GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;
  gchar *prefix = tree_prefix (g->cfg->name);
  GPtrArray *keys = ctl->store->list (ctl->store, prefix, error);
  gsize plen = strlen (prefix);
  const char *why = "no key tree recorded for the SA";
  gboolean ok = keys != NULL;

  /* generations in key order; each one's log runs from index 0 to its
   * first gap */
  for (guint i = 0, j; keys && i < keys->len && why; i = j) {
    guint64 gen, g2;
    guint32 idx;
    guint run = 0;
    GArray *entries;
    GError *err = NULL;
    GHashTable *by_leaf;
    mcsec_lkh_t *tree;
    if (!entry_name (keys->pdata[i], plen, &gen, &idx)) {
      j = i + 1;
      continue;
    }
    for (j = i; j < keys->len && entry_name (keys->pdata[j], plen, &g2, &idx) &&
                g2 == gen;
         j++)
      if (idx == j - i && run == j - i)
        run++;
    if (run == 0)
      continue;
    /* its last entry first: only the newest SA's log is read whole */
    entries = read_entries (g, keys, i + run - 1, i + run, &err);
    if (entries && g_array_index (entries, Entry, 0).spi != g->sa.spi) {
      entries_free (entries);
      continue;
    }
    if (entries) {
      entries_free (entries);
      entries = read_entries (g, keys, i, i + run, &err);
    }
    if (entries == NULL) {
      if (err->domain == MCSEC_CTL_STORE_ERROR) {
        g_propagate_error (error, err);
        ok = FALSE;
        break;
      }
      why = "an entry that does not open";
      g_error_free (err);
      continue;
    }
    by_leaf = g_hash_table_new_full (NULL, NULL, NULL, g_free);
    tree = tree_build (entries, by_leaf, &why);
    if (tree && !gives_sa_key (g, tree)) {
      /* an older generation whose last SPI came round again */
      why = "its group key does not give the SA's key";
      g_clear_pointer (&tree, mcsec_lkh_free);
    }
    if (tree) {
      GHashTableIter it;
      gpointer leaf, id;
      g->tree_leaves =
          g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_iter_init (&it, by_leaf);
      while (g_hash_table_iter_next (&it, &leaf, &id) && !why) {
        if (g_hash_table_contains (g->evicted, id))
          why = "a member that held it is evicted";
        else if (!g_hash_table_contains (g->senders, id) &&
                 !g_hash_table_contains (g->receivers, id))
          why = "a member that held it is no longer listed";
        else if (!g_hash_table_insert (g->tree_leaves, g_strdup (id), leaf))
          why = "an identity with two leaves";
      }
      if (why) {
        g_clear_pointer (&g->tree_leaves, g_hash_table_unref);
        mcsec_lkh_free (tree);
      } else {
        g->tree = tree;
        *last_seq = g_array_index (entries, Entry, entries->len - 1).seq;
        senders_out (g);
        ctl_log (ctl, "adopt",
                 "group=%s spi=0x%08x holders=%u leaves=%u entries=%u "
                 "rekey-seq=%" G_GUINT64_FORMAT,
                 g->cfg->name, g->sa.spi,
                 g->holders ? g_hash_table_size (g->holders) : 0,
                 g_hash_table_size (g->tree_leaves), entries->len, *last_seq);
      }
    }
    g_hash_table_unref (by_leaf);
    entries_free (entries);
  }
  if (ok && why)
    ctl_log (ctl, "adopt-skipped", "group=%s spi=0x%08x why=\"key tree: %s\"",
             g->cfg->name, g->sa.spi, why);
  if (keys)
    g_ptr_array_unref (keys);
  g_free (prefix);
  return ok;
}

/* ---- the adopted leaves ---- */

gboolean
tree_leaf_back (mcsec_ctl_group_t *g, mcsec_ctl_conn_t *c, gboolean rekey)
{
  gpointer leaf;
  if (g->tree_leaves == NULL ||
      !g_hash_table_lookup_extended (g->tree_leaves, c->identity, NULL, &leaf))
    return FALSE;
  g_hash_table_remove (g->tree_leaves, c->identity);
  if (rekey || c->n_sender_ids) {
    /* a sender's new Sender-IDs go to everyone with a commit (and a group
     * that owes a new key makes one): it joins as a newcomer, its old leaf
     * (and the keys it had) out */
    if (mcsec_lkh_leave (g->tree, GPOINTER_TO_UINT (leaf)) == MCSEC_OK)
      tree_note (g, GPOINTER_TO_UINT (leaf), NULL);
    return FALSE;
  }
  c->leaf = GPOINTER_TO_UINT (leaf);
  c->in_tree = TRUE;
  return TRUE;
}

gboolean
tree_leaf_waiting (mcsec_ctl_group_t *g, const char *identity, gboolean sends)
{
  return g->tree_leaves && !sends &&
         g_hash_table_contains (g->tree_leaves, identity);
}

guint
tree_leaves_drop (mcsec_ctl_group_t *g, const char *only, GHashTable *senders,
                  GHashTable *receivers, gint64 now)
{
  GHashTableIter it;
  gpointer id, leaf;
  guint n = 0;

  if (g->tree_leaves == NULL || g->tree == NULL)
    return 0;
  g_hash_table_iter_init (&it, g->tree_leaves);
  while (g_hash_table_iter_next (&it, &id, &leaf)) {
    const Holder *h = g->holders ? g_hash_table_lookup (g->holders, id) : NULL;
    gboolean sends = h && (h->role & MCSEC_MIKE_ROLE_SENDER);
    if (only && strcmp (only, id) != 0)
      continue;
    /* a reload: the rule of the connected members' (reload_group) */
    if (!only && senders &&
        (g_hash_table_contains (senders, id) ||
         (!sends && g_hash_table_contains (receivers, id))))
      continue;
    if (mcsec_lkh_leave (g->tree, GPOINTER_TO_UINT (leaf)) == MCSEC_OK)
      tree_note (g, GPOINTER_TO_UINT (leaf), NULL);
    g_hash_table_iter_remove (&it);
    n++;
  }
  /* the members that have not rejoined follow the channel: the commit
   * goes out whether anyone is connected or not */
  if (n)
    group_batch (g,
                 only      ? "evict"
                 : senders ? "reload"
                           : "left-during-failover",
                 now);
  return n;
}

/* The adopted tree's leaves are waiting for their members (one may have
 * left unseen): no commit but an eviction's (or a reload's that drops
 * someone) goes out, and newcomers are
 * placed in the tree only when it closes. */
gboolean
tree_window_open (mcsec_ctl_group_t *g, gint64 now)
{
  return g->tree_leaves && g_hash_table_size (g->tree_leaves) &&
         now < g->recovery_until_ms;
}

/* The window closed: the newcomers that joined in it take their leaves,
 * committed with the missing members' leaves gone. */
static void
place_newcomers (mcsec_ctl_group_t *g, gint64 now)
{
  GList *l, *next;
  for (l = g->members.head; l; l = next) {
    mcsec_ctl_conn_t *c = l->data;
    next = l->next;
    if (!c->place_later)
      continue;
    c->place_later = FALSE;
    if (!tree_place (g, c, now)) {
      ctl_log (g->ctl, "error", "group=%s what=\"key tree: out of memory\"",
               g->cfg->name);
      group_drop_member (g, c, "key tree: out of memory", now);
    }
  }
}

void
tree_leaves_due (mcsec_ctl_group_t *g, gint64 now)
{
  guint missing;
  if (g->tree_leaves == NULL || tree_window_open (g, now))
    return;
  missing = tree_leaves_drop (g, NULL, NULL, NULL, now);
  g_clear_pointer (&g->tree_leaves, g_hash_table_unref);
  if (missing)
    ctl_log (g->ctl, "holders-missing", "group=%s missing=%u rekey=yes",
             g->cfg->name, missing);
  place_newcomers (g, now);
}
