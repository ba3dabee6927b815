/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any bytes into the receive path (SADB dispatch, ESP
 * parse, replay check, ESN inference, AEAD open, trailer parse) of group
 * SAs, a per-sender SPI block and standard SAs.  The SA's key is fixed,
 * so the fuzzer can also reach the post-ICV code with inputs it learnt from
 * the seed corpus.  Built with -Dfuzzing=true (clang); without libFuzzer,
 * fuzz-replay.c runs it over the corpus and random inputs as a test.
 */
#include <stdlib.h>
#include <string.h>

#include <mcsec/mcsec.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FUZZ_SPI 0x00001234u

static const uint8_t fuzz_key[20] = {0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65,
                                     0x79, 0x2d, 0x6d, 0x63, 0x73, 0x65, 0x63,
                                     0x2d, 0x31, 0x73, 0x61, 0x6c, 0x74};

static mcsec_sadb_t *db;

static void
setup (void)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;

  if (mcsec_sadb_new (&db))
    abort ();
  cfg.spi = FUZZ_SPI;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = fuzz_key;
  cfg.key_len = sizeof (fuzz_key);
  cfg.replay_window = 64;
  cfg.max_senders = 16;
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sadb_add (db, sa))
    abort ();
  cfg.spi = FUZZ_SPI + 1;
  cfg.suite = MCSEC_SUITE_AES_128_GMAC;
  cfg.sender_id_bits = 8;
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sadb_add (db, sa))
    abort ();
  /* standard SAs (opaque IV, one sender), with and without ESN */
  cfg.type = MCSEC_SA_TYPE_STANDARD;
  cfg.spi = FUZZ_SPI + 2;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.esn = 1;
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sadb_add (db, sa))
    abort ();
  cfg.spi = FUZZ_SPI + 3;
  cfg.suite = MCSEC_SUITE_AES_128_GMAC;
  cfg.esn = 0;
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sadb_add (db, sa))
    abort ();
  /* a per-sender SPI block: 0x00120000 | Sender-ID */
  cfg.type = MCSEC_SA_TYPE_GROUP;
  cfg.spi = 0x00120000;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.sender_id_bits = 16;
  cfg.spi_per_sender = 1;
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sadb_add (db, sa))
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t out[MCSEC_ESP_MAX_PACKET_LEN];
  mcsec_rx_info_t info;
  uint8_t *copy;
  mcsec_status_t st;

  if (db == NULL)
    setup ();
  /* an exact-size heap copy, so ASan sees any read past the end */
  copy = malloc (size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy (copy, data, size);
  st = mcsec_sadb_unprotect (db, copy, size, out, sizeof (out), &info);
  if (st == MCSEC_OK && info.payload_len > size)
    abort ();
  /* in place too */
  if (size > MCSEC_ESP_HEADER_LEN) {
    st = mcsec_sadb_unprotect (db, copy, size, copy + MCSEC_ESP_HEADER_LEN,
                               size - MCSEC_ESP_HEADER_LEN, &info);
    if (st == MCSEC_OK && info.payload_len > size)
      abort ();
  }
  free (copy);
  return 0;
}
