/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writes valid packets for the fuzz target's fixed SAs into a directory:
 * the seed corpus in tests/fuzz/corpus/esp-unprotect was made with it.
 *   make-corpus DIR
 */
#include <stdio.h>
#include <string.h>

#include <mcsec/mcsec.h>

static const uint8_t fuzz_key[20] = {0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65,
                                     0x79, 0x2d, 0x6d, 0x63, 0x73, 0x65, 0x63,
                                     0x2d, 0x31, 0x73, 0x61, 0x6c, 0x74};

int
main (int argc, char **argv)
{
  static const size_t sizes[] = {0, 1, 3, 12, 172};
  mcsec_sa_config_t cfg = {0};
  uint8_t payload[200], pkt[300];
  char path[512];

  if (argc != 2)
    return 2;
  for (int g = 0; g < 2; g++) {
    mcsec_sa_t *sa;
    cfg.spi = 0x1234 + (uint32_t)g;
    cfg.suite = g ? MCSEC_SUITE_AES_128_GMAC : MCSEC_SUITE_AES_128_GCM;
    cfg.sender_id_bits = g ? 8 : 0;
    cfg.key = fuzz_key;
    cfg.key_len = sizeof (fuzz_key);
    if (mcsec_sa_new (&cfg, &sa) || mcsec_sa_set_sender (sa, 3, 1, 0))
      return 1;
    for (size_t i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
      size_t len;
      FILE *f;
      memset (payload, 0x80 + (int)i, sizeof (payload));
      if (mcsec_sa_protect (sa, 253, payload, sizes[i], pkt, sizeof (pkt), &len,
                            NULL))
        return 1;
      snprintf (path, sizeof (path), "%s/%s-%zu.bin", argv[1],
                g ? "gmac" : "gcm", sizes[i]);
      f = fopen (path, "wb");
      if (f == NULL || fwrite (pkt, 1, len, f) != len)
        return 1;
      fclose (f);
    }
    mcsec_sa_free (sa);
  }
  return 0;
}
