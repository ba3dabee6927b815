/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-sam: source authentication costs, in one run, for 1200-byte
 * datagrams:
 *   - the references: ESP protect (aes-128-gcm), SHA-256 of the datagram,
 *     one signature and one verification (Ed25519, ECDSA P-256);
 *   - per-packet signatures: sender and receiver ns/packet;
 *   - signed blocks of 16..128 packets: sender and receiver ns/packet (no
 *     loss, and 20% loss for the receiver), bytes added per packet, and
 *     the verification delay (packets between arrival and verdict);
 *   - the goal's floor: SHA-256 + one signature (or verification) / block.
 * Each figure is the best of several runs.   Usage: bench-sam [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include <mcsec/mcsec.h>

#define SIZE 1200
#define SPI 0x5a5a0001u

static int reps = 5;
static unsigned n_packets = 4096;

static double
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf (stderr, __VA_ARGS__);                                             \
    exit (1);                                                                  \
  } while (0)

typedef struct {
  size_t len;
  uint64_t counter;
  uint8_t *bytes;
} wire_t;

static uint8_t datagram[SIZE];

static EVP_PKEY *
new_key (const char *alg)
{
  EVP_PKEY *k = strcmp (alg, "ed25519") == 0
                    ? EVP_PKEY_Q_keygen (NULL, NULL, "ED25519")
                    : EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  if (k == NULL)
    FAIL ("keygen\n");
  return k;
}

static double
bench_sha (void)
{
  uint8_t md[32];
  unsigned len;
  double best = 1e18;
  EVP_MD *sha = EVP_MD_fetch (NULL, "SHA256", NULL);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();

  for (int r = 0; r < reps; r++) {
    double t0 = now_ns ();
    for (unsigned i = 0; i < n_packets; i++) {
      EVP_DigestInit_ex (ctx, sha, NULL);
      EVP_DigestUpdate (ctx, datagram, SIZE);
      EVP_DigestFinal_ex (ctx, md, &len);
    }
    double t = (now_ns () - t0) / n_packets;
    if (t < best)
      best = t;
  }
  EVP_MD_free (sha);
  EVP_MD_CTX_free (ctx);
  return best;
}

static double
bench_esp (void)
{
  uint8_t key[20], out[SIZE + 64];
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  size_t len;
  double best = 1e18;

  if (mcsec_generate_key_material (MCSEC_SUITE_AES_128_GCM, key, sizeof (key)))
    FAIL ("key\n");
  cfg.spi = SPI;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = key;
  cfg.key_len = sizeof (key);
  if (mcsec_sa_new (&cfg, &sa) || mcsec_sa_set_sender (sa, 1, 1, 0))
    FAIL ("sa\n");
  for (int r = 0; r < reps; r++) {
    double t0 = now_ns ();
    for (unsigned i = 0; i < n_packets; i++)
      if (mcsec_sa_protect (sa, 253, datagram, SIZE, out, sizeof (out), &len,
                            NULL))
        FAIL ("protect\n");
    double t = (now_ns () - t0) / n_packets;
    if (t < best)
      best = t;
  }
  mcsec_sa_free (sa);
  return best;
}

/* One signature and one verification with the raw key, as the floor. */
static void
bench_sig (EVP_PKEY *k, int ed, double *sign_ns, double *verify_ns)
{
  uint8_t sig[80], msg[32] = {1};
  size_t sl;
  int n = 200;
  double t0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();

  *sign_ns = *verify_ns = 1e18;
  for (int r = 0; r < reps; r++) {
    t0 = now_ns ();
    for (int i = 0; i < n; i++) {
      sl = sizeof (sig);
      EVP_DigestSignInit (ctx, NULL, ed ? NULL : EVP_sha256 (), NULL, k);
      if (EVP_DigestSign (ctx, sig, &sl, msg, sizeof (msg)) != 1)
        FAIL ("sign\n");
    }
    if ((now_ns () - t0) / n < *sign_ns)
      *sign_ns = (now_ns () - t0) / n;
    t0 = now_ns ();
    for (int i = 0; i < n; i++) {
      EVP_DigestVerifyInit (ctx, NULL, ed ? NULL : EVP_sha256 (), NULL, k);
      if (EVP_DigestVerify (ctx, sig, sl, msg, sizeof (msg)) != 1)
        FAIL ("verify\n");
    }
    if ((now_ns () - t0) / n < *verify_ns)
      *verify_ns = (now_ns () - t0) / n;
  }
  EVP_MD_CTX_free (ctx);
}

