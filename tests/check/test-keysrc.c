/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcseckeysrc with a real controller (mcsec-controller, started by the
 * test with credentials from `mcsecctl pki`): settings errors, a refusal on
 * the bus, a sender that waits for its keys (no plaintext ever leaves),
 * a receiver that drops until it has keys then decrypts, and two encoders
 * of one membership that never share a Sender-ID; a group with per-sender
 * SPIs, whose senders' packets carry SPI | Sender-ID and whose receivers
 * open them.
 */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>

#include "check-util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static gchar *tmpdir, *tools;
static GPid controller = 0;
static guint port;

static void
start_controller (void)
{
  tmpdir = g_dir_make_tmp ("mcsec-keysrc-XXXXXX", NULL);
  controller = controller_start (tools, tmpdir, "rx1 stranger", "rx1", &port);
}

/* A group with per-sender SPIs (docs/controller.md). */
static void
start_controller_per_sender (void)
{
  tmpdir = g_dir_make_tmp ("mcsec-keysrc-XXXXXX", NULL);
  controller = controller_start_with (
      tools, tmpdir, "rx1 stranger", "rx1",
      "spi-per-sender = true\nsender-id-bits = 16\n", &port);
}

/* A group for kernel receivers (docs/linux-ipsec.md): no source
 * authentication, per-sender SPIs. */
static void
start_controller_kernel (void)
{
  tmpdir = g_dir_make_tmp ("mcsec-keysrc-XXXXXX", NULL);
  controller = controller_start_with (
      tools, tmpdir, "rx1 stranger", "rx1",
      "spi-per-sender = true\nsender-id-bits = 8\nsam = none\n", &port);
}

/* A group that requires signatures (the default, sam = block). */
static void
start_controller_signed (void)
{
  start_controller ();
}

static void
stop_controller (void)
{
  controller_stop (&controller);
  remove_dir (&tmpdir);
}

/* "mcseckeysrc ..." for a member of the test PKI */
static gchar *
keysrc_desc (const gchar *who, const gchar *extra)
{
  return g_strdup_printf (
      "mcseckeysrc name=k controller=127.0.0.1:%u group=video "
      "certificate=%s/pki/%s.crt private-key=%s/pki/%s.key ca=%s/pki/ca.crt "
      "%s",
      port, tmpdir, who, tmpdir, who, tmpdir, extra);
}

static GstElement *
launch (const gchar *desc)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  fail_unless (p != NULL && err == NULL, "%s: %s", desc,
               err ? err->message : "");
  return p;
}

/* Wait for an mcsec-membership message with this event (or an error). */
static gboolean
wait_membership (GstElement *p, const gchar *event, GstMessage **error_out)
{
  GstBus *bus = gst_element_get_bus (p);
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gboolean found = FALSE;

  while (!found && g_get_monotonic_time () < end) {
    GstMessage *m = gst_bus_timed_pop (bus, 100 * GST_MSECOND);
    if (m == NULL)
      continue;
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT) {
      const GstStructure *s = gst_message_get_structure (m);
      if (gst_structure_has_name (s, "mcsec-membership") &&
          g_strcmp0 (gst_structure_get_string (s, "event"), event) == 0)
        found = TRUE;
    } else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR && error_out) {
      *error_out = gst_message_ref (m);
    }
    gst_message_unref (m);
  }
  gst_object_unref (bus);
  return found;
}

GST_START_TEST (test_missing_settings)
{
  GstElement *k = gst_element_factory_make ("mcseckeysrc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  fail_unless (k != NULL);
  gst_element_set_bus (k, bus);
  g_object_set (k, "controller", "127.0.0.1:1", "group", "video", NULL);
  fail_unless (gst_element_set_state (k, GST_STATE_READY) ==
               GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "certificate") != NULL, "%s",
               err->message);
  g_error_free (err);
  gst_message_unref (m);
  /* a sender needs its signing key */
  g_object_set (k, "certificate", "c", "private-key", "k", "ca", "a", "role", 2,
                NULL);
  fail_unless (gst_element_set_state (k, GST_STATE_READY) ==
               GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "signing-key-file") != NULL, "%s",
               err->message);
  g_error_free (err);
  gst_message_unref (m);
  /* an unreadable certificate is named */
  g_object_set (k, "role", 1, NULL);
  fail_unless (gst_element_set_state (k, GST_STATE_READY) ==
               GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "certificate") != NULL, "%s",
               err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (k, GST_STATE_NULL);
  gst_element_set_bus (k, NULL);
  gst_object_unref (bus);
  gst_object_unref (k);
}
GST_END_TEST;

