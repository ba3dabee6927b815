/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Source authentication (SAM), library level: per-packet signatures and
 * signed blocks with erasure-coded authenticators, for Ed25519 and ECDSA
 * P-256; insider forgery, tampering, replay under another counter, loss
 * (random and bursts), reordering, and malformed SAM data.
 */
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mcsec-private.h"
#include "mcsec/mcsec-mike.h"
#include "mcsec-test.h"

#define SPI 0x5a5a0001u

static EVP_PKEY *
new_key (int alg)
{
  EVP_PKEY *k = alg == MCSEC_SAM_ALG_ED25519
                    ? EVP_PKEY_Q_keygen (NULL, NULL, "ED25519")
                    : EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  REQUIRE (k != NULL);
  return k;
}

/* The public half only, as a receiver would have it. */
static EVP_PKEY *
public_of (EVP_PKEY *k)
{
  unsigned char *der = NULL;
  const unsigned char *p;
  int len = i2d_PUBKEY (k, &der);
  EVP_PKEY *pub;

  REQUIRE (len > 0);
  p = der;
  pub = d2i_PUBKEY (NULL, &p, len);
  OPENSSL_free (der);
  REQUIRE (pub != NULL);
  return pub;
}

/* ---- per-packet scheme ---- */

static void
test_per_packet (int alg)
{
  EVP_PKEY *kx = new_key (alg), *ky = new_key (alg);
  EVP_PKEY *px = public_of (kx), *py = public_of (ky);
  mcsec_sam_signer_t *sx, *sy;
  mcsec_sam_verifier_t *v;
  mcsec_sam_result_t res;
  uint8_t data[300], pkt[600];
  size_t len;

  memset (data, 0x33, sizeof (data));
  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, kx, 0, 0, &sx) == 0);
  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, ky, 0, 0, &sy) == 0);
  REQUIRE (mcsec_sam_verifier_new (NULL, NULL, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, px) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 2, py) == 0);
  /* a public key cannot sign */
  {
    mcsec_sam_signer_t *bad = NULL;
    CHECK_STATUS (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, px, 0, 0, &bad),
                  MCSEC_ERR_BAD_SIGNING_KEY);
  }

  CHECK_STATUS (mcsec_sam_sign (sx, SPI, 1, 77, data, sizeof (data), pkt,
                                sizeof (pkt), &len),
                MCSEC_OK);
  CHECK (len == sizeof (data) + MCSEC_SAM_SIGNED_HEADER_LEN);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, 77, 77, pkt, len, &res), MCSEC_OK);
  CHECK (res.outcome == MCSEC_SAM_VERIFIED);
  CHECK (res.payload_len == sizeof (data));
  CHECK (memcmp (pkt + res.payload_offset, data, sizeof (data)) == 0);
  /* the same bytes under another ESP counter, SPI or sender: refused */
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, 78, 78, pkt, len, &res),
                MCSEC_ERR_SIGNATURE);
  CHECK_STATUS (mcsec_sam_verify (v, SPI + 1, 1, 77, 77, pkt, len, &res),
                MCSEC_ERR_SIGNATURE);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 2, 77, 77, pkt, len, &res),
                MCSEC_ERR_SIGNATURE);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 9, 77, 77, pkt, len, &res),
                MCSEC_ERR_NO_SENDER_KEY);
  /* every tampered byte is caught */
  for (size_t i = 2; i < len; i += 7) {
    pkt[i] ^= 0x20;
    CHECK (mcsec_sam_verify (v, SPI, 1, 77, 77, pkt, len, &res) != MCSEC_OK);
    pkt[i] ^= 0x20;
  }
  /* insider: member 2 signs with its own key, claims to be member 1 */
  CHECK_STATUS (mcsec_sam_sign (sy, SPI, 1, 90, data, sizeof (data), pkt,
                                sizeof (pkt), &len),
                MCSEC_OK);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, 90, 90, pkt, len, &res),
                MCSEC_ERR_SIGNATURE);
  CHECK (res.outcome == 0);
  for (size_t l = 0; l < MCSEC_SAM_SIGNED_HEADER_LEN; l++)
    CHECK (mcsec_sam_verify (v, SPI, 2, 90, 90, pkt, l, &res) != MCSEC_OK);
  mcsec_sam_signer_free (sx);
  mcsec_sam_signer_free (sy);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (kx);
  EVP_PKEY_free (ky);
  EVP_PKEY_free (px);
  EVP_PKEY_free (py);
}

