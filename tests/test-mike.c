/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-mike: the MIKE codec and the member state machine, driven by a
 * controller played by the test (docs/mike-protocol.md): framing and every
 * bound of the parser, reassembly of frames cut anywhere, the join, and the
 * updates a member must reject (tampered, signed by someone else, unsigned,
 * stale, replayed) next to the ones it must apply (activation, retirement,
 * a rejoin after a controller restart), the refusals of a cluster that are
 * not final (not-leader, unavailable), groups with per-sender SPIs
 * (SPI_PER_SENDER: the attribute, the WELCOMEs and SAs a member refuses,
 * the MSA's flag, address and port, a packet under SPI | Sender-ID).
 */
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <mcsec/mcsec-mike.h>
#include <mcsec/mcsec-rekey.h>

#include "mcsec-test.h"

static EVP_PKEY *ctl_key, *other_key, *sam_key;
static uint8_t ctl_spki[MCSEC_MIKE_MAX_SPKI];
static size_t ctl_spki_len;

typedef struct {
  uint8_t buf[8192];
  size_t len;
} frame_t;

/* What a WELCOME says beyond its group, role and Sender-IDs: the
 * Sender-ID width; per_sender: SPI_PER_SENDER's value bytes (NULL: none);
 * address and port: ADDRESS and PORT (NULL, 0: none); channel: a key tree
 * group's. */
typedef struct {
  uint8_t bits;
  const uint8_t *per_sender;
  size_t per_sender_len;
  const char *address;
  uint16_t port;
  int channel;
} welcome_opts_t;

static void
build_welcome_opts (frame_t *f, const char *group, unsigned role,
                    const uint32_t *sids, size_t n_sids,
                    const welcome_opts_t *o)
{
  mcsec_mike_builder_t b;
  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, group);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, "cam1");
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)role);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl_spki, ctl_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS, o->bits);
  for (size_t i = 0; i < n_sids; i++)
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, sids[i]);
  if (o->address)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_ADDRESS, o->address);
  if (o->port)
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_PORT, o->port);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, MCSEC_SAM_BLOCK);
  if (o->per_sender)
    mcsec_mike_put (&b, MCSEC_MIKE_A_SPI_PER_SENDER, o->per_sender,
                    o->per_sender_len);
  if (o->channel) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS, "239.255.1.1");
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, 5100);
  }
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

static void
build_welcome (frame_t *f, const char *group, unsigned role,
               const uint32_t *sids, size_t n_sids)
{
  welcome_opts_t o = {16, NULL, 0, NULL, 0, 0};
  build_welcome_opts (f, group, role, sids, n_sids, &o);
}

typedef struct {
  uint32_t spi;
  uint32_t activate_in;
  uint8_t key_byte;
} test_sa_t;

static void
build_update (frame_t *f, EVP_PKEY *key, uint64_t seq, const test_sa_t *sas,
              size_t n, uint32_t deactivation)
{
  mcsec_mike_builder_t b;
  uint8_t k[MCSEC_MIKE_MAX_KEY_LEN];
  uint8_t spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len;

  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, deactivation);
  for (size_t i = 0; i < n; i++) {
    mcsec_mike_sa_t sa = {0};
    memset (k, sas[i].key_byte, sizeof k);
    sa.spi = sas[i].spi;
    sa.suite = MCSEC_SUITE_AES_128_GCM;
    sa.activate_in_ms = sas[i].activate_in;
    sa.lifetime_s = 3600;
    sa.key = k;
    sa.key_len = mcsec_suite_key_material_len (sa.suite);
    mcsec_mike_put_sa (&b, &sa);
  }
  REQUIRE (mcsec_mike_public_key_der (sam_key, spki, sizeof spki, &spki_len) ==
           MCSEC_OK);
  mcsec_mike_put_sender (&b, 7, spki, spki_len);
  if (key)
    mcsec_mike_sign (&b, key);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

/* Pop events until one of `type`; 1 if found. */
static int
has_event (mcsec_member_t *m, mcsec_member_event_type_t type,
           mcsec_member_event_t *out)
{
  mcsec_member_event_t ev;
  int found = 0;
  while (mcsec_member_next_event (m, &ev))
    if (ev.type == type && !found) {
      found = 1;
      if (out)
        *out = ev;
    }
  return found;
}

/* The frames the member wrote, parsed; returns how many had `type`. */
static int
output_has (mcsec_member_t *m, mcsec_mike_type_t type, uint64_t *seq)
{
  const uint8_t *data;
  size_t n = mcsec_member_output (m, &data), off = 0;
  int count = 0;
  static mcsec_mike_msg_t msg;

  while (off + 4 <= n) {
    size_t flen = ((size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
                   (size_t)data[off + 2] << 8 | data[off + 3]) +
                  4;
    REQUIRE (off + flen <= n);
    REQUIRE (mcsec_mike_parse (data + off, flen, &msg) == MCSEC_OK);
    if (msg.type == type) {
      count++;
      if (seq && msg.has_seq)
        *seq = msg.seq;
    }
    off += flen;
  }
  mcsec_member_written (m, n);
  return count;
}

static const mcsec_msa_sa_t *
msa_find (const mcsec_msa_t *msa, uint32_t spi)
{
  for (size_t i = 0; msa && i < msa->n_sas; i++)
    if (msa->sas[i].spi == spi)
      return &msa->sas[i];
  return NULL;
}

static uint32_t
msa_sending (const mcsec_msa_t *msa)
{
  for (size_t i = 0; msa && i < msa->n_sas; i++)
    if (msa->sas[i].sending)
      return msa->sas[i].spi;
  return 0;
}

static void
test_codec (void)
{
  frame_t f;
  static mcsec_mike_msg_t msg;
  test_sa_t sas[2] = {{0x1111, 0, 0xaa}, {0x2222, 500, 0xbb}};
  uint8_t copy[8192];

  build_update (&f, ctl_key, 42, sas, 2, 1500);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  CHECK (msg.type == MCSEC_MIKE_UPDATE && msg.seq == 42);
  CHECK (msg.n_sas == 2 && msg.sas[1].spi == 0x2222 &&
         msg.sas[1].activate_in_ms == 500 && msg.sas[1].key_len == 20 &&
         msg.sas[1].key[0] == 0xbb);
  CHECK (msg.deactivation_ms == 1500 && msg.n_senders == 1 &&
         msg.senders[0].sender_id == 7);
  CHECK_STATUS (mcsec_mike_verify (&msg, ctl_key), MCSEC_OK);
  CHECK_STATUS (mcsec_mike_verify (&msg, other_key), MCSEC_ERR_SIGNATURE);

  /* every truncation is refused; so is a length that disagrees */
  for (size_t n = 0; n < f.len; n++)
    CHECK (mcsec_mike_parse (f.buf, n, &msg) != MCSEC_OK);
  /* every flipped bit either breaks the parse or the signature */
  {
    int undetected = 0;
    for (size_t i = 0; i < f.len; i++)
      for (int bit = 0; bit < 8; bit++) {
        memcpy (copy, f.buf, f.len);
        copy[i] ^= (uint8_t)(1u << bit);
        if (mcsec_mike_parse (copy, f.len, &msg) == MCSEC_OK &&
            mcsec_mike_verify (&msg, ctl_key) == MCSEC_OK)
          undetected++;
      }
    CHECK (undetected == 0);
  }

  /* malformed shapes */
  {
    mcsec_mike_builder_t b;
    uint8_t k[20] = {0};
    mcsec_mike_sa_t sa = {0x100, MCSEC_SUITE_AES_128_GCM, 0, 0, k, 20};
    size_t len;
    /* GROUP twice */
    mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "a");
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "b");
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, 1);
    REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_ERR_MALFORMED);
    /* a required attribute missing (ROLE) */
    mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "a");
    REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_ERR_MALFORMED);
    /* an unknown attribute is skipped */
    mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "a");
    mcsec_mike_put (&b, (mcsec_mike_attr_t)999, "xyz", 3);
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, 1);
    REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_OK);
    /* an attribute after SIGNATURE */
    build_update (&f, ctl_key, 1, NULL, 0, 0);
    b.buf = f.buf;
    b.cap = sizeof f.buf;
    b.len = f.len;
    b.overflow = 0;
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, 0);
    REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_ERR_MALFORMED);
    /* an SA whose key length does not fit its suite, or with a reserved
     * SPI */
    for (int bad = 0; bad < 2; bad++) {
      mcsec_mike_sa_t s2 = sa;
      if (bad == 0)
        s2.key_len = 19;
      else
        s2.spi = 255;
      mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_UPDATE);
      mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
      mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 1);
      mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 0);
      mcsec_mike_put_sa (&b, &s2);
      mcsec_mike_sign (&b, ctl_key);
      REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
      CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_ERR_MALFORMED);
    }
    /* a version or reserved byte we do not speak */
    build_update (&f, ctl_key, 1, NULL, 0, 0);
    f.buf[4] = 2;
    CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_ERR_MALFORMED);
    f.buf[4] = 1;
    f.buf[7] = 1;
    CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_ERR_MALFORMED);
    /* an overflowing builder reports it */
    mcsec_mike_begin (&b, f.buf, 16, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "a-long-group-name");
    CHECK_STATUS (mcsec_mike_finish (&b, &len), MCSEC_ERR_BUFFER_TOO_SMALL);
  }
}

