/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writes valid packets for the fuzz target's fixed SAs into a directory:
 * the seed corpus in tests/fuzz/corpus/esp-unprotect was made with it.
 *   make-corpus DIR
 * With `make-corpus DIR mike`: frames of the MIKE fuzz target's controller
 * (tests/fuzz/corpus/mike); `rekey`: rekey channel datagrams; `controller`:
 * what members send to the controller target (tests/fuzz/corpus/controller:
 * byte 0 picks the identity and group, then frames); `lkh-import`: key
 * tree exports (a tree of degree 4 after joins and leaves, one of degree 2,
 * an empty one).
 */
#include <stdio.h>
#include <string.h>

#include <mcsec/mcsec.h>

#include <mcsec/mcsec-lkh.h>
#include <mcsec/mcsec-rekey.h>

#include "fuzz-mike.h"

static const uint8_t fuzz_key[20] = {0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65,
                                     0x79, 0x2d, 0x6d, 0x63, 0x73, 0x65, 0x63,
                                     0x2d, 0x31, 0x73, 0x61, 0x6c, 0x74};

static int
write_file (const char *dir, const char *name, const uint8_t *data, size_t len)
{
  char path[512];
  FILE *f;

  snprintf (path, sizeof (path), "%s/%s", dir, name);
  f = fopen (path, "wb");
  if (f == NULL || fwrite (data, 1, len, f) != len)
    return 1;
  return fclose (f) != 0;
}

static int tree_corpus (const char *dir, EVP_PKEY *ctl, uint32_t spi,
                        const char *prefix, int path_alone);

/* Updates, a ping, an eviction and a refusal signed by / from the fuzz
 * target's controller. */
static int
mike_corpus (const char *dir)
{
  EVP_PKEY *ctl = fuzz_mike_controller_key ();
  uint8_t buf[4096], two[8192], key[20];
  size_t len, len2;
  mcsec_mike_builder_t b;
  int rc = 0;

  if (ctl == NULL)
    return 1;
  memset (key, 0x42, sizeof key);
  for (int n = 0; n < 3; n++) {
    mcsec_mike_sa_t sa = {0x1000 + (uint32_t)n,
                          MCSEC_SUITE_AES_128_GCM,
                          (uint32_t)n * 300,
                          3600,
                          key,
                          sizeof key};
    char name[32];
    mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_UPDATE);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, FUZZ_MIKE_GROUP);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 10 + (uint64_t)n);
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 1000);
    mcsec_mike_put_sa (&b, &sa);
    if (n > 0) {
      sa.spi = 0x0fff + (uint32_t)n;
      sa.activate_in_ms = 0;
      mcsec_mike_put_sa (&b, &sa);
    }
    mcsec_mike_put_sender (&b, 5, buf + 40, 44); /* not a key: a bad one */
    mcsec_mike_sign (&b, ctl);
    if (mcsec_mike_finish (&b, &len))
      return 1;
    snprintf (name, sizeof name, "update-%d.bin", n);
    rc |= write_file (dir, name, buf, len);
    if (n == 1) { /* two updates in one stream */
      memcpy (two, buf, len);
      len2 = len;
    }
    if (n == 2) {
      memcpy (two + len2, buf, len);
      rc |= write_file (dir, "two-updates.bin", two, len2 + len);
    }
  }
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_PING);
  rc |= mcsec_mike_finish (&b, &len) || write_file (dir, "ping.bin", buf, len);
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_EVICTED);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, MCSEC_MIKE_REASON_EVICTED);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_TEXT, "evicted");
  rc |=
      mcsec_mike_finish (&b, &len) || write_file (dir, "evicted.bin", buf, len);
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REFUSE);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, MCSEC_MIKE_REASON_DUPLICATE);
  rc |=
      mcsec_mike_finish (&b, &len) || write_file (dir, "refuse.bin", buf, len);
  len = fuzz_mike_welcome (ctl, 0, buf, sizeof buf);
  rc |= len == 0 || write_file (dir, "welcome.bin", buf, len);
  len = fuzz_mike_welcome_ex (ctl, 0, 1, buf, sizeof buf);
  rc |= len == 0 || write_file (dir, "welcome-spi-per-sender.bin", buf, len);
  /* per-sender SPIs: an SA that is a block's base (0x30000, Sender-ID bits
   * 16: the fuzz target's members are then of such a group), then one that
   * is not */
  for (int n = 0; n < 2; n++) {
    mcsec_mike_sa_t sa = {
        0x30000 + (uint32_t)n, MCSEC_SUITE_AES_128_GCM, 0, 3600, key, 20};
    mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_UPDATE);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, FUZZ_MIKE_GROUP);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 40 + (uint64_t)n);
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 1000);
    mcsec_mike_put_sa (&b, &sa);
    mcsec_mike_sign (&b, ctl);
    if (mcsec_mike_finish (&b, &len))
      return 1;
    if (n == 0)
      memcpy (two, buf, len2 = len);
    else
      memcpy (two + len2, buf, len);
  }
  rc |= write_file (dir, "per-sender-updates.bin", two, len2 + len);
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REKEY);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, FUZZ_MIKE_GROUP);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 20);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART, 1);
  for (int i = 0; i < 3; i++) {
    uint8_t v[MCSEC_MIKE_WRAPPED_KEY_LEN];
    memset (v, 0x10 + i, sizeof v);
    mcsec_mike_put (&b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v);
  }
  mcsec_mike_sign (&b, ctl);
  rc |= mcsec_mike_finish (&b, &len) || write_file (dir, "rekey.bin", buf, len);
  rc |= tree_corpus (dir, ctl, 0x2000, "tree-path", 1);
  /* per-sender SPIs (an SA whose low 16 bits are zero takes the fuzz
   * target's members to such a group): the path's SA is a block's base,
   * the rekey's is not */
  rc |= tree_corpus (dir, ctl, 0x20000, "tree-per-sender-path", 0);
  EVP_PKEY_free (ctl);
  return rc;
}

