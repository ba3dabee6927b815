/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-ctl-core: the controller's I/O-free core against real member state
 * machines (mcsec_member_t), in one process, with simulated time and a
 * lossy rekey channel: joins, leaves, evictions that survive restarts,
 * repairs and resynchronisation, a store that fails (fail closed), members
 * that flood REPAIR or stop reading, groups with per-sender SPIs.  No
 * socket, no thread, no sleep.  The harness is in ctl-sim.c, the core as
 * one controller of a cluster in test-ctl-cluster.c.
 */
#include <string.h>

#include "ctl-sim.h"
#include "mcsec-test.h"

#include <mcsec/mcsec-rekey.h>

/* ------------------------------------------------------------------------ */

/* Unicast group: joins, a leave rekeys, the departed member gets nothing
 * of the new SA; one connection per identity. */
static void
test_unicast_join_leave (void)
{
  Sim *s = sim_new (0);
  Peer *cam = peer_new (s, "cam1", "video", TRUE);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *rx2 = peer_new (s, "rx2", "video", FALSE);
  guint32 before, after;

  sim_run (s, 500);
  CHECK (mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_JOINED);
  before = newest_spi (rx1);
  CHECK (before != 0 && newest_spi (rx2) == before &&
         newest_spi (cam) == before);
  peer_leave (rx2);
  sim_run (s, 300);
  after = newest_spi (rx1);
  CHECK (after != 0 && after != before);
  CHECK (newest_spi (cam) == after);
  CHECK (!holds_spi (rx2, after)); /* forward secrecy */
  CHECK (logged (s, "rekey group=video reason=leave"));
  /* the same identity again: the newer connection wins */
  {
    Peer *again = peer_new (s, "rx1", "video", FALSE);
    sim_run (s, 300);
    CHECK (mcsec_member_state (again->m) == MCSEC_MEMBER_JOINED);
    CHECK (rx1->closes >= 1);
    CHECK (logged (s, "replaced group=video identity=rx1"));
    rx1->reconnect = FALSE;
  }
  sim_free (s);
}

/* Evictions are durable: refused after restarts until unevict; Sender-IDs,
 * update numbers and SPIs never repeat across a restart. */
static void
test_evictions_survive_restarts (void)
{
  Sim *s = sim_new (0);
  Peer *cam = peer_new (s, "cam1", "video", TRUE);
  Peer *rx2 = peer_new (s, "rx2", "video", FALSE);
  Peer *back, *cam_again;
  guint32 id1, spi1;
  guint64 seq1;

  sim_run (s, 500);
  id1 = sender_id (cam);
  spi1 = newest_spi (cam);
  seq1 = mcsec_member_last_seq (cam->m);
  CHECK (admin_says (s, "evict video rx2", "\"ok\":true"));
  sim_run (s, 100);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_EVICTED);
  CHECK (!holds_spi (rx2, newest_spi (cam)));
  for (int r = 0; r < 2; r++) {
    sim_restart (s);
    back = peer_new (s, "rx2", "video", FALSE);
    sim_run (s, 1000);
    CHECK (mcsec_member_state (back->m) == MCSEC_MEMBER_REFUSED);
    back->reconnect = FALSE;
  }
  CHECK (admin_says (s, "list", "\"evicted-identities\":[\"rx2\"]"));
  /* the cam rejoined each restart: new Sender-IDs, new SPIs, higher SEQs */
  CHECK (mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED);
  CHECK (sender_id (cam) != id1);
  CHECK (newest_spi (cam) != spi1);
  CHECK (mcsec_member_last_seq (cam->m) > seq1);
  cam_again = peer_new (s, "cam2", "video", TRUE);
  sim_run (s, 500);
  CHECK (sender_id (cam_again) != sender_id (cam) &&
         sender_id (cam_again) != id1);
  CHECK (admin_says (s, "unevict video rx2", "\"was-evicted\":true"));
  sim_restart (s);
  back = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 1000);
  CHECK (mcsec_member_state (back->m) == MCSEC_MEMBER_JOINED);
  CHECK (admin_says (s, "unevict video rx2", "\"was-evicted\":false"));
  CHECK (admin_says (s, "evict nosuch rx2", "no such group"));
  CHECK (admin_says (s, "evict video", "usage: evict GROUP IDENTITY"));
  CHECK (admin_says (s, "frobnicate", "unknown request"));
  sim_free (s);
}

/* Fail closed: a leave whose rekey cannot be made (the store refuses the
 * new SPI) hands the old key to nobody, says so, and heals. */
static void
test_fail_closed_unicast (void)
{
  Sim *s = sim_new (0);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *rx2 = peer_new (s, "rx2", "video", FALSE);
  Peer *rx3;
  guint32 before, after;
  guint64 seq;

  sim_run (s, 500);
  before = newest_spi (rx1);
  seq = mcsec_member_last_seq (rx1->m);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  peer_leave (rx2);
  sim_run (s, 200);
  CHECK (logged (s, "rekey-failed group=video"));
  CHECK (admin_says (s, "stats", "\"rotation-failed\":true"));
  /* nothing was sent on with the key rx2 holds */
  CHECK (mcsec_member_last_seq (rx1->m) == seq);
  CHECK (newest_spi (rx1) == before);
  /* a newcomer is not handed the old key */
  rx3 = peer_new (s, "rx3", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx3->m) != MCSEC_MEMBER_JOINED);
  CHECK (!holds_spi (rx3, before));
  CHECK (logged (s, "join-deferred group=video identity=rx3"));
  CHECK (admin_says (s, "rekey video", "\"ok\":false"));
  /* the store works again: one retry later everyone is on a new key */
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 2500);
  after = newest_spi (rx1);
  CHECK (after != before && after != 0);
  CHECK (mcsec_member_state (rx3->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (rx3) == after);
  CHECK (!holds_spi (rx2, after));
  CHECK (logged (s, "rekey-recovered group=video"));
  CHECK (admin_says (s, "stats", "\"rotation-failed\":false"));
  sim_free (s);
}

