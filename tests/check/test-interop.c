/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The elements' modes for standard ESP stacks (issue 16,
 * docs/wire-format.md 10): mcsecenc's Next Header 17 (a datagram behind a
 * UDP header, which a kernel hands to a UDP socket) and mcsecdec's
 * standard SAs (an opaque IV, one sender, extended sequence numbers).  The
 * standard stack's packets are made here with OpenSSL directly, as the
 * Linux kernel makes them: a random IV, the high half of the sequence
 * number in the AAD only.  The real kernel is tests/kernel-ipsec.sh.
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <mcsec/mcsec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "check-util.h"

#define KM_LEN 20 /* AES-128-GCM: key || salt */

/* An ESP packet as a standard stack makes it (RFC 4303, RFC 4106): any
 * IV; AAD SPI || SN, or SPI || SN high || SN low with ESN (aad_esn), so
 * that a packet can also be sealed with the other rule than it claims. */
static GstBuffer *
standard_packet (const guint8 *km, guint32 spi, guint64 seq, gboolean aad_esn,
                 guint8 nh, guint tag, gsize len)
{
  guint8 pkt[2048], aad[12];
  gsize pad = (4 - (len + 2) % 4) % 4, body = len + pad + 2;
  guint8 *iv = pkt + 8, *b = pkt + 16;
  guint8 nonce[12];
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
  int outl = 0, aad_len = 0;

  fail_unless (16 + body + 16 <= sizeof (pkt));
  GST_WRITE_UINT32_BE (pkt, spi);
  GST_WRITE_UINT32_BE (pkt + 4, (guint32)seq);
  fail_unless (RAND_bytes (iv, 8) == 1);
  memset (b, (guint8)tag, len);
  for (gsize i = 0; i < pad; i++)
    b[len + i] = (guint8)(i + 1);
  b[len + pad] = (guint8)pad;
  b[len + pad + 1] = nh;
  GST_WRITE_UINT32_BE (aad, spi);
  aad_len = 4;
  if (aad_esn) {
    GST_WRITE_UINT32_BE (aad + aad_len, (guint32)(seq >> 32));
    aad_len += 4;
  }
  GST_WRITE_UINT32_BE (aad + aad_len, (guint32)seq);
  aad_len += 4;
  memcpy (nonce, km + 16, 4);
  memcpy (nonce + 4, iv, 8);
  fail_unless (EVP_EncryptInit_ex (ctx, EVP_aes_128_gcm (), NULL, km, nonce));
  fail_unless (EVP_EncryptUpdate (ctx, NULL, &outl, aad, aad_len));
  fail_unless (EVP_EncryptUpdate (ctx, b, &outl, b, (int)body));
  fail_unless (EVP_EncryptFinal_ex (ctx, b + body, &outl));
  fail_unless (EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_GCM_GET_TAG, 16, b + body) ==
               1);
  EVP_CIPHER_CTX_free (ctx);
  return gst_buffer_new_memdup (pkt, 16 + body + 16);
}

static GstHarness *
standard_dec (GstBuffer *key, gboolean esn)
{
  GstElement *dec = gst_element_factory_make ("mcsecdec", NULL);
  GstCaps *caps = gst_caps_from_string (RTP_CAPS ",media=video");

  gst_util_set_object_arg (G_OBJECT (dec), "sa-type", "standard");
  g_object_set (dec, "key", key, "spi", SPI_A, "esn", esn, "caps", caps,
                "replay-window", 64, NULL);
  gst_caps_unref (caps);
  return harness_start (dec, "application/x-mcsec");
}

static void
key_bytes (GstBuffer *key, guint8 *km)
{
  fail_unless_equals_int (gst_buffer_extract (key, 0, km, KM_LEN), KM_LEN);
}

/* mcsecenc inner-udp-port: Next Header 17, the datagram behind an 8-byte
 * UDP header (port, port, length, checksum 0), checked with the library
 * opening the packet; mcsecdec strips the header. */
