/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-lkh: the key tree against simulated members and attackers.
 *  - RFC 3394 section 4.1 known answer for the key wrap;
 *  - thousands of random joins and leaves in batches, for degrees 2, 4 and
 *    16: after every commit every member's keyring holds the group key;
 *  - forward secrecy: every departed member's keys (as it held them when it
 *    left) pooled, and every rekey entry ever sent tried with every key
 *    version the coalition knows (a real unwrap, not bookkeeping): the
 *    group key after each commit is never among what they learn;
 *  - backward secrecy: a newcomer with its path and every entry sent before
 *    and after its join learns no group key older than its join;
 *  - a damaged entry is refused by the member's unwrap;
 *  - a controller taking the tree over (export, import) every few commits
 *    of those runs: the same paths, the same export, and the members and
 *    attackers above go on with it as they were;
 *  - import refuses whatever a tree cannot be (cut short, a cycle, a node
 *    under a leaf, too many children, ...), and export a tree with
 *    changes queued.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <mcsec/mcsec-lkh.h>
#include <mcsec/mcsec-mike.h>

#include "mcsec-test.h"

typedef struct {
  uint32_t leaf;
  int alive;
  size_t joined_at; /* commit number */
  mcsec_lkh_keyring_t kr;
} member_t;

/* What an attacker knows: every key version per node. */
typedef struct {
  size_t n, cap;
  uint8_t (*keys)[MCSEC_LKH_KEY_LEN];
} versions_t;

typedef struct {
  versions_t *by_node;
  size_t n_nodes;
} knowledge_t;

static void
know (knowledge_t *k, uint32_t node, const uint8_t *key)
{
  versions_t *v;
  if (node >= k->n_nodes) {
    size_t n = node + 1024;
    k->by_node = realloc (k->by_node, n * sizeof *k->by_node);
    REQUIRE (k->by_node);
    memset (k->by_node + k->n_nodes, 0, (n - k->n_nodes) * sizeof *k->by_node);
    k->n_nodes = n;
  }
  v = &k->by_node[node];
  for (size_t i = 0; i < v->n; i++)
    if (!memcmp (v->keys[i], key, MCSEC_LKH_KEY_LEN))
      return;
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 4;
    v->keys = realloc (v->keys, v->cap * sizeof *v->keys);
    REQUIRE (v->keys);
  }
  memcpy (v->keys[v->n++], key, MCSEC_LKH_KEY_LEN);
}

static int
knows (const knowledge_t *k, uint32_t node, const uint8_t *key)
{
  if (node >= k->n_nodes)
    return 0;
  for (size_t i = 0; i < k->by_node[node].n; i++)
    if (!memcmp (k->by_node[node].keys[i], key, MCSEC_LKH_KEY_LEN))
      return 1;
  return 0;
}

/* Try every known version of the wrapper on each entry, in order (entries
 * of one commit come children first, so one pass finds everything). */
static void
attack (knowledge_t *k, const mcsec_lkh_entry_t *e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    versions_t *v;
    if (e[i].wrapper >= k->n_nodes)
      continue;
    v = &k->by_node[e[i].wrapper];
    for (size_t j = 0; j < v->n; j++) {
      uint8_t key[MCSEC_LKH_KEY_LEN];
      if (mcsec_lkh_unwrap (v->keys[j], e[i].wrapped, key) == MCSEC_OK) {
        know (k, e[i].node, key);
        break;
      }
    }
  }
}

static void
knowledge_free (knowledge_t *k)
{
  for (size_t i = 0; i < k->n_nodes; i++)
    free (k->by_node[i].keys);
  free (k->by_node);
  memset (k, 0, sizeof *k);
}

