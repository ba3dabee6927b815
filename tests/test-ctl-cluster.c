/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-ctl-cluster: the controller's I/O-free core as one controller of a
 * cluster (docs/cluster.md), against real member state machines with
 * simulated time (the harness: ctl-sim.h): fencing (a leader stopped past
 * its lease steps down before it issues anything), a new leader (update
 * numbers above the previous leader's, a new SPI), evictions recorded
 * elsewhere, counter conflicts, adopting the sealed SA on failover.  No
 * socket, no thread, no sleep.
 */
#include <string.h>

#include "ctl-sim.h"
#include "mcsec-test.h"

#include <mcsec/mcsec-rekey.h>

/* ------------------------------------------------------------------------ */
/* The cluster (docs/cluster.md): the core's part                            */

/* A leader stopped past its lease (no tick ran: SIGSTOP) hears a member
 * first when it resumes: it steps down before it issues anything; the
 * members are closed without a word and keep their keys. */
static void
test_cluster_fencing (void)
{
  Sim *s = sim_new_on (mcsec_ctl_memory_store_new (), TRUE, 0);
  Peer *rx1, *rx2, *rx3;
  guint64 seq, sent;
  guint32 spi;

  lead (s, "video");
  mcsec_ctl_set_lease_deadline (s->core, s->now + 1000);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  rx2 = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_JOINED);
  seq = mcsec_member_last_seq (rx1->m);
  spi = newest_spi (rx1);
  sent = updates_sent (s);
  /* stopped for 2 s: the lease ended 1.3 s ago */
  s->now += 2000;
  rx3 = peer_new (s, "rx3", "video", FALSE);
  pump (s);
  CHECK (logged (s, "lease-expired group=video"));
  CHECK (logged (s, "step-down group=video leader=unknown members-closed=2"));
  CHECK (rx1->closes == 1 && rx2->closes == 1);
  CHECK (mcsec_member_state (rx3->m) != MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx3->m) != MCSEC_MEMBER_REFUSED); /* not final */
  CHECK (logged (s, "identity=rx3 group=video reason=not-leader "
                    "text=\"leader=unknown\""));
  CHECK (updates_sent (s) == sent); /* nothing issued */
  CHECK (mcsec_member_last_seq (rx1->m) == seq);
  CHECK (holds_spi (rx1, spi)); /* keys kept */
  CHECK (admin_says (s, "rekey video", "does not lead the group"));
  /* time goes on: the members try again and are told the same */
  mcsec_ctl_group_follow (group_named (s, "video"), "10.0.0.2:7700", FALSE,
                          s->now);
  sim_run (s, 1000);
  CHECK (updates_sent (s) == sent);
  CHECK (logged (s, "identity=rx1 group=video reason=not-leader "
                    "text=\"leader=10.0.0.2:7700\""));
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_DISCONNECTED);
  /* without etcd, nobody leads: unavailable, not final either */
  mcsec_ctl_group_follow (group_named (s, "video"), NULL, TRUE, s->now);
  sim_run (s, 1000);
  CHECK (logged (s, "group=video reason=unavailable"));
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_DISCONNECTED);
  sim_free (s);
}

/* The leader `from` dies (its connections drop without a word) and `to`
 * leads `group`. */
static void
sim_fail_over (Sim *s, mcsec_ctl_t *from, mcsec_ctl_t *to, const char *group)
{
  sim_drop_connections (s);
  mcsec_ctl_free (from);
  s->core = to;
  mcsec_ctl_set_lease_deadline (to, G_MAXINT64);
  lead (s, group);
  run_actions (s);
}

/* Two controllers on one store that seals (X, then Y, which leads video). */
static Sim *
sim_sealing_pair (mcsec_ctl_t **x, mcsec_ctl_t **y)
{
  Sim *s = sim_new_on (mcsec_ctl_memory_store_new (), TRUE, 0);
  mcsec_ctl_free (s->core);
  s->seals = TRUE;
  sim_start_core (s);
  *x = s->core;
  sim_start_core (s);
  *y = s->core;
  lead (s, "video");
  mcsec_ctl_set_lease_deadline (*y, G_MAXINT64);
  return s;
}

static gboolean
logged_since (Sim *s, guint from, const char *needle)
{
  for (guint i = from; i < s->log->len; i++)
    if (strstr (s->log->pdata[i], needle))
      return TRUE;
  return FALSE;
}

/* Both controllers of the pair: video rekeys on neither joins nor leaves
 * (a reload of each); Y goes on. */
static void
sim_pair_quiet (Sim *s, mcsec_ctl_t *x, mcsec_ctl_t *y)
{
  for (int i = 0; i < 2; i++) {
    GPtrArray *groups = make_groups ();
    config_of (groups, "video")->rekey_on_join = FALSE;
    config_of (groups, "video")->rekey_on_leave = FALSE;
    s->core = i ? x : y;
    sim_reload (s, groups);
  }
  s->core = y;
}

/* Failover without a rekey (docs/cluster.md): the new leader adopts the
 * SA the previous one sealed in the store; the members that held it
 * rejoin and keep it, no key changes; rejoining senders get Sender-IDs
 * never used under it; a newcomer still gets a new key. */
