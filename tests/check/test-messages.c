/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What mcsecenc and mcsecdec say on the bus (issue 17, item 1): a WARNING
 * per drop reason, rate-limited (`warning-interval`); the `stats` as
 * element messages (`stats-interval`); the errors of property writes
 * (`key-file`) posted with their cause when the element starts.  GstHarness
 * and its test clock: no sockets, no sleeps.
 */
#include <errno.h>
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>

#include <mcsec/mcsec.h>

#include "check-util.h"

/* Every message is handled on the thread that posts it, by a handler that
 * reads the element's stats (its object lock): a message posted with that
 * lock held would hang the test. */
static GstBusSyncReply
read_stats_on_post (GstBus *bus, GstMessage *msg, gpointer data)
{
  GstStructure *s = NULL;

  (void)bus;
  (void)msg;
  g_object_get (data, "stats", &s, NULL);
  fail_unless (s != NULL);
  gst_structure_free (s);
  return GST_BUS_PASS;
}

static GstBus *
watch (GstElement *element)
{
  GstBus *bus = gst_bus_new ();

  gst_bus_set_sync_handler (bus, read_stats_on_post, element, NULL);
  gst_element_set_bus (element, bus);
  return bus;
}

static void
unwatch (GstElement *element, GstBus *bus)
{
  gst_element_set_bus (element, NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

/* The key in hex, as it would appear if a message leaked it. */
static gchar *
key_hex (GstBuffer *key)
{
  GstMapInfo map;
  gchar *hex;

  gst_buffer_map (key, &map, GST_MAP_READ);
  hex = g_malloc0 (map.size * 2 + 1);
  for (gsize i = 0; i < map.size; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", map.data[i]);
  gst_buffer_unmap (key, &map);
  return hex;
}

/* The drop warnings on the bus so far: their details, with the message
 * text as "text".  None of them holds a byte of the keys (in hex; the
 * first 8 bytes of a key suffice to tell). */
static GPtrArray *
pop_warnings (GstBus *bus, GstBuffer **keys, guint n_keys)
{
  GPtrArray *out =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_structure_free);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) != NULL) {
    GError *err = NULL;
    gchar *debug = NULL, *all;
    const GstStructure *details = NULL;
    GstStructure *d;

    gst_message_parse_warning (msg, &err, &debug);
    gst_message_parse_warning_details (msg, &details);
    fail_unless (details != NULL, "no details: %s", err->message);
    fail_unless (gst_structure_has_name (details, "application/x-mcsec-drops"));
    fail_unless (err->domain == GST_STREAM_ERROR);
    d = gst_structure_copy (details);
    gst_structure_set (d, "text", G_TYPE_STRING, err->message, NULL);
    all = gst_structure_to_string (d);
    for (guint k = 0; k < n_keys; k++) {
      gchar *hex = key_hex (keys[k]);
      hex[16] = '\0';
      fail_if (strstr (all, hex) || strstr (debug, hex), "key in %s", all);
      g_free (hex);
    }
    g_free (all);
    g_ptr_array_add (out, d);
    g_error_free (err);
    g_free (debug);
    gst_message_unref (msg);
  }
  return out;
}

/* The warning about `reason` in w (there is exactly one): its count. */
static guint64
warned_count (GPtrArray *w, const gchar *reason)
{
  const GstStructure *found = NULL;
  guint64 count = 0;

  for (guint i = 0; i < w->len; i++) {
    const GstStructure *s = g_ptr_array_index (w, i);
    if (g_strcmp0 (gst_structure_get_string (s, "reason"), reason) == 0) {
      fail_unless (found == NULL, "two warnings about %s", reason);
      found = s;
    }
  }
  fail_unless (found != NULL, "no warning about %s", reason);
  fail_unless (gst_structure_get_uint64 (found, "count", &count));
  return count;
}

static guint64
stat (GstHarness *h, const gchar *field)
{
  GstStructure *s = get_stats (h);
  guint64 v = G_MAXUINT64;

  fail_unless (gst_structure_get_uint64 (s, field, &v), "%s", field);
  gst_structure_free (s);
  return v;
}

/* One ESP packet of enc carrying datagram `tag`. */
static GstBuffer *
esp_packet (GstHarness *enc, guint tag)
{
  fail_unless_equals_int (gst_harness_push (enc, make_datagram (tag, 40)),
                          GST_FLOW_OK);
  return gst_harness_pull (enc);
}

