/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer targets: the controller's side of MIKE and its configuration
 * file, built from tools/mcsec-controller.c itself (its main left out).
 *
 * FUZZ_CONTROLLER_MESSAGES: the input is what a member sends after its TLS
 * handshake.  Byte 0 picks the identity the certificate would have given
 * (a sender, two receivers, an unknown one); the rest is fed to a
 * connection of a controller with a unicast group and a key tree group
 * (JOIN, ACK, PING, REPAIR, LEAVE, anything), in two pieces as TLS records
 * may cut it, next to a member that stays joined.  Nothing may crash or
 * leak; every batch is committed and every connection closed at the end.
 *
 * FUZZ_CONTROLLER_CONFIG: the input is a configuration file; it is loaded
 * and thrown away.
 */
#define MCSEC_CONTROLLER_NO_MAIN
/* the daemon's socket and signal set-up is not used here */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../../tools/mcsec-controller.c"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gchar *tmp_dir;

static void
remove_tmp (void)
{
  gchar *argv[] = {(gchar *)"rm", (gchar *)"-rf", tmp_dir, NULL};
  g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                NULL, NULL);
}

static const char *
make_tmp (void)
{
  if (tmp_dir == NULL) {
    tmp_dir = g_dir_make_tmp ("fuzz-controller-XXXXXX", NULL);
    if (tmp_dir == NULL)
      abort ();
    atexit (remove_tmp);
  }
  return tmp_dir;
}

/* Drop everything load_config made. */
static void
config_clear (void)
{
  if (ctl.groups)
    g_hash_table_unref (ctl.groups);
  g_free (ctl.listen);
  g_free (ctl.certificate);
  g_free (ctl.private_key);
  g_free (ctl.ca);
  g_free (ctl.signing_key);
  g_free (ctl.state_dir);
  g_free (ctl.admin_socket);
  ctl.groups = NULL;
  ctl.listen = ctl.certificate = ctl.private_key = ctl.ca = NULL;
  ctl.signing_key = ctl.state_dir = ctl.admin_socket = NULL;
}

#ifdef FUZZ_CONTROLLER_CONFIG

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;

  ctl.log_quiet = TRUE;
  if (ctl.config_path == NULL)
    ctl.config_path = g_build_filename (make_tmp (), "fuzz.conf", NULL);
  if (!g_file_set_contents (ctl.config_path, (const gchar *)data, (gssize)size,
                            NULL))
    return 0;
  if (!load_config (&error)) {
    /* a failure names the file (or the setting) */
    if (error == NULL || error->message == NULL || *error->message == '\0')
      abort ();
    g_error_free (error);
  }
  config_clear ();
  return 0;
}

#else /* the member's messages */

static const char config[] =
    "[controller]\n"
    "certificate = unused.crt\nprivate-key = unused.key\nca = unused.crt\n"
    "signing-key = unused.key\nstate-dir = state\n"
    "[group video]\nsenders = cam1\nreceivers = rx1;rx2\n"
    "activation-delay = 0\n"
    "[group tv]\nsenders = cam1\nreceivers = rx1;rx2\n"
    "rekey-channel = 239.255.0.1:5100\nbatch-interval = 0\n";
static const char *const identities[] = {"cam1", "rx1", "rx2", "eve"};

static Conn *
new_conn (const char *identity)
{
  Conn *c = g_new0 (Conn, 1);
  c->fd = -1; /* no socket: frames go to its output buffer */
  c->state = C_AWAIT_JOIN;
  c->identity = g_strdup (identity);
  c->started_ms = c->last_rx_ms = mono_ms ();
  g_strlcpy (c->peer, "fuzz", sizeof c->peer);
  ctl.conns = g_list_prepend (ctl.conns, c);
  ctl.n_conns++;
  return c;
}

static gboolean
alive (Conn *c)
{
  return g_list_find (ctl.conns, c) != NULL;
}

/* A JOIN as a member would send it. */
static gsize
join_frame (const char *group, guint8 *buf, gsize cap)
{
  mcsec_mike_builder_t b;
  size_t len;
  mcsec_mike_begin (&b, buf, cap, MCSEC_MIKE_JOIN);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, group);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
  return mcsec_mike_finish (&b, &len) == MCSEC_OK ? len : 0;
}

static void
init (void)
{
  GError *error = NULL;
  gchar *path;
  GHashTableIter it;
  gpointer v;

  ctl.log_quiet = TRUE;
  path = g_build_filename (make_tmp (), "fuzz.conf", NULL);
  if (!g_file_set_contents (path, config, -1, NULL))
    abort ();
  ctl.config_path = path;
  ctl.update_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  if (!load_config (&error) || ctl.update_key == NULL ||
      mcsec_mike_public_key_der (ctl.update_key, ctl.update_spki,
                                 sizeof ctl.update_spki,
                                 &ctl.update_spki_len) != MCSEC_OK ||
      !open_state (&error))
    abort ();
  /* the key tree group without its socket: its sends fail and are
   * counted, members repair over their connections */
  g_hash_table_iter_init (&it, ctl.groups);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (((Group *)v)->channel && !setup_tree (v, &error))
      abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Conn *c, *stay;
  guint8 join[512];
  gsize jl;
  const char *group;
  GHashTableIter it;
  gpointer v;

  if (ctl.groups == NULL)
    init ();
  if (size < 1)
    return 0;
  /* a receiver that stays joined while the fuzzed member comes and goes */
  group = (data[0] & 4) ? "tv" : "video";
  stay = new_conn ("rx2");
  jl = join_frame (group, join, sizeof join);
  if (jl == 0 || !conn_input (stay, join, jl))
    abort (); /* rx2 is allowed: it must stay */
  c = new_conn (identities[data[0] & 3]);
  if (conn_input (c, data + 1, (size - 1) / 2))
    conn_input (c, data + 1 + (size - 1) / 2, size - 1 - (size - 1) / 2);
  /* what the batches hold is committed, then everyone goes */
  g_hash_table_iter_init (&it, ctl.groups);
  while (g_hash_table_iter_next (&it, NULL, &v))
    if (((Group *)v)->batch_timer)
      on_batch (v);
  if (alive (c))
    conn_close (c, "fuzz input done");
  if (alive (stay))
    conn_close (stay, "fuzz input done");
  g_hash_table_iter_init (&it, ctl.groups);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    Group *g = v;
    if (g->batch_timer) /* the leaves */
      on_batch (g);
    while (g_source_remove_by_user_data (g)) /* heartbeats after rekeys */
      ;
    if (g->members != NULL)
      abort (); /* every member left */
  }
  if (ctl.conns != NULL)
    abort ();
  return 0;
}

#endif