/* ---- block scheme: a stream through a lossy, reordering network ---- */

typedef struct {
  uint64_t counter;
  size_t len;
  uint8_t bytes[200];
} wire_t;

typedef struct {
  unsigned verified, failed, unverifiable;
  uint8_t *state; /* per counter: 0 none, 1 verified, 2 failed, 3 unverif. */
  size_t n;
} tally_t;

static void
on_event (const mcsec_sam_event_t *ev, void *data)
{
  tally_t *t = data;
  if (ev->counter >= t->n)
    return;
  if (t->state[ev->counter] != 0)
    t->failed += 1000000; /* decided twice: a bug */
  t->state[ev->counter] = (uint8_t)ev->outcome;
  if (ev->outcome == MCSEC_SAM_VERIFIED)
    t->verified++;
  else if (ev->outcome == MCSEC_SAM_FAILED)
    t->failed++;
  else
    t->unverifiable++;
}

/* Make a stream of n_packets data packets (+ carriers at the end). */
static size_t
make_stream_from (EVP_PKEY *key, unsigned block, unsigned n_packets, wire_t *w,
                  size_t max, int salt, uint64_t counter)
{
  mcsec_sam_signer_t *s;
  size_t n = 0;

  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_BLOCK, key, block, 0, &s) == 0);
  for (unsigned i = 0; i < n_packets; i++) {
    uint8_t data[100];
    memset (data, (int)i + salt, sizeof (data));
    REQUIRE (n < max);
    w[n].counter = counter;
    REQUIRE (mcsec_sam_sign (s, SPI, 1, counter++, data, sizeof (data),
                             w[n].bytes, sizeof (w[n].bytes), &w[n].len) == 0);
    n++;
  }
  REQUIRE (mcsec_sam_end_block (s) == 0);
  while (mcsec_sam_pending_symbols (s) > 0) {
    REQUIRE (n < max);
    w[n].counter = counter;
    REQUIRE (
        mcsec_sam_carrier (s, w[n].bytes, sizeof (w[n].bytes), &w[n].len) == 0);
    REQUIRE (w[n].len > 0);
    n++;
  }
  mcsec_sam_signer_free (s);
  return n;
}

static size_t
make_stream_data (EVP_PKEY *key, unsigned block, unsigned n_packets, wire_t *w,
                  size_t max, int salt)
{
  return make_stream_from (key, block, n_packets, w, max, salt, 1);
}

static size_t
make_stream (EVP_PKEY *key, unsigned block, unsigned n_packets, wire_t *w,
             size_t max)
{
  return make_stream_data (key, block, n_packets, w, max, 0);
}

/* Deliver the stream with the given loss; returns the fraction of received
 * data packets that verified, and checks that nothing failed. */
static double
run_loss (EVP_PKEY *key, EVP_PKEY *pub, unsigned block, double loss,
          unsigned burst, uint64_t seed, int reorder)
{
  enum { N = 4000, MAX = 4400 };
  static wire_t w[MAX];
  static uint8_t state[MAX + 2];
  tally_t t = {0, 0, 0, state, sizeof (state)};
  mcsec_sam_verifier_t *v;
  size_t n = make_stream (key, block, N, w, MAX), received = 0;
  unsigned burst_left = 0;
  uint64_t rng = seed;

  memset (state, 0, sizeof (state));
  REQUIRE (mcsec_sam_verifier_new (on_event, &t, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, pub) == 0);
  if (reorder) { /* swap neighbours within a distance of 8 */
    for (size_t i = 0; i + 8 < n; i++) {
      size_t j = i + test_rand (&rng) % 8;
      wire_t tmp = w[i];
      w[i] = w[j];
      w[j] = tmp;
    }
  }
  for (size_t i = 0; i < n; i++) {
    mcsec_sam_result_t res;
    int lost;
    if (burst_left > 0) {
      lost = 1;
      burst_left--;
    } else {
      lost = (double)(test_rand (&rng) % 1000000) / 1e6 < loss;
      if (lost && burst > 1)
        burst_left = burst - 1;
    }
    if (lost)
      continue;
    CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[i].counter, w[i].counter,
                                    w[i].bytes, w[i].len, &res),
                  MCSEC_OK);
    /* a data packet is pending (verdict by event), or judged on the spot
     * when it arrives after its block was decided */
    if (res.outcome != MCSEC_SAM_CARRIER) {
      received++;
      CHECK (res.payload_len == 100);
    }
    if (res.outcome == MCSEC_SAM_VERIFIED)
      t.verified++;
    else if (res.outcome == MCSEC_SAM_FAILED)
      t.failed++;
    else if (res.outcome == MCSEC_SAM_UNVERIFIABLE)
      t.unverifiable++;
  }
  mcsec_sam_verifier_flush (v);
  CHECK (t.failed == 0);
  CHECK (t.verified + t.unverifiable == received);
  mcsec_sam_verifier_free (v);
  return received ? (double)t.verified / (double)received : 0;
}