/* A receiver with the wrong key hears it at once, with the reason, the
 * SPI, and what to check; never a key byte. */
GST_START_TEST (test_wrong_key_warns)
{
  GstBuffer *keys[2] = {make_key (MCSEC_SUITE_AES_128_GCM),
                        make_key (MCSEC_SUITE_AES_128_GCM)};
  GstHarness *enc = enc_harness ("aes-128-gcm", keys[0], SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", keys[1], SPI_A);
  GstBus *bus = watch (dec->element);
  GPtrArray *w;
  const GstStructure *s;
  guint spi = 0, sender = 99;
  guint64 total = 0;

  fail_unless_equals_int (gst_harness_push (dec, esp_packet (enc, 1)),
                          GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (dec), 0);
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 1);
  fail_unless_equals_uint64 (warned_count (w, "auth"), 1);
  s = g_ptr_array_index (w, 0);
  fail_unless (gst_structure_get (s, "total", G_TYPE_UINT64, &total, "spi",
                                  G_TYPE_UINT, &spi, "sender-id", G_TYPE_UINT,
                                  &sender, NULL));
  fail_unless_equals_uint64 (total, 1);
  fail_unless_equals_int (spi, SPI_A);
  fail_unless_equals_int (sender, 1);
  fail_unless (strstr (gst_structure_get_string (s, "text"), "dropped-auth") &&
                   strstr (gst_structure_get_string (s, "text"), "wrong key"),
               "%s", gst_structure_get_string (s, "text"));
  /* a bad packet stays a drop: no error */
  fail_if (gst_bus_have_pending (bus));
  g_ptr_array_unref (w);
  unwatch (dec->element, bus);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
  gst_buffer_unref (keys[0]);
  gst_buffer_unref (keys[1]);
}

GST_END_TEST;

/* The first drop of each reason at once, then at most one warning per
 * reason per warning-interval (of the pipeline clock), with the count since
 * the last one; the rest at the end of the stream.  The counts add up. */
GST_START_TEST (test_warnings_rate_limited)
{
  GstBuffer *keys[2] = {make_key (MCSEC_SUITE_AES_128_GCM),
                        make_key (MCSEC_SUITE_AES_128_GCM)};
  GstHarness *bad = enc_harness ("aes-128-gcm", keys[0], SPI_A, 2);
  GstHarness *good = enc_harness ("aes-128-gcm", keys[1], SPI_A, 3);
  GstHarness *dec = dec_harness ("aes-128-gcm", keys[1], SPI_A);
  GstBus *bus = watch (dec->element);
  guint64 auth = 0, short_ = 0;
  GPtrArray *w;

  /* 100 forgeries and 5 runts in the same instant: one warning each */
  for (guint i = 0; i < 100; i++)
    gst_harness_push (dec, esp_packet (bad, i));
  for (guint i = 0; i < 5; i++)
    gst_harness_push (dec, gst_buffer_new_allocate (NULL, 10, NULL));
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 2);
  auth += warned_count (w, "auth");
  short_ += warned_count (w, "too-short");
  fail_unless_equals_uint64 (auth, 1);
  fail_unless_equals_uint64 (short_, 1);
  g_ptr_array_unref (w);

  /* within the interval (default 5 s): nothing more */
  gst_harness_set_time (dec, 5 * GST_SECOND - 1);
  gst_harness_push (dec, esp_packet (bad, 100));
  gst_harness_push (dec, esp_packet (good, 1));
  fail_unless (pulled_is (dec, 1, 40));
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 0);
  g_ptr_array_unref (w);

  /* the interval over: the next packet, even a good one, reports both */
  gst_harness_set_time (dec, 5 * GST_SECOND);
  gst_harness_push (dec, esp_packet (good, 2));
  fail_unless (pulled_is (dec, 2, 40));
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 2);
  fail_unless_equals_uint64 (warned_count (w, "auth"), 100);
  fail_unless_equals_uint64 (warned_count (w, "too-short"), 4);
  auth += warned_count (w, "auth");
  short_ += warned_count (w, "too-short");
  g_ptr_array_unref (w);

  /* a flood right after: silent until the end of the stream, which
   * reports it */
  for (guint i = 0; i < 1000; i++)
    gst_harness_push (dec, esp_packet (bad, 200 + i));
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 0);
  g_ptr_array_unref (w);
  gst_harness_push_event (dec, gst_event_new_eos ());
  w = pop_warnings (bus, keys, 2);
  fail_unless_equals_int (w->len, 1);
  fail_unless_equals_uint64 (warned_count (w, "auth"), 1000);
  auth += warned_count (w, "auth");
  g_ptr_array_unref (w);

  fail_unless_equals_uint64 (auth, stat (dec, "dropped-auth"));
  fail_unless_equals_uint64 (short_, stat (dec, "dropped-too-short"));
  fail_unless_equals_uint64 (stat (dec, "dropped"), 1106);
  unwatch (dec->element, bus);
  gst_harness_teardown (bad);
  gst_harness_teardown (good);
  gst_harness_teardown (dec);
  gst_buffer_unref (keys[0]);
  gst_buffer_unref (keys[1]);
}

