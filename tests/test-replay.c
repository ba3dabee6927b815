/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The anti-replay window: a numbered table of edge cases (window edge, ring
 * wrap, far jumps, counter 0, the largest counter) run for several window
 * sizes, a random comparison against a naive model, and the SA-level rule
 * that only authentic packets move the window.
 */
#include <stdlib.h>

#include "mcsec-private.h"
#include "mcsec-test.h"

typedef struct {
  int line;
  uint64_t counter;
  mcsec_status_t want;
} step_t;

/* every table made is freed at the end of main */
static mcsec_sender_table_t tables[64];
static int n_tables;

static mcsec_replay_t *
new_window (uint32_t window)
{
  mcsec_sender_table_t *t;
  mcsec_replay_t *w = NULL;
  REQUIRE (n_tables < 64);
  t = &tables[n_tables++];
  REQUIRE (mcsec_sender_table_init (t, window, 1) == MCSEC_OK);
  REQUIRE (mcsec_sender_table_add (t, 1, &w) == MCSEC_OK);
  return w;
}

/* check then, if acceptable, update: what unprotect does for an authentic
 * packet */
static mcsec_status_t
feed (mcsec_replay_t *w, uint32_t window, uint64_t c)
{
  mcsec_status_t st = mcsec_replay_check (w, window, c);
  if (st == MCSEC_OK)
    mcsec_replay_update (w, window, c);
  return st;
}

static void
run_table (uint32_t W)
{
  const uint64_t MAXC = (UINT64_C (1) << 48) - 2;
  const step_t steps[] = {
      {__LINE__, 0, MCSEC_ERR_MALFORMED},        /*  1 counter 0 */
      {__LINE__, 1, MCSEC_OK},                   /*  2 first packet */
      {__LINE__, 1, MCSEC_ERR_REPLAY},           /*  3 duplicate */
      {__LINE__, 3, MCSEC_OK},                   /*  4 gap */
      {__LINE__, 2, MCSEC_OK},                   /*  5 reordered, fills gap */
      {__LINE__, 2, MCSEC_ERR_REPLAY},           /*  6 */
      {__LINE__, W + 2, MCSEC_OK},               /*  7 top = W+2 */
      {__LINE__, 2, MCSEC_ERR_TOO_OLD},          /*  8 top - c = W: out */
      {__LINE__, 3, MCSEC_ERR_REPLAY},           /*  9 top - c = W-1: edge */
      {__LINE__, 4, MCSEC_OK},                   /* 10 edge+1, never seen */
      {__LINE__, W + 1, MCSEC_OK},               /* 11 just below top */
      {__LINE__, W + 1, MCSEC_ERR_REPLAY},       /* 12 */
      {__LINE__, W + 2, MCSEC_ERR_REPLAY},       /* 13 top itself */
      {__LINE__, W + 3, MCSEC_OK},               /* 14 slide by one */
      {__LINE__, 3, MCSEC_ERR_TOO_OLD},          /* 15 fell out */
      {__LINE__, 4, MCSEC_ERR_REPLAY},           /* 16 still inside */
      {__LINE__, 5, MCSEC_OK},                   /* 17 ring slot reused */
      {__LINE__, 3 * W + 10, MCSEC_OK},          /* 18 jump > W: all clear */
      {__LINE__, W + 3, MCSEC_ERR_TOO_OLD},      /* 19 */
      {__LINE__, 2 * W + 10, MCSEC_ERR_TOO_OLD}, /* 20 top - c = W */
      {__LINE__, 2 * W + 11, MCSEC_OK},          /* 21 top - c = W-1 */
      {__LINE__, 2 * W + 11, MCSEC_ERR_REPLAY},  /* 22 */
      {__LINE__, 3 * W + 9, MCSEC_OK},           /* 23 */
      {__LINE__, 3 * W + 10, MCSEC_ERR_REPLAY},  /* 24 */
      {__LINE__, 3 * W + 10 + W / 2, MCSEC_OK},  /* 25 jump < W */
      {__LINE__, 3 * W + 11, MCSEC_OK},          /* 26 inside, cleared */
      {__LINE__, 3 * W + 9, MCSEC_ERR_REPLAY},   /* 27 kept by the jump */
      {__LINE__, 3 * W + 10 + W / 2 - W, MCSEC_ERR_TOO_OLD}, /* 28 */
      {__LINE__, MAXC, MCSEC_OK},              /* 29 largest counter */
      {__LINE__, MAXC, MCSEC_ERR_REPLAY},      /* 30 */
      {__LINE__, MAXC - W, MCSEC_ERR_TOO_OLD}, /* 31 */
      {__LINE__, MAXC - W + 1, MCSEC_OK},      /* 32 window edge */
      {__LINE__, MAXC - 1, MCSEC_OK},          /* 33 */
      {__LINE__, 1, MCSEC_ERR_TOO_OLD},        /* 34 far below */
  };
  mcsec_replay_t *w = new_window (W);

  for (size_t i = 0; i < sizeof (steps) / sizeof (steps[0]); i++) {
    mcsec_status_t st = feed (w, W, steps[i].counter);
    if (st != steps[i].want)
      fprintf (stderr, "window %u, step %zu (line %d): counter %llu gave %s\n",
               W, i + 1, steps[i].line, (unsigned long long)steps[i].counter,
               mcsec_status_name (st));
    CHECK (st == steps[i].want);
  }

  /* a fresh window accepts any first counter: a late joiner */
  w = new_window (W);
  CHECK_STATUS (mcsec_replay_check (NULL, W, 123456789), MCSEC_OK);
  CHECK_STATUS (feed (w, W, 123456789), MCSEC_OK);
  CHECK_STATUS (feed (w, W, 123456789 - W + 1), MCSEC_OK);

  /* a long in-order run wraps the ring many times */
  w = new_window (W);
  for (uint64_t c = 1; c <= 5 * (uint64_t)W; c++)
    CHECK (feed (w, W, c) == MCSEC_OK);
  for (uint64_t c = 1; c <= 5 * (uint64_t)W; c++)
    CHECK (feed (w, W, c) ==
           (c > 4 * (uint64_t)W ? MCSEC_ERR_REPLAY : MCSEC_ERR_TOO_OLD));
}

