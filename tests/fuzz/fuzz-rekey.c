/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: datagrams on the rekey channel.  The input is several
 * datagrams, [len (2, big-endian) | bytes]..., fed to a member's channel
 * receiver that trusts the fixed controller key of fuzz-mike.h (so the
 * signed seeds reach reassembly); complete rekeys are drained and
 * repairs asked for as a member would.
 */
#include <stdlib.h>
#include <string.h>

#include <mcsec/mcsec-rekey.h>

#include "fuzz-mike.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static EVP_PKEY *ctl;
  mcsec_rekey_rx_t *rx;
  size_t pos = 0;
  uint64_t now = 1000, seq, from;
  mcsec_rekey_t r;

  if (ctl == NULL)
    ctl = fuzz_mike_controller_key ();
  if (ctl == NULL || mcsec_rekey_rx_new (FUZZ_MIKE_GROUP, ctl, 1, &rx))
    return 0;
  while (pos + 2 <= size) {
    size_t len = (size_t)data[pos] << 8 | data[pos + 1];
    pos += 2;
    if (len > size - pos)
      len = size - pos;
    (void)mcsec_rekey_rx_datagram (rx, data + pos, len, now);
    pos += len;
    now += 50;
    while (mcsec_rekey_rx_next (rx, &seq, &r)) {
      /* touch everything handed over */
      for (size_t i = 0; i < r.n; i++)
        if (r.entries[i].node == 0 && r.entries[i].wrapped[0] == 0x7f)
          now++;
      for (size_t i = 0; i < r.n_senders; i++)
        if (r.senders[i].spki[r.senders[i].spki_len - 1] == 0x7f)
          now++;
      if (r.sa && r.sa->activate_in_ms == 0x7f)
        now++;
    }
    (void)mcsec_rekey_rx_repair (rx, now, &from);
  }
  mcsec_rekey_rx_free (rx);
  return 0;
}