GST_END_TEST;

/* warning-interval=0: no warnings at all; the drops are still counted. */
GST_START_TEST (test_warning_interval_zero)
{
  GstBuffer *keys[2] = {make_key (MCSEC_SUITE_AES_128_GCM),
                        make_key (MCSEC_SUITE_AES_128_GCM)};
  GstHarness *enc = enc_harness ("aes-128-gcm", keys[0], SPI_A, 4);
  GstHarness *dec = dec_harness ("aes-128-gcm", keys[1], SPI_A);
  GstBus *bus = watch (dec->element);
  guint interval = 1;

  g_object_get (dec->element, "warning-interval", &interval, NULL);
  fail_unless_equals_int (interval, 5000);
  g_object_set (dec->element, "warning-interval", 0, NULL);
  for (guint i = 0; i < 50; i++) {
    gst_harness_push (dec, esp_packet (enc, i));
    gst_harness_set_time (dec, (i + 1) * 10 * GST_SECOND);
  }
  gst_harness_push (dec, gst_buffer_new_allocate (NULL, 3, NULL));
  gst_harness_push_event (dec, gst_event_new_eos ());
  fail_if (gst_bus_have_pending (bus));
  fail_unless_equals_uint64 (stat (dec, "dropped-auth"), 50);
  fail_unless_equals_uint64 (stat (dec, "dropped-too-short"), 1);
  unwatch (dec->element, bus);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
  gst_buffer_unref (keys[0]);
  gst_buffer_unref (keys[1]);
}

GST_END_TEST;

/* The encoder too: what it refuses to send (its hard limit) is said. */
GST_START_TEST (test_encoder_warns)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstElement *e = gst_element_factory_make ("mcsecenc", NULL);
  GstHarness *enc;
  GstBus *bus;
  GPtrArray *w;

  g_object_set (e, "key", key, "spi", SPI_B, "sender-id", 5, "hard-packets",
                (guint64)3, NULL);
  bus = watch (e);
  enc = harness_start (gst_object_ref (e), RTP_CAPS);
  for (guint i = 0; i < 10; i++)
    gst_harness_push (enc, make_datagram (i, 30));
  fail_unless_equals_int (gst_harness_buffers_received (enc), 3);
  w = pop_warnings (bus, &key, 1);
  fail_unless_equals_int (w->len, 1);
  fail_unless_equals_uint64 (warned_count (w, "hard-limit"), 1);
  g_ptr_array_unref (w);
  gst_harness_push_event (enc, gst_event_new_eos ());
  w = pop_warnings (bus, &key, 1);
  fail_unless_equals_uint64 (warned_count (w, "hard-limit"), 6);
  g_ptr_array_unref (w);
  fail_unless_equals_uint64 (stat (enc, "dropped-hard-limit"), 7);
  unwatch (e, bus);
  gst_harness_teardown (enc);
  gst_object_unref (e);
  gst_buffer_unref (key);
}

GST_END_TEST;

/* The next element message on the bus: the stats of `name`, with
 * `field` = value. */
static void
expect_stats_message (GstBus *bus, const gchar *name, const gchar *field,
                      guint64 value)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
  const GstStructure *s;
  guint64 v = G_MAXUINT64;

  fail_unless (msg != NULL, "no stats message");
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_has_name (s, name), "%s",
               gst_structure_get_name (s));
  fail_unless (gst_structure_get_uint64 (s, field, &v));
  fail_unless_equals_uint64 (v, value);
  gst_message_unref (msg);
}

/* stats-interval: the stats as element messages every interval of the
 * pipeline clock while PLAYING, when no buffer comes too (a stopped
 * stream shows), and once at the end of the stream; 0: none. */
static const struct {
  const gchar *factory, *stats, *counter;
} stats_cases[] = {
    {"mcsecdec", "application/x-mcsec-dec-stats", "received"},
    {"mcsecenc", "application/x-mcsec-enc-stats", "packets"},
};

