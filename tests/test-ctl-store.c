/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-ctl-store: the controller's durable state in files
 * (tools/controller/store-file.c): what is put is there after a reopen;
 * a batch is all or nothing, on disk too, when the write fails; a crash
 * before the rename (a leftover state.tmp) leaves the previous state; a
 * damaged file is an error that names it; one controller per folder.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcsec-test.h"
#include "store-file.h"

static GBytes *
b (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static gboolean
has (mcsec_ctl_store_t *st, const char *key, const char *want)
{
  GBytes *v = st->get (st, key, NULL);
  gboolean ok;
  if (v == NULL)
    return want == NULL;
  ok = want && g_bytes_get_size (v) == strlen (want) &&
       memcmp (g_bytes_get_data (v, NULL), want, strlen (want)) == 0;
  g_bytes_unref (v);
  return ok;
}

int
main (void)
{
  gchar *dir = g_dir_make_tmp ("ctl-store-XXXXXX", NULL);
  gchar *tmp = g_build_filename (dir, "state.tmp", NULL);
  gchar *state = g_build_filename (dir, "state", NULL);
  GError *error = NULL;
  mcsec_ctl_store_t *st, *second;
  const char *keys[3] = {"counter/update-seq", "evicted/tv/cam 3", "spis/tv"};
  GBytes *vals[3];
  GPtrArray *list;
  gchar *text;

  REQUIRE (dir != NULL);
  st = ctl_file_store_open (dir, &error);
  REQUIRE (st != NULL);
  /* one controller per folder */
  second = ctl_file_store_open (dir, &error);
  CHECK (second == NULL && error && strstr (error->message, "in use"));
  g_clear_error (&error);

  vals[0] = b ("4096");
  vals[1] = b ("");
  vals[2] = b ("0a0b0c0d 11223344");
  CHECK (st->put (st, keys, vals, 3, NULL));
  for (int i = 0; i < 3; i++)
    g_bytes_unref (vals[i]);
  st->free (st);

  /* reopened: all of it, an identity with a space and an empty value too */
  st = ctl_file_store_open (dir, &error);
  REQUIRE (st != NULL);
  CHECK (has (st, "counter/update-seq", "4096"));
  CHECK (has (st, "evicted/tv/cam 3", ""));
  CHECK (has (st, "spis/tv", "0a0b0c0d 11223344"));
  CHECK (has (st, "nothing", NULL));
  list = st->list (st, "evicted/tv/", NULL);
  CHECK (list->len == 1 && strcmp (list->pdata[0], "evicted/tv/cam 3") == 0);
  g_ptr_array_unref (list);

  /* a write that cannot happen (state.tmp is a folder): nothing changes,
   * in memory or on disk */
  REQUIRE (mkdir (tmp, 0700) == 0);
  vals[0] = b ("8192");
  vals[1] = NULL; /* a delete in the same batch */
  CHECK (!st->put (st, keys, vals, 2, &error));
  CHECK (error && strstr (error->message, "state"));
  g_clear_error (&error);
  CHECK (has (st, "counter/update-seq", "4096"));
  CHECK (has (st, "evicted/tv/cam 3", ""));
  REQUIRE (rmdir (tmp) == 0);
  /* a crash after writing state.tmp, before the rename */
  REQUIRE (g_file_set_contents (tmp, "garbage half written", -1, NULL));
  st->free (st);
  st = ctl_file_store_open (dir, &error);
  REQUIRE (st != NULL);
  CHECK (has (st, "counter/update-seq", "4096"));
  /* the next write replaces the leftover */
  CHECK (st->put (st, keys, vals, 2, NULL));
  g_bytes_unref (vals[0]);
  CHECK (has (st, "counter/update-seq", "8192"));
  CHECK (has (st, "evicted/tv/cam 3", NULL));
  st->free (st);
  st = ctl_file_store_open (dir, &error);
  REQUIRE (st != NULL);
  CHECK (has (st, "counter/update-seq", "8192"));
  CHECK (has (st, "evicted/tv/cam 3", NULL));
  CHECK (g_file_get_contents (state, &text, NULL, NULL));
  CHECK (g_str_has_prefix (text, "mcsec-controller-state 1\n"));
  g_free (text);
  st->free (st);

  /* cut short at a line's end (the magic line alone, or a pair less) */
  REQUIRE (g_file_set_contents (state, "mcsec-controller-state 1\n", -1, NULL));
  st = ctl_file_store_open (dir, &error);
  CHECK (st == NULL && error && strstr (error->message, "cut short"));
  g_clear_error (&error);
  REQUIRE (g_file_set_contents (
      state, "mcsec-controller-state 1\ncounter/update-seq 8192\n", -1, NULL));
  st = ctl_file_store_open (dir, &error);
  CHECK (st == NULL && error);
  g_clear_error (&error);
  REQUIRE (g_file_set_contents (state,
                                "mcsec-controller-state 1\ncounter/update-seq "
                                "8192\nend 1\n",
                                -1, NULL));
  st = ctl_file_store_open (dir, &error);
  CHECK (st != NULL && has (st, "counter/update-seq", "8192"));
  if (st)
    st->free (st);
  /* a damaged file: an error naming it, never a silent fresh start */
  REQUIRE (g_file_set_contents (state, "not a state file\n", -1, NULL));
  st = ctl_file_store_open (dir, &error);
  CHECK (st == NULL && error && strstr (error->message, state));
  g_clear_error (&error);

  unlink (state);
  unlink (tmp);
  {
    gchar *lock = g_build_filename (dir, "lock", NULL);
    unlink (lock);
    g_free (lock);
  }
  rmdir (dir);
  g_free (dir);
  g_free (tmp);
  g_free (state);
  return test_done ("test-ctl-store");
}