static void
test_cluster_adopt (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  Peer *cam2 = peer_new (s, "cam2", "video", TRUE);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE), *rx3;
  guint32 spi, id1, id2;
  guint64 seq;
  guint mark;
  gchar *line;

  sim_run (s, 300);
  spi = newest_spi (rx1);
  CHECK (spi != 0 && newest_spi (cam1) == spi && newest_spi (cam2) == spi);
  id1 = sender_id (cam1);
  id2 = sender_id (cam2);
  seq = mcsec_member_last_seq (rx1->m);
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  line = g_strdup_printf ("adopt group=video spi=0x%08x holders=3", spi);
  CHECK (logged_since (s, mark, line));
  g_free (line);
  sim_run (s, 400); /* they reconnect and rejoin */
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (cam1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (cam2->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_last_seq (rx1->m) > seq);
  CHECK (newest_spi (rx1) == spi && newest_spi (cam1) == spi &&
         newest_spi (cam2) == spi);
  CHECK (!logged_since (s, mark, "rekey group=video"));
  /* under the same key: new Sender-IDs, none used before, none shared */
  CHECK (sender_id (cam1) != id1 && sender_id (cam1) != id2);
  CHECK (sender_id (cam2) != id1 && sender_id (cam2) != id2);
  CHECK (sender_id (cam1) != sender_id (cam2) && sender_id (cam1) != 0);
  /* a sender that kept running goes on with its Sender-ID: still listed */
  CHECK (lists_sender (rx1, id1) && lists_sender (rx1, id2));
  CHECK (lists_sender (rx1, sender_id (cam1)) &&
         lists_sender (rx1, sender_id (cam2)));
  sim_run (s, 400); /* the rejoin window ends: everybody came back */
  CHECK (!logged_since (s, mark, "holders-missing"));
  CHECK (newest_spi (rx1) == spi);
  /* a second failover: the record holds the Sender-IDs the holders were
   * given at X too (a sender may have started under the SA with them) */
  {
    mcsec_ctl_t *z;
    guint32 at_x = sender_id (cam1);
    sim_start_core (s);
    z = s->core;
    s->core = x;
    mark = s->log->len;
    sim_fail_over (s, x, z, "video");
    x = z;
    sim_run (s, 400);
    CHECK (logged_since (s, mark, "adopt group=video"));
    CHECK (newest_spi (rx1) == spi && !logged_since (s, mark, "rekey "));
    CHECK (lists_sender (rx1, at_x) && lists_sender (rx1, id1));
    CHECK (sender_id (cam1) != at_x && sender_id (cam1) != id1);
  }
  /* a newcomer: backward secrecy as ever */
  rx3 = peer_new (s, "rx3", "video", FALSE);
  sim_run (s, 300);
  CHECK (newest_spi (rx3) != spi && newest_spi (rx1) == newest_spi (rx3));
  CHECK (!holds_spi (rx3, spi));
  /* under the new key, only the Sender-IDs the senders hold now */
  CHECK (!lists_sender (rx3, id1) && !lists_sender (rx3, id2));
  CHECK (lists_sender (rx3, sender_id (cam1)));
  sim_free (s);
}

/* What the new leader does not adopt: an SA a member that never came
 * back holds is replaced when the rejoin window ends; an SA an evicted
 * member held is never adopted. */
static void
test_cluster_adopt_refused (void)
{
  mcsec_ctl_t *x, *y, *z;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  Peer *rx2 = peer_new (s, "rx2", "video", FALSE);
  const char *key = "evicted/video/rx1";
  GBytes *empty = g_bytes_new (NULL, 0);
  guint32 spi, spi2;
  guint mark;

  sim_run (s, 300);
  spi = newest_spi (rx1);
  CHECK (spi != 0 && newest_spi (rx2) == spi);
  rx2->reconnect = FALSE; /* gone for good while no controller led */
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  CHECK (logged_since (s, mark, "adopt group=video"));
  sim_run (s, 1000);
  CHECK (logged_since (s, mark,
                       "holders-missing group=video missing=1 rekey=yes"));
  spi2 = newest_spi (rx1);
  CHECK (spi2 != spi && !holds_spi (rx2, spi2));
  /* rx1 is evicted at another controller while X is down: Z adopts nothing */
  CHECK (s->store->put (s->store, &key, &empty, 1, NULL));
  sim_start_core (s);
  z = s->core;
  s->core = x;
  mark = s->log->len;
  sim_fail_over (s, x, z, "video");
  CHECK (logged_since (s, mark, "adopt-skipped group=video spi=0x") &&
         logged_since (s, mark, "why=\"a member that held it is evicted\""));
  CHECK (logged_since (s, mark, "adopted-spi=0x00000000"));
  g_bytes_unref (empty);
  sim_free (s);
}

/* A holder back after the rejoin window, in a group that rekeys on
 * neither joins nor leaves: counted as departed (not listed while away),
 * and when it rejoins under the adopted SA the Sender-ID its running
 * mcsecenc sends with is listed again, as after a reconnect to one
 * controller (test-ctl-core sender_reconnects). */