GST_START_TEST (test_stats_interval)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 6);
  gboolean is_dec = g_str_equal (stats_cases[__i__].factory, "mcsecdec");
  GstHarness *h = is_dec ? dec_harness ("aes-128-gcm", key, SPI_A)
                         : enc_harness ("aes-128-gcm", key, SPI_B, 7);
  const gchar *name = stats_cases[__i__].stats;
  const gchar *counter = stats_cases[__i__].counter;
  GstTestClock *clock = gst_harness_get_testclock (h);
  GstBus *bus = watch (h->element);
  guint interval = 1;

  /* off by default: no clock wait at all */
  g_object_get (h->element, "stats-interval", &interval, NULL);
  fail_unless_equals_int (interval, 0);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 0);

  g_object_set (h->element, "stats-interval", 1000, NULL);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 1);
  fail_unless (gst_harness_crank_single_clock_wait (h));
  fail_unless_equals_uint64 (gst_clock_get_time (GST_CLOCK (clock)),
                             GST_SECOND);
  expect_stats_message (bus, name, counter, 0);
  for (guint i = 0; i < 3; i++)
    gst_harness_push (h, is_dec ? esp_packet (enc, i) : make_datagram (i, 20));
  fail_unless (gst_harness_crank_single_clock_wait (h));
  expect_stats_message (bus, name, counter, 3);
  /* nothing comes any more: the messages go on */
  fail_unless (gst_harness_crank_single_clock_wait (h));
  fail_unless_equals_uint64 (gst_clock_get_time (GST_CLOCK (clock)),
                             3 * GST_SECOND);
  expect_stats_message (bus, name, counter, 3);
  fail_if (gst_bus_have_pending (bus));
  /* and one at the end */
  gst_harness_push_event (h, gst_event_new_eos ());
  expect_stats_message (bus, name, counter, 3);
  /* off again: the clock wait is gone */
  g_object_set (h->element, "stats-interval", 0, NULL);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 0);
  fail_if (gst_bus_have_pending (bus));

  unwatch (h->element, bus);
  gst_object_unref (clock);
  gst_harness_teardown (h);
  gst_harness_teardown (enc);
  gst_buffer_unref (key);
}

GST_END_TEST;

/* A stats-interval set before the start runs from PLAYING, and stops when
 * the element leaves PLAYING. */
GST_START_TEST (test_stats_interval_follows_state)
{
  GstElement *e = gst_element_factory_make ("mcsecdec", NULL);
  GstHarness *h;
  GstTestClock *clock;
  GstBus *bus;

  g_object_set (e, "stats-interval", 250, NULL);
  bus = watch (e);
  h = harness_start (gst_object_ref (e), "application/x-mcsec");
  clock = gst_harness_get_testclock (h);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 1);
  fail_unless (gst_harness_crank_single_clock_wait (h));
  fail_unless_equals_uint64 (gst_clock_get_time (GST_CLOCK (clock)),
                             250 * GST_MSECOND);
  expect_stats_message (bus, "application/x-mcsec-dec-stats", "received", 0);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
                          GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 0);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PLAYING),
                          GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_test_clock_peek_id_count (clock), 1);
  unwatch (e, bus);
  gst_object_unref (clock);
  gst_harness_teardown (h);
  gst_object_unref (e);
}

GST_END_TEST;

/* ---- errors of property writes ---- */

static gchar *
state_file (const gchar *name, const gchar *contents)
{
  gchar *path = g_build_filename (state_dir, name, NULL);

  if (contents)
    fail_unless (g_file_set_contents (path, contents, -1, NULL));
  return path;
}

static gchar *
expected_text (const gchar *path, int err, const gchar *text)
{
  return g_strdup_printf ("key-file '%s': %s", path,
                          text ? text : g_strerror (err));
}

/* key-file set before the element has a bus (as gst-launch-1.0 does it):
 * the element starts with an error naming the file and the cause, and
 * again at each start until a good value replaces it. */