/* Whether buf's first `cap` bytes (as far as it was ever written) hold any
 * 8 bytes of frame that are not all one value (a run of zeros may be
 * anything's). */
static int
holds_part (const uint8_t *buf, size_t cap, const uint8_t *frame, size_t len)
{
  for (size_t i = 0; buf && i + 8 <= len; i++) {
    int uniform = 1;
    for (size_t k = 1; k < 8; k++)
      uniform &= frame[i + k] == frame[i];
    if (!uniform && memmem (buf, cap, frame + i, 8) != NULL)
      return 1;
  }
  return 0;
}

static void
test_reader (void)
{
  frame_t a, b;
  test_sa_t sas[1] = {{0x3333, 0, 1}};
  uint8_t stream[16384];
  size_t total;

  build_update (&a, ctl_key, 5, sas, 1, 100);
  build_welcome (&b, "video", 1, NULL, 0);
  memcpy (stream, a.buf, a.len);
  memcpy (stream + a.len, b.buf, b.len);
  total = a.len + b.len;
  /* cut the stream at every place: the same two frames come out */
  for (size_t cut = 0; cut <= total; cut++) {
    mcsec_mike_reader_t r = {0};
    const uint8_t *fr;
    size_t n, got = 0, hwm;
    int ok = 1;
    CHECK_STATUS (mcsec_mike_reader_feed (&r, stream, cut), MCSEC_OK);
    hwm = r.len;
    while ((n = mcsec_mike_reader_next (&r, &fr)) > 0) {
      ok &= got == 0 ? (n == a.len && !memcmp (fr, a.buf, n))
                     : (n == b.len && !memcmp (fr, b.buf, n));
      got++;
    }
    CHECK_STATUS (mcsec_mike_reader_feed (&r, stream + cut, total - cut),
                  MCSEC_OK);
    if (r.len > hwm) /* as far as the buffer was ever written */
      hwm = r.len;
    while ((n = mcsec_mike_reader_next (&r, &fr)) > 0) {
      ok &= got == 0 ? (n == a.len && !memcmp (fr, a.buf, n))
                     : (n == b.len && !memcmp (fr, b.buf, n));
      got++;
    }
    CHECK (ok && got == 2);
    /* all taken: nothing of the frames is left in the buffer (the reader
     * grows and clears it wiping only up to its length) */
    CHECK (r.len == 0 && hwm <= r.cap &&
           !holds_part (r.buf, hwm, a.buf, a.len) &&
           !holds_part (r.buf, hwm, b.buf, b.len));
    mcsec_mike_reader_clear (&r);
  }
  /* an impossible length is refused at once */
  {
    mcsec_mike_reader_t r = {0};
    uint8_t bad[4] = {0x00, 0x01, 0x00, 0x01}; /* 65537 */
    CHECK_STATUS (mcsec_mike_reader_feed (&r, bad, 4), MCSEC_ERR_MALFORMED);
    mcsec_mike_reader_clear (&r);
  }
}