/* Key tree group over a lossy channel: members join and leave; every
 * member present ends on the group's SA, by repairs where the channel lost
 * rekeys and over its connection where the channel never reaches it. */
static void
test_tree_with_loss (void)
{
  Sim *s = sim_new (0);
  Peer *p[8];
  gchar name[8];
  guint32 spi;
  guint in_step = 0;
  gchar *stats;

  for (int i = 0; i < 8; i++) {
    g_snprintf (name, sizeof name, "rx%d", i + 1);
    p[i] = peer_new (s, name, "tv", FALSE);
    p[i]->channel_loss = i == 7 ? 1.0 : 0.3; /* rx8: the channel never */
  }
  sim_run (s, 1000);
  for (int round = 0; round < 6; round++) {
    gchar *a = admin (s, "rekey tv");
    g_free (a);
    sim_run (s, 400);
  }
  peer_leave (p[2]);
  sim_run (s, 3000);
  spi = newest_spi (p[0]);
  for (int i = 0; i < 8; i++)
    if (i != 2)
      in_step += newest_spi (p[i]) == spi;
  CHECK (spi != 0);
  CHECK (in_step == 7);
  CHECK (!holds_spi (p[2], spi));
  stats = admin (s, "stats");
  CHECK (strstr (stats, "\"repairs\":0,") == NULL); /* loss was repaired */
  g_free (stats);
  sim_free (s);
}

/* A key tree commit that cannot be made leaves the tree whole; members
 * stay in step once it heals. */
static void
test_fail_closed_tree (void)
{
  Sim *s = sim_new (0);
  Peer *a = peer_new (s, "rx1", "tv", FALSE);
  Peer *b = peer_new (s, "rx2", "tv", FALSE);
  Peer *c;
  guint32 before;

  sim_run (s, 1000);
  before = newest_spi (a);
  CHECK (before != 0 && newest_spi (b) == before);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  peer_leave (b);
  c = peer_new (s, "rx3", "tv", FALSE);
  sim_run (s, 500);
  CHECK (logged (s, "rekey-failed group=tv"));
  CHECK (mcsec_member_state (c->m) != MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (a) == before);
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 3000);
  CHECK (mcsec_member_state (c->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (a) != before && newest_spi (a) == newest_spi (c));
  CHECK (!holds_spi (b, newest_spi (a)));
  sim_free (s);
}

/* Members that flood REPAIR and never read.  One asks 40 times a second
 * (under the frame limit): the repairs beyond repair-rate are ignored, its
 * queue stays under max-output, and it is disconnected when its output
 * stops moving.  One pours 1 MB of REPAIR frames at once (PONGs, before or
 * after a JOIN, would do the same): disconnected as a flood after the
 * first FRAMES_BURST.  The others are served meanwhile. */
static void
test_repair_flood (void)
{
  Sim *s = sim_new (256 * 1024);
  Peer *good = peer_new (s, "rx1", "tv", FALSE);
  Peer *slow = peer_new (s, "rx2", "tv", FALSE);
  Peer *fast = peer_new (s, "rx3", "tv", FALSE);
  guint8 frame[64];
  mcsec_mike_builder_t b;
  size_t len;
  gchar *stats;
  int sent = 0;

  sim_run (s, 1000);
  for (int i = 0; i < 5; i++) {
    g_free (admin (s, "rekey tv"));
    sim_run (s, 100);
  }
  slow->reads = fast->reads = FALSE;
  slow->reconnect = fast->reconnect = FALSE;
  mcsec_mike_begin (&b, frame, sizeof frame, MCSEC_MIKE_REPAIR);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, 1);
  CHECK_STATUS (mcsec_mike_finish (&b, &len), MCSEC_OK);
  /* the fast one: 1 MB in one go, as TLS records would bring it */
  {
    gsize total = 1000000 / len * len;
    guint8 *flood = g_malloc (total);
    for (gsize off = 0; off < total; off += len)
      memcpy (flood + off, frame, len);
    mcsec_ctl_conn_input (fast->c, flood, total, s->now);
    run_actions (s);
    g_free (flood);
  }
  CHECK (fast->c == NULL && fast->closes == 1);
  CHECK (logged (s, "flooding peer=sim:1 identity=rx3"));
  /* the slow one: 40 a second for 20 s */
  for (int t = 0; t < 2000 && slow->c; t++) {
    if (t % 2 == 0) {
      mcsec_ctl_conn_input (slow->c, frame, len, s->now);
      run_actions (s);
      sent++;
    }
    sim_run (s, 10);
  }
  CHECK (sent > 300);
  CHECK (s->max_queued <= 256 * 1024);
  CHECK (slow->c == NULL && slow->closes >= 1);
  CHECK (logged (s, "not-reading peer=sim:1 identity=rx2"));
  stats = admin (s, "stats");
  CHECK (strstr (stats, "\"repairs-limited\":0,") == NULL);
  CHECK (strstr (stats, "\"not-reading\":1,") != NULL);
  CHECK (strstr (stats, "\"flooding\":1,") != NULL);
  g_free (stats);
  CHECK (mcsec_member_state (good->m) == MCSEC_MEMBER_JOINED);
  sim_free (s);
}

/* Before its JOIN a connection may send nothing else, and little: a PING
 * or an endless partial frame closes it; an identity in no access list is
 * closed at once; one identity may have AWAIT_PER_IDENTITY connections
 * waiting to join. */
