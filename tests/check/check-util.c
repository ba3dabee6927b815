/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * check-util.c: what the element tests share: keys, numbered datagrams,
 * harnesses for mcsecenc and mcsecdec, stats.
 */
#include "check-util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

gchar *state_dir;

GstHarness *
harness_start (GstElement *element, const gchar *src_caps)
{
  GstHarness *h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  gst_harness_set_src_caps_str (h, src_caps);
  return h;
}

void
sender_keys_init (SenderKeys *k, const gchar *name, guint sender_id)
{
  write_keys (name, &k->priv, &k->pub);
  k->keys = g_strdup_printf ("%u=%s", sender_id, k->pub);
}

void
sender_keys_clear (SenderKeys *k)
{
  g_free (k->priv);
  g_free (k->pub);
  g_free (k->keys);
}

GstBuffer *
make_key (mcsec_suite_t suite)
{
  guint8 key[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize len = mcsec_suite_key_material_len (suite);

  fail_unless (mcsec_generate_key_material (suite, key, sizeof (key)) ==
               MCSEC_OK);
  return gst_buffer_new_memdup (key, len);
}

/* A datagram whose bytes all say `tag` (and its length). */
GstBuffer *
make_datagram (guint tag, gsize size)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (b, 0, (guint8)tag, size);
  GST_BUFFER_PTS (b) = tag * GST_MSECOND;
  return b;
}

gboolean
datagram_is (GstBuffer *b, guint tag, gsize size)
{
  GstMapInfo map;
  gboolean ok;

  if (b == NULL || !gst_buffer_map (b, &map, GST_MAP_READ))
    return FALSE;
  ok = map.size == size;
  for (gsize i = 0; ok && i < size; i++)
    ok = map.data[i] == (guint8)tag;
  gst_buffer_unmap (b, &map);
  return ok;
}

/* The next output of h is datagram (tag, size); the buffer is released. */
gboolean
pulled_is (GstHarness *h, guint tag, gsize size)
{
  GstBuffer *b = gst_harness_pull (h);
  gboolean ok = datagram_is (b, tag, size);
  if (b)
    gst_buffer_unref (b);
  return ok;
}

/* Whether the current caps of pad are a subset of str. */
gboolean
caps_are (GstPad *pad, const gchar *str)
{
  GstCaps *cur = gst_pad_get_current_caps (pad);
  GstCaps *want = gst_caps_from_string (str);
  gboolean ok = cur && gst_caps_is_subset (cur, want);
  if (cur)
    gst_caps_unref (cur);
  gst_caps_unref (want);
  return ok;
}

GstHarness *
enc_harness (const gchar *cipher, GstBuffer *key, guint spi, guint sender)
{
  GstElement *enc = gst_element_factory_make ("mcsecenc", NULL);

  fail_unless (enc != NULL);
  gst_util_set_object_arg (G_OBJECT (enc), "cipher", cipher);
  g_object_set (enc, "key", key, "spi", spi, "sender-id", sender, NULL);
  return harness_start (enc, RTP_CAPS);
}

GstHarness *
dec_harness (const gchar *cipher, GstBuffer *key, guint spi)
{
  GstElement *dec = gst_element_factory_make ("mcsecdec", NULL);
  GstCaps *caps = gst_caps_from_string (RTP_CAPS ",media=video");

  fail_unless (dec != NULL);
  if (key) {
    gst_util_set_object_arg (G_OBJECT (dec), "cipher", cipher);
    g_object_set (dec, "key", key, "spi", spi, NULL);
  }
  g_object_set (dec, "caps", caps, NULL);
  gst_caps_unref (caps);
  return harness_start (dec, "application/x-mcsec");
}

GstStructure *
get_stats (GstHarness *h)
{
  GstStructure *s = NULL;
  g_object_get (h->element, "stats", &s, NULL);
  fail_unless (s != NULL);
  return s;
}

void
assert_stats (GstHarness *h, const gchar *expected)
{
  GstStructure *s = get_stats (h);
  GstStructure *want = gst_structure_from_string (expected, NULL);

  fail_unless (want != NULL, "bad expectation %s", expected);
  if (!gst_structure_is_subset (s, want)) {
    gchar *got = gst_structure_to_string (s);
    fail ("stats %s\n  do not contain %s", got, expected);
    g_free (got);
  }
  gst_structure_free (want);
  gst_structure_free (s);
}

