/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The SA's protect/unprotect: round trips for every suite, the wire layout
 * (Sender-ID || counter in the IV, SN = low counter bits, padding), every
 * single-bit flip, truncated / oversized / garbage packets, configuration
 * errors, key lifetimes and counter limits.
 */
#include "mcsec-private.h"
#include "mcsec-test.h"

#define SPI 0x1000abcdu

static uint8_t key_material[MCSEC_MAX_KEY_MATERIAL_LEN];

static mcsec_sa_t *
sender_sa (mcsec_suite_t suite, uint32_t sender_id)
{
  mcsec_sa_t *sa = test_sa_new (suite, SPI, key_material);
  REQUIRE (mcsec_sa_set_sender (sa, sender_id, 1, 0) == MCSEC_OK);
  return sa;
}

static void
test_round_trip (mcsec_suite_t suite)
{
  static const size_t sizes[] = {
      0, 1, 2, 3, 4, 5, 63, 64, 512, 1200, 1400, MCSEC_ESP_MAX_PAYLOAD_LEN};
  static uint8_t payload[MCSEC_ESP_MAX_PACKET_LEN];
  static uint8_t pkt[MCSEC_ESP_MAX_PACKET_LEN + 64];
  static uint8_t out[MCSEC_ESP_MAX_PACKET_LEN];
  mcsec_sa_t *tx = sender_sa (suite, 0x0102);
  mcsec_sa_t *rx = test_sa_new (suite, SPI, key_material);
  uint64_t seed = 0x1234567 + suite;

  for (size_t i = 0; i < sizeof (payload); i++)
    payload[i] = (uint8_t)test_rand (&seed);

  for (size_t s = 0; s < sizeof (sizes) / sizeof (sizes[0]); s++) {
    size_t n = sizes[s], len = 0;
    mcsec_rx_info_t info;
    unsigned events = 99;
    uint64_t counter = mcsec_sa_next_counter (tx);

    CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM, payload, n,
                                    pkt, sizeof (pkt), &len, &events),
                  MCSEC_OK);
    CHECK (events == 0);
    CHECK (len == mcsec_protected_len (n));
    CHECK (len % 4 == 0);
    CHECK (len <= n + MCSEC_ESP_MAX_OVERHEAD);
    /* SPI, SN = low 32 bits of the counter, IV = Sender-ID || counter */
    CHECK (mcsec_load_be32 (pkt) == SPI);
    CHECK (mcsec_load_be32 (pkt + 4) == (uint32_t)counter);
    CHECK (mcsec_load_be64 (pkt + 8) == ((UINT64_C (0x0102) << 48) | counter));
    /* GMAC leaves the payload readable, the AEADs do not */
    if (mcsec_suite_encrypts (suite))
      CHECK (n < 8 || memcmp (pkt + 16, payload, n) != 0);
    else
      CHECK (memcmp (pkt + 16, payload, n) == 0);

    memset (out, 0, n + 8);
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), &info),
                  MCSEC_OK);
    CHECK (info.payload_len == n);
    CHECK (info.next_header == MCSEC_NEXT_HEADER_DATAGRAM);
    CHECK (info.sender_id == 0x0102);
    CHECK (info.counter == counter);
    CHECK (info.spi == SPI);
    CHECK (memcmp (out, payload, n) == 0);

    /* in place both ways: payload already at pkt + 16, output likewise */
    memcpy (pkt + MCSEC_ESP_HEADER_LEN, payload, n);
    CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM,
                                    pkt + MCSEC_ESP_HEADER_LEN, n, pkt,
                                    sizeof (pkt), &len, NULL),
                  MCSEC_OK);
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, pkt + MCSEC_ESP_HEADER_LEN,
                                      sizeof (pkt) - MCSEC_ESP_HEADER_LEN,
                                      &info),
                  MCSEC_OK);
    CHECK (info.payload_len == n);
    CHECK (memcmp (pkt + MCSEC_ESP_HEADER_LEN, payload, n) == 0);
  }
  CHECK (mcsec_sa_packets_sent (tx) == 2 * sizeof (sizes) / sizeof (sizes[0]));
  CHECK (mcsec_sa_packets_received (rx) == mcsec_sa_packets_sent (tx));
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);
}

/* Every single-bit flip of a valid packet is rejected, and none of the
 * rejections moves the receiver's state: the original is accepted after. */
