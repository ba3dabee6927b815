/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsecenc and mcsecdec under GstHarness: no sockets, no sleeps.
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <mcsec/mcsec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "check-util.h"

static const gchar *suites[] = {
    "aes-128-gcm",  "aes-256-gcm",  "chacha20-poly1305",
    "aes-128-gmac", "aes-256-gmac",
};

static const mcsec_suite_t suite_ids[] = {
    MCSEC_SUITE_AES_128_GCM,       MCSEC_SUITE_AES_256_GCM,
    MCSEC_SUITE_CHACHA20_POLY1305, MCSEC_SUITE_AES_128_GMAC,
    MCSEC_SUITE_AES_256_GMAC,
};

GST_START_TEST (test_round_trip_every_suite)
{
  static const gsize sizes[] = {0, 1, 3, 12, 172, 1200, 1400, 1460};

  for (guint s = 0; s < G_N_ELEMENTS (suites); s++) {
    GstBuffer *key = make_key (suite_ids[s]);
    GstHarness *enc = enc_harness (suites[s], key, SPI_A, 1);
    GstHarness *dec = dec_harness (suites[s], key, SPI_A);
    gchar *expect;

    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
      GstBuffer *esp, *out;
      GstMapInfo map;
      fail_unless_equals_int (
          gst_harness_push (enc, make_datagram (i + 1, sizes[i])), GST_FLOW_OK);
      esp = gst_harness_pull (enc);
      fail_unless_equals_int (gst_buffer_get_size (esp),
                              mcsec_protected_len (sizes[i]));
      fail_unless_equals_uint64 (GST_BUFFER_PTS (esp), (i + 1) * GST_MSECOND);
      /* GMAC leaves the payload readable, the others do not */
      gst_buffer_map (esp, &map, GST_MAP_READ);
      if (sizes[i] >= 12)
        fail_unless ((map.data[16] == (guint8)(i + 1) &&
                      map.data[27] == (guint8)(i + 1)) ==
                     !mcsec_suite_encrypts (suite_ids[s]));
      gst_buffer_unmap (esp, &map);
      fail_unless_equals_int (gst_harness_push (dec, esp), GST_FLOW_OK);
      out = gst_harness_pull (dec);
      fail_unless (datagram_is (out, i + 1, sizes[i]), "%s size %u", suites[s],
                   (guint)sizes[i]);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (out), (i + 1) * GST_MSECOND);
      gst_buffer_unref (out);
    }
    fail_unless (caps_are (enc->sinkpad, "application/x-mcsec"));
    fail_unless (caps_are (dec->sinkpad, RTP_CAPS ",media=video"));

    expect = g_strdup_printf (
        "application/x-mcsec-enc-stats, spi=(uint)%u, "
        "cipher=(string)%s, sender-id=(uint)1, packets=(guint64)%u, "
        "dropped=(guint64)0",
        SPI_A, suites[s], (guint)G_N_ELEMENTS (sizes));
    assert_stats (enc, expect);
    g_free (expect);
    expect = g_strdup_printf (
        "application/x-mcsec-dec-stats, "
        "received=(guint64)%u, accepted=(guint64)%u, dropped=(guint64)0",
        (guint)G_N_ELEMENTS (sizes), (guint)G_N_ELEMENTS (sizes));
    assert_stats (dec, expect);
    g_free (expect);
    gst_buffer_unref (key);
    gst_harness_teardown (enc);
    gst_harness_teardown (dec);
  }
}

GST_END_TEST;

/* A buffer holding len bytes of data. */
static GstBuffer *
bytes_buffer (const guint8 *data, gsize len)
{
  return gst_buffer_new_memdup (data, len);
}

/* mcsecrtpdec's children: stream=rtp passes RTP and drops RTCP (RFC 5761's
 * rule), stream=rtcp the reverse, each drop counted as wrong-stream: a
 * packet an outsider copies from the RTCP port to the RTP port (or back)
 * is not taken a second time, as the other kind. */
