/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any file content as a counter store.  Opening must
 * either refuse or hand out a reservation; and whatever it handed out, the
 * next open must start at or after its end (the store never goes back, or
 * a restarted sender would repeat nonces).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <mcsec/mcsec.h>

#include "fuzz-file.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_write_file ("store", data, size);
  mcsec_counter_store_t *store;
  uint64_t first, limit;

  if (path == NULL)
    return 0;
  if (mcsec_counter_store_open (path, 16, &store, &first, &limit) == MCSEC_OK) {
    uint64_t first2, limit2;
    if (limit != first + 16 || first == 0)
      abort ();
    mcsec_counter_store_close (store);
    if (mcsec_counter_store_open (path, 16, &store, &first2, &limit2) !=
            MCSEC_OK ||
        first2 < limit)
      abort ();
    mcsec_counter_store_close (store);
  }
  unlink (path);
  return 0;
}