GST_START_TEST (test_refused)
{
  gchar *k = keysrc_desc ("stranger", "");
  gchar *d = g_strdup_printf ("%s fakesrc num-buffers=0 ! fakesink", k);
  GstElement *p = launch (d);
  GstMessage *err_msg = NULL;
  GError *err = NULL;

  gst_element_set_state (p, GST_STATE_PLAYING);
  fail_unless (wait_membership (p, "refused", &err_msg));
  if (err_msg == NULL) {
    GstBus *bus = gst_element_get_bus (p);
    err_msg =
        gst_bus_timed_pop_filtered (bus, 2 * GST_SECOND, GST_MESSAGE_ERROR);
    gst_object_unref (bus);
  }
  fail_unless (err_msg != NULL, "a refusal is an error");
  gst_message_parse_error (err_msg, &err, NULL);
  fail_unless (g_error_matches (err, GST_RESOURCE_ERROR,
                                GST_RESOURCE_ERROR_NOT_AUTHORIZED));
  fail_unless (strstr (err->message, "not in the group") != NULL, "%s",
               err->message);
  g_error_free (err);
  gst_message_unref (err_msg);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  g_free (d);
  g_free (k);
}
GST_END_TEST;

static const guint8 plain[] = "mcsec plaintext that must never leave";

static GstBuffer *
plain_buffer (guint i)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, sizeof plain + 4, NULL);
  gst_buffer_fill (b, 0, plain, sizeof plain);
  gst_buffer_memset (b, sizeof plain, (guint8)i, 4);
  return b;
}

