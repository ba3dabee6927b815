/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any bytes as SAM data of a known sender (Ed25519, a
 * fixed key, so valid seeds exercise the block decoder too).  The first
 * byte of the input picks the ESP counter, so one input can hold several
 * packets: [len (1) | counter (1) | bytes (len)]...
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

static void
on_event (const mcsec_sam_event_t *ev, void *data)
{
  (void)data;
  if (ev->index >= MCSEC_SAM_BLOCK_MAX)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static EVP_PKEY *key;
  mcsec_sam_verifier_t *v;
  size_t pos = 0;

  if (key == NULL)
    key = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, seed,
                                        sizeof (seed));
  if (key == NULL || mcsec_sam_verifier_new (on_event, NULL, &v))
    return 0;
  if (mcsec_sam_verifier_add_sender (v, 0, 1, key)) {
    mcsec_sam_verifier_free (v);
    return 0;
  }
  while (pos + 2 <= size) {
    size_t len = data[pos];
    uint64_t counter = data[pos + 1];
    uint8_t *copy;
    mcsec_sam_result_t res;
    pos += 2;
    if (len > size - pos)
      len = size - pos;
    copy = malloc (len ? len : 1); /* exact size: ASan sees overreads */
    if (copy == NULL)
      break;
    memcpy (copy, data + pos, len);
    if (mcsec_sam_verify (v, 0x5a5a0001u, 1, counter, counter, copy, len,
                          &res) == MCSEC_OK &&
        res.payload_offset + res.payload_len > len)
      abort ();
    free (copy);
    pos += len;
  }
  mcsec_sam_verifier_flush (v);
  mcsec_sam_verifier_free (v);
  return 0;
}
