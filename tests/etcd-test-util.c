/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * etcd-test-util.c: see etcd-test-util.h.
 */
#include <string.h>

#include "etcd-test-util.h"

void
etcd_lib (const char *verb, const char *arg)
{
  gchar *cmd =
      g_strdup_printf (". \"$ETCD_LIB\" && etcd_%s %s", verb, arg ? arg : "");
  gchar *argv[] = {"bash", "-c", cmd, NULL};
  GError *error = NULL;
  gint status = 0;

  g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                &status, &error);
  g_assert_no_error (error);
  g_spawn_check_wait_status (status, &error);
  if (error)
    g_error ("etcd-lib.sh: %s: %s", cmd, error->message);
  g_free (cmd);
}

GBytes *
str_bytes (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

gboolean
bytes_is (GBytes *v, const char *want)
{
  gsize len = 0;
  const char *d = v ? g_bytes_get_data (v, &len) : NULL;
  return v && len == strlen (want) && (!len || !memcmp (d, want, len));
}
