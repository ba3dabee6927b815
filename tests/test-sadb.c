/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The SA database: several SAs at once, keyed by SPI; dispatch of packets
 * by SPI; a rekey overlap where packets under the old and the new SA
 * interleave and none is lost.
 */
#include "mcsec-private.h"
#include "mcsec-test.h"

static uint8_t key_a[MCSEC_MAX_KEY_MATERIAL_LEN];
static uint8_t key_b[MCSEC_MAX_KEY_MATERIAL_LEN];

static void
test_add_remove_lookup (void)
{
  enum { N = 300 };
  mcsec_sadb_t *db;
  uint32_t spis[N];
  uint64_t seed = 99;

  REQUIRE (mcsec_sadb_new (&db) == MCSEC_OK);
  for (int i = 0; i < N; i++) {
    mcsec_sa_t *sa;
    /* half random, half consecutive: both collide in the table */
    spis[i] = i % 2 ? 256 + (uint32_t)i
                    : 256 + (uint32_t)(test_rand (&seed) % 0xfffffe00u);
    for (int j = 0; j < i; j++)
      if (spis[j] == spis[i])
        spis[i] ^= 0x10000000u;
    sa = test_sa_new (MCSEC_SUITE_AES_128_GCM, spis[i], key_a);
    CHECK_STATUS (mcsec_sadb_add (db, sa), MCSEC_OK);
  }
  CHECK (mcsec_sadb_count (db) == N);
  for (int i = 0; i < N; i++) {
    mcsec_sa_t *sa = mcsec_sadb_lookup (db, spis[i]);
    CHECK (sa != NULL && mcsec_sa_spi (sa) == spis[i]);
  }
  CHECK (mcsec_sadb_lookup (db, 12345) == NULL);
  {
    mcsec_sa_t *dup = test_sa_new (MCSEC_SUITE_AES_128_GCM, spis[7], key_a);
    CHECK_STATUS (mcsec_sadb_add (db, dup), MCSEC_ERR_SPI_EXISTS);
    mcsec_sa_free (dup);
  }
  /* remove every third; the rest stay reachable (backward shift) */
  for (int i = 0; i < N; i += 3)
    CHECK_STATUS (mcsec_sadb_remove (db, spis[i]), MCSEC_OK);
  CHECK_STATUS (mcsec_sadb_remove (db, spis[0]), MCSEC_ERR_UNKNOWN_SPI);
  for (int i = 0; i < N; i++) {
    mcsec_sa_t *sa = mcsec_sadb_lookup (db, spis[i]);
    if (i % 3 == 0)
      CHECK (sa == NULL);
    else
      CHECK (sa != NULL && mcsec_sa_spi (sa) == spis[i]);
  }
  CHECK (mcsec_sadb_count (db) == N - (N + 2) / 3);
  mcsec_sadb_free (db);
}

