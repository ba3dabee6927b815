/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * rekey.c: the rekey channel without I/O (mcsec-rekey.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mcsec-private.h"
#include "mcsec/mcsec-rekey.h"

#define ENTRY_ATTR_LEN (MCSEC_MIKE_ATTR_HEADER_LEN + MCSEC_MIKE_WRAPPED_KEY_LEN)

static size_t
frame_overhead (size_t group_len)
{
  return MCSEC_MIKE_HEADER_LEN + MCSEC_MIKE_ATTR_HEADER_LEN + group_len +
         MCSEC_MIKE_ATTR_HEADER_LEN + 8 + MCSEC_MIKE_ATTR_HEADER_LEN + 4 +
         MCSEC_MIKE_ATTR_HEADER_LEN + MCSEC_MIKE_SIGNATURE_LEN;
}

/* ---- controller side ---- */

typedef struct {
  uint64_t seq;
  unsigned parts;
  uint8_t **data;
  size_t *len;
} kept_t;

struct mcsec_rekey_tx {
  char group[MCSEC_MIKE_MAX_STRING + 1];
  EVP_PKEY *key;
  uint64_t next_seq, oldest;
  kept_t ring[MCSEC_REKEY_KEEP];
};

static void
kept_clear (kept_t *k)
{
  for (unsigned i = 0; i < k->parts; i++) {
    if (k->data[i])
      OPENSSL_cleanse (k->data[i], k->len[i]);
    free (k->data[i]);
  }
  free (k->data);
  free (k->len);
  memset (k, 0, sizeof *k);
}

mcsec_status_t
mcsec_rekey_tx_new (const char *group, EVP_PKEY *key, uint64_t first_seq,
                    mcsec_rekey_tx_t **out)
{
  mcsec_rekey_tx_t *tx;
  size_t glen = group ? strlen (group) : 0;

  if (out == NULL || key == NULL || glen < 1 || glen > MCSEC_MIKE_MAX_STRING ||
      first_seq == 0)
    return MCSEC_ERR_INVALID_ARG;
  tx = calloc (1, sizeof *tx);
  if (tx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  if (EVP_PKEY_up_ref (key) != 1) {
    free (tx);
    return MCSEC_ERR_CRYPTO;
  }
  memcpy (tx->group, group, glen + 1);
  tx->key = key;
  tx->next_seq = tx->oldest = first_seq;
  *out = tx;
  return MCSEC_OK;
}

void
mcsec_rekey_tx_free (mcsec_rekey_tx_t *tx)
{
  if (tx == NULL)
    return;
  for (int i = 0; i < MCSEC_REKEY_KEEP; i++)
    kept_clear (&tx->ring[i]);
  EVP_PKEY_free (tx->key);
  free (tx);
}

static void
put_entry (mcsec_mike_builder_t *b, const mcsec_lkh_entry_t *e)
{
  uint8_t v[MCSEC_MIKE_WRAPPED_KEY_LEN];
  mcsec_store_be32 (v, e->node);
  mcsec_store_be32 (v + 4, e->wrapper);
  memcpy (v + 8, e->wrapped, MCSEC_LKH_WRAPPED_LEN);
  mcsec_mike_put (b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v);
}

/* The size of item i of a rekey: its senders, then its entries. */
static size_t
item_len (const mcsec_rekey_t *r, size_t i)
{
  if (i < r->n_senders)
    return MCSEC_MIKE_ATTR_HEADER_LEN + 4 + r->senders[i].spki_len;
  return ENTRY_ATTR_LEN;
}

#define HEAD_LEN                                                               \
  (MCSEC_MIKE_ATTR_HEADER_LEN + 4 + MCSEC_MIKE_ATTR_HEADER_LEN +               \
   MCSEC_MIKE_DERIVED_SA_LEN)

/* Where each part starts (first[p], items), greedily; the part count. */
static size_t
cut (const mcsec_rekey_t *r, size_t room, size_t *first)
{
  size_t items = r->n_senders + r->n, used = HEAD_LEN, parts = 1;

  if (first)
    first[0] = 0;
  for (size_t i = 0; i < items; i++) {
    size_t l = item_len (r, i);
    if (used + l > room) {
      if (first)
        first[parts] = i;
      parts++;
      used = 0;
    }
    used += l;
  }
  if (first)
    first[parts] = items;
  return parts;
}

mcsec_status_t
mcsec_rekey_tx_publish (mcsec_rekey_tx_t *tx, const mcsec_rekey_t *r,
                        uint64_t *seq, unsigned *parts)
{
  size_t room, count, *first = NULL;
  kept_t k = {0};

  if (tx == NULL || r == NULL || (r->n > 0 && r->entries == NULL) ||
      (r->n_senders > 0 && r->senders == NULL) ||
      r->n_senders > MCSEC_MIKE_MAX_SENDERS || seq == NULL || parts == NULL)
    return MCSEC_ERR_INVALID_ARG;
  for (size_t i = 0; i < r->n_senders; i++)
    if (r->senders[i].spki_len > MCSEC_MIKE_MAX_SPKI)
      return MCSEC_ERR_INVALID_ARG;
  room = MCSEC_REKEY_MAX_DATAGRAM - frame_overhead (strlen (tx->group));
  count = cut (r, room, NULL);
  if (count > MCSEC_REKEY_MAX_PARTS)
    return MCSEC_ERR_PAYLOAD_TOO_LONG;
  first = calloc (count + 1, sizeof *first);
  k.seq = tx->next_seq;
  k.parts = (unsigned)count;
  k.data = calloc (count, sizeof *k.data);
  k.len = calloc (count, sizeof *k.len);
  if (first == NULL || k.data == NULL || k.len == NULL) {
    free (first);
    free (k.data);
    free (k.len);
    return MCSEC_ERR_NO_MEMORY;
  }
  cut (r, room, first);
  for (size_t p = 0; p < count; p++) {
    mcsec_mike_builder_t b;
    mcsec_status_t st;
    k.data[p] = malloc (MCSEC_REKEY_MAX_DATAGRAM);
    if (k.data[p] == NULL) {
      free (first);
      kept_clear (&k);
      return MCSEC_ERR_NO_MEMORY;
    }
    mcsec_mike_begin (&b, k.data[p], MCSEC_REKEY_MAX_DATAGRAM,
                      MCSEC_MIKE_REKEY);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, tx->group);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, k.seq);
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART,
                        (uint32_t)(p << 16) | (uint32_t)count);
    if (p == 0) {
      mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, r->deactivation_ms);
      if (r->sa)
        mcsec_mike_put_derived_sa (&b, r->sa);
    }
    for (size_t i = first[p]; i < first[p + 1]; i++) {
      if (i < r->n_senders && r->senders[i].feedback)
        mcsec_mike_put_feedback_sender (&b, r->senders[i].sender_id,
                                        r->senders[i].spki,
                                        r->senders[i].spki_len);
      else if (i < r->n_senders)
        mcsec_mike_put_sender (&b, r->senders[i].sender_id, r->senders[i].spki,
                               r->senders[i].spki_len);
      else
        put_entry (&b, &r->entries[i - r->n_senders]);
    }
    mcsec_mike_sign (&b, tx->key);
    st = mcsec_mike_finish (&b, &k.len[p]);
    if (st) {
      free (first);
      kept_clear (&k);
      return st;
    }
  }
  free (first);
  kept_clear (&tx->ring[k.seq % MCSEC_REKEY_KEEP]);
  tx->ring[k.seq % MCSEC_REKEY_KEEP] = k;
  if (k.seq >= tx->oldest + MCSEC_REKEY_KEEP)
    tx->oldest = k.seq - MCSEC_REKEY_KEEP + 1;
  tx->next_seq++;
  *seq = k.seq;
  *parts = (unsigned)count;
  return MCSEC_OK;
}