static void
test_before_join (void)
{
  Sim *s = sim_new (0);
  guint8 frame[64], big[8192] = {0};
  mcsec_mike_builder_t b;
  size_t len;
  mcsec_ctl_conn_t *c[7];
  gchar *stats;
  Peer *p;

  mcsec_mike_begin (&b, frame, sizeof frame, MCSEC_MIKE_PING);
  CHECK_STATUS (mcsec_mike_finish (&b, &len), MCSEC_OK);
  c[0] = mcsec_ctl_conn_new (s->core, "sim:9", "rx1", s->now, 0);
  mcsec_ctl_conn_input (c[0], frame, len, s->now);
  run_actions (s);
  CHECK (logged (s, "reason=bad-request text=\"malformed message\""));
  /* a frame header announcing 60 kB, then bytes that never end it */
  big[1] = 0x00, big[2] = 0xea, big[3] = 0x60;
  c[1] = mcsec_ctl_conn_new (s->core, "sim:9", "rx1", s->now, 0);
  mcsec_ctl_conn_input (c[1], big, sizeof big, s->now);
  run_actions (s);
  stats = admin (s, "stats");
  CHECK (strstr (stats, "\"rejected-messages\":2,") != NULL);
  g_free (stats);
  /* a certificate for nobody the configuration lists */
  c[2] = mcsec_ctl_conn_new (s->core, "sim:9", "eve", s->now, 0);
  run_actions (s);
  stats = admin (s, "stats");
  CHECK (strstr (stats, "\"unlisted-identities\":1,") != NULL);
  g_free (stats);
  /* five connections of rx2 that say nothing: the fifth is closed */
  for (int i = 0; i < 5; i++) {
    mcsec_ctl_conn_t *w =
        mcsec_ctl_conn_new (s->core, "sim:9", "rx2", s->now, 0);
    run_actions (s);
    if (i < 4)
      c[3 + i] = w;
    else {
      CHECK (logged (s, "4 connections of this identity wait to join"));
      mcsec_ctl_conn_free (w);
    }
  }
  for (int i = 0; i < 7; i++)
    mcsec_ctl_conn_free (c[i]);
  /* with those gone, rx2 joins */
  p = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (p->m) == MCSEC_MEMBER_JOINED);
  sim_free (s);
}

/* A member that stops reading while updates keep coming: its queue stops
 * at max-output and it is disconnected at once; the others are served. */
static void
test_output_cap (void)
{
  Sim *s = sim_new (256 * 1024);
  Peer *good = peer_new (s, "rx1", "video", FALSE);
  Peer *deaf = peer_new (s, "rx2", "video", FALSE);
  gchar *stats;
  int i;

  sim_run (s, 500);
  deaf->reads = FALSE;
  deaf->reconnect = FALSE;
  for (i = 0; i < 5000 && deaf->c; i++) {
    s->now += 1; /* no sweep in between: the cap alone */
    g_free (admin (s, "rekey video"));
  }
  CHECK (deaf->c == NULL && deaf->closes == 1);
  CHECK (i < 5000);
  CHECK (s->max_queued <= 256 * 1024);
  CHECK (logged (s, "not-reading peer=sim:1 identity=rx2 queued="));
  stats = admin (s, "stats");
  CHECK (strstr (stats, "\"not-reading\":1,") != NULL);
  g_free (stats);
  sim_run (s, 500);
  CHECK (mcsec_member_state (good->m) == MCSEC_MEMBER_JOINED);
  CHECK (!holds_spi (deaf, newest_spi (good)));
  sim_free (s);
}

/* What a member's connection was sent is wiped as it is written out: the
 * bytes past what is left in its output are zero (the core frees a drained
 * buffer without wiping it again, and grows or clears one wiping only up
 * to its length: a PING's PONG must not cost a 4 kB wipe). */
static void
test_output_wiped (void)
{
  Sim *s = sim_new (0);
  Peer *rx = peer_new (s, "rx1", "video", FALSE);
  const guint8 *d, *d2;
  gsize n, n2, zeros = 0;

  sim_run (s, 500);
  rx->reads = FALSE;
  g_free (admin (s, "rekey video")); /* an update with the new key queued */
  n = mcsec_ctl_conn_output (rx->c, &d);
  REQUIRE (n > 64);
  /* the member reads half of it */
  CHECK (mcsec_member_receive (rx->m, d, n / 2, (uint64_t)s->now) == MCSEC_OK);
  mcsec_ctl_conn_written (rx->c, n / 2, s->now);
  n2 = mcsec_ctl_conn_output (rx->c, &d2);
  CHECK (d2 == d && n2 == n - n / 2); /* the same buffer, moved down */
  for (gsize i = n2; i < n; i++)
    zeros += d2[i] == 0;
  CHECK (zeros == n - n2);
  rx->reads = TRUE;
  deliver (rx); /* the rest: a drained buffer goes */
  REQUIRE (rx->c != NULL);
  CHECK (mcsec_ctl_conn_output (rx->c, &d) == 0 && d == NULL);
  sim_run (s, 100);
  CHECK (mcsec_member_state (rx->m) == MCSEC_MEMBER_JOINED);
  sim_free (s);
}

/* The last member out of a group, by leave or eviction, holds its SA: the
 * next member gets a new one even where joins do not rekey. */
static void
test_last_one_out (void)
{
  Sim *s = sim_new (0);
  const char *how[2] = {"leave", "evict"};

  for (int k = 0; k < 2; k++) {
    gchar *who = g_strdup_printf ("rx%d", 1 + 2 * k);
    gchar *next = g_strdup_printf ("rx%d", 2 + 2 * k);
    Peer *d = peer_new (s, who, "quiet", FALSE), *n;
    guint32 spi;
    sim_run (s, 300);
    spi = newest_spi (d);
    CHECK (spi != 0);
    if (k == 0) {
      peer_leave (d);
    } else {
      gchar *line = g_strdup_printf ("evict quiet %s", who);
      CHECK (admin_says (s, line, "\"ok\":true"));
      g_free (line);
    }
    sim_run (s, 100);
    n = peer_new (s, next, "quiet", FALSE);
    sim_run (s, 300);
    CHECK (mcsec_member_state (n->m) == MCSEC_MEMBER_JOINED);
    if (newest_spi (n) == spi || holds_spi (n, spi) ||
        holds_spi (d, newest_spi (n)))
      fprintf (stderr,
               "  after a %s: the newcomer got the SA of the last "
               "one out\n",
               how[k]);
    CHECK (newest_spi (n) != spi && !holds_spi (n, spi));
    CHECK (!holds_spi (d, newest_spi (n)));
    peer_leave (n);
    sim_run (s, 100);
    g_free (who);
    g_free (next);
  }
  sim_free (s);
}

