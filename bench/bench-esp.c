/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-esp: ns/packet of libmcsec's protect and unprotect for every suite,
 * against baselines measured in the same run, since the machine is shared
 * and noisy:
 *   - raw OpenSSL EVP AES-128-GCM seal/open with a per-packet IV (the floor:
 *     one keyed context, nonce set per packet, 8-byte AAD, 16-byte tag);
 *   - libsrtp 2 srtp_protect/srtp_unprotect, AEAD_AES_128_GCM and
 *     AES_CM_128_HMAC_SHA1_80, on an RTP packet of the same size;
 *   - receive with 1 and with 4096 senders interleaved on one SA (the
 *     sender lookup must stay flat).
 * Each figure is the best of several timed batches.  Usage:
 *   bench-esp [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include <mcsec/mcsec.h>

#define BATCH 4096
#define MAX_PKT 1600
/* Sending works on a few hot buffers, as with a buffer pool; receiving
 * reads BATCH distinct packets (each may be accepted only once). */
#define RING 8

static int reps = 15;

static double
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint8_t (*pkts)[MAX_PKT];
static size_t lens[BATCH];
static uint8_t scratch[MAX_PKT];
static volatile uint64_t sink;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf (stderr, __VA_ARGS__);                                             \
    exit (1);                                                                  \
  } while (0)

/* Every figure comes from a "case": set up once, then timed one batch at a
 * time, the cases of one payload size taking turns (round robin) so that
 * a slow phase of the shared machine hits them all alike. */
typedef enum {
  EVP_SEAL,
  EVP_OPEN,
  MC_PROTECT,
  MC_UNPROTECT,
  SRTP_PROTECT,
  SRTP_UNPROTECT
} kind_t;

typedef struct {
  kind_t kind;
  size_t size;
  mcsec_suite_t suite;
  int gcm; /* libsrtp: AEAD_AES_128_GCM, else AES-CM */
  int n_senders;
  /* state */
  EVP_CIPHER_CTX *ctx;
  uint8_t key[64];
  mcsec_sa_t **tx;
  uint16_t seq;
  double best;
  int unsupported;
} bench_case_t;

static void
evp_setup (bench_case_t *c)
{
  EVP_CIPHER *cipher = EVP_CIPHER_fetch (NULL, "AES-128-GCM", NULL);
  c->ctx = EVP_CIPHER_CTX_new ();
  if (cipher == NULL || c->ctx == NULL ||
      EVP_CipherInit_ex (c->ctx, cipher, NULL, c->key, NULL,
                         c->kind == EVP_SEAL) != 1)
    FAIL ("EVP setup\n");
  EVP_CIPHER_free (cipher);
}

/* one packet through the raw EVP floor: nonce, 8-byte AAD, data, tag */
static int
evp_one (EVP_CIPHER_CTX *ctx, int enc, const uint8_t *iv, uint8_t *in, size_t n,
         uint8_t *out, uint8_t *tag)
{
  static const uint8_t aad[8] = {0, 1, 0, 1, 0, 0, 0, 1};
  int outl;
  if (enc) {
    return EVP_EncryptInit_ex (ctx, NULL, NULL, NULL, iv) == 1 &&
           EVP_EncryptUpdate (ctx, NULL, &outl, aad, 8) == 1 &&
           EVP_EncryptUpdate (ctx, out, &outl, in, (int)n) == 1 &&
           EVP_EncryptFinal_ex (ctx, out + n, &outl) == 1 &&
           EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
  }
  return EVP_DecryptInit_ex (ctx, NULL, NULL, NULL, iv) == 1 &&
         EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1 &&
         EVP_DecryptUpdate (ctx, NULL, &outl, aad, 8) == 1 &&
         EVP_DecryptUpdate (ctx, out, &outl, in, (int)n) == 1 &&
         EVP_DecryptFinal_ex (ctx, out + n, &outl) == 1;
}