size_t
mcsec_rekey_tx_datagram (const mcsec_rekey_tx_t *tx, uint64_t seq,
                         unsigned part, const uint8_t **data)
{
  const kept_t *k = &tx->ring[seq % MCSEC_REKEY_KEEP];
  if (k->seq != seq || part >= k->parts || seq == 0)
    return 0;
  *data = k->data[part];
  return k->len[part];
}

unsigned
mcsec_rekey_tx_parts (const mcsec_rekey_tx_t *tx, uint64_t seq)
{
  const kept_t *k = &tx->ring[seq % MCSEC_REKEY_KEEP];
  return k->seq == seq && seq != 0 ? k->parts : 0;
}

uint64_t
mcsec_rekey_tx_next_seq (const mcsec_rekey_tx_t *tx)
{
  return tx->next_seq;
}

void
mcsec_rekey_tx_range (const mcsec_rekey_tx_t *tx, uint64_t *oldest,
                      uint64_t *newest)
{
  if (tx->next_seq == tx->oldest) {
    *oldest = *newest = 0;
    return;
  }
  *oldest = tx->oldest;
  *newest = tx->next_seq - 1;
}

mcsec_status_t
mcsec_rekey_tx_heartbeat (mcsec_rekey_tx_t *tx, uint8_t *out, size_t out_size,
                          size_t *out_len)
{
  mcsec_mike_builder_t b;
  uint64_t newest = tx->next_seq - 1;
  unsigned parts = mcsec_rekey_tx_parts (tx, newest);

  mcsec_mike_begin (&b, out, out_size, MCSEC_MIKE_HEARTBEAT);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, tx->group);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, newest);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART, parts ? parts : 1);
  mcsec_mike_sign (&b, tx->key);
  return mcsec_mike_finish (&b, out_len);
}

