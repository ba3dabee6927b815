/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-keygen: print (or write to a 0600 file) fresh SA key material,
 * key || salt in hex, from RAND_bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <mcsec/mcsec.h>

static void
usage (FILE *f)
{
  fprintf (
      f,
      "Usage: mcsec-keygen [--suite SUITE] [--output FILE]\n"
      "\n"
      "Generate SA key material (cipher key || 4-byte salt) as hex.\n"
      "\n"
      "  --suite SUITE   aes-128-gcm (default), aes-256-gcm,\n"
      "                  chacha20-poly1305, aes-128-gmac, aes-256-gmac\n"
      "  --output FILE   write to FILE, created with mode 0600 (it must not\n"
      "                  exist yet), instead of standard output\n"
      "  --help          show this text\n");
}

int
main (int argc, char **argv)
{
  const char *suite_name = "aes-128-gcm";
  const char *output = NULL;
  uint8_t key[MCSEC_MAX_KEY_MATERIAL_LEN];
  char hex[2 * MCSEC_MAX_KEY_MATERIAL_LEN + 2];
  mcsec_suite_t suite;
  size_t len, i;
  int ret = 1;
  mcsec_status_t st;

  for (int a = 1; a < argc; a++) {
    if (strcmp (argv[a], "--suite") == 0 && a + 1 < argc) {
      suite_name = argv[++a];
    } else if (strcmp (argv[a], "--output") == 0 && a + 1 < argc) {
      output = argv[++a];
    } else if (strcmp (argv[a], "--help") == 0) {
      usage (stdout);
      return 0;
    } else {
      usage (stderr);
      return 2;
    }
  }
  suite = mcsec_suite_from_name (suite_name);
  if (suite == 0) {
    fprintf (stderr, "mcsec-keygen: %s\n",
             mcsec_status_message (MCSEC_ERR_BAD_SUITE));
    return 2;
  }
  len = mcsec_suite_key_material_len (suite);
  st = mcsec_generate_key_material (suite, key, sizeof (key));
  if (st) {
    fprintf (stderr, "mcsec-keygen: %s\n", mcsec_status_message (st));
    goto out;
  }
  for (i = 0; i < len; i++)
    snprintf (hex + 2 * i, 3, "%02x", key[i]);
  hex[2 * len] = '\n';
  hex[2 * len + 1] = '\0';

  if (output == NULL) {
    ret = fputs (hex, stdout) < 0 ? 1 : 0;
  } else {
    int fd = open (output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      fprintf (stderr, "mcsec-keygen: cannot create %s: %s\n", output,
               strerror (errno));
      goto out;
    }
    if (write (fd, hex, 2 * len + 1) != (ssize_t)(2 * len + 1) ||
        fsync (fd) != 0) {
      fprintf (stderr, "mcsec-keygen: cannot write %s: %s\n", output,
               strerror (errno));
      close (fd);
      goto out;
    }
    close (fd);
    ret = 0;
  }

out:
  OPENSSL_cleanse (key, sizeof (key));
  OPENSSL_cleanse (hex, sizeof (hex));
  return ret;
}