static void
test_cluster_adopt_late_sender (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *rx1, *cam1;
  guint32 spi, id1;
  guint mark;

  sim_pair_quiet (s, x, y);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  cam1 = peer_new (s, "cam1", "video", TRUE);
  sim_run (s, 300);
  spi = newest_spi (rx1);
  id1 = sender_id (cam1);
  CHECK (spi != 0 && id1 != 0 && lists_sender (rx1, id1));
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  cam1->reconnect_at = s->now + 3000; /* back well after the window */
  sim_run (s, 1500);
  CHECK (logged_since (s, mark, "adopt group=video"));
  CHECK (
      logged_since (s, mark, "holders-missing group=video missing=1 rekey=no"));
  CHECK (newest_spi (rx1) == spi && !lists_sender (rx1, id1));
  sim_run (s, 2500);
  CHECK (mcsec_member_state (cam1->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (cam1) == spi && sender_id (cam1) != id1);
  CHECK (lists_sender (rx1, id1) && lists_sender (rx1, sender_id (cam1)));
  sim_free (s);
}

/* An eviction while no controller leads, of a member that holds the SA
 * but is not in its record: it left without a rekey (rekey-on-leave =
 * false) and a join since (rekey-on-join = false) wrote the record again
 * without it.  The administrator evicts it at a controller that does not
 * lead: the eviction deletes the sealed record, the next leader adopts
 * nothing and makes a new SA (found by a review: the adopter checked
 * evictions against the record's names only, and the evicted member kept
 * the adopted key).  Without the eviction the SA is adopted. */
static void
test_cluster_adopt_departed_evicted (void)
{
  for (int evict = 0; evict < 2; evict++) {
    mcsec_ctl_t *x, *y;
    Sim *s = sim_sealing_pair (&x, &y);
    Peer *rx1, *rx2, *rx3;
    guint32 spi;
    guint mark;

    sim_pair_quiet (s, x, y);
    rx1 = peer_new (s, "rx1", "video", FALSE);
    rx2 = peer_new (s, "rx2", "video", FALSE);
    sim_run (s, 300);
    spi = newest_spi (rx1);
    CHECK (spi != 0 && newest_spi (rx2) == spi);
    peer_leave (rx2); /* no rekey: rx2 keeps the SA */
    sim_run (s, 300);
    rx3 = peer_new (s, "rx3", "video", FALSE);
    sim_run (s, 300); /* no rekey; the record written again, without rx2 */
    CHECK (newest_spi (rx1) == spi && newest_spi (rx3) == spi);
    /* Y dies; before X leads, rx2 is evicted at X */
    mark = s->log->len;
    sim_drop_connections (s);
    mcsec_ctl_free (y);
    s->core = x;
    if (evict)
      CHECK (admin_says (s, "evict video rx2", "\"ok\":true"));
    mcsec_ctl_set_lease_deadline (x, G_MAXINT64);
    lead (s, "video");
    run_actions (s);
    sim_run (s, 300);
    if (evict) {
      CHECK (!logged_since (s, mark, "adopt group=video"));
      CHECK (newest_spi (rx1) != spi && newest_spi (rx3) == newest_spi (rx1));
      CHECK (!holds_spi (rx2, newest_spi (rx1)));
    } else {
      gchar *line =
          g_strdup_printf ("adopt group=video spi=0x%08x holders=2", spi);
      CHECK (logged_since (s, mark, line));
      g_free (line);
      CHECK (newest_spi (rx1) == spi);
    }
    sim_free (s);
  }
}

/* The last member leaves (no rekey: nobody to send it to): the departed
 * member holds the SA, so its record goes and a new leader makes a new SA
 * (found by the cluster test: a record listing departed members was
 * adopted, its SA used again while they held it). */
static void
test_cluster_adopt_stale (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  const char *key = "sealed/sa/video";
  GBytes *v;
  guint mark;

  sim_run (s, 300);
  CHECK (newest_spi (rx1) != 0);
  v = s->store->get (s->store, key, NULL);
  CHECK (v != NULL);
  if (v)
    g_bytes_unref (v);
  peer_leave (rx1);
  sim_run (s, 100);
  v = s->store->get (s->store, key, NULL);
  CHECK (v == NULL);
  if (v)
    g_bytes_unref (v);
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  CHECK (!logged_since (s, mark, "adopt group=video"));
  CHECK (logged_since (s, mark, "adopted-spi=0x00000000"));
  sim_free (s);
}

/* A reload at the new leader that no longer lets a holder send, before
 * it came back: it is evicted like a connected member (its Sender-IDs no
 * longer listed, the SA not given to anyone again). */
static void
test_cluster_adopt_reload (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  Peer *rx1 = peer_new (s, "rx1", "video", FALSE);
  GPtrArray *groups;
  guint32 spi, id;
  guint mark;

  sim_run (s, 300);
  spi = newest_spi (rx1);
  id = sender_id (cam1);
  CHECK (spi != 0 && id != 0);
  cam1->reconnect = FALSE; /* not back before the reload */
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  CHECK (logged_since (s, mark, "adopt group=video"));
  sim_run (s, 350); /* rx1 back */
  CHECK (newest_spi (rx1) == spi && lists_sender (rx1, id));
  groups = make_groups ();
  set_list (&config_of (groups, "video")->senders, "cam2");
  set_list (&config_of (groups, "video")->receivers, "rx1;cam1");
  sim_reload (s, groups);
  CHECK (logged_since (s, mark,
                       "evicted group=video identity=cam1 connected=no "
                       "durable=no by=reload why=\"no longer allowed to "
                       "send\""));
  sim_run (s, 300);
  CHECK (newest_spi (rx1) != spi && !lists_sender (rx1, id));
  sim_free (s);
}

/* An SA made under another Sender-ID layout is never adopted: Sender-IDs
 * of the old and the new layout would repeat each other's nonces (a
 * restart-only setting, changed one controller at a time). */
static void
test_cluster_adopt_layout (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *cam1 = peer_new (s, "cam1", "video", TRUE);
  guint mark;

  sim_run (s, 300);
  CHECK (newest_spi (cam1) != 0);
  mcsec_ctl_free (x);
  groups_spi_per_sender = TRUE; /* X restarted with spi-per-sender */
  sim_start_core (s);
  x = s->core;
  s->core = y;
  mark = s->log->len;
  sim_fail_over (s, y, x, "video");
  CHECK (logged_since (s, mark,
                       "why=\"the group's sender-id-bits or spi-per-sender "
                       "changed\""));
  CHECK (logged_since (s, mark, "adopted-spi=0x00000000"));
  groups_spi_per_sender = FALSE;
  sim_free (s);
}

/* A new leader numbers the group's updates above everything the previous
 * leader issued, though the previous leader reserved a later block of the
 * shared counter; it hands out new SPIs, and its SA waits for the rejoin
 * window. */
static void
test_cluster_new_leader (void)
{
  mcsec_ctl_store_t *store = mcsec_ctl_memory_store_new ();
  Sim *s = sim_new_on (store, TRUE, 0); /* X: the lower block */
  mcsec_ctl_t *x = s->core, *y;
  Peer *cam, *rx1;
  guint64 seq_y;
  guint32 spi_y;

  sim_start_core (s); /* Y: the next block */
  y = s->core;
  lead (s, "video");
  mcsec_ctl_set_lease_deadline (y, G_MAXINT64);
  cam = peer_new (s, "cam1", "video", TRUE);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  seq_y = mcsec_member_last_seq (rx1->m);
  spi_y = newest_spi (rx1);
  /* Y dies; X takes the group */
  sim_fail_over (s, y, x, "video");
  sim_run (s, 400);
  CHECK (logged (s, "lead group=video rejoin-window-ms=500"));
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_last_seq (rx1->m) > seq_y);
  CHECK (newest_spi (rx1) != spi_y && newest_spi (cam) == newest_spi (rx1));
  CHECK (holds_spi (rx1, spi_y)); /* still held: the stream goes on */
  sim_free (s);
}

