/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * gst-demo: a VP8 video stream secured by mcsec, sent to two receivers over
 * UDP on 127.0.0.1 (multiudpsink standing in for a multicast group): one
 * receiver holds the group key and the sender's public key, checks the
 * source of every datagram (sam-policy=required) and writes frames as PNG;
 * one holds a wrong key and decodes nothing.  Prints the stats of all
 * three elements.
 *
 *   gst-demo OUTPUT-DIR [SECONDS]
 *
 * Exit status 0 when the keyed receiver accepted every packet and wrote
 * frames, and the other accepted none and says why (dropped-auth).
 */
#include <stdio.h>
#include <stdlib.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <mcsec/mcsec.h>

#define SPI 0x4d430001u
#define RTP_CAPS                                                               \
  "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,"          \
  "payload=96"

static guint
free_udp_port (void)
{
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                             G_SOCKET_PROTOCOL_UDP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *addr = g_inet_socket_address_new (lo, 0), *bound;
  guint port = 0;

  if (s && g_socket_bind (s, addr, FALSE, NULL) &&
      (bound = g_socket_get_local_address (s, NULL)) != NULL) {
    port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    g_object_unref (bound);
  }
  g_object_unref (addr);
  g_object_unref (lo);
  if (s)
    g_object_unref (s);
  return port;
}

static GstBuffer *
new_key (void)
{
  guint8 key[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize len = mcsec_suite_key_material_len (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *b;

  if (mcsec_generate_key_material (MCSEC_SUITE_AES_128_GCM, key,
                                   sizeof (key)) != MCSEC_OK) {
    g_printerr ("gst-demo: no random key\n");
    exit (1);
  }
  b = gst_buffer_new_memdup (key, len);
  OPENSSL_cleanse (key, sizeof (key));
  return b;
}

/* A throwaway Ed25519 signing key for the sender, as two PEM files. */
static void
write_signing_key (const gchar *dir, gchar **priv, gchar **pub)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  FILE *f;

  *priv = g_build_filename (dir, "sender-1.key", NULL);
  *pub = g_build_filename (dir, "sender-1.pub", NULL);
  f = k ? fopen (*priv, "w") : NULL;
  if (f == NULL || !PEM_write_PrivateKey (f, k, NULL, NULL, 0, NULL, NULL)) {
    g_printerr ("gst-demo: cannot write %s\n", *priv);
    exit (1);
  }
  fclose (f);
  g_chmod (*priv, 0600);
  f = fopen (*pub, "w");
  if (f == NULL || !PEM_write_PUBKEY (f, k)) {
    g_printerr ("gst-demo: cannot write %s\n", *pub);
    exit (1);
  }
  fclose (f);
  EVP_PKEY_free (k);
}

static GstElement *
launch (const gchar *description)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch (description, &err);

  if (p == NULL) {
    g_printerr ("gst-demo: %s\n  (%s)\n", err->message, description);
    exit (1);
  }
  return p;
}

/* A pipeline's error ends the demo with a message. */
static void
check_bus (GstElement *pipeline, const gchar *name)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *m;

  while ((m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR)) != NULL) {
    GError *err = NULL;
    gst_message_parse_error (m, &err, NULL);
    g_printerr ("gst-demo: %s: %s\n", name, err->message);
    exit (1);
  }
  gst_object_unref (bus);
}

static GstStructure *
stats_of (GstElement *pipeline, const gchar *name)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);
  GstStructure *s = NULL;

  g_object_get (e, "stats", &s, NULL);
  gst_object_unref (e);
  return s;
}

/* One field a line, nested structures indented; zero drop counters are
 * left out to keep it readable. */
