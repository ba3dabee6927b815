/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * sa.c: the multicast security association: one group key shared by many
 * senders, each with its own Sender-ID and counter in the IV (RFC 6054),
 * and a replay window per sender on the receive side.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mcsec-private.h"

struct mcsec_sa {
  uint32_t spi;
  mcsec_suite_t suite;
  mcsec_sa_type_t type;
  int esn;
  uint32_t spi_mask; /* spi_per_sender: the Sender-ID's bits of the SPI */
  uint8_t sender_id_bits;
  uint64_t counter_max; /* largest counter that fits in the IV */
  uint64_t soft_packets;
  uint64_t hard_packets;
  /* SHA-256 of the key material: tells whether two SAs share a key without
   * keeping a second copy of it */
  uint8_t key_id[32];

  /* sending */
  mcsec_aead_t seal;
  int is_sender;
  uint32_t sender_id;
  uint64_t next_counter;
  uint64_t counter_limit; /* exclusive */
  uint64_t low_mark;      /* RESERVATION_LOW fires when reached */
  uint64_t packets_sent;

  /* receiving */
  mcsec_aead_t open;
  mcsec_sender_table_t senders;
  uint64_t packets_received;
};

static int
is_power_of_two (uint32_t v)
{
  return v != 0 && (v & (v - 1)) == 0;
}