/* An eviction recorded by another controller: the leader evicts the
 * member it holds and rekeys; an unevict lets it back. */
static void
test_cluster_eviction_elsewhere (void)
{
  Sim *s = sim_new_on (mcsec_ctl_memory_store_new (), TRUE, 0);
  Peer *rx1, *rx2, *again;
  guint32 before;

  lead (s, "video");
  mcsec_ctl_set_lease_deadline (s->core, G_MAXINT64);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  rx2 = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 300);
  before = newest_spi (rx1);
  mcsec_ctl_eviction_changed (s->core, "video", "rx2", TRUE, s->now);
  run_actions (s);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx2->m) == MCSEC_MEMBER_EVICTED);
  CHECK (newest_spi (rx1) != before && !holds_spi (rx2, newest_spi (rx1)));
  CHECK (logged (s, "evicted group=video identity=rx2 connected=yes"));
  mcsec_ctl_eviction_changed (s->core, "video", "rx2", FALSE, s->now);
  again = peer_new (s, "rx2", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (again->m) == MCSEC_MEMBER_JOINED);
  /* an unknown group or the same news twice change nothing */
  mcsec_ctl_eviction_changed (s->core, "nope", "rx1", TRUE, s->now);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  sim_free (s);
}

/* Two controllers read the same counter and both reserve the next block:
 * the one that loses (a conflict) reads again and takes the block after. */