static void
test_rekey_overlap (void)
{
  mcsec_sadb_t *db;
  mcsec_sa_t *old_tx = test_sa_new (MCSEC_SUITE_AES_128_GCM, 0x1001, key_a);
  mcsec_sa_t *new_tx = test_sa_new (MCSEC_SUITE_AES_256_GCM, 0x1002, key_b);
  uint8_t pkt[128], out[128], payload[40];
  int delivered = 0;

  REQUIRE (mcsec_sa_set_sender (old_tx, 1, 1, 0) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (new_tx, 1, 1, 0) == MCSEC_OK);
  REQUIRE (mcsec_sadb_new (&db) == MCSEC_OK);
  REQUIRE (mcsec_sadb_add (db, test_sa_new (MCSEC_SUITE_AES_128_GCM, 0x1001,
                                            key_a)) == MCSEC_OK);
  /* the next SA arrives before any sender uses it */
  REQUIRE (mcsec_sadb_add (db, test_sa_new (MCSEC_SUITE_AES_256_GCM, 0x1002,
                                            key_b)) == MCSEC_OK);
  for (int i = 0; i < 200; i++) {
    /* senders switch at different times: the streams interleave */
    mcsec_sa_t *tx = (i < 80 || (i < 120 && i % 2)) ? old_tx : new_tx;
    mcsec_rx_info_t info;
    size_t len;
    memset (payload, i, sizeof (payload));
    REQUIRE (mcsec_sa_protect (tx, 253, payload, sizeof (payload), pkt,
                               sizeof (pkt), &len, NULL) == MCSEC_OK);
    if (mcsec_sadb_unprotect (db, pkt, len, out, sizeof (out), &info) ==
            MCSEC_OK &&
        info.payload_len == sizeof (payload) &&
        memcmp (out, payload, sizeof (payload)) == 0)
      delivered++;
    if (i == 150) /* grace period over: retire the old SA */
      CHECK_STATUS (mcsec_sadb_remove (db, 0x1001), MCSEC_OK);
  }
  CHECK (delivered == 200);
  /* after retirement the old SPI is unknown */
  {
    size_t len;
    mcsec_rx_info_t info;
    REQUIRE (mcsec_sa_protect (old_tx, 253, payload, 4, pkt, sizeof (pkt), &len,
                               NULL) == MCSEC_OK);
    CHECK_STATUS (mcsec_sadb_unprotect (db, pkt, len, out, sizeof (out), &info),
                  MCSEC_ERR_UNKNOWN_SPI);
    CHECK (info.spi == 0x1001);
    CHECK_STATUS (mcsec_sadb_unprotect (db, pkt, 3, out, sizeof (out), &info),
                  MCSEC_ERR_TOO_SHORT);
  }
  mcsec_sa_free (old_tx);
  mcsec_sa_free (new_tx);
  mcsec_sadb_free (db);
}

static mcsec_sa_t *
block_sa (uint32_t base, uint8_t bits, const uint8_t *key)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;

  cfg.spi = base;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = key;
  cfg.key_len = mcsec_suite_key_material_len (cfg.suite);
  cfg.sender_id_bits = bits;
  cfg.spi_per_sender = 1;
  REQUIRE (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  return sa;
}

/* Per-sender SPI blocks (docs/wire-format.md 10.3): found by any SPI of
 * the block, never overlapping another SA; two senders of one block, each
 * with its SPI, both received; the SPI of another sender refused. */
