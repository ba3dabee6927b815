/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-lkh: the key tree at 1,024, 65,536 and 1,048,576 members.  For
 * each size: the bytes and datagrams of the rekey as the channel sends it
 * (signed REKEY datagrams of at most 1,400 bytes, mcsec-rekey.h) and the
 * controller's CPU time for one leave, one join and a batch of 100 leaves;
 * the tree's memory; and, in the same run, flat rekeying (the new group
 * key wrapped under each remaining member's own key) for one leave.
 * Then what a cluster keeps in etcd for the group (docs/cluster.md, "Key
 * trees in etcd"): the snapshot's bytes (the tree's export and each
 * member's leaf by a 16-byte identity), its chunks of at most 1 MB, the
 * CPU to export, seal (AES-256-GCM, as seal.c) and open it, and to import
 * it (a new leader's load); the changes a commit writes (one leave, one
 * join, 100 leaves) and the import of the snapshot with the 100 leaves'
 * changes.
 *
 *   bench-lkh [--quick]   (--quick: 1,024 and 65,536 only)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <mcsec/mcsec-lkh.h>
#include <mcsec/mcsec-mike.h>
#include <mcsec/mcsec-rekey.h>

static EVP_PKEY *sign_key;

/* AES-256-GCM over len bytes, in place (the cluster key's seal, or its
 * open: the same cost); CPU seconds. */
static double cpu_now (void);
static double
seal_cost (uint8_t *data, size_t len, int enc)
{
  uint8_t key[32], iv[12], tag[16];
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
  int n = 0;
  double t0;
  RAND_bytes (key, sizeof key);
  RAND_bytes (iv, sizeof iv);
  t0 = cpu_now ();
  if (ctx == NULL ||
      EVP_CipherInit_ex (ctx, EVP_aes_256_gcm (), NULL, key, iv, enc) != 1)
    abort ();
  for (size_t off = 0; off < len; off += 1 << 20) {
    size_t part = len - off < (1u << 20) ? len - off : 1u << 20;
    if (EVP_CipherUpdate (ctx, data + off, &n, data + off, (int)part) != 1)
      abort ();
  }
  if (enc)
    EVP_CipherFinal_ex (ctx, tag, &n);
  t0 = cpu_now () - t0;
  EVP_CIPHER_CTX_free (ctx);
  return t0;
}
static mcsec_rekey_tx_t *tx;

static double
cpu_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The rekey as the controller sends it on the channel: the new SA (its
 * key derived from the new group key), one sender's Ed25519 key (the
 * broadcaster), the wrapped keys; signed datagrams of at most 1,400 bytes
 * (mcsec-rekey.h).  The bytes of all of them. */
static size_t
build_frame (const mcsec_lkh_entry_t *e, size_t n, const uint8_t *group_key,
             uint64_t seq, unsigned *datagrams)
{
  static const uint8_t spki[44] = {0x30, 0x2a};
  mcsec_mike_sender_t sender = {1, spki, sizeof spki};
  mcsec_mike_sa_t sa = {
      0x1000 + (uint32_t)seq, MCSEC_SUITE_AES_128_GCM, 500, 3600, NULL, 0};
  mcsec_rekey_t r = {e, n, &sa, 2000, &sender, 1};
  uint8_t key[MCSEC_MIKE_MAX_KEY_LEN];
  uint64_t s;
  unsigned parts;
  size_t total = 0;
  if (mcsec_lkh_derive_sa_key (group_key, "video", sa.spi, sa.suite, key,
                               mcsec_suite_key_material_len (sa.suite)) !=
          MCSEC_OK ||
      mcsec_rekey_tx_publish (tx, &r, &s, &parts) != MCSEC_OK)
    abort ();
  OPENSSL_cleanse (key, sizeof key);
  for (unsigned p = 0; p < parts; p++) {
    const uint8_t *d;
    total += mcsec_rekey_tx_datagram (tx, s, p, &d);
  }
  *datagrams = parts;
  return total;
}

typedef struct {
  double cpu_us;
  size_t bytes, entries;
  unsigned datagrams;
} rekey_t;

static rekey_t
commit_and_send (mcsec_lkh_t *t, double t0)
{
  const mcsec_lkh_entry_t *e;
  size_t n;
  rekey_t r;
  static uint64_t seq;
  if (mcsec_lkh_commit (t, &e, &n) != MCSEC_OK)
    abort ();
  r.bytes = build_frame (e, n, mcsec_lkh_group_key (t), ++seq, &r.datagrams);
  r.cpu_us = (cpu_now () - t0) * 1e6;
  r.entries = n;
  return r;
}