GST_START_TEST (test_send_receive)
{
  gchar *ks = keysrc_desc ("cam1", "role=sender signing-key-file=");
  gchar *kr = keysrc_desc ("rx1", "");
  gchar *sd = g_strdup_printf (
      "%s%s/pki/cam1-sign.key appsrc name=src format=time ! mcsecenc name=e "
      "sam-block-size=8 ! appsink name=sink sync=false",
      ks, tmpdir);
  gchar *rd = g_strdup_printf (
      "%s appsrc name=src ! mcsecdec name=d caps=application/octet-stream ! "
      "appsink name=sink sync=false",
      kr);
  GstElement *tx = launch (sd), *rx = launch (rd);
  GstElement *txsrc = gst_bin_get_by_name (GST_BIN (tx), "src");
  GstElement *txsink = gst_bin_get_by_name (GST_BIN (tx), "sink");
  GstElement *rxsrc = gst_bin_get_by_name (GST_BIN (rx), "src");
  GstElement *rxsink = gst_bin_get_by_name (GST_BIN (rx), "sink");
  GstElement *dec = gst_bin_get_by_name (GST_BIN (rx), "d");
  GPtrArray *wire =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_buffer_unref);
  GstSample *s;
  GstStructure *st;
  guint64 unknown = 0, accepted = 0;
  guint got = 0;

  /* the receiver first, so that it holds the key the sender gets */
  gst_element_set_state (rx, GST_STATE_PLAYING);
  fail_unless (wait_membership (rx, "joined", NULL));
  /* packets before any key of ours: dropped and counted, no error */
  {
    GstBuffer *junk = gst_buffer_new_allocate (NULL, 64, NULL);
    gst_buffer_memset (junk, 0, 0x77, 64);
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (rxsrc), junk) ==
                 GST_FLOW_OK);
  }
  /* the sender: buffers pushed at once wait for the keys */
  gst_element_set_state (tx, GST_STATE_PLAYING);
  for (guint i = 0; i < 40; i++)
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (txsrc),
                                          plain_buffer (i)) == GST_FLOW_OK);
  gst_app_src_end_of_stream (GST_APP_SRC (txsrc));
  while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (txsink),
                                            10 * GST_SECOND)) != NULL) {
    GstBuffer *b = gst_sample_get_buffer (s);
    GstMapInfo map;
    fail_unless (gst_buffer_map (b, &map, GST_MAP_READ));
    /* never the plaintext on the wire */
    fail_unless (memmem (map.data, map.size, plain, 16) == NULL);
    gst_buffer_unmap (b, &map);
    g_ptr_array_add (wire, gst_buffer_ref (b));
    gst_sample_unref (s);
    if (gst_app_sink_is_eos (GST_APP_SINK (txsink)))
      break;
  }
  fail_unless (wire->len >= 40, "only %u packets", wire->len);
  for (guint i = 0; i < wire->len; i++)
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (rxsrc),
                                          gst_buffer_ref (g_ptr_array_index (
                                              wire, i))) == GST_FLOW_OK);
  while (got < 40 && (s = gst_app_sink_try_pull_sample (GST_APP_SINK (rxsink),
                                                        5 * GST_SECOND))) {
    GstBuffer *b = gst_sample_get_buffer (s);
    guint8 tag;
    fail_unless (gst_buffer_memcmp (b, 0, plain, sizeof plain) == 0);
    gst_buffer_extract (b, sizeof plain, &tag, 1);
    fail_unless_equals_int (tag, got);
    got++;
    gst_sample_unref (s);
  }
  fail_unless_equals_int (got, 40);
  g_object_get (dec, "stats", &st, NULL);
  gst_structure_get_uint64 (st, "dropped-unknown-spi", &unknown);
  gst_structure_get_uint64 (st, "accepted", &accepted);
  fail_unless_equals_int ((gint)unknown, 1);
  fail_unless (accepted >= 40);
  gst_structure_free (st);

  gst_element_set_state (tx, GST_STATE_NULL);
  gst_element_set_state (rx, GST_STATE_NULL);
  g_ptr_array_unref (wire);
  gst_object_unref (txsrc);
  gst_object_unref (txsink);
  gst_object_unref (rxsrc);
  gst_object_unref (rxsink);
  gst_object_unref (dec);
  gst_object_unref (tx);
  gst_object_unref (rx);
  g_free (sd);
  g_free (rd);
  g_free (ks);
  g_free (kr);
}
GST_END_TEST;

GST_START_TEST (test_two_encoders)
{
  gchar *ks =
      keysrc_desc ("cam1", "role=sender sender-ids=2 signing-key-file=");
  gchar *d = g_strdup_printf (
      "%s%s/pki/cam1-sign.key appsrc name=a format=time ! mcsecenc name=ea ! "
      "appsink name=sa sync=false async=false appsrc name=b format=time ! "
      "mcsecenc "
      "name=eb ! appsink name=sb sync=false async=false",
      ks, tmpdir);
  GstElement *p = launch (d);
  const gchar *names[2][3] = {{"a", "ea", "sa"}, {"b", "eb", "sb"}};
  guint ids[2];

  gst_element_set_state (p, GST_STATE_PLAYING);
  for (int i = 0; i < 2; i++) {
    GstElement *src = gst_bin_get_by_name (GST_BIN (p), names[i][0]);
    GstElement *enc = gst_bin_get_by_name (GST_BIN (p), names[i][1]);
    GstElement *sink = gst_bin_get_by_name (GST_BIN (p), names[i][2]);
    GstStructure *st;
    GstSample *s;
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (src),
                                          plain_buffer (0)) == GST_FLOW_OK);
    s = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND);
    fail_unless (s != NULL);
    gst_sample_unref (s);
    g_object_get (enc, "stats", &st, NULL);
    gst_structure_get_uint (st, "sender-id", &ids[i]);
    gst_structure_free (st);
    gst_object_unref (src);
    gst_object_unref (enc);
    gst_object_unref (sink);
  }
  /* one counter space each */
  fail_unless (ids[0] != 0 && ids[1] != 0 && ids[0] != ids[1]);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  g_free (d);
  g_free (ks);
}
GST_END_TEST;