/* A key tree group's member: its path (a real tree, so the rekey that
 * follows opens), then a rekey of that tree repaired over the connection
 * (PREFIX-rekey.bin, and with path_alone the path alone, PREFIX.bin); the
 * SA is spi, the rekey's spi + 1. */
static int
tree_corpus (const char *dir, EVP_PKEY *ctl, uint32_t spi, const char *prefix,
             int path_alone)
{
  char name[64];
  mcsec_lkh_t *t;
  mcsec_rekey_tx_t *tx;
  mcsec_lkh_key_t path[MCSEC_MIKE_MAX_PATH];
  const mcsec_lkh_entry_t *e;
  uint8_t buf[8192], key[20];
  uint32_t me, other;
  size_t n, len, np;
  uint64_t seq;
  unsigned parts;
  mcsec_mike_builder_t b;
  mcsec_mike_sa_t sa = {spi, MCSEC_SUITE_AES_128_GCM, 0, 60, key, 20};
  mcsec_rekey_t r = {0};
  int rc = 0;

  memset (key, 0x24, sizeof key);
  if (mcsec_lkh_new (2, &t) || mcsec_lkh_join (t, &me) ||
      mcsec_lkh_join (t, &other) || mcsec_lkh_commit (t, &e, &n) ||
      mcsec_rekey_tx_new (FUZZ_MIKE_GROUP, ctl, 7, &tx))
    return 1;
  np = mcsec_lkh_path (t, me, path, MCSEC_MIKE_MAX_PATH);
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, FUZZ_MIKE_GROUP);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 30);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 1000);
  mcsec_mike_put_sa (&b, &sa);
  for (size_t i = 0; i < np; i++)
    mcsec_mike_put_path_key (&b, path[i].node, path[i].key);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_NEXT_REKEY, 7);
  mcsec_mike_sign (&b, ctl);
  if (mcsec_mike_finish (&b, &len) || mcsec_lkh_leave (t, other) ||
      mcsec_lkh_commit (t, &e, &n))
    return 1;
  sa.key = NULL;
  sa.key_len = 0;
  sa.spi++;
  r.entries = e;
  r.n = n;
  r.sa = &sa;
  r.deactivation_ms = 1000;
  if (mcsec_rekey_tx_publish (tx, &r, &seq, &parts) || parts != 1)
    return 1;
  snprintf (name, sizeof name, "%s.bin", prefix);
  if (path_alone)
    rc |= write_file (dir, name, buf, len);
  {
    const uint8_t *d;
    size_t dl = mcsec_rekey_tx_datagram (tx, seq, 0, &d);
    memcpy (buf + len, d, dl);
    snprintf (name, sizeof name, "%s-rekey.bin", prefix);
    rc |= write_file (dir, name, buf, len + dl);
  }
  mcsec_rekey_tx_free (tx);
  mcsec_lkh_free (t);
  return rc;
}