GST_START_TEST (test_stream_rtp_rtcp)
{
  /* an RTCP RR (version 2, one report block: 32 bytes, length 7) and an
   * RTP packet (version 2, payload type 96) */
  static const guint8 rr[32] = {0x81, 201, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8};
  static const guint8 rtp[40] = {0x80, 96, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4};
  const gchar *modes[] = {"rtp", "rtcp", "any"};
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);

  for (guint m = 0; m < G_N_ELEMENTS (modes); m++) {
    GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
    GstElement *d = gst_element_factory_make ("mcsecdec", NULL);
    GstCaps *caps = gst_caps_from_string (RTP_CAPS ",media=video");
    GstHarness *dec;
    GstBuffer *esp_rr, *esp_rtp;
    GstStructure *st;
    guint64 wrong = 0, accepted = 0;

    gst_util_set_object_arg (G_OBJECT (d), "cipher", "aes-128-gcm");
    gst_util_set_object_arg (G_OBJECT (d), "stream", modes[m]);
    g_object_set (d, "key", key, "spi", SPI_A, "caps", caps, NULL);
    gst_caps_unref (caps);
    dec = harness_start (d, "application/x-mcsec");
    gst_harness_push (enc, bytes_buffer (rr, sizeof rr));
    gst_harness_push (enc, bytes_buffer (rtp, sizeof rtp));
    esp_rr = gst_harness_pull (enc);
    esp_rtp = gst_harness_pull (enc);
    fail_unless_equals_int (gst_harness_push (dec, esp_rr), GST_FLOW_OK);
    fail_unless_equals_int (gst_harness_push (dec, esp_rtp), GST_FLOW_OK);
    st = get_stats (dec);
    gst_structure_get_uint64 (st, "dropped-wrong-stream", &wrong);
    gst_structure_get_uint64 (st, "accepted", &accepted);
    gst_structure_free (st);
    /* any: both out; rtp: the RTP; rtcp: the RR */
    fail_unless_equals_int (gst_harness_buffers_received (dec), m == 2 ? 2 : 1);
    fail_unless_equals_uint64 (wrong, m == 2 ? 0 : 1);
    if (m < 2) {
      GstBuffer *out = gst_harness_pull (dec);
      GstMapInfo map;
      gst_buffer_map (out, &map, GST_MAP_READ);
      fail_unless_equals_int (map.data[1], m == 0 ? 96 : 201);
      gst_buffer_unmap (out, &map);
      gst_buffer_unref (out);
    }
    gst_harness_teardown (enc);
    gst_harness_teardown (dec);
  }
  gst_buffer_unref (key);
}

GST_END_TEST;

/* Bit flips anywhere are dropped and counted, never an error or output. */
GST_START_TEST (test_tamper_dropped_and_counted)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  GstBuffer *esp;
  gsize len;
  guint flips = 0, auth = 0;
  GstStructure *s;
  guint64 v;

  gst_harness_push (enc, make_datagram (7, 40));
  esp = gst_harness_pull (enc);
  len = gst_buffer_get_size (esp);
  for (gsize bit = 0; bit < len * 8; bit += 3) {
    GstBuffer *bad = gst_buffer_copy_deep (esp);
    GstMapInfo map;
    gst_buffer_map (bad, &map, GST_MAP_WRITE);
    map.data[bit / 8] ^= 1 << (bit % 8);
    gst_buffer_unmap (bad, &map);
    fail_unless_equals_int (gst_harness_push (dec, bad), GST_FLOW_OK);
    flips++;
    if (bit >= 128)
      auth++;
  }
  fail_unless_equals_int (gst_harness_buffers_received (dec), 0);
  s = get_stats (dec);
  fail_unless (gst_structure_get_uint64 (s, "dropped", &v));
  fail_unless_equals_uint64 (v, flips);
  fail_unless (gst_structure_get_uint64 (s, "dropped-auth", &v));
  fail_unless (v >= auth);
  gst_structure_free (s);
  /* the genuine packet still goes through */
  gst_harness_push (dec, esp);
  fail_unless (pulled_is (dec, 7, 40));
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

GST_START_TEST (test_replay_and_reorder)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 4);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  GstBuffer *esp[6];
  static const guint order[] = {3, 1, 2, 5, 4, 0};

  for (guint i = 0; i < 6; i++) {
    gst_harness_push (enc, make_datagram (i + 10, 100));
    esp[i] = gst_harness_pull (enc);
  }
  for (guint i = 0; i < 6; i++) {
    gst_harness_push (dec, gst_buffer_ref (esp[order[i]]));
    fail_unless (pulled_is (dec, order[i] + 10, 100));
  }
  /* every one of them again: replays */
  for (guint i = 0; i < 6; i++)
    gst_harness_push (dec, esp[i]);
  fail_unless (gst_harness_try_pull (dec) == NULL);
  assert_stats (
      dec,
      "application/x-mcsec-dec-stats, received=(guint64)12, "
      "accepted=(guint64)6, dropped=(guint64)6, dropped-replay=(guint64)6");
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

static guint requests;

static GstCaps *
on_request_key (GstElement *dec, guint spi, gpointer key)
{
  (void)dec;
  requests++;
  if (spi != SPI_B)
    return NULL;
  return gst_caps_new_simple ("application/x-mcsec", "cipher", G_TYPE_STRING,
                              "aes-256-gcm", "key", GST_TYPE_BUFFER, key, NULL);
}