static void
test_per_sender_blocks (void)
{
  mcsec_sadb_t *db;
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL, *tx1, *tx2;
  uint8_t pkt[128], out[128], data[40];
  size_t len;
  mcsec_rx_info_t info;

  /* settings: aligned base, at most 24 bits, group SAs only */
  cfg.spi = 0x120001;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = key_a;
  cfg.key_len = mcsec_suite_key_material_len (cfg.suite);
  cfg.spi_per_sender = 1;
  CHECK_STATUS (mcsec_sa_new (&cfg, &sa), MCSEC_ERR_BAD_SPI);
  cfg.spi = 0x1000000;
  cfg.sender_id_bits = 32;
  CHECK_STATUS (mcsec_sa_new (&cfg, &sa), MCSEC_ERR_BAD_SPI);
  cfg.sender_id_bits = 16;
  cfg.type = MCSEC_SA_TYPE_STANDARD;
  CHECK_STATUS (mcsec_sa_new (&cfg, &sa), MCSEC_ERR_BAD_SPI);

  REQUIRE (mcsec_sadb_new (&db) == MCSEC_OK);
  REQUIRE (mcsec_sadb_add (db, block_sa (0x120000, 16, key_a)) == MCSEC_OK);
  REQUIRE (mcsec_sadb_add (db, test_sa_new (MCSEC_SUITE_AES_128_GCM, 0x1000,
                                            key_b)) == MCSEC_OK);
  CHECK (mcsec_sadb_lookup (db, 0x120000) != NULL);
  CHECK (mcsec_sadb_lookup (db, 0x12ffff) == mcsec_sadb_lookup (db, 0x120000));
  CHECK (mcsec_sadb_lookup (db, 0x130000) == NULL);
  CHECK (mcsec_sadb_lookup (db, 0x1001) == NULL);
  CHECK (mcsec_sadb_lookup (db, 0x1000) != NULL);
  /* nothing else in the block, nor a block over an SA */
  sa = test_sa_new (MCSEC_SUITE_AES_128_GCM, 0x120010, key_b);
  CHECK_STATUS (mcsec_sadb_add (db, sa), MCSEC_ERR_SPI_EXISTS);
  mcsec_sa_free (sa);
  sa = block_sa (0x120000, 8, key_b);
  CHECK_STATUS (mcsec_sadb_add (db, sa), MCSEC_ERR_SPI_EXISTS);
  mcsec_sa_free (sa);
  sa = block_sa (0x1000000, 24, key_b);
  REQUIRE (mcsec_sadb_add (db, sa) == MCSEC_OK);
  CHECK (mcsec_sadb_lookup (db, 0x1abcdef) == sa);
  /* at most four block widths at once (the lookup tries each) */
  {
    mcsec_sa_t *w8 = block_sa (0x2000000, 8, key_b);
    mcsec_sa_t *w12 = block_sa (0x3000000, 12, key_b);
    mcsec_sa_t *w20 = block_sa (0x4000000, 20, key_b);
    REQUIRE (mcsec_sadb_add (db, w8) == MCSEC_OK);
    REQUIRE (mcsec_sadb_add (db, w12) == MCSEC_OK);
    CHECK_STATUS (mcsec_sadb_add (db, w20), MCSEC_ERR_INVALID_ARG);
    CHECK (mcsec_sadb_lookup (db, 0x20000ff) == w8);
    CHECK (mcsec_sadb_lookup (db, 0x3000fff) == w12);
    CHECK (mcsec_sadb_lookup (db, 0x4000001) == NULL);
    mcsec_sa_free (w20);
    REQUIRE (mcsec_sadb_remove (db, 0x3000000) == MCSEC_OK);
    w20 = block_sa (0x4000000, 20, key_b);
    REQUIRE (mcsec_sadb_add (db, w20) == MCSEC_OK); /* a width freed */
    CHECK (mcsec_sadb_lookup (db, 0x40fffff) == w20);
  }

  /* two senders, each under its own SPI of the block */
  tx1 = block_sa (0x120000, 16, key_a);
  tx2 = block_sa (0x120000, 16, key_a);
  REQUIRE (mcsec_sa_set_sender (tx1, 1, 1, 0) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx2, 2, 1, 0) == MCSEC_OK);
  memset (data, 7, sizeof (data));
  for (int round = 0; round < 2; round++) {
    mcsec_sa_t *tx = round ? tx2 : tx1;
    REQUIRE (mcsec_sa_protect (tx, 253, data, sizeof (data), pkt, sizeof (pkt),
                               &len, NULL) == MCSEC_OK);
    CHECK (mcsec_packet_spi (pkt, len) == 0x120000u + 1 + round);
    CHECK_STATUS (mcsec_sadb_unprotect (db, pkt, len, out, sizeof (out), &info),
                  MCSEC_OK);
    CHECK (info.spi == 0x120000 && info.sender_id == (uint32_t)(1 + round));
  }
  /* sender 2's packet relabelled with sender 1's SPI: refused */
  REQUIRE (mcsec_sa_protect (tx2, 253, data, sizeof (data), pkt, sizeof (pkt),
                             &len, NULL) == MCSEC_OK);
  mcsec_store_be32 (pkt, 0x120001);
  CHECK_STATUS (mcsec_sadb_unprotect (db, pkt, len, out, sizeof (out), &info),
                MCSEC_ERR_MALFORMED);
  /* removed: the block's SPIs are unknown again */
  REQUIRE (mcsec_sadb_remove (db, 0x120000) == MCSEC_OK);
  CHECK (mcsec_sadb_lookup (db, 0x120001) == NULL);
  CHECK (mcsec_sadb_lookup (db, 0x1abcdef) == sa);
  mcsec_sa_free (tx1);
  mcsec_sa_free (tx2);
  mcsec_sadb_free (db);
}

int
main (void)
{
  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_128_GCM, key_a,
                                        sizeof (key_a)) == MCSEC_OK);
  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_256_GCM, key_b,
                                        sizeof (key_b)) == MCSEC_OK);
  test_add_remove_lookup ();
  test_rekey_overlap ();
  test_per_sender_blocks ();
  return test_done ("test-sadb");
}