/* The store fails while a sender's Sender-IDs are reserved: the refusal is
 * `unavailable` (not final: it joins once the store is back), not
 * `sender-ids-exhausted` (final). */
static void
test_sender_ids_store_failure (void)
{
  Sim *s = sim_new (0);
  Peer *cam;

  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  cam = peer_new (s, "cam1", "quiet", TRUE);
  pump (s);
  CHECK (logged (s, "identity=cam1 group=quiet reason=unavailable"));
  CHECK (!logged (s, "reason=sender-ids-exhausted"));
  CHECK (mcsec_member_state (cam->m) != MCSEC_MEMBER_REFUSED);
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 1500);
  CHECK (mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED);
  CHECK (sender_id (cam) != 0);
  sim_free (s);
}

/* ------------------------------------------------------------------------ */
/* A new configuration (SIGHUP), the cold start, log priorities               */

/* The newest line with needle in it, or "". */
static const char *
last_logged (Sim *s, const char *needle)
{
  for (guint i = s->log->len; i > 0; i--)
    if (strstr (s->log->pdata[i - 1], needle))
      return s->log->pdata[i - 1];
  return "";
}

/* The access lists change under joined members: a newcomer the new lists
 * admit joins without a restart; a joined member they no longer admit (or
 * no longer as a sender) is evicted, the group rekeys once and the evicted
 * member holds nothing of the new SA; nothing durable: listed again, it
 * joins again.  A key tree group does the same with a commit. */
static void
test_reload_members (void)
{
  Sim *s = sim_new (0);
  GPtrArray *groups = make_groups ();
  Peer *cam, *rx1, *rx2, *rx9, *t1, *t2, *again;
  guint32 before, tv_before;

  set_list (&config_of (groups, "video")->receivers, "rx1;rx2");
  mcsec_ctl_free (s->core);
  s->core = mcsec_ctl_new (&(mcsec_ctl_config_t){.update_key = s->update_key,
                                                 .rejoin_window_ms = 500},
                           s->store, groups, s->now, NULL);
  REQUIRE (s->core != NULL);
  cam = peer_new (s, "cam1", "video", TRUE);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  rx2 = peer_new (s, "rx2", "video", FALSE);
  t1 = peer_new (s, "rx1", "tv", FALSE);
  t2 = peer_new (s, "rx2", "tv", FALSE);
  rx9 = peer_new (s, "rx3", "video", FALSE); /* listed for tv only */
  sim_run (s, 600);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (t2->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx9->m) == MCSEC_MEMBER_REFUSED);
  before = newest_spi (rx1);
  tv_before = newest_spi (t1);

  /* video: rx3 in, rx2 out; cam1 sends no more; tv: rx2 out */
  groups = make_groups ();
  set_list (&config_of (groups, "video")->receivers, "rx1;rx3;cam1");
  set_list (&config_of (groups, "video")->senders, "cam2");
  set_list (&config_of (groups, "tv")->receivers, "rx1;rx3");
  sim_reload (s, groups);
  sim_run (s, 600);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_EVICTED);
  CHECK (mcsec_member_state (cam->m) == MCSEC_MEMBER_EVICTED);
  CHECK (mcsec_member_state (t2->m) == MCSEC_MEMBER_EVICTED);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (rx1) != before && !holds_spi (rx2, newest_spi (rx1)));
  CHECK (!holds_spi (cam, newest_spi (rx1)));
  CHECK (newest_spi (t1) != tv_before && !holds_spi (t2, newest_spi (t1)));
  CHECK (logged (s, "evicted group=video identity=rx2 connected=yes "
                    "durable=no by=reload why=\"no longer in the group's "
                    "access lists\""));
  CHECK (logged (s, "evicted group=video identity=cam1 connected=yes "
                    "durable=no by=reload why=\"no longer allowed to send\""));
  CHECK (logged (s, "rekey group=video reason=reload"));
  CHECK (logged (s, "reloaded groups=3 added=\"video:rx3\" "
                    "removed=\"video:rx2,tv:rx2,tv:rx4,tv:rx5,tv:rx6,tv:rx7,"
                    "tv:rx8\" evicted=3 changed=\"[group video] "
                    "senders,[group video] receivers,[group tv] receivers\" "
                    "restart-needed=1"));
  CHECK (logged (s, "restart-needed setting=\"[controller] listen\""));
  /* one rekey for the two evicted from video */
  {
    guint n = 0;
    for (guint i = 0; i < s->log->len; i++)
      n += strstr (s->log->pdata[i], "rekey group=video reason=reload") != NULL;
    CHECK (n == 1);
  }
  CHECK (admin_says (s, "stats", "\"evictions\":3,"));
  /* rx3 was refused before: listed now, it joins without a restart */
  again = peer_new (s, "rx3", "video", FALSE);
  sim_run (s, 600);
  CHECK (mcsec_member_state (again->m) == MCSEC_MEMBER_JOINED);
  /* rx2 listed again: it joins (no eviction was recorded) */
  groups = make_groups ();
  sim_reload (s, groups);
  again = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 600);
  CHECK (mcsec_member_state (again->m) == MCSEC_MEMBER_JOINED);
  CHECK (admin_says (s, "list", "\"evicted-identities\":[]"));
  CHECK (logged (s, "added=\"video:rx2,video:rx4,video:rx5,video:rx6,"
                    "video:rx7,video:rx8,tv:rx2,tv:rx4,tv:rx5,tv:rx6,tv:rx7,"
                    "tv:rx8\" removed=\"\" evicted=0"));
  sim_free (s);
}