static void
test_block_losses (int alg)
{
  /* block, random loss, burst length, seed, reorder, verified at least
   * (-1: reported only) */
  static const struct {
    unsigned block;
    double loss;
    unsigned burst;
    uint64_t seed;
    int reorder;
    double min;
    const char *what;
  } cases[] = {
      {64, 0, 0, 1, 0, 1.0, "no loss"},
      {64, 0, 0, 1, 1, 1.0, "reordered, no loss"},
      {64, 0.10, 0, 2, 0, 0.999, "10% random loss"},
      {64, 0.20, 0, 3, 0, 0.99, "20% random loss"},
      {64, 0.20, 0, 4, 1, 0.99, "20% loss + reordering"},
      {64, 0.05, 8, 5, 0, -1, "bursts of 8 (~30% loss)"},
      {64, 0.50, 0, 6, 0, -1, "50% random loss"},
      {16, 0.20, 0, 7, 0, -1, "20% random loss"},
      {128, 0.20, 0, 8, 0, 0.99, "20% random loss"},
      /* above 128 packets a block is coded as two interleaved codes */
      {256, 0, 0, 9, 1, 1.0, "reordered, no loss"},
      {256, 0.20, 0, 10, 0, 0.99, "20% random loss"},
      {200, 0.20, 0, 11, 0, 0.99, "20% random loss"},
  };
  EVP_PKEY *k = new_key (alg), *pub = public_of (k);

  for (size_t c = 0; c < sizeof (cases) / sizeof (cases[0]); c++) {
    double f = run_loss (k, pub, cases[c].block, cases[c].loss, cases[c].burst,
                         cases[c].seed, cases[c].reorder);
    printf ("  alg %d, block %u: %s: %.4f verified\n", alg, cases[c].block,
            cases[c].what, f);
    if (cases[c].min >= 0)
      CHECK (f >= cases[c].min);
  }
  EVP_PKEY_free (k);
  EVP_PKEY_free (pub);
}

/* An insider (own key, group key) injects a packet at a position of X's
 * block: it is never accepted as X's. */
static void
test_block_insider (void)
{
  enum { N = 256, MAX = 400 };
  static wire_t w[MAX], forged[MAX];
  static uint8_t state[MAX + 2];
  EVP_PKEY *kx = new_key (MCSEC_SAM_ALG_ED25519), *px = public_of (kx);
  EVP_PKEY *ky = new_key (MCSEC_SAM_ALG_ED25519);
  tally_t t = {0, 0, 0, state, sizeof (state)};
  mcsec_sam_verifier_t *v;
  size_t n = make_stream (kx, 32, N, w, MAX);
  /* the forger's own content (other bytes), signed with its own key */
  size_t nf = make_stream_data (ky, 32, N, forged, MAX, 0x40);

  memset (state, 0, sizeof (state));
  REQUIRE (mcsec_sam_verifier_new (on_event, &t, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, px) == 0);
  (void)nf;
  for (size_t i = 0; i < n; i++) {
    mcsec_sam_result_t res;
    /* in block 2, the forger's packets replace X's (the genuine ones are
     * "lost"), with the forger's own block signature symbols */
    const wire_t *p = (i >= 64 && i < 96) ? &forged[i] : &w[i];
    mcsec_status_t st = mcsec_sam_verify (v, SPI, 1, p->counter, p->counter,
                                          p->bytes, p->len, &res);
    CHECK (st == MCSEC_OK || st == MCSEC_ERR_MALFORMED);
  }
  mcsec_sam_verifier_flush (v);
  /* none of the forged positions verified; X's other blocks did */
  for (size_t c = 65; c <= 96; c++)
    CHECK (state[c] != MCSEC_SAM_VERIFIED);
  CHECK (t.verified >= 128);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (kx);
  EVP_PKEY_free (px);
  EVP_PKEY_free (ky);
}