/* spi-per-sender: two encoders of one sender (two Sender-IDs) under the
 * group's SA; every packet, media and signature carriers, carries the
 * SA's SPI (a block's base: its low 16 bits zero) | the encoder's
 * Sender-ID; a receiver of the group decrypts and verifies them all, under
 * one SA, none malformed. */
GST_START_TEST (test_spi_per_sender)
{
  gchar *ks =
      keysrc_desc ("cam1", "role=sender sender-ids=2 signing-key-file=");
  gchar *kr = keysrc_desc ("rx1", "");
  gchar *sd = g_strdup_printf (
      "%s%s/pki/cam1-sign.key appsrc name=a format=time ! mcsecenc name=ea "
      "sam-block-size=8 ! appsink name=sa sync=false async=false "
      "appsrc name=b format=time ! mcsecenc name=eb sam-block-size=8 ! "
      "appsink name=sb sync=false async=false",
      ks, tmpdir);
  gchar *rd = g_strdup_printf (
      "%s appsrc name=src ! mcsecdec name=d caps=application/octet-stream ! "
      "appsink name=sink sync=false",
      kr);
  GstElement *tx = launch (sd), *rx = launch (rd);
  GstElement *rxsrc = gst_bin_get_by_name (GST_BIN (rx), "src");
  GstElement *rxsink = gst_bin_get_by_name (GST_BIN (rx), "sink");
  GstElement *dec = gst_bin_get_by_name (GST_BIN (rx), "d");
  const gchar *names[2][3] = {{"a", "ea", "sa"}, {"b", "eb", "sb"}};
  GPtrArray *wire =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_buffer_unref);
  guint ids[2] = {0, 0}, spis[2] = {0, 0}, got[2] = {0, 0}, carriers = 0;
  guint64 accepted = 0, dropped = 1, sam_ok = 0;
  GstStructure *st;
  GstSample *s;

  gst_element_set_state (rx, GST_STATE_PLAYING);
  fail_unless (wait_membership (rx, "joined", NULL));
  gst_element_set_state (tx, GST_STATE_PLAYING);
  for (int e = 0; e < 2; e++) {
    GstElement *src = gst_bin_get_by_name (GST_BIN (tx), names[e][0]);
    GstElement *enc = gst_bin_get_by_name (GST_BIN (tx), names[e][1]);
    GstElement *sink = gst_bin_get_by_name (GST_BIN (tx), names[e][2]);
    for (guint i = 0; i < 12; i++)
      fail_unless (gst_app_src_push_buffer (GST_APP_SRC (src),
                                            plain_buffer (16 * e + i)) ==
                   GST_FLOW_OK);
    gst_app_src_end_of_stream (GST_APP_SRC (src));
    while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (sink),
                                              10 * GST_SECOND)) != NULL) {
      guint8 head[4];
      guint32 spi;
      fail_unless (gst_buffer_extract (gst_sample_get_buffer (s), 0, head, 4) ==
                   4);
      spi = GST_READ_UINT32_BE (head);
      if (ids[e] == 0) {
        g_object_get (enc, "stats", &st, NULL);
        gst_structure_get_uint (st, "sender-id", &ids[e]);
        gst_structure_get_uint (st, "spi", &spis[e]);
        gst_structure_free (st);
      }
      fail_unless (spi == (spis[e] | ids[e]), "SPI 0x%08x, SA 0x%08x, id %u",
                   spi, spis[e], ids[e]);
      g_ptr_array_add (wire, gst_buffer_ref (gst_sample_get_buffer (s)));
      gst_sample_unref (s);
      if (gst_app_sink_is_eos (GST_APP_SINK (sink)))
        break;
    }
    gst_object_unref (src);
    gst_object_unref (enc);
    gst_object_unref (sink);
  }
  /* one SA, a block's base; two Sender-IDs in it */
  fail_unless (spis[0] == spis[1] && spis[0] >= 0x10000 &&
                   (spis[0] & 0xffff) == 0,
               "SA 0x%08x and 0x%08x", spis[0], spis[1]);
  fail_unless (ids[0] != 0 && ids[1] != 0 && ids[0] != ids[1] &&
               ids[0] <= 0xffff && ids[1] <= 0xffff);
  fail_unless (wire->len >= 24, "only %u packets", wire->len);

  for (guint i = 0; i < wire->len; i++)
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (rxsrc),
                                          gst_buffer_ref (g_ptr_array_index (
                                              wire, i))) == GST_FLOW_OK);
  while (got[0] + got[1] < 24 && (s = gst_app_sink_try_pull_sample (
                                      GST_APP_SINK (rxsink), 5 * GST_SECOND))) {
    GstBuffer *b = gst_sample_get_buffer (s);
    guint8 tag;
    fail_unless (gst_buffer_memcmp (b, 0, plain, sizeof plain) == 0);
    gst_buffer_extract (b, sizeof plain, &tag, 1);
    fail_unless (tag / 16 < 2 && tag % 16 == got[tag / 16], "tag %u", tag);
    got[tag / 16]++;
    gst_sample_unref (s);
  }
  fail_unless (got[0] == 12 && got[1] == 12, "got %u and %u", got[0], got[1]);
  carriers = wire->len - 24;
  g_object_get (dec, "stats", &st, NULL);
  gst_structure_get_uint64 (st, "accepted", &accepted);
  gst_structure_get_uint64 (st, "dropped", &dropped);
  gst_structure_get_uint64 (st, "sam-verified", &sam_ok);
  gst_structure_free (st);
  /* nothing dropped (malformed: an SPI whose low bits are not the
   * Sender-ID; unknown-spi: a block the SA does not take) */
  fail_unless (accepted >= 24 && dropped == 0,
               "accepted %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT,
               accepted, dropped);
  /* the signatures, bound to the SA's SPI, verify for both senders */
  fail_unless (carriers > 0 && sam_ok == 24,
               "%u carriers, %" G_GUINT64_FORMAT " verified", carriers, sam_ok);

  gst_element_set_state (tx, GST_STATE_NULL);
  gst_element_set_state (rx, GST_STATE_NULL);
  g_ptr_array_unref (wire);
  gst_object_unref (rxsrc);
  gst_object_unref (rxsink);
  gst_object_unref (dec);
  gst_object_unref (tx);
  gst_object_unref (rx);
  g_free (sd);
  g_free (rd);
  g_free (ks);
  g_free (kr);
}
GST_END_TEST;

