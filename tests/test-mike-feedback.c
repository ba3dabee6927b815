/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-mike-feedback: the feedback role of MIKE (docs/mike-protocol.md,
 * "Feedback members"), without I/O: ROLE 4 and FEEDBACK_SENDER in the
 * codec; a member with role feedback (it needs a signing key, asks for
 * Sender-IDs, may not send media); feedback members marked in the MSA and
 * left out of mcsec_msa_bind_senders (a receiver that does not look at
 * the mark never trusts them) but bound by mcsec_msa_bind_all_senders;
 * the mark carried by the rekey channel of key tree groups.
 */
#include <openssl/evp.h>

#include <mcsec/mcsec-mike.h>
#include <mcsec/mcsec-rekey.h>

#include "mcsec-test.h"

#define MEDIA_SENDER 7
#define FEEDBACK_MEMBER 9
#define SPI 0xa000

static EVP_PKEY *ctl_key, *sam_key;
static uint8_t ctl_spki[MCSEC_MIKE_MAX_SPKI], sam_spki[MCSEC_MIKE_MAX_SPKI];
static size_t ctl_spki_len, sam_spki_len;

typedef struct {
  uint8_t buf[8192];
  size_t len;
} frame_t;

/* ROLE: 1..4 parse, anything else is malformed. */
static void
test_codec_roles (void)
{
  static const struct {
    uint8_t role;
    mcsec_status_t want;
  } cases[] = {
      {0, MCSEC_ERR_MALFORMED},
      {MCSEC_MIKE_ROLE_RECEIVER, MCSEC_OK},
      {MCSEC_MIKE_ROLE_SENDER, MCSEC_OK},
      {MCSEC_MIKE_ROLE_BOTH, MCSEC_OK},
      {MCSEC_MIKE_ROLE_FEEDBACK, MCSEC_OK},
      {5, MCSEC_ERR_MALFORMED},
  };
  static mcsec_mike_msg_t msg;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    frame_t f;
    mcsec_mike_builder_t b;
    mcsec_mike_begin (&b, f.buf, sizeof f.buf, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, cases[i].role);
    REQUIRE (mcsec_mike_finish (&b, &f.len) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), cases[i].want);
    if (cases[i].want == MCSEC_OK)
      CHECK (msg.has_role && msg.role == cases[i].role);
  }
  CHECK (mcsec_mike_role_has_sender_ids (MCSEC_MIKE_ROLE_FEEDBACK));
  CHECK (mcsec_mike_role_has_sender_ids (MCSEC_MIKE_ROLE_BOTH));
  CHECK (!mcsec_mike_role_has_sender_ids (MCSEC_MIKE_ROLE_RECEIVER));
}

/* An UPDATE with the SA, a media sender and (repeated) feedback members. */
static void
build_update (frame_t *f, uint64_t seq)
{
  mcsec_mike_builder_t b;
  mcsec_mike_sa_t sa = {0};
  uint8_t k[MCSEC_MIKE_MAX_KEY_LEN];

  memset (k, 0xa1, sizeof k);
  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, 1000);
  sa.spi = SPI;
  sa.suite = MCSEC_SUITE_AES_128_GCM;
  sa.lifetime_s = 3600;
  sa.key = k;
  sa.key_len = mcsec_suite_key_material_len (sa.suite);
  mcsec_mike_put_sa (&b, &sa);
  mcsec_mike_put_sender (&b, MEDIA_SENDER, sam_spki, sam_spki_len);
  mcsec_mike_put_feedback_sender (&b, FEEDBACK_MEMBER, sam_spki, sam_spki_len);
  mcsec_mike_put_feedback_sender (&b, FEEDBACK_MEMBER + 1, sam_spki,
                                  sam_spki_len);
  mcsec_mike_sign (&b, ctl_key);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

static void
test_codec_feedback_sender (void)
{
  static mcsec_mike_msg_t msg;
  frame_t f;

  build_update (&f, 1);
  CHECK_STATUS (mcsec_mike_parse (f.buf, f.len, &msg), MCSEC_OK);
  REQUIRE (msg.n_senders == 3);
  CHECK (msg.senders[0].sender_id == MEDIA_SENDER && !msg.senders[0].feedback);
  CHECK (msg.senders[1].sender_id == FEEDBACK_MEMBER &&
         msg.senders[1].feedback);
  CHECK (msg.senders[2].sender_id == FEEDBACK_MEMBER + 1 &&
         msg.senders[2].feedback);
  CHECK (msg.senders[1].spki_len == sam_spki_len &&
         memcmp (msg.senders[1].spki, sam_spki, sam_spki_len) == 0);
}

/* The members before the feedback role: every attribute type below 62
 * but SA, SENDER, SENDER_ID, WRAPPED_KEY and PATH_KEY, known or not, is
 * malformed when it comes twice.  An UPDATE with two feedback members
 * must pass that rule (it did not with FEEDBACK_SENDER numbered 26). */