/* A newcomer whose rekey failed is in the member list: an update made for
 * another reason (a sender left a group without rekey-on-leave) must not
 * hand it the current key; the group owes a new one (found by a review of
 * the cluster's adoption: the same path at the end of a rejoin window). */
static void
test_fail_closed_newcomer (void)
{
  Sim *s = sim_new (0);
  GPtrArray *groups = make_groups ();
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  Peer *rx3;
  guint32 before, after;

  config_of (groups, "video")->rekey_on_leave = FALSE;
  sim_reload (s, groups);
  sim_run (s, 500);
  before = newest_spi (rx1);
  CHECK (before != 0 && newest_spi (cam1) == before);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  rx3 = peer_new (s, "rx3", "video", FALSE);
  sim_run (s, 300);
  CHECK (logged (s, "rekey-failed group=video"));
  peer_leave (cam1); /* sender-left: an update, no new key asked */
  sim_run (s, 300);
  CHECK (!holds_spi (rx3, before));
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 2500);
  after = newest_spi (rx3);
  CHECK (after != 0 && after != before && newest_spi (rx1) == after);
  sim_free (s);
}

/* A sender's connection drops and it joins again under the same key (no
 * rekey on join or leave): it is given new Sender-IDs, but mcsecenc
 * changes Sender-ID only with the SA, so the one it sends with stays
 * listed (or signed receivers drop its stream) until the key changes;
 * neither is handed to anyone else under the key.  Both ways back: the
 * controller saw the drop (a leave, then a join), or the new connection
 * came first (it replaces the old one). */
static void
test_sender_reconnects (void)
{
  Sim *s = sim_new (0);
  GPtrArray *groups = make_groups ();
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  Peer *cam2, *other;
  mcsec_ctl_conn_t *stale;
  guint32 spi, id1, id2, id3;

  config_of (groups, "video")->rekey_on_join = FALSE;
  config_of (groups, "video")->rekey_on_leave = FALSE;
  sim_reload (s, groups);
  sim_run (s, 500);
  spi = newest_spi (rx1);
  id1 = sender_id (cam1);
  CHECK (spi != 0 && newest_spi (cam1) == spi && lists_sender (rx1, id1));
  /* the controller sees the connection drop: a leave (not listed while
   * away), then a join */
  mcsec_ctl_conn_lost (cam1->c, "reset", s->now);
  peer_gone (cam1);
  sim_run (s, 100);
  CHECK (!lists_sender (rx1, id1));
  sim_run (s, 400);
  id2 = sender_id (cam1);
  CHECK (mcsec_member_state (cam1->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (rx1) == spi && newest_spi (cam1) == spi);
  CHECK (id2 != 0 && id2 != id1);
  CHECK (lists_sender (rx1, id1) && lists_sender (rx1, id2));
  /* the new connection first: the old one is replaced */
  stale = cam1->c;
  cam1->c = NULL;
  mcsec_member_disconnected (cam1->m, (uint64_t)s->now);
  cam1->reconnect_at = s->now + 300;
  sim_run (s, 500);
  mcsec_ctl_conn_free (stale);
  id3 = sender_id (cam1);
  CHECK (logged (s, "replaced group=video identity=cam1"));
  CHECK (newest_spi (rx1) == spi && id3 != id1 && id3 != id2);
  CHECK (lists_sender (rx1, id1) && lists_sender (rx1, id2) &&
         lists_sender (rx1, id3));
  /* another sender under the key: none of those */
  cam2 = peer_new (s, "cam2", "video", TRUE);
  sim_run (s, 300);
  CHECK (newest_spi (cam2) == spi);
  CHECK (sender_id (cam2) != id1 && sender_id (cam2) != id2 &&
         sender_id (cam2) != id3);
  /* cam1's certificate with another signing key (another device, or a
   * stolen certificate): cam1's Sender-IDs are not listed under its key */
  cam1->reconnect = FALSE;
  mcsec_ctl_conn_lost (cam1->c, "reset", s->now);
  peer_gone (cam1);
  other = peer_new (s, "cam1", "video", TRUE);
  sim_run (s, 300);
  CHECK (newest_spi (other) == spi && sender_id (other) != 0);
  CHECK (!lists_sender (rx1, id1) && !lists_sender (rx1, id2) &&
         !lists_sender (rx1, id3) && lists_sender (rx1, sender_id (other)));
  /* a new key: only the Sender-IDs held now */
  id3 = sender_id (other);
  CHECK (admin_says (s, "rekey video", "\"ok\":true"));
  sim_run (s, 2000);
  CHECK (newest_spi (rx1) != spi);
  CHECK (lists_sender (rx1, id3) && lists_sender (rx1, sender_id (cam2)));
  CHECK (!lists_sender (rx1, id1) && !lists_sender (rx1, id2));
  sim_free (s);
}

/* A member that left without a rekey (rekey-on-leave = false) holds the
 * SA: a reload that removes it from the access lists, or no longer lets
 * it send, evicts it like a member or an adopted holder, and the group
 * rekeys (found by a review: the reload looked at the members and holders
 * only). */
static void
test_reload_departed (void)
{
  Sim *s = sim_new (0);
  GPtrArray *groups = make_groups ();
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *rx2 = peer_new (s, "rx2", "video", FALSE);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  guint32 spi;

  config_of (groups, "video")->rekey_on_leave = FALSE;
  sim_reload (s, groups);
  sim_run (s, 500);
  spi = newest_spi (rx1);
  CHECK (spi != 0 && newest_spi (rx2) == spi && newest_spi (cam1) == spi);
  peer_leave (rx2);
  peer_leave (cam1);
  sim_run (s, 300);
  CHECK (newest_spi (rx1) == spi); /* no rekey: rx2 and cam1 hold it */
  /* rx2 in no list, cam1 a receiver only (in an unsigned group it could
   * still send under the SA) */
  groups = make_groups ();
  config_of (groups, "video")->rekey_on_leave = FALSE;
  set_list (&config_of (groups, "video")->receivers, "rx1;cam1");
  set_list (&config_of (groups, "video")->senders, "cam2");
  sim_reload (s, groups);
  sim_run (s, 1000);
  CHECK (logged (s, "evicted group=video identity=rx2 connected=no"));
  CHECK (logged (s, "evicted group=video identity=cam1 connected=no durable=no "
                    "by=reload why=\"no longer allowed to send\""));
  CHECK (newest_spi (rx1) != spi && !holds_spi (rx2, newest_spi (rx1)) &&
         !holds_spi (cam1, newest_spi (rx1)));
  sim_free (s);
}

/* The other settings: live ones hold from the reload on (a shorter
 * key-lifetime rekeys), the others (a cipher, a new or removed group) stay
 * as they were and are named as waiting for a restart. */
static void
test_reload_settings (void)
{
  Sim *s = sim_new (0);
  GPtrArray *groups;
  mcsec_ctl_group_config_t *radio;
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);

  sim_run (s, 500);
  CHECK (!logged (s, "reason=lifetime"));
  groups = make_groups ();
  config_of (groups, "video")->key_lifetime_s = 2;
  config_of (groups, "video")->suite = MCSEC_SUITE_AES_256_GCM;
  config_of (groups, "tv")->batch_ms = 10;
  radio = config_of (groups, "quiet");
  g_free (radio->name);
  radio->name = g_strdup ("radio"); /* quiet removed, radio added */
  sim_reload (s, groups);
  CHECK (logged (s, "reloaded groups=3 added=\"\" removed=\"\" evicted=0 "
                    "changed=\"[group video] key-lifetime,[group tv] "
                    "batch-interval\" restart-needed=4"));
  CHECK (logged (s, "restart-needed setting=\"[group video] cipher\""));
  CHECK (logged (s, "restart-needed setting=\"[group radio] (a new "
                    "group)\""));
  CHECK (logged (s, "restart-needed setting=\"[group quiet] (removed)\""));
  sim_run (s, 2500);
  CHECK (logged (s, "rekey group=video reason=lifetime"));
  CHECK (strstr (last_logged (s, "rekey group=video"), "suite=aes-128-gcm"));
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_ctl_n_groups (s->core) == 3);
  sim_free (s);
}

