/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec_ctl_store_t in etcd (store-etcd.h, docs/cluster.md).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "seal.h"
#include "store-etcd.h"

#define POISONED G_GINT64_CONSTANT (-1)

typedef struct {
  mcsec_ctl_store_t parent;
  mcsec_etcd_t *etcd;
  gchar *prefix;
  /* key (without the prefix) -> the mod revision this store last saw
   * (0: it saw the key absent); a put of a key seen here is conditional.
   * POISONED: a put of it failed or may have been applied (a timeout):
   * its value is unknown, so its next put is a conflict until it is read
   * again (the caller computed that value from the old one) */
  GHashTable *seen;
  /* escaped group name -> the create revision of our leader key */
  GHashTable *fences;
  guint64 writes;
  /* the cluster key: values under "sealed/" are sealed with it */
  gboolean sealing;
  guint8 seal_key[CTL_SEAL_KEY_LEN];
} EtcdStore;

#define SEALED_PREFIX "sealed/"

/* What a sealed value is bound to: its full etcd key. */
static gchar *
seal_aad (const char *full_key)
{
  return g_strconcat ("mcsec cluster sealed ", full_key, NULL);
}

gchar *
ctl_etcd_leader_key (const char *prefix, const char *group)
{
  gchar *g = g_uri_escape_string (group, NULL, FALSE);
  gchar *key = g_strconcat (prefix, "leader/", g, NULL);
  g_free (g);
  return key;
}

static void
set_error_from_etcd (GError **error, GError *err)
{
  gint code =
      g_error_matches (err, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_UNREACHABLE)
          ? MCSEC_CTL_STORE_ERROR_UNAVAILABLE
          : 0;
  if (code)
    g_set_error (error, MCSEC_CTL_STORE_ERROR, code, "etcd: %s", err->message);
  else
    g_propagate_prefixed_error (error, g_error_copy (err), "etcd: ");
  g_error_free (err);
}

static void
remember (EtcdStore *s, const char *full_key, gint64 mod_revision)
{
  if (g_str_has_prefix (full_key, s->prefix))
    g_hash_table_insert (s->seen, g_strdup (full_key + strlen (s->prefix)),
                         g_memdup2 (&mod_revision, sizeof mod_revision));
}

/* An opened value: wiped when the last reference goes. */
typedef struct {
  guint8 *data;
  gsize len;
} Plain;

static void
plain_free (gpointer user_data)
{
  Plain *p = user_data;
  OPENSSL_cleanse (p->data, p->len);
  g_free (p->data);
  g_free (p);
}

/* The value of key (full: with the prefix) as etcd answered it (kv NULL:
 * none), a sealed one opened; NULL with error set if it does not open. */
static GBytes *
value_of (EtcdStore *s, const char *key, const char *full, mcsec_etcd_kv_t *kv,
          GError **error)
{
  /* sealed values are written blind (their group's are fenced by the
   * leader key): a put whose outcome was unknown never blocks the next */
  gboolean sealed = g_str_has_prefix (key, SEALED_PREFIX);
  GBytes *v;
  gsize len = 0, n = 0;
  const guint8 *d;
  gchar *aad;
  guint8 *plain;

  if (!sealed)
    remember (s, full, kv ? kv->mod_revision : 0);
  if (kv == NULL)
    return NULL;
  v = kv->value ? g_bytes_ref (kv->value) : g_bytes_new (NULL, 0);
  if (!sealed)
    return v;
  d = g_bytes_get_data (v, &len);
  aad = seal_aad (full);
  plain = s->sealing && d ? ctl_open (s->seal_key, aad, d, len, &n) : NULL;
  g_free (aad);
  g_bytes_unref (v);
  if (plain) {
    Plain *p = g_new (Plain, 1);
    p->data = plain;
    p->len = n;
    return g_bytes_new_with_free_func (plain, n, plain_free, p);
  }
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
               "%s: does not open under the cluster key", key);
  return NULL;
}

static GBytes *
etcd_get (mcsec_ctl_store_t *store, const char *key, GError **error)
{
  EtcdStore *s = (EtcdStore *)store;
  gchar *full = g_strconcat (s->prefix, key, NULL);
  GError *err = NULL;
  GPtrArray *kvs = mcsec_etcd_get (s->etcd, full, FALSE, FALSE, NULL, &err);
  GBytes *v = NULL;

  if (kvs == NULL)
    set_error_from_etcd (error, err);
  else
    v = value_of (s, key, full, kvs->len ? kvs->pdata[0] : NULL, error);
  if (kvs)
    g_ptr_array_unref (kvs);
  g_free (full);
  return v;
}