static void
print_structure (const GstStructure *s, int indent)
{
  g_print ("%*s%s\n", indent, "", gst_structure_get_name (s));
  for (gint i = 0; i < gst_structure_n_fields (s); i++) {
    const gchar *name = gst_structure_nth_field_name (s, i);
    const GValue *v = gst_structure_get_value (s, name);
    if (GST_VALUE_HOLDS_ARRAY (v)) {
      g_print ("%*s%s: %u\n", indent + 4, "", name,
               gst_value_array_get_size (v));
      for (guint j = 0; j < gst_value_array_get_size (v); j++) {
        const GValue *e = gst_value_array_get_value (v, j);
        if (GST_VALUE_HOLDS_STRUCTURE (e))
          print_structure (gst_value_get_structure (e), indent + 8);
      }
    } else if (G_VALUE_HOLDS_UINT64 (v) && g_value_get_uint64 (v) == 0 &&
               g_str_has_prefix (name, "dropped-")) {
      continue;
    } else {
      gchar *text = gst_value_serialize (v);
      g_print ("%*s%s: %s\n", indent + 4, "", name, text);
      g_free (text);
    }
  }
}

static void
print_stats (const gchar *title, const GstStructure *s)
{
  g_print ("%s\n", title);
  print_structure (s, 2);
}

static guint64
field (const GstStructure *s, const gchar *name)
{
  guint64 v = 0;
  gst_structure_get_uint64 (s, name, &v);
  return v;
}