/* A crash: the core goes without mcsec_ctl_stop, connections drop. */
static void
sim_crash (Sim *s)
{
  sim_drop_connections (s);
  mcsec_ctl_free (s->core);
  s->now += 50;
  sim_start_core (s);
}

/* The cold start: a restarted controller waits rejoin-window only for the
 * groups whose members may hold the last run's keys, and says why; a group
 * nobody was in hands out its first SA at once. */
static void
test_cold_start (void)
{
  Sim *s = sim_new (0);
  Peer *rx1, *rx2;

  CHECK (!logged (s, "rejoin-window")); /* a fresh state */
  CHECK (mcsec_ctl_rejoin_window_ms (s->core) == 0);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  sim_run (s, 300);
  peer_leave (rx1);
  sim_run (s, 100);
  /* nobody in any group at the stop: no wait */
  sim_restart (s);
  CHECK (logged (s, "rejoin-window group=video ms=0 why=\"no member was "
                    "joined at the last stop\""));
  CHECK (mcsec_ctl_rejoin_window_ms (s->core) == 0);
  rx2 = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_JOINED);
  CHECK (strstr (last_logged (s, "rekey group=video reason=join"),
                 "activate-in-ms=0 "));
  /* rx2 joined at a clean stop: video waits, the others do not */
  g_ptr_array_set_size (s->log, 0);
  sim_restart (s);
  CHECK (logged (s, "rejoin-window group=video ms=500 why=\"1 member was "
                    "joined at the last stop\""));
  CHECK (logged (s, "rejoin-window group=tv ms=0"));
  CHECK (mcsec_ctl_rejoin_window_ms (s->core) == 500);
  /* stopped again before rx2 is back: it is still awaited */
  g_ptr_array_set_size (s->log, 0);
  sim_restart (s);
  CHECK (logged (s, "rejoin-window group=video ms=500 why=\"the last run "
                    "stopped before the members of the run before it had "
                    "rejoined\""));
  CHECK (logged (s, "rejoin-window group=tv ms=0"));
  sim_run (s, 400);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_JOINED);
  CHECK (!strstr (last_logged (s, "rekey group=video reason=join"),
                  "activate-in-ms=0 "));
  /* a crash with rx2 joined: its rejoin was recorded before its key */
  g_ptr_array_set_size (s->log, 0);
  sim_crash (s);
  CHECK (logged (s, "rejoin-window group=video ms=500 why=\"members were "
                    "joined when the last run ended without a clean stop\""));
  sim_run (s, 400);
  /* a state an older controller wrote: every group waits */
  mcsec_ctl_stop (s->core);
  {
    const char *k[1] = {"members-recorded"};
    GBytes *v[1] = {NULL};
    CHECK (s->store->put (s->store, k, v, 1, NULL));
  }
  g_ptr_array_set_size (s->log, 0);
  sim_crash (s);
  CHECK (logged (s, "rejoin-window group=quiet ms=500 why=\"the state does "
                    "not record who was joined (written by an older "
                    "controller)\""));
  /* everyone leaves (after the window: inside it the last run's members
   * are still awaited), then a crash: nobody to wait for */
  sim_run (s, 600);
  peer_leave (rx2);
  sim_run (s, 100);
  g_ptr_array_set_size (s->log, 0);
  sim_crash (s);
  CHECK (logged (s, "rejoin-window group=video ms=0"));
  CHECK (mcsec_ctl_rejoin_window_ms (s->core) == 0);
  sim_free (s);

  /* the record cannot be written: the first member is not given a key
   * (it is told unavailable, not final, and joins once the store works) */
  s = sim_new (0);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  rx1 = peer_new (s, "rx1", "quiet", FALSE);
  pump (s);
  CHECK (logged (s, "reason=unavailable text=\"cannot record the group's "
                    "members: the state store failed\""));
  CHECK (mcsec_member_state (rx1->m) != MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx1->m) != MCSEC_MEMBER_REFUSED);
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 1500);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  sim_free (s);
}