static double
evp_batch (bench_case_t *c)
{
  uint8_t iv[12] = {1, 2, 3, 4}, tag[16];
  double t0;

  if (c->kind == EVP_OPEN) {
    /* valid packets with a sealing context of the same key */
    static EVP_CIPHER_CTX *sealer;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch (NULL, "AES-128-GCM", NULL);
    if (sealer == NULL)
      sealer = EVP_CIPHER_CTX_new ();
    EVP_CipherInit_ex (sealer, cipher, NULL, c->key, NULL, 1);
    EVP_CIPHER_free (cipher);
    for (int i = 0; i < BATCH; i++) {
      memcpy (iv + 4, &i, sizeof (i));
      memset (pkts[i], i, c->size);
      if (!evp_one (sealer, 1, iv, pkts[i], c->size, pkts[i],
                    pkts[i] + c->size))
        FAIL ("EVP seal\n");
    }
  } else {
    for (int i = 0; i < BATCH; i++)
      memset (pkts[i], i, c->size);
  }
  t0 = now_ns ();
  for (int i = 0; i < BATCH; i++) {
    memcpy (iv + 4, &i, sizeof (i));
    if (c->kind == EVP_SEAL) {
      if (!evp_one (c->ctx, 1, iv, pkts[i % RING], c->size, scratch, tag))
        FAIL ("EVP seal\n");
      sink += tag[0];
    } else {
      memcpy (tag, pkts[i] + c->size, 16);
      if (!evp_one (c->ctx, 0, iv, pkts[i], c->size, scratch, tag))
        FAIL ("EVP open\n");
    }
  }
  return (now_ns () - t0) / BATCH;
}

static mcsec_sa_t *
new_sa (mcsec_suite_t suite, const uint8_t *key)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  cfg.spi = 0x10001;
  cfg.suite = suite;
  cfg.key = key;
  cfg.key_len = mcsec_suite_key_material_len (suite);
  if (mcsec_sa_new (&cfg, &sa))
    FAIL ("mcsec_sa_new\n");
  return sa;
}

static void
mc_setup (bench_case_t *c)
{
  if (mcsec_generate_key_material (c->suite, c->key, sizeof (c->key)))
    FAIL ("key\n");
  c->tx = calloc ((size_t)c->n_senders, sizeof (*c->tx));
  for (int s = 0; s < c->n_senders; s++) {
    c->tx[s] = new_sa (c->suite, c->key);
    if (mcsec_sa_set_sender (c->tx[s], (uint32_t)s, 1, 0))
      FAIL ("set_sender\n");
  }
}

static double
mc_batch (bench_case_t *c)
{
  static uint8_t payload[MAX_PKT];
  mcsec_sa_t *rx;
  double t0, t;

  memset (payload, 0xab, c->size);
  if (c->kind == MC_PROTECT) {
    size_t len;
    t0 = now_ns ();
    for (int i = 0; i < BATCH; i++)
      if (mcsec_sa_protect (c->tx[0], MCSEC_NEXT_HEADER_DATAGRAM, payload,
                            c->size, pkts[i % RING], MAX_PKT, &len, NULL))
        FAIL ("protect\n");
    return (now_ns () - t0) / BATCH;
  }
  /* receive: a fresh SA that already knows every sender (steady state) */
  rx = new_sa (c->suite, c->key);
  for (int i = 0; i < BATCH; i++)
    if (mcsec_sa_protect (c->tx[i % c->n_senders], MCSEC_NEXT_HEADER_DATAGRAM,
                          payload, c->size, pkts[i], MAX_PKT, &lens[i], NULL))
      FAIL ("protect\n");
  for (int i = 0; i < c->n_senders && i < BATCH; i++)
    if (mcsec_sa_unprotect (rx, pkts[i], lens[i], scratch, MAX_PKT, NULL))
      FAIL ("warm-up unprotect\n");
  for (int i = 0; i < BATCH; i++)
    if (mcsec_sa_protect (c->tx[i % c->n_senders], MCSEC_NEXT_HEADER_DATAGRAM,
                          payload, c->size, pkts[i], MAX_PKT, &lens[i], NULL))
      FAIL ("protect\n");
  t0 = now_ns ();
  for (int i = 0; i < BATCH; i++) {
    mcsec_status_t st =
        mcsec_sa_unprotect (rx, pkts[i], lens[i], scratch, MAX_PKT, NULL);
    if (st)
      FAIL ("unprotect: %s\n", mcsec_status_name (st));
  }
  t = (now_ns () - t0) / BATCH;
  mcsec_sa_free (rx);
  return t;
}

static srtp_t
new_srtp (int gcm, const uint8_t *key, int outbound)
{
  srtp_policy_t policy;
  srtp_t session;
  memset (&policy, 0, sizeof (policy));
  if (gcm) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtcp);
  } else {
    srtp_crypto_policy_set_rtp_default (&policy.rtp);
    srtp_crypto_policy_set_rtcp_default (&policy.rtcp);
  }
  policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  policy.key = (unsigned char *)key;
  policy.window_size = 1024;
  if (srtp_create (&session, &policy) != srtp_err_status_ok)
    return NULL;
  return session;
}