/* The stats of one SA (by SPI) out of the decoder's `sas` array. */
GstStructure *
sa_stats (GstHarness *h, guint spi)
{
  GstStructure *s = get_stats (h), *found = NULL;
  const GValue *sas = gst_structure_get_value (s, "sas");

  for (guint i = 0; sas && i < gst_value_array_get_size (sas); i++) {
    const GstStructure *sa =
        gst_value_get_structure (gst_value_array_get_value (sas, i));
    guint v = 0;
    if (gst_structure_get_uint (sa, "spi", &v) && v == spi)
      found = gst_structure_copy (sa);
  }
  gst_structure_free (s);
  return found;
}

/* ---- source authentication ---- */

/* PEM key files in the state directory: private and public of a sender. */
void
write_keys (const gchar *name, gchar **priv_path, gchar **pub_path)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  FILE *f;

  fail_unless (k != NULL);
  *priv_path = g_strdup_printf ("%s/%s.key", state_dir, name);
  *pub_path = g_strdup_printf ("%s/%s.pub", state_dir, name);
  f = fopen (*priv_path, "w");
  fail_unless (f && PEM_write_PrivateKey (f, k, NULL, NULL, 0, NULL, NULL));
  fclose (f);
  f = fopen (*pub_path, "w");
  fail_unless (f && PEM_write_PUBKEY (f, k));
  fclose (f);
  EVP_PKEY_free (k);
}

GstHarness *
sam_enc_harness_timed (GstBuffer *key, guint sender, const gchar *signing_key,
                       const gchar *scheme, guint block, gint64 block_time)
{
  GstElement *enc = gst_element_factory_make ("mcsecenc", NULL);

  /* each signing key its own counter store: a forger on this host must not
   * collide with the genuine sender's lock */
  gchar *store = g_strdup_printf ("%s.ctr", signing_key);
  g_object_set (enc, "key", key, "spi", SPI_A, "sender-id", sender,
                "signing-key-file", signing_key, "sam-block-size", block,
                "counter-file", store, NULL);
  if (block_time >= 0)
    g_object_set (enc, "sam-block-time", (guint64)block_time, NULL);
  g_free (store);
  gst_util_set_object_arg (G_OBJECT (enc), "sam-scheme", scheme);
  return harness_start (enc, RTP_CAPS);
}

GstHarness *
sam_enc_harness (GstBuffer *key, guint sender, const gchar *signing_key,
                 const gchar *scheme, guint block)
{
  return sam_enc_harness_timed (key, sender, signing_key, scheme, block, -1);
}

GstHarness *
sam_dec_harness_full (GstBuffer *key, const gchar *policy, const gchar *keys,
                      guint max_hold, guint64 max_latency)
{
  GstElement *dec = gst_element_factory_make ("mcsecdec", NULL);
  GstCaps *caps = gst_caps_from_string (RTP_CAPS);

  g_object_set (dec, "key", key, "spi", SPI_A, "caps", caps, "sender-keys",
                keys, NULL);
  gst_util_set_object_arg (G_OBJECT (dec), "sam-policy", policy);
  if (max_hold)
    g_object_set (dec, "sam-max-hold", max_hold, NULL);
  if (max_latency)
    g_object_set (dec, "sam-max-latency", max_latency, NULL);
  gst_caps_unref (caps);
  return harness_start (dec, "application/x-mcsec");
}

GstHarness *
sam_dec_harness (GstBuffer *key, const gchar *policy, const gchar *keys)
{
  return sam_dec_harness_full (key, policy, keys, 0, 0);
}

const gchar *
source_mark (GstBuffer *b)
{
  GstCustomMeta *m = gst_buffer_get_custom_meta (b, "GstMcsecSourceMeta");
  return m ? gst_structure_get_string (gst_custom_meta_get_structure (m), "sam")
           : NULL;
}

/* Everything the encoder has output goes to the decoder; `drop` says
 * which ESP packets the network loses (NULL: none). */
guint
forward (GstHarness *enc, GstHarness *dec, guint *sent,
         gboolean (*drop) (guint))
{
  GstBuffer *b;
  guint n = 0;
  while ((b = gst_harness_try_pull (enc)) != NULL) {
    if (drop && drop ((*sent)++)) {
      gst_buffer_unref (b);
      continue;
    }
    gst_harness_push (dec, b);
    n++;
  }
  return n;
}

void
end_stream (GstHarness *enc, GstHarness *dec, guint *sent,
            gboolean (*drop) (guint))
{
  gst_harness_push_event (enc, gst_event_new_eos ());
  forward (enc, dec, sent, drop);
  gst_harness_push_event (dec, gst_event_new_eos ());
}