static void
test_member (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_SENDER, NULL, 2};
  mcsec_member_t *m = NULL;
  mcsec_member_event_t ev;
  mcsec_msa_t *msa = NULL;
  frame_t f;
  uint32_t sids[2] = {41, 42};
  uint64_t t = 1000, seq = 0, gen;
  int dead;
  test_sa_t a = {0xa000, 0, 0xa1}, b = {0xb000, 500, 0xb1},
            c = {0xc000, 0, 0xc1};
  test_sa_t ab[2] = {a, b};

  /* a sender needs its key */
  CHECK_STATUS (mcsec_member_new (&cfg, &m), MCSEC_ERR_BAD_SIGNING_KEY);
  cfg.sam_key = sam_key;
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_IDLE);
  mcsec_member_connected (m, t);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINING);
  CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);

  /* WELCOME for another group: the connection is wrong */
  build_welcome (&f, "audio", MCSEC_MIKE_ROLE_SENDER, sids, 2);
  CHECK (mcsec_member_receive (m, f.buf, f.len, t) != MCSEC_OK);
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  /* WELCOME with fewer Sender-IDs than asked: wrong too */
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1);
  CHECK (mcsec_member_receive (m, f.buf, f.len, t) != MCSEC_OK);
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);

  /* the join: WELCOME, then the first update */
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  build_update (&f, ctl_key, 10, &a, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, &ev) && ev.seq == 10);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINED);
  CHECK (output_has (m, MCSEC_MIKE_ACK, &seq) == 1 && seq == 10);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->may_send && msa->n_sender_ids == 2 && msa->sender_ids[1] == 42);
  CHECK (msa_sending (msa) == 0xa000 && msa->n_senders == 1);
  CHECK (msa_find (msa, 0xa000)->key[0] == 0xa1);
  mcsec_msa_free (msa);
  gen = mcsec_member_generation (m);

  /* tampered: one key byte changed after signing */
  build_update (&f, ctl_key, 11, ab, 2, 1000);
  f.buf[f.len - 80] ^= 1;
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_SIGNATURE);
  /* signed by another key */
  build_update (&f, other_key, 11, ab, 2, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_SIGNATURE);
  /* replayed (the same SEQ) and out of order (an older one) */
  build_update (&f, ctl_key, 10, ab, 2, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_STALE_UPDATE);
  build_update (&f, ctl_key, 9, ab, 2, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_STALE_UPDATE);
  CHECK (mcsec_member_rejected_updates (m) == 4);
  CHECK (mcsec_member_generation (m) == gen);
  CHECK (output_has (m, MCSEC_MIKE_ACK, NULL) == 0);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->n_sas == 1 && msa_find (msa, 0xb000) == NULL);
  mcsec_msa_free (msa);
  /* unsigned: not even a valid UPDATE; the connection must go */
  build_update (&f, NULL, 12, ab, 2, 1000);
  CHECK (mcsec_member_receive (m, f.buf, f.len, t) != MCSEC_OK);
  CHECK (mcsec_member_rejected_updates (m) == 5);
  mcsec_member_disconnected (m, t);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_DISCONNECTED);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  build_update (&f, ctl_key, 11, &a, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  has_event (m, MCSEC_MEMBER_EV_JOINED, NULL);

  /* a rekey: B installed at once for reception, sent with after 500 ms */
  build_update (&f, ctl_key, 12, ab, 2, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_UPDATED, &ev) && ev.seq == 12);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xb000) && !msa_find (msa, 0xb000)->active);
  CHECK (msa_sending (msa) == 0xa000);
  mcsec_msa_free (msa);
  mcsec_member_tick (m, t + 499, &dead);
  CHECK (!has_event (m, MCSEC_MEMBER_EV_SA_CHANGED, NULL));
  CHECK (mcsec_member_tick (m, t + 499, &dead) <= t + 500);
  mcsec_member_tick (m, t + 500, &dead);
  CHECK (has_event (m, MCSEC_MEMBER_EV_SA_CHANGED, NULL));
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_sending (msa) == 0xb000 && msa_find (msa, 0xa000));
  mcsec_msa_free (msa);
  /* A leaves the update (which arrives at t + 600, B in use since t + 500):
   * kept until DEACTIVATION after the later of the two */
  build_update (&f, ctl_key, 13, &b, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t + 600), MCSEC_OK);
  mcsec_member_tick (m, t + 1599, &dead);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xa000) != NULL);
  mcsec_msa_free (msa);
  mcsec_member_tick (m, t + 1600, &dead);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xa000) == NULL && msa_sending (msa) == 0xb000);
  mcsec_msa_free (msa);

  /* B replaced by D before B was used (another leave): B is withdrawn at
   * once and never sent with; C (in use) stays until D is */
  {
    test_sa_t c2 = {0xc200, 500, 0xc2}, d = {0xd000, 500, 0xd1};
    uint64_t u = t + 3000;
    build_update (&f, ctl_key, 14, &c2, 1, 200);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, u), MCSEC_OK);
    build_update (&f, ctl_key, 15, &d, 1, 200);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, u + 100), MCSEC_OK);
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_find (msa, 0xc200) == NULL && msa_sending (msa) == 0xb000);
    mcsec_msa_free (msa);
    mcsec_member_tick (m, u + 550, &dead);
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_sending (msa) == 0xb000 && msa_find (msa, 0xb000));
    mcsec_msa_free (msa);
    mcsec_member_tick (m, u + 600, &dead);
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_sending (msa) == 0xd000 && msa_find (msa, 0xb000));
    mcsec_msa_free (msa);
    mcsec_member_tick (m, u + 800, &dead);
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_find (msa, 0xb000) == NULL && msa->n_sas == 1);
    mcsec_msa_free (msa);
    t = u + 800;
  }

  /* pings, and a controller gone silent */
  t += 2000;
  {
    frame_t p;
    mcsec_mike_builder_t bb;
    mcsec_mike_begin (&bb, p.buf, sizeof p.buf, MCSEC_MIKE_PING);
    REQUIRE (mcsec_mike_finish (&bb, &p.len) == MCSEC_OK);
    CHECK_STATUS (mcsec_member_receive (m, p.buf, p.len, t), MCSEC_OK);
    CHECK (output_has (m, MCSEC_MIKE_PONG, NULL) == 1);
  }
  mcsec_member_tick (m, t + MCSEC_MIKE_PING_MS, &dead);
  CHECK (!dead && output_has (m, MCSEC_MIKE_PING, NULL) == 1);
  mcsec_member_tick (m, t + MCSEC_MIKE_DEAD_MS, &dead);
  CHECK (dead);

  /* the controller restarted: keys kept while disconnected; the new one
   * starts its SEQ lower and omits D, which stays through the grace */
  mcsec_member_disconnected (m, t);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_sending (msa) == 0xd000);
  mcsec_msa_free (msa);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  sids[0] = 77;
  sids[1] = 78;
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  c.activate_in = 300;
  build_update (&f, ctl_key, 3, &c, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  mcsec_member_tick (m, t + 300 + 1000 + MCSEC_MIKE_REJOIN_GRACE_MS - 1, &dead);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xd000) && msa_sending (msa) == 0xc000);
  CHECK (msa->sender_ids[0] == 77);
  mcsec_msa_free (msa);
  mcsec_member_tick (m, t + 300 + 1000 + MCSEC_MIKE_REJOIN_GRACE_MS, &dead);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xd000) == NULL);
  mcsec_msa_free (msa);
  /* and from then on only newer updates */
  build_update (&f, ctl_key, 3, &c, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_STALE_UPDATE);

  /* evicted: final, and nothing after it counts */
  {
    frame_t e;
    mcsec_mike_builder_t bb;
    mcsec_mike_begin (&bb, e.buf, sizeof e.buf, MCSEC_MIKE_EVICTED);
    mcsec_mike_put_u16 (&bb, MCSEC_MIKE_A_REASON, MCSEC_MIKE_REASON_EVICTED);
    mcsec_mike_put_string (&bb, MCSEC_MIKE_A_TEXT, "bye");
    REQUIRE (mcsec_mike_finish (&bb, &e.len) == MCSEC_OK);
    build_update (&f, ctl_key, 50, &a, 1, 0);
    memcpy (e.buf + e.len, f.buf, f.len);
    CHECK_STATUS (mcsec_member_receive (m, e.buf, e.len + f.len, t), MCSEC_OK);
    CHECK (has_event (m, MCSEC_MEMBER_EV_EVICTED, &ev) &&
           ev.reason == MCSEC_MIKE_REASON_EVICTED && !strcmp (ev.text, "bye"));
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_EVICTED);
    CHECK (mcsec_member_last_seq (m) == 3);
    mcsec_member_connected (m, t);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_EVICTED);
  }
  mcsec_member_free (m);

  /* refused: final too */
  cfg.role = MCSEC_MIKE_ROLE_RECEIVER;
  cfg.sam_key = NULL;
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  {
    frame_t r;
    mcsec_mike_builder_t bb;
    mcsec_mike_begin (&bb, r.buf, sizeof r.buf, MCSEC_MIKE_REFUSE);
    mcsec_mike_put_u16 (&bb, MCSEC_MIKE_A_REASON,
                        MCSEC_MIKE_REASON_NOT_AUTHORISED);
    REQUIRE (mcsec_mike_finish (&bb, &r.len) == MCSEC_OK);
    CHECK_STATUS (mcsec_member_receive (m, r.buf, r.len, t), MCSEC_OK);
  }
  CHECK (has_event (m, MCSEC_MEMBER_EV_REFUSED, &ev) &&
         ev.reason == MCSEC_MIKE_REASON_NOT_AUTHORISED);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_REFUSED);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK);
  CHECK (msa == NULL);
  mcsec_member_free (m);
}