/* A member that arrives after its block was decided is judged on the spot;
 * an insider's forgery at that position fails and does not keep the
 * genuine member (late, reordered) out. */
static void
test_late_member_not_taken (void)
{
  enum { N = 64, MAX = 100 };
  static wire_t w[MAX], forged;
  EVP_PKEY *kx = new_key (MCSEC_SAM_ALG_ED25519), *px = public_of (kx);
  mcsec_sam_verifier_t *v;
  mcsec_sam_result_t res;
  size_t n = make_stream (kx, 16, N, w, MAX);

  REQUIRE (mcsec_sam_verifier_new (NULL, NULL, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, px) == 0);
  /* the first block but its member 5, which comes late, and the next
   * block, which carries the first's signature: the first is decided */
  REQUIRE (n > 32);
  for (size_t i = 0; i < 32; i++)
    if (i != 5)
      REQUIRE (mcsec_sam_verify (v, SPI, 1, w[i].counter, w[i].counter,
                                 w[i].bytes, w[i].len, &res) == MCSEC_OK);
  forged = w[5];
  forged.bytes[forged.len - 1] ^= 0x01; /* other content, same position */
  CHECK_STATUS (
      mcsec_sam_verify (v, SPI, 1, 1000, 1000, forged.bytes, forged.len, &res),
      MCSEC_OK);
  CHECK (res.outcome == MCSEC_SAM_FAILED);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[5].counter, w[5].counter,
                                  w[5].bytes, w[5].len, &res),
                MCSEC_OK);
  CHECK (res.outcome == MCSEC_SAM_VERIFIED);
  /* once taken by the genuine member, the position is closed */
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[5].counter, w[5].counter,
                                  w[5].bytes, w[5].len, &res),
                MCSEC_ERR_REPLAY);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (kx);
  EVP_PKEY_free (px);
}

/* Bytes added per packet on average, and a replay of a member. */
static void
test_block_overhead_and_replay (void)
{
  enum { N = 6400, MAX = 6800 };
  static wire_t w[MAX];
  EVP_PKEY *k = new_key (MCSEC_SAM_ALG_ED25519), *pub = public_of (k);
  size_t n = make_stream (k, 64, N, w, MAX), bytes = 0;
  mcsec_sam_verifier_t *v;
  mcsec_sam_result_t res;

  for (size_t i = 0; i < n; i++)
    bytes += w[i].len - (i < N ? 100 : 0);
  printf ("  block 64: %.2f bytes added per data packet on average\n",
          (double)bytes / N);
  CHECK ((double)bytes / N <= 24.0);
  REQUIRE (mcsec_sam_verifier_new (NULL, NULL, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, pub) == 0);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[0].counter, w[0].counter,
                                  w[0].bytes, w[0].len, &res),
                MCSEC_OK);
  CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[0].counter, w[0].counter,
                                  w[0].bytes, w[0].len, &res),
                MCSEC_ERR_REPLAY);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (k);
  EVP_PKEY_free (pub);
}

/* Every packet that carries a signature symbol is lost: the signature is
 * rebuilt from parity (there is no "signature packet" to lose). */
static void
test_block_signature_symbols_lost (void)
{
  enum { N = 640, MAX = 700 };
  static wire_t w[MAX];
  static uint8_t state[MAX + 2];
  EVP_PKEY *k = new_key (MCSEC_SAM_ALG_ED25519), *pub = public_of (k);
  tally_t t = {0, 0, 0, state, sizeof (state)};
  mcsec_sam_verifier_t *v;
  size_t n = make_stream (k, 64, N, w, MAX), lost = 0, received = 0;

  memset (state, 0, sizeof (state));
  REQUIRE (mcsec_sam_verifier_new (on_event, &t, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, pub) == 0);
  for (size_t i = 0; i < n; i++) {
    mcsec_sam_result_t res;
    const uint8_t *p = w[i].bytes;
    int carries_signature = 0;
    for (unsigned c = 0; c < p[9]; c++)
      carries_signature |=
          p[MCSEC_SAM_BLOCK_HEADER_LEN + c * MCSEC_SAM_CARRIED_LEN] <
          MCSEC_SAM_SIG_SYMBOLS;
    if (carries_signature) {
      lost++;
      continue;
    }
    CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[i].counter, w[i].counter,
                                    w[i].bytes, w[i].len, &res),
                  MCSEC_OK);
    received += res.outcome != MCSEC_SAM_CARRIER;
  }
  mcsec_sam_verifier_flush (v);
  printf ("  block 64: %zu packets carrying signature symbols lost, %u of "
          "%zu received verified\n",
          lost, t.verified, received);
  CHECK (lost >= 10);
  CHECK (t.verified == received);
  CHECK (t.failed == 0);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (k);
  EVP_PKEY_free (pub);
}