static void
make_rtp (uint8_t *p, size_t size, uint16_t seq)
{
  memset (p, 0x42, size);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  memset (p + 4, 0, 4);
  p[8] = 0x12, p[9] = 0x34, p[10] = 0x56, p[11] = 0x78;
}

static double
srtp_batch (bench_case_t *c)
{
  srtp_t tx = new_srtp (c->gcm, c->key, 1), rx = new_srtp (c->gcm, c->key, 0);
  double t0, t;

  if (tx == NULL || rx == NULL) {
    c->unsupported = 1;
    return 0;
  }
  /* the RTP packets are built before the clock starts, for both kinds */
  for (int i = 0; i < BATCH; i++)
    make_rtp (pkts[i], c->size, (uint16_t)(i + 1));
  if (c->kind == SRTP_UNPROTECT) {
    for (int i = 0; i < BATCH; i++) {
      int len = (int)c->size;
      if (srtp_protect (tx, pkts[i], &len) != srtp_err_status_ok)
        FAIL ("srtp_protect\n");
      lens[i] = (size_t)len;
    }
  }
  t0 = now_ns ();
  for (int i = 0; i < BATCH; i++) {
    int len = c->kind == SRTP_PROTECT ? (int)c->size : (int)lens[i];
    srtp_err_status_t e;
    if (c->kind == SRTP_PROTECT) {
      /* in place on a hot buffer: a new sequence number (2 stores, counted
       * against libsrtp), the rest of the packet is reused */
      uint8_t *p = pkts[i % RING];
      p[2] = (uint8_t)((i + 1) >> 8);
      p[3] = (uint8_t)(i + 1);
      e = srtp_protect (tx, p, &len);
    } else {
      e = srtp_unprotect (rx, pkts[i], &len);
    }
    if (e != srtp_err_status_ok)
      FAIL ("libsrtp error %d\n", (int)e);
  }
  t = (now_ns () - t0) / BATCH;
  srtp_dealloc (tx);
  srtp_dealloc (rx);
  return t;
}

static void
case_setup (bench_case_t *c)
{
  c->best = 1e18;
  if (RAND_bytes (c->key, sizeof (c->key)) != 1)
    FAIL ("RAND_bytes\n");
  if (c->kind == EVP_SEAL || c->kind == EVP_OPEN)
    evp_setup (c);
  else if (c->kind == MC_PROTECT || c->kind == MC_UNPROTECT)
    mc_setup (c);
}

static void
case_run (bench_case_t *c)
{
  double t;
  if (c->unsupported)
    return;
  if (c->kind == EVP_SEAL || c->kind == EVP_OPEN)
    t = evp_batch (c);
  else if (c->kind == MC_PROTECT || c->kind == MC_UNPROTECT)
    t = mc_batch (c);
  else
    t = srtp_batch (c);
  if (t < c->best)
    c->best = t;
}

static void
case_free (bench_case_t *c)
{
  EVP_CIPHER_CTX_free (c->ctx);
  for (int s = 0; c->tx && s < c->n_senders; s++)
    mcsec_sa_free (c->tx[s]);
  free (c->tx);
}

/* run cases round robin, reps times */
static void
run_cases (bench_case_t *cases, size_t n)
{
  for (size_t i = 0; i < n; i++)
    case_setup (&cases[i]);
  for (int r = 0; r < reps; r++)
    for (size_t i = 0; i < n; i++)
      case_run (&cases[i]);
}

static const mcsec_suite_t suites[] = {
    MCSEC_SUITE_AES_128_GCM,       MCSEC_SUITE_AES_256_GCM,
    MCSEC_SUITE_CHACHA20_POLY1305, MCSEC_SUITE_AES_128_GMAC,
    MCSEC_SUITE_AES_256_GMAC,
};

#define N_SUITES (sizeof (suites) / sizeof (suites[0]))