/* mcsecenc inner-udp-port (Next Header 17, for a kernel) with a sender's
 * membership: in a group with sam = none the sender does not sign, and
 * every packet is the bare datagram behind a UDP header (what a kernel
 * hands to a UDP socket); mcsecdec, a member, decrypts them all.  Before,
 * mcsecenc refused inner-udp-port with any sender's membership. */
GST_START_TEST (test_kernel_sender)
{
  gchar *ks = keysrc_desc ("cam1", "role=sender signing-key-file=");
  gchar *kr = keysrc_desc ("rx1", "");
  gchar *sd = g_strdup_printf (
      "%s%s/pki/cam1-sign.key appsrc name=a format=time ! mcsecenc name=e "
      "inner-udp-port=5004 ! appsink name=s sync=false async=false",
      ks, tmpdir);
  gchar *rd = g_strdup_printf (
      "%s appsrc name=src ! mcsecdec name=d caps=application/octet-stream ! "
      "appsink name=sink sync=false",
      kr);
  GstElement *tx = launch (sd), *rx = launch (rd);
  GstElement *src = gst_bin_get_by_name (GST_BIN (tx), "a");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (tx), "s");
  GstElement *enc = gst_bin_get_by_name (GST_BIN (tx), "e");
  GstElement *rxsrc = gst_bin_get_by_name (GST_BIN (rx), "src");
  GstElement *rxsink = gst_bin_get_by_name (GST_BIN (rx), "sink");
  GPtrArray *wire =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_buffer_unref);
  guint id = 0, spi = 0, got = 0;
  GstStructure *st;
  GstSample *smp;

  gst_element_set_state (rx, GST_STATE_PLAYING);
  fail_unless (wait_membership (rx, "joined", NULL));
  gst_element_set_state (tx, GST_STATE_PLAYING);
  for (guint i = 0; i < 10; i++)
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (src),
                                          plain_buffer (i)) == GST_FLOW_OK);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  while ((smp = gst_app_sink_try_pull_sample (GST_APP_SINK (sink),
                                              10 * GST_SECOND)) != NULL) {
    g_ptr_array_add (wire, gst_buffer_ref (gst_sample_get_buffer (smp)));
    gst_sample_unref (smp);
    if (wire->len == 10 || gst_app_sink_is_eos (GST_APP_SINK (sink)))
      break;
  }
  g_object_get (enc, "stats", &st, NULL);
  gst_structure_get_uint (st, "sender-id", &id);
  gst_structure_get_uint (st, "spi", &spi);
  gst_structure_free (st);
  /* ten datagrams, ten packets: no signature carrier */
  fail_unless (wire->len == 10, "%u packets", wire->len);
  for (guint i = 0; i < wire->len; i++) {
    GstBuffer *b = g_ptr_array_index (wire, i);
    gsize n = gst_buffer_get_size (b);
    guint8 head[4];
    /* SPI, sequence number, IV (8), then the datagram behind an 8-byte
     * UDP header, padding to 4 bytes with its 2-byte trailer, the 16-byte
     * ICV: 8 bytes more than the bare datagram (Next Header 253) */
    gsize inner = sizeof plain + 4 + 8;
    fail_unless (gst_buffer_extract (b, 0, head, 4) == 4);
    fail_unless (GST_READ_UINT32_BE (head) == (spi | id) && (spi & 0xff) == 0,
                 "SPI 0x%08x, SA 0x%08x, id %u", GST_READ_UINT32_BE (head), spi,
                 id);
    fail_unless (n == 16 + (inner + 2 + 3) / 4 * 4 + 16, "%zu bytes", n);
    fail_unless (gst_app_src_push_buffer (GST_APP_SRC (rxsrc),
                                          gst_buffer_ref (b)) == GST_FLOW_OK);
  }
  while (got < 10 && (smp = gst_app_sink_try_pull_sample (GST_APP_SINK (rxsink),
                                                          5 * GST_SECOND))) {
    GstBuffer *b = gst_sample_get_buffer (smp);
    guint8 tag;
    /* the inner UDP header stripped */
    fail_unless (gst_buffer_memcmp (b, 0, plain, sizeof plain) == 0);
    gst_buffer_extract (b, sizeof plain, &tag, 1);
    fail_unless (tag == got, "tag %u", tag);
    got++;
    gst_sample_unref (smp);
  }
  fail_unless (got == 10, "got %u", got);

  gst_element_set_state (tx, GST_STATE_NULL);
  gst_element_set_state (rx, GST_STATE_NULL);
  g_ptr_array_unref (wire);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (enc);
  gst_object_unref (rxsrc);
  gst_object_unref (rxsink);
  gst_object_unref (tx);
  gst_object_unref (rx);
  g_free (sd);
  g_free (rd);
  g_free (ks);
  g_free (kr);
}
GST_END_TEST;