static void
build_refuse (frame_t *f, unsigned reason, const char *text)
{
  mcsec_mike_builder_t b;
  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_REFUSE);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, (uint16_t)reason);
  if (text)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_TEXT, text);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

/* The member's only pending event is of `type` (copied to out). */
static int
only_event (mcsec_member_t *m, mcsec_member_event_type_t type,
            mcsec_member_event_t *out)
{
  mcsec_member_event_t ev, extra;
  int ok = mcsec_member_next_event (m, &ev) && ev.type == type;
  while (mcsec_member_next_event (m, &extra)) {
    fprintf (stderr, "unexpected event %s\n",
             mcsec_member_event_name (extra.type));
    ok = 0;
  }
  if (out)
    *out = ev;
  return ok;
}

/* A controller of a cluster that cannot take the member in (not-leader,
 * unavailable) refuses without finality: the member keeps its keys, goes
 * back to IDLE (never joined) or DISCONNECTED (a member) and says
 * REDIRECTED, not REFUSED; a later JOIN at another controller succeeds.
 * Every other reason, known or not, stays final. */
static void
test_member_redirect (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_SENDER, sam_key, 1};
  mcsec_member_t *m;
  mcsec_member_event_t ev;
  mcsec_msa_t *msa = NULL;
  frame_t f, g;
  uint32_t sid = 5;
  uint64_t t = 1000, gen;
  int dead;
  test_sa_t a = {0xa100, 0, 0xa1}, b = {0xb100, 0, 0xb1};
  const unsigned finals[] = {MCSEC_MIKE_REASON_NOT_AUTHORISED,
                             MCSEC_MIKE_REASON_SHUTTING_DOWN, 11, 999};

  CHECK (strcmp (mcsec_member_event_name (MCSEC_MEMBER_EV_REDIRECTED),
                 "redirected") == 0);
  CHECK (strcmp (mcsec_mike_reason_name (MCSEC_MIKE_REASON_NOT_LEADER),
                 "not-leader") == 0 &&
         strcmp (mcsec_mike_reason_name (MCSEC_MIKE_REASON_UNAVAILABLE),
                 "unavailable") == 0);

  /* never joined: a follower names the leader; back to IDLE, and what
   * follows the refusal in the same read does not count */
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);
  build_refuse (&f, MCSEC_MIKE_REASON_NOT_LEADER, "leader=10.0.0.2:7700");
  build_welcome (&g, "video", MCSEC_MIKE_ROLE_SENDER, &sid, 1);
  memcpy (f.buf + f.len, g.buf, g.len);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len + g.len, t), MCSEC_OK);
  CHECK (only_event (m, MCSEC_MEMBER_EV_REDIRECTED, &ev) &&
         ev.reason == MCSEC_MIKE_REASON_NOT_LEADER &&
         strcmp (ev.text, "leader=10.0.0.2:7700") == 0);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_IDLE);
  /* the connection is over (the client closes it): nothing more is taken,
   * no join timeout runs */
  CHECK_STATUS (mcsec_member_receive (m, g.buf, g.len, t),
                MCSEC_ERR_INVALID_ARG);
  mcsec_member_tick (m, t + MCSEC_MIKE_JOIN_TIMEOUT_MS, &dead);
  CHECK (!dead);
  mcsec_member_disconnected (m, t);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_IDLE);
  CHECK (mcsec_member_msa (m, &msa) == MCSEC_OK && msa == NULL);

  /* the next controller cannot reach the cluster's store: the same */
  mcsec_member_connected (m, t);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINING);
  CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);
  build_refuse (&f, MCSEC_MIKE_REASON_UNAVAILABLE, "no quorum");
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (only_event (m, MCSEC_MEMBER_EV_REDIRECTED, &ev) &&
         ev.reason == MCSEC_MIKE_REASON_UNAVAILABLE &&
         strcmp (ev.text, "no quorum") == 0);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_IDLE);
  mcsec_member_disconnected (m, t);

  /* the leader takes it in */
  mcsec_member_connected (m, t);
  CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);
  CHECK_STATUS (mcsec_member_receive (m, g.buf, g.len, t), MCSEC_OK);
  build_update (&f, ctl_key, 10, &a, 1, 500);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINED);
  CHECK (output_has (m, MCSEC_MIKE_ACK, NULL) == 1);

  /* the leader dies; the controllers the member tries next do not lead
   * the group (any more, or yet) or cannot reach the store: it stays a
   * disconnected member, its keys and its Sender-ID in use throughout */
  mcsec_member_disconnected (m, t + 100);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_DISCONNECTED);
  gen = mcsec_member_generation (m);
  for (int i = 0; i < 2; i++) {
    mcsec_member_connected (m, t + 200);
    CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);
    build_refuse (
        &f, i ? MCSEC_MIKE_REASON_UNAVAILABLE : MCSEC_MIKE_REASON_NOT_LEADER,
        i ? NULL : "leader=unknown");
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t + 200), MCSEC_OK);
    CHECK (only_event (m, MCSEC_MEMBER_EV_REDIRECTED, &ev) &&
           ev.reason == (i ? MCSEC_MIKE_REASON_UNAVAILABLE
                           : MCSEC_MIKE_REASON_NOT_LEADER) &&
           strcmp (ev.text, i ? "" : "leader=unknown") == 0);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_DISCONNECTED);
    mcsec_member_disconnected (m, t + 200);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_DISCONNECTED);
  }
  mcsec_member_tick (m, t + 60000, &dead);
  CHECK (!dead && mcsec_member_generation (m) == gen);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->n_sas == 1 && msa_sending (msa) == 0xa100 &&
         msa->sender_ids[0] == 5 && msa->may_send);
  mcsec_msa_free (msa);

  /* the new leader (its SEQ lower, a new SA): joined again, the old SA
   * kept through the rejoin grace */
  t += 60000;
  mcsec_member_connected (m, t);
  CHECK (output_has (m, MCSEC_MIKE_JOIN, NULL) == 1);
  sid = 6;
  build_welcome (&g, "video", MCSEC_MIKE_ROLE_SENDER, &sid, 1);
  CHECK_STATUS (mcsec_member_receive (m, g.buf, g.len, t), MCSEC_OK);
  build_update (&f, ctl_key, 3, &b, 1, 500);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, &ev) && ev.seq == 3);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINED);
  mcsec_member_tick (m, t + 500 + MCSEC_MIKE_REJOIN_GRACE_MS - 1, &dead);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa_find (msa, 0xa100) && msa_sending (msa) == 0xb100 &&
         msa->sender_ids[0] == 6);
  mcsec_msa_free (msa);
  mcsec_member_free (m);

  /* any other reason is final, for a newcomer and for a member */
  cfg.role = MCSEC_MIKE_ROLE_RECEIVER;
  cfg.sam_key = NULL;
  for (size_t i = 0; i < sizeof finals / sizeof finals[0]; i++) {
    REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
    if (i % 2) { /* a member first */
      mcsec_member_connected (m, t);
      build_welcome (&g, "video", MCSEC_MIKE_ROLE_RECEIVER, NULL, 0);
      CHECK_STATUS (mcsec_member_receive (m, g.buf, g.len, t), MCSEC_OK);
      build_update (&f, ctl_key, 10, &a, 1, 500);
      CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
      CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINED);
      mcsec_member_disconnected (m, t);
      has_event (m, MCSEC_MEMBER_EV_JOINED, NULL);
    }
    mcsec_member_connected (m, t);
    build_refuse (&f, finals[i], "no");
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
    CHECK (only_event (m, MCSEC_MEMBER_EV_REFUSED, &ev) &&
           ev.reason == finals[i]);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_REFUSED);
    mcsec_member_disconnected (m, t);
    mcsec_member_connected (m, t);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_REFUSED);
    mcsec_member_free (m);
  }
}