static void
test_wrap_kat (void)
{
  uint8_t kek[16], key[16], want[24], got[24], back[16];
  test_unhex ("000102030405060708090A0B0C0D0E0F", kek, sizeof kek);
  test_unhex ("00112233445566778899AABBCCDDEEFF", key, sizeof key);
  test_unhex ("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5", want,
              sizeof want);
  CHECK_STATUS (mcsec_lkh_wrap (kek, key, got), MCSEC_OK);
  CHECK (memcmp (got, want, 24) == 0);
  CHECK_STATUS (mcsec_lkh_unwrap (kek, want, back), MCSEC_OK);
  CHECK (memcmp (back, key, 16) == 0);
  want[5] ^= 1;
  CHECK_STATUS (mcsec_lkh_unwrap (kek, want, back), MCSEC_ERR_AUTH);
}

typedef struct {
  mcsec_lkh_entry_t *e;
  size_t n;
} commit_log_t;

static void
put32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* What a controller writes to etcd: a snapshot, then the changes of each
 * commit. */
typedef struct {
  uint8_t *snapshot;
  size_t len, n;
  uint8_t **changes;
  size_t *lens;
  size_t logs_checked; /* kept across log_clear */
} tree_log_t;

static void
log_clear (tree_log_t *l)
{
  size_t checked = l->logs_checked;
  for (size_t i = 0; i < l->n; i++)
    free (l->changes[i]);
  free (l->changes);
  free (l->lens);
  free (l->snapshot);
  memset (l, 0, sizeof *l);
  l->logs_checked = checked;
}

static void
log_changes (tree_log_t *l, mcsec_lkh_t *t)
{
  size_t len = mcsec_lkh_changes_len (t);
  REQUIRE (len >= 6);
  l->changes = realloc (l->changes, (l->n + 1) * sizeof *l->changes);
  l->lens = realloc (l->lens, (l->n + 1) * sizeof *l->lens);
  REQUIRE (l->changes && l->lens);
  l->changes[l->n] = malloc (len);
  REQUIRE (l->changes[l->n]);
  REQUIRE (mcsec_lkh_export_changes (t, l->changes[l->n], len) == MCSEC_OK);
  CHECK (mcsec_lkh_changes_len (t) == 6); /* taken: none left */
  l->lens[l->n++] = len;
}

/* Another controller takes the tree over: export, import, compared; and
 * from the log (snapshot and changes): the same tree again, which goes
 * on.  The log starts again from a snapshot. */
static void
handoff (mcsec_lkh_t **t, const member_t *m, size_t n_m, tree_log_t *log)
{
  mcsec_lkh_t *t2 = NULL;
  size_t len = mcsec_lkh_export_len (*t), len2;
  uint8_t *a = malloc (len ? len : 1), *b;
  size_t differ = 0;

  REQUIRE (len > 0 && a);
  REQUIRE (mcsec_lkh_export (*t, a, len) == MCSEC_OK);
  CHECK_STATUS (mcsec_lkh_export (*t, a, len - 1), MCSEC_ERR_BUFFER_TOO_SMALL);
  REQUIRE (mcsec_lkh_import (a, len, &t2) == MCSEC_OK);
  len2 = mcsec_lkh_export_len (t2);
  CHECK (len2 == len);
  b = malloc (len2 ? len2 : 1);
  REQUIRE (b && mcsec_lkh_export (t2, b, len2) == MCSEC_OK);
  CHECK (len2 == len && memcmp (a, b, len) == 0);
  CHECK (mcsec_lkh_members (t2) == mcsec_lkh_members (*t));
  CHECK (mcsec_lkh_depth (t2) == mcsec_lkh_depth (*t));
  CHECK (!memcmp (mcsec_lkh_group_key (t2), mcsec_lkh_group_key (*t),
                  MCSEC_LKH_KEY_LEN));
  for (size_t i = 0; i < n_m; i++) {
    mcsec_lkh_key_t p1[64], p2[64];
    size_t l1, l2;
    if (!m[i].alive)
      continue;
    CHECK (mcsec_lkh_is_member (t2, m[i].leaf));
    l1 = mcsec_lkh_path (*t, m[i].leaf, p1, 64);
    l2 = mcsec_lkh_path (t2, m[i].leaf, p2, 64);
    differ += l1 == 0 || l1 != l2 || memcmp (p1, p2, l1 * sizeof *p1) != 0;
  }
  CHECK (differ == 0);
  /* the log gives the same tree */
  if (log->snapshot) {
    mcsec_lkh_t *t3 = NULL;
    size_t len3;
    REQUIRE (mcsec_lkh_import_log (log->snapshot, log->len,
                                   (const uint8_t *const *)log->changes,
                                   log->lens, log->n, &t3) == MCSEC_OK);
    len3 = mcsec_lkh_export_len (t3);
    CHECK (len3 == len);
    REQUIRE (mcsec_lkh_export (t3, b, len2) == MCSEC_OK);
    CHECK (len3 == len && memcmp (a, b, len) == 0);
    mcsec_lkh_free (t2);
    t2 = t3;
    log->logs_checked++;
  }
  log_clear (log);
  log->snapshot = a;
  log->len = len;
  OPENSSL_cleanse (b, len2);
  free (b);
  mcsec_lkh_free (*t);
  *t = t2;
}

