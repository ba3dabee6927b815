/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Many senders on one SA: 4096 senders share the group key, their packets
 * arrive interleaved and reordered, and each one's replay window is its own.
 * Also: no two senders ever produce the same nonce, and max_senders holds.
 */
#include "mcsec-private.h"
#include "mcsec-test.h"

#define N_SENDERS 4096
#define ROUNDS 6
#define SPI 0x77770001u

static uint8_t key[MCSEC_MAX_KEY_MATERIAL_LEN];

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void
count_sender (const mcsec_sender_stats_t *s, void *data)
{
  uint64_t *sum = data;
  sum[0]++;
  sum[1] += s->accepted;
  if (s->highest_counter != ROUNDS)
    sum[2]++;
}

int
main (void)
{
  static mcsec_sa_t *tx[N_SENDERS];
  static uint8_t pkts[ROUNDS][N_SENDERS][64];
  static size_t lens[ROUNDS][N_SENDERS];
  static uint64_t ivs[ROUNDS * N_SENDERS];
  uint8_t out[64], payload[8];
  mcsec_sa_t *rx;
  uint64_t seed = 7, sums[3] = {0};
  size_t n = 0, dup = 0;

  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_128_GCM, key,
                                        sizeof (key)) == MCSEC_OK);
  rx = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key);
  for (uint32_t s = 0; s < N_SENDERS; s++) {
    tx[s] = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, key);
    REQUIRE (mcsec_sa_set_sender (tx[s], s, 1, 0) == MCSEC_OK);
  }
  for (int r = 0; r < ROUNDS; r++) {
    for (uint32_t s = 0; s < N_SENDERS; s++) {
      memcpy (payload, &s, sizeof (s));
      CHECK_STATUS (mcsec_sa_protect (tx[s], 253, payload, sizeof (payload),
                                      pkts[r][s], sizeof (pkts[r][s]),
                                      &lens[r][s], NULL),
                    MCSEC_OK);
      ivs[n++] = mcsec_load_be64 (pkts[r][s] + 8);
    }
  }
  /* every (key, nonce) pair is distinct: the salt is shared, so the IVs are */
  qsort (ivs, n, sizeof (ivs[0]), cmp_u64);
  for (size_t i = 1; i < n; i++)
    dup += ivs[i] == ivs[i - 1];
  CHECK (dup == 0);

  /* round r of every sender, in a shuffled sender order, and round 0 after
   * round 1 for half of them (reordering inside each sender's window) */
  for (int r = ROUNDS - 1; r >= 0; r--) {
    uint32_t order[N_SENDERS];
    for (uint32_t s = 0; s < N_SENDERS; s++)
      order[s] = s;
    for (uint32_t s = N_SENDERS - 1; s > 0; s--) {
      uint32_t j = (uint32_t)(test_rand (&seed) % (s + 1)), t = order[s];
      order[s] = order[j];
      order[j] = t;
    }
    for (uint32_t k = 0; k < N_SENDERS; k++) {
      uint32_t s = order[k];
      mcsec_rx_info_t info;
      CHECK_STATUS (mcsec_sa_unprotect (rx, pkts[r][s], lens[r][s], out,
                                        sizeof (out), &info),
                    MCSEC_OK);
      CHECK (info.sender_id == s && info.counter == (uint64_t)r + 1);
      CHECK (memcmp (out, &s, sizeof (s)) == 0);
    }
  }
  CHECK (mcsec_sa_n_senders (rx) == N_SENDERS);
  /* each sender's replays are caught on their own */
  for (uint32_t s = 0; s < N_SENDERS; s += 3)
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkts[s % ROUNDS][s],
                                      lens[s % ROUNDS][s], out, sizeof (out),
                                      NULL),
                  MCSEC_ERR_REPLAY);
  mcsec_sa_foreach_sender (rx, count_sender, sums);
  CHECK (sums[0] == N_SENDERS);
  CHECK (sums[1] == (uint64_t)N_SENDERS * ROUNDS);
  CHECK (sums[2] == 0);

  /* sender 0 racing far ahead does not age out sender 1's packets */
  for (int i = 0; i < 5000; i++) {
    size_t len;
    REQUIRE (mcsec_sa_protect (tx[0], 253, payload, 8, pkts[0][0], 64, &len,
                               NULL) == MCSEC_OK);
    REQUIRE (mcsec_sa_unprotect (rx, pkts[0][0], len, out, sizeof (out),
                                 NULL) == MCSEC_OK);
  }
  {
    size_t len;
    REQUIRE (mcsec_sa_protect (tx[1], 253, payload, 8, pkts[0][1], 64, &len,
                               NULL) == MCSEC_OK);
    CHECK_STATUS (
        mcsec_sa_unprotect (rx, pkts[0][1], len, out, sizeof (out), NULL),
        MCSEC_OK);
  }
  mcsec_sa_free (rx);

  /* max_senders bounds the memory an insider can make a receiver spend */
  {
    mcsec_sa_config_t cfg = {0};
    cfg.spi = SPI;
    cfg.suite = MCSEC_SUITE_AES_128_GCM;
    cfg.key = key;
    cfg.key_len = 20;
    cfg.max_senders = 100;
    REQUIRE (mcsec_sa_new (&cfg, &rx) == MCSEC_OK);
    for (uint32_t s = 0; s < 101; s++) {
      size_t len;
      REQUIRE (mcsec_sa_protect (tx[s + 200], 253, payload, 8, pkts[0][0], 64,
                                 &len, NULL) == MCSEC_OK);
      CHECK_STATUS (
          mcsec_sa_unprotect (rx, pkts[0][0], len, out, sizeof (out), NULL),
          s < 100 ? MCSEC_OK : MCSEC_ERR_TOO_MANY_SENDERS);
    }
    mcsec_sa_free (rx);
  }

  for (uint32_t s = 0; s < N_SENDERS; s++)
    mcsec_sa_free (tx[s]);
  return test_done ("test-senders");
}