static const struct {
  const gchar *name, *contents; /* NULL: not created by the test */
  int err;                      /* the errno text expected */
  const gchar *text;            /* or this */
  gboolean resource;            /* a RESOURCE error, else LIBRARY */
} key_file_cases[] = {
    {"missing.key", NULL, ENOENT, NULL, TRUE},
    {"", NULL, EISDIR, NULL, TRUE}, /* the directory itself */
    {"not-a-key", "this is not hex: 0123 secret words\n", 0,
     "not a key file (key material in hexadecimal, as mcsec-keygen "
     "writes it)",
     FALSE},
    {"odd.key", "000102030405060708090a0b0c0d0e0f1011121\n", 0,
     "not a key file (key material in hexadecimal, as mcsec-keygen "
     "writes it)",
     FALSE},
    {"empty.key", " \n", 0, "empty (no key material)", FALSE},
};

GST_START_TEST (test_key_file_error_at_start)
{
  guint c = __i__ % G_N_ELEMENTS (key_file_cases);
  const gchar *factory =
      __i__ < (gint)G_N_ELEMENTS (key_file_cases) ? "mcsecdec" : "mcsecenc";
  GstElement *e = gst_element_factory_make (factory, NULL);
  gchar *path = state_file (key_file_cases[c].name, key_file_cases[c].contents);
  gchar *want =
      expected_text (path, key_file_cases[c].err, key_file_cases[c].text);
  gchar *good = state_file ("good.key", "000102030405060708090a0b0c0d0e0f"
                                        "10111213\n");
  GstBus *bus;

  g_object_set (e, "key-file", path, NULL);
  bus = watch (e);
  for (guint attempt = 0; attempt < 2; attempt++) {
    GstMessage *msg;
    GError *err = NULL;
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                            GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != NULL, "%s: no error", factory);
    gst_message_parse_error (msg, &err, NULL);
    fail_unless_equals_string (err->message, want);
    fail_unless (
        err->domain ==
        (key_file_cases[c].resource ? GST_RESOURCE_ERROR : GST_LIBRARY_ERROR));
    /* what the file holds is never repeated */
    fail_if (strstr (err->message, "secret") || strstr (err->message, "0001"));
    g_error_free (err);
    gst_message_unref (msg);
    fail_if (gst_bus_have_pending (bus));
    gst_element_set_state (e, GST_STATE_NULL);
  }
  /* a good key file replaces the error */
  g_object_set (e, "key-file", good, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                          GST_STATE_CHANGE_SUCCESS);
  fail_if (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR));
  gst_element_set_state (e, GST_STATE_NULL);
  /* so does a good key, after another bad write (reported at once now
   * that there is a bus, and kept) */
  g_object_set (e, "key-file", path, NULL);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) != NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                          GST_STATE_CHANGE_FAILURE);
  gst_message_unref (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR));
  {
    GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
    g_object_set (e, "key", key, NULL);
    gst_buffer_unref (key);
  }
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                          GST_STATE_CHANGE_SUCCESS);
  gst_element_set_state (e, GST_STATE_NULL);

  unwatch (e, bus);
  gst_object_unref (e);
  g_free (path);
  g_free (want);
  g_free (good);
}

GST_END_TEST;

/* A key or key-file write that fails while the stream runs is reported
 * and changes nothing: the element goes on with the key it had, also when
 * the SA is made again (the key was cleared before the value was checked,
 * so the next SA had none). */
GST_START_TEST (test_failed_key_write_keeps_key)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *too_long = gst_buffer_new_allocate (NULL, 100, NULL);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  gchar *bad = state_file ("bad.key", "not hex at all\n");
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (enc->element, bus);
  gst_element_set_bus (dec->element, bus);
  fail_unless_equals_int (gst_harness_push (enc, make_datagram (1, 50)),
                          GST_FLOW_OK);
  gst_harness_push (dec, gst_harness_pull (enc));
  fail_unless (pulled_is (dec, 1, 50));
  g_object_set (enc->element, "key-file", bad, NULL);
  g_object_set (dec->element, "key-file", "/nonexistent/mcsec.key", NULL);
  g_object_set (dec->element, "key", too_long, NULL);
  fail_unless_equals_int (gst_harness_push (enc, make_datagram (2, 60)),
                          GST_FLOW_OK);
  gst_harness_push (dec, gst_harness_pull (enc));
  fail_unless (pulled_is (dec, 2, 60));
  /* and the key is still there when the SA is made again (a new SPI) */
  g_object_set (enc->element, "spi", SPI_B, NULL);
  g_object_set (dec->element, "spi", SPI_B, NULL);
  fail_unless_equals_int (gst_harness_push (enc, make_datagram (3, 70)),
                          GST_FLOW_OK);
  gst_harness_push (dec, gst_harness_pull (enc));
  fail_unless (pulled_is (dec, 3, 70));
  /* each failed write was reported */
  for (guint i = 0; i < 3; i++) {
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (m != NULL, "error %u not posted", i);
    gst_message_unref (m);
  }
  gst_element_set_bus (enc->element, NULL);
  gst_element_set_bus (dec->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
  gst_buffer_unref (too_long);
  gst_buffer_unref (key);
  g_free (bad);
}