static void
simulate (unsigned degree, size_t initial, size_t operations, uint64_t seed)
{
  mcsec_lkh_t *t = NULL;
  member_t *m = NULL;
  size_t n_m = 0, cap_m = 0, commits = 0, alive = 0;
  commit_log_t *log = NULL;
  uint8_t (*group)[MCSEC_LKH_KEY_LEN] = NULL;
  knowledge_t departed = {0};
  size_t done = 0, max_depth = 0, leaked = 0, diverged = 0, refused = 0;
  size_t *departing = NULL, n_departing;
  tree_log_t tlog = {0};

  REQUIRE (mcsec_lkh_new (degree, &t) == MCSEC_OK);
  while (done < operations + initial) {
    size_t batch = done < initial ? 50 : 1 + test_rand (&seed) % 20;
    const mcsec_lkh_entry_t *e;
    size_t n;
    departing = realloc (departing, batch * sizeof *departing);
    n_departing = 0;
    for (size_t b = 0; b < batch; b++, done++) {
      int join = done < initial || alive < 2 || test_rand (&seed) % 100 < 50;
      if (join) {
        if (n_m == cap_m) {
          cap_m = cap_m ? cap_m * 2 : 256;
          m = realloc (m, cap_m * sizeof *m);
          REQUIRE (m);
        }
        memset (&m[n_m], 0, sizeof m[n_m]);
        REQUIRE (mcsec_lkh_join (t, &m[n_m].leaf) == MCSEC_OK);
        m[n_m].alive = 1;
        m[n_m].joined_at = commits;
        n_m++;
        alive++;
      } else {
        size_t pick;
        do
          pick = test_rand (&seed) % n_m;
        while (!m[pick].alive);
        CHECK_STATUS (mcsec_lkh_leave (t, m[pick].leaf), MCSEC_OK);
        m[pick].alive = 0;
        alive--;
        departing[n_departing++] = pick;
      }
    }
    /* leavers pool what they held; then the rekey goes out */
    for (size_t i = 0; i < n_departing; i++) {
      mcsec_lkh_keyring_t *kr = &m[departing[i]].kr;
      for (size_t j = 0; j < kr->n; j++)
        know (&departed, kr->keys[j].node, kr->keys[j].key);
    }
    CHECK (mcsec_lkh_pending (t) == batch);
    REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
    CHECK (mcsec_lkh_pending (t) == 0);
    log = realloc (log, (commits + 1) * sizeof *log);
    group = realloc (group, (commits + 1) * sizeof *group);
    REQUIRE (log && group);
    log[commits].e = malloc ((n ? n : 1) * sizeof *e);
    memcpy (log[commits].e, e, n * sizeof *e);
    log[commits].n = n;
    memcpy (group[commits], mcsec_lkh_group_key (t), MCSEC_LKH_KEY_LEN);
    /* every member: newcomers take their path, the others the entries */
    for (size_t i = 0; i < n_m; i++) {
      mcsec_status_t st;
      if (!m[i].alive)
        continue;
      if (m[i].joined_at == commits) {
        mcsec_lkh_key_t path[64];
        size_t len = mcsec_lkh_path (t, m[i].leaf, path, 64);
        REQUIRE (len > 0);
        mcsec_lkh_keyring_set (&m[i].kr, path, len);
        if (len - 1 > max_depth)
          max_depth = len - 1;
      } else {
        mcsec_lkh_keyring_apply (&m[i].kr, e, n, &st);
        refused += st != MCSEC_OK;
      }
      diverged += memcmp (mcsec_lkh_keyring_group_key (&m[i].kr),
                          group[commits], MCSEC_LKH_KEY_LEN) != 0;
    }
    /* forward secrecy: the pooled keys of everyone who left, against
     * every entry from here on */
    attack (&departed, e, n);
    leaked += knows (&departed, MCSEC_LKH_ROOT, group[commits]);
    commits++;
    log_changes (&tlog, t);
    if (commits % 7 == 3)
      handoff (&t, m, n_m, &tlog);
  }
  CHECK (diverged == 0);
  CHECK (refused == 0);
  CHECK (leaked == 0);
  CHECK (mcsec_lkh_members (t) == alive);
  CHECK (mcsec_lkh_depth (t) <= max_depth);
  CHECK (tlog.logs_checked + 1 >= commits / 7);
  log_clear (&tlog);

  /* backward secrecy: newcomers (some) with every entry ever sent */
  size_t checked = 0, older_learnt = 0;
  {
    size_t n_cand = 0, *cand = malloc (n_m * sizeof *cand);
    for (size_t i = 0; i < n_m; i++)
      if (m[i].alive && m[i].joined_at > 0)
        cand[n_cand++] = i;
    for (size_t ci = 0; ci < n_cand && checked < 40; ci += 1 + n_cand / 40) {
      size_t i = cand[ci];
      knowledge_t k = {0};
      mcsec_lkh_key_t path[64];
      size_t len, j0 = m[i].joined_at;
      /* the path it got at its join: replay history to that point */
      len = m[i].kr.n; /* its current ring: at least as much as at join */
      for (size_t j = 0; j < len; j++) {
        path[j].node = m[i].kr.keys[j].node;
        memcpy (path[j].key, m[i].kr.keys[j].key, MCSEC_LKH_KEY_LEN);
        know (&k, path[j].node, path[j].key);
      }
      for (size_t c = 0; c < commits; c++)
        attack (&k, log[c].e, log[c].n);
      for (size_t c = 0; c < j0; c++)
        older_learnt += knows (&k, MCSEC_LKH_ROOT, group[c]);
      knowledge_free (&k);
      checked++;
    }
    free (cand);
    CHECK (checked > 0);
    CHECK (older_learnt == 0);
  }
  printf ("degree %u: %zu operations in %zu commits, %zu members at the end, "
          "depth %u; group keys learnt by departed coalitions: %zu, by %zu "
          "newcomers from before their join: %zu\n",
          degree, done, commits, alive, mcsec_lkh_depth (t), leaked, checked,
          older_learnt);

  for (size_t c = 0; c < commits; c++)
    free (log[c].e);
  free (log);
  free (group);
  free (m);
  free (departing);
  knowledge_free (&departed);
  mcsec_lkh_free (t);
}

