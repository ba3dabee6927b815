/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal interfaces shared by the library's files and its tests.
 */
#ifndef MCSEC_PRIVATE_H
#define MCSEC_PRIVATE_H

#include <openssl/evp.h>

#include "mcsec/mcsec.h"

static inline void
mcsec_store_be32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static inline uint32_t
mcsec_load_be32 (const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void
mcsec_store_be64 (uint8_t *p, uint64_t v)
{
  mcsec_store_be32 (p, (uint32_t)(v >> 32));
  mcsec_store_be32 (p + 4, (uint32_t)v);
}

static inline uint64_t
mcsec_load_be64 (const uint8_t *p)
{
  return ((uint64_t)mcsec_load_be32 (p) << 32) | mcsec_load_be32 (p + 4);
}

/* ---- esp.c: the AEAD transform of RFC 4106 / 4543 / 7634 ---- */

/* One direction of one SA's cipher: a context keyed once, reused for every
 * packet (only the nonce changes). */
typedef struct {
  mcsec_suite_t suite;
  EVP_CIPHER_CTX *ctx;
  uint8_t salt[MCSEC_SALT_LEN];
} mcsec_aead_t;

mcsec_status_t mcsec_aead_init (mcsec_aead_t *aead, mcsec_suite_t suite,
                                const uint8_t *key_material, size_t len,
                                int encrypt);
void mcsec_aead_clear (mcsec_aead_t *aead);

/* Seal an ESP packet whose header (SPI, SN, IV) is at pkt[0..16).  The
 * body (head || payload || padding || pad length || next header) is
 * body_len bytes at pkt + 16: its first head_len bytes are in place, the
 * next src_len are read from src, which is either where they belong
 * (pkt + 16 + head_len) or a buffer that does not overlap the packet, and
 * the trailer after them is in place.  The ciphertext (GMAC: the clear
 * body) and then the ICV are written at pkt + 16. */
mcsec_status_t mcsec_aead_seal (mcsec_aead_t *aead, uint8_t *pkt,
                                size_t head_len, const uint8_t *src,
                                size_t src_len, size_t body_len);

/* Verify and decrypt: header at hdr (16 bytes), body and ICV follow it at
 * hdr + 16 (body_len bytes, then 16).  The plaintext body goes to out, which
 * may equal hdr + 16.  esn_hi: NULL, or the 4 high bytes of an extended
 * sequence number, which the AAD then holds between the SPI and the SN
 * (RFC 4106 5, RFC 7634 2.1, RFC 4543 3.3).  On failure out is wiped. */
mcsec_status_t mcsec_aead_open (mcsec_aead_t *aead, const uint8_t *hdr,
                                size_t body_len, uint8_t *out,
                                const uint8_t *esn_hi);

/* ---- replay.c: a window per sender, and the table of senders ---- */

typedef struct mcsec_replay mcsec_replay_t;

typedef struct {
  uint32_t window; /* bits, a power of two */
  uint32_t max_senders;
  uint32_t count;
  uint32_t capacity; /* power of two, 0 until the first sender */
  uint64_t seed;     /* keys the hash: sender IDs are chosen by peers */
  struct mcsec_sender_slot *slots;
} mcsec_sender_table_t;

mcsec_status_t mcsec_sender_table_init (mcsec_sender_table_t *t,
                                        uint32_t window, uint32_t max_senders);
void mcsec_sender_table_clear (mcsec_sender_table_t *t);
/* The window of a sender, or NULL when nothing was accepted from it. */
mcsec_replay_t *mcsec_sender_table_find (const mcsec_sender_table_t *t,
                                         uint32_t sender_id);
mcsec_status_t mcsec_sender_table_add (mcsec_sender_table_t *t,
                                       uint32_t sender_id,
                                       mcsec_replay_t **out);
void mcsec_sender_table_foreach (const mcsec_sender_table_t *t,
                                 void (*fn) (const mcsec_sender_stats_t *,
                                             void *),
                                 void *user_data);

/* The highest counter w accepted (0: none; w may be NULL). */
uint64_t mcsec_replay_top (const mcsec_replay_t *w);

/* May counter be accepted?  w may be NULL (a sender never seen). */
mcsec_status_t mcsec_replay_check (const mcsec_replay_t *w, uint32_t window,
                                   uint64_t counter);
/* Mark counter as received (call only after the ICV verified and after
 * mcsec_replay_check said OK). */
void mcsec_replay_update (mcsec_replay_t *w, uint32_t window, uint64_t counter);

/* ---- sam.c ---- */

/* The SIMD GF(2^8) code agrees with the portable code: 1, else 0. */
int mcsec_sam_gf_selftest (void);

#endif /* MCSEC_PRIVATE_H */