/* ---- member side ---- */

/* A rekey being put together: its parts as received (each checked when it
 * came; read again when the rekey is handed over). */
typedef struct {
  uint64_t seq; /* 0: empty */
  unsigned parts, have;
  uint8_t **data; /* per part, NULL until received */
  size_t *len;
} slot_t;

struct mcsec_rekey_rx {
  char group[MCSEC_MIKE_MAX_STRING + 1];
  EVP_PKEY *key;
  uint64_t expected, known_latest;
  uint64_t gap_since, repair_at;
  int repair_outstanding;
  slot_t win[MCSEC_REKEY_WINDOW];
  slot_t cur; /* the rekey last handed over, which its view points into */
  mcsec_mike_sa_t sa;
  mcsec_lkh_entry_t *out;
  size_t out_cap;
  mcsec_mike_sender_t *senders;
  mcsec_mike_msg_t *msg;
  mcsec_rekey_rx_stats_t stats;
};

static void
slot_clear (slot_t *s)
{
  for (unsigned i = 0; i < s->parts; i++)
    if (s->data && s->data[i]) {
      OPENSSL_cleanse (s->data[i], s->len[i]);
      free (s->data[i]);
    }
  free (s->data);
  free (s->len);
  memset (s, 0, sizeof *s);
}

mcsec_status_t
mcsec_rekey_rx_new (const char *group, EVP_PKEY *controller_key,
                    uint64_t next_seq, mcsec_rekey_rx_t **out)
{
  mcsec_rekey_rx_t *rx;
  size_t glen = group ? strlen (group) : 0;

  if (out == NULL || controller_key == NULL || glen < 1 ||
      glen > MCSEC_MIKE_MAX_STRING || next_seq == 0)
    return MCSEC_ERR_INVALID_ARG;
  rx = calloc (1, sizeof *rx);
  if (rx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  rx->msg = malloc (sizeof *rx->msg);
  rx->senders = calloc (MCSEC_MIKE_MAX_SENDERS, sizeof *rx->senders);
  if (rx->msg == NULL || rx->senders == NULL ||
      EVP_PKEY_up_ref (controller_key) != 1) {
    free (rx->msg);
    free (rx->senders);
    free (rx);
    return MCSEC_ERR_NO_MEMORY;
  }
  memcpy (rx->group, group, glen + 1);
  rx->key = controller_key;
  rx->expected = next_seq;
  rx->known_latest = next_seq - 1;
  *out = rx;
  return MCSEC_OK;
}

void
mcsec_rekey_rx_free (mcsec_rekey_rx_t *rx)
{
  if (rx == NULL)
    return;
  for (int i = 0; i < MCSEC_REKEY_WINDOW; i++)
    slot_clear (&rx->win[i]);
  slot_clear (&rx->cur);
  if (rx->out)
    OPENSSL_cleanse (rx->out, rx->out_cap * sizeof *rx->out);
  free (rx->out);
  free (rx->senders);
  free (rx->msg);
  EVP_PKEY_free (rx->key);
  free (rx);
}

static int
complete (const mcsec_rekey_rx_t *rx, uint64_t seq)
{
  const slot_t *s = &rx->win[seq % MCSEC_REKEY_WINDOW];
  return s->seq == seq && s->parts > 0 && s->have == s->parts;
}

mcsec_status_t
mcsec_rekey_rx_datagram (mcsec_rekey_rx_t *rx, const uint8_t *data, size_t len,
                         uint64_t now_ms)
{
  mcsec_mike_msg_t *m = rx->msg;
  mcsec_status_t st;
  slot_t *s;

  (void)now_ms;
  st = len > MCSEC_REKEY_MAX_DATAGRAM ? MCSEC_ERR_MALFORMED
                                      : mcsec_mike_parse (data, len, m);
  if (st == MCSEC_OK && m->type != MCSEC_MIKE_REKEY &&
      m->type != MCSEC_MIKE_HEARTBEAT)
    st = MCSEC_ERR_MALFORMED;
  if (st == MCSEC_OK && (m->group_len != strlen (rx->group) ||
                         memcmp (m->group, rx->group, m->group_len) != 0))
    st = MCSEC_ERR_MALFORMED;
  /* the SA and the deactivation delay come first, once */
  if (st == MCSEC_OK && m->type == MCSEC_MIKE_REKEY && m->part_index > 0 &&
      (m->has_derived_sa || m->has_deactivation))
    st = MCSEC_ERR_MALFORMED;
  if (st) {
    rx->stats.malformed++;
    return st;
  }
  if (mcsec_mike_verify (m, rx->key) != MCSEC_OK) {
    rx->stats.bad_signature++;
    return MCSEC_ERR_SIGNATURE;
  }
  if (m->seq > rx->known_latest)
    rx->known_latest = m->seq;
  if (m->type == MCSEC_MIKE_HEARTBEAT) {
    rx->stats.heartbeats++;
    return MCSEC_OK;
  }
  rx->stats.datagrams++;
  if (m->seq < rx->expected) {
    rx->stats.stale++;
    return MCSEC_ERR_STALE_UPDATE;
  }
  if (m->seq >= rx->expected + MCSEC_REKEY_WINDOW) {
    rx->stats.too_far++; /* the repair resynchronises */
    return MCSEC_ERR_TOO_OLD;
  }
  s = &rx->win[m->seq % MCSEC_REKEY_WINDOW];
  if (s->seq != m->seq) {
    slot_clear (s);
    s->seq = m->seq;
    s->parts = m->part_count;
    s->data = calloc (s->parts, sizeof *s->data);
    s->len = calloc (s->parts, sizeof *s->len);
    if (s->data == NULL || s->len == NULL) {
      slot_clear (s);
      return MCSEC_ERR_NO_MEMORY;
    }
  }
  if (m->part_count != s->parts) {
    rx->stats.malformed++;
    return MCSEC_ERR_MALFORMED;
  }
  if (s->data[m->part_index]) {
    rx->stats.duplicates++;
    return MCSEC_OK;
  }
  s->data[m->part_index] = malloc (len);
  if (s->data[m->part_index] == NULL)
    return MCSEC_ERR_NO_MEMORY;
  memcpy (s->data[m->part_index], data, len);
  s->len[m->part_index] = len;
  s->have++;
  return MCSEC_OK;
}

int
mcsec_rekey_rx_next (mcsec_rekey_rx_t *rx, uint64_t *seq, mcsec_rekey_t *r)
{
  slot_t *s;
  mcsec_mike_msg_t *m = rx->msg;
  size_t total = 0, ns = 0;

  if (!complete (rx, rx->expected))
    return 0;
  /* the view points into the parts: they move out of the window */
  slot_clear (&rx->cur);
  s = &rx->win[rx->expected % MCSEC_REKEY_WINDOW];
  rx->cur = *s;
  memset (s, 0, sizeof *s);
  s = &rx->cur;
  memset (r, 0, sizeof *r);
  rx->expected++;
  rx->gap_since = 0;
  rx->repair_outstanding = 0; /* progress: a new gap starts afresh */
  for (unsigned p = 0; p < s->parts; p++) {
    /* checked on arrival; the same bytes parse the same way */
    if (mcsec_mike_parse (s->data[p], s->len[p], m) != MCSEC_OK) {
      rx->stats.malformed++;
      return 0;
    }
    total += m->n_wrapped;
  }
  if (total > rx->out_cap) {
    mcsec_lkh_entry_t *o = malloc (total * sizeof *o);
    if (o == NULL)
      return 0; /* the member finds it lacks the group key: resync */
    if (rx->out) {
      OPENSSL_cleanse (rx->out, rx->out_cap * sizeof *o);
      free (rx->out);
    }
    rx->out = o;
    rx->out_cap = total;
  }
  total = 0;
  for (unsigned p = 0; p < s->parts; p++) {
    if (mcsec_mike_parse (s->data[p], s->len[p], m) != MCSEC_OK)
      return 0; /* as above */
    if (p == 0) {
      r->deactivation_ms = m->deactivation_ms;
      if (m->has_derived_sa) {
        rx->sa = m->derived_sa;
        r->sa = &rx->sa;
      }
    }
    for (size_t i = 0; i < m->n_senders && ns < MCSEC_MIKE_MAX_SENDERS; i++)
      rx->senders[ns++] = m->senders[i];
    for (size_t i = 0; i < m->n_wrapped; i++, total++) {
      mcsec_lkh_entry_t *e = &rx->out[total];
      const uint8_t *w;
      mcsec_mike_wrapped_key (m, i, &e->node, &e->wrapper, &w);
      memcpy (e->wrapped, w, MCSEC_LKH_WRAPPED_LEN);
    }
  }
  r->entries = rx->out;
  r->n = total;
  r->senders = rx->senders;
  r->n_senders = ns;
  *seq = s->seq;
  return 1;
}
int
mcsec_rekey_rx_repair (mcsec_rekey_rx_t *rx, uint64_t now_ms,
                       uint64_t *from_seq)
{
  if (rx->known_latest < rx->expected || complete (rx, rx->expected)) {
    rx->gap_since = 0;
    return 0;
  }
  if (rx->gap_since == 0) {
    rx->gap_since = now_ms ? now_ms : 1;
    return 0;
  }
  if (now_ms - rx->gap_since < MCSEC_REKEY_REPAIR_DELAY_MS)
    return 0;
  if (rx->repair_outstanding &&
      now_ms - rx->repair_at < MCSEC_REKEY_REPAIR_RETRY_MS)
    return 0;
  rx->repair_outstanding = 1;
  rx->repair_at = now_ms;
  rx->stats.repairs_asked++;
  *from_seq = rx->expected;
  return 1;
}

uint64_t
mcsec_rekey_rx_expected (const mcsec_rekey_rx_t *rx)
{
  return rx->expected;
}

uint64_t
mcsec_rekey_rx_latest (const mcsec_rekey_rx_t *rx)
{
  return rx->known_latest;
}

void
mcsec_rekey_rx_stats (const mcsec_rekey_rx_t *rx, mcsec_rekey_rx_stats_t *out)
{
  *out = rx->stats;
}
