/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For fuzz targets whose parser reads a file: the input, written to a file
 * of this process's own.
 */
#ifndef MCSEC_FUZZ_FILE_H
#define MCSEC_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* Write data to /tmp/mcsec-fuzz-<name>-<pid>; the path, or NULL. */
static inline const char *
fuzz_write_file (const char *name, const uint8_t *data, size_t size)
{
  static char path[96];
  FILE *f;

  snprintf (path, sizeof (path), "/tmp/mcsec-fuzz-%s-%ld", name,
            (long)getpid ());
  f = fopen (path, "wb");
  if (f == NULL)
    return NULL;
  if (size && fwrite (data, 1, size, f) != size) {
    fclose (f);
    return NULL;
  }
  fclose (f);
  return path;
}

#endif