int
check_main (int argc, char **argv, Suite *(*make_suite) (void),
            const gchar *name)
{
  Suite *s;
  int failed;

  /* counter stores of the tests go to a private directory */
  state_dir = g_dir_make_tmp ("mcsec-check-XXXXXX", NULL);
  g_setenv ("XDG_STATE_HOME", state_dir, TRUE);
  gst_check_init (&argc, &argv);
  s = make_suite ();
  failed = gst_check_run_suite (s, name, __FILE__);
  {
    gchar *cmd = g_strdup_printf ("rm -rf '%s'", state_dir);
    if (system (cmd) != 0)
      failed++;
    g_free (cmd);
  }
  g_free (state_dir);
  return failed != 0;
}

gchar *
start_error (GstElement *e)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *text;

  gst_element_set_bus (e, bus);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
                          GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  text = g_strdup (err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  return text;
}

void
run_tool_in (const gchar *dir, const gchar *const *argv)
{
  gint status = 0;
  GError *err = NULL;
  fail_unless (g_spawn_sync (dir, (gchar **)argv, NULL, 0, NULL, NULL, NULL,
                             NULL, &status, &err),
               "%s", err ? err->message : "");
  fail_unless (g_spawn_check_wait_status (status, NULL), "%s failed", argv[0]);
}

guint
free_tcp_port (void)
{
  struct sockaddr_in a = {0};
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fail_unless (fd >= 0 && bind (fd, (struct sockaddr *)&a, sizeof a) == 0 &&
               getsockname (fd, (struct sockaddr *)&a, &len) == 0);
  close (fd);
  return ntohs (a.sin_port);
}

GPid
controller_start (const gchar *tools, const gchar *dir, const gchar *identities,
                  const gchar *receivers, guint *port)
{
  return controller_start_with (tools, dir, identities, receivers, "", port);
}

GPid
controller_start_with (const gchar *tools, const gchar *dir,
                       const gchar *identities, const gchar *receivers,
                       const gchar *group_settings, guint *port)
{
  gchar *ctl = g_build_filename (tools, "mcsec-controller", NULL);
  gchar *ctlctl = g_build_filename (tools, "mcsecctl", NULL);
  gchar *pki_cmd = g_strdup_printf ("%s pki pki cam1 %s", ctlctl, identities);
  gchar **pki = g_strsplit (pki_cmd, " ", -1);
  gchar *conf, *conf_path, *sock;
  const gchar *argv[] = {ctl, NULL, NULL};
  GError *err = NULL;
  GPid pid = 0;

  run_tool_in (dir, (const gchar *const *)pki);
  *port = free_tcp_port ();
  conf = g_strdup_printf (
      "[controller]\nlisten = 127.0.0.1:%u\ncertificate = pki/controller.crt\n"
      "private-key = pki/controller.key\nca = pki/ca.crt\n"
      "update-signing-key = pki/controller-sign.key\nstate-dir = state\n\n"
      "[group video]\nsenders = cam1\nreceivers = %s\n"
      "activation-delay = 100\n%s",
      *port, receivers, group_settings);
  conf_path = g_build_filename (dir, "ctl.conf", NULL);
  fail_unless (g_file_set_contents (conf_path, conf, -1, NULL));
  argv[1] = conf_path;
  fail_unless (g_spawn_async (dir, (gchar **)argv, NULL,
                              G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &pid,
                              &err),
               "%s", err ? err->message : "");
  sock = g_build_filename (dir, "state", "admin.sock", NULL);
  for (int i = 0; i < 200 && !g_file_test (sock, G_FILE_TEST_EXISTS); i++)
    g_usleep (20000);
  fail_unless (g_file_test (sock, G_FILE_TEST_EXISTS), "no controller");
  g_free (sock);
  g_free (conf);
  g_free (conf_path);
  g_strfreev (pki);
  g_free (pki_cmd);
  g_free (ctl);
  g_free (ctlctl);
  return pid;
}

void
controller_stop (GPid *pid)
{
  if (*pid) {
    kill (*pid, SIGTERM);
    waitpid (*pid, NULL, 0);
    g_spawn_close_pid (*pid);
    *pid = 0;
  }
}

void
remove_dir (gchar **dir)
{
  gchar *rm[] = {(gchar *)"rm", (gchar *)"-rf", *dir, NULL};
  g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                NULL, NULL);
  g_clear_pointer (dir, g_free);
}
