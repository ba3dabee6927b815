/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-keygen: print (or write to a 0600 file) fresh SA key material,
 * key || salt in hex, from RAND_bytes.  A file (--output) names its
 * cipher on a first line, "cipher=NAME", which the elements check against
 * their `cipher` property (docs/elements.md, "Key files"); standard output
 * gets the hex line alone (the `key` property's value).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>

#include <mcsec/mcsec.h>

static struct {
  gchar *cipher, *output;
  gboolean version;
} opt;

static const GOptionEntry entries[] = {
    {"cipher", 0, 0, G_OPTION_ARG_STRING, &opt.cipher,
     "aes-128-gcm (default), aes-256-gcm, chacha20-poly1305, aes-128-gmac, "
     "aes-256-gmac",
     "CIPHER"},
    /* its name before the elements' `cipher` property set the word */
    {"suite", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt.cipher, NULL,
     NULL},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &opt.output,
     "Write to FILE, created with mode 0600 (it must not exist yet), "
     "instead of standard output",
     "FILE"},
    {"version", 0, 0, G_OPTION_ARG_NONE, &opt.version, "Print the version",
     NULL},
    G_OPTION_ENTRY_NULL};

int
main (int argc, char **argv)
{
  GOptionContext *ctx = g_option_context_new (NULL);
  GError *error = NULL;
  const char *suite_name, *output;
  uint8_t key[MCSEC_MAX_KEY_MATERIAL_LEN];
  char hex[64 + 2 * MCSEC_MAX_KEY_MATERIAL_LEN + 2];
  size_t head = 0;
  mcsec_suite_t suite;
  size_t len, i;
  int ret = 1;
  mcsec_status_t st;

  g_option_context_set_summary (
      ctx, "Generate SA key material (cipher key || 4-byte salt) as hex, "
           "from RAND_bytes.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc > 1) {
    fprintf (stderr, "mcsec-keygen: %s (see mcsec-keygen --help)\n",
             error ? error->message : "unexpected argument");
    g_clear_error (&error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (opt.version) {
    printf ("mcsec-keygen %s\n", MCSEC_VERSION);
    return 0;
  }
  suite_name = opt.cipher ? opt.cipher : "aes-128-gcm";
  output = opt.output;
  suite = mcsec_suite_from_name (suite_name);
  if (suite == 0) {
    fprintf (stderr,
             "mcsec-keygen: --cipher: unknown cipher '%s' (aes-128-gcm, "
             "aes-256-gcm, chacha20-poly1305, aes-128-gmac, aes-256-gmac)\n",
             suite_name);
    return 2;
  }
  len = mcsec_suite_key_material_len (suite);
  st = mcsec_generate_key_material (suite, key, sizeof (key));
  if (st) {
    fprintf (stderr, "mcsec-keygen: %s\n", mcsec_status_message (st));
    goto out;
  }
  /* a file records its cipher; standard output is the hex alone */
  if (output)
    head = (size_t)snprintf (hex, 64, "cipher=%s\n", mcsec_suite_name (suite));
  for (i = 0; i < len; i++)
    snprintf (hex + head + 2 * i, 3, "%02x", key[i]);
  hex[head + 2 * len] = '\n';
  hex[head + 2 * len + 1] = '\0';

  if (output == NULL) {
    ret = fputs (hex, stdout) < 0 ? 1 : 0;
  } else {
    int fd = open (output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      fprintf (stderr, "mcsec-keygen: cannot create %s: %s\n", output,
               strerror (errno));
      goto out;
    }
    if (write (fd, hex, head + 2 * len + 1) != (ssize_t)(head + 2 * len + 1) ||
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
  g_free (opt.cipher);
  g_free (opt.output);
  return ret;
}
