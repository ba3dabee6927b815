/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mike-codec.c: the MIKE messages, without I/O (docs/mike-protocol.md):
 * the parser, the builder, signing and verifying, the stream reader that
 * cuts frames, the type and reason names.  The bottom of the MIKE stack:
 * rekey.c and member.c use it, it uses neither.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "mcsec-private.h"
#include "mcsec/mcsec-mike.h"

static const char *const reason_names[] = {
    [MCSEC_MIKE_REASON_UNKNOWN_GROUP] = "unknown-group",
    [MCSEC_MIKE_REASON_NOT_AUTHORISED] = "not-authorised",
    [MCSEC_MIKE_REASON_ROLE_NOT_ALLOWED] = "role-not-allowed",
    [MCSEC_MIKE_REASON_BAD_REQUEST] = "bad-request",
    [MCSEC_MIKE_REASON_SENDER_IDS_EXHAUSTED] = "sender-ids-exhausted",
    [MCSEC_MIKE_REASON_EVICTED] = "evicted",
    [MCSEC_MIKE_REASON_DUPLICATE] = "duplicate",
    [MCSEC_MIKE_REASON_SHUTTING_DOWN] = "shutting-down",
    [MCSEC_MIKE_REASON_NOT_LEADER] = "not-leader",
    [MCSEC_MIKE_REASON_UNAVAILABLE] = "unavailable",
};

const char *
mcsec_mike_reason_name (unsigned reason)
{
  if (reason < sizeof reason_names / sizeof reason_names[0] &&
      reason_names[reason])
    return reason_names[reason];
  return "unknown";
}

static const char *const type_names[] = {
    [MCSEC_MIKE_JOIN] = "join",     [MCSEC_MIKE_WELCOME] = "welcome",
    [MCSEC_MIKE_REFUSE] = "refuse", [MCSEC_MIKE_UPDATE] = "update",
    [MCSEC_MIKE_ACK] = "ack",       [MCSEC_MIKE_EVICTED] = "evicted",
    [MCSEC_MIKE_LEAVE] = "leave",   [MCSEC_MIKE_PING] = "ping",
    [MCSEC_MIKE_PONG] = "pong",
};