static void
test_bit_flips (mcsec_suite_t suite)
{
  uint8_t payload[100], pkt[256], bad[256], out[256];
  mcsec_sa_t *tx = sender_sa (suite, 7);
  mcsec_sa_t *rx = test_sa_new (suite, SPI, key_material);
  size_t len = 0;
  int all_rejected = 1;

  memset (payload, 0x5a, sizeof (payload));
  REQUIRE (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM, payload,
                             sizeof (payload), pkt, sizeof (pkt), &len,
                             NULL) == MCSEC_OK);
  for (size_t bit = 0; bit < len * 8; bit++) {
    mcsec_rx_info_t info;
    mcsec_status_t st;
    memcpy (bad, pkt, len);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    st = mcsec_sa_unprotect (rx, bad, len, out, sizeof (out), &info);
    if (st == MCSEC_OK) {
      all_rejected = 0;
      fprintf (stderr, "bit %zu flip accepted\n", bit);
    }
    /* the SPI, SN and IV are checked before the ICV */
    if (bit < 32)
      CHECK (st == MCSEC_ERR_UNKNOWN_SPI);
    else if (bit < 128)
      CHECK (st == MCSEC_ERR_MALFORMED || st == MCSEC_ERR_AUTH);
    else
      CHECK (st == MCSEC_ERR_AUTH);
  }
  CHECK (all_rejected);
  CHECK (mcsec_sa_packets_received (rx) == 0);
  CHECK (mcsec_sa_n_senders (rx) == 0);
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), NULL),
                MCSEC_OK);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);
}

/* Truncations, extensions, garbage: a status, never a crash or an OK. */
static void
test_bad_lengths_and_garbage (void)
{
  static uint8_t pkt[MCSEC_ESP_MAX_PACKET_LEN + 16], out[sizeof (pkt)];
  uint8_t payload[64];
  mcsec_sa_t *tx = sender_sa (MCSEC_SUITE_AES_128_GCM, 1);
  mcsec_sa_t *rx = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key_material);
  size_t len = 0;
  uint64_t seed = 42;

  memset (payload, 1, sizeof (payload));
  REQUIRE (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM, payload,
                             sizeof (payload), pkt, sizeof (pkt), &len,
                             NULL) == MCSEC_OK);

  for (size_t l = 0; l < len; l++) {
    mcsec_status_t st =
        mcsec_sa_unprotect (rx, pkt, l, out, sizeof (out), NULL);
    if (l < MCSEC_ESP_MIN_PACKET_LEN)
      CHECK_STATUS (st, MCSEC_ERR_TOO_SHORT);
    else
      CHECK (st == MCSEC_ERR_MALFORMED || st == MCSEC_ERR_AUTH);
  }
  /* trailing bytes after the ICV: the ICV is read from the wrong place */
  for (size_t extra = 1; extra <= 8; extra++) {
    mcsec_status_t st =
        mcsec_sa_unprotect (rx, pkt, len + extra, out, sizeof (out), NULL);
    CHECK (st == MCSEC_ERR_MALFORMED || st == MCSEC_ERR_AUTH);
  }
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, MCSEC_ESP_MAX_PACKET_LEN + 1, out,
                                    sizeof (out), NULL),
                MCSEC_ERR_TOO_LONG);
  /* an output buffer too small is an error, not an overflow */
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, 10, NULL),
                MCSEC_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM, payload,
                                  sizeof (payload), out,
                                  mcsec_protected_len (sizeof (payload)) - 1,
                                  &len, NULL),
                MCSEC_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM, payload,
                                  MCSEC_ESP_MAX_PAYLOAD_LEN + 1, pkt,
                                  sizeof (pkt), &len, NULL),
                MCSEC_ERR_PAYLOAD_TOO_LONG);

  /* random garbage, with the right SPI and a consistent SN half the time */
  for (int i = 0; i < 20000; i++) {
    size_t l = test_rand (&seed) % 1500;
    mcsec_rx_info_t info;
    for (size_t j = 0; j < l; j++)
      pkt[j] = (uint8_t)test_rand (&seed);
    if (l >= 16 && (i & 1)) {
      mcsec_store_be32 (pkt, SPI);
      memcpy (pkt + 4, pkt + 12, 4);
    }
    CHECK (mcsec_sa_unprotect (rx, pkt, l, out, sizeof (out), &info) !=
           MCSEC_OK);
  }
  CHECK (mcsec_sa_packets_received (rx) == 0);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);
}

