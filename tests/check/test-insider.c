/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An insider against mcsecdec: a member that holds the group keys but not
 * sender X's signing key tries to pass its datagrams off as X's, or to
 * silence X; and the defaults that must let a normal stream through.
 * docs/threat-model.md lists each case with the claim it tests.
 */
#include <string.h>

#include "check-util.h"

#define X 1 /* the genuine sender's Sender-ID */
#define FORGED 0xee

/* What the test (which has the group key too) sees inside an ESP packet of
 * the genuine sender: its counter and SAM header. */
typedef struct {
  guint64 counter;
  guint8 type;
  guint32 block;
} Seen;

static Seen
look_inside (GstBuffer *key, guint spi, GstBuffer *esp)
{
  guint8 k[MCSEC_MAX_KEY_MATERIAL_LEN], out[2048];
  gsize klen = gst_buffer_extract (key, 0, k, sizeof (k));
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;
  mcsec_rx_info_t info;
  GstMapInfo map;
  Seen seen = {0};

  cfg.spi = spi;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = k;
  cfg.key_len = klen;
  fail_unless (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  fail_unless (gst_buffer_map (esp, &map, GST_MAP_READ));
  fail_unless (mcsec_sa_unprotect (sa, map.data, map.size, out, sizeof (out),
                                   &info) == MCSEC_OK);
  gst_buffer_unmap (esp, &map);
  seen.counter = info.counter;
  seen.type = out[0];
  seen.block = (guint32)out[2] << 24 | (guint32)out[3] << 16 |
               (guint32)out[4] << 8 | out[5];
  mcsec_sa_free (sa);
  return seen;
}

/* An insider's ESP packet: any SAM bytes, under (spi, key), claiming
 * sender_id and counter. */
static GstBuffer *
insider_packet (GstBuffer *key, guint spi, guint32 sender_id, guint64 counter,
                const guint8 *sam, gsize len)
{
  guint8 k[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize klen = gst_buffer_extract (key, 0, k, sizeof (k));
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;
  GstBuffer *b =
      gst_buffer_new_allocate (NULL, mcsec_protected_len (len), NULL);
  GstMapInfo map;
  size_t out_len = 0;

  cfg.spi = spi;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = k;
  cfg.key_len = klen;
  fail_unless (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  fail_unless (mcsec_sa_set_sender (sa, sender_id, counter, 0) == MCSEC_OK);
  gst_buffer_map (b, &map, GST_MAP_WRITE);
  fail_unless (mcsec_sa_protect (sa, MCSEC_NEXT_HEADER_SAM, sam, len, map.data,
                                 map.size, &out_len, NULL) == MCSEC_OK);
  gst_buffer_unmap (b, &map);
  mcsec_sa_free (sa);
  return b;
}

/* A SAM block member header (type 2, Ed25519, no carried symbols) for
 * (block, index), followed by `len` bytes of FORGED. */
static gsize
forged_member (guint8 *buf, guint32 block, guint index, gsize len)
{
  buf[0] = MCSEC_SAM_TYPE_BLOCK;
  buf[1] = MCSEC_SAM_ALG_ED25519;
  buf[2] = (guint8)(block >> 24);
  buf[3] = (guint8)(block >> 16);
  buf[4] = (guint8)(block >> 8);
  buf[5] = (guint8)block;
  buf[6] = (guint8)index;
  buf[7] = buf[8] = buf[9] = 0;
  memset (buf + MCSEC_SAM_BLOCK_HEADER_LEN, FORGED, len);
  return MCSEC_SAM_BLOCK_HEADER_LEN + len;
}

/* The genuine sender's datagram `tag` through the encoder: its ESP packets
 * (datagram and carriers) go to the decoder; the datagram's is described
 * in *seen. */
static void
send_genuine (GstHarness *enc, GstHarness *dec, GstBuffer *key, guint tag,
              Seen *seen)
{
  GstBuffer *b;

  gst_harness_push (enc, make_datagram (tag, 100));
  while ((b = gst_harness_try_pull (enc)) != NULL) {
    Seen s = look_inside (key, SPI_A, b);
    if (s.type == MCSEC_SAM_TYPE_BLOCK && seen)
      *seen = s;
    gst_harness_push (dec, b);
  }
}

/* What the decoder released must be the genuine datagrams 0..n-1, in
 * order, each verified; nothing forged. */
static void
expect_genuine (GstHarness *dec, guint n)
{
  GstBuffer *b;
  guint out = 0;

  while ((b = gst_harness_try_pull (dec)) != NULL) {
    GstMapInfo map;
    gst_buffer_map (b, &map, GST_MAP_READ);
    fail_if (map.size > 0 && map.data[0] == FORGED,
             "the insider's datagram was released as sender %u's", X);
    gst_buffer_unmap (b, &map);
    fail_unless (datagram_is (b, out, 100), "datagram %u missing", out);
    fail_unless_equals_string (source_mark (b), "verified");
    gst_buffer_unref (b);
    out++;
  }
  fail_unless_equals_int (out, n);
}

/* Finding 1: the same (Sender-ID, counter) exists once per SA.  An insider
 * sends, under the other SA of a rekey overlap, X's Sender-ID and the
 * counter of one of X's pending datagrams, labelled as a member of a block
 * already decided.  Its payload must not come out as X's, and X's genuine
 * datagram must. */
GST_START_TEST (test_forgery_across_sas)
{
  GstBuffer *key_a = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key_b = make_key (MCSEC_SUITE_AES_128_GCM);
  SenderKeys sk;
  GstHarness *enc, *dec;
  Seen seen[32];
  guint8 sam[256];
  gsize len;
  gboolean ok = FALSE;

  sender_keys_init (&sk, "ins1", X);
  /* blocks closed on their count: the test knows where they are */
  enc = sam_enc_harness_timed (key_a, X, sk.priv, "block", 8, 0);
  dec = sam_dec_harness (key_a, "required", sk.keys);
  g_signal_emit_by_name (dec->element, "add-key", SPI_B, "aes-128-gcm", key_b,
                         &ok);
  fail_unless (ok);
  /* two blocks of 8: the first is decided, the second pending */
  for (guint i = 0; i < 16; i++)
    send_genuine (enc, dec, key_a, i, &seen[i]);
  fail_unless (seen[12].block == seen[0].block + 1);
  /* the insider: under SPI B, X's Sender-ID, the counter of X's datagram
   * 12 (pending), a position of the decided block X never used */
  len = forged_member (sam, seen[0].block, 200, 100);
  gst_harness_push (
      dec, insider_packet (key_b, SPI_B, X, seen[12].counter, sam, len));
  for (guint i = 16; i < 32; i++)
    send_genuine (enc, dec, key_a, i, &seen[i]);
  end_stream (enc, dec, NULL, NULL);
  expect_genuine (dec, 32);
  sender_keys_clear (&sk);
  gst_buffer_unref (key_a);
  gst_buffer_unref (key_b);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Finding 2: one insider datagram claiming X with a counter far ahead must
 * not make X's genuine datagrams "too old"; nor may its block number make
 * the receiver give X's pending blocks up (one far away used to read as a
 * restart of X, one a few blocks ahead as X moving on).  What it carries:
 * a block member of a far block, of a block 3 ahead, a per-packet
 * signature that is not X's. */
static const struct {
  guint8 type;
  gint32 block_ahead;
} freezes[] = {
    {MCSEC_SAM_TYPE_BLOCK, 5000},
    {MCSEC_SAM_TYPE_BLOCK, 3},
    {MCSEC_SAM_TYPE_SIGNED, 0},
};

GST_START_TEST (test_freeze_another_sender)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  SenderKeys sk;
  gchar *name = g_strdup_printf ("ins2-%d", __i__);
  GstHarness *enc, *dec;
  Seen seen;
  guint8 sam[256];
  gsize len;

  sender_keys_init (&sk, name, X);
  enc = sam_enc_harness_timed (key, X, sk.priv, "block", 8, 0);
  dec = sam_dec_harness (key, "required", sk.keys);
  for (guint i = 0; i < 10; i++)
    send_genuine (enc, dec, key, i, &seen);
  if (freezes[__i__].type == MCSEC_SAM_TYPE_BLOCK) {
    /* a position X's blocks of 8 never use: no pollution of X's blocks,
     * only the window and the block number are tried */
    len =
        forged_member (sam, seen.block + freezes[__i__].block_ahead, 100, 100);
  } else {
    sam[0] = MCSEC_SAM_TYPE_SIGNED;
    sam[1] = MCSEC_SAM_ALG_ED25519;
    memset (sam + 2, 0x42, MCSEC_SAM_SIG_LEN);
    memset (sam + MCSEC_SAM_SIGNED_HEADER_LEN, FORGED, 100);
    len = MCSEC_SAM_SIGNED_HEADER_LEN + 100;
  }
  gst_harness_push (
      dec, insider_packet (key, SPI_A, X, seen.counter + 1000000, sam, len));
  for (guint i = 10; i < 40; i++)
    send_genuine (enc, dec, key, i, NULL);
  end_stream (enc, dec, NULL, NULL);
  expect_genuine (dec, 40);
  assert_stats (dec, "application/x-mcsec-dec-stats, "
                     "dropped-too-old=(guint64)0");
  g_free (name);
  sender_keys_clear (&sk);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Finding 3: writing a key, SPI or cipher equal to the one in use changes
 * nothing: the replay window stays, old packets stay refused.  A changed
 * key is a new SA. */
GST_START_TEST (test_rewrite_keeps_replay_window)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key2 = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  GstHarness *enc2 = enc_harness ("aes-128-gcm", key2, SPI_A, 2);
  GstBuffer *esp, *out;

  gst_harness_push (enc, make_datagram (1, 50));
  esp = gst_harness_pull (enc);
  gst_harness_push (dec, gst_buffer_copy (esp));
  fail_unless (pulled_is (dec, 1, 50));
  for (guint round = 0; round < 4; round++) {
    switch (round) {
    case 0:
      gst_util_set_object_arg (G_OBJECT (dec->element), "cipher",
                               "aes-128-gcm");
      break;
    case 1:
      g_object_set (dec->element, "spi", SPI_A, NULL);
      break;
    case 2:
      g_object_set (dec->element, "key", key, NULL);
      break;
    default:
      g_object_set (dec->element, "key", key, "spi", SPI_A, NULL);
      gst_util_set_object_arg (G_OBJECT (dec->element), "cipher",
                               "aes-128-gcm");
      break;
    }
    gst_harness_push (dec, gst_buffer_copy (esp));
    out = gst_harness_try_pull (dec);
    fail_unless (out == NULL, "round %u: a replayed packet was accepted",
                 round);
  }
  assert_stats (dec, "application/x-mcsec-dec-stats, accepted=(guint64)1, "
                     "dropped-replay=(guint64)4");
  /* a new key under the same SPI: the old packet no longer opens, the new
   * sender's does */
  g_object_set (dec->element, "key", key2, NULL);
  gst_harness_push (dec, gst_buffer_copy (esp));
  fail_unless (gst_harness_try_pull (dec) == NULL);
  gst_harness_push (enc2, make_datagram (2, 50));
  gst_harness_push (dec, gst_harness_pull (enc2));
  fail_unless (pulled_is (dec, 2, 50));
  gst_buffer_unref (esp);
  gst_buffer_unref (key);
  gst_buffer_unref (key2);
  gst_harness_teardown (enc);
  gst_harness_teardown (enc2);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Finding 4: with the elements' default settings and no loss, every
 * datagram is released verified, at any rate from 1 to 100,000 datagrams
 * per second (the encoder's time is its clock's). */
static const struct {
  guint rate; /* datagrams per second */
  guint count;
} rates[] = {
    {1, 12}, {5, 30}, {34, 200}, {300, 600}, {1000, 1500}, {100000, 3000},
};

GST_START_TEST (test_defaults_release_every_rate)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  SenderKeys sk;
  gchar *store, *name = g_strdup_printf ("ins4-%d", __i__);
  GstElement *enc_el = gst_element_factory_make ("mcsecenc", NULL);
  GstElement *dec_el = gst_element_factory_make ("mcsecdec", NULL);
  GstCaps *caps = gst_caps_from_string (RTP_CAPS);
  GstHarness *enc, *dec;
  guint rate = rates[__i__].rate, n = rates[__i__].count, out = 0;
  guint64 hold_max = 0, latency = 0, block_time = 0;
  GstBuffer *b;

  sender_keys_init (&sk, name, X);
  store = g_strdup_printf ("%s.ctr", sk.priv);
  /* nothing but what a user must give: keys and identities */
  g_object_set (enc_el, "key", key, "spi", SPI_A, "sender-id", X,
                "signing-key-file", sk.priv, "counter-file", store, NULL);
  g_object_set (dec_el, "key", key, "spi", SPI_A, "caps", caps, "sender-keys",
                sk.keys, "sam-policy", 2 /* required */, NULL);
  g_object_get (dec_el, "sam-max-latency", &latency, NULL);
  g_object_get (enc_el, "sam-block-time", &block_time, NULL);
  enc = harness_start (enc_el, RTP_CAPS);
  dec = harness_start (dec_el, "application/x-mcsec");
  gst_harness_use_testclock (enc);
  for (guint i = 0; i < n; i++) {
    GstClockTime t = gst_util_uint64_scale (i, GST_SECOND, rate);
    GstBuffer *d = make_datagram (i, 1000);
    GST_BUFFER_PTS (d) = t;
    fail_unless (gst_harness_set_time (enc, t));
    gst_harness_push (enc, d);
    while ((b = gst_harness_try_pull (enc)) != NULL)
      gst_harness_push (dec, b);
    while ((b = gst_harness_try_pull (dec)) != NULL) {
      fail_unless (datagram_is (b, out, 1000), "%u/s: datagram %u missing",
                   rate, out);
      gst_buffer_unref (b);
      out++;
    }
  }
  /* everything but the last block came out before the end of the stream */
  fail_unless (out + 256 >= n, "%u/s: only %u of %u released", rate, out, n);
  gst_harness_push_event (enc, gst_event_new_eos ());
  while ((b = gst_harness_try_pull (enc)) != NULL)
    gst_harness_push (dec, b);
  gst_harness_push_event (dec, gst_event_new_eos ());
  while ((b = gst_harness_try_pull (dec)) != NULL) {
    fail_unless (datagram_is (b, out, 1000), "%u/s: datagram %u missing", rate,
                 out);
    gst_buffer_unref (b);
    out++;
  }
  fail_unless_equals_int (out, n);
  assert_stats (dec, "application/x-mcsec-dec-stats, dropped=(guint64)0, "
                     "sam-unverifiable=(guint64)0, sam-failed=(guint64)0");
  {
    GstStructure *s = get_stats (dec);
    gst_structure_get_uint64 (s, "sam-hold-max-ns", &hold_max);
    gst_structure_free (s);
  }
  GST_INFO ("%u/s: longest hold %" GST_TIME_FORMAT, rate,
            GST_TIME_ARGS (hold_max));
  fail_unless (hold_max <= latency);
  /* as documented: a verdict within two block times, plus the wait for the
   * datagram that closes a block */
  fail_unless (hold_max <= 2 * block_time + GST_SECOND / rate,
               "%u/s: held %" G_GUINT64_FORMAT " ns", rate, hold_max);
  gst_caps_unref (caps);
  g_free (name);
  g_free (store);
  sender_keys_clear (&sk);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Finding 4, the other half: a datagram given up is counted in `dropped`
 * under its reason, and the element says so on the bus (once, not per
 * datagram). */
GST_START_TEST (test_given_up_is_dropped_and_posted)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  SenderKeys sk;
  GstHarness *enc, *dec;
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GstStructure *s;
  guint64 dropped = 0, unverifiable = 0, given_up = 0, warnings = 0;
  guint sent = 0;

  sender_keys_init (&sk, "ins5", X);
  /* blocks of 64 at 1 ms apart, at most 20 ms of hold: most are given up */
  enc = sam_enc_harness_timed (key, X, sk.priv, "block", 64, 0);
  dec = sam_dec_harness_full (key, "required", sk.keys, 0, 20 * GST_MSECOND);
  gst_element_set_bus (dec->element, bus);
  for (guint i = 0; i < 200; i++) {
    gst_harness_push (enc, make_datagram (i, 100));
    forward (enc, dec, &sent, NULL);
  }
  s = get_stats (dec);
  gst_structure_get (s, "sam-unverifiable", G_TYPE_UINT64, &unverifiable,
                     "dropped", G_TYPE_UINT64, &dropped, "dropped-unverifiable",
                     G_TYPE_UINT64, &given_up, NULL);
  gst_structure_free (s);
  fail_unless (unverifiable > 0);
  fail_unless_equals_uint64 (given_up, unverifiable);
  fail_unless_equals_uint64 (dropped, unverifiable);
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) != NULL) {
    GError *err = NULL;
    gst_message_parse_warning (msg, &err, NULL);
    fail_unless (strstr (err->message, "sam-max-latency") != NULL,
                 "the warning names the setting: %s", err->message);
    g_error_free (err);
    gst_message_unref (msg);
    warnings++;
  }
  fail_unless_equals_uint64 (warnings, 1);
  gst_element_set_bus (dec->element, NULL);
  gst_object_unref (bus);
  sender_keys_clear (&sk);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

static Suite *
insider_suite (void)
{
  Suite *s = suite_create ("mcsec-insider");
  TCase *tc = tcase_create ("insider");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_forgery_across_sas);
  tcase_add_loop_test (tc, test_freeze_another_sender, 0,
                       G_N_ELEMENTS (freezes));
  tcase_add_test (tc, test_rewrite_keeps_replay_window);
  tcase_add_loop_test (tc, test_defaults_release_every_rate, 0,
                       G_N_ELEMENTS (rates));
  tcase_add_test (tc, test_given_up_is_dropped_and_posted);
  return s;
}

int
main (int argc, char **argv)
{
  return check_main (argc, argv, insider_suite, "mcsec-insider");
}