/* Random walks near the top against a model that remembers everything. */
static void
run_model (uint32_t W)
{
  enum { SPAN = 1 << 16 };
  static uint8_t seen[SPAN];
  mcsec_replay_t *w = new_window (W);
  uint64_t top = 0, seed = 0x9e3779b9u ^ W;
  int mismatches = 0;

  memset (seen, 0, sizeof (seen));
  while (top < SPAN - 3 * (uint64_t)W) {
    uint64_t r = test_rand (&seed);
    int64_t delta = (int64_t)(r % (3 * W)) - (int64_t)(2 * W);
    int64_t c = (int64_t)top + delta;
    mcsec_status_t want, got;
    if (c <= 0)
      c = 1;
    if ((uint64_t)c > top)
      want = MCSEC_OK;
    else if (top - (uint64_t)c >= W)
      want = MCSEC_ERR_TOO_OLD;
    else
      want = seen[c] ? MCSEC_ERR_REPLAY : MCSEC_OK;
    got = feed (w, W, (uint64_t)c);
    if (got != want)
      mismatches++;
    if (want == MCSEC_OK) {
      seen[c] = 1;
      if ((uint64_t)c > top)
        top = (uint64_t)c;
    }
  }
  CHECK (mismatches == 0);
}

/* Forged or corrupt packets far ahead must not slide the window. */
static void
test_only_authentic_packets_move_window (void)
{
  uint8_t key[20], pkt[128], out[128], payload[32] = {0};
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *tx, *rx;
  size_t len;
  uint8_t early[128];
  size_t early_len;

  REQUIRE (mcsec_generate_key_material (MCSEC_SUITE_AES_128_GCM, key,
                                        sizeof (key)) == MCSEC_OK);
  cfg.spi = 0x4242;
  cfg.suite = MCSEC_SUITE_AES_128_GCM;
  cfg.key = key;
  cfg.key_len = sizeof (key);
  cfg.replay_window = 64;
  REQUIRE (mcsec_sa_new (&cfg, &tx) == MCSEC_OK);
  REQUIRE (mcsec_sa_new (&cfg, &rx) == MCSEC_OK);
  REQUIRE (mcsec_sa_set_sender (tx, 5, 1, 0) == MCSEC_OK);

  REQUIRE (mcsec_sa_protect (tx, 253, payload, sizeof (payload), early,
                             sizeof (early), &early_len,
                             NULL) == MCSEC_OK); /* counter 1 */
  /* a packet from far ahead, corrupted in its ICV */
  for (int i = 0; i < 1000; i++)
    REQUIRE (mcsec_sa_protect (tx, 253, payload, sizeof (payload), pkt,
                               sizeof (pkt), &len, NULL) == MCSEC_OK);
  pkt[len - 1] ^= 1;
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), NULL),
                MCSEC_ERR_AUTH);
  /* counter 1 is still inside the untouched window */
  CHECK_STATUS (
      mcsec_sa_unprotect (rx, early, early_len, out, sizeof (out), NULL),
      MCSEC_OK);
  /* and replaying it is caught */
  CHECK_STATUS (
      mcsec_sa_unprotect (rx, early, early_len, out, sizeof (out), NULL),
      MCSEC_ERR_REPLAY);
  /* the genuine far packet slides the window; counter 1 is now too old */
  pkt[len - 1] ^= 1;
  CHECK_STATUS (mcsec_sa_unprotect (rx, pkt, len, out, sizeof (out), NULL),
                MCSEC_OK);
  CHECK_STATUS (
      mcsec_sa_unprotect (rx, early, early_len, out, sizeof (out), NULL),
      MCSEC_ERR_TOO_OLD);
  mcsec_sa_free (tx);
  mcsec_sa_free (rx);
}

int
main (void)
{
  static const uint32_t windows[] = {64, 128, 1024, 4096, 65536};

  for (size_t i = 0; i < sizeof (windows) / sizeof (windows[0]); i++) {
    run_table (windows[i]);
    if (windows[i] <= 4096)
      run_model (windows[i]);
  }
  test_only_authentic_packets_move_window ();
  for (int i = 0; i < n_tables; i++)
    mcsec_sender_table_clear (&tables[i]);
  return test_done ("test-replay");
}