static void
test_older_members_skip_feedback (void)
{
  frame_t f;
  uint64_t seen = 0;
  int repeated_below_62 = 0, feedback_attrs = 0;
  size_t off = 8; /* Length (4), Version, Type, Reserved (2) */

  build_update (&f, 1);
  REQUIRE (f.len >= off);
  while (off + 4 <= f.len) {
    unsigned type = (unsigned)f.buf[off] << 8 | f.buf[off + 1];
    size_t len = (size_t)f.buf[off + 2] << 8 | f.buf[off + 3];
    REQUIRE (off + 4 + len <= f.len);
    feedback_attrs += type == MCSEC_MIKE_A_FEEDBACK_SENDER;
    if (type < 62 && type != MCSEC_MIKE_A_SA && type != MCSEC_MIKE_A_SENDER &&
        type != MCSEC_MIKE_A_SENDER_ID && type != MCSEC_MIKE_A_WRAPPED_KEY &&
        type != MCSEC_MIKE_A_PATH_KEY) {
      repeated_below_62 += (seen >> type) & 1;
      seen |= UINT64_C (1) << type;
    }
    off += 4 + len;
  }
  CHECK (off == f.len);
  CHECK (feedback_attrs == 2);
  CHECK (repeated_below_62 == 0);
}

static void
build_welcome (frame_t *f, unsigned role, size_t n_sids)
{
  mcsec_mike_builder_t b;

  mcsec_mike_begin (&b, f->buf, sizeof f->buf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, "rx1");
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)role);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl_spki, ctl_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS, 16);
  for (size_t i = 0; i < n_sids; i++)
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, (uint32_t)(20 + i));
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, MCSEC_SAM_BLOCK);
  REQUIRE (mcsec_mike_finish (&b, &f->len) == MCSEC_OK);
}

/* The member's JOIN, parsed. */
static void
join_of (mcsec_member_t *m, mcsec_mike_msg_t *msg)
{
  const uint8_t *data;
  size_t n = mcsec_member_output (m, &data);

  REQUIRE (n > 0);
  REQUIRE (mcsec_mike_parse (data, n, msg) == MCSEC_OK);
  mcsec_member_written (m, n);
}

/* Verify one datagram of `sender_id` signed with sam_key (per packet). */
static mcsec_status_t
verify_from (mcsec_sam_verifier_t *v, uint32_t sender_id, uint64_t counter)
{
  mcsec_sam_signer_t *signer = NULL;
  static const uint8_t rr[8] = {0x80, 201, 0, 1, 1, 2, 3, 4};
  uint8_t pkt[256];
  size_t len = 0;
  mcsec_sam_result_t res;
  mcsec_status_t st;

  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, sam_key, 8, 0,
                                 &signer) == MCSEC_OK);
  REQUIRE (mcsec_sam_sign (signer, SPI, sender_id, counter, rr, sizeof rr, pkt,
                           sizeof pkt, &len) == MCSEC_OK);
  st = mcsec_sam_verify (v, SPI, sender_id, counter, counter, pkt, len, &res);
  if (st == MCSEC_OK && res.outcome != MCSEC_SAM_VERIFIED)
    st = MCSEC_ERR_SIGNATURE;
  mcsec_sam_signer_free (signer);
  return st;
}

static void
ignore_event (const mcsec_sam_event_t *ev, void *data)
{
  (void)ev;
  (void)data;
}