/* The SA key of a key tree group as docs/mike-protocol.md spells it,
 * computed with OpenSSL's other HKDF interface (EVP_PKEY), not the
 * library's. */
static void
expected_sa_key (const uint8_t *group_key, const char *group, uint32_t spi,
                 mcsec_suite_t suite, uint8_t *out, size_t len)
{
  uint8_t info[300];
  size_t n = 0, outlen = len;
  EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id (EVP_PKEY_HKDF, NULL);

  memcpy (info, "mcsec sa v1", 12); /* with its 0 */
  n = 12;
  memcpy (info + n, group, strlen (group) + 1);
  n += strlen (group) + 1;
  info[n++] = (uint8_t)(spi >> 24);
  info[n++] = (uint8_t)(spi >> 16);
  info[n++] = (uint8_t)(spi >> 8);
  info[n++] = (uint8_t)spi;
  info[n++] = (uint8_t)suite;
  REQUIRE (pctx && EVP_PKEY_derive_init (pctx) == 1 &&
           EVP_PKEY_CTX_set_hkdf_md (pctx, EVP_sha256 ()) == 1 &&
           EVP_PKEY_CTX_set1_hkdf_key (pctx, group_key, MCSEC_LKH_KEY_LEN) ==
               1 &&
           EVP_PKEY_CTX_add1_hkdf_info (pctx, info, (int)n) == 1 &&
           EVP_PKEY_derive (pctx, out, &outlen) == 1 && outlen == len);
  EVP_PKEY_CTX_free (pctx);
}

/* A key tree group's controller for the member under test: the tree, the
 * channel's sender, the SA of the last commit. */
typedef struct {
  mcsec_lkh_t *tree;
  mcsec_rekey_tx_t *tx;
  uint32_t spi;
  uint8_t key[MCSEC_MIKE_MAX_KEY_LEN];
} tree_ctl_t;

/* Commit and publish; the rekey's SEQ. */
static uint64_t
tree_rekey (tree_ctl_t *c, mcsec_rekey_tx_t *tx)
{
  const mcsec_lkh_entry_t *e;
  size_t n;
  uint64_t seq;
  unsigned parts;
  mcsec_mike_sa_t sa = {0};
  uint8_t spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len;
  mcsec_mike_sender_t sender;
  mcsec_rekey_t r;

  REQUIRE (mcsec_lkh_commit (c->tree, &e, &n) == MCSEC_OK);
  c->spi++;
  sa.spi = c->spi;
  sa.suite = MCSEC_SUITE_AES_256_GCM;
  sa.activate_in_ms = 100;
  REQUIRE (mcsec_lkh_derive_sa_key (mcsec_lkh_group_key (c->tree), "video",
                                    sa.spi, sa.suite, c->key, 36) == MCSEC_OK);
  REQUIRE (mcsec_mike_public_key_der (sam_key, spki, sizeof spki, &spki_len) ==
           MCSEC_OK);
  sender.sender_id = 7;
  sender.spki = spki;
  sender.spki_len = spki_len;
  r.entries = e;
  r.n = n;
  r.sa = &sa;
  r.deactivation_ms = 1000;
  r.senders = &sender;
  r.n_senders = 1;
  REQUIRE (mcsec_rekey_tx_publish (tx, &r, &seq, &parts) == MCSEC_OK);
  return seq;
}

/* The member's path (and the SA of the last commit) over its connection. */
static void
build_path_update (frame_t *f, tree_ctl_t *c, uint64_t seq, uint32_t leaf)
{
  mcsec_mike_builder_t b;
  mcsec_lkh_key_t path[MCSEC_MIKE_MAX_PATH];
  size_t n = mcsec_lkh_path (c->tree, leaf, path, MCSEC_MIKE_MAX_PATH);
  mcsec_mike_sa_t sa = {c->spi, MCSEC_SUITE_AES_256_GCM, 0, 60, c->key, 36};

  REQUIRE (n > 0);
  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 1000);
  mcsec_mike_put_sa (&b, &sa);
  for (size_t i = 0; i < n; i++)
    mcsec_mike_put_path_key (&b, path[i].node, path[i].key);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_NEXT_REKEY,
                      mcsec_rekey_tx_next_seq (c->tx));
  mcsec_mike_sign (&b, ctl_key);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

/* The member's key for spi equals the expected derivation. */
static int
member_has_key (mcsec_member_t *m, uint32_t spi, const uint8_t *group_key)
{
  mcsec_msa_t *msa = NULL;
  const mcsec_msa_sa_t *sa;
  uint8_t want[36];
  int ok;

  expected_sa_key (group_key, "video", spi, MCSEC_SUITE_AES_256_GCM, want, 36);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK);
  sa = msa_find (msa, spi);
  ok = sa && sa->key_len == 36 && memcmp (sa->key, want, 36) == 0;
  mcsec_msa_free (msa);
  return ok;
}

static void
deliver (mcsec_member_t *m, mcsec_rekey_tx_t *tx, uint64_t seq, uint64_t t)
{
  for (unsigned p = 0; p < mcsec_rekey_tx_parts (tx, seq); p++) {
    const uint8_t *d;
    size_t len = mcsec_rekey_tx_datagram (tx, seq, p, &d);
    CHECK_STATUS (mcsec_member_datagram (m, d, len, t), MCSEC_OK);
  }
}

/* A member of a key tree group follows the rekey channel: rekeys over
 * multicast give it the SA keys (derived from the group key), gaps and
 * silences are repaired over its connection, a rekey it cannot open makes
 * it ask for its path again. */