GST_END_TEST;

/* A key file too long to be one is refused without reading it all. */
GST_START_TEST (test_key_file_too_long)
{
  GstElement *e = gst_element_factory_make ("mcsecdec", NULL);
  gchar *spaces = g_strnfill (100000, ' ');
  gchar *path = state_file ("long.key", spaces);
  GstBus *bus;
  GstMessage *msg;
  GError *err = NULL;

  g_object_set (e, "key-file", path, NULL);
  bus = watch (e);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
                          GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (g_str_has_prefix (err->message, "key-file '") &&
                   strstr (err->message, "not a key file (longer than"),
               "%s", err->message);
  g_error_free (err);
  gst_message_unref (msg);
  gst_element_set_state (e, GST_STATE_NULL);
  unwatch (e, bus);
  gst_object_unref (e);
  g_free (spaces);
  g_free (path);
}

GST_END_TEST;

/* ---- key files that name their cipher (mcsec-keygen --output) ---- */

#define HEX_20 "000102030405060708090a0b0c0d0e0f10111213"
#define HEX_36 HEX_20 "1415161718191a1b1c1d1e1f20212223"

/* The error message the element posts when it goes to `state` (it must
 * fail), or NULL when it gets there. */
static gchar *
error_going_to (GstElement *e, GstBus *bus, GstState state)
{
  GstMessage *msg;
  GError *err = NULL;
  gchar *text;

  if (gst_element_set_state (e, state) != GST_STATE_CHANGE_FAILURE) {
    fail_if (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR));
    return NULL;
  }
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  text = g_strdup (err->message);
  g_error_free (err);
  gst_message_unref (msg);
  return text;
}

/* A key file that names a cipher: used when the element's cipher is the
 * same; otherwise the element refuses to start, naming both (NULL to
 * READY, and READY to PAUSED after the cipher changed in READY).  The
 * older form (hexadecimal alone) still works. */
GST_START_TEST (test_key_file_names_cipher)
{
  const gchar *factory = __i__ == 0 ? "mcsecenc" : "mcsecdec";
  GstElement *e = gst_element_factory_make (factory, NULL);
  gchar *k256 = state_file ("k256.key", "cipher=aes-256-gcm\n" HEX_36 "\n");
  gchar *bare = state_file ("bare.key", HEX_36 "\n");
  gchar *want = g_strdup_printf (
      "key-file '%s' is for aes-256-gcm but cipher=aes-128-gcm", k256);
  gchar *text;
  GstBus *bus;

  g_object_set (e, "key-file", k256, NULL);
  bus = watch (e);
  /* the default cipher, aes-128-gcm: refused at NULL to READY */
  text = error_going_to (e, bus, GST_STATE_READY);
  fail_unless (text != NULL, "%s started with another cipher's key", factory);
  fail_unless_equals_string (text, want);
  fail_if (strstr (text, "0001"));
  g_free (text);
  gst_element_set_state (e, GST_STATE_NULL);
  /* the file's cipher: it starts */
  g_object_set (e, "cipher", MCSEC_SUITE_AES_256_GCM, NULL);
  fail_unless (error_going_to (e, bus, GST_STATE_PAUSED) == NULL);
  gst_element_set_state (e, GST_STATE_NULL);
  /* READY first, then the cipher changes: READY to PAUSED refuses */
  fail_unless (error_going_to (e, bus, GST_STATE_READY) == NULL);
  g_object_set (e, "cipher", MCSEC_SUITE_AES_128_GCM, NULL);
  text = error_going_to (e, bus, GST_STATE_PAUSED);
  fail_unless (text && strstr (text, want), "%s", GST_STR_NULL (text));
  g_free (text);
  gst_element_set_state (e, GST_STATE_NULL);
  /* a key from another source forgets the file's cipher */
  g_object_set (e, "key-file", bare, "cipher", MCSEC_SUITE_CHACHA20_POLY1305,
                NULL);
  fail_unless (error_going_to (e, bus, GST_STATE_PAUSED) == NULL);
  gst_element_set_state (e, GST_STATE_NULL);
  g_object_set (e, "key-file", k256, NULL);
  {
    GstBuffer *key = make_key (MCSEC_SUITE_CHACHA20_POLY1305);
    g_object_set (e, "key", key, NULL);
    gst_buffer_unref (key);
  }
  fail_unless (error_going_to (e, bus, GST_STATE_PAUSED) == NULL);
  gst_element_set_state (e, GST_STATE_NULL);

  unwatch (e, bus);
  gst_object_unref (e);
  g_free (k256);
  g_free (bare);
  g_free (want);
}