/* A sender restarts (a new signer, the same key, its ESP counters going
 * on from its counter store): its receivers follow. */
static void
test_block_restart (void)
{
  enum { N = 320, MAX = 400 };
  static wire_t w[2][MAX];
  static uint8_t state[2 * MAX + 2];
  EVP_PKEY *k = new_key (MCSEC_SAM_ALG_ED25519), *pub = public_of (k);
  tally_t t = {0, 0, 0, state, sizeof (state)};
  mcsec_sam_verifier_t *v;
  size_t n[2];

  n[0] = make_stream_from (k, 32, N, w[0], MAX, 0, 1);
  n[1] = make_stream_from (k, 32, N, w[1], MAX, 0, MAX + 1);
  memset (state, 0, sizeof (state));
  REQUIRE (mcsec_sam_verifier_new (on_event, &t, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, pub) == 0);
  for (int run = 0; run < 2; run++)
    for (size_t i = 0; i < n[run]; i++) {
      mcsec_sam_result_t res;
      CHECK_STATUS (mcsec_sam_verify (v, SPI, 1, w[run][i].counter,
                                      w[run][i].counter, w[run][i].bytes,
                                      w[run][i].len, &res),
                    MCSEC_OK);
    }
  mcsec_sam_verifier_flush (v);
  CHECK (t.verified == 2 * N);
  CHECK (t.failed == 0);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (k);
  EVP_PKEY_free (pub);
}

/* Malformed SAM data: a status, never a crash. */
/* Finding 5 of issue 13: a Sender-ID is one member's under one key and
 * may be another's under the next.  Keys are bound to (SPI, Sender-ID) as
 * the controller's updates say, and dropped when withdrawn. */
static void
set_sender (mcsec_msa_t *msa, size_t i, uint32_t id, EVP_PKEY *key)
{
  unsigned char *p = msa->senders[i].spki;
  int len = i2d_PUBKEY (key, NULL);
  REQUIRE (len > 0 && len <= (int)sizeof (msa->senders[i].spki));
  REQUIRE (i2d_PUBKEY (key, &p) == len);
  msa->senders[i].sender_id = id;
  msa->senders[i].spki_len = (size_t)len;
}

static mcsec_status_t
per_packet (mcsec_sam_verifier_t *v, mcsec_sam_signer_t *s, uint32_t spi,
            uint32_t id, uint64_t counter)
{
  uint8_t data[40], pkt[200];
  size_t len;
  mcsec_sam_result_t res;

  memset (data, 0x44, sizeof (data));
  REQUIRE (mcsec_sam_sign (s, spi, id, counter, data, sizeof (data), pkt,
                           sizeof (pkt), &len) == MCSEC_OK);
  return mcsec_sam_verify (v, spi, id, counter, counter, pkt, len, &res);
}