/* In a group that requires signatures, inner-udp-port with a sender's
 * membership is an error that names the group's setting: a kernel could
 * not check the signatures. */
GST_START_TEST (test_kernel_sender_signed_group)
{
  gchar *ks = keysrc_desc ("cam1", "role=sender signing-key-file=");
  gchar *sd = g_strdup_printf (
      "%s%s/pki/cam1-sign.key appsrc name=a format=time ! mcsecenc name=e "
      "inner-udp-port=5004 ! fakesink async=false",
      ks, tmpdir);
  GstElement *tx = launch (sd);
  GstElement *src = gst_bin_get_by_name (GST_BIN (tx), "a");
  GstMessage *err = NULL;
  GError *e = NULL;

  GstBus *bus = gst_element_get_bus (tx);

  gst_element_set_state (tx, GST_STATE_PLAYING);
  fail_unless (gst_app_src_push_buffer (GST_APP_SRC (src), plain_buffer (0)) ==
               GST_FLOW_OK);
  /* mcsecenc's error (appsrc's "stream error" follows it) */
  while (e == NULL && (err = gst_bus_timed_pop_filtered (
                           bus, 10 * GST_SECOND, GST_MESSAGE_ERROR)) != NULL) {
    if (g_strcmp0 (GST_OBJECT_NAME (GST_MESSAGE_SRC (err)), "e") == 0)
      gst_message_parse_error (err, &e, NULL);
    gst_message_unref (err);
  }
  fail_unless (e != NULL, "no error from mcsecenc");
  fail_unless (strstr (e->message, "inner-udp-port") &&
                   strstr (e->message, "sam setting"),
               "%s", e->message);
  g_error_free (e);
  gst_object_unref (bus);
  gst_element_set_state (tx, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (tx);
  g_free (sd);
  g_free (ks);
}
GST_END_TEST;

static Suite *
keysrc_suite (void)
{
  Suite *s = suite_create ("mcseckeysrc");
  TCase *tc = tcase_create ("controller");

  tcase_add_checked_fixture (tc, start_controller, stop_controller);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_missing_settings);
  tcase_add_test (tc, test_refused);
  tcase_add_test (tc, test_send_receive);
  tcase_add_test (tc, test_two_encoders);
  suite_add_tcase (s, tc);
  tc = tcase_create ("spi-per-sender");
  tcase_add_checked_fixture (tc, start_controller_per_sender, stop_controller);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_spi_per_sender);
  suite_add_tcase (s, tc);
  tc = tcase_create ("kernel-senders");
  tcase_add_checked_fixture (tc, start_controller_kernel, stop_controller);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_kernel_sender);
  suite_add_tcase (s, tc);
  tc = tcase_create ("kernel-senders-signed-group");
  tcase_add_checked_fixture (tc, start_controller_signed, stop_controller);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_kernel_sender_signed_group);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gchar *plugin_dir = NULL;
  int rc;

  /* of the system's plugins only the two the tests use: scanning all of
   * them in this process would load libraries that leak at exit (the
   * sanitizer run checks our leaks) */
  if (g_getenv ("MCSEC_SYSTEM_PLUGINS")) {
    gchar *dir = g_dir_make_tmp ("mcsec-plugins-XXXXXX", NULL);
    const gchar *want[] = {"libgstapp.so", "libgstcoreelements.so"};
    for (guint i = 0; dir && i < G_N_ELEMENTS (want); i++) {
      gchar *from =
          g_build_filename (g_getenv ("MCSEC_SYSTEM_PLUGINS"), want[i], NULL);
      gchar *to = g_build_filename (dir, want[i], NULL);
      if (symlink (from, to) != 0)
        g_printerr ("cannot link %s\n", from);
      g_free (from);
      g_free (to);
    }
    g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", dir, TRUE);
    plugin_dir = dir;
  }
  gst_check_init (&argc, &argv);
  tools = g_strdup (g_getenv ("MCSEC_TOOLS_DIR"));
  if (tools == NULL) {
    g_printerr ("MCSEC_TOOLS_DIR: the build's tools folder\n");
    return 1;
  }
  rc = gst_check_run_suite (keysrc_suite (), "mcseckeysrc", __FILE__);
  if (plugin_dir) {
    gchar *rm[] = {(gchar *)"rm", (gchar *)"-rf", plugin_dir, NULL};
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                  NULL, NULL);
    g_free (plugin_dir);
  }
  return rc;
}