static void
test_member_tree (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_RECEIVER, NULL, 0};
  mcsec_member_t *m;
  mcsec_member_event_t ev;
  mcsec_member_channel_stats_t cs;
  tree_ctl_t c = {0}, stranger = {0};
  mcsec_rekey_tx_t *forger;
  mcsec_mike_builder_t b;
  frame_t f;
  uint32_t me, others[3];
  uint64_t t = 5000, s1, s2, s3, seq = 0;
  char addr[64];
  uint16_t port = 0;
  int dead;

  REQUIRE (mcsec_lkh_new (2, &c.tree) == MCSEC_OK &&
           mcsec_rekey_tx_new ("video", ctl_key, 100, &c.tx) == MCSEC_OK &&
           mcsec_lkh_new (2, &stranger.tree) == MCSEC_OK &&
           mcsec_rekey_tx_new ("video", other_key, 100, &forger) == MCSEC_OK);
  c.spi = stranger.spi = 0x5000;
  REQUIRE (mcsec_lkh_join (c.tree, &me) == MCSEC_OK);
  for (int i = 0; i < 3; i++)
    REQUIRE (mcsec_lkh_join (c.tree, &others[i]) == MCSEC_OK);
  tree_rekey (&c, c.tx); /* the batch that placed everyone: SEQ 100 */

  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, "rx1");
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl_spki, ctl_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS, 16);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS, "239.255.1.1");
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, 5100);
  REQUIRE (mcsec_mike_finish (&b, &f.len) == MCSEC_OK);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (mcsec_member_channel (m, addr, sizeof addr, &port) == 1 &&
         strcmp (addr, "239.255.1.1") == 0 && port == 5100);
  /* a tree group's update without the path is refused */
  build_update (&f, ctl_key, 20, NULL, 0, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_MALFORMED);
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINING);
  build_path_update (&f, &c, 21, me);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  CHECK (member_has_key (m, c.spi, mcsec_lkh_group_key (c.tree)));
  output_has (m, MCSEC_MIKE_ACK, NULL);

  /* a leave: one datagram; the member derives the new SA's key, takes the
   * senders it lists, answers nothing over its connection */
  REQUIRE (mcsec_lkh_leave (c.tree, others[0]) == MCSEC_OK);
  s1 = tree_rekey (&c, c.tx);
  deliver (m, c.tx, s1, t);
  CHECK (has_event (m, MCSEC_MEMBER_EV_UPDATED, &ev) && ev.seq == s1 &&
         strcmp (ev.text, "rekey channel") == 0);
  CHECK (member_has_key (m, c.spi, mcsec_lkh_group_key (c.tree)));
  CHECK (output_has (m, MCSEC_MIKE_ACK, NULL) == 0);
  {
    mcsec_msa_t *msa = NULL;
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa->n_senders == 1 && msa->senders[0].sender_id == 7);
    mcsec_msa_free (msa);
  }
  /* the same datagram again, and a forged one: nothing changes */
  {
    uint64_t gen = mcsec_member_generation (m);
    const uint8_t *d;
    size_t len;
    len = mcsec_rekey_tx_datagram (c.tx, s1, 0, &d);
    CHECK_STATUS (mcsec_member_datagram (m, d, len, t), MCSEC_ERR_STALE_UPDATE);
    REQUIRE (mcsec_lkh_refresh (stranger.tree) == MCSEC_OK);
    s2 = tree_rekey (&stranger, forger);
    len = mcsec_rekey_tx_datagram (forger, s2, 0, &d);
    CHECK_STATUS (mcsec_member_datagram (m, d, len, t), MCSEC_ERR_SIGNATURE);
    CHECK (mcsec_member_generation (m) == gen);
  }

  /* a gap: the second of two rekeys arrives; after the repair delay the
   * member asks from the first; the repair comes over the connection */
  REQUIRE (mcsec_lkh_leave (c.tree, others[1]) == MCSEC_OK);
  s2 = tree_rekey (&c, c.tx);
  REQUIRE (mcsec_lkh_refresh (c.tree) == MCSEC_OK);
  s3 = tree_rekey (&c, c.tx);
  deliver (m, c.tx, s3, t);
  mcsec_member_tick (m, t, &dead);
  mcsec_member_tick (m, t + MCSEC_REKEY_REPAIR_DELAY_MS, &dead);
  CHECK (output_has (m, MCSEC_MIKE_REPAIR, &seq) == 1 && seq == s2);
  {
    const uint8_t *d;
    size_t len = mcsec_rekey_tx_datagram (c.tx, s2, 0, &d);
    CHECK_STATUS (mcsec_member_receive (m, d, len, t + 60), MCSEC_OK);
  }
  CHECK (member_has_key (m, c.spi, mcsec_lkh_group_key (c.tree)));

  /* a silent channel: after MCSEC_MIKE_CHANNEL_SILENT_MS the member polls
   * for anything newer than what it has */
  t += 100;
  {
    uint8_t hb[256];
    size_t len;
    REQUIRE (mcsec_rekey_tx_heartbeat (c.tx, hb, sizeof hb, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_member_datagram (m, hb, len, t), MCSEC_OK);
  }
  mcsec_member_tick (m, t + MCSEC_MIKE_CHANNEL_SILENT_MS - 1, &dead);
  CHECK (output_has (m, MCSEC_MIKE_REPAIR, NULL) == 0);
  mcsec_member_tick (m, t + MCSEC_MIKE_CHANNEL_SILENT_MS, &dead);
  CHECK (output_has (m, MCSEC_MIKE_REPAIR, &seq) == 1 && seq == s3 + 1);
  t += MCSEC_MIKE_CHANNEL_SILENT_MS;

  /* a rekey its path cannot open (a controller that lost its tree, here
   * another tree under the same key): out of sync, it asks for its path
   * (REPAIR 0) and follows again once it has it */
  {
    mcsec_rekey_tx_t *lost;
    uint32_t x;
    REQUIRE (mcsec_rekey_tx_new ("video", ctl_key, s3 + 1, &lost) == MCSEC_OK);
    REQUIRE (mcsec_lkh_join (stranger.tree, &x) == MCSEC_OK);
    tree_rekey (&stranger, lost);
    deliver (m, lost, s3 + 1, t);
    CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
           ev.status == MCSEC_ERR_OUT_OF_SYNC);
    mcsec_member_tick (m, t, &dead);
    CHECK (output_has (m, MCSEC_MIKE_REPAIR, &seq) == 1 && seq == 0);
    mcsec_rekey_tx_free (lost);
  }
  /* the controller's answer: its path again, then its rekeys */
  build_path_update (&f, &c, 30, me);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  mcsec_member_tick (m, t + 400, &dead);
  CHECK (output_has (m, MCSEC_MIKE_REPAIR, &seq) == 0);
  REQUIRE (mcsec_lkh_leave (c.tree, others[2]) == MCSEC_OK);
  s1 = tree_rekey (&c, c.tx);
  deliver (m, c.tx, s1, t + 500);
  CHECK (member_has_key (m, c.spi, mcsec_lkh_group_key (c.tree)));
  mcsec_member_channel_stats (m, &cs);
  CHECK (cs.rekeys == 4 && cs.resyncs == 1 && cs.bad_signature == 1 &&
         cs.repairs == 2);

  /* evicted: no channel any more */
  mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_EVICTED);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, MCSEC_MIKE_REASON_EVICTED);
  REQUIRE (mcsec_mike_finish (&b, &f.len) == MCSEC_OK);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t + 600), MCSEC_OK);
  CHECK (mcsec_member_channel (m, NULL, 0, NULL) == 0);
  {
    const uint8_t *d;
    size_t len = mcsec_rekey_tx_datagram (c.tx, s1, 0, &d);
    CHECK_STATUS (mcsec_member_datagram (m, d, len, t + 600),
                  MCSEC_ERR_INVALID_ARG);
  }
  mcsec_member_free (m);
  mcsec_rekey_tx_free (forger);
  mcsec_rekey_tx_free (c.tx);
  mcsec_lkh_free (c.tree);
  mcsec_lkh_free (stranger.tree);
}

