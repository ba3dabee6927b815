/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-tree-seed: the leader of a simulated key tree group of N members,
 * for bench/bench-tree-failover.sh (a 1,048,576-member group's failover,
 * measured; docs/performance.md).  It is a controller of the cluster
 * without sockets: the daemon's own configuration loader, cluster (lease,
 * campaign, fencing, the etcd store sealing under the cluster key) and
 * I/O-free core, given N members through the core's connection interface
 * instead of TLS (one process cannot hold 1,000,000 TLS connections, and
 * their handshakes would take the better part of an hour).  Each member
 * is a connection whose identity is PREFIXk (k = 0 .. N-1) and sends the
 * JOIN a receiver's state machine sends, then a PING every 2 s; what the
 * core writes to them and to the rekey channel is counted and dropped.
 * The key tree, its commit, its snapshot in etcd and the SA record are
 * the ones mcsec-controller makes: a controller that takes the group over
 * reads what a real leader would have written.
 *
 *   bench-tree-seed CONFIG GROUP N PREFIX
 *
 * Members join SEED_BATCH at a time, each batch committed before the next
 * (the batch interval between them), as members arriving over a while
 * would be.  Prints "seeded ..." (time, CPU, commits, the longest loop
 * turn, etcd transactions, the cost of a PING, its memory) once every
 * member is in the tree and the tree in etcd, then keeps its lease and
 * pings its members until it is killed (the bench SIGKILLs it).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cluster.h"
#include "config.h"
#include "store-etcd.h"

#include <mcsec/mcsec-mike.h>

/* members joined per commit (the batch interval passes between them) */
#define SEED_BATCH 8192

/* The one simulated leader (a bench program: one of everything). */
static struct {
  const char *group_name;
  gchar *in_group; /* "group=NAME ": the group's log lines */
  CtlCluster *cl;
  mcsec_ctl_t *core;
  GPtrArray *conns; /* the members' connections */
  guint8 ping[64];  /* a member's PING frame */
  gsize ping_len;
  gint64 ping_round;      /* when the members ping next */
  guint64 commit_members; /* members= of the last rekey-sent */
  guint64 commits;
  gint64 longest_turn_ms;
  guint64 out_bytes, channel_bytes;
  guint64 pings, ping_us; /* PINGs fed to the core, and the time they took */
  gboolean failed;
} seed;

static gint64
mono_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

static double
cpu_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The cluster's log lines (to stderr, with the monotonic ms). */
static void G_GNUC_PRINTF (2, 3)
    log_event (const char *event, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "bench-tree-seed: %" G_GINT64_FORMAT " event=%s ",
           mono_ms (), event);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

static guint64
field (const char *text, const char *name)
{
  const char *at = strstr (text, name);
  return at ? g_ascii_strtoull (at + strlen (name), NULL, 10) : 0;
}

/* What the core asks for: output to members and the channel is counted
 * and dropped; the log is read for the group's commits and errors. */
static void
run_actions (mcsec_ctl_t *core, gint64 now)
{
  mcsec_ctl_action_t a;

  while (mcsec_ctl_next_action (core, &a)) {
    switch (a.type) {
    case MCSEC_CTL_ACTION_WRITE: {
      const guint8 *d;
      gsize n = mcsec_ctl_conn_output (a.conn, &d);
      seed.out_bytes += n;
      mcsec_ctl_conn_written (a.conn, n, now);
      break;
    }
    case MCSEC_CTL_ACTION_CLOSE:
      /* the core ended a member (it should not: they ping) */
      fprintf (stderr, "bench-tree-seed: the controller closed %s\n",
               mcsec_ctl_conn_identity (a.conn));
      seed.failed = TRUE;
      break;
    case MCSEC_CTL_ACTION_RELAY: /* it leads: it relays nothing */
      fprintf (stderr, "bench-tree-seed: relayed %s\n",
               mcsec_ctl_conn_identity (a.conn));
      seed.failed = TRUE;
      break;
    case MCSEC_CTL_ACTION_CHANNEL: {
      gsize len;
      (void)g_bytes_get_data (a.data, &len);
      seed.channel_bytes += len;
      mcsec_ctl_channel_sent (a.group, len, NULL);
      break;
    }
    case MCSEC_CTL_ACTION_LOG:
      if (strstr (a.text, seed.in_group) == NULL)
        break;
      if (strcmp (a.event, "rekey-sent") == 0) {
        seed.commit_members = field (a.text, " members=");
        seed.commits++;
        fprintf (stderr, "bench-tree-seed: %" G_GINT64_FORMAT " event=%s %s\n",
                 mono_ms (), a.event, a.text);
      } else if (strcmp (a.event, "error") == 0 ||
                 strcmp (a.event, "step-down") == 0 ||
                 strcmp (a.event, "lease-expired") == 0) {
        fprintf (stderr, "bench-tree-seed: event=%s %s\n", a.event, a.text);
        seed.failed = TRUE;
      }
      break;
    }
    mcsec_ctl_action_clear (&a);
  }
}