GST_START_TEST (test_unknown_spi_and_request_key)
{
  GstBuffer *key_a = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key_b = make_key (MCSEC_SUITE_AES_256_GCM);
  GstHarness *enc_a = enc_harness ("aes-128-gcm", key_a, SPI_A, 1);
  GstHarness *enc_b = enc_harness ("aes-256-gcm", key_b, SPI_B, 1);
  GstHarness *dec = dec_harness (NULL, NULL, 0);

  requests = 0;
  g_signal_connect (dec->element, "request-key", G_CALLBACK (on_request_key),
                    key_b);
  /* SPI A: the application has no key; asked once, then just dropped */
  for (guint i = 0; i < 3; i++) {
    gst_harness_push (enc_a, make_datagram (i, 50));
    gst_harness_push (dec, gst_harness_pull (enc_a));
  }
  fail_unless_equals_int (requests, 1);
  fail_unless (gst_harness_try_pull (dec) == NULL);
  /* SPI B: the application answers; the very first packet gets through */
  for (guint i = 0; i < 3; i++) {
    gst_harness_push (enc_b, make_datagram (i + 20, 50));
    gst_harness_push (dec, gst_harness_pull (enc_b));
    fail_unless (pulled_is (dec, i + 20, 50));
  }
  fail_unless_equals_int (requests, 2);
  assert_stats (dec, "application/x-mcsec-dec-stats, received=(guint64)6, "
                     "accepted=(guint64)3, dropped-unknown-spi=(guint64)3");
  gst_buffer_unref (key_a);
  gst_buffer_unref (key_b);
  gst_harness_teardown (enc_a);
  gst_harness_teardown (enc_b);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* An outsider who sends packets with 64 random SPIs fills the table of
 * SPIs asked about; the application must still be asked about the real
 * next SPI once the flood is over (it never was again: the table was
 * never emptied), and again about an SPI it did not know 10 s ago. */
GST_START_TEST (test_request_key_flood_passes)
{
  GstBuffer *key_b = make_key (MCSEC_SUITE_AES_256_GCM);
  GstHarness *enc_b = enc_harness ("aes-256-gcm", key_b, SPI_B, 1);
  GstHarness *dec = dec_harness (NULL, NULL, 0);
  guint8 junk[64];

  requests = 0;
  g_signal_connect (dec->element, "request-key", G_CALLBACK (on_request_key),
                    key_b);
  memset (junk, 0, sizeof (junk));
  for (guint i = 0; i < 64; i++) {
    GST_WRITE_UINT32_BE (junk, 0x70000000u + i);
    GST_WRITE_UINT32_BE (junk + 12, 1);
    gst_harness_push (dec, gst_buffer_new_memdup (junk, sizeof (junk)));
  }
  fail_unless_equals_int (requests, 64);
  /* during the flood, the real SPI waits */
  gst_harness_push (enc_b, make_datagram (1, 50));
  gst_harness_push (dec, gst_harness_pull (enc_b));
  fail_unless_equals_int (requests, 64);
  fail_unless (gst_harness_try_pull (dec) == NULL);
  /* 10 s later (the pipeline clock) it is asked, and answered */
  gst_harness_set_time (dec, 11 * GST_SECOND);
  gst_harness_push (enc_b, make_datagram (2, 50));
  gst_harness_push (dec, gst_harness_pull (enc_b));
  fail_unless_equals_int (requests, 65);
  fail_unless (pulled_is (dec, 2, 50));
  /* an SPI asked about 10 s ago is asked again */
  GST_WRITE_UINT32_BE (junk, 0x70000000u);
  gst_harness_push (dec, gst_buffer_new_memdup (junk, sizeof (junk)));
  fail_unless_equals_int (requests, 66);
  gst_harness_push (dec, gst_buffer_new_memdup (junk, sizeof (junk)));
  fail_unless_equals_int (requests, 66);
  gst_buffer_unref (key_b);
  gst_harness_teardown (enc_b);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Several senders on one SPI, interleaved; each has its own window. */
GST_START_TEST (test_several_senders)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc[3];
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  GstBuffer *first_of_1 = NULL;
  GstStructure *sa;
  const GValue *senders;

  for (guint s = 0; s < 3; s++)
    enc[s] = enc_harness ("aes-128-gcm", key, SPI_A, 10 + s);
  for (guint i = 0; i < 30; i++) {
    guint s = i % 3;
    GstBuffer *esp;
    gst_harness_push (enc[s], make_datagram (i, 64));
    esp = gst_harness_pull (enc[s]);
    if (i == 1)
      first_of_1 = gst_buffer_copy_deep (esp);
    gst_harness_push (dec, esp);
    fail_unless (pulled_is (dec, i, 64));
  }
  /* sender 11's first packet again is a replay; sender 12 is unaffected */
  gst_harness_push (dec, first_of_1);
  fail_unless (gst_harness_try_pull (dec) == NULL);
  sa = sa_stats (dec, SPI_A);
  fail_unless (sa != NULL);
  senders = gst_structure_get_value (sa, "senders");
  fail_unless_equals_int (gst_value_array_get_size (senders), 3);
  for (guint i = 0; i < 3; i++) {
    const GstStructure *snd =
        gst_value_get_structure (gst_value_array_get_value (senders, i));
    guint id = 0;
    guint64 accepted = 0, replays = 0, highest = 0;
    gst_structure_get (snd, "sender-id", G_TYPE_UINT, &id, "accepted",
                       G_TYPE_UINT64, &accepted, "dropped-replay",
                       G_TYPE_UINT64, &replays, "highest-counter",
                       G_TYPE_UINT64, &highest, NULL);
    fail_unless (id >= 10 && id <= 12);
    fail_unless_equals_uint64 (accepted, 10);
    fail_unless_equals_uint64 (replays, id == 11 ? 1 : 0);
    fail_unless (highest >= 10);
  }
  gst_structure_free (sa);
  for (guint s = 0; s < 3; s++)
    gst_harness_teardown (enc[s]);
  gst_buffer_unref (key);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Rekey while playing: the receiver learns the next SA first, the sender
 * switches, the old SA is retired; nothing is lost. */
GST_START_TEST (test_rekey_while_playing_loses_nothing)
{
  GstBuffer *key_a = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key_b = make_key (MCSEC_SUITE_CHACHA20_POLY1305);
  GstHarness *enc = enc_harness ("aes-128-gcm", key_a, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", key_a, SPI_A);
  GList *in_flight = NULL;
  gboolean ok = FALSE;
  GstStructure *s;
  guint delivered = 0;

  for (guint i = 0; i < 60; i++) {
    if (i == 20) {
      g_signal_emit_by_name (dec->element, "add-key", SPI_B,
                             "chacha20-poly1305", key_b, &ok);
      fail_unless (ok);
    }
    if (i == 30) {
      g_signal_emit_by_name (enc->element, "set-key", SPI_B,
                             "chacha20-poly1305", key_b, &ok);
      fail_unless (ok);
    }
    gst_harness_push (enc, make_datagram (i, 200));
    /* the network delays every packet by three, so old-key packets are
     * still arriving after the switch */
    in_flight = g_list_append (in_flight, gst_harness_pull (enc));
    if (g_list_length (in_flight) > 3) {
      GstBuffer *b = in_flight->data;
      in_flight = g_list_delete_link (in_flight, in_flight);
      gst_harness_push (dec, b);
    }
    if (i == 45) {
      g_signal_emit_by_name (dec->element, "remove-key", SPI_A, &ok);
      fail_unless (ok);
    }
  }
  while (in_flight) {
    gst_harness_push (dec, in_flight->data);
    in_flight = g_list_delete_link (in_flight, in_flight);
  }
  for (guint i = 0; i < 60; i++) {
    GstBuffer *b = gst_harness_try_pull (dec);
    if (datagram_is (b, i, 200))
      delivered++;
    if (b)
      gst_buffer_unref (b);
  }
  fail_unless_equals_int (delivered, 60);
  s = sa_stats (dec, SPI_A);
  fail_unless (s == NULL); /* retired */
  s = sa_stats (dec, SPI_B);
  fail_unless (s != NULL);
  gst_structure_free (s);
  assert_stats (enc, "application/x-mcsec-enc-stats, spi=(uint)8192, "
                     "cipher=(string)chacha20-poly1305, packets=(guint64)60");
  gst_buffer_unref (key_a);
  gst_buffer_unref (key_b);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Rekey through the decoder's properties: the previous SA stays. */
GST_START_TEST (test_rekey_by_properties)
{
  GstBuffer *key_a = make_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key_b = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc_a = enc_harness ("aes-128-gcm", key_a, SPI_A, 1);
  GstHarness *enc_b = enc_harness ("aes-128-gcm", key_b, SPI_B, 2);
  GstHarness *dec = dec_harness ("aes-128-gcm", key_a, SPI_A);

  gst_harness_push (enc_a, make_datagram (1, 30));
  gst_harness_push (dec, gst_harness_pull (enc_a));
  fail_unless (pulled_is (dec, 1, 30));
  g_object_set (dec->element, "spi", SPI_B, "key", key_b, NULL);
  gst_harness_push (enc_b, make_datagram (2, 30));
  gst_harness_push (dec, gst_harness_pull (enc_b));
  fail_unless (pulled_is (dec, 2, 30));
  gst_harness_push (enc_a, make_datagram (3, 30));
  gst_harness_push (dec, gst_harness_pull (enc_a));
  fail_unless (pulled_is (dec, 3, 30));
  gst_buffer_unref (key_a);
  gst_buffer_unref (key_b);
  gst_harness_teardown (enc_a);
  gst_harness_teardown (enc_b);
  gst_harness_teardown (dec);
}

GST_END_TEST;

GST_START_TEST (test_buffer_lists)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_256_GCM);
  GstHarness *enc = enc_harness ("aes-256-gcm", key, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-256-gcm", key, SPI_A);
  GstBufferList *list = gst_buffer_list_new ();
  GstBufferList *esp_list = gst_buffer_list_new ();
  GstSegment seg;

  for (guint i = 0; i < 50; i++)
    gst_buffer_list_add (list, make_datagram (i, 300 + i));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  fail_unless_equals_int (gst_pad_push_list (enc->srcpad, list), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (enc), 50);
  for (guint i = 0; i < 50; i++) {
    GstBuffer *b = gst_harness_pull (enc);
    if (i == 17) { /* one forged packet in the list */
      GstMapInfo map;
      b = gst_buffer_make_writable (b);
      gst_buffer_map (b, &map, GST_MAP_WRITE);
      map.data[40] ^= 0xff;
      gst_buffer_unmap (b, &map);
    }
    gst_buffer_list_add (esp_list, b);
  }
  fail_unless_equals_int (gst_pad_push_list (dec->srcpad, esp_list),
                          GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_received (dec), 49);
  for (guint i = 0; i < 50; i++) {
    GstBuffer *b;
    if (i == 17)
      continue;
    b = gst_harness_pull (dec);
    fail_unless (datagram_is (b, i, 300 + i));
    gst_buffer_unref (b);
  }
  assert_stats (dec, "application/x-mcsec-dec-stats, received=(guint64)50, "
                     "accepted=(guint64)49, dropped-auth=(guint64)1");
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

static gboolean
bytes_equal (GstBuffer *b, const guint8 *data, gsize size)
{
  GstMapInfo map;
  gboolean ok;

  gst_buffer_map (b, &map, GST_MAP_READ);
  ok = map.size == size && memcmp (map.data, data, size) == 0;
  gst_buffer_unmap (b, &map);
  return ok;
}

/* The hot paths work on buffers in place when nobody else holds them
 * (issue 18): a buffer or list someone else holds is never changed, every
 * flag and timestamp reaches the other side, buffers of two memories are
 * handled, and the output pool's buffers come back clean (size, metadata)
 * whatever the packet before them was. */
GST_START_TEST (test_lists_shared_and_recycled)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  static const gsize sizes[] = {1400, 60, 1200, 1, 1460};
  guint tag = 0;

  for (guint round = 0; round < 6; round++) {
    GstBufferList *list = gst_buffer_list_new ();
    GstBufferList *held_list = NULL;
    GstBufferList *esp = gst_buffer_list_new ();
    GstBuffer *held, *esp_held, *two;
    guint8 esp_copy[2048];
    gsize esp_size;
    guint tag0 = tag;

    for (guint i = 0; i < 8; i++, tag++) {
      GstBuffer *b = make_datagram (tag, sizes[(round + i) % 5]);
      GST_BUFFER_DTS (b) = tag * GST_MSECOND + 1;
      GST_BUFFER_DURATION (b) = 3 * GST_MSECOND;
      GST_BUFFER_OFFSET (b) = tag;
      if (i == 2)
        GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_DISCONT);
      gst_buffer_list_add (list, b);
    }
    /* one datagram made of two memories */
    two = make_datagram (tag, 500);
    gst_buffer_append_memory (two, gst_allocator_alloc (NULL, 500, NULL));
    gst_buffer_memset (two, 500, (guint8)tag, 500);
    gst_buffer_list_add (list, two);
    tag++;
    held = gst_buffer_ref (gst_buffer_list_get (list, 1));
    if (round % 2)
      held_list = gst_buffer_list_ref (list); /* the whole list shared */
    fail_unless_equals_int (gst_pad_push_list (enc->srcpad, list), GST_FLOW_OK);
    /* what someone else holds is still the plaintext */
    fail_unless (datagram_is (held, tag0 + 1, sizes[(round + 1) % 5]));
    gst_buffer_unref (held);
    if (held_list) {
      for (guint i = 0; i < 8; i++)
        fail_unless (datagram_is (gst_buffer_list_get (held_list, i), tag0 + i,
                                  sizes[(round + i) % 5]));
      gst_buffer_list_unref (held_list);
    }
    fail_unless_equals_int (gst_harness_buffers_in_queue (enc), 9);
    for (guint i = 0; i < 9; i++) {
      GstBuffer *b = gst_harness_pull (enc);
      fail_unless (gst_buffer_get_reference_timestamp_meta (b, NULL) == NULL);
      if (i < 8) {
        fail_unless_equals_uint64 (GST_BUFFER_PTS (b),
                                   (tag0 + i) * GST_MSECOND);
        fail_unless_equals_uint64 (GST_BUFFER_DTS (b),
                                   (tag0 + i) * GST_MSECOND + 1);
        fail_unless_equals_uint64 (GST_BUFFER_DURATION (b), 3 * GST_MSECOND);
        fail_unless_equals_uint64 (GST_BUFFER_OFFSET (b), tag0 + i);
        fail_unless_equals_int (
            GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT), i == 2);
      }
      gst_buffer_list_add (esp, b);
    }
    /* a packet someone else holds is decrypted into a copy */
    esp_held = gst_buffer_ref (gst_buffer_list_get (esp, 3));
    esp_size = gst_buffer_extract (esp_held, 0, esp_copy, sizeof (esp_copy));
    fail_unless_equals_int (gst_pad_push_list (dec->srcpad, esp), GST_FLOW_OK);
    fail_unless (bytes_equal (esp_held, esp_copy, esp_size));
    gst_buffer_unref (esp_held);
    for (guint i = 0; i < 9; i++) {
      GstBuffer *b = gst_harness_pull (dec);
      gsize size = i < 8 ? sizes[(round + i) % 5] : 1000;
      fail_unless (datagram_is (b, tag0 + i, size));
      fail_unless (gst_buffer_get_reference_timestamp_meta (b, NULL) == NULL);
      if (i < 8) {
        fail_unless_equals_uint64 (GST_BUFFER_PTS (b),
                                   (tag0 + i) * GST_MSECOND);
        fail_unless_equals_int (
            GST_BUFFER_FLAG_IS_SET (b, GST_BUFFER_FLAG_DISCONT), i == 2);
      }
      /* metadata a downstream element adds must not come back with the
       * pool's buffer */
      gst_buffer_add_reference_timestamp_meta (
          b, gst_caps_new_empty_simple ("timestamp/x-test"), 1, 1);
      gst_buffer_unref (b);
    }
  }
  assert_stats (dec, "application/x-mcsec-dec-stats, received=(guint64)54, "
                     "accepted=(guint64)54");
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* Output caps from a downstream capsfilter when `caps` is not set. */
GST_START_TEST (test_caps_from_downstream)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 1);
  GstElement *dec = gst_element_factory_make ("mcsecdec", NULL);
  GstHarness *h;

  g_object_set (dec, "key", key, "spi", SPI_A, NULL);
  h = gst_harness_new_with_element (dec, "sink", "src");
  gst_object_unref (dec);
  gst_harness_set_sink_caps_str (h, "video/mpegts,systemstream=(boolean)true");
  gst_harness_set_src_caps_str (h, "application/x-mcsec");
  gst_harness_push (enc, make_datagram (5, 188));
  gst_harness_push (h, gst_harness_pull (enc));
  fail_unless (pulled_is (h, 5, 188));
  fail_unless (
      caps_are (h->sinkpad, "video/mpegts,systemstream=(boolean)true"));
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_bad_settings_are_named)
{
  GstElement *enc = gst_element_factory_make ("mcsecenc", NULL);
  GstBuffer *short_key = gst_buffer_new_allocate (NULL, 16, NULL);
  gchar *text;

  text = start_error (enc);
  fail_unless (strstr (text, "key") != NULL, "%s", text);
  g_free (text);
  g_object_set (enc, "key", short_key, NULL);
  text = start_error (enc);
  fail_unless (strstr (text, "'key'") != NULL, "%s", text);
  g_free (text);
  /* an unreadable key file is an error naming the property */
  {
    GstBus *bus = gst_bus_new ();
    GstMessage *msg;
    GError *err = NULL;
    gst_element_set_bus (enc, bus);
    g_object_set (enc, "key-file", "/nonexistent/mcsec.key", NULL);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != NULL);
    gst_message_parse_error (msg, &err, NULL);
    fail_unless (strstr (err->message, "key-file") != NULL, "%s", err->message);
    g_error_free (err);
    gst_message_unref (msg);
    gst_element_set_bus (enc, NULL);
    gst_object_unref (bus);
  }
  gst_object_unref (enc);
  enc = gst_element_factory_make ("mcsecenc", NULL);
  gst_buffer_unref (short_key);
  short_key = make_key (MCSEC_SUITE_AES_128_GCM);
  gst_buffer_unref (short_key);
  gst_object_unref (enc);
  /* the reserved SPIs are out of the properties' range (gst-inspect shows
   * it; GObject refuses 7 with a warning before the element sees it) */
  {
    const gchar *names[] = {"mcsecenc", "mcsecdec"};
    for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
      GstElement *e = gst_element_factory_make (names[i], NULL);
      GParamSpecUInt *ps = G_PARAM_SPEC_UINT (
          g_object_class_find_property (G_OBJECT_GET_CLASS (e), "spi"));
      fail_unless_equals_int (ps->minimum, 256);
      fail_unless (ps->maximum == G_MAXUINT32);
      gst_object_unref (e);
    }
  }
}