static const uint8_t per_sender_one[1] = {1};

/* SPI_PER_SENDER (65) in the codec: a WELCOME with it round-trips with the
 * rest of the WELCOME, one without it has none; a length other than 1 or a
 * value other than 1 is malformed (a known attribute); a copy of it is not
 * (from 62 on types are never checked for repetition). */
static void
test_spi_per_sender_codec (void)
{
  static mcsec_mike_msg_t msg;
  const uint32_t sids[1] = {0x1234};
  welcome_opts_t o = {16, per_sender_one, 1, "239.255.12.1", 5004, 0};
  frame_t f;
  static const struct {
    uint8_t v[2];
    size_t len;
  } bad[] = {{{0}, 0}, {{1, 1}, 2}, {{0}, 1}, {{2}, 1}, {{0xff}, 1}};

  CHECK (MCSEC_MIKE_A_SPI_PER_SENDER == 65);
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1, &o);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  CHECK (msg.type == MCSEC_MIKE_WELCOME && msg.spi_per_sender == 1);
  CHECK (msg.sender_id_bits == 16 && msg.n_sender_ids == 1 &&
         msg.sender_ids[0] == 0x1234 && msg.has_port && msg.port == 5004 &&
         msg.address_len == 12 && !memcmp (msg.address, "239.255.12.1", 12));
  /* the attribute on the wire: type 65, length 1, value 1 */
  {
    static const uint8_t attr[5] = {0, 65, 0, 1, 1};
    int found = 0;
    for (size_t i = 8; i + 5 <= f.len; i++)
      found |= memcmp (f.buf + i, attr, 5) == 0;
    CHECK (found);
  }
  /* none without it */
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  CHECK (msg.spi_per_sender == 0);
  /* the parse scratch is cleared between frames */
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1, &o);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  CHECK (msg.spi_per_sender == 0);
  /* a wrong length or value */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    welcome_opts_t b = o;
    b.per_sender = bad[i].v;
    b.per_sender_len = bad[i].len;
    build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1, &b);
    CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_ERR_MALFORMED);
  }
  /* twice: the same flag */
  {
    mcsec_mike_builder_t b;
    size_t len;
    build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 1, &o);
    b.buf = f.buf;
    b.cap = sizeof f.buf;
    b.len = f.len;
    b.overflow = 0;
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SPI_PER_SENDER, 1);
    REQUIRE (mcsec_mike_finish (&b, &len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, len, &msg), MCSEC_OK);
    CHECK (msg.spi_per_sender == 1);
  }
}

/* A member of a group with per-sender SPIs: a WELCOME whose SENDER_ID_BITS
 * is above 24 is refused (the connection closed); updates whose SAs are
 * not blocks' bases are rejected whole; the MSA says spi_per_sender and
 * carries the WELCOME's address and port; an SA made from it as the
 * elements make theirs sends under SPI | Sender-ID, and the receiver's
 * takes it.  A rejoin into the group without the setting drops the SAs
 * held (their SPIs meant blocks). */