/* An authentic packet with a broken ESP trailer (only a key holder can make
 * one) is refused as bad padding. */
static void
test_bad_padding (void)
{
  mcsec_aead_t seal;
  uint8_t pkt[64], out[64];
  mcsec_sa_t *rx = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key_material);
  static const uint8_t trailers[][4] = {
      {0x01, 0x03, 0x02, 253}, /* padding bytes not 1, 2 */
      {0x00, 0x00, 0x09, 253}, /* pad length beyond the body */
  };

  REQUIRE (mcsec_aead_init (&seal, MCSEC_SUITE_AES_128_GCM, key_material, 20,
                            1) == MCSEC_OK);
  for (size_t i = 0; i < 2; i++) {
    memset (pkt, 0, sizeof (pkt));
    mcsec_store_be32 (pkt, SPI);
    mcsec_store_be32 (pkt + 4, 5 + (uint32_t)i);
    mcsec_store_be64 (pkt + 8, (UINT64_C (3) << 48) | (5 + i));
    memcpy (pkt + 16 + 4, trailers[i], 4); /* 4 bytes payload, trailer */
    REQUIRE (mcsec_aead_seal (&seal, pkt, 0, pkt + 16, 8, 8) == MCSEC_OK);
    CHECK_STATUS (
        mcsec_sa_unprotect (rx, pkt, 16 + 8 + 16, out, sizeof (out), NULL),
        MCSEC_ERR_BAD_PADDING);
  }
  CHECK (mcsec_sa_packets_received (rx) == 0);
  mcsec_aead_clear (&seal);
  mcsec_sa_free (rx);
}

static mcsec_status_t
try_config (mcsec_suite_t suite, size_t key_len, uint32_t spi, uint8_t bits,
            uint32_t window, uint64_t soft, uint64_t hard)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;
  mcsec_status_t st;

  cfg.spi = spi;
  cfg.suite = suite;
  cfg.key = key_material;
  cfg.key_len = key_len;
  cfg.sender_id_bits = bits;
  cfg.replay_window = window;
  cfg.soft_packets = soft;
  cfg.hard_packets = hard;
  st = mcsec_sa_new (&cfg, &sa);
  CHECK ((st == MCSEC_OK) == (sa != NULL));
  mcsec_sa_free (sa);
  return st;
}

static void
test_config_errors (void)
{
  mcsec_sa_t *sa;

  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 0, 0, 0, 0),
                MCSEC_OK);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 16, SPI, 0, 0, 0, 0),
                MCSEC_ERR_BAD_KEY_LENGTH);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_256_GCM, 20, SPI, 0, 0, 0, 0),
                MCSEC_ERR_BAD_KEY_LENGTH);
  CHECK_STATUS (try_config (MCSEC_SUITE_CHACHA20_POLY1305, 32, SPI, 0, 0, 0, 0),
                MCSEC_ERR_BAD_KEY_LENGTH);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_256_GMAC, 36, SPI, 0, 0, 0, 0),
                MCSEC_OK);
  CHECK_STATUS (try_config (0, 20, SPI, 0, 0, 0, 0), MCSEC_ERR_BAD_SUITE);
  CHECK_STATUS (try_config (99, 20, SPI, 0, 0, 0, 0), MCSEC_ERR_BAD_SUITE);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, 0, 0, 0, 0, 0),
                MCSEC_ERR_BAD_SPI);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, 255, 0, 0, 0, 0),
                MCSEC_ERR_BAD_SPI);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 7, 0, 0, 0),
                MCSEC_ERR_BAD_SENDER_ID_BITS);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 33, 0, 0, 0),
                MCSEC_ERR_BAD_SENDER_ID_BITS);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 0, 1000, 0, 0),
                MCSEC_ERR_BAD_REPLAY_WINDOW);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 0, 32, 0, 0),
                MCSEC_ERR_BAD_REPLAY_WINDOW);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 0, 131072, 0, 0),
                MCSEC_ERR_BAD_REPLAY_WINDOW);
  CHECK_STATUS (try_config (MCSEC_SUITE_AES_128_GCM, 20, SPI, 0, 0, 10, 5),
                MCSEC_ERR_BAD_LIFETIME);
  CHECK_STATUS (mcsec_sa_new (NULL, &sa), MCSEC_ERR_INVALID_ARG);

  /* the messages name the setting at fault */
  CHECK (strstr (mcsec_status_message (MCSEC_ERR_BAD_KEY_LENGTH), "key"));
  CHECK (strstr (mcsec_status_message (MCSEC_ERR_BAD_SUITE), "suite"));
  CHECK (strstr (mcsec_status_message (MCSEC_ERR_BAD_REPLAY_WINDOW),
                 "replay-window"));
  /* a member's packet-signing key: the elements' and mcsec-join's name
   * (the controller's update-signing-key is another key) */
  CHECK (strstr (mcsec_status_message (MCSEC_ERR_BAD_SIGNING_KEY),
                 "'signing-key-file'"));
  /* a counter store held twice inside one process is no "other process" */
  CHECK (strstr (mcsec_status_message (MCSEC_ERR_LOCKED), "this process"));
  for (int s = 0; s < MCSEC_STATUS_COUNT_; s++) {
    CHECK (mcsec_status_name (s) != NULL);
    CHECK (mcsec_status_message (s) != NULL);
  }
  for (size_t i = 0; i < TEST_N_SUITES; i++)
    CHECK (mcsec_suite_from_name (mcsec_suite_name (test_all_suites[i])) ==
           test_all_suites[i]);

  /* a sender ID wider than its field, and a second set_sender, refused */
  sa = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key_material);
  CHECK_STATUS (mcsec_sa_set_sender (sa, 0x10000, 1, 0),
                MCSEC_ERR_BAD_SENDER_ID);
  CHECK_STATUS (mcsec_sa_set_sender (sa, 0xffff, 1, 0), MCSEC_OK);
  CHECK_STATUS (mcsec_sa_set_sender (sa, 0xffff, 1, 0), MCSEC_ERR_INVALID_ARG);
  mcsec_sa_free (sa);
}