static void
test_counter_conflict (void)
{
  mcsec_ctl_store_t *store = mcsec_ctl_memory_store_new ();
  Sim *s;
  Peer *rx1;
  GBytes *v;

  mcsec_ctl_memory_store_conflict (store, "counter/update-seq", 4096);
  s = sim_new_on (store, FALSE, 0);
  rx1 = peer_new (s, "rx1", "video", FALSE);
  sim_run (s, 300);
  CHECK (mcsec_member_state (rx1->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_last_seq (rx1->m) >= 4096);
  v = store->get (store, "counter/update-seq", NULL);
  CHECK (v && g_bytes_get_size (v) == 4 &&
         memcmp (g_bytes_get_data (v, NULL), "8192", 4) == 0);
  if (v)
    g_bytes_unref (v);
  sim_free (s);
}

/* Y leads tv, the key tree group, on a store that seals: rx1..rx3 joined,
 * rx4 joined and left (the log holds a snapshot and changes). */
static Sim *
sim_tree_pair (mcsec_ctl_t **x, mcsec_ctl_t **y, Peer **rx)
{
  Sim *s = sim_sealing_pair (x, y);
  Peer *rx4;
  lead (s, "tv");
  for (int i = 0; i < 3; i++) {
    gchar *id = g_strdup_printf ("rx%d", i + 1);
    rx[i] = peer_new (s, id, "tv", FALSE);
    g_free (id);
    sim_run (s, 200); /* a commit each */
  }
  rx4 = peer_new (s, "rx4", "tv", FALSE);
  sim_run (s, 300);
  peer_leave (rx4);
  sim_run (s, 300);
  return s;
}

/* A key tree group's failover (docs/cluster.md, "Key trees in etcd"): the
 * next leader adopts the tree with the SA; the receivers rejoin without a
 * commit and keep SA and path; the next commit (a newcomer's) opens with
 * the keys they held from the dead leader, also for one that has not
 * rejoined (the channel's numbers go on); that one, still missing when the
 * rejoin window ends, leaves with a commit it cannot open. */
static void
test_cluster_adopt_tree (void)
{
  mcsec_ctl_t *x, *y;
  Peer *rx[3], *rx5;
  Sim *s = sim_tree_pair (&x, &y, rx);
  guint32 spi, spi2;
  guint mark, mark2;
  gchar *line;

  spi = newest_spi (rx[0]);
  CHECK (spi != 0 && newest_spi (rx[1]) == spi && newest_spi (rx[2]) == spi);
  rx[2]->reconnect = FALSE; /* gone with the leader */
  mark = s->log->len;
  sim_fail_over (s, y, x, "tv");
  line = g_strdup_printf ("lead group=tv rejoin-window-ms=500 evicted=0 "
                          "adopted-spi=0x%08x",
                          spi);
  CHECK (logged_since (s, mark, line));
  g_free (line);
  rx[1]->reconnect_at = s->now + 450; /* back late in the window */
  sim_run (s, 350);                   /* rx1 reconnects and rejoins */
  CHECK (mcsec_member_state (rx[0]->m) == MCSEC_MEMBER_JOINED);
  CHECK (!logged_since (s, mark, "rekey-sent group=tv"));
  CHECK (newest_spi (rx[0]) == spi && newest_spi (rx[1]) == spi);
  /* an eviction inside the window commits at once: rx2, not back yet,
   * follows it on the channel (the rekey numbers go on from the dead
   * leader's: with a gap it would wait for the missing ones) */
  CHECK (admin_says (s, "evict tv rx4", "\"ok\":true"));
  sim_run (s, 20);
  spi2 = newest_spi (rx[0]);
  CHECK (spi2 != spi && holds_spi (rx[1], spi2));
  sim_run (s, 100); /* rx2 rejoins */
  CHECK (mcsec_member_state (rx[1]->m) == MCSEC_MEMBER_JOINED);
  /* a newcomer: its commit waits for the window's end (rx3's leaf, still
   * waiting, may be a member that left unseen) */
  mark2 = s->log->len;
  rx5 = peer_new (s, "rx5", "tv", FALSE);
  sim_run (s, 50);
  CHECK (newest_spi (rx5) == 0);
  CHECK (!logged_since (s, mark2, "rekey-sent group=tv"));
  /* the window ends: rx3 leaves, one commit for that and rx5, wrapped
   * under the keys rx1 and rx2 held from the dead leader; rx3 (listening
   * on the channel) cannot open it */
  sim_run (s, 400);
  CHECK (logged_since (s, mark, "holders-missing group=tv missing=1"));
  spi = spi2;
  spi2 = newest_spi (rx5);
  CHECK (spi2 != 0 && spi2 != spi);
  CHECK (newest_spi (rx[0]) == spi2 && newest_spi (rx[1]) == spi2);
  CHECK (!holds_spi (rx[2], spi2));
  sim_free (s);
}

/* The tree is adopted only whole and only with the SA: an entry missing
 * from the log (a gap), an eviction while nobody led, or a member that a
 * reload no longer lists, and the next leader makes a new tree and SA; a
 * log one commit short whose last entry names the SA's SPI (an older
 * generation's SPI come round again) gives another group key: refused. */
static void
test_cluster_adopt_tree_refused (void)
{
  for (int k = 0; k < 4; k++) {
    mcsec_ctl_t *x, *y;
    Peer *rx[3];
    Sim *s = sim_tree_pair (&x, &y, rx);
    guint32 spi = newest_spi (rx[0]);
    guint mark;
    if (k == 0) {
      /* the log's second entry gone */
      GPtrArray *keys = s->store->list (s->store, "sealed/tree/tv/", NULL);
      GBytes *none = NULL;
      REQUIRE (keys && keys->len >= 3);
      REQUIRE (s->store->put (s->store, (const char *const *)&keys->pdata[1],
                              &none, 1, NULL));
      g_ptr_array_unref (keys);
    } else if (k == 3) {
      /* the last entry gone, the one before it naming the SA's SPI */
      GPtrArray *keys = s->store->list (s->store, "sealed/tree/tv/", NULL);
      GBytes *none = NULL, *v;
      gsize len;
      guint8 *d;
      REQUIRE (keys && keys->len >= 3);
      REQUIRE (s->store->put (s->store,
                              (const char *const *)&keys->pdata[keys->len - 1],
                              &none, 1, NULL));
      v = s->store->get (s->store, keys->pdata[keys->len - 2], NULL);
      REQUIRE (v);
      {
        const guint8 *at = g_bytes_get_data (v, &len);
        d = g_memdup2 (at, len);
      }
      d[2] = (guint8)(spi >> 24);
      d[3] = (guint8)(spi >> 16);
      d[4] = (guint8)(spi >> 8);
      d[5] = (guint8)spi;
      g_bytes_unref (v);
      v = g_bytes_new_take (d, len);
      REQUIRE (s->store->put (s->store,
                              (const char *const *)&keys->pdata[keys->len - 2],
                              &v, 1, NULL));
      g_bytes_unref (v);
      g_ptr_array_unref (keys);
    }
    mark = s->log->len;
    if (k == 1) {
      /* Y dies; rx3 is evicted at X before X leads */
      sim_drop_connections (s);
      mcsec_ctl_free (y);
      s->core = x;
      CHECK (admin_says (s, "evict tv rx3", "\"leading\":false"));
      mcsec_ctl_set_lease_deadline (x, G_MAXINT64);
      lead (s, "tv");
      run_actions (s);
    } else {
      sim_fail_over (s, y, x, "tv");
    }
    if (k == 2) {
      /* x's lists no longer name rx3 */
      GPtrArray *groups = make_groups ();
      set_list (&config_of (groups, "tv")->receivers, "rx1;rx2");
      sim_reload (s, groups);
      /* the reload came after the adoption: rx3's leaf leaves (with the
       * commit at the window's end) */
      sim_run (s, 600);
      CHECK (logged_since (s, mark, "adopt group=tv"));
      CHECK (newest_spi (rx[0]) != spi);
      CHECK (!holds_spi (rx[2], newest_spi (rx[0])));
    } else {
      CHECK (logged_since (s, mark,
                           k == 0   ? "why=\"key tree: no key tree"
                           : k == 3 ? "why=\"key tree: its group key does not"
                                    : "lead group=tv"));
      CHECK (!logged_since (s, mark, "adopt group=tv"));
      sim_run (s, 1000);
      CHECK (newest_spi (rx[0]) != spi && newest_spi (rx[0]) != 0);
      CHECK (newest_spi (rx[0]) == newest_spi (rx[1]));
    }
    sim_free (s);
  }
}

/* The member closes its connection (the controller sees it leave) but
 * goes on listening to the rekey channel with the keys it had. */
static void
leave_but_listen (Peer *p)
{
  p->reconnect = FALSE;
  mcsec_ctl_conn_lost (p->c, "left", p->sim->now);
  peer_gone (p);
  run_actions (p->sim);
}

/* Does p hold the SA of any rekey of tv logged since mark? */
static gboolean
holds_a_rekey_since (Sim *s, guint mark, Peer *p)
{
  for (guint i = mark; i < s->log->len; i++) {
    const char *l = s->log->pdata[i], *q;
    if (g_str_has_prefix (l, "rekey group=tv") &&
        (q = strstr (l, "spi=0x")) != NULL &&
        holds_spi (p, (guint32)g_ascii_strtoull (q + 6, NULL, 16)))
      return TRUE;
  }
  return FALSE;
}

/* A leave the leader had not committed yet when the group changed leader
 * (it died within the batch interval; it was the last member, so nothing
 * committed, and died seconds later; it handed the group over) is not
 * lost: the next leader's keys never reach the member that left, which
 * listens on.  (The leave deletes the SA record; the commit writes it
 * again.)  All three failed on the code before: the departed leaf was
 * adopted and the newcomer's commit wrapped under its keys. */
static void
test_cluster_adopt_tree_departed (void)
{
  for (int k = 0; k < 3; k++) {
    mcsec_ctl_t *x, *y;
    Peer *rx[3], *rx5;
    Sim *s = sim_tree_pair (&x, &y, rx);
    guint mark;
    if (k == 1) {
      peer_leave (rx[0]);
      sim_run (s, 200);
      peer_leave (rx[1]);
      sim_run (s, 200);
    }
    leave_but_listen (rx[2]);
    sim_run (s, k == 1 ? 5000 : 20); /* the batch interval is 50 ms */
    mark = s->log->len;
    if (k == 2) {
      mcsec_ctl_group_t *g = group_named (s, "tv");
      CHECK (mcsec_ctl_group_save (g, s->now));
      mcsec_ctl_group_follow (g, "x:1", FALSE, s->now);
      run_actions (s);
      sim_drop_connections (s);
      s->core = x;
      mcsec_ctl_set_lease_deadline (x, G_MAXINT64);
      lead (s, "tv");
      run_actions (s);
    } else {
      sim_fail_over (s, y, x, "tv");
    }
    sim_run (s, 350);
    rx5 = peer_new (s, "rx5", "tv", FALSE);
    sim_run (s, 300); /* past the window's end */
    CHECK (newest_spi (rx5) != 0);
    CHECK (!holds_spi (rx[2], newest_spi (rx5)));
    CHECK (!holds_a_rekey_since (s, mark, rx[2]));
    if (k == 0) /* not after a commit of its leave (k == 2) */
      CHECK (!logged_since (s, mark, "adopt group=tv"));
    if (k == 2) {
      CHECK (logged_since (s, mark, "adopt group=tv"));
      mcsec_ctl_free (y);
    }
    sim_free (s);
  }
}

/* A sender of the adopted tree that has not rejoined never follows the
 * channel to a key made after the failover: its leaf leaves at the
 * adoption (with the next commit), so no newcomer under a new key can
 * share its Sender-ID while it goes on sending.  Checked with the commit
 * at the window's end (it does not come back; on the code before, the
 * holders' rekey came first, with its leaf in the tree), a reload that no
 * longer lets it send, and an eviction's commit inside the window. */
static void
test_cluster_adopt_tree_senders (void)
{
  for (int k = 0; k < 3; k++) {
    mcsec_ctl_t *x, *y;
    Sim *s = sim_sealing_pair (&x, &y);
    Peer *cam1, *rx1;
    guint mark;
    lead (s, "tv");
    cam1 = peer_new (s, "cam1", "tv", TRUE);
    sim_run (s, 200);
    rx1 = peer_new (s, "rx1", "tv", FALSE);
    sim_run (s, 200);
    cam1->reconnect = FALSE;
    mark = s->log->len;
    sim_fail_over (s, y, x, "tv");
    if (k == 0) {
      sim_run (s, 1200);
      CHECK (logged_since (s, mark, "holders-missing group=tv missing=1"));
    } else if (k == 2) {
      sim_run (s, 300); /* rx1 is back */
      CHECK (admin_says (s, "evict tv rx2", "\"ok\":true"));
      sim_run (s, 50); /* inside the window */
    } else {
      GPtrArray *groups = make_groups ();
      sim_run (s, 300);
      set_list (&config_of (groups, "tv")->senders, "cam2");
      set_list (&config_of (groups, "tv")->receivers, "rx1;rx2;cam1");
      sim_reload (s, groups);
      sim_run (s, 400); /* its commit: at the window's end */
    }
    CHECK (logged_since (s, mark, "adopt group=tv"));
    CHECK (logged_since (s, mark, "rekey group=tv"));
    CHECK (!holds_a_rekey_since (s, mark, cam1));
    CHECK (newest_spi (rx1) != 0 && !holds_spi (cam1, newest_spi (rx1)));
    sim_free (s);
  }
}

/* etcd refuses every put when the only member leaves: the SA record's
 * deletion fails; it is tried again every second (no spin: the next
 * deadline is ahead) and lands once etcd takes puts again, so a later
 * failover adopts nothing the member that left could follow (on the code
 * before, nothing tried again and the next leader's key reached it). */
static void
test_cluster_adopt_tree_store_fails (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *rx1, *rx5;
  gchar *key;
  GBytes *v;

  lead (s, "tv");
  rx1 = peer_new (s, "rx1", "tv", FALSE);
  sim_run (s, 300);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  leave_but_listen (rx1);
  sim_run (s, 200);
  key = g_strdup ("sealed/sa/tv");
  v = s->store->get (s->store, key, NULL);
  CHECK (v != NULL); /* not deleted yet */
  if (v)
    g_bytes_unref (v);
  CHECK (mcsec_ctl_tick (s->core, s->now) > s->now);
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 1500);
  v = s->store->get (s->store, key, NULL);
  CHECK (v == NULL); /* deleted: nothing to adopt */
  if (v)
    g_bytes_unref (v);
  g_free (key);
  sim_fail_over (s, y, x, "tv");
  rx5 = peer_new (s, "rx5", "tv", FALSE);
  sim_run (s, 1000);
  CHECK (newest_spi (rx5) != 0);
  CHECK (!holds_spi (rx1, newest_spi (rx5)));
  sim_free (s);
}

