/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * esp-vector-tool: a command-line face of the SA for test_vectors.py, which
 * builds the same packets with an independent implementation (Python's
 * `cryptography`) and compares.
 *
 *   esp-vector-tool protect SUITE KEYHEX SPI SID_BITS SENDER_ID COUNTER NH
 *                   PAYLOADHEX
 *       prints the packet in hex
 *   esp-vector-tool unprotect SUITE KEYHEX SPI SID_BITS PACKETHEX...
 *       prints, per packet, "ok SENDER_ID COUNTER NH PAYLOADHEX" or the
 *       status name; replay state carries across the packets of one call
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mcsec/mcsec.h>

static size_t
unhex (const char *s, uint8_t *out, size_t max)
{
  size_t n = strlen (s) / 2;
  if (strlen (s) % 2 || n > max)
    exit (2);
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf (s + 2 * i, "%2x", &v) != 1)
      exit (2);
    out[i] = (uint8_t)v;
  }
  return n;
}

static void
print_hex (const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    printf ("%02x", p[i]);
}

static int
has_suffix (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcmp (s + n - m, suffix) == 0;
}

int
main (int argc, char **argv)
{
  static uint8_t key[64], in[MCSEC_ESP_MAX_PACKET_LEN],
      out[MCSEC_ESP_MAX_PACKET_LEN];
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  mcsec_status_t st;

  if (argc < 6)
    return 2;
  /* "COMMAND-per-sender": an SA with a per-sender SPI block */
  if (has_suffix (argv[1], "-per-sender")) {
    cfg.spi_per_sender = 1;
    argv[1][strlen (argv[1]) - strlen ("-per-sender")] = '\0';
  }
  cfg.suite = mcsec_suite_from_name (argv[2]);
  cfg.key_len = unhex (argv[3], key, sizeof (key));
  cfg.key = key;
  cfg.spi = (uint32_t)strtoul (argv[4], NULL, 0);
  if (strncmp (argv[1], "unprotect-standard", 18) == 0) {
    /* a standard SA (opaque IV, one sender): argv[5] is the window */
    cfg.type = MCSEC_SA_TYPE_STANDARD;
    cfg.esn = strcmp (argv[1], "unprotect-standard-esn") == 0;
    cfg.replay_window = (uint32_t)strtoul (argv[5], NULL, 0);
  } else {
    cfg.sender_id_bits = (uint8_t)strtoul (argv[5], NULL, 0);
  }
  st = mcsec_sa_new (&cfg, &sa);
  if (st) {
    printf ("%s\n", mcsec_status_name (st));
    return 1;
  }
  if ((strcmp (argv[1], "protect") == 0 && argc == 10) ||
      (strcmp (argv[1], "protect-prefixed") == 0 && argc == 11)) {
    /* protect-prefixed: argv[9] is the prefix (the inner UDP header) */
    uint8_t prefix[MCSEC_PREFIX_MAX];
    size_t plen = argc == 11 ? unhex (argv[9], prefix, sizeof (prefix)) : 0;
    size_t n = unhex (argv[argc - 1], in, sizeof (in)), len;
    st = mcsec_sa_set_sender (sa, (uint32_t)strtoul (argv[6], NULL, 0),
                              strtoull (argv[7], NULL, 0), 0);
    if (st == MCSEC_OK)
      st = mcsec_sa_protect_prefixed (sa, (uint8_t)strtoul (argv[8], NULL, 0),
                                      prefix, plen, in, n, out, sizeof (out),
                                      &len, NULL);
    if (st)
      printf ("%s\n", mcsec_status_name (st));
    else
      print_hex (out, len), printf ("\n");
  } else if (strncmp (argv[1], "unprotect", 9) == 0) {
    for (int a = 6; a < argc; a++) {
      size_t n = unhex (argv[a], in, sizeof (in));
      mcsec_rx_info_t info;
      st = mcsec_sa_unprotect (sa, in, n, out, sizeof (out), &info);
      if (st) {
        printf ("%s\n", mcsec_status_name (st));
        continue;
      }
      printf ("ok %u %llu %u ", info.sender_id,
              (unsigned long long)info.counter, info.next_header);
      print_hex (out, info.payload_len);
      printf ("\n");
    }
  } else {
    mcsec_sa_free (sa);
    return 2;
  }
  mcsec_sa_free (sa);
  return 0;
}