static void
test_lifetimes (void)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *tx, *rx;
  uint8_t pkt[128], out[128], payload[10] = {0};
  size_t len;
  unsigned events;
  mcsec_rx_info_t info;
  int soft_seen = 0;

  cfg.spi = SPI;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = key_material;
  cfg.key_len = 20;
  cfg.soft_packets = 3;
  cfg.hard_packets = 5;
  REQUIRE (mcsec_sa_new (&cfg, &tx) == MCSEC_OK);
  REQUIRE (mcsec_sa_new (&cfg, &rx) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx, 9, 1, 0) == MCSEC_OK);

  CHECK_STATUS (
      mcsec_sa_protect (rx, 253, payload, 10, pkt, sizeof (pkt), &len, NULL),
      MCSEC_ERR_NOT_SENDER);
  for (int i = 1; i <= 5; i++) {
    CHECK_STATUS (mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt),
                                    &len, &events),
                  MCSEC_OK);
    CHECK (((events & MCSEC_EVENT_SOFT_LIMIT) != 0) == (i == 3));
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), &info),
                  MCSEC_OK);
    if (info.events & MCSEC_EVENT_SOFT_LIMIT)
      soft_seen = i;
  }
  CHECK (soft_seen == 3);
  CHECK_STATUS (
      mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, &events),
      MCSEC_ERR_HARD_LIMIT);
  mcsec_sa_free (tx);

  /* the receiver refuses packets past its own hard limit */
  cfg.hard_packets = 0;
  cfg.soft_packets = 0;
  REQUIRE (mcsec_sa_new (&cfg, &tx) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx, 10, 1, 0) == MCSEC_OK);
  REQUIRE (mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len,
                             NULL) == MCSEC_OK);
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), NULL),
                MCSEC_ERR_HARD_LIMIT);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);

  /* counter exhaustion: 32-bit Sender-ID leaves a 32-bit counter */
  cfg.sender_id_bits = 32;
  REQUIRE (mcsec_sa_new (&cfg, &tx) == MCSEC_OK);
  REQUIRE (mcsec_sa_new (&cfg, &rx) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx, 0xdeadbeef, UINT32_MAX - 2, 0) == MCSEC_OK);
  for (int i = 0; i < 2; i++) {
    CHECK_STATUS (
        mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, NULL),
        MCSEC_OK);
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), &info),
                  MCSEC_OK);
    CHECK (info.sender_id == 0xdeadbeef);
    CHECK (info.counter == UINT32_MAX - 2 + (uint64_t)i);
  }
  CHECK_STATUS (
      mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, NULL),
      MCSEC_ERR_COUNTER_EXHAUSTED);
  CHECK (mcsec_sa_next_counter (tx) == UINT32_MAX);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);

  /* reservations: low-water event at half, refusal at the limit, extension */
  cfg.sender_id_bits = 0;
  REQUIRE (mcsec_sa_new (&cfg, &tx) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx, 1, 100, 108) == MCSEC_OK);
  for (int i = 0; i < 8; i++) {
    CHECK_STATUS (mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt),
                                    &len, &events),
                  MCSEC_OK);
    CHECK (((events & MCSEC_EVENT_RESERVATION_LOW) != 0) == (i == 3));
  }
  CHECK_STATUS (
      mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, &events),
      MCSEC_ERR_RESERVATION_EXHAUSTED);
  CHECK_STATUS (mcsec_sa_extend_reservation (tx, 116), MCSEC_OK);
  CHECK_STATUS (
      mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, &events),
      MCSEC_OK);
  CHECK (mcsec_load_be32 (pkt + 4) == 108);
  /* a smaller limit never moves the counter space back */
  CHECK_STATUS (mcsec_sa_extend_reservation (tx, 50), MCSEC_OK);
  CHECK_STATUS (
      mcsec_sa_protect (tx, 253, payload, 10, pkt, sizeof (pkt), &len, &events),
      MCSEC_OK);
  CHECK (mcsec_load_be32 (pkt + 4) == 109);
  mcsec_sa_free (tx);
}