/* Rekey channel inputs: [len (2) | datagram]... from a transmitter with the
 * fuzz controller's key: two rekeys (one of 3 parts), a heartbeat. */
static int
rekey_corpus (const char *dir)
{
  EVP_PKEY *ctl = fuzz_mike_controller_key ();
  mcsec_rekey_tx_t *tx;
  mcsec_lkh_entry_t e[80];
  uint8_t out[16384], hb[256];
  size_t len = 0, hb_len;
  uint64_t seq;
  unsigned parts;
  int rc = 0;

  if (ctl == NULL || mcsec_rekey_tx_new (FUZZ_MIKE_GROUP, ctl, 1, &tx))
    return 1;
  for (int i = 0; i < 80; i++) {
    e[i].node = (uint32_t)i / 4;
    e[i].wrapper = (uint32_t)i + 100;
    memset (e[i].wrapped, i, sizeof e[i].wrapped);
  }
  for (int r = 0; r < 2; r++) {
    static const uint8_t spki[44] = {0x30, 0x2a};
    mcsec_mike_sender_t senders[2] = {{3, spki, sizeof spki},
                                      {4, spki, sizeof spki}};
    mcsec_mike_sa_t sa = {0x1234, MCSEC_SUITE_AES_128_GCM, 500, 60, NULL, 0};
    mcsec_rekey_t rk = {e, r ? 80u : 5u, &sa, 2000, senders, r ? 2u : 0u};
    if (mcsec_rekey_tx_publish (tx, &rk, &seq, &parts))
      return 1;
    for (unsigned p = parts; p-- > 0;) { /* last part first */
      const uint8_t *d;
      size_t dl = mcsec_rekey_tx_datagram (tx, seq, p, &d);
      if (len + 2 + dl > sizeof out)
        return 1;
      out[len] = (uint8_t)(dl >> 8);
      out[len + 1] = (uint8_t)dl;
      memcpy (out + len + 2, d, dl);
      len += 2 + dl;
    }
  }
  rc |= write_file (dir, "two-rekeys.bin", out, len);
  if (mcsec_rekey_tx_heartbeat (tx, hb, sizeof hb, &hb_len))
    return 1;
  out[0] = (uint8_t)(hb_len >> 8);
  out[1] = (uint8_t)hb_len;
  memcpy (out + 2, hb, hb_len);
  rc |= write_file (dir, "heartbeat.bin", out, hb_len + 2);
  mcsec_rekey_tx_free (tx);
  EVP_PKEY_free (ctl);
  return rc;
}

/* Member to controller: [who] JOIN ... frames. */
static size_t
put_simple (uint8_t *out, size_t cap, mcsec_mike_type_t type, int with_seq,
            uint64_t seq)
{
  mcsec_mike_builder_t b;
  size_t len;
  mcsec_mike_begin (&b, out, cap, type);
  if (with_seq)
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  return mcsec_mike_finish (&b, &len) == MCSEC_OK ? len : 0;
}