GST_END_TEST;

/* A static key and sender restarted: the counter file moves it on. */
GST_START_TEST (test_restart_continues_counters)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  guint64 first_run_last = 0;

  for (guint run = 0; run < 2; run++) {
    GstHarness *enc = enc_harness ("aes-128-gcm", key, 0x3000, 9);
    GstBuffer *b;
    GstMapInfo map;
    guint64 iv;
    gst_harness_push (enc, make_datagram (1, 10));
    b = gst_harness_pull (enc);
    gst_buffer_map (b, &map, GST_MAP_READ);
    iv = GST_READ_UINT64_BE (map.data + 8);
    gst_buffer_unmap (b, &map);
    gst_buffer_unref (b);
    fail_unless_equals_int (iv >> 48, 9);
    if (run == 1)
      fail_unless ((iv & G_GUINT64_CONSTANT (0xffffffffffff)) > first_run_last);
    first_run_last = iv & G_GUINT64_CONSTANT (0xffffffffffff);
    gst_harness_teardown (enc);
  }
  gst_buffer_unref (key);
}

GST_END_TEST;

/* A sender's identity cannot change under a running SA. */
GST_START_TEST (test_sender_id_fixed_while_playing)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc = enc_harness ("aes-128-gcm", key, SPI_A, 21);
  GstBuffer *b;
  GstMapInfo map;
  guint id = 0;

  g_object_set (enc->element, "sender-id", 22, NULL);
  g_object_get (enc->element, "sender-id", &id, NULL);
  fail_unless_equals_int (id, 21);
  gst_harness_push (enc, make_datagram (1, 10));
  b = gst_harness_pull (enc);
  gst_buffer_map (b, &map, GST_MAP_READ);
  fail_unless_equals_int (GST_READ_UINT16_BE (map.data + 8), 21);
  gst_buffer_unmap (b, &map);
  gst_buffer_unref (b);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
}