mcsec_status_t
mcsec_sa_new (const mcsec_sa_config_t *cfg, mcsec_sa_t **out)
{
  mcsec_sa_t *sa;
  mcsec_status_t st;
  uint32_t window, max_senders;
  uint8_t bits;

  if (cfg == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  if (mcsec_suite_name (cfg->suite) == NULL)
    return MCSEC_ERR_BAD_SUITE;
  if (cfg->key == NULL ||
      cfg->key_len != mcsec_suite_key_material_len (cfg->suite))
    return MCSEC_ERR_BAD_KEY_LENGTH;
  if (cfg->spi < MCSEC_SPI_MIN)
    return MCSEC_ERR_BAD_SPI;
  bits =
      cfg->sender_id_bits ? cfg->sender_id_bits : MCSEC_SENDER_ID_BITS_DEFAULT;
  if (bits < MCSEC_SENDER_ID_BITS_MIN || bits > MCSEC_SENDER_ID_BITS_MAX)
    return MCSEC_ERR_BAD_SENDER_ID_BITS;
  window =
      cfg->replay_window ? cfg->replay_window : MCSEC_REPLAY_WINDOW_DEFAULT;
  if (!is_power_of_two (window) || window < MCSEC_REPLAY_WINDOW_MIN ||
      window > MCSEC_REPLAY_WINDOW_MAX)
    return MCSEC_ERR_BAD_REPLAY_WINDOW;
  max_senders = cfg->max_senders ? cfg->max_senders : MCSEC_MAX_SENDERS_DEFAULT;
  if ((cfg->type != MCSEC_SA_TYPE_GROUP &&
       cfg->type != MCSEC_SA_TYPE_STANDARD) ||
      (cfg->esn && cfg->type != MCSEC_SA_TYPE_STANDARD))
    return MCSEC_ERR_INVALID_ARG;
  /* a block of 2^bits SPIs at a base whose low bits are zero (it is then
   * at least 256: bits >= 8 and the base is not 0) */
  if (cfg->spi_per_sender && (cfg->type != MCSEC_SA_TYPE_GROUP || bits > 24 ||
                              (cfg->spi & ((UINT32_C (1) << bits) - 1)) != 0))
    return MCSEC_ERR_BAD_SPI;

  sa = calloc (1, sizeof (*sa));
  if (sa == NULL)
    return MCSEC_ERR_NO_MEMORY;
  sa->spi = cfg->spi;
  sa->suite = cfg->suite;
  sa->type = cfg->type;
  sa->esn = cfg->type == MCSEC_SA_TYPE_STANDARD && cfg->esn;
  sa->spi_mask = cfg->spi_per_sender ? (UINT32_C (1) << bits) - 1 : 0;
  sa->sender_id_bits = bits;
  /* a standard SA counts sequence numbers: 32 bits, or 64 with ESN */
  sa->counter_max = cfg->type == MCSEC_SA_TYPE_GROUP ? UINT64_MAX >> bits
                    : sa->esn                        ? UINT64_MAX
                                                     : UINT32_MAX;
  /* a standard SA's lifetime is its sender's business (a kernel rekeys
   * when it likes): no receive limit unless one is given */
  sa->hard_packets = cfg->hard_packets ? cfg->hard_packets
                     : cfg->type == MCSEC_SA_TYPE_STANDARD
                         ? UINT64_MAX
                         : MCSEC_HARD_PACKETS_DEFAULT;
  sa->soft_packets = cfg->soft_packets ? cfg->soft_packets
                     : cfg->type == MCSEC_SA_TYPE_STANDARD
                         ? UINT64_MAX
                         : MCSEC_SOFT_PACKETS_DEFAULT;
  if (sa->soft_packets > sa->hard_packets) {
    if (cfg->soft_packets) {
      st = MCSEC_ERR_BAD_LIFETIME;
      goto fail;
    }
    /* only hard was given, and it is below the default soft limit */
    sa->soft_packets = sa->hard_packets - (sa->hard_packets >> 4);
  }

  {
    unsigned int id_len = 0;
    if (EVP_Digest (cfg->key, cfg->key_len, sa->key_id, &id_len, EVP_sha256 (),
                    NULL) != 1) {
      st = MCSEC_ERR_CRYPTO;
      goto fail;
    }
  }
  st = mcsec_aead_init (&sa->seal, cfg->suite, cfg->key, cfg->key_len, 1);
  if (st)
    goto fail;
  st = mcsec_aead_init (&sa->open, cfg->suite, cfg->key, cfg->key_len, 0);
  if (st)
    goto fail;
  st = mcsec_sender_table_init (&sa->senders, window, max_senders);
  if (st)
    goto fail;
  *out = sa;
  return MCSEC_OK;

fail:
  mcsec_sa_free (sa);
  return st;
}

void
mcsec_sa_free (mcsec_sa_t *sa)
{
  if (sa == NULL)
    return;
  mcsec_aead_clear (&sa->seal);
  mcsec_aead_clear (&sa->open);
  mcsec_sender_table_clear (&sa->senders);
  OPENSSL_cleanse (sa, sizeof (*sa));
  free (sa);
}

uint32_t
mcsec_sa_spi (const mcsec_sa_t *sa)
{
  return sa->spi;
}

uint32_t
mcsec_sa_spi_mask (const mcsec_sa_t *sa)
{
  return sa->spi_mask;
}

int
mcsec_sa_same_key (const mcsec_sa_t *a, const mcsec_sa_t *b)
{
  return a != NULL && b != NULL && a->spi == b->spi && a->suite == b->suite &&
         a->type == b->type && a->esn == b->esn && a->spi_mask == b->spi_mask &&
         a->sender_id_bits == b->sender_id_bits &&
         CRYPTO_memcmp (a->key_id, b->key_id, sizeof (a->key_id)) == 0;
}

mcsec_suite_t
mcsec_sa_suite (const mcsec_sa_t *sa)
{
  return sa->suite;
}

static void
set_low_mark (mcsec_sa_t *sa)
{
  sa->low_mark = sa->next_counter + (sa->counter_limit - sa->next_counter) / 2;
}

mcsec_status_t
mcsec_sa_set_sender (mcsec_sa_t *sa, uint32_t sender_id, uint64_t first_counter,
                     uint64_t counter_limit)
{
  /* a standard SA's IV is not ours to choose: it only receives */
  if (sa == NULL || sa->type != MCSEC_SA_TYPE_GROUP)
    return MCSEC_ERR_INVALID_ARG;
  if (sa->sender_id_bits < 32 && (sender_id >> sa->sender_id_bits) != 0)
    return MCSEC_ERR_BAD_SENDER_ID;
  if (counter_limit == 0 || counter_limit > sa->counter_max)
    counter_limit = sa->counter_max; /* counter_max itself stays unused */
  if (first_counter < MCSEC_COUNTER_FIRST)
    first_counter = MCSEC_COUNTER_FIRST;
  /* A sender can only be configured once per SA: a second call could move
   * the counter backwards and repeat a nonce. */
  if (sa->is_sender)
    return MCSEC_ERR_INVALID_ARG;
  sa->is_sender = 1;
  sa->sender_id = sender_id;
  sa->next_counter = first_counter;
  sa->counter_limit = counter_limit;
  set_low_mark (sa);
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sa_extend_reservation (mcsec_sa_t *sa, uint64_t counter_limit)
{
  if (sa == NULL || !sa->is_sender)
    return MCSEC_ERR_NOT_SENDER;
  if (counter_limit > sa->counter_max)
    counter_limit = sa->counter_max;
  if (counter_limit > sa->counter_limit) {
    sa->counter_limit = counter_limit;
    set_low_mark (sa);
  }
  return MCSEC_OK;
}

uint64_t
mcsec_sa_next_counter (const mcsec_sa_t *sa)
{
  return sa->next_counter;
}

size_t
mcsec_protected_len (size_t payload_len)
{
  size_t pad = (MCSEC_ESP_ALIGN -
                (payload_len + MCSEC_ESP_TRAILER_LEN) % MCSEC_ESP_ALIGN) %
               MCSEC_ESP_ALIGN;
  return MCSEC_ESP_HEADER_LEN + payload_len + pad + MCSEC_ESP_TRAILER_LEN +
         MCSEC_ESP_ICV_LEN;
}

mcsec_status_t
mcsec_sa_protect (mcsec_sa_t *sa, uint8_t next_header, const uint8_t *payload,
                  size_t payload_len, uint8_t *out, size_t out_size,
                  size_t *out_len, unsigned *events)
{
  return mcsec_sa_protect_prefixed (sa, next_header, NULL, 0, payload,
                                    payload_len, out, out_size, out_len,
                                    events);
}

mcsec_status_t
mcsec_sa_protect_prefixed (mcsec_sa_t *sa, uint8_t next_header,
                           const uint8_t *prefix, size_t prefix_len,
                           const uint8_t *payload, size_t payload_len,
                           uint8_t *out, size_t out_size, size_t *out_len,
                           unsigned *events)
{
  uint8_t *body, *dst;
  size_t total, pad, i, len;
  uint64_t counter;
  mcsec_status_t st;

  if (events)
    *events = 0;
  if (sa == NULL || out == NULL || out_len == NULL ||
      (payload == NULL && payload_len != 0) || prefix_len > MCSEC_PREFIX_MAX ||
      (prefix == NULL && prefix_len != 0))
    return MCSEC_ERR_INVALID_ARG;
  if (!sa->is_sender)
    return MCSEC_ERR_NOT_SENDER;
  if (payload_len > MCSEC_ESP_MAX_PAYLOAD_LEN - prefix_len)
    return MCSEC_ERR_PAYLOAD_TOO_LONG;
  len = prefix_len + payload_len;
  total = mcsec_protected_len (len);
  if (out_size < total)
    return MCSEC_ERR_BUFFER_TOO_SMALL;
  if (sa->packets_sent >= sa->hard_packets)
    return MCSEC_ERR_HARD_LIMIT;
  if (sa->next_counter >= sa->counter_max)
    return MCSEC_ERR_COUNTER_EXHAUSTED;
  if (sa->next_counter >= sa->counter_limit)
    return MCSEC_ERR_RESERVATION_EXHAUSTED;

  /* Take the counter before anything can fail: it is never used twice. */
  counter = sa->next_counter++;
  sa->packets_sent++;

  body = out + MCSEC_ESP_HEADER_LEN;
  dst = body + prefix_len;
  if (payload_len == 0) {
    payload = dst;
  } else if (payload != dst && payload < out + total &&
             payload + payload_len > out) {
    /* overlapping but not in place: move it into place first */
    memmove (dst, payload, payload_len);
    payload = dst;
  }
  if (prefix_len)
    memcpy (body, prefix, prefix_len);
  mcsec_store_be32 (out, sa->spi | (sa->sender_id & sa->spi_mask));
  mcsec_store_be32 (out + MCSEC_ESP_SPI_LEN, (uint32_t)counter);
  mcsec_store_be64 (out + MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN,
                    ((uint64_t)sa->sender_id << (64 - sa->sender_id_bits)) |
                        counter);
  pad = total - MCSEC_ESP_HEADER_LEN - len - MCSEC_ESP_TRAILER_LEN -
        MCSEC_ESP_ICV_LEN;
  for (i = 0; i < pad; i++)
    body[len + i] = (uint8_t)(i + 1); /* RFC 4303 2.4 */
  body[len + pad] = (uint8_t)pad;
  body[len + pad + 1] = next_header;

  st = mcsec_aead_seal (&sa->seal, out, prefix_len, payload, payload_len,
                        len + pad + MCSEC_ESP_TRAILER_LEN);
  if (st) {
    OPENSSL_cleanse (out, total);
    return st;
  }
  *out_len = total;
  if (events) {
    if (sa->packets_sent == sa->soft_packets)
      *events |= MCSEC_EVENT_SOFT_LIMIT;
    if (counter + 1 == sa->low_mark)
      *events |= MCSEC_EVENT_RESERVATION_LOW;
  }
  return MCSEC_OK;
}

uint32_t
mcsec_packet_spi (const uint8_t *packet, size_t len)
{
  if (packet == NULL || len < MCSEC_ESP_SPI_LEN)
    return 0;
  return mcsec_load_be32 (packet);
}

/* Move the replay window of sender_id (w: its window, NULL when it has
 * none yet) to take counter, which mcsec_replay_check() passed. */
static mcsec_status_t
move_window (mcsec_sa_t *sa, mcsec_replay_t *w, uint32_t sender_id,
             uint64_t counter)
{
  if (w == NULL) {
    mcsec_status_t st = mcsec_sender_table_add (&sa->senders, sender_id, &w);
    if (st)
      return st;
  }
  mcsec_replay_update (w, sa->senders.window, counter);
  return MCSEC_OK;
}

/* The 64-bit sequence number whose low half is sn, given the highest one
 * accepted (top) and the window width: RFC 4303 Appendix A2.2.  0 when it
 * would need a high half past 2^32 - 1 (the SA is used up). */
static uint64_t
esn_infer (uint64_t top, uint32_t window, uint32_t sn)
{
  uint32_t tl = (uint32_t)top, th = (uint32_t)(top >> 32);
  uint32_t bottom = tl - window + 1; /* mod 2^32 */

  if (tl >= window - 1) {
    /* the window lies within one half: below it is the next half */
    if (sn >= bottom)
      return ((uint64_t)th << 32) | sn;
    if (th == UINT32_MAX)
      return 0;
    return ((uint64_t)(th + 1) << 32) | sn;
  }
  /* the window spans two halves: above its bottom is the previous one */
  if (sn >= bottom && th > 0)
    return ((uint64_t)(th - 1) << 32) | sn;
  return ((uint64_t)th << 32) | sn;
}

/* Open one packet; with `accept`, the sender's replay window moves too. */
static mcsec_status_t
unprotect (mcsec_sa_t *sa, const uint8_t *packet, size_t len, uint8_t *out,
           size_t out_size, mcsec_rx_info_t *info, int accept)
{
  mcsec_rx_info_t local;
  mcsec_replay_t *w;
  size_t body_len;
  uint32_t sn;
  uint8_t esn_hi[4];
  uint8_t pad, nh;
  mcsec_status_t st;

  if (info == NULL)
    info = &local;
  memset (info, 0, sizeof (*info));
  if (sa == NULL || packet == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (len < MCSEC_ESP_MIN_PACKET_LEN)
    return MCSEC_ERR_TOO_SHORT;
  if (len > MCSEC_ESP_MAX_PACKET_LEN)
    return MCSEC_ERR_TOO_LONG;

  info->spi = mcsec_load_be32 (packet);
  sn = mcsec_load_be32 (packet + MCSEC_ESP_SPI_LEN);
  if (sa->type == MCSEC_SA_TYPE_GROUP) {
    uint64_t iv =
        mcsec_load_be64 (packet + MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN);
    info->sender_id = (uint32_t)(iv >> (64 - sa->sender_id_bits));
    info->counter = iv & sa->counter_max;
    w = mcsec_sender_table_find (&sa->senders, info->sender_id);
  } else {
    /* one sender; the IV is opaque, the counter is the sequence number */
    w = mcsec_sender_table_find (&sa->senders, 0);
    info->counter =
        sa->esn ? esn_infer (mcsec_replay_top (w), sa->senders.window, sn) : sn;
    mcsec_store_be32 (esn_hi, (uint32_t)(info->counter >> 32));
  }
  info->has_header = 1;

  if ((info->spi & ~sa->spi_mask) != sa->spi)
    return MCSEC_ERR_UNKNOWN_SPI;
  body_len = len - MCSEC_ESP_HEADER_LEN - MCSEC_ESP_ICV_LEN;
  if (body_len % MCSEC_ESP_ALIGN != 0)
    return MCSEC_ERR_MALFORMED;
  if (sa->spi_mask) {
    /* a sender's own SPI of the block: no one counts under another's */
    if ((info->spi & sa->spi_mask) != info->sender_id)
      return MCSEC_ERR_MALFORMED;
    info->spi = sa->spi; /* the SA's, for the caller's accounts */
  }
  /* A group SA's SN is the counter's low half (both are authenticated). */
  if (info->counter == 0 || (uint32_t)info->counter != sn)
    return MCSEC_ERR_MALFORMED;
  if (out_size < body_len)
    return MCSEC_ERR_BUFFER_TOO_SMALL;

  /* Cheap rejections first: nothing is decrypted for a known replay. */
  st = mcsec_replay_check (w, sa->senders.window, info->counter);
  if (st)
    return st;
  if (sa->packets_received >= sa->hard_packets)
    return MCSEC_ERR_HARD_LIMIT;

  st = mcsec_aead_open (&sa->open, packet, body_len, out,
                        sa->esn ? esn_hi : NULL);
  if (st)
    return st;

  pad = out[body_len - 2];
  nh = out[body_len - 1];
  if ((size_t)pad + MCSEC_ESP_TRAILER_LEN > body_len) {
    st = MCSEC_ERR_BAD_PADDING;
    goto fail;
  }
  for (size_t i = 0; i < pad; i++) {
    if (out[body_len - MCSEC_ESP_TRAILER_LEN - pad + i] != (uint8_t)(i + 1)) {
      st = MCSEC_ERR_BAD_PADDING;
      goto fail;
    }
  }

  /* Authentic: now, and only now, the state moves. */
  if (accept) {
    st = move_window (sa, w, info->sender_id, info->counter);
    if (st)
      goto fail;
  }
  sa->packets_received++;
  if (sa->packets_received == sa->soft_packets)
    info->events |= MCSEC_EVENT_SOFT_LIMIT;
  info->next_header = nh;
  info->payload_len = body_len - MCSEC_ESP_TRAILER_LEN - pad;
  return MCSEC_OK;

fail:
  OPENSSL_cleanse (out, body_len);
  return st;
}

mcsec_status_t
mcsec_sa_unprotect (mcsec_sa_t *sa, const uint8_t *packet, size_t len,
                    uint8_t *out, size_t out_size, mcsec_rx_info_t *info)
{
  return unprotect (sa, packet, len, out, out_size, info, 1);
}

mcsec_status_t
mcsec_sa_unprotect_tentative (mcsec_sa_t *sa, const uint8_t *packet, size_t len,
                              uint8_t *out, size_t out_size,
                              mcsec_rx_info_t *info)
{
  return unprotect (sa, packet, len, out, out_size, info, 0);
}

mcsec_status_t
mcsec_sa_accept (mcsec_sa_t *sa, uint32_t sender_id, uint64_t counter)
{
  mcsec_replay_t *w;
  mcsec_status_t st;

  if (sa == NULL || counter == 0 || counter > sa->counter_max)
    return MCSEC_ERR_INVALID_ARG;
  w = mcsec_sender_table_find (&sa->senders, sender_id);
  st = mcsec_replay_check (w, sa->senders.window, counter);
  if (st)
    return st;
  return move_window (sa, w, sender_id, counter);
}

void
mcsec_sa_foreach_sender (const mcsec_sa_t *sa,
                         void (*fn) (const mcsec_sender_stats_t *, void *),
                         void *user_data)
{
  mcsec_sender_table_foreach (&sa->senders, fn, user_data);
}

size_t
mcsec_sa_n_senders (const mcsec_sa_t *sa)
{
  return sa->senders.count;
}

uint64_t
mcsec_sa_packets_sent (const mcsec_sa_t *sa)
{
  return sa->packets_sent;
}

uint64_t
mcsec_sa_packets_received (const mcsec_sa_t *sa)
{
  return sa->packets_received;
}
