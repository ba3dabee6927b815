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

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static char path[64];
  mcsec_counter_store_t *store;
  uint64_t first, limit;
  FILE *f;

  if (path[0] == '\0')
    snprintf (path, sizeof (path), "/tmp/mcsec-fuzz-store-%ld.ctr",
              (long)getpid ());
  f = fopen (path, "wb");
  if (f == NULL)
    return 0;
  if (size && fwrite (data, 1, size, f) != size) {
    fclose (f);
    return 0;
  }
  fclose (f);
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