int
main (int argc, char **argv)
{
  static const size_t sizes[] = {64, 512, 1200, 1400};
  double goal_seal = 0, goal_open = 0, goal_p = 0, goal_u = 0, goal_sp = 0,
         goal_su = 0;

  if (argc > 1 && strcmp (argv[1], "--quick") == 0)
    reps = 3;
  pkts = malloc (sizeof (*pkts) * BATCH);
  if (pkts == NULL || srtp_init () != srtp_err_status_ok)
    return 1;

  printf ("bench-esp: ns/packet, best of %d batches of %d packets, cases "
          "of one size taking turns; ratios against baselines of this run\n",
          reps, BATCH);
  for (size_t z = 0; z < sizeof (sizes) / sizeof (sizes[0]); z++) {
    size_t n = sizes[z];
    bench_case_t cases[6 + 2 * N_SUITES];
    bench_case_t *seal = &cases[0], *open = &cases[1], *sgp = &cases[2],
                 *sgu = &cases[3], *scp = &cases[4], *scu = &cases[5];
    memset (cases, 0, sizeof (cases));
    *seal = (bench_case_t){.kind = EVP_SEAL, .size = n};
    *open = (bench_case_t){.kind = EVP_OPEN, .size = n};
    *sgp = (bench_case_t){.kind = SRTP_PROTECT, .size = n, .gcm = 1};
    *sgu = (bench_case_t){.kind = SRTP_UNPROTECT, .size = n, .gcm = 1};
    *scp = (bench_case_t){.kind = SRTP_PROTECT, .size = n};
    *scu = (bench_case_t){.kind = SRTP_UNPROTECT, .size = n};
    for (size_t s = 0; s < N_SUITES; s++) {
      cases[6 + 2 * s] = (bench_case_t){
          .kind = MC_PROTECT, .size = n, .suite = suites[s], .n_senders = 1};
      cases[7 + 2 * s] = (bench_case_t){
          .kind = MC_UNPROTECT, .size = n, .suite = suites[s], .n_senders = 1};
    }
    run_cases (cases, sizeof (cases) / sizeof (cases[0]));

    printf ("\n== %zu-byte payload ==\n", n);
    printf ("  %-46s %6.0f / %.0f ns\n",
            "raw EVP AES-128-GCM seal / open, per-packet IV", seal->best,
            open->best);
    if (!sgp->unsupported)
      printf ("  %-46s %6.0f / %.0f ns\n",
              "libsrtp AEAD_AES_128_GCM protect / unprotect", sgp->best,
              sgu->best);
    else
      printf ("  libsrtp AEAD_AES_128_GCM: not supported by this libsrtp\n");
    printf ("  %-46s %6.0f / %.0f ns\n",
            "libsrtp AES_CM_128_HMAC_SHA1_80 prot / unprot", scp->best,
            scu->best);
    printf ("  %-19s %8s %9s %9s %10s %14s\n", "mcsec suite", "protect",
            "unprotect", "prot/EVP", "unprot/EVP", "libsrtp-GCM/mc");
    for (size_t s = 0; s < N_SUITES; s++) {
      double p = cases[6 + 2 * s].best, u = cases[7 + 2 * s].best;
      printf ("  %-19s %8.0f %9.0f %8.2fx %9.2fx", mcsec_suite_name (suites[s]),
              p, u, p / seal->best, u / open->best);
      if (!sgp->unsupported)
        printf ("   %5.2fx/%.2fx", sgp->best / p, sgu->best / u);
      printf ("\n");
      if (n == 1200 && suites[s] == MCSEC_SUITE_AES_128_GCM) {
        goal_seal = seal->best;
        goal_open = open->best;
        goal_p = p;
        goal_u = u;
        goal_sp = sgp->unsupported ? 0 : sgp->best;
        goal_su = sgu->best;
      }
    }
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++)
      case_free (&cases[i]);
  }

  printf ("\n== receive, aes-128-gcm, 1200 bytes: sender lookup ==\n");
  {
    bench_case_t cases[2] = {
        {.kind = MC_UNPROTECT,
         .size = 1200,
         .suite = MCSEC_SUITE_AES_128_GCM,
         .n_senders = 1},
        {.kind = MC_UNPROTECT,
         .size = 1200,
         .suite = MCSEC_SUITE_AES_128_GCM,
         .n_senders = 4096},
    };
    run_cases (cases, 2);
    printf ("  1 sender %.0f ns, 4096 senders interleaved %.0f ns: %.2fx\n",
            cases[0].best, cases[1].best, cases[1].best / cases[0].best);
    case_free (&cases[0]);
    case_free (&cases[1]);
  }

  printf ("\n== goals at 1200 bytes, AES-128-GCM ==\n");
  printf ("  protect / raw EVP seal floor:   %.2fx (goal <= 1.10x)\n",
          goal_p / goal_seal);
  printf ("  unprotect / raw EVP open floor: %.2fx (goal <= 1.10x)\n",
          goal_u / goal_open);
  if (goal_sp > 0)
    printf ("  libsrtp GCM / mcsec: protect %.2fx, unprotect %.2fx "
            "(goal >= 2.5x)\n",
            goal_sp / goal_p, goal_su / goal_u);
  printf ("(sink %llu)\n", (unsigned long long)(sink & 1));
  free (pkts);
  srtp_shutdown ();
  return 0;
}