GST_END_TEST;

GST_START_TEST (test_sam_required_blocks)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  gchar *priv, *pub, *keys;
  GstHarness *enc, *dec;
  guint sent = 0, out = 0;
  GstBuffer *b;

  write_keys ("x", &priv, &pub);
  keys = g_strdup_printf ("1=%s", pub);
  enc = sam_enc_harness (key, 1, priv, "block", 16);
  dec = sam_dec_harness (key, "required", keys);
  for (guint i = 0; i < 100; i++) {
    gst_harness_push (enc, make_datagram (i, 200));
    forward (enc, dec, &sent, NULL);
    /* held until the block's signature arrives (with the next block) */
    while ((b = gst_harness_try_pull (dec)) != NULL) {
      fail_unless (datagram_is (b, out, 200), "datagram %u out of order", out);
      fail_unless_equals_string (source_mark (b), "verified");
      gst_buffer_unref (b);
      out++;
    }
    fail_unless (out <= i + 1);
    if (i == 40)
      fail_unless (out < 40 && out >= 16);
  }
  end_stream (enc, dec, &sent, NULL);
  while ((b = gst_harness_try_pull (dec)) != NULL) {
    fail_unless (datagram_is (b, out, 200));
    gst_buffer_unref (b);
    out++;
  }
  fail_unless_equals_int (out, 100);
  assert_stats (dec, "application/x-mcsec-dec-stats, sam-verified=(guint64)100,"
                     " sam-failed=(guint64)0, sam-unverifiable=(guint64)0");
  assert_stats (enc, "application/x-mcsec-enc-stats, sam-signed=(guint64)100");
  g_free (keys);
  g_free (priv);
  g_free (pub);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* An insider: the group key, its own signing key, claiming Sender-ID 1. */
