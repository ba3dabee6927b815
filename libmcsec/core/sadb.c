/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * sadb.c: the SA database, keyed by SPI.  It holds a handful of SAs (the
 * current and next key of a few groups), so it is an open-addressing table
 * with linear probing and backward-shift deletion, kept at most half full.
 */
#include <stdlib.h>
#include <string.h>

#include "mcsec-private.h"

/* SAs whose SPI is the base of a block (spi_per_sender) are found by the
 * SPI of any packet of the block: after an exact miss, by the base under
 * each block mask in use (a group's Sender-ID width: one or two). */
#define MAX_MASKS 4

struct mcsec_sadb {
  size_t count;
  size_t capacity; /* power of two */
  mcsec_sa_t **slots;
  uint32_t masks[MAX_MASKS]; /* the distinct block masks in use */
  unsigned n_masks;
};

static inline size_t
home_of (const mcsec_sadb_t *db, uint32_t spi)
{
  return (size_t)((spi * UINT32_C (0x9e3779b1)) >> 8) & (db->capacity - 1);
}

mcsec_status_t
mcsec_sadb_new (mcsec_sadb_t **out)
{
  mcsec_sadb_t *db;

  if (out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  db = calloc (1, sizeof (*db));
  if (db == NULL)
    return MCSEC_ERR_NO_MEMORY;
  db->capacity = 8;
  db->slots = calloc (db->capacity, sizeof (*db->slots));
  if (db->slots == NULL) {
    free (db);
    return MCSEC_ERR_NO_MEMORY;
  }
  *out = db;
  return MCSEC_OK;
}

void
mcsec_sadb_free (mcsec_sadb_t *db)
{
  if (db == NULL)
    return;
  for (size_t i = 0; i < db->capacity; i++)
    mcsec_sa_free (db->slots[i]);
  free (db->slots);
  free (db);
}

static size_t
find_slot (const mcsec_sadb_t *db, uint32_t spi)
{
  size_t i = home_of (db, spi);

  while (db->slots[i] != NULL && mcsec_sa_spi (db->slots[i]) != spi)
    i = (i + 1) & (db->capacity - 1);
  return i;
}

/* The SA of exactly this SPI, or NULL. */
static mcsec_sa_t *
lookup_exact (const mcsec_sadb_t *db, uint32_t spi)
{
  return db->slots[find_slot (db, spi)];
}

mcsec_sa_t *
mcsec_sadb_lookup (const mcsec_sadb_t *db, uint32_t spi)
{
  mcsec_sa_t *sa;

  if (db == NULL)
    return NULL;
  sa = lookup_exact (db, spi);
  for (unsigned i = 0; sa == NULL && i < db->n_masks; i++) {
    sa = lookup_exact (db, spi & ~db->masks[i]);
    if (sa && mcsec_sa_spi_mask (sa) != db->masks[i])
      sa = NULL; /* a base under another mask, or an SA of its own */
  }
  return sa;
}

/* The block masks in use, from the SAs (after an add or a remove). */
static void
update_masks (mcsec_sadb_t *db)
{
  db->n_masks = 0;
  for (size_t i = 0; i < db->capacity; i++) {
    uint32_t m = db->slots[i] ? mcsec_sa_spi_mask (db->slots[i]) : 0;
    unsigned j = 0;
    if (m == 0)
      continue;
    while (j < db->n_masks && db->masks[j] != m)
      j++;
    if (j == db->n_masks)
      db->masks[db->n_masks++] = m; /* add() keeps them at most MAX_MASKS */
  }
}

/* Does the SPI range [lo, lo | mask] hold the SPI of an SA, or lie in an
 * SA's block? */
static int
overlaps (const mcsec_sadb_t *db, uint32_t lo, uint32_t mask)
{
  for (size_t i = 0; i < db->capacity; i++) {
    const mcsec_sa_t *sa = db->slots[i];
    uint32_t b, bm;
    if (sa == NULL)
      continue;
    b = mcsec_sa_spi (sa);
    bm = mcsec_sa_spi_mask (sa);
    /* two ranges [b, b | bm] and [lo, lo | mask], both aligned */
    if ((b & ~mask) == lo || (lo & ~bm) == b)
      return 1;
  }
  return 0;
}

static mcsec_status_t
grow (mcsec_sadb_t *db)
{
  mcsec_sa_t **old = db->slots;
  size_t old_cap = db->capacity;

  db->slots = calloc (old_cap * 2, sizeof (*db->slots));
  if (db->slots == NULL) {
    db->slots = old;
    return MCSEC_ERR_NO_MEMORY;
  }
  db->capacity = old_cap * 2;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i] != NULL)
      db->slots[find_slot (db, mcsec_sa_spi (old[i]))] = old[i];
  free (old);
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sadb_add (mcsec_sadb_t *db, mcsec_sa_t *sa)
{
  size_t i;
  mcsec_status_t st;

  if (db == NULL || sa == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (mcsec_sadb_lookup (db, mcsec_sa_spi (sa)) != NULL ||
      overlaps (db, mcsec_sa_spi (sa), mcsec_sa_spi_mask (sa)))
    return MCSEC_ERR_SPI_EXISTS;
  if (mcsec_sa_spi_mask (sa) != 0) {
    unsigned j = 0;
    while (j < db->n_masks && db->masks[j] != mcsec_sa_spi_mask (sa))
      j++;
    if (j == MAX_MASKS)
      return MCSEC_ERR_INVALID_ARG; /* more Sender-ID widths than any use */
  }
  if ((db->count + 1) * 2 > db->capacity) {
    st = grow (db);
    if (st)
      return st;
  }
  i = find_slot (db, mcsec_sa_spi (sa));
  db->slots[i] = sa;
  db->count++;
  if (mcsec_sa_spi_mask (sa) != 0)
    update_masks (db);
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sadb_remove (mcsec_sadb_t *db, uint32_t spi)
{
  size_t mask, i, j;
  int blocked;

  if (db == NULL)
    return MCSEC_ERR_INVALID_ARG;
  mask = db->capacity - 1;
  i = find_slot (db, spi);
  if (db->slots[i] == NULL)
    return MCSEC_ERR_UNKNOWN_SPI;
  blocked = mcsec_sa_spi_mask (db->slots[i]) != 0;
  mcsec_sa_free (db->slots[i]);
  db->slots[i] = NULL;
  db->count--;
  /* Backward shift: move later entries of the cluster into the hole when
   * their home slot does not lie cyclically in (hole, j]. */
  for (j = (i + 1) & mask; db->slots[j] != NULL; j = (j + 1) & mask) {
    size_t home = home_of (db, mcsec_sa_spi (db->slots[j]));
    int in_between =
        (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (!in_between) {
      db->slots[i] = db->slots[j];
      db->slots[j] = NULL;
      i = j;
    }
  }
  if (blocked)
    update_masks (db);
  return MCSEC_OK;
}

size_t
mcsec_sadb_count (const mcsec_sadb_t *db)
{
  return db ? db->count : 0;
}

static mcsec_status_t
sadb_unprotect (mcsec_sadb_t *db, const uint8_t *packet, size_t len,
                uint8_t *out, size_t out_size, mcsec_rx_info_t *info,
                int accept)
{
  mcsec_sa_t *sa;

  if (db == NULL || packet == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (len < MCSEC_ESP_MIN_PACKET_LEN) {
    if (info)
      memset (info, 0, sizeof (*info));
    return MCSEC_ERR_TOO_SHORT;
  }
  sa = mcsec_sadb_lookup (db, mcsec_packet_spi (packet, len));
  if (sa == NULL) {
    if (info) {
      memset (info, 0, sizeof (*info));
      info->spi = mcsec_packet_spi (packet, len);
    }
    return MCSEC_ERR_UNKNOWN_SPI;
  }
  return accept ? mcsec_sa_unprotect (sa, packet, len, out, out_size, info)
                : mcsec_sa_unprotect_tentative (sa, packet, len, out, out_size,
                                                info);
}

mcsec_status_t
mcsec_sadb_unprotect (mcsec_sadb_t *db, const uint8_t *packet, size_t len,
                      uint8_t *out, size_t out_size, mcsec_rx_info_t *info)
{
  return sadb_unprotect (db, packet, len, out, out_size, info, 1);
}

mcsec_status_t
mcsec_sadb_unprotect_tentative (mcsec_sadb_t *db, const uint8_t *packet,
                                size_t len, uint8_t *out, size_t out_size,
                                mcsec_rx_info_t *info)
{
  return sadb_unprotect (db, packet, len, out, out_size, info, 0);
}