static mcsec_ctl_group_t *
find_group (mcsec_ctl_t *core)
{
  for (guint i = 0; i < mcsec_ctl_n_groups (core); i++) {
    mcsec_ctl_group_t *g = mcsec_ctl_group_nth (core, i);
    if (strcmp (mcsec_ctl_group_config (g)->name, seed.group_name) == 0)
      return g;
  }
  return NULL;
}

/* A frame as a receiver's state machine sends it (member.c). */
static gsize
frame (guint8 *buf, gsize size, mcsec_mike_type_t type)
{
  mcsec_mike_builder_t b;
  gsize len = 0;
  mcsec_mike_begin (&b, buf, size, type);
  if (type == MCSEC_MIKE_JOIN) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, seed.group_name);
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
  }
  if (mcsec_mike_finish (&b, &len) != MCSEC_OK)
    return 0;
  return len;
}

/* The members' PINGs: every one every 2 s (before the core's turn, so that
 * a long commit does not make them look silent to it). */
static void
ping_all (void)
{
  gint64 now = mono_ms (), t0;
  if (now < seed.ping_round)
    return;
  ctl_cluster_sync_deadline (seed.cl);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < seed.conns->len; i++)
    mcsec_ctl_conn_input (seed.conns->pdata[i], seed.ping, seed.ping_len, now);
  seed.ping_round = now + MCSEC_MIKE_PING_MS;
  run_actions (seed.core, now); /* the PONGs written */
  seed.ping_us += (guint64)(g_get_monotonic_time () - t0);
  seed.pings += seed.conns->len;
}

static long
rss_kb (const char *what)
{
  gchar *s = NULL;
  long kb = -1;
  if (g_file_get_contents ("/proc/self/status", &s, NULL, NULL)) {
    const char *at = strstr (s, what);
    if (at)
      kb = strtol (at + strlen (what), NULL, 10);
  }
  g_free (s);
  return kb;
}

/* The daemon's turn: the cluster first (the lease's deadline), then the
 * core.  A turn over 500 ms is reported (the lease's margin is TTL - 200
 * ms after the last keepalive's send). */
static gint64
turn (void)
{
  gint64 t0 = mono_ms (), t1, t2;
  gint64 next = ctl_cluster_turn (seed.cl, t0);
  t1 = mono_ms ();
  ctl_cluster_sync_deadline (seed.cl);
  next = MIN (next, mcsec_ctl_tick (seed.core, t1));
  run_actions (seed.core, mono_ms ());
  t2 = mono_ms ();
  seed.longest_turn_ms = MAX (seed.longest_turn_ms, t2 - t0);
  if (t2 - t0 > 500)
    fprintf (stderr,
             "bench-tree-seed: a long turn: cluster %" G_GINT64_FORMAT
             " ms, core %" G_GINT64_FORMAT " ms (members %u)\n",
             t1 - t0, t2 - t1,
             mcsec_ctl_group_members (find_group (seed.core)));
  return next;
}

/* The loop as the daemon runs it (pings, turns) until `until` says so,
 * `ms` at most; FALSE when something failed. */
static gboolean
run_while (gboolean (*until) (guint64), guint64 arg, gint64 ms)
{
  gint64 deadline = mono_ms () + ms;
  while (!until (arg) && !seed.failed && mono_ms () < deadline) {
    gint64 next;
    ping_all ();
    next = MIN (turn (), mono_ms () + 20);
    if (next > mono_ms ())
      g_usleep ((gulong)(next - mono_ms ()) * 1000);
  }
  return !seed.failed;
}

static gboolean
committed (guint64 members)
{
  return seed.commit_members >= members;
}

