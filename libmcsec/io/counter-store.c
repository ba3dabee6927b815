/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * counter-store.c: durable counter reservations, so that a sender restarted
 * with the same static key never repeats a (key, nonce) pair.
 *
 * The file holds two 32-byte slots (A at offset 0, B at 32):
 *
 *   magic "MCSECCTR" (8) | version (4, BE) | generation (4, BE) |
 *   limit (8, BE) | check (8): the first 8 bytes of SHA-256 of the 24 before
 *
 * `limit` is the first counter no process was ever allowed to use.  The
 * valid slot with the highest generation wins; each write goes to the other
 * slot and is fsync'ed before the new counters are handed out, so a torn
 * write leaves the previous slot intact.  Counters are handed out only
 * after the fsync, so a torn write never loses a reservation that was used.
 * A damaged slot found next to a valid one (a torn write, or damage after
 * the fact) makes the store skip MCSEC_COUNTER_STORE_DAMAGE_SKIP counters,
 * more than any one reservation (blocks are at most that large), so even a
 * record damaged after it was used cannot bring its counters back.  A file
 * whose slots are both invalid is refused rather than guessed.  flock() keeps a
 * second process out while the store is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mcsec-private.h"

struct mcsec_counter_store {
  int fd;
  uint64_t block;
  uint64_t limit;
  uint32_t generation;
};

static int
compute_check (const uint8_t *slot, uint8_t *check)
{
  uint8_t md[32];
  unsigned int md_len = 0;

  if (EVP_Digest (slot, 24, md, &md_len, EVP_sha256 (), NULL) != 1)
    return -1;
  memcpy (check, md, 8);
  return 0;
}

static int
slot_parse (const uint8_t *slot, uint32_t *generation, uint64_t *limit)
{
  uint8_t check[8];

  if (memcmp (slot, MCSEC_COUNTER_STORE_MAGIC, 8) != 0)
    return -1;
  if (mcsec_load_be32 (slot + 8) != MCSEC_COUNTER_STORE_VERSION)
    return -1;
  if (compute_check (slot, check) != 0 || memcmp (check, slot + 24, 8) != 0)
    return -1;
  *generation = mcsec_load_be32 (slot + 12);
  *limit = mcsec_load_be64 (slot + 16);
  return 0;
}

static mcsec_status_t
write_slot (mcsec_counter_store_t *s, uint64_t limit)
{
  uint8_t slot[MCSEC_COUNTER_STORE_SLOT_LEN];
  uint32_t gen = s->generation + 1;
  off_t off =
      (off_t)(gen % MCSEC_COUNTER_STORE_SLOTS) * MCSEC_COUNTER_STORE_SLOT_LEN;
  ssize_t n;

  memcpy (slot, MCSEC_COUNTER_STORE_MAGIC, 8);
  mcsec_store_be32 (slot + 8, MCSEC_COUNTER_STORE_VERSION);
  mcsec_store_be32 (slot + 12, gen);
  mcsec_store_be64 (slot + 16, limit);
  if (compute_check (slot, slot + 24) != 0)
    return MCSEC_ERR_CRYPTO;
  do {
    n = pwrite (s->fd, slot, sizeof (slot), off);
  } while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof (slot) || fsync (s->fd) != 0)
    return MCSEC_ERR_IO;
  s->generation = gen;
  s->limit = limit;
  return MCSEC_OK;
}

static mcsec_status_t
reserve (mcsec_counter_store_t *s, uint64_t *first, uint64_t *limit)
{
  uint64_t start = s->limit;
  mcsec_status_t st;

  if (start > UINT64_MAX - s->block)
    return MCSEC_ERR_COUNTER_EXHAUSTED;
  st = write_slot (s, start + s->block);
  if (st)
    return st;
  if (first)
    *first = start;
  *limit = s->limit;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_counter_store_open (const char *path, uint64_t block,
                          mcsec_counter_store_t **out, uint64_t *first,
                          uint64_t *limit)
{
  uint8_t buf[MCSEC_COUNTER_STORE_SLOT_LEN * MCSEC_COUNTER_STORE_SLOTS];
  mcsec_counter_store_t *s;
  struct stat sb;
  ssize_t n;
  static const uint8_t zero[MCSEC_COUNTER_STORE_SLOT_LEN];
  int valid = 0, damaged = 0;
  mcsec_status_t st = MCSEC_ERR_IO;

  if (path == NULL || out == NULL || first == NULL || limit == NULL ||
      block > MCSEC_COUNTER_STORE_DAMAGE_SKIP)
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  s = calloc (1, sizeof (*s));
  if (s == NULL)
    return MCSEC_ERR_NO_MEMORY;
  s->block = block ? block : MCSEC_COUNTER_STORE_BLOCK_DEFAULT;
  s->limit = MCSEC_COUNTER_FIRST;
  s->fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->fd < 0)
    goto fail;
  if (flock (s->fd, LOCK_EX | LOCK_NB) != 0) {
    st = errno == EWOULDBLOCK ? MCSEC_ERR_LOCKED : MCSEC_ERR_IO;
    goto fail;
  }
  if (fstat (s->fd, &sb) != 0)
    goto fail;
  if (sb.st_size != 0) {
    memset (buf, 0, sizeof (buf));
    n = pread (s->fd, buf, sizeof (buf), 0);
    if (n < 0)
      goto fail;
    for (int i = 0; i < MCSEC_COUNTER_STORE_SLOTS; i++) {
      uint32_t gen;
      uint64_t lim;
      const uint8_t *slot = buf + i * MCSEC_COUNTER_STORE_SLOT_LEN;
      if (slot_parse (slot, &gen, &lim) != 0) {
        /* an all-zero slot was never written */
        damaged |= memcmp (slot, zero, sizeof (zero)) != 0;
        continue;
      }
      if (!valid || gen > s->generation) {
        s->generation = gen;
        s->limit = lim;
      }
      valid = 1;
    }
    if (!valid) {
      st = MCSEC_ERR_CORRUPT_STATE;
      goto fail;
    }
    if (damaged) {
      if (s->limit > UINT64_MAX - MCSEC_COUNTER_STORE_DAMAGE_SKIP) {
        st = MCSEC_ERR_COUNTER_EXHAUSTED;
        goto fail;
      }
      s->limit += MCSEC_COUNTER_STORE_DAMAGE_SKIP;
    }
  }
  st = reserve (s, first, limit);
  if (st)
    goto fail;
  *out = s;
  return MCSEC_OK;

fail:
  mcsec_counter_store_close (s);
  return st;
}

mcsec_status_t
mcsec_counter_store_extend (mcsec_counter_store_t *store, uint64_t *limit)
{
  if (store == NULL || limit == NULL)
    return MCSEC_ERR_INVALID_ARG;
  return reserve (store, NULL, limit);
}

void
mcsec_counter_store_close (mcsec_counter_store_t *store)
{
  if (store == NULL)
    return;
  if (store->fd >= 0)
    close (store->fd); /* releases the lock */
  free (store);
}
