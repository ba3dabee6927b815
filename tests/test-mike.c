/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-mike: the MIKE codec and the member state machine, driven by a
 * controller played by the test (docs/mike-protocol.md): framing and every
 * bound of the parser, reassembly of frames cut anywhere, the join, and the
 * updates a member must reject (tampered, signed by someone else, unsigned,
 * stale, replayed) next to the ones it must apply (activation, retirement,
 * a rejoin after a controller restart).
 */
#include <openssl/evp.h>

#include <mcsec/mcsec-mike.h>

#include "mcsec-test.h"

static EVP_PKEY *ctl_key, *other_key, *sam_key;
static uint8_t ctl_spki[MCSEC_MIKE_MAX_SPKI];
static size_t ctl_spki_len;

typedef struct {
  uint8_t buf[8192];
  size_t len;
} frame_t;

static void
build_welcome (frame_t *f, const char *group, unsigned role,
               const uint32_t *sids, size_t n_sids)
{
  mcsec_mike_builder_t b;
  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, group);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, "cam1");
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)role);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl_spki, ctl_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS, 16);
  for (size_t i = 0; i < n_sids; i++)
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, sids[i]);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, MCSEC_SAM_BLOCK);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
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
    size_t n, got = 0;
    int ok = 1;
    CHECK_STATUS (mcsec_mike_reader_feed (&r, stream, cut), MCSEC_OK);
    while ((n = mcsec_mike_reader_next (&r, &fr)) > 0) {
      ok &= got == 0 ? (n == a.len && !memcmp (fr, a.buf, n))
                     : (n == b.len && !memcmp (fr, b.buf, n));
      got++;
    }
    CHECK_STATUS (mcsec_mike_reader_feed (&r, stream + cut, total - cut),
                  MCSEC_OK);
    while ((n = mcsec_mike_reader_next (&r, &fr)) > 0) {
      ok &= got == 0 ? (n == a.len && !memcmp (fr, a.buf, n))
                     : (n == b.len && !memcmp (fr, b.buf, n));
      got++;
    }
    CHECK (ok && got == 2);
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
  EVP_PKEY_free (ctl_key);
  EVP_PKEY_free (other_key);
  EVP_PKEY_free (sam_key);
  return test_done ("test-mike");
}