static void
bench_size (size_t members)
{
  mcsec_lkh_t *t;
  uint32_t *ids = malloc (members * sizeof *ids);
  double t0, build;
  rekey_t leave = {0}, join = {0}, batch, flat;
  size_t leave_changes = 0, join_changes = 0, batch_changes, snap_len,
         state_len;
  uint8_t *snap, *changes;
  double export_s, import_s, import_log_s, seal_s, open_s;
  uint64_t rnd = 0x9e3779b97f4a7c15ull;
  size_t alive = members;

  if (mcsec_lkh_new (4, &t) != MCSEC_OK || ids == NULL)
    abort ();
  t0 = cpu_now ();
  for (size_t i = 0; i < members; i++)
    if (mcsec_lkh_join (t, &ids[i]) != MCSEC_OK)
      abort ();
  {
    const mcsec_lkh_entry_t *e;
    size_t n;
    if (mcsec_lkh_commit (t, &e, &n) != MCSEC_OK)
      abort ();
  }
  build = cpu_now () - t0;
  mcsec_lkh_changes_clear (t);

  /* one leave (best of 5, different members) */
  leave.cpu_us = 1e9;
  for (int k = 0; k < 5; k++) {
    size_t pick;
    rekey_t r;
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;
    pick = (size_t)(rnd % alive);
    t0 = cpu_now ();
    if (mcsec_lkh_leave (t, ids[pick]) != MCSEC_OK)
      abort ();
    r = commit_and_send (t, t0);
    ids[pick] = ids[--alive];
    if (k == 0)
      leave_changes = mcsec_lkh_changes_len (t);
    mcsec_lkh_changes_clear (t);
    if (r.cpu_us < leave.cpu_us)
      leave = r;
  }
  /* one join */
  join.cpu_us = 1e9;
  for (int k = 0; k < 5; k++) {
    rekey_t r;
    t0 = cpu_now ();
    if (mcsec_lkh_join (t, &ids[alive]) != MCSEC_OK)
      abort ();
    r = commit_and_send (t, t0);
    alive++;
    if (k == 0)
      join_changes = mcsec_lkh_changes_len (t);
    mcsec_lkh_changes_clear (t);
    if (r.cpu_us < join.cpu_us)
      join = r;
  }
  /* the snapshot a new leader loads: the tree now, and each member's leaf
   * (4), identity length (2) and a 16-byte identity */
  snap_len = mcsec_lkh_export_len (t);
  snap = malloc (snap_len + members * 22 + 8);
  if (snap == NULL)
    abort ();
  t0 = cpu_now ();
  if (mcsec_lkh_export (t, snap, snap_len) != MCSEC_OK)
    abort ();
  export_s = cpu_now () - t0;
  state_len = 4 + snap_len + 4 + alive * 22;
  /* a batch of 100 leaves */
  t0 = cpu_now ();
  for (int k = 0; k < 100; k++) {
    size_t pick;
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;
    pick = (size_t)(rnd % alive);
    if (mcsec_lkh_leave (t, ids[pick]) != MCSEC_OK)
      abort ();
    ids[pick] = ids[--alive];
  }
  batch = commit_and_send (t, t0);
  batch_changes = mcsec_lkh_changes_len (t);
  changes = malloc (batch_changes);
  if (changes == NULL ||
      mcsec_lkh_export_changes (t, changes, batch_changes) != MCSEC_OK)
    abort ();
  {
    mcsec_lkh_t *t2 = NULL;
    size_t l2;
    uint8_t *again;
    const uint8_t *ch[1] = {changes};
    t0 = cpu_now ();
    if (mcsec_lkh_import (snap, snap_len, &t2) != MCSEC_OK)
      abort ();
    import_s = cpu_now () - t0;
    mcsec_lkh_free (t2);
    t0 = cpu_now ();
    if (mcsec_lkh_import_log (snap, snap_len, ch, &batch_changes, 1, &t2) !=
        MCSEC_OK)
      abort ();
    import_log_s = cpu_now () - t0;
    /* the log gives the tree as it is (checked, not assumed) */
    l2 = mcsec_lkh_export_len (t2);
    again = malloc (l2);
    if (again == NULL || l2 != mcsec_lkh_export_len (t) ||
        mcsec_lkh_export (t2, again, l2) != MCSEC_OK)
      abort ();
    {
      uint8_t *now = malloc (l2);
      if (now == NULL || mcsec_lkh_export (t, now, l2) != MCSEC_OK ||
          memcmp (now, again, l2) != 0)
        abort ();
      free (now);
    }
    free (again);
    mcsec_lkh_free (t2);
  }
  memset (snap + snap_len, 0x41, state_len - snap_len); /* the identities */
  seal_s = seal_cost (snap, state_len, 1);
  open_s = seal_cost (snap, state_len, 0);

  /* flat rekeying of one leave: the new group key under every remaining
   * member's own key */
  {
    mcsec_lkh_entry_t *e = malloc (alive * sizeof *e);
    uint8_t group[MCSEC_LKH_KEY_LEN], kek[MCSEC_LKH_KEY_LEN];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
    RAND_bytes (kek, sizeof kek); /* one stand-in member key: same cost */
    t0 = cpu_now ();
    RAND_bytes (group, sizeof group);
    for (size_t i = 0; i < alive; i++) {
      int len = 0, fin = 0;
      EVP_CIPHER_CTX_set_flags (ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
      EVP_EncryptInit_ex (ctx, EVP_aes_128_wrap (), NULL, kek, NULL);
      EVP_EncryptUpdate (ctx, e[i].wrapped, &len, group, sizeof group);
      EVP_EncryptFinal_ex (ctx, e[i].wrapped + len, &fin);
      e[i].node = 0;
      e[i].wrapper = ids[i];
    }
    flat.bytes = build_frame (e, alive, group, 1, &flat.datagrams);
    flat.cpu_us = (cpu_now () - t0) * 1e6;
    flat.entries = alive;
    EVP_CIPHER_CTX_free (ctx);
    free (e);
  }

  printf ("%8zu members, degree 4, depth %u, tree %.1f MB (built in %.2f s "
          "CPU)\n",
          members, mcsec_lkh_depth (t), mcsec_lkh_memory (t) / 1048576.0,
          build);
  printf ("   one leave : %6zu bytes in %u datagram(s) (%3zu wrapped keys), "
          "%6.0f us CPU | flat: %9zu bytes in %u, %9.0f us (%.0fx bytes, "
          "%.0fx CPU)\n",
          leave.bytes, leave.datagrams, leave.entries, leave.cpu_us, flat.bytes,
          flat.datagrams, flat.cpu_us, (double)flat.bytes / leave.bytes,
          flat.cpu_us / leave.cpu_us);
  printf ("   one join  : %6zu bytes in %u datagram(s) (%3zu wrapped keys), "
          "%6.0f us CPU\n",
          join.bytes, join.datagrams, join.entries, join.cpu_us);
  printf ("   100 leaves: %6zu bytes in %u datagrams (%4zu wrapped keys), "
          "%6.0f us CPU (one batch)\n",
          batch.bytes, batch.datagrams, batch.entries, batch.cpu_us);
  printf ("   in etcd   : snapshot %.2f MB (tree %.2f MB, leaves %.2f MB) in "
          "%zu chunk(s) of at most 1 MB; a commit's changes: one leave %zu "
          "bytes, one join %zu, 100 leaves %zu\n",
          state_len / 1e6, snap_len / 1e6, (state_len - snap_len) / 1e6,
          (state_len + 999999) / 1000000, leave_changes, join_changes,
          batch_changes);
  printf ("   new leader: export %.3f s, seal %.3f s, open %.3f s, import "
          "%.3f s, import with the 100 leaves' changes %.3f s (CPU)\n",
          export_s, seal_s, open_s, import_s, import_log_s);
  OPENSSL_cleanse (snap, state_len);
  OPENSSL_cleanse (changes, batch_changes);
  free (snap);
  free (changes);
  mcsec_lkh_free (t);
  free (ids);
}

int
main (int argc, char **argv)
{
  int quick = argc > 1 && strcmp (argv[1], "--quick") == 0;
  double t0 = cpu_now ();

  sign_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  if (sign_key == NULL ||
      mcsec_rekey_tx_new ("video", sign_key, 1, &tx) != MCSEC_OK)
    return 1;
  /* the floor for every message: one Ed25519 signature */
  {
    uint8_t sig[64], msg[1200] = {0};
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    double best = 1e9;
    for (int i = 0; i < 20; i++) {
      double s = cpu_now ();
      EVP_DigestSignInit (md, NULL, NULL, NULL, sign_key);
      EVP_DigestSign (md, sig, &sl, msg, sizeof msg);
      if (cpu_now () - s < best)
        best = cpu_now () - s;
    }
    EVP_MD_CTX_free (md);
    printf ("bench-lkh: key tree rekeying vs flat rekeying (same run); an "
            "Ed25519 signature of 1200 bytes costs %.0f us here\n",
            best * 1e6);
  }
  (void)t0;
  bench_size (1024);
  bench_size (65536);
  if (!quick)
    bench_size (1048576);
  mcsec_rekey_tx_free (tx);
  EVP_PKEY_free (sign_key);
  return 0;
}