static void
test_damaged (void)
{
  mcsec_lkh_t *t;
  uint32_t a, b, c;
  const mcsec_lkh_entry_t *e;
  mcsec_lkh_entry_t copy[64];
  size_t n, len;
  mcsec_lkh_key_t path[16];
  mcsec_lkh_keyring_t kr;
  mcsec_status_t st;

  REQUIRE (mcsec_lkh_new (4, &t) == MCSEC_OK);
  REQUIRE (mcsec_lkh_join (t, &a) == MCSEC_OK);
  REQUIRE (mcsec_lkh_join (t, &b) == MCSEC_OK);
  REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
  len = mcsec_lkh_path (t, a, path, 16);
  CHECK (len == 2 && path[1].node == MCSEC_LKH_ROOT);
  mcsec_lkh_keyring_set (&kr, path, len);
  REQUIRE (mcsec_lkh_join (t, &c) == MCSEC_OK);
  REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
  REQUIRE (n > 0 && n <= 64);
  memcpy (copy, e, n * sizeof *e);
  for (size_t i = 0; i < n; i++)
    copy[i].wrapped[3] ^= 0x40;
  CHECK (mcsec_lkh_keyring_apply (&kr, copy, n, &st) == 0);
  CHECK_STATUS (st, MCSEC_ERR_AUTH);
  CHECK (memcmp (mcsec_lkh_keyring_group_key (&kr), mcsec_lkh_group_key (t),
                 MCSEC_LKH_KEY_LEN) != 0);
  CHECK (mcsec_lkh_keyring_apply (&kr, e, n, &st) > 0);
  CHECK_STATUS (st, MCSEC_OK);
  CHECK (memcmp (mcsec_lkh_keyring_group_key (&kr), mcsec_lkh_group_key (t),
                 MCSEC_LKH_KEY_LEN) == 0);
  /* not a member: no path; twice the same leave refused */
  CHECK (mcsec_lkh_path (t, 9999, path, 16) == 0);
  CHECK_STATUS (mcsec_lkh_leave (t, b), MCSEC_OK);
  CHECK_STATUS (mcsec_lkh_leave (t, b), MCSEC_ERR_INVALID_ARG);
  CHECK_STATUS (mcsec_lkh_leave (t, MCSEC_LKH_ROOT), MCSEC_ERR_INVALID_ARG);
  mcsec_lkh_keyring_clear (&kr);
  mcsec_lkh_free (t);
  {
    mcsec_lkh_t *x = NULL;
    CHECK_STATUS (mcsec_lkh_new (1, &x), MCSEC_ERR_INVALID_ARG);
    CHECK_STATUS (mcsec_lkh_new (17, &x), MCSEC_ERR_INVALID_ARG);
  }
}