/* A page of get_many holds about PAGE_BYTES of values: as many keys as
 * fit at the size of the largest value read so far, 1 to 64 (a key tree's
 * snapshot chunks are 1 MB each, its commits' changes a few kB; each page
 * is one request, bounded by etcd-timeout, and the client's answers by
 * MAX_ANSWER).  The first page asks for 2. */
#define PAGE_BYTES (4 * 1024 * 1024)
#define PAGE_FIRST 2
#define PAGE_MAX 64

/* The values of keys[0..n) from one paged range read, every page at the
 * first one's revision, each after the last key of the one before; a key
 * of the range not asked for is passed over.  FALSE with error set
 * (values all NULL). */
static gboolean
read_pages (EtcdStore *s, const char *const *keys, guint n, GBytes **values,
            GError **error)
{
  gsize plen = strlen (s->prefix), largest = 0;
  gchar *from = g_strconcat (s->prefix, keys[0], NULL);
  gchar *last = g_strconcat (s->prefix, keys[n - 1], NULL);
  gint64 at = 0, rev = 0, limit = PAGE_FIRST;
  gboolean more = TRUE, ok = TRUE, after = FALSE;
  guint i = 0;

  while (more && ok) {
    GError *err = NULL;
    GPtrArray *kvs = mcsec_etcd_range (s->etcd, from, after, last, limit, at,
                                       &rev, &more, &err);
    if (kvs == NULL) {
      set_error_from_etcd (error, err);
      ok = FALSE;
      break;
    }
    if (at == 0)
      at = rev;
    if (more && kvs->len == 0) {
      /* (not etcd's: a page that says more holds limit keys) */
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s",
                   "etcd: an empty page of a range that says there is more");
      ok = FALSE;
    }
    for (guint k = 0; k < kvs->len && ok; k++) {
      mcsec_etcd_kv_t *kv = kvs->pdata[k];
      int c = 1;
      if (kv->value && g_bytes_get_size (kv->value) > largest)
        largest = g_bytes_get_size (kv->value);
      if (!g_str_has_prefix (kv->key, s->prefix))
        continue; /* (not in the range asked for: etcd's answer is checked
                     before kv->key + plen is read) */
      while (i < n && (c = strcmp (keys[i], kv->key + plen)) < 0)
        i++;
      if (i < n && c == 0) {
        gchar *full = g_strconcat (s->prefix, keys[i], NULL);
        values[i] = value_of (s, keys[i], full, kv, error);
        ok = values[i] != NULL;
        g_free (full);
        i++;
      }
    }
    if (more && ok) {
      mcsec_etcd_kv_t *kv = kvs->pdata[kvs->len - 1];
      g_free (from);
      from = g_strdup (kv->key);
      after = TRUE;
      limit = CLAMP (PAGE_BYTES / MAX (largest, 1), 1, PAGE_MAX);
    }
    g_ptr_array_unref (kvs);
  }
  g_free (from);
  g_free (last);
  if (!ok)
    for (guint k = 0; k < n; k++)
      g_clear_pointer (&values[k], g_bytes_unref);
  return ok;
}

static gboolean
etcd_get_many (mcsec_ctl_store_t *store, const char *const *keys, guint n,
               GBytes **values, GError **error)
{
  EtcdStore *s = (EtcdStore *)store;
  GError *err = NULL;

  memset (values, 0, n * sizeof *values);
  if (n == 0)
    return TRUE;
  /* a compaction past the first page's revision fails the pages after
   * it: read once more, from now */
  if (!read_pages (s, keys, n, values, &err)) {
    if (!g_error_matches (err, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_COMPACTED)) {
      g_propagate_error (error, err);
      return FALSE;
    }
    g_clear_error (&err);
    if (!read_pages (s, keys, n, values, error))
      return FALSE;
  }
  for (guint k = 0; k < n; k++)
    if (values[k] == NULL) {
      /* absent: as etcd_get notes it */
      gchar *full = g_strconcat (s->prefix, keys[k], NULL);
      value_of (s, keys[k], full, NULL, NULL);
      g_free (full);
    }
  return TRUE;
}