GST_START_TEST (test_sam_insider_forgery_rejected)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  gchar *priv_x, *pub_x, *priv_y, *pub_y, *keys;
  const gchar *schemes[] = {"per-packet", "block"};

  write_keys ("x2", &priv_x, &pub_x);
  write_keys ("y2", &priv_y, &pub_y);
  keys = g_strdup_printf ("1=%s;2=%s", pub_x, pub_y);
  for (guint k = 0; k < 2; k++) {
    GstHarness *forger = sam_enc_harness (key, 1, priv_y, schemes[k], 16);
    GstHarness *dec = sam_dec_harness (key, "required", keys);
    guint sent = 0;
    GstStructure *s;
    guint64 v = 0, f = 0, u = 0;
    for (guint i = 0; i < 40; i++)
      gst_harness_push (forger, make_datagram (i, 100));
    forward (forger, dec, &sent, NULL);
    end_stream (forger, dec, &sent, NULL);
    fail_unless (gst_harness_try_pull (dec) == NULL, "%s: a forgery passed",
                 schemes[k]);
    s = get_stats (dec);
    gst_structure_get (s, "sam-verified", G_TYPE_UINT64, &v, "sam-failed",
                       G_TYPE_UINT64, &f, "sam-unverifiable", G_TYPE_UINT64, &u,
                       NULL);
    gst_structure_free (s);
    fail_unless_equals_uint64 (v, 0);
    fail_unless_equals_uint64 (f + u, 40);
    gst_harness_teardown (forger);
    gst_harness_teardown (dec);
  }
  g_free (keys);
  g_free (priv_x);
  g_free (pub_x);
  g_free (priv_y);
  g_free (pub_y);
  gst_buffer_unref (key);
}