/* A commit carried in a signed REKEY frame (docs/mike-protocol.md), parsed
 * again and applied by a member: the same group key. */
static void
test_rekey_frame (void)
{
  mcsec_lkh_t *t;
  uint32_t ids[40];
  const mcsec_lkh_entry_t *e;
  size_t n, len, flen;
  mcsec_lkh_key_t path[16];
  mcsec_lkh_keyring_t kr;
  mcsec_mike_builder_t b;
  static uint8_t buf[8192];
  static mcsec_mike_msg_t msg;
  static mcsec_lkh_entry_t back[64];
  EVP_PKEY *key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  mcsec_status_t st;

  REQUIRE (key && mcsec_lkh_new (4, &t) == MCSEC_OK);
  for (int i = 0; i < 40; i++)
    REQUIRE (mcsec_lkh_join (t, &ids[i]) == MCSEC_OK);
  REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
  len = mcsec_lkh_path (t, ids[7], path, 16);
  mcsec_lkh_keyring_set (&kr, path, len);
  REQUIRE (mcsec_lkh_leave (t, ids[8]) == MCSEC_OK);
  REQUIRE (mcsec_lkh_leave (t, ids[30]) == MCSEC_OK);
  REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
  REQUIRE (n > 0 && n <= 64);

  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REKEY);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 77);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART, 1); /* part 0 of 1 */
  for (size_t i = 0; i < n; i++) {
    uint8_t v[MCSEC_MIKE_WRAPPED_KEY_LEN];
    v[0] = (uint8_t)(e[i].node >> 24);
    v[1] = (uint8_t)(e[i].node >> 16);
    v[2] = (uint8_t)(e[i].node >> 8);
    v[3] = (uint8_t)e[i].node;
    v[4] = (uint8_t)(e[i].wrapper >> 24);
    v[5] = (uint8_t)(e[i].wrapper >> 16);
    v[6] = (uint8_t)(e[i].wrapper >> 8);
    v[7] = (uint8_t)e[i].wrapper;
    memcpy (v + 8, e[i].wrapped, MCSEC_LKH_WRAPPED_LEN);
    mcsec_mike_put (&b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v);
  }
  mcsec_mike_sign (&b, key);
  REQUIRE (mcsec_mike_finish (&b, &flen) == MCSEC_OK);
  CHECK_STATUS (mcsec_mike_parse (buf, flen, &msg), MCSEC_OK);
  CHECK_STATUS (mcsec_mike_verify (&msg, key), MCSEC_OK);
  CHECK (msg.type == MCSEC_MIKE_REKEY && msg.seq == 77 && msg.n_wrapped == n);
  for (size_t i = 0; i < msg.n_wrapped; i++) {
    const uint8_t *w;
    mcsec_mike_wrapped_key (&msg, i, &back[i].node, &back[i].wrapper, &w);
    memcpy (back[i].wrapped, w, MCSEC_LKH_WRAPPED_LEN);
  }
  CHECK (memcmp (back, e, n * sizeof *e) == 0);
  CHECK (mcsec_lkh_keyring_apply (&kr, back, n, &st) > 0);
  CHECK_STATUS (st, MCSEC_OK);
  CHECK (memcmp (mcsec_lkh_keyring_group_key (&kr), mcsec_lkh_group_key (t),
                 MCSEC_LKH_KEY_LEN) == 0);
  /* a WRAPPED_KEY run must be one run, of 32-byte values */
  {
    uint8_t v[MCSEC_MIKE_WRAPPED_KEY_LEN] = {0};
    mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REKEY);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
    mcsec_mike_put (&b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 78);
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART, 1);
    mcsec_mike_put (&b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v);
    mcsec_mike_sign (&b, key);
    REQUIRE (mcsec_mike_finish (&b, &flen) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (buf, flen, &msg), MCSEC_ERR_MALFORMED);
    mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REKEY);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, "video");
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 78);
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_PART, 1);
    mcsec_mike_put (&b, MCSEC_MIKE_A_WRAPPED_KEY, v, sizeof v - 1);
    mcsec_mike_sign (&b, key);
    REQUIRE (mcsec_mike_finish (&b, &flen) == MCSEC_OK);
    CHECK_STATUS (mcsec_mike_parse (buf, flen, &msg), MCSEC_ERR_MALFORMED);
  }
  mcsec_lkh_keyring_clear (&kr);
  mcsec_lkh_free (t);
  EVP_PKEY_free (key);
}