/* A deletion refused after a leave, then the leave's commit written: the
 * record it wrote stays (on the code before, the deletion tried again
 * took it away, and a quiet group could not be adopted until its next
 * commit). */
static void
test_cluster_adopt_tree_drop_then_commit (void)
{
  mcsec_ctl_t *x, *y;
  Sim *s = sim_sealing_pair (&x, &y);
  Peer *rx1, *rx2;
  GBytes *v;

  lead (s, "tv");
  rx1 = peer_new (s, "rx1", "tv", FALSE);
  rx2 = peer_new (s, "rx2", "tv", FALSE);
  sim_run (s, 300);
  mcsec_ctl_memory_store_fail_puts (s->store, 0);
  peer_leave (rx2);
  sim_run (s, 10);
  mcsec_ctl_memory_store_fail_puts (s->store, -1);
  sim_run (s, 1500);
  v = s->store->get (s->store, "sealed/sa/tv", NULL);
  CHECK (v != NULL);
  if (v)
    g_bytes_unref (v);
  CHECK (newest_spi (rx1) != 0);
  sim_free (s);
}

/* Inside an adopted tree's rejoin window only an eviction commits: an
 * administrator's rekey waits for the window's end, and a newcomer is
 * placed in the tree only then, so no commit in the window carries a key
 * of it to a waiting leaf (whose member may have left unseen: rx3, which
 * listens on).  On the code before, the rekey committed at once with the
 * newcomer's join, and rx3 held both. */