GST_END_TEST;

GST_START_TEST (test_sam_optional_marks)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  gchar *priv_x, *pub_x, *priv_y, *pub_y, *keys;
  GstHarness *good, *forger, *dec;
  GstBuffer *b;
  guint sent = 0;

  write_keys ("x3", &priv_x, &pub_x);
  write_keys ("y3", &priv_y, &pub_y);
  keys = g_strdup_printf ("1=%s", pub_x);
  good = sam_enc_harness (key, 1, priv_x, "per-packet", 16);
  forger = sam_enc_harness (key, 1, priv_y, "per-packet", 16);
  dec = sam_dec_harness (key, "optional", keys);
  gst_harness_push (good, make_datagram (1, 50));
  forward (good, dec, &sent, NULL);
  b = gst_harness_pull (dec);
  fail_unless (datagram_is (b, 1, 50));
  fail_unless_equals_string (source_mark (b), "verified");
  gst_buffer_unref (b);
  /* the forger's first counter repeats the genuine one (ESP drops it as a
   * replay); its second gets through ESP and is marked */
  gst_harness_push (forger, make_datagram (2, 50));
  gst_harness_push (forger, make_datagram (3, 50));
  forward (forger, dec, &sent, NULL);
  b = gst_harness_pull (dec);
  fail_unless (datagram_is (b, 3, 50));
  fail_unless_equals_string (source_mark (b), "failed");
  gst_buffer_unref (b);
  g_free (keys);
  g_free (priv_x);
  g_free (pub_x);
  g_free (priv_y);
  g_free (pub_y);
  gst_buffer_unref (key);
  gst_harness_teardown (good);
  gst_harness_teardown (forger);
  gst_harness_teardown (dec);
}

GST_END_TEST;

static guint64 loss_rng = 0x5eed;
static gboolean
lose_20_percent (guint i)
{
  (void)i;
  loss_rng ^= loss_rng << 13;
  loss_rng ^= loss_rng >> 7;
  loss_rng ^= loss_rng << 17;
  return loss_rng % 100 < 20;
}