static GPtrArray *
etcd_list (mcsec_ctl_store_t *store, const char *prefix, GError **error)
{
  EtcdStore *s = (EtcdStore *)store;
  gchar *full = g_strconcat (s->prefix, prefix, NULL);
  GError *err = NULL;
  GPtrArray *kvs = mcsec_etcd_get (s->etcd, full, TRUE, TRUE, NULL, &err);
  GPtrArray *out = NULL;

  if (kvs == NULL) {
    set_error_from_etcd (error, err);
  } else {
    out = g_ptr_array_new_with_free_func (g_free);
    for (guint i = 0; i < kvs->len; i++) {
      mcsec_etcd_kv_t *kv = kvs->pdata[i];
      if (g_str_has_prefix (kv->key, s->prefix))
        g_ptr_array_add (out, g_strdup (kv->key + strlen (s->prefix)));
    }
    g_ptr_array_unref (kvs);
  }
  g_free (full);
  return out;
}

/* Keys whose stored value is unknown now: a conditional put of them waits
 * for a read (keys written blind stay blind). */
static void
poison (EtcdStore *s, const char *const *keys, guint n)
{
  for (guint i = 0; i < n; i++)
    if (g_hash_table_contains (s->seen, keys[i]))
      g_hash_table_insert (s->seen, g_strdup (keys[i]),
                           g_memdup2 (&(gint64){POISONED}, sizeof (gint64)));
}

/* The escaped group a key of a group's state belongs to (to be freed), or
 * NULL.  Group names are escaped: a "/" ends one. */
static gchar *
fenced_group (const char *key)
{
  static const char *const fenced[] = {
      "spis/", "counter/rekey/", SEALED_PREFIX "sa/", SEALED_PREFIX "tree/"};
  for (guint i = 0; i < G_N_ELEMENTS (fenced); i++)
    if (g_str_has_prefix (key, fenced[i])) {
      const char *g = key + strlen (fenced[i]);
      return g_strndup (g, strcspn (g, "/"));
    }
  return NULL;
}

static gboolean
etcd_put (mcsec_ctl_store_t *store, const char *const *keys,
          GBytes *const *values, guint n, GError **error)
{
  EtcdStore *s = (EtcdStore *)store;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *sealed =
      g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  GArray *cmps = g_array_new (FALSE, TRUE, sizeof (mcsec_etcd_cmp_t));
  GArray *ops = g_array_new (FALSE, TRUE, sizeof (mcsec_etcd_op_t));
  mcsec_etcd_op_t fence_get = {0};
  GPtrArray *got = NULL;
  const char *fence_group = NULL;
  gint64 fence_rev = 0, revision = 0;
  gboolean succeeded = FALSE, ok = FALSE;
  GError *err = NULL;

  for (guint i = 0; i < n; i++) {
    gchar *full = g_strconcat (s->prefix, keys[i], NULL);
    const gint64 *seen = g_hash_table_lookup (s->seen, keys[i]);
    /* the sealed SA's deletion is not fenced: an eviction at any controller
     * deletes it (ctl-admin.c), which can only make the next leader make a
     * new SA */
    gchar *group =
        values[i] == NULL && g_str_has_prefix (keys[i], SEALED_PREFIX "sa/")
            ? NULL
            : fenced_group (keys[i]);
    mcsec_etcd_op_t op = {0};

    g_ptr_array_add (names, full);
    if (group)
      g_ptr_array_add (names, group); /* freed with the names */
    if (seen && *seen == POISONED) {
      g_set_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT,
                   "%s: its last write failed or was not confirmed: read it "
                   "again",
                   keys[i]);
      goto out;
    }
    if (seen) {
      mcsec_etcd_cmp_t c = {0};
      c.key = full;
      c.target = *seen ? MCSEC_ETCD_CMP_MOD : MCSEC_ETCD_CMP_CREATE;
      c.result = MCSEC_ETCD_EQUAL;
      c.number = *seen;
      g_array_append_val (cmps, c);
    }
    if (group) {
      const gint64 *rev = g_hash_table_lookup (s->fences, group);
      if (rev == NULL || *rev == 0) {
        g_set_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED,
                     "%s: this controller does not lead the group", keys[i]);
        goto out;
      }
      if (fence_group == NULL) {
        mcsec_etcd_cmp_t c = {0};
        gchar *unescaped = g_uri_unescape_string (group, NULL);
        gchar *lk = ctl_etcd_leader_key (s->prefix, unescaped ? unescaped : "");
        g_free (unescaped);
        g_ptr_array_add (names, lk);
        fence_group = group;
        fence_rev = *rev;
        c.key = lk;
        c.target = MCSEC_ETCD_CMP_CREATE;
        c.result = MCSEC_ETCD_EQUAL;
        c.number = fence_rev;
        g_array_append_val (cmps, c);
        fence_get.type = MCSEC_ETCD_OP_GET;
        fence_get.key = lk;
      }
    }
    op.type = values[i] ? MCSEC_ETCD_OP_PUT : MCSEC_ETCD_OP_DELETE;
    op.key = full;
    op.value = values[i];
    if (values[i] && g_str_has_prefix (keys[i], SEALED_PREFIX)) {
      /* etcd never sees it in the clear */
      gsize len;
      const guint8 *d = g_bytes_get_data (values[i], &len);
      gchar *aad = seal_aad (full);
      op.value = s->sealing ? ctl_seal (s->seal_key, aad, d, len) : NULL;
      g_free (aad);
      if (op.value == NULL) {
        g_set_error (
            error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: %s", keys[i],
            s->sealing ? "cannot seal it" : "no cluster key to seal it with");
        goto out;
      }
      g_ptr_array_add (sealed, op.value);
    }
    g_array_append_val (ops, op);
  }
  s->writes++;
  if (!mcsec_etcd_txn (s->etcd, (mcsec_etcd_cmp_t *)cmps->data, cmps->len,
                       (mcsec_etcd_op_t *)ops->data, ops->len, &fence_get,
                       fence_group ? 1 : 0, &succeeded, &revision, &got,
                       &err)) {
    /* whether it was applied is unknown: read the keys again first */
    poison (s, keys, n);
    set_error_from_etcd (error, err);
    goto out;
  }
  if (!succeeded) {
    gboolean fenced = FALSE;
    if (fence_group) {
      mcsec_etcd_kv_t *kv = got && got->len ? got->pdata[0] : NULL;
      fenced = kv == NULL || kv->create_revision != fence_rev;
    }
    poison (s, keys, n);
    if (fenced) {
      g_hash_table_insert (s->fences, g_strdup (fence_group),
                           g_memdup2 (&(gint64){0}, sizeof (gint64)));
      g_set_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED,
                   "%s: another controller leads the group now", keys[0]);
    } else {
      g_set_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT,
                   "%s: changed by another controller", keys[0]);
    }
    goto out;
  }
  /* keys read before stay conditional (counters, SPIs); keys written
   * blind (evictions, which any controller may set or lift) stay blind */
  for (guint i = 0; i < n; i++)
    if (g_hash_table_contains (s->seen, keys[i]))
      g_hash_table_insert (
          s->seen, g_strdup (keys[i]),
          g_memdup2 (&(gint64){values[i] ? revision : 0}, sizeof (gint64)));
  ok = TRUE;
