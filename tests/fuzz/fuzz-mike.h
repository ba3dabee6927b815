/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fixed controller of the MIKE fuzz target and its seed corpus: an
 * Ed25519 key from a fixed seed (test data, not a secret) and the WELCOME
 * it gives (for a key tree group: with a rekey channel; for a group with
 * per-sender SPIs: with SPI_PER_SENDER).
 */
#ifndef FUZZ_MIKE_H
#define FUZZ_MIKE_H

#include <openssl/evp.h>

#include <mcsec/mcsec-mike.h>

#define FUZZ_MIKE_GROUP "video"

static inline EVP_PKEY *
fuzz_mike_controller_key (void)
{
  static const uint8_t seed[32] = "mcsec-fuzz-mike-controller-seed";
  return EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed, 32);
}

static inline size_t
fuzz_mike_welcome_ex (EVP_PKEY *ctl, int tree, int spi_per_sender, uint8_t *buf,
                      size_t cap)
{
  uint8_t spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len, len;
  mcsec_mike_builder_t b;

  if (mcsec_mike_public_key_der (ctl, spki, sizeof spki, &spki_len))
    return 0;
  mcsec_mike_begin (&b, buf, cap, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, FUZZ_MIKE_GROUP);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, "fuzz");
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_BOTH);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, spki, spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS, 16);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, 5);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, 6);
  if (tree) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS, "239.255.0.9");
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, 5100);
  }
  if (spi_per_sender)
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SPI_PER_SENDER, 1);
  return mcsec_mike_finish (&b, &len) == MCSEC_OK ? len : 0;
}

static inline size_t
fuzz_mike_welcome (EVP_PKEY *ctl, int tree, uint8_t *buf, size_t cap)
{
  return fuzz_mike_welcome_ex (ctl, tree, 0, buf, cap);
}

#endif