GST_START_TEST (test_sam_loss_and_bounds)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  gchar *priv, *pub, *keys;
  GstHarness *enc, *dec;
  guint sent = 0, received = 0, out = 0;
  GstStructure *s;
  guint64 verified = 0, pending = 0;

  write_keys ("x4", &priv, &pub);
  keys = g_strdup_printf ("1=%s", pub);
  /* 20% random loss on the network, default block of 64 */
  enc = sam_enc_harness (key, 1, priv, "block", 64);
  dec = sam_dec_harness (key, "required", keys);
  for (guint i = 0; i < 1000; i++) {
    gst_harness_push (enc, make_datagram (i, 100));
    received += forward (enc, dec, &sent, lose_20_percent);
  }
  end_stream (enc, dec, &sent, lose_20_percent);
  out = gst_harness_buffers_received (dec);
  s = get_stats (dec);
  gst_structure_get_uint64 (s, "sam-verified", &verified);
  gst_structure_free (s);
  GST_INFO ("20%% loss: %u of %u received datagrams verified", out, received);
  fail_unless (out >= received * 99 / 100 - 2, "%u of %u", out, received);
  fail_unless_equals_uint64 (verified, out);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);

  /* memory bound: never more than sam-max-hold datagrams waiting (blocks
   * closed on their count only, so that none is verified) */
  enc = sam_enc_harness_timed (key, 1, priv, "block", 64, 0);
  dec = sam_dec_harness_full (key, "required", keys, 10, 0);
  for (guint i = 0; i < 60; i++) {
    gst_harness_push (enc, make_datagram (i, 100));
    forward (enc, dec, &sent, NULL);
    s = get_stats (dec);
    gst_structure_get_uint64 (s, "sam-pending", &pending);
    gst_structure_free (s);
    fail_unless (pending <= 10, "%" G_GUINT64_FORMAT " held", pending);
  }
  fail_unless_equals_int (gst_harness_buffers_received (dec), 0);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);

  /* delay bound: with 1 ms between datagrams and at most 20 ms of hold,
   * no datagram waits for a block of 64 */
  enc = sam_enc_harness (key, 1, priv, "block", 64);
  dec = sam_dec_harness_full (key, "required", keys, 0, 20 * GST_MSECOND);
  for (guint i = 0; i < 100; i++) {
    gst_harness_push (enc, make_datagram (i, 100));
    forward (enc, dec, &sent, NULL);
  }
  s = get_stats (dec);
  gst_structure_get_uint64 (s, "sam-pending", &pending);
  gst_structure_get_uint64 (s, "sam-hold-max-ns", &verified);
  gst_structure_free (s);
  fail_unless (pending <= 21, "%" G_GUINT64_FORMAT " held", pending);
  /* what did come out waited at most 20 ms */
  fail_unless (verified <= 20 * GST_MSECOND, "held %" G_GUINT64_FORMAT " ns",
               verified);

  g_free (keys);
  g_free (priv);
  g_free (pub);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* sam-policy=off: source data is stripped, nothing checked or held. */
GST_START_TEST (test_sam_off_strips)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  gchar *priv, *pub;
  GstHarness *enc, *dec;
  guint sent = 0;

  write_keys ("x5", &priv, &pub);
  enc = sam_enc_harness (key, 1, priv, "block", 16);
  dec = sam_dec_harness (key, "off", NULL);
  for (guint i = 0; i < 20; i++) {
    gst_harness_push (enc, make_datagram (i, 77));
    forward (enc, dec, &sent, NULL);
    fail_unless (pulled_is (dec, i, 77));
  }
  g_free (priv);
  g_free (pub);
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

static Suite *
mcsec_suite (void)
{
  Suite *s = suite_create ("mcsec-elements");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_round_trip_every_suite);
  tcase_add_test (tc, test_tamper_dropped_and_counted);
  tcase_add_test (tc, test_stream_rtp_rtcp);
  tcase_add_test (tc, test_replay_and_reorder);
  tcase_add_test (tc, test_unknown_spi_and_request_key);
  tcase_add_test (tc, test_request_key_flood_passes);
  tcase_add_test (tc, test_several_senders);
  tcase_add_test (tc, test_rekey_while_playing_loses_nothing);
  tcase_add_test (tc, test_rekey_by_properties);
  tcase_add_test (tc, test_buffer_lists);
  tcase_add_test (tc, test_lists_shared_and_recycled);
  tcase_add_test (tc, test_caps_from_downstream);
  tcase_add_test (tc, test_bad_settings_are_named);
  tcase_add_test (tc, test_restart_continues_counters);
  tcase_add_test (tc, test_sender_id_fixed_while_playing);
  tcase_add_test (tc, test_sam_required_blocks);
  tcase_add_test (tc, test_sam_insider_forgery_rejected);
  tcase_add_test (tc, test_sam_optional_marks);
  tcase_add_test (tc, test_sam_loss_and_bounds);
  tcase_add_test (tc, test_sam_off_strips);
  return s;
}

int
main (int argc, char **argv)
{
  return check_main (argc, argv, mcsec_suite, "mcsec-elements");
}
