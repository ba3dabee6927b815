/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-rekey: the rekey channel (mcsec-rekey.h) with a key tree and 200
 * simulated members on a simulated clock.  Every 500 ms a batch of joins
 * and leaves is committed and its datagrams multicast; heartbeats every
 * 250 ms and 50 and 150 ms after each rekey; the channel loses datagrams
 * at the member (socket layer: 30% at random, then bursts with about 29%
 * loss, then 30% at random with every datagram sent twice 20 ms apart,
 * rekey-redundancy = 1); repairs go over a lossless
 * unicast path with 10 ms each way.  Asserted: every member present at a
 * rekey applies it within 2 s, keys agree with the controller, and members
 * too far behind resynchronise.  Also: forged, foreign and damaged
 * datagrams are dropped and counted, never applied.
 */
#include <inttypes.h>

#include <openssl/evp.h>

#include <mcsec/mcsec-rekey.h>

#include "mcsec-test.h"

#define MEMBERS 200
#define SIM_MS 20000
#define UNICAST_MS 10
#define MULTICAST_MS 3

typedef struct {
  int alive;
  uint32_t leaf;
  mcsec_lkh_keyring_t kr;
  mcsec_rekey_rx_t *rx;
  uint64_t join_seq; /* the rekey with which it joined */
} member_t;

typedef struct {
  uint64_t due;
  int member;
  uint64_t seq; /* 0: a heartbeat in hb */
  unsigned part;
  uint8_t hb[256];
  size_t hb_len;
} delivery_t;

static delivery_t *q;
static size_t q_n, q_cap;
static uint64_t rng = 0x72656b6579ull;

static void
schedule (const delivery_t *d)
{
  if (q_n == q_cap) {
    q_cap = q_cap ? q_cap * 2 : 1024;
    q = realloc (q, q_cap * sizeof *q);
    REQUIRE (q);
  }
  q[q_n++] = *d;
}

/* loss at the member's socket: random, or bursts in time: each member's
 * path is bad (everything lost) for 1 to 120 ms (60 on average), then good
 * for 1 to 300 ms (150): about 29% lost, in bursts */
typedef struct {
  int bursty, bad[MEMBERS + 64];
  uint64_t until[MEMBERS + 64];
} loss_t;

static int
lost (loss_t *l, int member, uint64_t now)
{
  if (!l->bursty)
    return test_rand (&rng) % 1000 < 300;
  while (now >= l->until[member]) {
    l->bad[member] = !l->bad[member];
    l->until[member] += 1 + test_rand (&rng) % (l->bad[member] ? 120 : 300);
  }
  return l->bad[member];
}

/* redundancy: copies of each datagram the controller sends besides the
 * first, MCSEC_REKEY_REPEAT_MS apart (rekey-redundancy) */