static void
test_member_feedback (void)
{
  mcsec_member_config_t cfg = {"video", MCSEC_MIKE_ROLE_FEEDBACK, NULL, 1};
  static mcsec_mike_msg_t msg;
  mcsec_member_t *m = NULL;
  mcsec_msa_t *msa = NULL;
  mcsec_sam_verifier_t *v = NULL;
  frame_t f;
  uint64_t t = 1000;

  /* a feedback member signs: it needs its key */
  CHECK_STATUS (mcsec_member_new (&cfg, &m), MCSEC_ERR_BAD_SIGNING_KEY);
  cfg.sam_key = sam_key;
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  /* JOIN: role feedback, its public key, how many Sender-IDs */
  join_of (m, &msg);
  CHECK (msg.type == MCSEC_MIKE_JOIN && msg.role == MCSEC_MIKE_ROLE_FEEDBACK);
  CHECK (msg.signing_key_len == sam_spki_len && msg.sender_count == 1);
  /* a WELCOME without its Sender-ID is wrong */
  build_welcome (&f, MCSEC_MIKE_ROLE_FEEDBACK, 0);
  CHECK (mcsec_member_receive (m, f.buf, f.len, t) != MCSEC_OK);
  mcsec_member_disconnected (m, t);
  mcsec_member_connected (m, t);
  join_of (m, &msg);
  build_welcome (&f, MCSEC_MIKE_ROLE_FEEDBACK, 1);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  build_update (&f, 5);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  /* its Sender-ID, and no media */
  CHECK (msa->role == MCSEC_MIKE_ROLE_FEEDBACK && !msa->may_send);
  CHECK (msa->n_sender_ids == 1 && msa->sender_ids[0] == 20);
  /* the others, marked */
  REQUIRE (msa->n_senders == 3);
  CHECK (msa->senders[0].sender_id == MEDIA_SENDER &&
         !msa->senders[0].feedback);
  CHECK (msa->senders[1].sender_id == FEEDBACK_MEMBER &&
         msa->senders[1].feedback);

  /* bind_senders: the media sender only, so a receiver that knows nothing
   * of feedback members takes none of theirs for a sender's */
  REQUIRE (mcsec_sam_verifier_new (ignore_event, NULL, &v) == MCSEC_OK);
  CHECK_STATUS (mcsec_msa_bind_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (verify_from (v, MEDIA_SENDER, 1), MCSEC_OK);
  CHECK_STATUS (verify_from (v, FEEDBACK_MEMBER, 2), MCSEC_ERR_NO_SENDER_KEY);
  /* bind_all_senders: the feedback members too */
  CHECK_STATUS (mcsec_msa_bind_all_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (verify_from (v, FEEDBACK_MEMBER, 3), MCSEC_OK);
  CHECK_STATUS (verify_from (v, FEEDBACK_MEMBER + 1, 4), MCSEC_OK);
  /* and a later bind_senders drops them again */
  CHECK_STATUS (mcsec_msa_bind_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (verify_from (v, FEEDBACK_MEMBER, 5), MCSEC_ERR_NO_SENDER_KEY);
  CHECK_STATUS (verify_from (v, MEDIA_SENDER, 6), MCSEC_OK);
  mcsec_sam_verifier_free (v);
  mcsec_msa_free (msa);
  mcsec_member_free (m);

  /* a receiver's MSA says so */
  cfg.role = MCSEC_MIKE_ROLE_RECEIVER;
  cfg.sam_key = NULL;
  REQUIRE (mcsec_member_new (&cfg, &m) == MCSEC_OK);
  mcsec_member_connected (m, t);
  join_of (m, &msg);
  CHECK (msg.sender_count == 0);
  build_welcome (&f, MCSEC_MIKE_ROLE_RECEIVER, 0);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  build_update (&f, 6);
  CHECK_STATUS (mcsec_member_receive (m, f.buf, f.len, t), MCSEC_OK);
  REQUIRE (mcsec_member_msa (m, &msa) == MCSEC_OK && msa);
  CHECK (msa->role == MCSEC_MIKE_ROLE_RECEIVER && msa->n_sender_ids == 0);
  mcsec_msa_free (msa);
  mcsec_member_free (m);
}

/* Key tree groups: the rekey channel carries the mark too. */
static void
test_rekey_feedback (void)
{
  mcsec_rekey_tx_t *tx = NULL;
  mcsec_rekey_rx_t *rx = NULL;
  mcsec_mike_sender_t senders[2] = {{0}};
  mcsec_rekey_t r = {0}, got;
  uint64_t seq = 0, rseq = 0;
  unsigned parts = 0;

  senders[0].sender_id = MEDIA_SENDER;
  senders[0].spki = sam_spki;
  senders[0].spki_len = sam_spki_len;
  senders[1] = senders[0];
  senders[1].sender_id = FEEDBACK_MEMBER;
  senders[1].feedback = 1;
  r.senders = senders;
  r.n_senders = 2;
  r.deactivation_ms = 1000;
  REQUIRE (mcsec_rekey_tx_new ("video", ctl_key, 1, &tx) == MCSEC_OK);
  REQUIRE (mcsec_rekey_rx_new ("video", ctl_key, 1, &rx) == MCSEC_OK);
  CHECK_STATUS (mcsec_rekey_tx_publish (tx, &r, &seq, &parts), MCSEC_OK);
  for (unsigned p = 0; p < parts; p++) {
    const uint8_t *data;
    size_t len = mcsec_rekey_tx_datagram (tx, seq, p, &data);
    CHECK_STATUS (mcsec_rekey_rx_datagram (rx, data, len, 0), MCSEC_OK);
  }
  REQUIRE (mcsec_rekey_rx_next (rx, &rseq, &got) == 1);
  CHECK (rseq == seq);
  REQUIRE (got.n_senders == 2);
  CHECK (got.senders[0].sender_id == MEDIA_SENDER && !got.senders[0].feedback);
  CHECK (got.senders[1].sender_id == FEEDBACK_MEMBER &&
         got.senders[1].feedback);
  mcsec_rekey_rx_free (rx);
  mcsec_rekey_tx_free (tx);
}

int
main (void)
{
  ctl_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  sam_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  REQUIRE (ctl_key && sam_key);
  REQUIRE (mcsec_mike_public_key_der (ctl_key, ctl_spki, sizeof ctl_spki,
                                      &ctl_spki_len) == MCSEC_OK);
  REQUIRE (mcsec_mike_public_key_der (sam_key, sam_spki, sizeof sam_spki,
                                      &sam_spki_len) == MCSEC_OK);
  test_codec_roles ();
  test_codec_feedback_sender ();
  test_older_members_skip_feedback ();
  test_member_feedback ();
  test_rekey_feedback ();
  EVP_PKEY_free (ctl_key);
  EVP_PKEY_free (sam_key);
  return test_done ("test-mike-feedback");
}