out:
  if (got)
    g_ptr_array_unref (got);
  g_array_unref (ops);
  g_array_unref (cmps);
  g_ptr_array_unref (names);
  g_ptr_array_unref (sealed);
  return ok;
}

static void
etcd_free (mcsec_ctl_store_t *store)
{
  EtcdStore *s = (EtcdStore *)store;
  mcsec_etcd_free (s->etcd);
  g_hash_table_unref (s->seen);
  g_hash_table_unref (s->fences);
  g_free (s->prefix);
  OPENSSL_cleanse (s->seal_key, sizeof s->seal_key);
  g_free (s);
}

mcsec_ctl_store_t *
ctl_etcd_store_new (mcsec_etcd_t *etcd, const char *prefix)
{
  EtcdStore *s = g_new0 (EtcdStore, 1);
  s->parent.get = etcd_get;
  s->parent.list = etcd_list;
  s->parent.put = etcd_put;
  s->parent.free = etcd_free;
  s->parent.get_many = etcd_get_many;
  s->etcd = etcd;
  s->prefix = g_strdup (prefix);
  s->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  s->fences = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return &s->parent;
}

void
ctl_etcd_store_set_fence (mcsec_ctl_store_t *store, const char *group,
                          gint64 create_revision)
{
  EtcdStore *s = (EtcdStore *)store;
  g_hash_table_insert (s->fences, g_uri_escape_string (group, NULL, FALSE),
                       g_memdup2 (&create_revision, sizeof create_revision));
}

mcsec_etcd_t *
ctl_etcd_store_client (mcsec_ctl_store_t *store)
{
  return ((EtcdStore *)store)->etcd;
}

guint64
ctl_etcd_store_writes (mcsec_ctl_store_t *store)
{
  return ((EtcdStore *)store)->writes;
}

void
ctl_etcd_store_set_seal_key (mcsec_ctl_store_t *store,
                             const guint8 key[CTL_SEAL_KEY_LEN])
{
  EtcdStore *s = (EtcdStore *)store;
  memcpy (s->seal_key, key, sizeof s->seal_key);
  s->sealing = TRUE;
}

gboolean
ctl_etcd_store_seals (mcsec_ctl_store_t *store)
{
  return ((EtcdStore *)store)->sealing;
}