static int
controller_corpus (const char *dir)
{
  EVP_PKEY *sam = fuzz_mike_controller_key ();
  uint8_t spki[MCSEC_MIKE_MAX_SPKI], out[4096];
  size_t spki_len;
  int rc = 0;

  if (sam == NULL ||
      mcsec_mike_public_key_der (sam, spki, sizeof spki, &spki_len) != MCSEC_OK)
    return 1;
  /* who: bits 0-1 cam1, rx1, rx2, eve; bit 2 the key tree group */
  for (int who = 0; who < 8; who++) {
    mcsec_mike_builder_t b;
    size_t len = 1, n;
    char name[32];
    out[0] = (uint8_t)who;
    mcsec_mike_begin (&b, out + len, sizeof out - len, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, (who & 4) ? "tv" : "video");
    if ((who & 3) == 0) {
      mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_BOTH);
      mcsec_mike_put (&b, MCSEC_MIKE_A_SIGNING_KEY, spki, spki_len);
      mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_COUNT, 2);
    } else {
      mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
    }
    if (mcsec_mike_finish (&b, &n))
      return 1;
    len += n;
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_ACK, 1, 1);
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_PING, 0, 0);
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_REPAIR, 1, 0);
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_REPAIR, 1, 1);
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_REPAIR, 1,
                       1u << 20);
    len += put_simple (out + len, sizeof out - len, MCSEC_MIKE_LEAVE, 0, 0);
    snprintf (name, sizeof name, "session-%d.bin", who);
    rc |= write_file (dir, name, out, len);
  }
  EVP_PKEY_free (sam);
  return rc;
}

/* Exports of committed trees (tests/fuzz/corpus/lkh-import). */
static int
lkh_corpus (const char *dir)
{
  static const unsigned degree[] = {4, 2, 3};
  static const unsigned joins[] = {40, 9, 0};
  int rc = 0;
  for (int k = 0; k < 3; k++) {
    mcsec_lkh_t *t = NULL;
    const mcsec_lkh_entry_t *e;
    uint32_t leaf[40];
    uint8_t buf[4096];
    char name[32];
    size_t n, len;
    if (mcsec_lkh_new (degree[k], &t))
      return 1;
    for (unsigned i = 0; i < joins[k]; i++)
      rc |= mcsec_lkh_join (t, &leaf[i]) != MCSEC_OK;
    for (unsigned i = 0; i < joins[k]; i += 3)
      rc |= mcsec_lkh_leave (t, leaf[i]) != MCSEC_OK;
    rc |= mcsec_lkh_commit (t, &e, &n) != MCSEC_OK;
    len = mcsec_lkh_export_len (t);
    rc |= len == 0 || len > sizeof buf || mcsec_lkh_export (t, buf, len);
    snprintf (name, sizeof name, "tree-%u-%u.bin", degree[k], joins[k]);
    rc |= rc || write_file (dir, name, buf, len);
    /* a log: that snapshot, then the changes of two commits */
    if (joins[k]) {
      uint8_t logbuf[8192];
      size_t pos = 0;
      for (int part = 0; part < 3 && !rc; part++) {
        size_t l = len;
        if (part) {
          rc |= mcsec_lkh_join (t, &leaf[0]) != MCSEC_OK ||
                mcsec_lkh_leave (t, leaf[part]) != MCSEC_OK ||
                mcsec_lkh_commit (t, &e, &n) != MCSEC_OK;
          l = mcsec_lkh_changes_len (t);
          rc |= l == 0 || l > sizeof buf ||
                mcsec_lkh_export_changes (t, buf, l) != MCSEC_OK;
        } else {
          mcsec_lkh_changes_clear (t);
        }
        rc |= pos + 2 + l > sizeof logbuf;
        if (rc)
          break;
        logbuf[pos] = (uint8_t)(l >> 8);
        logbuf[pos + 1] = (uint8_t)l;
        memcpy (logbuf + pos + 2, buf, l);
        pos += 2 + l;
      }
      snprintf (name, sizeof name, "log-%u-%u.bin", degree[k], joins[k]);
      rc |= rc || write_file (dir, name, logbuf, pos);
    }
    mcsec_lkh_free (t);
  }
  return rc;
}

int
main (int argc, char **argv)
{
  static const size_t sizes[] = {0, 1, 3, 12, 172};
  mcsec_sa_config_t cfg = {0};
  uint8_t payload[200], pkt[300];
  char path[512];

  if (argc == 3 && strcmp (argv[2], "mike") == 0)
    return mike_corpus (argv[1]);
  if (argc == 3 && strcmp (argv[2], "rekey") == 0)
    return rekey_corpus (argv[1]);
  if (argc == 3 && strcmp (argv[2], "controller") == 0)
    return controller_corpus (argv[1]);
  if (argc == 3 && strcmp (argv[2], "lkh-import") == 0)
    return lkh_corpus (argv[1]);
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