typedef struct {
  uint64_t arrived_seq[70000]; /* arrival order of each counter */
  uint64_t seq;
  double delay_sum;
  uint64_t delay_max, decided, verified;
} delay_t;

static void
on_event (const mcsec_sam_event_t *ev, void *data)
{
  delay_t *d = data;
  uint64_t lag = d->seq - d->arrived_seq[ev->counter];
  d->delay_sum += (double)lag;
  if (lag > d->delay_max)
    d->delay_max = lag;
  d->decided++;
  d->verified += ev->outcome == MCSEC_SAM_VERIFIED;
}

/* Sender and receiver cost per data packet for one configuration. */
static void
bench_scheme (EVP_PKEY *k, mcsec_sam_scheme_t scheme, unsigned block,
              double loss, double *send_ns, double *recv_ns, double *bytes,
              double *delay_avg, uint64_t *delay_max, double *verified)
{
  static wire_t w[70000];
  static delay_t d;
  static uint8_t pool[70000 * (SIZE + 160)];
  size_t n = 0, extra = 0;
  uint64_t rng = 12345;

  *send_ns = *recv_ns = 1e18;
  for (int r = 0; r < reps; r++) {
    mcsec_sam_signer_t *s;
    mcsec_sam_verifier_t *v;
    uint64_t counter = 1;
    double t0, t;

    if (mcsec_sam_signer_new (scheme, k, block, 0, &s))
      FAIL ("signer\n");
    n = 0;
    extra = 0;
    t0 = now_ns ();
    for (unsigned i = 0; i < n_packets; i++) {
      w[n].bytes = pool + n * (SIZE + 160);
      w[n].counter = counter;
      if (mcsec_sam_sign (s, SPI, 1, counter++, datagram, SIZE, w[n].bytes,
                          SIZE + 160, &w[n].len))
        FAIL ("sign\n");
      extra += w[n].len - SIZE;
      n++;
    }
    if (mcsec_sam_end_block (s))
      FAIL ("end\n");
    while (mcsec_sam_pending_symbols (s)) {
      w[n].bytes = pool + n * (SIZE + 160);
      w[n].counter = counter;
      if (mcsec_sam_carrier (s, w[n].bytes, SIZE + 160, &w[n].len))
        FAIL ("carrier\n");
      extra += w[n].len;
      n++;
    }
    t = (now_ns () - t0) / n_packets;
    if (t < *send_ns)
      *send_ns = t;
    mcsec_sam_signer_free (s);

    memset (&d, 0, sizeof (d));
    if (mcsec_sam_verifier_new (on_event, &d, &v) ||
        mcsec_sam_verifier_add_sender (v, 0, 1, k))
      FAIL ("verifier\n");
    rng = 12345;
    t0 = now_ns ();
    for (size_t i = 0; i < n; i++) {
      mcsec_sam_result_t res;
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      if ((double)(rng % 1000000) / 1e6 < loss)
        continue;
      d.arrived_seq[w[i].counter] = ++d.seq;
      if (mcsec_sam_verify (v, SPI, 1, w[i].counter, w[i].counter, w[i].bytes,
                            w[i].len, &res))
        FAIL ("verify\n");
      if (res.outcome == MCSEC_SAM_VERIFIED && scheme == MCSEC_SAM_PER_PACKET)
        d.decided++, d.verified++;
    }
    mcsec_sam_verifier_flush (v);
    t = (now_ns () - t0) / n_packets;
    if (t < *recv_ns)
      *recv_ns = t;
    mcsec_sam_verifier_free (v);
  }
  *bytes = (double)extra / n_packets;
  *delay_avg = d.decided ? d.delay_sum / (double)d.decided : 0;
  *delay_max = d.delay_max;
  *verified = d.decided ? (double)d.verified / (double)d.decided : 0;
}