const char *
mcsec_mike_type_name (unsigned type)
{
  if (type < sizeof type_names / sizeof type_names[0] && type_names[type])
    return type_names[type];
  return "unknown";
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                     */

static int
valid_string (const uint8_t *v, size_t len)
{
  return len >= 1 && len <= MCSEC_MIKE_MAX_STRING && memchr (v, 0, len) == NULL;
}

/* Runs of repeated attributes (WRAPPED_KEY, PATH_KEY): no other attribute
 * may come between two of them.  The bits of `seen` below RUN_BITS mark the
 * attribute types met once. */
#define RUN_WRAPPED (UINT64_C (1) << 63)
#define RUN_PATH (UINT64_C (1) << 62)
#define ONCE_TYPES 62

static mcsec_status_t
run_attr (const uint8_t *v, size_t len, size_t want, uint64_t run, size_t max,
          const uint8_t **first, size_t *n, uint64_t *seen)
{
  if (len != want || (*n > 0 && !(*seen & run)) || *n >= max)
    return MCSEC_ERR_MALFORMED;
  if (*n == 0)
    *first = v - MCSEC_MIKE_ATTR_HEADER_LEN;
  (*n)++;
  *seen = (*seen & ~(RUN_WRAPPED | RUN_PATH)) | run; /* the run goes on */
  return MCSEC_OK;
}

/* One attribute into msg; MCSEC_ERR_MALFORMED on a bad length or value. */
static mcsec_status_t
parse_attr (mcsec_mike_msg_t *msg, unsigned type, const uint8_t *v, size_t len,
            uint64_t *seen)
{
  if (type == MCSEC_MIKE_A_WRAPPED_KEY)
    return run_attr (v, len, MCSEC_MIKE_WRAPPED_KEY_LEN, RUN_WRAPPED, SIZE_MAX,
                     &msg->wrapped, &msg->n_wrapped, seen);
  if (type == MCSEC_MIKE_A_PATH_KEY)
    return run_attr (v, len, MCSEC_MIKE_PATH_KEY_LEN, RUN_PATH,
                     MCSEC_MIKE_MAX_PATH, &msg->path, &msg->n_path, seen);
  *seen &= ~(RUN_WRAPPED | RUN_PATH); /* any other attribute ends a run */
  /* every attribute below ONCE_TYPES except SA, SENDER and SENDER_ID may
   * appear once (FEEDBACK_SENDER, 64, is above: it repeats) */
  _Static_assert(MCSEC_MIKE_A_FEEDBACK_SENDER >= ONCE_TYPES,
                 "FEEDBACK_SENDER repeats: older parsers must skip it");
  _Static_assert(MCSEC_MIKE_A_SPI_PER_SENDER >= 64,
                 "SPI_PER_SENDER: older parsers must skip it");
  if (type < ONCE_TYPES && type != MCSEC_MIKE_A_SA &&
      type != MCSEC_MIKE_A_SENDER && type != MCSEC_MIKE_A_SENDER_ID) {
    if (*seen & (UINT64_C (1) << type))
      return MCSEC_ERR_MALFORMED;
    *seen |= UINT64_C (1) << type;
  }
  switch (type) {
  case MCSEC_MIKE_A_GROUP:
  case MCSEC_MIKE_A_IDENTITY:
  case MCSEC_MIKE_A_ADDRESS:
  case MCSEC_MIKE_A_TEXT:
  case MCSEC_MIKE_A_CHANNEL_ADDRESS:
    if (!valid_string (v, len))
      return MCSEC_ERR_MALFORMED;
    if (type == MCSEC_MIKE_A_CHANNEL_ADDRESS) {
      msg->channel_address = v;
      msg->channel_address_len = len;
    } else if (type == MCSEC_MIKE_A_GROUP) {
      msg->group = v;
      msg->group_len = len;
    } else if (type == MCSEC_MIKE_A_IDENTITY) {
      msg->identity = v;
      msg->identity_len = len;
    } else if (type == MCSEC_MIKE_A_ADDRESS) {
      msg->address = v;
      msg->address_len = len;
    } else {
      msg->text = v;
      msg->text_len = len;
    }
    return MCSEC_OK;
  case MCSEC_MIKE_A_ROLE:
    if (len != 1 || v[0] < MCSEC_MIKE_ROLE_RECEIVER ||
        v[0] > MCSEC_MIKE_ROLE_FEEDBACK)
      return MCSEC_ERR_MALFORMED;
    msg->role = v[0];
    msg->has_role = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SIGNING_KEY:
  case MCSEC_MIKE_A_CONTROLLER_KEY:
    if (len < 1 || len > MCSEC_MIKE_MAX_SPKI)
      return MCSEC_ERR_MALFORMED;
    if (type == MCSEC_MIKE_A_SIGNING_KEY) {
      msg->signing_key = v;
      msg->signing_key_len = len;
    } else {
      msg->controller_key = v;
      msg->controller_key_len = len;
    }
    return MCSEC_OK;
  case MCSEC_MIKE_A_SENDER_ID:
    if (len != 4 || msg->n_sender_ids >= MCSEC_MIKE_MAX_SENDER_IDS ||
        mcsec_load_be32 (v) == 0)
      return MCSEC_ERR_MALFORMED;
    msg->sender_ids[msg->n_sender_ids++] = mcsec_load_be32 (v);
    msg->sender_id = msg->sender_ids[0];
    msg->has_sender_id = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SENDER_COUNT:
    if (len != 1 || v[0] < 1 || v[0] > MCSEC_MIKE_MAX_SENDER_IDS)
      return MCSEC_ERR_MALFORMED;
    msg->sender_count = v[0];
    return MCSEC_OK;
  case MCSEC_MIKE_A_SENDER_ID_BITS:
    if (len != 1 || v[0] < MCSEC_SENDER_ID_BITS_MIN ||
        v[0] > MCSEC_SENDER_ID_BITS_MAX)
      return MCSEC_ERR_MALFORMED;
    msg->sender_id_bits = v[0];
    msg->has_sender_id_bits = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_PORT:
  case MCSEC_MIKE_A_REASON:
  case MCSEC_MIKE_A_CHANNEL_PORT:
    if (len != 2)
      return MCSEC_ERR_MALFORMED;
    if (type == MCSEC_MIKE_A_CHANNEL_PORT) {
      msg->channel_port = (uint16_t)((v[0] << 8) | v[1]);
      msg->has_channel_port = msg->channel_port != 0;
      if (!msg->has_channel_port)
        return MCSEC_ERR_MALFORMED;
    } else if (type == MCSEC_MIKE_A_PORT) {
      msg->port = (uint16_t)((v[0] << 8) | v[1]);
      msg->has_port = 1;
    } else {
      msg->reason = (uint16_t)((v[0] << 8) | v[1]);
      msg->has_reason = 1;
    }
    return MCSEC_OK;
  case MCSEC_MIKE_A_SAM:
    if (len != 1 || v[0] > MCSEC_SAM_BLOCK)
      return MCSEC_ERR_MALFORMED;
    msg->sam = v[0];
    msg->has_sam = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SEQ:
    if (len != 8)
      return MCSEC_ERR_MALFORMED;
    msg->seq = mcsec_load_be64 (v);
    msg->has_seq = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_NEXT_REKEY:
    if (len != 8 || mcsec_load_be64 (v) == 0)
      return MCSEC_ERR_MALFORMED;
    msg->next_rekey = mcsec_load_be64 (v);
    msg->has_next_rekey = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_DERIVED_SA:
    if (len != MCSEC_MIKE_DERIVED_SA_LEN ||
        mcsec_suite_key_material_len ((mcsec_suite_t)v[4]) == 0 || v[5] != 0 ||
        mcsec_load_be32 (v) < MCSEC_SPI_MIN)
      return MCSEC_ERR_MALFORMED;
    msg->derived_sa.spi = mcsec_load_be32 (v);
    msg->derived_sa.suite = (mcsec_suite_t)v[4];
    msg->derived_sa.activate_in_ms = mcsec_load_be32 (v + 6);
    msg->derived_sa.lifetime_s = mcsec_load_be32 (v + 10);
    msg->derived_sa.key = NULL;
    msg->derived_sa.key_len = 0;
    msg->has_derived_sa = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_DEACTIVATION:
    if (len != 4)
      return MCSEC_ERR_MALFORMED;
    msg->deactivation_ms = mcsec_load_be32 (v);
    msg->has_deactivation = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SA: {
    mcsec_mike_sa_t *sa;
    size_t key_len;
    if (len < MCSEC_MIKE_SA_FIXED_LEN || msg->n_sas >= MCSEC_MIKE_MAX_SAS)
      return MCSEC_ERR_MALFORMED;
    key_len = v[5];
    if (len != MCSEC_MIKE_SA_FIXED_LEN + key_len ||
        mcsec_suite_key_material_len ((mcsec_suite_t)v[4]) != key_len ||
        key_len == 0 || mcsec_load_be32 (v) < MCSEC_SPI_MIN)
      return MCSEC_ERR_MALFORMED;
    sa = &msg->sas[msg->n_sas++];
    sa->spi = mcsec_load_be32 (v);
    sa->suite = (mcsec_suite_t)v[4];
    sa->activate_in_ms = mcsec_load_be32 (v + 6);
    sa->lifetime_s = mcsec_load_be32 (v + 10);
    sa->key = v + MCSEC_MIKE_SA_FIXED_LEN;
    sa->key_len = key_len;
    return MCSEC_OK;
  }
  case MCSEC_MIKE_A_SENDER:
  case MCSEC_MIKE_A_FEEDBACK_SENDER: {
    mcsec_mike_sender_t *s;
    if (len < 5 || len > 4 + MCSEC_MIKE_MAX_SPKI ||
        msg->n_senders >= MCSEC_MIKE_MAX_SENDERS)
      return MCSEC_ERR_MALFORMED;
    s = &msg->senders[msg->n_senders++];
    s->sender_id = mcsec_load_be32 (v);
    s->spki = v + 4;
    s->spki_len = len - 4;
    s->feedback = type == MCSEC_MIKE_A_FEEDBACK_SENDER;
    return MCSEC_OK;
  }
  case MCSEC_MIKE_A_PART:
    if (len != 4)
      return MCSEC_ERR_MALFORMED;
    msg->part_index = (uint16_t)((v[0] << 8) | v[1]);
    msg->part_count = (uint16_t)((v[2] << 8) | v[3]);
    if (msg->part_count == 0 || msg->part_index >= msg->part_count)
      return MCSEC_ERR_MALFORMED;
    msg->has_part = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SPI_PER_SENDER:
    /* a flag: present means 1 (a copy of it changes nothing) */
    if (len != 1 || v[0] != 1)
      return MCSEC_ERR_MALFORMED;
    msg->spi_per_sender = 1;
    return MCSEC_OK;
  case MCSEC_MIKE_A_SIGNATURE:
    if (len != MCSEC_MIKE_SIGNATURE_LEN)
      return MCSEC_ERR_MALFORMED;
    msg->signature = v;
    return MCSEC_OK;
  default:
    return MCSEC_OK; /* unknown: skipped */
  }
}

static int
has_required (const mcsec_mike_msg_t *m)
{
  switch (m->type) {
  case MCSEC_MIKE_JOIN:
    return m->group && m->has_role;
  case MCSEC_MIKE_WELCOME:
    return m->group && m->identity && m->has_role && m->controller_key &&
           m->has_sender_id_bits;
  case MCSEC_MIKE_REFUSE:
    return m->has_reason;
  case MCSEC_MIKE_UPDATE:
    return m->group && m->has_seq && m->has_deactivation && m->signature;
  case MCSEC_MIKE_REKEY:
  case MCSEC_MIKE_HEARTBEAT:
    return m->group && m->has_seq && m->has_part && m->signature &&
           (m->type == MCSEC_MIKE_REKEY || m->n_wrapped == 0);
  case MCSEC_MIKE_REPAIR:
    return m->has_seq;
  case MCSEC_MIKE_ACK:
    return m->has_seq;
  case MCSEC_MIKE_EVICTED:
  case MCSEC_MIKE_LEAVE:
  case MCSEC_MIKE_PING:
  case MCSEC_MIKE_PONG:
    return 1;
  default:
    return 0;
  }
}

mcsec_status_t
mcsec_mike_parse (const uint8_t *frame, size_t len, mcsec_mike_msg_t *msg)
{
  size_t off, flen;
  uint64_t seen = 0;

  if (frame == NULL || msg == NULL)
    return MCSEC_ERR_INVALID_ARG;
  memset (msg, 0, offsetof (mcsec_mike_msg_t, sas));
  msg->n_sas = msg->n_senders = msg->n_wrapped = 0;
  msg->wrapped = NULL;
  msg->has_part = 0;
  msg->part_index = msg->part_count = 0;
  msg->signature = msg->signed_data = NULL;
  msg->signed_len = 0;
  if (len < MCSEC_MIKE_HEADER_LEN)
    return MCSEC_ERR_TOO_SHORT;
  flen = mcsec_load_be32 (frame);
  if (flen + MCSEC_MIKE_LENGTH_LEN != len ||
      flen < MCSEC_MIKE_HEADER_LEN - MCSEC_MIKE_LENGTH_LEN ||
      flen > MCSEC_MIKE_MAX_FRAME)
    return MCSEC_ERR_MALFORMED;
  if (frame[4] != MCSEC_MIKE_VERSION || frame[6] != 0 || frame[7] != 0)
    return MCSEC_ERR_MALFORMED;
  msg->type = frame[5];
  off = MCSEC_MIKE_HEADER_LEN;
  while (off < len) {
    unsigned type;
    size_t alen;
    mcsec_status_t st;
    if (len - off < MCSEC_MIKE_ATTR_HEADER_LEN)
      return MCSEC_ERR_MALFORMED;
    if (msg->signature) /* SIGNATURE must be the last attribute */
      return MCSEC_ERR_MALFORMED;
    type = (unsigned)((frame[off] << 8) | frame[off + 1]);
    alen = (size_t)((frame[off + 2] << 8) | frame[off + 3]);
    if (alen > len - off - MCSEC_MIKE_ATTR_HEADER_LEN)
      return MCSEC_ERR_MALFORMED;
    if (type == MCSEC_MIKE_A_SIGNATURE) {
      msg->signed_data = frame + MCSEC_MIKE_LENGTH_LEN;
      msg->signed_len = off - MCSEC_MIKE_LENGTH_LEN;
    }
    st = parse_attr (msg, type, frame + off + MCSEC_MIKE_ATTR_HEADER_LEN, alen,
                     &seen);
    if (st)
      return st;
    off += MCSEC_MIKE_ATTR_HEADER_LEN + alen;
  }
  return has_required (msg) ? MCSEC_OK : MCSEC_ERR_MALFORMED;
}

void
mcsec_mike_path_key (const mcsec_mike_msg_t *msg, size_t i, uint32_t *node,
                     const uint8_t **key)
{
  const uint8_t *p =
      msg->path + i * (MCSEC_MIKE_ATTR_HEADER_LEN + MCSEC_MIKE_PATH_KEY_LEN) +
      MCSEC_MIKE_ATTR_HEADER_LEN;
  *node = mcsec_load_be32 (p);
  *key = p + 4;
}

void
mcsec_mike_wrapped_key (const mcsec_mike_msg_t *msg, size_t i, uint32_t *node,
                        uint32_t *wrapper, const uint8_t **wrap)
{
  const uint8_t *p =
      msg->wrapped +
      i * (MCSEC_MIKE_ATTR_HEADER_LEN + MCSEC_MIKE_WRAPPED_KEY_LEN) +
      MCSEC_MIKE_ATTR_HEADER_LEN;
  *node = mcsec_load_be32 (p);
  *wrapper = mcsec_load_be32 (p + 4);
  *wrap = p + 8;
}

mcsec_status_t
mcsec_mike_verify (const mcsec_mike_msg_t *msg, EVP_PKEY *controller_key)
{
  EVP_MD_CTX *ctx;
  int ok;

  if (msg == NULL || controller_key == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (msg->signature == NULL || msg->signed_data == NULL)
    return MCSEC_ERR_SIGNATURE;
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  ok = EVP_DigestVerifyInit (ctx, NULL, NULL, NULL, controller_key) == 1 &&
       EVP_DigestVerify (ctx, msg->signature, MCSEC_MIKE_SIGNATURE_LEN,
                         msg->signed_data, msg->signed_len) == 1;
  EVP_MD_CTX_free (ctx);
  return ok ? MCSEC_OK : MCSEC_ERR_SIGNATURE;
}

/* ------------------------------------------------------------------------ */
/* Builder                                                                    */

void
mcsec_mike_begin (mcsec_mike_builder_t *b, uint8_t *buf, size_t cap,
                  mcsec_mike_type_t type)
{
  b->buf = buf;
  b->cap = cap < MCSEC_MIKE_MAX_FRAME + MCSEC_MIKE_LENGTH_LEN
               ? cap
               : MCSEC_MIKE_MAX_FRAME + MCSEC_MIKE_LENGTH_LEN;
  b->len = MCSEC_MIKE_HEADER_LEN;
  b->overflow = 0;
  if (buf == NULL || b->cap < MCSEC_MIKE_HEADER_LEN) {
    b->overflow = 1;
    return;
  }
  memset (buf, 0, MCSEC_MIKE_HEADER_LEN);
  buf[4] = MCSEC_MIKE_VERSION;
  buf[5] = (uint8_t)type;
}

/* Room for an attribute of len bytes: its value's address, or NULL. */
static uint8_t *
put_header (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr, size_t len)
{
  uint8_t *p;

  if (b->overflow || len > 0xffff ||
      b->cap - b->len < MCSEC_MIKE_ATTR_HEADER_LEN + len) {
    b->overflow = 1;
    return NULL;
  }
  p = b->buf + b->len;
  p[0] = (uint8_t)(attr >> 8);
  p[1] = (uint8_t)attr;
  p[2] = (uint8_t)(len >> 8);
  p[3] = (uint8_t)len;
  b->len += MCSEC_MIKE_ATTR_HEADER_LEN + len;
  return p + MCSEC_MIKE_ATTR_HEADER_LEN;
}

void
mcsec_mike_put (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr,
                const void *value, size_t len)
{
  uint8_t *p = put_header (b, attr, len);
  if (p && len)
    memcpy (p, value, len);
}

void
mcsec_mike_put_u8 (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr, uint8_t v)
{
  mcsec_mike_put (b, attr, &v, 1);
}

void
mcsec_mike_put_u16 (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr, uint16_t v)
{
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  mcsec_mike_put (b, attr, x, 2);
}

void
mcsec_mike_put_u32 (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr, uint32_t v)
{
  uint8_t x[4];
  mcsec_store_be32 (x, v);
  mcsec_mike_put (b, attr, x, 4);
}

void
mcsec_mike_put_u64 (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr, uint64_t v)
{
  uint8_t x[8];
  mcsec_store_be64 (x, v);
  mcsec_mike_put (b, attr, x, 8);
}

void
mcsec_mike_put_string (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr,
                       const char *s)
{
  size_t len = s ? strlen (s) : 0;
  if (len < 1 || len > MCSEC_MIKE_MAX_STRING) {
    b->overflow = 1;
    return;
  }
  mcsec_mike_put (b, attr, s, len);
}

void
mcsec_mike_put_sa (mcsec_mike_builder_t *b, const mcsec_mike_sa_t *sa)
{
  uint8_t *p;

  if (sa->key_len > MCSEC_MIKE_MAX_KEY_LEN) {
    b->overflow = 1;
    return;
  }
  p = put_header (b, MCSEC_MIKE_A_SA, MCSEC_MIKE_SA_FIXED_LEN + sa->key_len);
  if (p == NULL)
    return;
  mcsec_store_be32 (p, sa->spi);
  p[4] = (uint8_t)sa->suite;
  p[5] = (uint8_t)sa->key_len;
  mcsec_store_be32 (p + 6, sa->activate_in_ms);
  mcsec_store_be32 (p + 10, sa->lifetime_s);
  memcpy (p + MCSEC_MIKE_SA_FIXED_LEN, sa->key, sa->key_len);
}

void
mcsec_mike_put_path_key (mcsec_mike_builder_t *b, uint32_t node,
                         const uint8_t *key)
{
  uint8_t *p = put_header (b, MCSEC_MIKE_A_PATH_KEY, MCSEC_MIKE_PATH_KEY_LEN);
  if (p == NULL)
    return;
  mcsec_store_be32 (p, node);
  memcpy (p + 4, key, MCSEC_MIKE_PATH_KEY_LEN - 4);
}

void
mcsec_mike_put_derived_sa (mcsec_mike_builder_t *b, const mcsec_mike_sa_t *sa)
{
  uint8_t *p =
      put_header (b, MCSEC_MIKE_A_DERIVED_SA, MCSEC_MIKE_DERIVED_SA_LEN);
  if (p == NULL)
    return;
  mcsec_store_be32 (p, sa->spi);
  p[4] = (uint8_t)sa->suite;
  p[5] = 0;
  mcsec_store_be32 (p + 6, sa->activate_in_ms);
  mcsec_store_be32 (p + 10, sa->lifetime_s);
}

static void
put_sender_attr (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr,
                 uint32_t sender_id, const uint8_t *spki, size_t spki_len)
{
  uint8_t *p;

  if (spki_len > MCSEC_MIKE_MAX_SPKI) {
    b->overflow = 1;
    return;
  }
  p = put_header (b, attr, 4 + spki_len);
  if (p == NULL)
    return;
  mcsec_store_be32 (p, sender_id);
  memcpy (p + 4, spki, spki_len);
}

void
mcsec_mike_put_sender (mcsec_mike_builder_t *b, uint32_t sender_id,
                       const uint8_t *spki, size_t spki_len)
{
  put_sender_attr (b, MCSEC_MIKE_A_SENDER, sender_id, spki, spki_len);
}

void
mcsec_mike_put_feedback_sender (mcsec_mike_builder_t *b, uint32_t sender_id,
                                const uint8_t *spki, size_t spki_len)
{
  put_sender_attr (b, MCSEC_MIKE_A_FEEDBACK_SENDER, sender_id, spki, spki_len);
}

void
mcsec_mike_sign (mcsec_mike_builder_t *b, EVP_PKEY *key)
{
  EVP_MD_CTX *ctx;
  uint8_t *sig;
  size_t sig_len = MCSEC_MIKE_SIGNATURE_LEN, signed_len;

  if (b->overflow || key == NULL) {
    b->overflow = 1;
    return;
  }
  signed_len = b->len - MCSEC_MIKE_LENGTH_LEN;
  sig = put_header (b, MCSEC_MIKE_A_SIGNATURE, MCSEC_MIKE_SIGNATURE_LEN);
  if (sig == NULL)
    return;
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestSignInit (ctx, NULL, NULL, NULL, key) != 1 ||
      EVP_DigestSign (ctx, sig, &sig_len, b->buf + MCSEC_MIKE_LENGTH_LEN,
                      signed_len) != 1 ||
      sig_len != MCSEC_MIKE_SIGNATURE_LEN)
    b->overflow = 2;
  EVP_MD_CTX_free (ctx);
}

mcsec_status_t
mcsec_mike_finish (mcsec_mike_builder_t *b, size_t *len)
{
  if (b->overflow)
    return b->overflow == 2 ? MCSEC_ERR_CRYPTO : MCSEC_ERR_BUFFER_TOO_SMALL;
  mcsec_store_be32 (b->buf, (uint32_t)(b->len - MCSEC_MIKE_LENGTH_LEN));
  *len = b->len;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_mike_public_key_der (EVP_PKEY *key, uint8_t *out, size_t out_size,
                           size_t *out_len)
{
  int n;
  uint8_t *p = out;

  if (key == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  n = i2d_PUBKEY (key, NULL);
  if (n <= 0 || (size_t)n > out_size || (size_t)n > MCSEC_MIKE_MAX_SPKI)
    return MCSEC_ERR_BAD_SIGNING_KEY;
  if (i2d_PUBKEY (key, &p) != n)
    return MCSEC_ERR_CRYPTO;
  *out_len = (size_t)n;
  return MCSEC_OK;
}

/* ------------------------------------------------------------------------ */
/* Frame reader                                                               */

/* The reader's buffer: every byte past len is wiped (reader_consume wipes
 * what it moves down from), so wiping the first len bytes wipes all it
 * held; it starts small (a member's PING is 8 bytes, and a controller
 * frees the buffer of each of its idle members). */
#define READER_MIN_CAP 256

/* Remove the first n bytes (a frame that was handled). */
static void
reader_consume (mcsec_mike_reader_t *r, size_t n)
{
  memmove (r->buf, r->buf + n, r->len - n);
  OPENSSL_cleanse (r->buf + r->len - n, n);
  r->len -= n;
}

mcsec_status_t
mcsec_mike_reader_feed (mcsec_mike_reader_t *r, const uint8_t *data, size_t len)
{
  if (r->handed) {
    reader_consume (r, r->handed);
    r->handed = 0;
  }
  if (len == 0)
    return MCSEC_OK;
  if (r->len + len > r->cap) {
    /* never more than one maximal frame plus what arrived with it */
    size_t cap = r->cap ? r->cap : READER_MIN_CAP;
    uint8_t *nb;
    while (cap < r->len + len)
      cap *= 2;
    if (cap > 2 * (MCSEC_MIKE_MAX_FRAME + MCSEC_MIKE_LENGTH_LEN) + len)
      return MCSEC_ERR_TOO_LONG;
    nb = malloc (cap);
    if (nb == NULL)
      return MCSEC_ERR_NO_MEMORY;
    if (r->len)
      memcpy (nb, r->buf, r->len);
    if (r->buf) {
      OPENSSL_cleanse (r->buf, r->len);
      free (r->buf);
    }
    r->buf = nb;
    r->cap = cap;
  }
  memcpy (r->buf + r->len, data, len);
  r->len += len;
  if (r->len >= MCSEC_MIKE_LENGTH_LEN) {
    uint32_t flen = mcsec_load_be32 (r->buf);
    if (flen > MCSEC_MIKE_MAX_FRAME ||
        flen < MCSEC_MIKE_HEADER_LEN - MCSEC_MIKE_LENGTH_LEN)
      return MCSEC_ERR_MALFORMED;
  }
  return MCSEC_OK;
}

/* The frame returned last time stays at the start of buf until this call
 * removes it. */
size_t
mcsec_mike_reader_next (mcsec_mike_reader_t *r, const uint8_t **frame)
{
  size_t flen;

  if (r->handed) {
    reader_consume (r, r->handed);
    r->handed = 0;
  }
  if (r->len < MCSEC_MIKE_LENGTH_LEN)
    return 0;
  flen = (size_t)mcsec_load_be32 (r->buf) + MCSEC_MIKE_LENGTH_LEN;
  if (flen > MCSEC_MIKE_MAX_FRAME + MCSEC_MIKE_LENGTH_LEN ||
      flen < MCSEC_MIKE_HEADER_LEN || r->len < flen)
    return 0;
  *frame = r->buf;
  r->handed = flen;
  return flen;
}

void
mcsec_mike_reader_clear (mcsec_mike_reader_t *r)
{
  if (r->buf) {
    OPENSSL_cleanse (r->buf, r->len); /* nothing is past len */
    free (r->buf);
  }
  r->buf = NULL;
  r->len = r->cap = r->handed = 0;
}
