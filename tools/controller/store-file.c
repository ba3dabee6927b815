/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec_ctl_store_t in files (store-file.h).  The file `state` holds one
 * pair per line, key and value percent-escaped:
 *
 *   mcsec-controller-state 1
 *   counter/update-seq 8192
 *   evicted/studio/camera-3 (an empty value)
 *   end 2
 *
 * The last line counts the pairs: a file cut short, even at a line's end,
 * is refused rather than read as a smaller state.
 * It holds no key: counters, SPIs in use, evicted identities.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store-file.h"

#define MAGIC "mcsec-controller-state 1"

/* The state in memory is a memory store (core/ctl-store-memory.c); this
 * file only adds the disk under it. */
typedef struct {
  mcsec_ctl_store_t parent;
  gchar *dir, *path, *tmp;
  int lock_fd;
  mcsec_ctl_store_t *mem;
} FileStore;

static GBytes *
fs_get (mcsec_ctl_store_t *store, const char *key, GError **error)
{
  FileStore *s = (FileStore *)store;
  return s->mem->get (s->mem, key, error);
}

static GPtrArray *
fs_list (mcsec_ctl_store_t *store, const char *prefix, GError **error)
{
  FileStore *s = (FileStore *)store;
  return s->mem->list (s->mem, prefix, error);
}

/* A memory store holding m's pairs with the batch applied. */
static mcsec_ctl_store_t *
with_batch (mcsec_ctl_store_t *m, const char *const *keys,
            GBytes *const *values, guint n)
{
  mcsec_ctl_store_t *next = mcsec_ctl_memory_store_new ();
  GPtrArray *all = m->list (m, "", NULL);
  GPtrArray *v = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);

  for (guint i = 0; i < all->len; i++)
    g_ptr_array_add (v, m->get (m, all->pdata[i], NULL));
  next->put (next, (const char *const *)all->pdata, (GBytes *const *)v->pdata,
             all->len, NULL);
  next->put (next, keys, values, n, NULL);
  g_ptr_array_unref (v);
  g_ptr_array_unref (all);
  return next;
}

/* One "key value" line per pair (percent-escaped), then the count. */
static GString *
render (mcsec_ctl_store_t *m)
{
  GString *text = g_string_new (MAGIC "\n");
  GPtrArray *all = m->list (m, "", NULL);

  for (guint i = 0; i < all->len; i++) {
    GBytes *value = m->get (m, all->pdata[i], NULL);
    gsize len;
    const char *d = g_bytes_get_data (value, &len);
    /* an empty GBytes may have no data at all */
    gchar *v = len ? g_strndup (d, len) : g_strdup ("");
    gchar *ek = g_uri_escape_string (all->pdata[i], "/", FALSE);
    gchar *ev = g_uri_escape_string (v, NULL, FALSE);
    g_string_append_printf (text, "%s %s\n", ek, ev);
    g_free (ek);
    g_free (ev);
    g_free (v);
    g_bytes_unref (value);
  }
  g_string_append_printf (text, "end %u\n", all->len);
  g_ptr_array_unref (all);
  return text;
}

