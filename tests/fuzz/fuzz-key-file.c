/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any file content as the elements' `key-file`.  The
 * parser must accept exactly hex digits and white space, never write past
 * the key buffer, and say no without echoing what it read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-file.h"
#include "gstmcsecelement.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_write_file ("key", data, size);
  GstMcsecKey key;
  GError *err = NULL;
  size_t digits = 0, others = 0;

  if (path == NULL)
    return 0;
  for (size_t i = 0; i < size; i++) {
    if (g_ascii_isxdigit (data[i]))
      digits++;
    else if (!g_ascii_isspace (data[i]))
      others++;
  }
  if (gst_mcsec_key_load_file (&key, path, &err)) {
    /* accepted: only hex and spaces, and the bytes fit */
    if (others != 0 || key.len > sizeof (key.bytes) || key.len * 2 != digits)
      abort ();
  } else {
    if (err == NULL || key.len != 0)
      abort ();
    g_error_free (err);
  }
  gst_mcsec_key_clear (&key);
  unlink (path);
  return 0;
}
