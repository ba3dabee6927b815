/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * replay.c: the anti-replay window of each (SPI, Sender-ID), and the table
 * that finds a sender's window in O(1).
 *
 * Window: `top` is the highest counter accepted; a ring of `window` bits
 * holds, for each counter c in (top - window, top], whether c was accepted
 * (bit c mod window).  A counter c is acceptable when c > top, or when
 * top - c < window and its bit is clear.  Counter 0 is never sent, so a
 * fresh window (top 0, all clear) accepts any first counter: a receiver that
 * joins late needs no outside state.
 *
 * Table: open addressing with linear probing over a keyed multiplicative
 * hash.  Sender IDs are chosen by peers (an insider can pick any), so the
 * hash is seeded from RAND_bytes; senders are only inserted after their
 * packet's ICV verified, and never more than max_senders of them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "mcsec-private.h"

struct mcsec_replay {
  uint64_t top;
  uint64_t accepted;
  uint64_t bits[]; /* window / 64 words */
};

struct mcsec_sender_slot {
  uint32_t sender_id;
  uint32_t used;
  mcsec_replay_t *replay;
};

uint64_t
mcsec_replay_top (const mcsec_replay_t *w)
{
  return w ? w->top : 0;
}

mcsec_status_t
mcsec_replay_check (const mcsec_replay_t *w, uint32_t window, uint64_t counter)
{
  uint64_t idx;

  if (counter == 0)
    return MCSEC_ERR_MALFORMED;
  if (w == NULL || counter > w->top)
    return MCSEC_OK;
  if (w->top - counter >= window)
    return MCSEC_ERR_TOO_OLD;
  idx = counter & (window - 1);
  if (w->bits[idx / 64] & (UINT64_C (1) << (idx % 64)))
    return MCSEC_ERR_REPLAY;
  return MCSEC_OK;
}

/* Clear the bits of counters (from, to]: they enter the window unseen. */
static void
clear_range (mcsec_replay_t *w, uint32_t window, uint64_t from, uint64_t to)
{
  uint64_t c;

  if (to - from >= window) {
    memset (w->bits, 0, window / 8);
    return;
  }
  c = from + 1;
  /* bit by bit up to a word boundary, then whole words, then the rest */
  while (c <= to && (c % 64) != 0) {
    uint64_t idx = c & (window - 1);
    w->bits[idx / 64] &= ~(UINT64_C (1) << (idx % 64));
    c++;
  }
  while (c + 63 <= to) {
    w->bits[(c & (window - 1)) / 64] = 0;
    c += 64;
  }
  while (c <= to) {
    uint64_t idx = c & (window - 1);
    w->bits[idx / 64] &= ~(UINT64_C (1) << (idx % 64));
    c++;
  }
}

void
mcsec_replay_update (mcsec_replay_t *w, uint32_t window, uint64_t counter)
{
  uint64_t idx;

  if (counter > w->top) {
    clear_range (w, window, w->top, counter);
    w->top = counter;
  }
  idx = counter & (window - 1);
  w->bits[idx / 64] |= UINT64_C (1) << (idx % 64);
  w->accepted++;
}

mcsec_status_t
mcsec_sender_table_init (mcsec_sender_table_t *t, uint32_t window,
                         uint32_t max_senders)
{
  memset (t, 0, sizeof (*t));
  t->window = window;
  t->max_senders = max_senders;
  if (RAND_bytes ((unsigned char *)&t->seed, sizeof (t->seed)) != 1)
    return MCSEC_ERR_CRYPTO;
  t->seed |= 1;
  return MCSEC_OK;
}

void
mcsec_sender_table_clear (mcsec_sender_table_t *t)
{
  for (uint32_t i = 0; i < t->capacity; i++)
    free (t->slots[i].replay);
  free (t->slots);
  memset (t, 0, sizeof (*t));
}

static inline uint32_t
slot_of (const mcsec_sender_table_t *t, uint32_t sender_id)
{
  uint64_t h = ((uint64_t)sender_id ^ t->seed) * UINT64_C (0x9e3779b97f4a7c15);
  h ^= h >> 29;
  return (uint32_t)h & (t->capacity - 1);
}

mcsec_replay_t *
mcsec_sender_table_find (const mcsec_sender_table_t *t, uint32_t sender_id)
{
  uint32_t i;

  if (t->capacity == 0)
    return NULL;
  for (i = slot_of (t, sender_id);; i = (i + 1) & (t->capacity - 1)) {
    const struct mcsec_sender_slot *s = &t->slots[i];
    if (!s->used)
      return NULL;
    if (s->sender_id == sender_id)
      return s->replay;
  }
}

static void
insert_slot (mcsec_sender_table_t *t, uint32_t sender_id, mcsec_replay_t *r)
{
  uint32_t i = slot_of (t, sender_id);

  while (t->slots[i].used)
    i = (i + 1) & (t->capacity - 1);
  t->slots[i].used = 1;
  t->slots[i].sender_id = sender_id;
  t->slots[i].replay = r;
}

/* Keep the load factor at most 1/2: probes stay short and the table can
 * never fill up. */
static mcsec_status_t
grow (mcsec_sender_table_t *t)
{
  struct mcsec_sender_slot *old = t->slots;
  uint32_t old_cap = t->capacity;
  uint32_t cap = old_cap ? old_cap * 2 : 16;

  t->slots = calloc (cap, sizeof (*t->slots));
  if (t->slots == NULL) {
    t->slots = old;
    return MCSEC_ERR_NO_MEMORY;
  }
  t->capacity = cap;
  for (uint32_t i = 0; i < old_cap; i++)
    if (old[i].used)
      insert_slot (t, old[i].sender_id, old[i].replay);
  free (old);
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sender_table_add (mcsec_sender_table_t *t, uint32_t sender_id,
                        mcsec_replay_t **out)
{
  mcsec_replay_t *r;
  mcsec_status_t st;

  if (t->count >= t->max_senders)
    return MCSEC_ERR_TOO_MANY_SENDERS;
  if ((uint64_t)(t->count + 1) * 2 > t->capacity) {
    st = grow (t);
    if (st)
      return st;
  }
  r = calloc (1, sizeof (*r) + t->window / 8);
  if (r == NULL)
    return MCSEC_ERR_NO_MEMORY;
  insert_slot (t, sender_id, r);
  t->count++;
  *out = r;
  return MCSEC_OK;
}

void
mcsec_sender_table_foreach (const mcsec_sender_table_t *t,
                            void (*fn) (const mcsec_sender_stats_t *, void *),
                            void *user_data)
{
  for (uint32_t i = 0; i < t->capacity; i++) {
    const struct mcsec_sender_slot *s = &t->slots[i];
    mcsec_sender_stats_t st;
    if (!s->used)
      continue;
    st.sender_id = s->sender_id;
    st.highest_counter = s->replay->top;
    st.accepted = s->replay->accepted;
    fn (&st, user_data);
  }
}