/* Time-closed blocks (the elements' default, sam-block-time 250 ms) at a
 * steady rate, on simulated time: CPU per datagram, SAM bytes per datagram
 * (carrier packets included), and the longest wait for a verdict. */
typedef struct {
  uint64_t sent_at[70000]; /* by counter */
  uint64_t now, delay_max;
  uint64_t decided, verified;
} timed_t;

static void
on_timed_event (const mcsec_sam_event_t *ev, void *data)
{
  timed_t *d = data;
  uint64_t lag = d->now - d->sent_at[ev->counter];
  if (lag > d->delay_max)
    d->delay_max = lag;
  d->decided++;
  d->verified += ev->outcome == MCSEC_SAM_VERIFIED;
}

static void
bench_timed (EVP_PKEY *k, double rate, double *send_ns, double *recv_ns,
             double *bytes, unsigned *carriers, uint64_t *delay_max,
             double *verified)
{
  static wire_t w[70000];
  static uint64_t at[70000];
  static timed_t d;
  static uint8_t pool[70000 * (SIZE + 160)];
  const uint64_t budget = 250000000ull;
  size_t n = 0, extra = 0;

  *send_ns = *recv_ns = 1e18;
  for (int r = 0; r < reps; r++) {
    mcsec_sam_signer_t *s;
    mcsec_sam_verifier_t *v;
    uint64_t counter = 1;
    double t0, t;

    if (mcsec_sam_signer_new (MCSEC_SAM_BLOCK, k, 0, 0, &s) ||
        mcsec_sam_signer_set_time_budget (s, budget))
      FAIL ("signer\n");
    n = extra = 0;
    *carriers = 0;
    t0 = now_ns ();
    for (unsigned i = 0; i < n_packets; i++) {
      uint64_t now = (uint64_t)((double)i * 1e9 / rate);
      w[n].bytes = pool + n * (SIZE + 160);
      w[n].counter = counter;
      at[n] = now;
      if (mcsec_sam_sign_at (s, now, SPI, 1, counter++, datagram, SIZE,
                             w[n].bytes, SIZE + 160, &w[n].len))
        FAIL ("sign\n");
      extra += w[n].len - SIZE;
      n++;
      while (mcsec_sam_carriers_due (s)) {
        w[n].bytes = pool + n * (SIZE + 160);
        w[n].counter = counter++;
        at[n] = now;
        if (mcsec_sam_carrier (s, w[n].bytes, SIZE + 160, &w[n].len))
          FAIL ("carrier\n");
        extra += w[n].len;
        n++;
        (*carriers)++;
      }
    }
    t = (now_ns () - t0) / n_packets;
    if (t < *send_ns)
      *send_ns = t;
    mcsec_sam_signer_free (s);

    memset (&d, 0, sizeof (d));
    if (mcsec_sam_verifier_new (on_timed_event, &d, &v) ||
        mcsec_sam_verifier_add_sender (v, 0, 1, k))
      FAIL ("verifier\n");
    t0 = now_ns ();
    for (size_t i = 0; i < n; i++) {
      mcsec_sam_result_t res;
      d.now = at[i];
      d.sent_at[w[i].counter] = at[i];
      if (mcsec_sam_verify (v, SPI, 1, w[i].counter, w[i].counter, w[i].bytes,
                            w[i].len, &res))
        FAIL ("verify\n");
    }
    t = (now_ns () - t0) / n_packets;
    if (t < *recv_ns)
      *recv_ns = t;
    mcsec_sam_verifier_free (v);
  }
  *bytes = (double)extra / n_packets;
  *delay_max = d.delay_max;
  *verified = (double)d.verified / (double)n_packets;
}

