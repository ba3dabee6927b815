/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any bytes as SAM data of known senders (Ed25519,
 * fixed keys, so valid seeds exercise the block decoder too), under two
 * SPIs, as a receiver in a rekey overlap sees them.  One input holds
 * several packets: [len (1) | where (1) | bytes (len)]..., where `where`
 * picks the SPI (bit 7: A or B), the Sender-ID (bits 5-6: 1 to 4) and the
 * ESP counter (bits 0-4).  Sender-ID 1 has one key under A and another
 * under B, 2 one key under any SA, 3 a key under A only, 4 none.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <mcsec/mcsec.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* a fixed Ed25519 seed: test data, not a secret */
static const uint8_t seed[32] = {
    0x6d, 0x63, 0x73, 0x65, 0x63, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d,
    0x73, 0x61, 0x6d, 0x2d, 0x73, 0x65, 0x65, 0x64, 0x2d, 0x30, 0x31,
    0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62};

#define SPI_A 0x5a5a0001u
#define SPI_B 0x5a5a0002u

static void
on_event (const mcsec_sam_event_t *ev, void *data)
{
  const uint64_t *tags = data;
  /* every event names a datagram that was given to the verifier, by the
   * SA and Sender-ID it came with */
  if (ev->index >= MCSEC_SAM_BLOCK_MAX || ev->tag == 0 || ev->tag > *tags ||
      (ev->spi != SPI_A && ev->spi != SPI_B) || ev->sender_id < 1 ||
      ev->sender_id > 3)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static EVP_PKEY *key, *key2;
  mcsec_sam_verifier_t *v;
  size_t pos = 0;
  uint64_t tags = 0;

  if (key == NULL) {
    uint8_t seed2[sizeof (seed)];
    memcpy (seed2, seed, sizeof (seed));
    seed2[0] ^= 1;
    key = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed,
                                        sizeof (seed));
    key2 = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed2,
                                         sizeof (seed2));
  }
  if (key == NULL || key2 == NULL ||
      mcsec_sam_verifier_new (on_event, &tags, &v))
    return 0;
  if (mcsec_sam_verifier_add_sender (v, SPI_A, 1, key) ||
      mcsec_sam_verifier_add_sender (v, SPI_B, 1, key2) ||
      mcsec_sam_verifier_add_sender (v, 0, 2, key) ||
      mcsec_sam_verifier_add_sender (v, SPI_A, 3, key2)) {
    mcsec_sam_verifier_free (v);
    return 0;
  }
  while (pos + 2 <= size) {
    size_t len = data[pos];
    uint32_t spi = data[pos + 1] & 0x80 ? SPI_B : SPI_A;
    uint32_t sender = 1 + ((data[pos + 1] >> 5) & 3);
    uint64_t counter = data[pos + 1] & 0x1f;
    uint8_t *copy;
    mcsec_sam_result_t res;
    pos += 2;
    if (len > size - pos)
      len = size - pos;
    copy = malloc (len ? len : 1); /* exact size: ASan sees overreads */
    if (copy == NULL)
      break;
    memcpy (copy, data + pos, len);
    if (mcsec_sam_verify (v, spi, sender, counter, ++tags, copy, len, &res) ==
            MCSEC_OK &&
        res.payload_offset + res.payload_len > len)
      abort ();
    free (copy);
    pos += len;
  }
  mcsec_sam_verifier_flush (v);
  mcsec_sam_verifier_free (v);
  return 0;
}
