/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcseckeysrc with a real controller (mcsec-controller, started by the
 * test with credentials from `mcsecctl pki`): settings errors, a refusal on
 * the bus, a sender that waits for its keys (no plaintext ever leaves),
 * a receiver that drops until it has keys then decrypts, and two encoders
 * of one membership that never share a Sender-ID.
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
