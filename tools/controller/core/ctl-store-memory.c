/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec_ctl_store_t in memory: for the tests and the fuzz targets (a
 * controller "restarts" by making a new core on the same store), with
 * failures on demand (a full disk, a lost quorum).
 */
#include <string.h>

#include "ctl-core.h"

typedef struct {
  mcsec_ctl_store_t parent;
  GTree *kv; /* key -> GBytes */
  gint fail_after;
  guint puts;
  /* the next put of conflict_key fails as a conflict, after another
   * "controller" raised the number stored there by conflict_bump */
  gchar *conflict_key;
  guint64 conflict_bump;
} MemoryStore;

static gint
key_cmp (gconstpointer a, gconstpointer b, gpointer data)
{
  (void)data;
  return strcmp (a, b);
}

static GBytes *
mem_get (mcsec_ctl_store_t *store, const char *key, GError **error)
{
  MemoryStore *m = (MemoryStore *)store;
  GBytes *v = g_tree_lookup (m->kv, key);
  (void)error;
  return v ? g_bytes_ref (v) : NULL;
}

typedef struct {
  const char *prefix;
  GPtrArray *out;
} ListCtx;

static gboolean
list_one (gpointer key, gpointer value, gpointer data)
{
  ListCtx *l = data;
  (void)value;
  if (g_str_has_prefix (key, l->prefix))
    g_ptr_array_add (l->out, g_strdup (key));
  return FALSE;
}

static GPtrArray *
mem_list (mcsec_ctl_store_t *store, const char *prefix, GError **error)
{
  MemoryStore *m = (MemoryStore *)store;
  ListCtx l = {prefix, g_ptr_array_new_with_free_func (g_free)};
  (void)error;
  g_tree_foreach (m->kv, list_one, &l);
  return l.out;
}

static gboolean
mem_put (mcsec_ctl_store_t *store, const char *const *keys,
         GBytes *const *values, guint n, GError **error)
{
  MemoryStore *m = (MemoryStore *)store;
  if (m->fail_after >= 0 && m->puts >= (guint)m->fail_after) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                 "the store refuses writes (test)");
    return FALSE;
  }
  for (guint i = 0; m->conflict_key && i < n; i++)
    if (strcmp (keys[i], m->conflict_key) == 0) {
      GBytes *old = g_tree_lookup (m->kv, keys[i]);
      gsize len = 0;
      const char *d = old ? g_bytes_get_data (old, &len) : NULL;
      gchar *num = g_strndup (d ? d : "0", d ? len : 1);
      gchar *bumped =
          g_strdup_printf ("%" G_GUINT64_FORMAT,
                           g_ascii_strtoull (num, NULL, 10) + m->conflict_bump);
      g_tree_insert (m->kv, g_strdup (keys[i]),
                     g_bytes_new_take (bumped, strlen (bumped)));
      g_free (num);
      g_clear_pointer (&m->conflict_key, g_free);
      g_set_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT,
                   "%s: changed by another controller (test)", keys[i]);
      return FALSE;
    }
  m->puts++;
  for (guint i = 0; i < n; i++) {
    if (values[i])
      g_tree_insert (m->kv, g_strdup (keys[i]), g_bytes_ref (values[i]));
    else
      g_tree_remove (m->kv, keys[i]);
  }
  return TRUE;
}

static void
mem_free (mcsec_ctl_store_t *store)
{
  MemoryStore *m = (MemoryStore *)store;
  g_tree_unref (m->kv);
  g_free (m->conflict_key);
  g_free (m);
}

mcsec_ctl_store_t *
mcsec_ctl_memory_store_new (void)
{
  MemoryStore *m = g_new0 (MemoryStore, 1);
  m->parent.get = mem_get;
  m->parent.list = mem_list;
  m->parent.put = mem_put;
  m->parent.free = mem_free;
  m->kv =
      g_tree_new_full (key_cmp, NULL, g_free, (GDestroyNotify)g_bytes_unref);
  m->fail_after = -1;
  return &m->parent;
}

void
mcsec_ctl_memory_store_fail_puts (mcsec_ctl_store_t *store, gint fail_after)
{
  MemoryStore *m = (MemoryStore *)store;
  m->fail_after = fail_after < 0 ? -1 : (gint)m->puts + fail_after;
}

guint
mcsec_ctl_memory_store_puts (mcsec_ctl_store_t *store)
{
  return ((MemoryStore *)store)->puts;
}

void
mcsec_ctl_memory_store_conflict (mcsec_ctl_store_t *store, const char *key,
                                 guint64 bump)
{
  MemoryStore *m = (MemoryStore *)store;
  g_free (m->conflict_key);
  m->conflict_key = g_strdup (key);
  m->conflict_bump = bump;
}