/* A dummy packet (next header 59) authenticates and is reported as such. */
static void
test_dummy_and_wrong_key (void)
{
  uint8_t other_key[MCSEC_MAX_KEY_MATERIAL_LEN];
  uint8_t pkt[128], out[128];
  mcsec_sa_t *tx = sender_sa (MCSEC_SUITE_AES_256_GCM, 3);
  mcsec_sa_t *rx = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI, key_material);
  mcsec_sa_t *wrong;
  mcsec_rx_info_t info;
  size_t len;

  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_256_GCM, other_key,
                                        sizeof (other_key)) == MCSEC_OK);
  wrong = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI, other_key);
  REQUIRE (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DUMMY, NULL, 0, pkt,
                             sizeof (pkt), &len, NULL) == MCSEC_OK);
  CHECK_STATUS (mcsec_sa_unprotect (wrong, pkt, len, out, sizeof (out), NULL),
                MCSEC_ERR_AUTH);
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), &info),
                MCSEC_OK);
  CHECK (info.next_header == MCSEC_NEXT_HEADER_DUMMY);
  CHECK (info.payload_len == 0);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);
  mcsec_sa_free (wrong);
}

/* Tentative packets (a receiver that checks sources first): the window
 * is checked, not moved, until the packet is accepted; the first accepted
 * copy wins. */
static void
test_tentative_and_accept (void)
{
  uint8_t pkt[128], far_pkt[128], out[128];
  mcsec_sa_t *tx = sender_sa (MCSEC_SUITE_AES_128_GCM, 7);
  mcsec_sa_t *far = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key_material);
  mcsec_sa_t *rx = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key_material);
  mcsec_rx_info_t info;
  size_t len, far_len;

  REQUIRE (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM,
                             (const uint8_t *)"a", 1, pkt, sizeof (pkt), &len,
                             NULL) == MCSEC_OK);
  /* a packet of the same sender far ahead, never accepted: moves nothing */
  REQUIRE (mcsec_sa_set_sender (far, 7, 5000000, 0) == MCSEC_OK);
  REQUIRE (mcsec_sa_protect (far, MCSEC_NEXT_HEADER_DATAGRAM,
                             (const uint8_t *)"b", 1, far_pkt, sizeof (far_pkt),
                             &far_len, NULL) == MCSEC_OK);
  CHECK_STATUS (mcsec_sa_unprotect_tentative (rx, far_pkt, far_len, out,
                                              sizeof (out), &info),
                MCSEC_OK);
  CHECK (info.counter == 5000000 && info.sender_id == 7);
  for (int i = 0; i < 2; i++) {
    CHECK_STATUS (
        mcsec_sa_unprotect_tentative (rx, pkt, len, out, sizeof (out), &info),
        MCSEC_OK);
    CHECK (info.counter == 1);
  }
  CHECK (mcsec_sa_n_senders (rx) == 0);
  CHECK_STATUS (mcsec_sa_accept (rx, 7, 1), MCSEC_OK);
  CHECK_STATUS (mcsec_sa_accept (rx, 7, 1), MCSEC_ERR_REPLAY);
  CHECK_STATUS (
      mcsec_sa_unprotect_tentative (rx, pkt, len, out, sizeof (out), &info),
      MCSEC_ERR_REPLAY);
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), &info),
                MCSEC_ERR_REPLAY);
  /* accepting far ahead makes the old counter too old, as unprotect would */
  CHECK_STATUS (mcsec_sa_accept (rx, 7, 5000000), MCSEC_OK);
  CHECK_STATUS (mcsec_sa_accept (rx, 7, 2), MCSEC_ERR_TOO_OLD);
  CHECK_STATUS (mcsec_sa_accept (rx, 7, 0), MCSEC_ERR_INVALID_ARG);
  CHECK_STATUS (mcsec_sa_accept (NULL, 7, 3), MCSEC_ERR_INVALID_ARG);
  mcsec_sa_free (tx);
  mcsec_sa_free (far);
  mcsec_sa_free (rx);
}