/* Each event's syslog priority, for journald. */
static void
test_event_priorities (void)
{
  CHECK (mcsec_ctl_event_priority ("error") == 3);
  CHECK (mcsec_ctl_event_priority ("rekey-failed") == 3);
  CHECK (mcsec_ctl_event_priority ("reload-failed") == 3);
  CHECK (mcsec_ctl_event_priority ("handshake-failed") == 4);
  CHECK (mcsec_ctl_event_priority ("restart-needed") == 4);
  CHECK (mcsec_ctl_event_priority ("keys-exported") == 4);
  CHECK (mcsec_ctl_event_priority ("evicted") == 5);
  CHECK (mcsec_ctl_event_priority ("started") == 5);
  CHECK (mcsec_ctl_event_priority ("reloaded") == 5);
  CHECK (mcsec_ctl_event_priority ("joined") == 6);
  CHECK (mcsec_ctl_event_priority ("rekey") == 6);
  CHECK (mcsec_ctl_event_priority ("resync") == 7);
  CHECK (mcsec_ctl_event_priority ("no-such-event") == 6);
}

/* ------------------------------------------------------------------------ */
/* Per-sender SPIs                                                            */

static int
msa_spi_per_sender (Peer *p)
{
  mcsec_msa_t *msa = NULL;
  int v = -1;
  if (mcsec_member_msa (p->m, &msa) == MCSEC_OK && msa) {
    v = msa->spi_per_sender;
    mcsec_msa_free (msa);
  }
  return v;
}

/* An SA of an MSA as the elements make it (mcsecenc, mcsecdec). */
static mcsec_sa_t *
sa_of (const mcsec_msa_t *msa, const mcsec_msa_sa_t *a)
{
  mcsec_sa_config_t sc = {0};
  mcsec_sa_t *sa = NULL;
  sc.spi = a->spi;
  sc.suite = a->suite;
  sc.key = a->key;
  sc.key_len = a->key_len;
  sc.sender_id_bits = msa->sender_id_bits;
  sc.spi_per_sender = msa->spi_per_sender;
  REQUIRE (mcsec_sa_new (&sc, &sa) == MCSEC_OK);
  return sa;
}

/* tx protects a datagram with its sending SA as its first Sender-ID, rx
 * opens it with its SA of that SPI: the packet's SPI, 0 if rx could not
 * open it.  *base: the SA's SPI, *sid: tx's Sender-ID. */
static guint32
send_and_open (Peer *tx, Peer *rx, guint32 *base, guint32 *sid)
{
  mcsec_msa_t *tm = NULL, *rm = NULL;
  mcsec_sa_t *out = NULL, *in = NULL;
  guint8 pkt[256], plain[256];
  size_t len;
  mcsec_rx_info_t info;
  guint32 spi = 0;

  REQUIRE (mcsec_member_msa (tx->m, &tm) == MCSEC_OK && tm);
  REQUIRE (mcsec_member_msa (rx->m, &rm) == MCSEC_OK && rm);
  for (size_t i = 0; i < tm->n_sas; i++)
    if (tm->sas[i].sending)
      out = sa_of (tm, &tm->sas[i]);
  REQUIRE (out != NULL);
  *base = mcsec_sa_spi (out);
  *sid = tm->sender_id;
  for (size_t i = 0; i < rm->n_sas; i++)
    if (rm->sas[i].spi == *base)
      in = sa_of (rm, &rm->sas[i]);
  REQUIRE (in != NULL);
  REQUIRE (mcsec_sa_set_sender (out, tm->sender_id, 0, 0) == MCSEC_OK);
  REQUIRE (mcsec_sa_protect (out, MCSEC_NEXT_HEADER_DATAGRAM,
                             (const guint8 *)"frame", 5, pkt, sizeof pkt, &len,
                             NULL) == MCSEC_OK);
  if (mcsec_sa_unprotect (in, pkt, len, plain, sizeof plain, &info) ==
          MCSEC_OK &&
      info.payload_len == 5 && memcmp (plain, "frame", 5) == 0 &&
      info.sender_id == tm->sender_id && info.spi == *base)
    spi = mcsec_packet_spi (pkt, len);
  mcsec_sa_free (out);
  mcsec_sa_free (in);
  mcsec_msa_free (tm);
  mcsec_msa_free (rm);
  return spi;
}

/* Groups with spi-per-sender (docs/mike-protocol.md, "Per-sender SPIs"),
 * a unicast (video, 16-bit Sender-IDs) and a key tree group (tv, 8-bit):
 * their WELCOMEs carry SPI_PER_SENDER and the quiet group's none; every SA
 * of theirs, across rekeys, is a block's base (its low sender-id-bits
 * zero), each in a block of its own; a sender's packet under it carries
 * SPI | Sender-ID and a receiver of the group opens it.  A reload keeps
 * the setting until a restart; a restart without it tells the members so
 * and hands out an SPI in none of the old blocks.  A core given the
 * setting with 32-bit Sender-IDs does not start. */