static void
test_keys_bound_to_sa (void)
{
  EVP_PKEY *alice = new_key (MCSEC_SAM_ALG_ED25519);
  EVP_PKEY *mallory = new_key (MCSEC_SAM_ALG_ED25519);
  mcsec_sam_signer_t *sa_, *sm;
  mcsec_sam_verifier_t *v;
  mcsec_msa_t *msa = calloc (1, sizeof (*msa));
  const uint32_t A = SPI, B = SPI + 1;

  REQUIRE (msa != NULL);
  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, alice, 0, 0, &sa_) == 0);
  REQUIRE (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, mallory, 0, 0, &sm) ==
           0);
  REQUIRE (mcsec_sam_verifier_new (NULL, NULL, &v) == 0);
  /* update 1: SA A, Alice is Sender-ID 5 */
  msa->n_sas = 1;
  msa->sas[0].spi = A;
  msa->sas[0].listed = 1;
  msa->n_senders = 1;
  set_sender (msa, 0, 5, alice);
  CHECK_STATUS (mcsec_msa_bind_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (per_packet (v, sa_, A, 5, 1), MCSEC_OK);
  /* update 2 (a rekey, the 5s wrapped): SA B listed, A kept from before;
   * Mallory is Sender-ID 5 under B */
  msa->n_sas = 2;
  msa->sas[0].listed = 0;
  msa->sas[1].spi = B;
  msa->sas[1].listed = 1;
  set_sender (msa, 0, 5, mallory);
  CHECK_STATUS (mcsec_msa_bind_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (per_packet (v, sa_, A, 5, 2), MCSEC_OK);
  CHECK_STATUS (per_packet (v, sm, A, 5, 3), MCSEC_ERR_SIGNATURE);
  CHECK_STATUS (per_packet (v, sm, B, 5, 4), MCSEC_OK);
  CHECK_STATUS (per_packet (v, sa_, B, 5, 5), MCSEC_ERR_SIGNATURE);
  /* update 3: Mallory's Sender-ID withdrawn from B */
  msa->n_sas = 1;
  msa->sas[0].spi = B;
  msa->sas[0].listed = 1;
  msa->n_senders = 0;
  CHECK_STATUS (mcsec_msa_bind_senders (msa, v), MCSEC_OK);
  CHECK_STATUS (per_packet (v, sm, B, 5, 6), MCSEC_ERR_NO_SENDER_KEY);
  /* the SA goes: its keys too */
  mcsec_sam_verifier_retain (v, A, NULL, 0);
  CHECK_STATUS (per_packet (v, sa_, A, 5, 7), MCSEC_ERR_NO_SENDER_KEY);
  /* a key trusted under any SA (spi 0) serves where no SA binds one */
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 5, alice) == MCSEC_OK);
  CHECK_STATUS (per_packet (v, sa_, B, 5, 8), MCSEC_OK);
  CHECK_STATUS (mcsec_sam_verifier_remove_sender (v, 0, 5), MCSEC_OK);
  CHECK_STATUS (mcsec_sam_verifier_remove_sender (v, 0, 5),
                MCSEC_ERR_NO_SENDER_KEY);
  mcsec_msa_free (msa);
  mcsec_sam_signer_free (sa_);
  mcsec_sam_signer_free (sm);
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (alice);
  EVP_PKEY_free (mallory);
}

static void
test_malformed (void)
{
  EVP_PKEY *k = new_key (MCSEC_SAM_ALG_ED25519), *pub = public_of (k);
  mcsec_sam_verifier_t *v;
  uint8_t buf[400];
  uint64_t rng = 99;

  REQUIRE (mcsec_sam_verifier_new (NULL, NULL, &v) == 0);
  REQUIRE (mcsec_sam_verifier_add_sender (v, 0, 1, pub) == 0);
  for (int i = 0; i < 20000; i++) {
    size_t len = test_rand (&rng) % sizeof (buf);
    mcsec_sam_result_t res;
    for (size_t j = 0; j < len; j++)
      buf[j] = (uint8_t)test_rand (&rng);
    if (len > 1) {
      buf[0] = (uint8_t)(1 + i % 3);
      buf[1] = MCSEC_SAM_ALG_ED25519;
    }
    if (len > 9 && (i & 4))
      buf[9] = (uint8_t)(i % 6);
    if (mcsec_sam_verify (v, SPI, 1, (uint64_t)i, (uint64_t)i, buf, len,
                          &res) == MCSEC_OK)
      CHECK (res.payload_offset + res.payload_len <= len);
  }
  mcsec_sam_verifier_free (v);
  EVP_PKEY_free (k);
  EVP_PKEY_free (pub);
}

int
main (void)
{
  /* the SSSE3/AVX2 arithmetic equals the portable one */
  CHECK (mcsec_sam_gf_selftest () == 1);
  test_per_packet (MCSEC_SAM_ALG_ED25519);
  test_per_packet (MCSEC_SAM_ALG_ECDSA_P256);
  test_block_losses (MCSEC_SAM_ALG_ED25519);
  test_block_losses (MCSEC_SAM_ALG_ECDSA_P256);
  test_block_insider ();
  test_block_overhead_and_replay ();
  test_block_restart ();
  test_block_signature_symbols_lost ();
  test_keys_bound_to_sa ();
  test_late_member_not_taken ();
  test_malformed ();
  return test_done ("test-sam");
}