static gboolean
write_all (int fd, const char *p, gsize n)
{
  while (n) {
    ssize_t w = write (fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return FALSE;
    p += w;
    n -= (gsize)w;
  }
  return TRUE;
}

/* The whole state to `state.tmp`, on disk, then renamed over `state`, and
 * the rename on disk. */
static gboolean
save (FileStore *s, mcsec_ctl_store_t *m, gboolean *renamed, GError **error)
{
  GString *text = render (m);
  int fd, dfd, e = 0;
  gboolean ok;

  fd = open (s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ok = fd >= 0 && write_all (fd, text->str, text->len) && fsync (fd) == 0;
  if (!ok)
    e = errno;
  if (fd >= 0 && close (fd) != 0 && ok) {
    ok = FALSE;
    e = errno;
  }
  if (ok && rename (s->tmp, s->path) != 0) {
    ok = FALSE;
    e = errno;
  }
  if (ok) {
    *renamed = TRUE;
    dfd = open (s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync (dfd) != 0) {
      ok = FALSE;
      e = errno;
    }
    if (dfd >= 0)
      close (dfd);
  }
  g_string_free (text, TRUE);
  if (!ok)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot write %s: %s", s->path, g_strerror (e));
  return ok;
}

static gboolean
fs_put (mcsec_ctl_store_t *store, const char *const *keys,
        GBytes *const *values, guint n, GError **error)
{
  FileStore *s = (FileStore *)store;
  mcsec_ctl_store_t *next = with_batch (s->mem, keys, values, n);
  gboolean renamed = FALSE, ok = save (s, next, &renamed, error);

  /* all or none; but once renamed, the new file is the state (perhaps not
   * on disk yet, so the caller hears of the failure and uses none of it,
   * yet the next write must not bring the old state back) */
  if (ok || renamed) {
    s->mem->free (s->mem);
    s->mem = next;
  } else {
    next->free (next);
  }
  return ok;
}

static void
fs_free (mcsec_ctl_store_t *store)
{
  FileStore *s = (FileStore *)store;
  if (s == NULL)
    return;
  if (s->mem)
    s->mem->free (s->mem);
  if (s->lock_fd >= 0)
    close (s->lock_fd);
  g_free (s->dir);
  g_free (s->path);
  g_free (s->tmp);
  g_free (s);
}

static gboolean
load (FileStore *s, GError **error)
{
  gchar *text = NULL, **lines;
  GError *err = NULL;
  gboolean ok = TRUE, complete = FALSE;
  GPtrArray *keys, *values;

  if (!g_file_get_contents (s->path, &text, NULL, &err)) {
    if (g_error_matches (err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_error_free (err);
      return TRUE; /* a first start */
    }
    g_propagate_error (error, err);
    return FALSE;
  }
  keys = g_ptr_array_new_with_free_func (g_free);
  values = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  lines = g_strsplit (text, "\n", -1);
  if (g_strcmp0 (lines[0], MAGIC) != 0)
    ok = FALSE;
  for (guint i = 1; ok && lines[i]; i++) {
    gchar *sp, *k, *v;
    if (lines[i][0] == '\0')
      continue;
    if (g_str_has_prefix (lines[i], "end ")) {
      gchar *end;
      guint64 n = g_ascii_strtoull (lines[i] + 4, &end, 10);
      complete = *end == '\0' && n == keys->len &&
                 (lines[i + 1] == NULL ||
                  (lines[i + 1][0] == '\0' && lines[i + 2] == NULL));
      break;
    }
    sp = strchr (lines[i], ' ');
    if (sp == NULL) {
      ok = FALSE;
      break;
    }
    *sp = '\0';
    k = g_uri_unescape_string (lines[i], NULL);
    v = g_uri_unescape_string (sp + 1, NULL);
    if (k == NULL || v == NULL) {
      g_free (k);
      g_free (v);
      ok = FALSE;
      break;
    }
    g_ptr_array_add (keys, k);
    g_ptr_array_add (values, g_bytes_new_take (v, strlen (v)));
  }
  g_strfreev (lines);
  g_free (text);
  ok = ok && complete;
  if (ok)
    s->mem->put (s->mem, (const char *const *)keys->pdata,
                 (GBytes *const *)values->pdata, keys->len, NULL);
  g_ptr_array_unref (keys);
  g_ptr_array_unref (values);
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "%s is damaged (not a controller state file, or cut short); "
                 "move it away "
                 "only if no member may hold keys of this controller",
                 s->path);
  return ok;
}

mcsec_ctl_store_t *
ctl_file_store_open (const char *dir, GError **error)
{
  FileStore *s = g_new0 (FileStore, 1);
  gchar *lock;
  int e;

  s->parent.get = fs_get;
  s->parent.list = fs_list;
  s->parent.put = fs_put;
  s->parent.free = fs_free;
  s->lock_fd = -1;
  s->mem = mcsec_ctl_memory_store_new ();
  s->dir = g_strdup (dir);
  s->path = g_build_filename (dir, "state", NULL);
  s->tmp = g_build_filename (dir, "state.tmp", NULL);
  if (g_mkdir_with_parents (dir, 0700) != 0) {
    e = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot create %s: %s", dir, g_strerror (e));
    goto fail;
  }
  lock = g_build_filename (dir, "lock", NULL);
  s->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  e = errno;
  g_free (lock);
  if (s->lock_fd < 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot open the lock file in %s: %s", dir, g_strerror (e));
    goto fail;
  }
  if (flock (s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                 "%s is in use: is another controller running?", dir);
    goto fail;
  }
  if (!load (s, error))
    goto fail;
  return &s->parent;
fail:
  fs_free (&s->parent);
  return NULL;
}