static void
test_member_spi_per_sender (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_SENDER, NULL, 2};
  mcsec_member_t *m = NULL;
  mcsec_member_event_t ev;
  mcsec_msa_t *msa = NULL;
  frame_t f;
  uint32_t sids[2] = {0x41, 0x42};
  uint64_t t = 1000;
  welcome_opts_t o = {32, per_sender_one, 1, "239.255.12.1", 5004, 0};
  test_sa_t odd = {0xa0001, 0, 0xa1}, base = {0xa0000, 0, 0xa1},
            next = {0xb0000, 0, 0xb1},
            pair[2] = {{0xb0000, 0, 0xb1}, {0xc0000, 0, 0xc1}};

  cfg.sam_key = sam_key;
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  /* 32 and 25 bits: no block of SPIs is that wide */
  for (int bits = 32; bits >= 25; bits -= 7) {
    mcsec_member_connected (m, t);
    output_has (m, MCSEC_MIKE_JOIN, NULL);
    o.bits = (uint8_t)bits;
    build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2, &o);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t),
                  MCSEC_ERR_MALFORMED);
    mcsec_member_disconnected (m, t);
    CHECK (mcsec_member_state (m) == MCSEC_MEMBER_IDLE);
  }
  /* 32 bits without the setting is a group like any other */
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  o.per_sender = NULL;
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2, &o);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  mcsec_member_disconnected (m, t);

  /* 16 bits (24 would do too) */
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  o.bits = 16;
  o.per_sender = per_sender_one;
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2, &o);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  /* an SA that is no block's base, alone or next to one that is: the
   * update is rejected whole, nothing held, nothing acknowledged */
  build_update (&f, ctl_key, 10, &odd, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_MALFORMED && ev.seq == 10);
  {
    test_sa_t mixed[2] = {base, odd};
    mixed[1].spi = 0xb0080; /* bit 7 set */
    build_update (&f, ctl_key, 11, mixed, 2, 1000);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
    CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
           ev.status == MCSEC_ERR_MALFORMED);
  }
  CHECK (mcsec_member_state (m) == MCSEC_MEMBER_JOINING);
  CHECK (output_has (m, MCSEC_MIKE_ACK, NULL) == 0);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK);
  CHECK (msa == NULL);
  CHECK (mcsec_member_rejected_updates (m) == 2);
  /* a block's base: joined */
  build_update (&f, ctl_key, 12, &base, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->spi_per_sender == 1 && msa->sender_id_bits == 16);
  CHECK (strcmp (msa->address, "239.255.12.1") == 0 && msa->port == 5004);
  CHECK (msa_sending (msa) == 0xa0000);
  /* the SA as mcsecenc and mcsecdec make it: packets under 0xa0000 | 0x41,
   * taken by the receiver's SA of base 0xa0000; one under another
   * sender's SPI is malformed */
  {
    const mcsec_msa_sa_t *sa = msa_find (msa, 0xa0000);
    mcsec_sa_config_t sc = {0};
    mcsec_sa_t *tx = NULL, *rx = NULL;
    uint8_t pkt[256], out[256];
    size_t len;
    mcsec_rx_info_t info;
    REQUIRE (sa != NULL);
    sc.spi = sa->spi;
    sc.suite = sa->suite;
    sc.key = sa->key;
    sc.key_len = sa->key_len;
    sc.sender_id_bits = msa->sender_id_bits;
    sc.spi_per_sender = msa->spi_per_sender;
    REQUIRE (mcsec_sa_new (&sc, &tx) == MCSEC_OK &&
             mcsec_sa_new (&sc, &rx) == MCSEC_OK);
    REQUIRE (mcsec_sa_set_sender (tx, msa->sender_ids[0], 0, 0) == MCSEC_OK);
    CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM,
                                    (const uint8_t *)"media", 5, pkt,
                                    sizeof pkt, &len, NULL),
                  MCSEC_OK);
    CHECK (mcsec_packet_spi (pkt, len) == (0xa0000 | 0x41));
    CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof out, &info),
                  MCSEC_OK);
    CHECK (info.sender_id == 0x41 && info.spi == 0xa0000 &&
           info.payload_len == 5 && memcmp (out, "media", 5) == 0);
    CHECK_STATUS (mcsec_sa_protect (tx, MCSEC_NEXT_HEADER_DATAGRAM,
                                    (const uint8_t *)"media", 5, pkt,
                                    sizeof pkt, &len, NULL),
                  MCSEC_OK);
    pkt[3] ^= 0x03; /* 0x42's SPI: not its Sender-ID */
    CHECK (mcsec_sa_unprotect (rx, pkt, len, out, sizeof out, &info) !=
           MCSEC_OK);
    mcsec_sa_free (tx);
    mcsec_sa_free (rx);
  }
  mcsec_msa_free (msa);
  output_has (m, MCSEC_MIKE_ACK, NULL);
  /* a rekey to another block; still no SA that is not a base */
  build_update (&f, ctl_key, 13, pair, 2, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_UPDATED, NULL));
  {
    test_sa_t bad2[2] = {next, {0xc0001, 0, 0xc1}};
    build_update (&f, ctl_key, 14, bad2, 2, 1000);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
    CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
           ev.status == MCSEC_ERR_MALFORMED);
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_find (msa, 0xc0001) == NULL && msa_find (msa, 0xc0000));
    mcsec_msa_free (msa);
  }

  /* the controller restarted with other blocks (8-bit Sender-IDs): the SAs
   * held go */
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  o.bits = 8;
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2, &o);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK);
  CHECK (msa == NULL);
  {
    test_sa_t b8 = {0xd0100, 0, 0xd1}; /* a base for 8 bits, not 16 */
    build_update (&f, ctl_key, 2, &b8, 1, 1000);
    CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
    CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa->n_sas == 1 && msa_sending (msa) == 0xd0100 &&
           msa->sender_id_bits == 8 && msa->spi_per_sender == 1);
    mcsec_msa_free (msa);
  }
  /* a rejoin into the same: the SA stays */
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2, &o);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->n_sas == 1 && msa_find (msa, 0xd0100));
  mcsec_msa_free (msa);

  /* the controller restarted without the setting: the SAs held go, the
   * MSA has neither the flag nor an address any more */
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  build_welcome (&f, "video", MCSEC_MIKE_ROLE_SENDER, sids, 2);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK);
  CHECK (msa == NULL);
  build_update (&f, ctl_key, 3, &odd, 1, 1000);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->spi_per_sender == 0 && msa->address[0] == '\0' && msa->port == 0);
  CHECK (msa->n_sas == 1 && msa_sending (msa) == 0xa0001);
  mcsec_msa_free (msa);
  mcsec_member_free (m);
}

/* A key tree group with per-sender SPIs: the path's SA is a block's base
 * and the member joins; a rekey on the channel whose DERIVED_SA is not is
 * rejected (malformed), nothing of it applied, and the member asks for its
 * path again (REPAIR 0); an UPDATE whose SA is not is rejected too. */
static void
test_member_tree_spi_per_sender (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_RECEIVER, NULL, 0};
  mcsec_member_t *m;
  mcsec_member_event_t ev;
  tree_ctl_t c = {0};
  frame_t f;
  uint32_t me, other;
  uint64_t t = 5000, s1, seq = 7;
  int dead;
  welcome_opts_t o = {16, per_sender_one, 1, NULL, 0, 1};

  REQUIRE (mcsec_lkh_new (2, &c.tree) == MCSEC_OK &&
           mcsec_rekey_tx_new ("video", ctl_key, 100, &c.tx) == MCSEC_OK);
  c.spi = 0x4ffff; /* tree_rekey adds one: 0x50000, then 0x50001 */
  REQUIRE (mcsec_lkh_join (c.tree, &me) == MCSEC_OK &&
           mcsec_lkh_join (c.tree, &other) == MCSEC_OK);
  tree_rekey (&c, c.tx);
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  output_has (m, MCSEC_MIKE_JOIN, NULL);
  build_welcome_opts (&f, "video", MCSEC_MIKE_ROLE_RECEIVER, NULL, 0, &o);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  build_path_update (&f, &c, 21, me);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_JOINED, NULL));
  CHECK (member_has_key (m, 0x50000, mcsec_lkh_group_key (c.tree)));
  output_has (m, MCSEC_MIKE_ACK, NULL);

  REQUIRE (mcsec_lkh_leave (c.tree, other) == MCSEC_OK);
  s1 = tree_rekey (&c, c.tx); /* DERIVED_SA 0x50001 */
  deliver (m, c.tx, s1, t);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_MALFORMED && ev.seq == s1);
  {
    mcsec_msa_t *msa = NULL;
    REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
    CHECK (msa_find (msa, 0x50001) == NULL && msa_find (msa, 0x50000) &&
           msa->spi_per_sender == 1);
    mcsec_msa_free (msa);
  }
  mcsec_member_tick (m, t, &dead);
  CHECK (output_has (m, MCSEC_MIKE_REPAIR, &seq) == 1 && seq == 0);
  /* its path again, with that SA: rejected as well */
  build_path_update (&f, &c, 22, me);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  CHECK (has_event (m, MCSEC_MEMBER_EV_REJECTED, &ev) &&
         ev.status == MCSEC_ERR_MALFORMED && ev.seq == 22);
  mcsec_member_free (m);
  mcsec_rekey_tx_free (c.tx);
  mcsec_lkh_free (c.tree);
}

int
main (void)
{
  ctl_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  other_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  sam_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  REQUIRE (ctl_key && other_key && sam_key);
  REQUIRE (mcsec_mike_public_key_der (ctl_key, ctl_spki, sizeof ctl_spki,
                                      &ctl_spki_len) == MCSEC_OK);
  test_codec ();
  test_reader ();
  test_member ();
  test_member_redirect ();
  test_member_tree ();
  test_spi_per_sender_codec ();
  test_member_spi_per_sender ();
  test_member_tree_spi_per_sender ();
  EVP_PKEY_free (ctl_key);
  EVP_PKEY_free (other_key);
  EVP_PKEY_free (sam_key);
  return test_done ("test-mike");
}