static void
test_cluster_adopt_tree_window (void)
{
  mcsec_ctl_t *x, *y;
  Peer *rx[3], *rx5;
  Sim *s = sim_tree_pair (&x, &y, rx);
  guint mark;

  rx[2]->reconnect = FALSE; /* left with the leader, listens on */
  sim_fail_over (s, y, x, "tv");
  sim_run (s, 350);
  mark = s->log->len;
  rx5 = peer_new (s, "rx5", "tv", FALSE);
  sim_run (s, 20);
  CHECK (admin_says (s, "rekey tv", "\"ok\":true"));
  sim_run (s, 20);
  CHECK (newest_spi (rx5) == 0);
  CHECK (!holds_a_rekey_since (s, mark, rx[2]));
  /* an eviction commits at once, without the newcomer */
  CHECK (admin_says (s, "evict tv rx4", "\"ok\":true"));
  sim_run (s, 20);
  CHECK (logged_since (s, mark, "rekey group=tv reason=evict"));
  CHECK (newest_spi (rx5) == 0);
  /* the window's end: rx3 out, rx5 in, one commit */
  sim_run (s, 300);
  CHECK (logged_since (s, mark, "holders-missing group=tv missing=1"));
  CHECK (newest_spi (rx5) != 0 && newest_spi (rx[0]) == newest_spi (rx5));
  CHECK (!holds_spi (rx[2], newest_spi (rx5)));
  sim_free (s);
}

/* Relaying (docs/cluster.md "Relaying"): a follower that relays hands a
 * JOIN for a group led elsewhere, and every byte the member sent after it,
 * to the daemon (a RELAY action naming the leader) instead of refusing
 * it; the member is not told anything and the leader, fed those bytes
 * under the identity the follower saw, serves it.  What a follower checks
 * itself (evictions, access lists) it still refuses, and while nobody can
 * lead it answers unavailable. */