int
main (int argc, char **argv)
{
  GstElement *tx, *rx_good, *rx_bad;
  GstBuffer *key, *wrong;
  GstStructure *st_tx, *st_good, *st_bad;
  gchar *desc, *pattern, *state, *priv, *pub;
  guint port_good, port_bad, seconds = 4, frames = 0;
  GstBus *bus;
  GstMessage *eos;
  GDir *dir;
  int ok;

  GOptionContext *ctx = g_option_context_new ("OUTPUT-DIR [SECONDS]");
  GError *error = NULL;

  g_option_context_set_summary (
      ctx, "A VP8 stream secured by mcsec to two receivers on 127.0.0.1: "
           "one with the key\n(writes frames as PNG to OUTPUT-DIR), one "
           "with a wrong key.  SECONDS: 4 by\ndefault.  Exit status 0 "
           "when the keyed receiver accepted every packet and\nthe other "
           "none.");
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc < 2 ||
      argc > 3) {
    g_printerr ("gst-demo: %s (see gst-demo --help)\n",
                error ? error->message
                      : "usage: gst-demo OUTPUT-DIR [SECONDS]");
    g_clear_error (&error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (argc > 2)
    seconds = (guint)g_ascii_strtoull (argv[2], NULL, 10);
  g_mkdir_with_parents (argv[1], 0755);
  /* counter stores of this throwaway key: a private directory */
  state = g_build_filename (argv[1], "state", NULL);
  g_setenv ("XDG_STATE_HOME", state, TRUE);
  g_free (state);
  port_good = free_udp_port ();
  port_bad = free_udp_port ();
  key = new_key ();
  wrong = new_key ();
  write_signing_key (argv[1], &priv, &pub);

  pattern = g_build_filename (argv[1], "frame-%03d.png", NULL);
  desc = g_strdup_printf (
      "udpsrc address=127.0.0.1 port=%u "
      "caps=application/x-mcsec ! mcsecdec name=dec spi=%u caps=\"%s\" "
      "sam-policy=required sender-keys=\"1=%s\" ! "
      "rtpvp8depay ! vp8dec ! videoconvert ! pngenc ! "
      "multifilesink location=\"%s\" max-files=5",
      port_good, SPI, RTP_CAPS, pub, pattern);
  rx_good = launch (desc);
  g_free (desc);
  desc = g_strdup_printf (
      "udpsrc address=127.0.0.1 port=%u "
      "caps=application/x-mcsec ! mcsecdec name=dec spi=%u caps=\"%s\" ! "
      "rtpvp8depay ! vp8dec ! videoconvert ! fakesink",
      port_bad, SPI, RTP_CAPS);
  rx_bad = launch (desc);
  g_free (desc);
  desc = g_strdup_printf ("videotestsrc is-live=true num-buffers=%u ! "
                          "video/x-raw,width=320,height=240,framerate=30/1 ! "
                          "vp8enc deadline=1 ! rtpvp8pay mtu=1200 ! "
                          "mcsecenc name=enc spi=%u sender-id=1 "
                          "signing-key-file=\"%s\" sam-block-size=16 ! "
                          "multiudpsink clients=127.0.0.1:%u,127.0.0.1:%u",
                          seconds * 30, SPI, priv, port_good, port_bad);
  tx = launch (desc);
  g_free (desc);

  {
    GstElement *e = gst_bin_get_by_name (GST_BIN (rx_good), "dec");
    g_object_set (e, "key", key, NULL);
    gst_object_unref (e);
    e = gst_bin_get_by_name (GST_BIN (rx_bad), "dec");
    g_object_set (e, "key", wrong, NULL);
    gst_object_unref (e);
    e = gst_bin_get_by_name (GST_BIN (tx), "enc");
    g_object_set (e, "key", key, NULL);
    gst_object_unref (e);
  }
  gst_buffer_unref (key);
  gst_buffer_unref (wrong);

  g_print ("mcsec demo: VP8 320x240 for %u s, AES-128-GCM, SPI 0x%08x, "
           "sources signed (Ed25519, blocks of 16); receivers on "
           "127.0.0.1:%u (group key, checks sources) and :%u (wrong key)\n",
           seconds, SPI, port_good, port_bad);
  gst_element_set_state (rx_good, GST_STATE_PLAYING);
  gst_element_set_state (rx_bad, GST_STATE_PLAYING);
  gst_element_set_state (tx, GST_STATE_PLAYING);

  bus = gst_element_get_bus (tx);
  eos = gst_bus_timed_pop_filtered (bus, (seconds + 10) * GST_SECOND,
                                    GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (eos == NULL || GST_MESSAGE_TYPE (eos) == GST_MESSAGE_ERROR) {
    check_bus (tx, "sender");
    g_printerr ("gst-demo: the sender did not finish\n");
    return 1;
  }
  gst_message_unref (eos);
  gst_object_unref (bus);
  /* let the last packets arrive */
  g_usleep (1000 * 1000);
  check_bus (rx_good, "receiver");
  check_bus (rx_bad, "receiver with the wrong key");

  st_tx = stats_of (tx, "enc");
  st_good = stats_of (rx_good, "dec");
  st_bad = stats_of (rx_bad, "dec");
  gst_element_set_state (tx, GST_STATE_NULL);
  gst_element_set_state (rx_good, GST_STATE_NULL);
  gst_element_set_state (rx_bad, GST_STATE_NULL);

  dir = g_dir_open (argv[1], 0, NULL);
  for (const gchar *n; dir && (n = g_dir_read_name (dir)) != NULL;)
    frames += g_str_has_suffix (n, ".png");
  if (dir)
    g_dir_close (dir);

  print_stats ("sender (mcsecenc):", st_tx);
  print_stats ("receiver with the group key (mcsecdec):", st_good);
  print_stats ("receiver with a wrong key (mcsecdec):", st_bad);
  ok = field (st_good, "sam-verified") == field (st_tx, "packets") &&
       field (st_tx, "packets") > 0 && frames > 0 &&
       field (st_bad, "accepted") == 0 &&
       field (st_bad, "dropped-auth") >= field (st_tx, "packets");
  g_print (
      "%s: %u PNG frames in %s, the source of all %" G_GUINT64_FORMAT
      " datagrams verified; the wrong key decoded nothing (%" G_GUINT64_FORMAT
      " packets dropped-auth)\n",
      ok ? "RESULT: OK" : "RESULT: FAILED", frames, argv[1],
      field (st_good, "sam-verified"), field (st_bad, "dropped-auth"));
  gst_structure_free (st_tx);
  gst_structure_free (st_good);
  gst_structure_free (st_bad);
  gst_object_unref (tx);
  gst_object_unref (rx_good);
  gst_object_unref (rx_bad);
  g_free (pattern);
  g_free (priv);
  g_free (pub);
  return ok ? 0 : 1;
}