static void
run (int bursty, unsigned redundancy)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  mcsec_lkh_t *t;
  mcsec_rekey_tx_t *tx;
  member_t m[MEMBERS + 64];
  int n_m = 0;
  loss_t loss = {bursty, {0}, {0}};
  uint64_t published_at[512] = {0}, seq = 0, worst = 0, resyncs = 0;
  static uint8_t group_at[512][MCSEC_LKH_KEY_LEN];
  uint64_t wrong = 0, last_rekey = 0;
  uint64_t repairs = 0, late = 0, checked = 0;
  const mcsec_lkh_entry_t *e;
  size_t n;
  unsigned parts;
  mcsec_rekey_t r;
  uint8_t spki[2][44];
  mcsec_mike_sender_t senders[2] = {{7, spki[0], 44}, {9, spki[1], 44}};

  memset (spki[0], 0xa0, 44);
  memset (spki[1], 0xb0, 44);
  REQUIRE (key && mcsec_lkh_new (4, &t) == MCSEC_OK);
  REQUIRE (mcsec_rekey_tx_new ("video", key, 1, &tx) == MCSEC_OK);
  memset (m, 0, sizeof m);
  q_n = 0;

  for (uint64_t now = 0; now <= SIM_MS + 3000; now++) {
    /* a batch every 500 ms until SIM_MS: 3 joins, 3 leaves (after the
     * first, which brings everyone in) */
    if (now % 500 == 0 && now <= SIM_MS) {
      int joins = n_m == 0 ? MEMBERS : 3, leaves = n_m == 0 ? 0 : 3;
      int joined[MEMBERS];
      int n_joined = 0;
      for (int k = 0; k < leaves; k++) {
        int pick;
        do
          pick = (int)(test_rand (&rng) % (uint64_t)n_m);
        while (!m[pick].alive);
        REQUIRE (mcsec_lkh_leave (t, m[pick].leaf) == MCSEC_OK);
        m[pick].alive = 0;
        mcsec_rekey_rx_free (m[pick].rx);
        m[pick].rx = NULL;
        /* the slot is reused by a joiner below */
      }
      for (int k = 0; k < joins; k++) {
        int slot = -1;
        for (int i = 0; i < n_m; i++)
          if (!m[i].alive && m[i].rx == NULL) {
            slot = i;
            break;
          }
        if (slot < 0)
          slot = n_m++;
        REQUIRE (slot < MEMBERS + 64);
        memset (&m[slot], 0, sizeof m[slot]);
        REQUIRE (mcsec_lkh_join (t, &m[slot].leaf) == MCSEC_OK);
        m[slot].alive = 1;
        joined[n_joined++] = slot;
      }
      REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
      {
        /* what the controller sends with the keys: the SA, two senders */
        mcsec_mike_sa_t sa = {0};
        mcsec_rekey_t c = {e, n, &sa, 2000, senders, 2};
        sa.spi = 0x1000 + (uint32_t)seq + 1; /* the SEQ it gets */
        sa.suite = MCSEC_SUITE_AES_128_GCM;
        sa.activate_in_ms = 500;
        REQUIRE (mcsec_rekey_tx_publish (tx, &c, &seq, &parts) == MCSEC_OK);
      }
      REQUIRE (seq < 512);
      published_at[seq] = now;
      memcpy (group_at[seq], mcsec_lkh_group_key (t), MCSEC_LKH_KEY_LEN);
      /* newcomers: their path over unicast, the channel from the next */
      for (int k = 0; k < n_joined; k++) {
        member_t *x = &m[joined[k]];
        mcsec_lkh_key_t path[32];
        size_t len = mcsec_lkh_path (t, x->leaf, path, 32);
        mcsec_lkh_keyring_set (&x->kr, path, len);
        REQUIRE (mcsec_rekey_rx_new ("video", key, seq + 1, &x->rx) ==
                 MCSEC_OK);
        x->join_seq = seq;
      }
      /* multicast: every datagram to every member present before */
      for (int i = 0; i < n_m; i++) {
        if (!m[i].alive || m[i].join_seq == seq)
          continue;
        for (unsigned c = 0; c <= redundancy; c++)
          for (unsigned p = 0; p < parts; p++)
            if (!lost (&loss, i, now + c * MCSEC_REKEY_REPEAT_MS)) {
              delivery_t d = {now + c * MCSEC_REKEY_REPEAT_MS + MULTICAST_MS,
                              i,
                              seq,
                              p,
                              {0},
                              0};
              schedule (&d);
            }
      }
      last_rekey = now;
    }
    /* heartbeats: every MCSEC_REKEY_HEARTBEAT_MS, and soon after a rekey
     * (as the controller sends them) */
    if (seq > 0 && (now % MCSEC_REKEY_HEARTBEAT_MS == 0 ||
                    now == last_rekey + MCSEC_REKEY_FOLLOWUP1_MS ||
                    now == last_rekey + MCSEC_REKEY_FOLLOWUP2_MS)) {
      delivery_t d = {now + MULTICAST_MS, 0, 0, 0, {0}, 0};
      REQUIRE (mcsec_rekey_tx_heartbeat (tx, d.hb, sizeof d.hb, &d.hb_len) ==
               MCSEC_OK);
      for (int i = 0; i < n_m; i++)
        if (m[i].alive && !lost (&loss, i, now)) {
          d.member = i;
          schedule (&d);
        }
    }
    /* deliveries due now */
    for (size_t k = 0; k < q_n;) {
      delivery_t *d = &q[k];
      member_t *x = &m[d->member];
      if (d->due != now) {
        k++;
        continue;
      }
      if (x->alive && x->rx) {
        const uint8_t *data;
        size_t len;
        if (d->seq == 0) {
          data = d->hb;
          len = d->hb_len;
        } else {
          len = mcsec_rekey_tx_datagram (tx, d->seq, d->part, &data);
        }
        if (len)
          (void)mcsec_rekey_rx_datagram (x->rx, data, len, now);
      }
      *d = q[--q_n];
    }
    /* members: apply what is complete, ask for repairs */
    for (int i = 0; i < n_m; i++) {
      member_t *x = &m[i];
      uint64_t s, from;
      mcsec_status_t st;
      if (!x->alive || x->rx == NULL)
        continue;
      while (mcsec_rekey_rx_next (x->rx, &s, &r)) {
        uint64_t took = now - published_at[s];
        e = r.entries;
        n = r.n;
        if (r.sa == NULL || r.sa->spi != 0x1000 + s || r.n_senders != 2 ||
            r.senders[1].spki_len != senders[1].spki_len ||
            memcmp (r.senders[1].spki, senders[1].spki, senders[1].spki_len) !=
                0 ||
            r.deactivation_ms != 2000)
          wrong++;
        size_t learnt = mcsec_lkh_keyring_apply (&x->kr, e, n, &st);
        CHECK_STATUS (st, MCSEC_OK);
        if (memcmp (mcsec_lkh_keyring_group_key (&x->kr), group_at[s],
                    MCSEC_LKH_KEY_LEN) != 0) {
          if (wrong++ == 0 && getenv ("DEBUG_REKEY"))
            printf ("member %d wrong after rekey %" PRIu64
                    " (applied at %" PRIu64 " ms, %zu entries, learnt %zu)\n",
                    i, s, now, n, learnt);
        }
        checked++;
        if (took > worst)
          worst = took;
        late += took > 2000;
      }
      if (mcsec_rekey_rx_repair (x->rx, now, &from)) {
        uint64_t oldest, newest;
        repairs++;
        mcsec_rekey_tx_range (tx, &oldest, &newest);
        if (from < oldest) {
          /* too far behind: resynchronise (path over unicast) */
          mcsec_lkh_key_t path[32];
          size_t len = mcsec_lkh_path (t, x->leaf, path, 32);
          mcsec_lkh_keyring_set (&x->kr, path, len);
          mcsec_rekey_rx_free (x->rx);
          REQUIRE (mcsec_rekey_rx_new ("video", key, newest + 1, &x->rx) ==
                   MCSEC_OK);
          resyncs++;
          continue;
        }
        /* the controller resends from `from` on, over unicast */
        for (uint64_t rs = from; rs <= newest; rs++)
          for (unsigned p = 0; p < mcsec_rekey_tx_parts (tx, rs); p++) {
            delivery_t d = {now + 2 * UNICAST_MS, i, rs, p, {0}, 0};
            schedule (&d);
          }
      }
    }
  }
  /* after the quiet end: everyone holds the controller's group key */
  {
    int agree = 0, present = 0;
    for (int i = 0; i < n_m; i++) {
      if (!m[i].alive)
        continue;
      present++;
      agree += memcmp (mcsec_lkh_keyring_group_key (&m[i].kr),
                       mcsec_lkh_group_key (t), MCSEC_LKH_KEY_LEN) == 0;
      if (getenv ("DEBUG_REKEY") &&
          memcmp (mcsec_lkh_keyring_group_key (&m[i].kr),
                  mcsec_lkh_group_key (t), MCSEC_LKH_KEY_LEN)) {
        mcsec_rekey_rx_stats_t rs;
        mcsec_rekey_rx_stats (m[i].rx, &rs);
        printf ("member %d joined %" PRIu64 " expects %" PRIu64
                " ring %zu: datagrams %" PRIu64 " heartbeats %" PRIu64
                " repairs %" PRIu64 " stale %" PRIu64 " dup %" PRIu64 "\n",
                i, m[i].join_seq, mcsec_rekey_rx_expected (m[i].rx), m[i].kr.n,
                rs.datagrams, rs.heartbeats, rs.repairs_asked, rs.stale,
                rs.duplicates);
      }
    }
    CHECK (present == MEMBERS && agree == present);
  }
  CHECK (checked > 1000);
  CHECK (late == 0);
  CHECK (wrong == 0);
  printf ("%s, redundancy %u: %" PRIu64
          " rekeys applied by members, slowest %" PRIu64
          " ms after publication (goal <= 2000), %" PRIu64 " repairs, %" PRIu64
          " resynchronisations\n",
          bursty ? "bursts (~29% lost)" : "30% random loss", redundancy,
          checked, worst, repairs, resyncs);

  for (int i = 0; i < n_m; i++)
    mcsec_rekey_rx_free (m[i].rx);
  mcsec_rekey_tx_free (tx);
  mcsec_lkh_free (t);
  EVP_PKEY_free (key);
}