static void
test_cluster_relay (void)
{
  Sim *s = sim_new_on (mcsec_ctl_memory_store_new (), TRUE, 0);
  mcsec_ctl_t *x, *y;
  static const guint8 ping[] = {0, 0, 0, 4, 1, MCSEC_MIKE_PING, 0, 0};
  const uint8_t *d;
  gsize n, rn;
  const guint8 *r;
  guint8 *sent;
  Peer *p, *q, *e;
  mcsec_mike_msg_t *msg = g_new0 (mcsec_mike_msg_t, 1);

  mcsec_ctl_free (s->core);
  s->relay = TRUE;
  sim_start_core (s);
  x = s->core;
  s->relay = FALSE;
  sim_start_core (s);
  y = s->core;
  lead (s, "video");
  mcsec_ctl_set_lease_deadline (y, G_MAXINT64);
  s->core = x;
  mcsec_ctl_group_follow (group_named (s, "video"), "10.0.0.2:7700", FALSE,
                          s->now);
  run_actions (s);

  /* the JOIN and a PING in one read: both go to the leader, in order */
  p = peer_new (s, "rx1", "video", FALSE);
  n = mcsec_member_output (p->m, &d);
  CHECK (n > 0);
  sent = g_malloc (n + sizeof ping);
  memcpy (sent, d, n);
  memcpy (sent + n, ping, sizeof ping);
  mcsec_member_written (p->m, n);
  mcsec_ctl_conn_input (p->c, sent, n + sizeof ping, s->now);
  run_actions (s);
  CHECK (p->c == NULL && s->relayed != NULL);
  CHECK (g_strcmp0 (s->relayed_to, "10.0.0.2:7700") == 0);
  r = g_bytes_get_data (s->relayed, &rn);
  CHECK (rn == n + sizeof ping && memcmp (r, sent, rn) == 0);
  CHECK (mcsec_mike_parse (r, n, msg) == MCSEC_OK &&
         msg->type == MCSEC_MIKE_JOIN);
  CHECK (logged (s, "relayed peer=sim:1 identity=rx1 group=video "
                    "leader=10.0.0.2:7700"));
  CHECK (!logged (s, "reason=not-leader"));
  CHECK (mcsec_member_state (p->m) != MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (p->m) != MCSEC_MEMBER_DISCONNECTED);
  CHECK (admin_says (s, "stats", "\"relayed\":1,"));

  /* the leader, fed those bytes under the identity the follower saw */
  s->core = y;
  p->c = mcsec_ctl_conn_new (y, "c1>sim:1", "rx1", s->now, 0);
  mcsec_ctl_conn_input (p->c, r, rn, s->now);
  run_actions (s);
  sim_run (s, 300);
  CHECK (mcsec_member_state (p->m) == MCSEC_MEMBER_JOINED);
  CHECK (newest_spi (p) != 0);

  /* a member that came over a relay link is never relayed on (two
   * controllers that each think the other leads would pass it round):
   * not-leader, as without relaying */
  s->core = x;
  g_clear_pointer (&s->relayed, g_bytes_unref);
  q = peer_new (s, "rx3", "video", FALSE);
  mcsec_ctl_conn_set_relayed (q->c);
  pump (s);
  CHECK (s->relayed == NULL);
  CHECK (logged (s, "identity=rx3 group=video reason=not-leader "
                    "text=\"leader=10.0.0.2:7700\""));
  CHECK (mcsec_member_state (q->m) != MCSEC_MEMBER_REFUSED); /* not final */

  /* the follower still refuses what it can judge itself */
  q = peer_new (s, "stranger", "video", FALSE);
  pump (s);
  CHECK (q->c == NULL && q->closes == 1);
  CHECK (logged (s, "identity=stranger group=- reason=not-authorised"));
  CHECK (admin_says (s, "evict video rx2", "\"ok\":true"));
  e = peer_new (s, "rx2", "video", FALSE);
  pump (s);
  CHECK (logged (s, "identity=rx2 group=video reason=not-authorised "
                    "text=\"evicted by an administrator\""));
  CHECK (mcsec_member_state (e->m) == MCSEC_MEMBER_REFUSED);
  /* nobody can lead: unavailable, relayed nowhere */
  g_clear_pointer (&s->relayed, g_bytes_unref);
  mcsec_ctl_group_follow (group_named (s, "video"), NULL, TRUE, s->now);
  q = peer_new (s, "rx4", "video", FALSE);
  pump (s);
  CHECK (s->relayed == NULL);
  CHECK (logged (s, "identity=rx4 group=video reason=unavailable"));

  g_free (sent);
  g_free (msg);
  /* rx1's connection is y's: it goes with y */
  mcsec_ctl_conn_free (p->c);
  p->c = NULL;
  mcsec_ctl_free (y);
  sim_free (s);
}

int
main (void)
{
  test_cluster_fencing ();
  test_cluster_relay ();
  test_cluster_new_leader ();
  test_cluster_adopt ();
  test_cluster_adopt_refused ();
  test_cluster_adopt_layout ();
  test_cluster_adopt_stale ();
  test_cluster_adopt_late_sender ();
  test_cluster_adopt_departed_evicted ();
  test_cluster_adopt_reload ();
  test_cluster_eviction_elsewhere ();
  test_cluster_adopt_tree ();
  test_cluster_adopt_tree_refused ();
  test_cluster_adopt_tree_departed ();
  test_cluster_adopt_tree_senders ();
  test_cluster_adopt_tree_store_fails ();
  test_cluster_adopt_tree_window ();
  test_cluster_adopt_tree_drop_then_commit ();
  test_counter_conflict ();
  return test_done ("test-ctl-cluster");
}