static void
test_spi_per_sender (void)
{
  Sim *s;
  Peer *cam, *rx1, *t1, *t2, *q1;
  guint32 video[10], tv[8], base, sid, spi; /* video: 8 rekeys, then 2 */
  guint n = 0;
  GPtrArray *groups;

  groups_spi_per_sender = TRUE;
  s = sim_new (0);
  cam = peer_new (s, "cam1", "video", TRUE);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  t1 = peer_new (s, "rx1", "tv", FALSE);
  t2 = peer_new (s, "rx2", "tv", FALSE);
  q1 = peer_new (s, "rx1", "quiet", FALSE);
  sim_run (s, 600);
  CHECK (mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED &&
         mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED &&
         mcsec_member_state (t1->m) == MCSEC_MEMBER_JOINED &&
         mcsec_member_state (t2->m) == MCSEC_MEMBER_JOINED &&
         mcsec_member_state (q1->m) == MCSEC_MEMBER_JOINED);
  CHECK (cam->welcomes == 1 && cam->welcome_spi_per_sender == 1);
  CHECK (rx1->welcomes == 1 && rx1->welcome_spi_per_sender == 1);
  CHECK (t1->welcomes == 1 && t1->welcome_spi_per_sender == 1);
  CHECK (q1->welcomes == 1 && q1->welcome_spi_per_sender == 0);
  CHECK (msa_spi_per_sender (cam) == 1 && msa_spi_per_sender (rx1) == 1 &&
         msa_spi_per_sender (t2) == 1 && msa_spi_per_sender (q1) == 0);
  for (n = 0; n < G_N_ELEMENTS (tv); n++) {
    video[n] = newest_spi (rx1);
    tv[n] = newest_spi (t1);
    CHECK (video[n] >= MCSEC_SPI_MIN && (video[n] & 0xffff) == 0 &&
           newest_spi (cam) == video[n]);
    CHECK (tv[n] >= MCSEC_SPI_MIN && (tv[n] & 0xff) == 0 &&
           newest_spi (t2) == tv[n]);
    spi = send_and_open (cam, rx1, &base, &sid);
    CHECK (base == video[n] && sid != 0 && spi == (base | sid));
    for (guint k = 0; k < n; k++) {
      CHECK ((video[k] & ~0xffffu) != video[n]); /* blocks, not values */
      CHECK ((tv[k] & ~0xffu) != tv[n]);
    }
    g_free (admin (s, "rekey video"));
    g_free (admin (s, "rekey tv"));
    sim_run (s, 400);
  }
  video[8] = newest_spi (rx1);
  CHECK ((video[8] & 0xffff) == 0 && (video[7] & ~0xffffu) != video[8]);
  CHECK (logged (s, "rekey group=tv reason=admin"));
  CHECK (mcsec_member_state (t1->m) == MCSEC_MEMBER_JOINED);
  /* the quiet group's SA is a plain one */
  CHECK (msa_spi_per_sender (q1) == 0);

  /* a reload that turns it off: restart-needed, the running value holds */
  groups = make_groups ();
  config_of (groups, "video")->spi_per_sender = FALSE;
  sim_reload (s, groups);
  CHECK (logged (s, "restart-needed setting=\"[group video] "
                    "spi-per-sender\""));
  g_free (admin (s, "rekey video"));
  sim_run (s, 400);
  CHECK ((newest_spi (rx1) & 0xffff) == 0 && msa_spi_per_sender (rx1) == 1);
  video[9] = newest_spi (rx1);
  CHECK (video[9] != video[8]);

  /* restarted without it: the members' MSAs say so, the SA is a plain one
   * in none of the blocks handed out before */
  groups_spi_per_sender = FALSE;
  sim_restart (s);
  sim_run (s, 1500);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED &&
         mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED);
  CHECK (rx1->welcomes == 2 && rx1->welcome_spi_per_sender == 0);
  CHECK (msa_spi_per_sender (rx1) == 0 && msa_spi_per_sender (cam) == 0 &&
         msa_spi_per_sender (t1) == 0);
  spi = send_and_open (cam, rx1, &base, &sid);
  CHECK (spi == base && base == newest_spi (rx1));
  for (guint k = 0; k < G_N_ELEMENTS (video); k++)
    CHECK ((base & ~0xffffu) != video[k]);
  sim_free (s);

  /* 32-bit Sender-IDs cannot make blocks: no core */
  {
    mcsec_ctl_config_t cc = {0};
    GError *error = NULL;
    mcsec_ctl_store_t *store = mcsec_ctl_memory_store_new ();
    mcsec_ctl_t *core;
    groups = make_groups ();
    /* the core frees what it did not take */
    g_ptr_array_set_free_func (groups,
                               (GDestroyNotify)mcsec_ctl_group_config_free);
    config_of (groups, "tv")->spi_per_sender = TRUE;
    config_of (groups, "tv")->sender_id_bits = 32;
    cc.update_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    core = mcsec_ctl_new (&cc, store, groups, 1000, &error);
    CHECK (core == NULL && error &&
           strstr (error->message, "[group tv] spi-per-sender"));
    g_clear_error (&error);
    mcsec_ctl_free (core);
    EVP_PKEY_free (cc.update_key);
    store->free (store);
  }
}

int
main (void)
{
  test_unicast_join_leave ();
  test_evictions_survive_restarts ();
  test_fail_closed_unicast ();
  test_fail_closed_newcomer ();
  test_sender_reconnects ();
  test_reload_departed ();
  test_tree_with_loss ();
  test_fail_closed_tree ();
  test_repair_flood ();
  test_output_cap ();
  test_output_wiped ();
  test_before_join ();
  test_last_one_out ();
  test_sender_ids_store_failure ();
  test_reload_members ();
  test_reload_settings ();
  test_cold_start ();
  test_spi_per_sender ();
  test_event_priorities ();
  return test_done ("test-ctl-core");
}