/* A tree built by joins and leaves, committed; its export in *out. */
static mcsec_lkh_t *
small_tree (uint8_t **out, size_t *len)
{
  mcsec_lkh_t *t = NULL;
  uint32_t leaf[12];
  const mcsec_lkh_entry_t *e;
  size_t n;
  REQUIRE (mcsec_lkh_new (2, &t) == MCSEC_OK);
  for (int i = 0; i < 12; i++)
    REQUIRE (mcsec_lkh_join (t, &leaf[i]) == MCSEC_OK);
  REQUIRE (mcsec_lkh_leave (t, leaf[3]) == MCSEC_OK);
  /* queued changes: nothing to export */
  CHECK (mcsec_lkh_export_len (t) == 0);
  CHECK_STATUS (mcsec_lkh_export (t, (uint8_t[64]){0}, 64),
                MCSEC_ERR_INVALID_ARG);
  REQUIRE (mcsec_lkh_commit (t, &e, &n) == MCSEC_OK);
  *len = mcsec_lkh_export_len (t);
  *out = malloc (*len);
  REQUIRE (*out && mcsec_lkh_export (t, *out, *len) == MCSEC_OK);
  return t;
}

/* An export of a path: the root, `inner` nodes one under the other, a
 * leaf at the bottom (depth inner + 1). */
static size_t
chain (uint8_t *x, unsigned inner)
{
  x[0] = 1;
  x[1] = 2;
  put32 (x + 2, inner + 2);
  for (unsigned i = 0; i < inner + 2; i++) {
    uint8_t *n = x + 6 + 25 * i;
    put32 (n, i);
    put32 (n + 4, i ? i - 1 : MCSEC_LKH_NO_NODE);
    n[8] = i == inner + 1;
    memset (n + 9, (int)i, MCSEC_LKH_KEY_LEN);
  }
  return 6 + 25 * (size_t)(inner + 2);
}

