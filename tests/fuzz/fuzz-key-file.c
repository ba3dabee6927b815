/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any file content as the elements' `key-file`.  The
 * parser must accept hex digits and white space, after at most one
 * `cipher=NAME` line whose cipher takes exactly that much key, never write
 * past the key buffer, leave the key in use as it was when it says no, and
 * say no without echoing what it read.
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
  GstMcsecKey key, before;
  GError *err = NULL;
  size_t digits = 0, others = 0;
  int cipher_line = memmem (data, size, "cipher", 6) != NULL;

  if (path == NULL)
    return 0;
  for (size_t i = 0; i < size; i++) {
    if (g_ascii_isxdigit (data[i]))
      digits++;
    else if (!g_ascii_isspace (data[i]))
      others++;
  }
  /* a key in use: a file that cannot be used must leave it as it was */
  memset (&key, 0, sizeof (key));
  memset (key.bytes, 0xa5, 20);
  key.len = 20;
  before = key;
  if (gst_mcsec_key_load_file (&key, path, &err)) {
    /* accepted: the bytes fit; without a cipher line only hex and spaces
     * and every digit in the key; with one, the key the cipher takes */
    if (key.len > sizeof (key.bytes) || key.len == 0 || key.len * 2 > digits)
      abort ();
    if (!cipher_line && (others != 0 || key.len * 2 != digits))
      abort ();
    if (key.file_suite != 0 &&
        key.len != mcsec_suite_key_material_len (key.file_suite))
      abort ();
  } else {
    if (err == NULL || memcmp (&key, &before, sizeof (key)) != 0)
      abort ();
    g_error_free (err);
  }
  gst_mcsec_key_clear (&key);
  unlink (path);
  return 0;
}