int
main (int argc, char **argv)
{
  static const char *algs[] = {"ed25519", "ecdsa-p256"};
  static const unsigned blocks[] = {16, 32, 64, 128, 256};
  double sha, esp;

  if (argc > 1 && strcmp (argv[1], "--quick") == 0) {
    reps = 2;
    n_packets = 1024;
  }
  memset (datagram, 0x5a, sizeof (datagram));
  sha = bench_sha ();
  esp = bench_esp ();
  printf ("bench-sam: %d-byte datagrams, %u packets, best of %d runs\n", SIZE,
          n_packets, reps);
  printf ("  references: ESP protect aes-128-gcm %.0f ns, SHA-256 of the "
          "datagram %.0f ns\n",
          esp, sha);
  for (size_t a = 0; a < 2; a++) {
    EVP_PKEY *k = new_key (algs[a]);
    double sig, ver, sp, rp, bytes, davg, vf, rp20, b20, d20, vf20;
    uint64_t dmax, dmax20;

    bench_sig (k, a == 0, &sig, &ver);
    printf ("\n== %s: one signature %.0f ns, one verification %.0f ns ==\n",
            algs[a], sig, ver);
    bench_scheme (k, MCSEC_SAM_PER_PACKET, 0, 0, &sp, &rp, &bytes, &davg, &dmax,
                  &vf);
    printf ("  per-packet: sender %.0f ns, receiver %.0f ns, %.1f bytes "
            "added, verified at once\n",
            sp, rp, bytes);
    printf ("  %-6s %9s %9s %9s %9s %8s %10s %10s %9s\n", "block", "sender",
            "floor", "receiver", "floor", "bytes", "delay avg", "delay max",
            "@20% loss");
    for (size_t b = 0; b < sizeof (blocks) / sizeof (blocks[0]); b++) {
      double sfloor = sha + sig / blocks[b], rfloor = sha + ver / blocks[b];
      bench_scheme (k, MCSEC_SAM_BLOCK, blocks[b], 0, &sp, &rp, &bytes, &davg,
                    &dmax, &vf);
      bench_scheme (k, MCSEC_SAM_BLOCK, blocks[b], 0.2, &sp, &rp20, &b20, &d20,
                    &dmax20, &vf20);
      printf ("  %-6u %6.0f ns %6.0f ns %6.0f ns %6.0f ns %8.1f %7.0f pkt "
              "%7llu pkt %8.2f%%\n",
              blocks[b], sp, sfloor, rp, rfloor, bytes, davg,
              (unsigned long long)dmax, 100 * vf20);
      printf ("         sender %.2fx floor, receiver %.2fx floor (20%% loss: "
              "%.0f ns, %.2fx)\n",
              sp / sfloor, rp / rfloor, rp20, rp20 / rfloor);
    }
    {
      static const double rates[] = {30, 1000};
      printf ("  time-closed blocks (sam-block-time 250 ms, block size 64), "
              "steady rate:\n");
      for (size_t i = 0; i < 2; i++) {
        unsigned carriers = 0;
        double verified;
        uint64_t wait_max;
        /* blocks close on time below 256 datagrams/s: n = rate x budget */
        double per_block = rates[i] * 0.25 < 64 ? rates[i] * 0.25 : 64;
        double sfloor = sha + sig / per_block, rfloor = sha + ver / per_block;
        bench_timed (k, rates[i], &sp, &rp, &bytes, &carriers, &wait_max,
                     &verified);
        printf ("  %5.0f/s: sender %.0f ns (%.2fx floor), receiver %.0f ns "
                "(%.2fx floor), %.1f bytes/datagram, %u carriers per %u "
                "datagrams, longest wait %.0f ms, %.2f%% verified\n",
                rates[i], sp, sp / sfloor, rp, rp / rfloor, bytes, carriers,
                n_packets, (double)wait_max / 1e6, 100 * verified);
      }
    }
    EVP_PKEY_free (k);
  }
  printf ("\n(floor: SHA-256 of the datagram + one signature or verification "
          "per block; goal at the default block of 64: within 1.25x, at most "
          "24 bytes per packet)\n");
  return 0;
}