/* Forged, foreign and damaged datagrams never count. */
static void
test_rejects (void)
{
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  EVP_PKEY *other = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  mcsec_rekey_tx_t *tx, *forger, *foreign;
  mcsec_rekey_rx_t *rx;
  mcsec_lkh_entry_t e[100];
  uint64_t seq, s;
  unsigned parts;
  const uint8_t *d;
  size_t len;
  mcsec_rekey_t out;
  uint8_t copy[MCSEC_REKEY_MAX_DATAGRAM];
  mcsec_rekey_rx_stats_t st;
  uint8_t spki[2][44];
  mcsec_mike_sender_t senders[2] = {{7, spki[0], 44}, {9, spki[1], 44}};
  mcsec_mike_sa_t sa = {
      0x12345678, MCSEC_SUITE_CHACHA20_POLY1305, 500, 3600, NULL, 0};
  mcsec_rekey_t r = {e, 100, &sa, 1500, senders, 2},
                one = {e, 1, NULL, 0, NULL, 0};

  memset (spki[0], 0xa0, 44);
  memset (spki[1], 0xb0, 44);
  REQUIRE (key && other);
  for (int i = 0; i < 100; i++) {
    e[i].node = (uint32_t)i;
    e[i].wrapper = (uint32_t)i + 1000;
    memset (e[i].wrapped, i, sizeof e[i].wrapped);
  }
  REQUIRE (mcsec_rekey_tx_new ("video", key, 1, &tx) == MCSEC_OK);
  REQUIRE (mcsec_rekey_tx_new ("video", other, 1, &forger) == MCSEC_OK);
  REQUIRE (mcsec_rekey_tx_new ("audio", key, 1, &foreign) == MCSEC_OK);
  REQUIRE (mcsec_rekey_rx_new ("video", key, 1, &rx) == MCSEC_OK);
  REQUIRE (mcsec_rekey_tx_publish (tx, &r, &seq, &parts) == MCSEC_OK);
  /* 100 entries of 36 bytes and 2 senders of 52: 3 datagrams */
  CHECK (seq == 1 && parts == 3);
  for (unsigned p = 0; p < parts; p++) {
    len = mcsec_rekey_tx_datagram (tx, 1, p, &d);
    CHECK (len > 0 && len <= MCSEC_REKEY_MAX_DATAGRAM);
  }
  REQUIRE (mcsec_rekey_tx_publish (forger, &r, &seq, &parts) == MCSEC_OK);
  REQUIRE (mcsec_rekey_tx_publish (foreign, &r, &seq, &parts) == MCSEC_OK);
  for (unsigned p = 0; p < 3; p++) {
    len = mcsec_rekey_tx_datagram (forger, 1, p, &d);
    CHECK_STATUS (mcsec_rekey_rx_datagram (rx, d, len, 0), MCSEC_ERR_SIGNATURE);
    len = mcsec_rekey_tx_datagram (foreign, 1, p, &d);
    CHECK_STATUS (mcsec_rekey_rx_datagram (rx, d, len, 0), MCSEC_ERR_MALFORMED);
    len = mcsec_rekey_tx_datagram (tx, 1, p, &d);
    memcpy (copy, d, len);
    copy[len / 2] ^= 1;
    CHECK (mcsec_rekey_rx_datagram (rx, copy, len, 0) != MCSEC_OK);
  }
  CHECK (mcsec_rekey_rx_next (rx, &s, &out) == 0);
  /* the real ones, out of order and twice: one rekey, entries in order */
  for (int p = 2; p >= 0; p--) {
    len = mcsec_rekey_tx_datagram (tx, 1, (unsigned)p, &d);
    CHECK_STATUS (mcsec_rekey_rx_datagram (rx, d, len, 0), MCSEC_OK);
    CHECK_STATUS (mcsec_rekey_rx_datagram (rx, d, len, 0), MCSEC_OK);
  }
  CHECK (mcsec_rekey_rx_next (rx, &s, &out) == 1);
  CHECK (s == 1 && out.n == 100 && memcmp (out.entries, e, sizeof e) == 0);
  /* the SA (without a key), the delay and the senders come with them */
  CHECK (out.sa && out.sa->spi == sa.spi && out.sa->suite == sa.suite &&
         out.sa->activate_in_ms == 500 && out.sa->lifetime_s == 3600 &&
         out.sa->key_len == 0 && out.deactivation_ms == 1500);
  CHECK (out.n_senders == 2 && out.senders[0].sender_id == 7 &&
         out.senders[1].sender_id == 9 && out.senders[1].spki_len == 44 &&
         memcmp (out.senders[1].spki, spki[1], 44) == 0);
  CHECK (mcsec_rekey_rx_next (rx, &s, &out) == 0);
  /* an old one again: stale */
  CHECK_STATUS (mcsec_rekey_rx_datagram (rx, d, len, 0),
                MCSEC_ERR_STALE_UPDATE);
  mcsec_rekey_rx_stats (rx, &st);
  CHECK (st.bad_signature >= 3 && st.malformed + st.bad_signature == 9 &&
         st.duplicates == 3 && st.stale == 1);
  /* the controller keeps the last MCSEC_REKEY_KEEP rekeys for repairs */
  for (int i = 0; i < 70; i++)
    REQUIRE (mcsec_rekey_tx_publish (tx, &one, &seq, &parts) == MCSEC_OK);
  {
    uint64_t oldest, newest;
    mcsec_rekey_tx_range (tx, &oldest, &newest);
    CHECK (newest == 71 && oldest == 71 - MCSEC_REKEY_KEEP + 1);
    CHECK (mcsec_rekey_tx_datagram (tx, oldest - 1, 0, &d) == 0);
    CHECK (mcsec_rekey_tx_datagram (tx, oldest, 0, &d) > 0);
  }
  mcsec_rekey_rx_free (rx);
  mcsec_rekey_tx_free (tx);
  mcsec_rekey_tx_free (forger);
  mcsec_rekey_tx_free (foreign);
  EVP_PKEY_free (key);
  EVP_PKEY_free (other);
}

int
main (void)
{
  test_rejects ();
  run (0, 0);
  run (1, 0);
  run (0, 1); /* proactive copies: fewer repairs */
  free (q);
  return test_done ("test-rekey");
}