static gboolean
never (guint64 unused)
{
  (void)unused;
  return FALSE;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  CtlConfig *cfg;
  SSL_CTX *ctx = NULL;
  EVP_PKEY *update_key = NULL;
  mcsec_ctl_store_t *store;
  mcsec_ctl_config_t cc = {0};
  mcsec_ctl_group_t *g;
  guint8 join[256];
  gsize join_len;
  guint64 n, writes0;
  gint64 t0, t1, deadline;
  double cpu0, cpu1;

  if (argc != 5 || (n = g_ascii_strtoull (argv[3], NULL, 10)) == 0) {
    fprintf (stderr, "usage: bench-tree-seed CONFIG GROUP N PREFIX\n");
    return 2;
  }
  seed.group_name = argv[2];
  seed.in_group = g_strdup_printf ("group=%s ", seed.group_name);
  signal (SIGPIPE, SIG_IGN);
  cfg = ctl_config_load (argv[1], NULL, &error);
  if (cfg == NULL || !ctl_config_credentials (cfg, &ctx, &update_key, &error))
    goto fail;
  if (cfg->etcd == NULL) {
    fprintf (stderr, "bench-tree-seed: %s has no [cluster]\n", argv[1]);
    return 2;
  }
  /* as mcsec-controller starts (its main) */
  seed.cl = ctl_cluster_new (cfg, log_event, &error);
  if (seed.cl == NULL ||
      !ctl_cluster_signing_key (seed.cl, &update_key, &error))
    goto fail;
  store = ctl_cluster_store (seed.cl);
  cc.cluster = TRUE;
  cc.store_seals = ctl_etcd_store_seals (store);
  cc.update_key = update_key;
  cc.rejoin_window_ms = cfg->rejoin_window_ms;
  cc.max_output = cfg->max_output;
  cc.repair_per_s = cfg->repair_per_s;
  cc.output_stall_ms = MCSEC_CTL_OUTPUT_STALL_MS_DEFAULT;
  seed.core = mcsec_ctl_new (&cc, store, g_ptr_array_ref (cfg->groups),
                             mono_ms (), &error);
  if (seed.core == NULL)
    goto fail;
  g_ptr_array_set_size (cfg->groups, 0);
  if (!ctl_cluster_attach (seed.cl, seed.core, mono_ms (), &error))
    goto fail;
  g = find_group (seed.core);
  if (g == NULL || mcsec_ctl_group_config (g)->channel == NULL) {
    fprintf (stderr, "bench-tree-seed: no key tree group %s\n",
             seed.group_name);
    return 2;
  }
  /* the group's leadership (the bench starts us before the others) */
  deadline = mono_ms () + 20000;
  while (!mcsec_ctl_group_leading (g) && mono_ms () < deadline) {
    turn ();
    g_usleep (10000);
  }
  if (!mcsec_ctl_group_leading (g)) {
    fprintf (stderr, "bench-tree-seed: did not win %s in 20 s\n",
             seed.group_name);
    return 1;
  }
  join_len = frame (join, sizeof join, MCSEC_MIKE_JOIN);
  seed.ping_len = frame (seed.ping, sizeof seed.ping, MCSEC_MIKE_PING);
  if (join_len == 0 || seed.ping_len == 0)
    return 1;
  seed.conns = g_ptr_array_sized_new ((guint)n);
  writes0 = ctl_etcd_store_writes (store);
  t0 = mono_ms ();
  cpu0 = cpu_s ();
  seed.ping_round = t0 + MCSEC_MIKE_PING_MS;
  for (guint64 k = 0; k < n && !seed.failed; k++) {
    gchar id[64], peer[32];
    gint64 now = mono_ms ();
    mcsec_ctl_conn_t *c;
    /* the lease's deadline as the daemon has it before it reads members'
     * bytes (a turn first): renewed by the lease thread meanwhile */
    if ((k & 255) == 0)
      ctl_cluster_sync_deadline (seed.cl);
    g_snprintf (id, sizeof id, "%s%" G_GUINT64_FORMAT, argv[4], k);
    g_snprintf (peer, sizeof peer, "sim:%" G_GUINT64_FORMAT, k);
    c = mcsec_ctl_conn_new (seed.core, peer, id, now, g_get_real_time ());
    mcsec_ctl_conn_input (c, join, join_len, now);
    g_ptr_array_add (seed.conns, c);
    /* committed before the next ones come: commits of SEED_BATCH members
     * write entries of changes under 1 MB, not the tree again each time
     * (an entry over 1 MB makes a new snapshot) */
    if ((k + 1) % SEED_BATCH == 0 || k + 1 == n)
      run_while (committed, k + 1, 600000);
  }
  t1 = mono_ms ();
  cpu1 = cpu_s ();
  if (seed.failed || seed.commit_members < n) {
    fprintf (stderr,
             "bench-tree-seed: no commit of %" G_GUINT64_FORMAT
             " members (the last had %" G_GUINT64_FORMAT ")\n",
             n, seed.commit_members);
    return 1;
  }
  printf ("seeded members=%" G_GUINT64_FORMAT " ms=%" G_GINT64_FORMAT
          " cpu-ms=%.0f commits=%" G_GUINT64_FORMAT
          " longest-turn-ms=%" G_GINT64_FORMAT " etcd-writes=%" G_GUINT64_FORMAT
          " member-bytes=%" G_GUINT64_FORMAT " channel-bytes=%" G_GUINT64_FORMAT
          " ping-us=%.2f rss-mb=%ld peak-mb=%ld\n",
          n, t1 - t0, (cpu1 - cpu0) * 1000, seed.commits, seed.longest_turn_ms,
          ctl_etcd_store_writes (store) - writes0, seed.out_bytes,
          seed.channel_bytes,
          seed.pings ? (double)seed.ping_us / (double)seed.pings : 0.0,
          rss_kb ("VmRSS:") / 1024, rss_kb ("VmHWM:") / 1024);
  fflush (stdout);
  /* a leader at work until the bench kills it */
  run_while (never, 0, G_MAXINT64 / 2);
  return 1;

fail:
  fprintf (stderr, "bench-tree-seed: %s\n", error ? error->message : "?");
  return 1;
}