GST_END_TEST;

/* What a key file with a cipher line may not hold: errors at the write,
 * kept and posted at the start, never with the file's text. */
static const struct {
  const gchar *name, *contents, *text;
} cipher_line_cases[] = {
    {"short.key", "cipher=aes-256-gcm\n" HEX_20 "\n",
     "20 bytes of key material, but aes-256-gcm takes 36"},
    {"rot13.key", "cipher = rot13-0001\n" HEX_20 "\n",
     "names an unknown cipher (aes-128-gcm, aes-256-gcm, chacha20-poly1305, "
     "aes-128-gmac, aes-256-gmac)"},
    {"twice.key", "cipher=aes-128-gcm\ncipher=aes-128-gcm\n" HEX_20 "\n",
     "not a key file (one cipher=NAME line, before the key material, as "
     "mcsec-keygen writes it)"},
    {"after.key", HEX_20 "\ncipher=aes-128-gcm\n",
     "not a key file (one cipher=NAME line, before the key material, as "
     "mcsec-keygen writes it)"},
    {"other.key", "cipher: aes-128-gcm\n" HEX_20 "\n",
     "not a key file (key material in hexadecimal, as mcsec-keygen writes "
     "it)"},
};

GST_START_TEST (test_key_file_cipher_line_errors)
{
  guint c = __i__ % G_N_ELEMENTS (cipher_line_cases);
  GstElement *e = gst_element_factory_make (
      __i__ < (gint)G_N_ELEMENTS (cipher_line_cases) ? "mcsecdec" : "mcsecenc",
      NULL);
  gchar *path =
      state_file (cipher_line_cases[c].name, cipher_line_cases[c].contents);
  gchar *want = expected_text (path, 0, cipher_line_cases[c].text);
  gchar *text;
  GstBus *bus;

  g_object_set (e, "key-file", path, NULL);
  bus = watch (e);
  text = error_going_to (e, bus, GST_STATE_READY);
  fail_unless (text != NULL);
  fail_unless_equals_string (text, want);
  fail_if (strstr (text, "0001") || strstr (text, "0203"));
  g_free (text);
  gst_element_set_state (e, GST_STATE_NULL);
  unwatch (e, bus);
  gst_object_unref (e);
  g_free (path);
  g_free (want);
}

GST_END_TEST;

/* ---- names (issue 17 item 8) ---- */

/* mcseckeysrc's count of Sender-IDs is sender-ids (a controller's
 * `senders` lists identities); `senders` is its deprecated alias, the same
 * value.  Role `both` is the older name of `sender`, the same member. */
GST_START_TEST (test_keysrc_names)
{
  GstElement *e = gst_element_factory_make ("mcseckeysrc", NULL);
  GParamSpec *ids, *old;
  GEnumClass *roles;
  GEnumValue *sender, *both;
  guint v = 0;

  fail_unless (e != NULL);
  ids = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "sender-ids");
  old = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "senders");
  fail_unless (ids != NULL && old != NULL);
  fail_if (ids->flags & G_PARAM_DEPRECATED);
  fail_unless (old->flags & G_PARAM_DEPRECATED);
  g_object_set (e, "senders", 5, NULL);
  g_object_get (e, "sender-ids", &v, NULL);
  fail_unless_equals_int (v, 5);
  g_object_set (e, "sender-ids", 3, NULL);
  g_object_get (e, "senders", &v, NULL);
  fail_unless_equals_int (v, 3);

  roles = g_type_class_ref (G_PARAM_SPEC_VALUE_TYPE (
      g_object_class_find_property (G_OBJECT_GET_CLASS (e), "role")));
  sender = g_enum_get_value_by_nick (roles, "sender");
  both = g_enum_get_value_by_nick (roles, "both");
  fail_unless (sender && both);
  /* the wire values stay (MIKE ROLE 2 and 3) */
  fail_unless_equals_int (sender->value, 2);
  fail_unless_equals_int (both->value, 3);
  fail_unless (strstr (sender->value_nick, "sender") &&
                   strstr (sender->value_name, "receive"),
               "%s", sender->value_name);
  fail_unless (strstr (both->value_name, "older name of sender"), "%s",
               both->value_name);
  g_type_class_unref (roles);
  gst_object_unref (e);
}