GST_START_TEST (test_inner_udp_round_trip)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstElement *e = gst_element_factory_make ("mcsecenc", NULL);
  GstHarness *enc, *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  mcsec_rx_info_t info;
  guint8 km[KM_LEN], out[256];
  GstMapInfo map;
  GstBuffer *esp;

  key_bytes (key, km);
  g_object_set (e, "key", key, "spi", SPI_A, "sender-id", 3, "inner-udp-port",
                5004, NULL);
  enc = harness_start (e, RTP_CAPS);
  fail_unless_equals_int (gst_harness_push (enc, make_datagram (7, 100)),
                          GST_FLOW_OK);
  esp = gst_harness_pull (enc);
  cfg.spi = SPI_A;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = km;
  cfg.key_len = KM_LEN;
  fail_unless (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  gst_buffer_map (esp, &map, GST_MAP_READ);
  fail_unless_equals_int (
      mcsec_sa_unprotect (sa, map.data, map.size, out, sizeof (out), &info),
      MCSEC_OK);
  gst_buffer_unmap (esp, &map);
  fail_unless_equals_int (info.next_header, 17);
  fail_unless_equals_int (info.payload_len, 108);
  fail_unless_equals_int (GST_READ_UINT16_BE (out), 5004);
  fail_unless_equals_int (GST_READ_UINT16_BE (out + 2), 5004);
  fail_unless_equals_int (GST_READ_UINT16_BE (out + 4), 108);
  fail_unless_equals_int (GST_READ_UINT16_BE (out + 6), 0);
  for (guint i = 8; i < 108; i++)
    fail_unless_equals_int (out[i], 7);
  mcsec_sa_free (sa);
  /* mcsecdec gives the application the datagram alone */
  fail_unless_equals_int (gst_harness_push (dec, esp), GST_FLOW_OK);
  fail_unless (pulled_is (dec, 7, 100));
  assert_stats (dec, "application/x-mcsec-dec-stats, received=(guint64)1, "
                     "accepted=(guint64)1");
  gst_buffer_unref (key);
  gst_harness_teardown (enc);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* An authentic Next Header 17 packet whose UDP Length is not the payload's
 * (or that is shorter than a UDP header) is dropped and counted, never
 * passed on with a header the application would take for data. */
GST_START_TEST (test_inner_udp_bad_length)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  guint8 km[KM_LEN], data[64], pkt[256];
  const guint8 bad_len[8] = {0x13, 0x8c, 0x13, 0x8c, 0, 60, 0, 0};
  const guint8 good[8] = {0x13, 0x8c, 0x13, 0x8c, 0, 72, 0, 0};
  size_t len;

  key_bytes (key, km);
  cfg.spi = SPI_A;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = km;
  cfg.key_len = KM_LEN;
  fail_unless (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  fail_unless (mcsec_sa_set_sender (sa, 1, 1, 0) == MCSEC_OK);
  memset (data, 9, sizeof (data));
  fail_unless (mcsec_sa_protect_prefixed (sa, 17, bad_len, 8, data, 64, pkt,
                                          sizeof (pkt), &len,
                                          NULL) == MCSEC_OK);
  gst_harness_push (dec, gst_buffer_new_memdup (pkt, len));
  fail_unless (mcsec_sa_protect (sa, 17, data, 3, pkt, sizeof (pkt), &len,
                                 NULL) == MCSEC_OK);
  gst_harness_push (dec, gst_buffer_new_memdup (pkt, len));
  fail_unless (mcsec_sa_protect_prefixed (sa, 17, good, 8, data, 64, pkt,
                                          sizeof (pkt), &len,
                                          NULL) == MCSEC_OK);
  gst_harness_push (dec, gst_buffer_new_memdup (pkt, len));
  fail_unless (pulled_is (dec, 9, 64));
  fail_unless_equals_int (gst_harness_buffers_in_queue (dec), 0);
  assert_stats (dec, "application/x-mcsec-dec-stats, received=(guint64)3, "
                     "accepted=(guint64)1, dropped-malformed=(guint64)2");
  mcsec_sa_free (sa);
  gst_buffer_unref (key);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* A kernel cannot check source signatures: inner-udp-port together with a
 * signing key is an error that names both settings. */
GST_START_TEST (test_inner_udp_refuses_signing)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstElement *e = gst_element_factory_make ("mcsecenc", NULL);
  SenderKeys sk;
  gchar *text;

  sender_keys_init (&sk, "interop", 3);
  g_object_set (e, "key", key, "spi", SPI_A, "sender-id", 3, "inner-udp-port",
                5004, "signing-key-file", sk.priv, NULL);
  text = start_error (e);
  fail_unless (strstr (text, "inner-udp-port") != NULL, "%s", text);
  fail_unless (strstr (text, "signing-key-file") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (e);
  sender_keys_clear (&sk);
  gst_buffer_unref (key);
}

GST_END_TEST;

/* sa-type=standard takes a standard stack's packets (random IVs), with a
 * replay window on the sequence number; a group SA with the same key
 * takes none of them (their IVs are no Sender-ID || counter). */
GST_START_TEST (test_standard_sa)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *std = standard_dec (key, FALSE);
  GstHarness *group = dec_harness ("aes-128-gcm", key, SPI_A);
  const guint64 seqs[] = {1, 3, 2, 3, 0, 200, 100};
  guint8 km[KM_LEN];

  key_bytes (key, km);
  for (guint i = 0; i < G_N_ELEMENTS (seqs); i++) {
    GstBuffer *p = standard_packet (km, SPI_A, seqs[i], FALSE, 253, i, 40 + i);
    gst_harness_push (group, gst_buffer_copy_deep (p));
    gst_harness_push (std, p);
  }
  fail_unless (pulled_is (std, 0, 40));
  fail_unless (pulled_is (std, 1, 41));
  fail_unless (pulled_is (std, 2, 42));
  fail_unless (pulled_is (std, 5, 45));
  fail_unless_equals_int (gst_harness_buffers_in_queue (std), 0);
  /* 3 again: replay; 0: malformed; 100 after 200 in a window of 64 */
  assert_stats (std,
                "application/x-mcsec-dec-stats, received=(guint64)7, "
                "accepted=(guint64)4, dropped-replay=(guint64)1, "
                "dropped-malformed=(guint64)1, dropped-too-old=(guint64)1");
  fail_unless_equals_int (gst_harness_buffers_in_queue (group), 0);
  assert_stats (group, "application/x-mcsec-dec-stats, accepted=(guint64)0");
  gst_buffer_unref (key);
  gst_harness_teardown (std);
  gst_harness_teardown (group);
}

GST_END_TEST;

/* esn=true: the high half of the sequence number is in the AAD, so a
 * packet sealed without it fails, and the reverse; esn without
 * sa-type=standard is an error naming the setting. */
GST_START_TEST (test_standard_esn)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *esn = standard_dec (key, TRUE);
  GstHarness *plain = standard_dec (key, FALSE);
  GstElement *bad = gst_element_factory_make ("mcsecdec", NULL);
  gchar *text;
  guint8 km[KM_LEN];

  key_bytes (key, km);
  gst_harness_push (esn, standard_packet (km, SPI_A, 1, TRUE, 17, 1, 8 + 20));
  gst_harness_push (esn, standard_packet (km, SPI_A, 2, FALSE, 253, 2, 20));
  gst_harness_push (plain, standard_packet (km, SPI_A, 1, TRUE, 253, 3, 20));
  gst_harness_push (plain, standard_packet (km, SPI_A, 2, FALSE, 253, 4, 20));
  /* (the first is Next Header 17 with a wrong UDP length: malformed) */
  assert_stats (esn, "application/x-mcsec-dec-stats, received=(guint64)2, "
                     "dropped-auth=(guint64)1, dropped-malformed=(guint64)1");
  fail_unless (pulled_is (plain, 4, 20));
  assert_stats (plain, "application/x-mcsec-dec-stats, received=(guint64)2, "
                       "accepted=(guint64)1, dropped-auth=(guint64)1");
  gst_harness_push (esn, standard_packet (km, SPI_A, 3, TRUE, 253, 5, 20));
  fail_unless (pulled_is (esn, 5, 20));

  g_object_set (bad, "key", key, "spi", SPI_A, "esn", TRUE, NULL);
  text = start_error (bad);
  fail_unless (strstr (text, "esn") != NULL, "%s", text);
  fail_unless (strstr (text, "sa-type=standard") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (bad);
  gst_buffer_unref (key);
  gst_harness_teardown (esn);
  gst_harness_teardown (plain);
}

GST_END_TEST;

/* sa-type and esn written in READY apply to the SA made from the
 * properties (they changed nothing until the key was written again); esn
 * on a group SA is refused at start also without a key (add-key only). */
GST_START_TEST (test_sa_type_change_applies)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *dec = dec_harness ("aes-128-gcm", key, SPI_A);
  GstElement *bare = gst_element_factory_make ("mcsecdec", NULL);
  guint8 km[KM_LEN];
  gchar *text;

  key_bytes (key, km);
  gst_harness_push (dec, standard_packet (km, SPI_A, 1, FALSE, 253, 1, 20));
  fail_unless_equals_int (gst_harness_buffers_in_queue (dec), 0);
  gst_element_set_state (dec->element, GST_STATE_READY);
  gst_util_set_object_arg (G_OBJECT (dec->element), "sa-type", "standard");
  gst_element_set_state (dec->element, GST_STATE_PLAYING);
  gst_harness_push (dec, standard_packet (km, SPI_A, 2, FALSE, 253, 2, 20));
  fail_unless (pulled_is (dec, 2, 20));
  gst_element_set_state (dec->element, GST_STATE_READY);
  g_object_set (dec->element, "esn", TRUE, NULL);
  gst_element_set_state (dec->element, GST_STATE_PLAYING);
  gst_harness_push (dec, standard_packet (km, SPI_A, 3, TRUE, 253, 3, 20));
  fail_unless (pulled_is (dec, 3, 20));

  g_object_set (bare, "esn", TRUE, NULL);
  text = start_error (bare);
  fail_unless (strstr (text, "sa-type=standard") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (bare);
  gst_buffer_unref (key);
  gst_harness_teardown (dec);
}

GST_END_TEST;

/* spi-per-sender (docs/wire-format.md 10.3): each encoder sends under
 * spi | sender-id, a decoder with the same setting takes both senders'
 * SPIs as one SA (its stats under the base), one without it knows no such
 * SPI; a spi that is no block's base is an error naming the setting. */
GST_START_TEST (test_spi_per_sender)
{
  GstBuffer *key = make_key (MCSEC_SUITE_AES_128_GCM);
  GstHarness *enc[2], *dec, *plain = dec_harness ("aes-128-gcm", key, 0x120000);
  GstElement *e, *d = gst_element_factory_make ("mcsecdec", NULL);
  GstCaps *caps = gst_caps_from_string (RTP_CAPS ",media=video");
  GstStructure *sa;
  gchar *text;

  for (guint i = 0; i < 2; i++) {
    gchar *ctr = g_strdup_printf ("%s/per-sender-%u.ctr", state_dir, i);
    e = gst_element_factory_make ("mcsecenc", NULL);
    g_object_set (e, "key", key, "spi", 0x120000, "sender-id", 1 + i,
                  "spi-per-sender", TRUE, "counter-file", ctr, NULL);
    enc[i] = harness_start (e, RTP_CAPS);
    g_free (ctr);
  }
  g_object_set (d, "key", key, "spi", 0x120000, "spi-per-sender", TRUE, "caps",
                caps, NULL);
  dec = harness_start (d, "application/x-mcsec");
  for (guint n = 0; n < 3; n++)
    for (guint i = 0; i < 2; i++) {
      GstBuffer *p;
      guint8 spi[4];
      gst_harness_push (enc[i], make_datagram (10 * i + n, 30));
      p = gst_harness_pull (enc[i]);
      gst_buffer_extract (p, 0, spi, 4);
      fail_unless_equals_int (GST_READ_UINT32_BE (spi), 0x120000 + 1 + i);
      gst_harness_push (plain, gst_buffer_copy_deep (p));
      gst_harness_push (dec, p);
      fail_unless (pulled_is (dec, 10 * i + n, 30));
    }
  sa = sa_stats (dec, 0x120000);
  fail_unless (sa != NULL);
  {
    guint64 accepted = 0;
    gst_structure_get_uint64 (sa, "accepted", &accepted);
    fail_unless_equals_uint64 (accepted, 6);
  }
  gst_structure_free (sa);
  assert_stats (plain, "application/x-mcsec-dec-stats, received=(guint64)6, "
                       "dropped-unknown-spi=(guint64)6");

  e = gst_element_factory_make ("mcsecenc", NULL);
  g_object_set (e, "key", key, "spi", 0x120001, "spi-per-sender", TRUE, NULL);
  text = start_error (e);
  fail_unless (strstr (text, "spi-per-sender") != NULL, "%s", text);
  g_free (text);
  gst_object_unref (e);
  for (guint i = 0; i < 2; i++)
    gst_harness_teardown (enc[i]);
  gst_harness_teardown (dec);
  gst_harness_teardown (plain);
  gst_caps_unref (caps);
  gst_buffer_unref (key);
}

GST_END_TEST;

static Suite *
interop_suite (void)
{
  Suite *s = suite_create ("mcsec-interop");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_inner_udp_round_trip);
  tcase_add_test (tc, test_inner_udp_bad_length);
  tcase_add_test (tc, test_inner_udp_refuses_signing);
  tcase_add_test (tc, test_standard_sa);
  tcase_add_test (tc, test_standard_esn);
  tcase_add_test (tc, test_sa_type_change_applies);
  tcase_add_test (tc, test_spi_per_sender);
  return s;
}

int
main (int argc, char **argv)
{
  return check_main (argc, argv, interop_suite, "mcsec-interop");
}