/* Node i of an export (0 is the root). */
static uint8_t *
node_at (uint8_t *x, size_t i)
{
  return x + 6 + 25 * i;
}

static void
import_refuses (const char *what, const uint8_t *x, size_t len)
{
  mcsec_lkh_t *t = NULL;
  mcsec_status_t st = mcsec_lkh_import (x, len, &t);
  if (st != MCSEC_ERR_MALFORMED)
    printf ("import took %s: %s\n", what, mcsec_status_message (st));
  CHECK (st == MCSEC_ERR_MALFORMED && t == NULL);
  mcsec_lkh_free (t);
}

static void
test_import_malformed (void)
{
  uint8_t *x, *y;
  size_t len, nodes, leaf = 0, inner = 0, n_leaves = 0;
  mcsec_lkh_t *t = small_tree (&x, &len), *t2 = NULL;

  nodes = (len - 6) / 25;
  y = malloc (len + 25);
  REQUIRE (y);
  /* a leaf and a non-root inner node */
  for (size_t i = 1; i < nodes; i++) {
    if (node_at (x, i)[8])
      leaf = leaf ? leaf : i, n_leaves++;
    else if (!inner)
      inner = i;
  }
  REQUIRE (leaf && inner && n_leaves == 11);
  REQUIRE (mcsec_lkh_import (x, len, &t2) == MCSEC_OK);
  CHECK (mcsec_lkh_members (t2) == 11);
  mcsec_lkh_free (t2);

  for (size_t cut = 0; cut < len; cut += 7)
    import_refuses ("a cut", x, cut);
  import_refuses ("a cut by one", x, len - 1);
  memcpy (y, x, len);
  y[0] = 2;
  import_refuses ("version 2", y, len);
  memcpy (y, x, len);
  y[1] = 1;
  import_refuses ("degree 1", y, len);
  memcpy (y, x, len);
  y[1] = MCSEC_LKH_DEGREE_MAX + 1;
  import_refuses ("degree 17", y, len);
  memcpy (y, x, len);
  put32 (y + 2, (uint32_t)nodes + 1);
  import_refuses ("a count too high", y, len);
  memcpy (y, x, len);
  node_at (y, 0)[8] = 1;
  import_refuses ("a leaf root", y, len);
  memcpy (y, x, len);
  put32 (node_at (y, 0), 1);
  import_refuses ("no root first", y, len);
  memcpy (y, x, len);
  memcpy (node_at (y, 2), node_at (x, 1), 4);
  import_refuses ("numbers not increasing", y, len);
  memcpy (y, x, len);
  put32 (node_at (y, leaf) + 4, 0x7fffffff);
  import_refuses ("a parent out of range", y, len);
  memcpy (y, x, len);
  put32 (node_at (y, inner) + 4, get32 (node_at (y, leaf)));
  import_refuses ("a node under a leaf", y, len);
  memcpy (y, x, len);
  put32 (node_at (y, inner) + 4, get32 (node_at (y, inner)));
  import_refuses ("a node its own parent", y, len);
  memcpy (y, x, len);
  node_at (y, leaf)[8] = 2;
  import_refuses ("a leaf flag of 2", y, len);
  memcpy (y, x, len);
  /* every leaf under the root: degree 2 has no room */
  for (size_t i = 1; i < nodes; i++)
    if (node_at (y, i)[8])
      put32 (node_at (y, i) + 4, 0);
  import_refuses ("too many children", y, len);
  /* a childless inner node under the root, appended with the highest
   * number (degree 16: the root has room) */
  memcpy (y, x, len);
  y[1] = 16;
  memcpy (node_at (y, nodes), node_at (x, inner), 25);
  put32 (node_at (y, nodes), 0x0000ff00);
  put32 (node_at (y, nodes) + 4, MCSEC_LKH_ROOT);
  put32 (y + 2, (uint32_t)nodes + 1);
  import_refuses ("an inner node without children", y, len + 25);
  /* the same node as a leaf is a member */
  node_at (y, nodes)[8] = 1;
  {
    REQUIRE (mcsec_lkh_import (y, len + 25, &t2) == MCSEC_OK);
    CHECK (mcsec_lkh_members (t2) == 12);
    CHECK (mcsec_lkh_is_member (t2, 0x0000ff00));
    CHECK (!mcsec_lkh_is_member (t2, 0x0000ff01));
    CHECK (!mcsec_lkh_is_member (t2, MCSEC_LKH_ROOT));
    mcsec_lkh_free (t2);
  }
  put32 (node_at (y, nodes), 0x01000000);
  import_refuses ("a number too high", y, len + 25);
  /* 16 numbers per node and 65,536 more: not a gigabyte for a few bytes */
  put32 (node_at (y, nodes), 65536 + 16 * ((uint32_t)nodes + 1));
  import_refuses ("a number far above the count", y, len + 25);
  put32 (node_at (y, nodes), 65535 + 16 * ((uint32_t)nodes + 1));
  REQUIRE (mcsec_lkh_import (y, len + 25, &t2) == MCSEC_OK);
  mcsec_lkh_free (t2);
  free (x);
  free (y);
  mcsec_lkh_free (t);

  /* changes: of another degree, a record kind 3, a number too high, and a
   * snapshot with a freed node in it */
  {
    uint8_t c[6 + 25 * 70], ch[6 + 25];
    const uint8_t *chp[1] = {ch};
    size_t chl = sizeof ch, cl = chain (c, 3);
    memcpy (ch, c, 6);
    put32 (ch + 2, 1);
    memcpy (ch + 6, c + 6 + 25 * 4, 25); /* the leaf again */
    REQUIRE (mcsec_lkh_import_log (c, cl, chp, &chl, 1, &t2) == MCSEC_OK);
    CHECK (mcsec_lkh_members (t2) == 1);
    mcsec_lkh_free (t2);
    ch[1] = 3;
    CHECK_STATUS (mcsec_lkh_import_log (c, cl, chp, &chl, 1, &t2),
                  MCSEC_ERR_MALFORMED);
    ch[1] = 2;
    ch[6 + 8] = 3;
    CHECK_STATUS (mcsec_lkh_import_log (c, cl, chp, &chl, 1, &t2),
                  MCSEC_ERR_MALFORMED);
    ch[6 + 8] = 2; /* the leaf freed: its parent is left childless */
    CHECK_STATUS (mcsec_lkh_import_log (c, cl, chp, &chl, 1, &t2),
                  MCSEC_ERR_MALFORMED);
    ch[6 + 8] = 1;
    put32 (ch + 6, 0x01000000);
    CHECK_STATUS (mcsec_lkh_import_log (c, cl, chp, &chl, 1, &t2),
                  MCSEC_ERR_MALFORMED);
    c[6 + 25 * 4 + 8] = 2;
    CHECK_STATUS (mcsec_lkh_import_log (c, cl, NULL, NULL, 0, &t2),
                  MCSEC_ERR_MALFORMED);
    CHECK (t2 == NULL);
  }

  /* the deepest path a tree makes (63) is taken, one deeper is not */
  {
    uint8_t c[6 + 25 * 70];
    mcsec_lkh_key_t path[70];
    REQUIRE (mcsec_lkh_import (c, chain (c, 62), &t2) == MCSEC_OK);
    CHECK (mcsec_lkh_depth (t2) == 63);
    CHECK (mcsec_lkh_path (t2, 63, path, 70) == 64);
    mcsec_lkh_free (t2);
    import_refuses ("a path of 64", c, chain (c, 63));
    /* a cycle of two below the root: 1 -> 2 -> 1 */
    chain (c, 3);
    put32 (c + 6 + 25 + 4, 2);
    import_refuses ("a cycle", c, 6 + 25 * 5);
  }
}

int
main (void)
{
  test_import_malformed ();
  test_rekey_frame ();
  test_wrap_kat ();
  test_damaged ();
  simulate (4, 300, 4000, 0x6c6b6831);
  simulate (2, 100, 1500, 0x6c6b6832);
  simulate (16, 200, 1500, 0x6c6b6833);
  return test_done ("test-lkh");
}