GST_END_TEST;

/* gst-inspect-1.0's origin and documentation links: the installed
 * elements.md (meson option doc-url), a section of it each. */
GST_START_TEST (test_metadata_links)
{
  const gchar *names[] = {"mcsecenc", "mcsecdec", "mcseckeysrc", "mcsecrtpenc",
                          "mcsecrtpdec"};
  const gchar *anchors[] = {"mcsecenc", "mcsecdec", "mcseckeysrc",
                            "with-rtpbin", "with-rtpbin"};

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    GstElementFactory *f = gst_element_factory_find (names[i]);
    GstPlugin *plugin;
    const gchar *uri, *origin;
    gchar *want;

    fail_unless (f != NULL, "%s", names[i]);
    uri = gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_DOC_URI);
    plugin = gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (f));
    origin = gst_plugin_get_origin (plugin);
    fail_unless (uri != NULL, "%s has no documentation link", names[i]);
    fail_if (strstr (origin, "example.invalid"), "%s", origin);
    want = g_strdup_printf ("%selements.md#%s", origin, anchors[i]);
    fail_unless_equals_string (uri, want);
    /* a folder (file://PREFIX/DATADIR/doc/mcsec/ unless -Ddoc-url) */
    fail_unless (strstr (origin, "://") && g_str_has_suffix (origin, "/"), "%s",
                 origin);
    g_free (want);
    gst_object_unref (plugin);
    gst_object_unref (f);
  }
}

GST_END_TEST;

/* Two encoders of one process on one counter store (the same SPI and
 * sender-id): the second is refused, and the error does not send the
 * user looking for another process only. */
GST_START_TEST (test_counter_store_clash_in_process)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstElement *a = gst_element_factory_make ("mcsecenc", NULL);
  GstElement *b = gst_element_factory_make ("mcsecenc", NULL);
  gchar *store = g_build_filename (state_dir, "clash.ctr", NULL);
  GstBus *bus;
  gchar *text;

  g_object_set (a, "key", key, "spi", SPI_A, "sender-id", 7, "counter-file",
                store, NULL);
  g_object_set (b, "key", key, "spi", SPI_A, "sender-id", 7, "counter-file",
                store, NULL);
  fail_unless_equals_int (gst_element_set_state (a, GST_STATE_PAUSED),
                          GST_STATE_CHANGE_SUCCESS);
  bus = watch (b);
  text = error_going_to (b, bus, GST_STATE_PAUSED);
  fail_unless (text != NULL, "two encoders shared a counter store");
  fail_unless (strstr (text, "in use (by another encoder of this process"),
               "%s", text);
  g_free (text);
  gst_element_set_state (b, GST_STATE_NULL);
  gst_element_set_state (a, GST_STATE_NULL);
  unwatch (b, bus);
  gst_object_unref (a);
  gst_object_unref (b);
  gst_buffer_unref (key);
  g_free (store);
}

GST_END_TEST;

static Suite *
messages_suite (void)
{
  Suite *s = suite_create ("mcsec-messages");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_wrong_key_warns);
  tcase_add_test (tc, test_warnings_rate_limited);
  tcase_add_test (tc, test_warning_interval_zero);
  tcase_add_test (tc, test_encoder_warns);
  tcase_add_loop_test (tc, test_stats_interval, 0, G_N_ELEMENTS (stats_cases));
  tcase_add_test (tc, test_stats_interval_follows_state);
  tcase_add_loop_test (tc, test_key_file_error_at_start, 0,
                       2 * G_N_ELEMENTS (key_file_cases));
  tcase_add_test (tc, test_key_file_too_long);
  tcase_add_test (tc, test_failed_key_write_keeps_key);
  tcase_add_loop_test (tc, test_key_file_names_cipher, 0, 2);
  tcase_add_test (tc, test_keysrc_names);
  tcase_add_test (tc, test_metadata_links);
  tcase_add_test (tc, test_counter_store_clash_in_process);
  tcase_add_loop_test (tc, test_key_file_cipher_line_errors, 0,
                       2 * G_N_ELEMENTS (cipher_line_cases));
  return s;
}

int
main (int argc, char **argv)
{
  return check_main (argc, argv, messages_suite, "test-messages");
}