/* Two SAs have the same key when SPI, suite, Sender-ID width and key
 * material all match. */
static void
test_same_key (void)
{
  uint8_t other[MCSEC_MAX_KEY_MATERIAL_LEN];
  mcsec_sa_t *a = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI, key_material);
  mcsec_sa_t *b = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI, key_material);
  mcsec_sa_t *c, *d;

  memcpy (other, key_material, sizeof (other));
  other[31] ^= 1; /* the last key byte, before the salt */
  c = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI, other);
  d = test_sa_new (MCSEC_SUITE_AES_256_GCM, SPI + 1, key_material);
  CHECK (mcsec_sa_same_key (a, b));
  CHECK (!mcsec_sa_same_key (a, c));
  CHECK (!mcsec_sa_same_key (a, d));
  CHECK (!mcsec_sa_same_key (a, NULL));
  mcsec_sa_free (a);
  mcsec_sa_free (b);
  mcsec_sa_free (c);
  mcsec_sa_free (d);
}

/* Standard SAs (docs/wire-format.md 10.2) only receive, ESN belongs to
 * them alone, and a standard SA is not the same SA as a group SA with the
 * same key.  Their packets are checked against Python's cryptography in
 * test_vectors.py. */
static void
test_standard_sa_settings (void)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *std, *group, *sa = NULL;

  cfg.spi = SPI;
  cfg.suite = MCSEC_SUITE_AES_256_GCM;
  cfg.key = key_material;
  cfg.key_len = mcsec_suite_key_material_len (cfg.suite);
  cfg.esn = 1; /* ESN on a group SA */
  CHECK_STATUS (mcsec_sa_new (&cfg, &sa), MCSEC_ERR_INVALID_ARG);
  CHECK (sa == NULL);
  cfg.type = (mcsec_sa_type_t)7;
  CHECK_STATUS (mcsec_sa_new (&cfg, &sa), MCSEC_ERR_INVALID_ARG);
  cfg.type = MCSEC_SA_TYPE_STANDARD;
  REQUIRE (mcsec_sa_new (&cfg, &std) == MCSEC_OK);
  CHECK_STATUS (mcsec_sa_set_sender (std, 1, 1, 0), MCSEC_ERR_INVALID_ARG);
  cfg.type = MCSEC_SA_TYPE_GROUP;
  cfg.esn = 0;
  REQUIRE (mcsec_sa_new (&cfg, &group) == MCSEC_OK);
  CHECK (!mcsec_sa_same_key (std, group));
  mcsec_sa_free (std);
  mcsec_sa_free (group);
}

int
main (void)
{
  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_256_GCM, key_material,
                                        sizeof (key_material)) == MCSEC_OK);
  for (size_t i = 0; i < TEST_N_SUITES; i++) {
    test_round_trip (test_all_suites[i]);
    test_bit_flips (test_all_suites[i]);
  }
  test_bad_lengths_and_garbage ();
  test_bad_padding ();
  test_config_errors ();
  test_lifetimes ();
  test_dummy_and_wrong_key ();
  test_tentative_and_accept ();
  test_same_key ();
  test_standard_sa_settings ();
  return test_done ("test-esp");
}
