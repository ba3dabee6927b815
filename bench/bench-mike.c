/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-mike: the MIKE controller under load, on loopback.
 *  1. full TLS 1.3 registrations (mutual X.509, JOIN, WELCOME, first
 *     update) per second, the controller pinned to one core: wall rate and
 *     registrations per controller CPU second;
 *  2. rekey time for N = 10, 100, 1000 joined members: from the rekey
 *     request to the last member holding the new SA (then the activation
 *     delay passes and every sender switches), for a unicast group (one
 *     update per member) and a key tree group (one multicast rekey on the
 *     loopback interface, the members' copies fed from one socket here;
 *     N <= 100);
 *  3. join to first decrypted packet: a receiver process (mike-peer) joins
 *     a group a sender streams to; the time from its start to its first
 *     decrypted datagram, median of 5.
 * Members of 1. and 2. are simulated in this process: one non-blocking
 * TLS connection each, driven through the library's member state machine.
 *
 *   bench-mike TOOLS_DIR MIKE_PEER [--quick]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <glib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <mcsec/mcsec-mike.h>

#define MAX_IDS 1000
#define REKEYS 20 /* rekeys per group size: the controller's CPU per rekey */

static gchar *dir, *tools;
static guint ctl_port;
static GPid ctl_pid;
static SSL_CTX *ctx[MAX_IDS];
static int n_cpus;

static uint64_t
now_us (void)
{
  return (uint64_t)g_get_monotonic_time ();
}

static guint
free_port (int type)
{
  struct sockaddr_in a = {0};
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, type, 0);
  guint p;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname (fd, (struct sockaddr *)&a, &len) != 0)
    abort ();
  p = ntohs (a.sin_port);
  close (fd);
  return p;
}

static void
pin_core0 (gpointer data)
{
  cpu_set_t set;
  (void)data;
  CPU_ZERO (&set);
  CPU_SET (0, &set);
  sched_setaffinity (0, sizeof set, &set);
}

/* CPU seconds the controller used so far (utime + stime). */
static double
ctl_cpu (void)
{
  gchar *path = g_strdup_printf ("/proc/%d/stat", ctl_pid), *text = NULL;
  double s = 0;
  if (g_file_get_contents (path, &text, NULL, NULL)) {
    const char *p = strrchr (text, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (p &&
        sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                &ut, &st) == 2)
      s = (double)(ut + st) / (double)sysconf (_SC_CLK_TCK);
  }
  g_free (text);
  g_free (path);
  return s;
}

static gchar *
admin (const char *line)
{
  struct sockaddr_un sa = {0};
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  GString *out = g_string_new (NULL);
  gchar *msg = g_strconcat (line, "\n", NULL);
  char buf[4096];
  ssize_t n;

  sa.sun_family = AF_UNIX;
  g_snprintf (sa.sun_path, sizeof sa.sun_path, "%s/state/admin.sock", dir);
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      write (fd, msg, strlen (msg)) > 0)
    while ((n = read (fd, buf, sizeof buf)) > 0)
      g_string_append_len (out, buf, n);
  close (fd);
  g_free (msg);
  return g_string_free (out, FALSE);
}

static guint chan_port;

static void
start_controller (gboolean rekey_on_join, guint activation_ms, guint ids,
                  gboolean tree)
{
  GString *conf = g_string_new (NULL);
  gchar *path = g_build_filename (dir, "bench.conf", NULL), *state;
  const gchar *argv[] = {NULL, path, NULL};
  /* BENCH_MIKE_CONTROLLER: another command (a profiler's wrapper) */
  gchar *ctl = g_getenv ("BENCH_MIKE_CONTROLLER")
                   ? g_strdup (g_getenv ("BENCH_MIKE_CONTROLLER"))
                   : g_build_filename (tools, "mcsec-controller", NULL);

  state = g_build_filename (dir, "state", NULL);
  {
    gchar *rm[] = {(gchar *)"rm", (gchar *)"-rf", state, NULL};
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                  NULL, NULL);
  }
  ctl_port = free_port (SOCK_STREAM);
  g_string_append_printf (
      conf,
      "[controller]\nlisten = 127.0.0.1:%u\ncertificate = pki/controller.crt\n"
      "private-key = pki/controller.key\nca = pki/ca.crt\n"
      "signing-key = pki/controller-sign.key\nstate-dir = state\n\n"
      "[group bench]\nsenders = cam\nrekey-on-join = %s\n"
      "rekey-on-leave = %s\nactivation-delay = %u\nreceivers = ",
      ctl_port, rekey_on_join || tree ? "true" : "false",
      tree ? "true" : "false", activation_ms);
  for (guint i = 0; i < ids; i++)
    g_string_append_printf (conf, "%sm%u", i ? ";" : "", i);
  g_string_append (conf, "\n");
  if (tree)
    g_string_append_printf (conf,
                            "rekey-channel = 239.255.90.1:%u\n"
                            "rekey-interface = lo\nbatch-interval = 50\n",
                            chan_port);
  g_file_set_contents (path, conf->str, -1, NULL);
  argv[0] = ctl;
  if (!g_spawn_async (dir, (gchar **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                      n_cpus > 1 ? pin_core0 : NULL, NULL, &ctl_pid, NULL))
    abort ();
  for (int i = 0; i < 200; i++) {
    gchar *a = admin ("stats");
    gboolean up = strstr (a, "\"ok\":true") != NULL;
    g_free (a);
    if (up)
      break;
    g_usleep (20000);
  }
  g_string_free (conf, TRUE);
  g_free (path);
  g_free (state);
  g_free (ctl);
}

static void
stop_controller (void)
{
  kill (ctl_pid, SIGTERM);
  waitpid (ctl_pid, NULL, 0);
  g_spawn_close_pid (ctl_pid);
}

/* ---- simulated members ---------------------------------------------- */

typedef struct {
  int fd;
  SSL *ssl;
  mcsec_member_t *m;
  int state; /* 0 TCP, 1 TLS, 2 MIKE, 3 joined, -1 free */
  uint64_t last_seq, t0;
} Member;

static void
member_close (Member *c)
{
  if (c->ssl)
    SSL_free (c->ssl);
  if (c->fd >= 0)
    close (c->fd);
  mcsec_member_free (c->m);
  memset (c, 0, sizeof *c);
  c->fd = -1;
  c->state = -1;
}

static void
member_open (Member *c, guint id)
{
  struct sockaddr_in a = {0};
  mcsec_member_config_t mc = {"bench", MCSEC_MIKE_ROLE_RECEIVER, NULL, 0};
  int one = 1;

  a.sin_family = AF_INET;
  a.sin_port = htons ((uint16_t)ctl_port);
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (c->fd, (struct sockaddr *)&a, sizeof a) != 0 &&
      errno != EINPROGRESS)
    abort ();
  c->ssl = SSL_new (ctx[id % MAX_IDS]);
  SSL_set_fd (c->ssl, c->fd);
  SSL_set_connect_state (c->ssl);
  if (mcsec_member_new (&mc, &c->m) != MCSEC_OK)
    abort ();
  c->state = 1;
  c->t0 = now_us ();
}

/* Drive one member; returns 1 when it just joined, -1 on failure. */
static int
member_io (Member *c)
{
  uint8_t buf[16384];
  mcsec_member_event_t ev;
  const uint8_t *out;
  size_t n;
  int joined = 0;

  if (c->state == 1) {
    int r = SSL_do_handshake (c->ssl);
    if (r != 1) {
      int e = SSL_get_error (c->ssl, r);
      ERR_clear_error ();
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    mcsec_member_connected (c->m, now_us () / 1000);
    c->state = 2;
  }
  for (;;) {
    int r = SSL_read (c->ssl, buf, sizeof buf);
    if (r <= 0) {
      int e = SSL_get_error (c->ssl, r);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      return -1;
    }
    if (mcsec_member_receive (c->m, buf, (size_t)r, now_us () / 1000))
      return -1;
  }
  {
    int dead; /* timers: repairs of the rekey channel, pings */
    mcsec_member_tick (c->m, now_us () / 1000, &dead);
  }
  while (mcsec_member_next_event (c->m, &ev)) {
    if (ev.type == MCSEC_MEMBER_EV_JOINED) {
      c->state = 3;
      joined = 1;
    }
    if (ev.seq > c->last_seq)
      c->last_seq = ev.seq;
  }
  while ((n = mcsec_member_output (c->m, &out)) > 0) {
    int w = SSL_write (c->ssl, out, (int)n);
    if (w <= 0) {
      ERR_clear_error ();
      break;
    }
    mcsec_member_written (c->m, (size_t)w);
  }
  return joined;
}

static void
poll_members (Member *ms, guint n, int timeout_ms)
{
  struct pollfd *p = g_new (struct pollfd, n);
  guint k = 0;
  for (guint i = 0; i < n; i++)
    if (ms[i].state >= 1) {
      p[k].fd = ms[i].fd;
      p[k].events = POLLIN | (ms[i].state == 1 ? POLLOUT : 0);
      p[k].revents = 0;
      k++;
    }
  poll (p, k, timeout_ms);
  g_free (p);
}

static double
thread_cpu (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The floor: the same TLS 1.3 handshake (same certificates, mutual
 * authentication, same settings as the controller) between two SSL objects
 * in this process over a BIO pair; the CPU time of the server side only. */
static double
bench_raw_handshakes (guint n)
{
  gchar *crt = g_strdup_printf ("%s/pki/controller.crt", dir);
  gchar *key = g_strdup_printf ("%s/pki/controller.key", dir);
  gchar *ca = g_strdup_printf ("%s/pki/ca.crt", dir);
  SSL_CTX *sctx = SSL_CTX_new (TLS_server_method ());
  double server = 0;

  SSL_CTX_set_min_proto_version (sctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                      NULL);
  SSL_CTX_set_num_tickets (sctx, 0);
  SSL_CTX_set_session_cache_mode (sctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file (sctx, crt) != 1 ||
      SSL_CTX_use_PrivateKey_file (sctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations (sctx, ca, NULL) != 1)
    abort ();
  SSL_CTX_set_client_CA_list (sctx, SSL_load_client_CA_file (ca));
  for (guint i = 0; i < n; i++) {
    SSL *s = SSL_new (sctx), *c = SSL_new (ctx[i % MAX_IDS]);
    BIO *bs, *bc;
    int sdone = 0, cdone = 0;
    BIO_new_bio_pair (&bs, 0, &bc, 0);
    SSL_set_bio (s, bs, bs);
    SSL_set_bio (c, bc, bc);
    SSL_set_accept_state (s);
    SSL_set_connect_state (c);
    for (int round = 0; round < 20 && !(sdone && cdone); round++) {
      double t;
      if (!cdone)
        cdone = SSL_do_handshake (c) == 1;
      t = thread_cpu ();
      if (!sdone)
        sdone = SSL_do_handshake (s) == 1;
      server += thread_cpu () - t;
    }
    if (!sdone || !cdone)
      abort ();
    SSL_free (s);
    SSL_free (c);
    ERR_clear_error ();
  }
  SSL_CTX_free (sctx);
  g_free (crt);
  g_free (key);
  g_free (ca);
  return server / n;
}

static void
bench_registrations (guint total, guint concurrency)
{
  Member *ms = g_new0 (Member, concurrency);
  guint started = 0, done = 0, failed = 0;
  uint64_t t0, t1, lat_sum = 0;
  double c0, c1;

  start_controller (FALSE, 500, MAX_IDS, FALSE);
  for (guint i = 0; i < concurrency; i++) {
    ms[i].fd = -1;
    ms[i].state = -1;
  }
  c0 = ctl_cpu ();
  t0 = now_us ();
  while (done + failed < total) {
    for (guint i = 0; i < concurrency; i++)
      if (ms[i].state == -1 && started < total)
        member_open (&ms[i], started++);
    poll_members (ms, concurrency, 100);
    for (guint i = 0; i < concurrency; i++) {
      int r;
      if (ms[i].state < 1)
        continue;
      r = member_io (&ms[i]);
      if (r == 1) {
        lat_sum += now_us () - ms[i].t0;
        done++;
        member_close (&ms[i]);
      } else if (r < 0) {
        failed++;
        member_close (&ms[i]);
      }
    }
  }
  t1 = now_us ();
  c1 = ctl_cpu ();
  printf ("registrations: %u full TLS 1.3 joins (%u at a time, %u failed) "
          "in %.2f s: %.0f/s wall, %.0f per controller CPU second "
          "(controller %.2f CPU s, mean join %.2f ms)\n",
          done, concurrency, failed, (t1 - t0) / 1e6, done / ((t1 - t0) / 1e6),
          c1 > c0 ? done / (c1 - c0) : 0.0, c1 - c0,
          done ? lat_sum / 1000.0 / done : 0.0);
  {
    double raw = bench_raw_handshakes (total / 3);
    printf ("  baseline, raw OpenSSL server handshake (same certificates, in "
            "process): %.0f us CPU = %.0f/s per core; controller per "
            "registration %.0f us = %.2fx the raw handshake\n",
            raw * 1e6, 1 / raw, done ? (c1 - c0) / done * 1e6 : 0.0,
            done && raw > 0 ? (c1 - c0) / done / raw : 0.0);
  }
  stop_controller ();
  g_free (ms);
}

/* The rekey channel as every simulated member hears it: one socket on the
 * loopback interface, each datagram handed to every joined member. */
static int
channel_socket (void)
{
  struct sockaddr_in a = {0};
  struct ip_mreqn mr = {0};
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;

  chan_port = free_port (SOCK_DGRAM);
  a.sin_family = AF_INET;
  a.sin_port = htons ((uint16_t)chan_port);
  inet_pton (AF_INET, "239.255.90.1", &a.sin_addr);
  mr.imr_multiaddr = a.sin_addr;
  mr.imr_ifindex = (int)if_nametoindex ("lo");
  if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind (fd, (struct sockaddr *)&a, sizeof a) ||
      setsockopt (fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr))
    abort ();
  return fd;
}

static void
channel_feed (int fd, Member *ms, guint n)
{
  uint8_t buf[2048];
  ssize_t r;
  while ((r = recv (fd, buf, sizeof buf, 0)) > 0)
    for (guint i = 0; i < n; i++)
      if (ms[i].state == 3)
        (void)mcsec_member_datagram (ms[i].m, buf, (size_t)r, now_us () / 1000);
}

static void
bench_rekey (guint n, guint activation_ms, gboolean tree)
{
  Member *ms = g_new0 (Member, n);
  guint joined = 0, have = 0, opened = 0;
  uint64_t seq = 0, t0 = 0, t_first = 0, t_last = 0, deadline;
  gchar *answer, *p;
  double c0, c1;
  int chan = tree ? channel_socket () : -1;

  start_controller (FALSE, activation_ms, MAX_IDS, tree);
  for (guint i = 0; i < n; i++) {
    ms[i].fd = -1;
    ms[i].state = -1;
  }
  /* everyone joins (64 handshakes at a time) */
  deadline = now_us () + 120 * G_USEC_PER_SEC;
  while (joined < n && now_us () < deadline) {
    guint in_flight = 0;
    for (guint i = 0; i < opened; i++)
      in_flight += ms[i].state == 1 || ms[i].state == 2;
    while (opened < n && in_flight < 64) {
      member_open (&ms[opened], opened);
      opened++;
      in_flight++;
    }
    poll_members (ms, opened, 50);
    for (guint i = 0; i < opened; i++)
      if (ms[i].state >= 1 && member_io (&ms[i]) == 1)
        joined++;
    if (tree)
      channel_feed (chan, ms, opened);
  }
  /* settle: every pending message read (tree: the joins' batches) */
  for (int k = 0; k < (tree ? 20 : 5); k++) {
    poll_members (ms, n, 20);
    for (guint i = 0; i < n; i++)
      if (ms[i].state >= 1)
        member_io (&ms[i]);
    if (tree)
      channel_feed (chan, ms, n);
  }
  for (guint i = 0; i < n; i++)
    ms[i].last_seq = 0;
  /* REKEYS rekeys, one after the other once every member holds the last:
   * the first timed, the controller's CPU over all of them (its clock
   * ticks in 10 ms) */
  c0 = ctl_cpu ();
  for (int r = 0; r < REKEYS; r++) {
    guint got = 0;
    uint64_t first = 0, last = 0;
    for (guint i = 0; i < n; i++)
      ms[i].last_seq = 0;
    t0 = now_us ();
    answer = admin ("rekey bench");
    /* key tree groups: the SEQ of the rekey on the channel */
    p = strstr (answer, tree ? "\"rekey-seq\":" : "\"seq\":");
    seq = p ? g_ascii_strtoull (strchr (p, ':') + 1, NULL, 10) : 0;
    g_free (answer);
    deadline = now_us () + 30 * G_USEC_PER_SEC;
    while (got < joined && now_us () < deadline) {
      if (tree) { /* the datagram, then what the members say */
        struct pollfd pf = {chan, POLLIN, 0};
        poll (&pf, 1, 50);
        channel_feed (chan, ms, n);
      } else {
        poll_members (ms, n, 50);
      }
      for (guint i = 0; i < n; i++) {
        uint64_t before;
        if (ms[i].state < 3)
          continue;
        before = ms[i].last_seq;
        member_io (&ms[i]);
        if (before < seq && ms[i].last_seq >= seq) {
          got++;
          last = now_us ();
          first = first ? first : last;
        }
      }
    }
    if (r == 0) {
      have = got;
      t_first = first - t0;
      t_last = last - t0;
    }
  }
  c1 = ctl_cpu ();
  printf ("rekey N=%-4u %s: %u/%u members hold the new SA %.2f ms (first) "
          "to %.2f ms (last) after the request, then +%u ms activation; "
          "controller %.3f ms CPU per rekey (%d rekeys)\n",
          n, tree ? "key tree" : "unicast ", have, joined, t_first / 1000.0,
          t_last / 1000.0, activation_ms, (c1 - c0) * 1000 / REKEYS, REKEYS);
  if (chan >= 0)
    close (chan);
  for (guint i = 0; i < n; i++)
    if (ms[i].state >= 0)
      member_close (&ms[i]);
  stop_controller ();
  g_free (ms);
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void
bench_join_latency (const char *peer, guint activation_ms, int runs)
{
  guint port = free_port (SOCK_DGRAM);
  gchar *to = g_strdup_printf ("127.0.0.1:%u", port);
  gchar *cred[2][3];
  const char *who[2] = {"cam", "m0"};
  GPid sender;
  double lat[16];
  int got = 0;

  start_controller (TRUE, activation_ms, MAX_IDS, FALSE);
  for (int i = 0; i < 2; i++) {
    cred[i][0] = g_strdup_printf ("%s/pki/%s.crt", dir, who[i]);
    cred[i][1] = g_strdup_printf ("%s/pki/%s.key", dir, who[i]);
    cred[i][2] = g_strdup_printf ("%s/pki/%s-sign.key", dir, who[i]);
  }
  {
    gchar *ctl = g_strdup_printf ("127.0.0.1:%u", ctl_port);
    gchar *ca = g_strdup_printf ("%s/pki/ca.crt", dir);
    const gchar *sargv[] = {peer,
                            "send",
                            "--controller",
                            ctl,
                            "--group",
                            "bench",
                            "--certificate",
                            cred[0][0],
                            "--private-key",
                            cred[0][1],
                            "--ca",
                            ca,
                            "--signing-key",
                            cred[0][2],
                            "--to",
                            to,
                            "--rate",
                            "1000",
                            "--duration",
                            "600",
                            "--sam-block-size",
                            "16",
                            NULL};
    if (!g_spawn_async (NULL, (gchar **)sargv, NULL,
                        G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                        NULL, NULL, &sender, NULL))
      abort ();
    g_usleep (1500000);
    for (int r = 0; r < runs; r++) {
      const gchar *rargv[] = {peer,
                              "receive",
                              "--controller",
                              ctl,
                              "--group",
                              "bench",
                              "--certificate",
                              cred[1][0],
                              "--private-key",
                              cred[1][1],
                              "--ca",
                              ca,
                              "--port",
                              NULL,
                              "--duration",
                              "2.5",
                              NULL};
      gchar *portstr = g_strdup_printf ("%u", port), *out = NULL, *f;
      rargv[13] = portstr;
      if (g_spawn_sync (NULL, (gchar **)rargv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                        NULL, NULL, &out, NULL, NULL, NULL) &&
          (f = strstr (out, "first-rx-ms=")) != NULL) {
        double v = g_ascii_strtod (f + 12, NULL);
        if (v > 0)
          lat[got++] = v;
      }
      g_free (out);
      g_free (portstr);
    }
    kill (sender, SIGTERM);
    waitpid (sender, NULL, 0);
    g_free (ctl);
    g_free (ca);
  }
  qsort (lat, (size_t)got, sizeof lat[0], cmp_double);
  if (got)
    printf ("join to first decrypted packet (receiver process start, "
            "rekey on join, activation %u ms): median %.0f ms, min %.0f, "
            "max %.0f over %d runs\n",
            activation_ms, lat[got / 2], lat[0], lat[got - 1], got);
  else
    printf ("join latency: no run decrypted anything\n");
  stop_controller ();
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      g_free (cred[i][j]);
  g_free (to);
}

int
main (int argc, char **argv)
{
  gboolean quick = argc > 3 && strcmp (argv[3], "--quick") == 0;
  GPtrArray *pki;
  cpu_set_t set;

  if (argc < 3) {
    fprintf (stderr, "usage: bench-mike TOOLS_DIR MIKE_PEER [--quick]\n");
    return 2;
  }
  signal (SIGPIPE, SIG_IGN);
  tools = argv[1];
  n_cpus = (int)sysconf (_SC_NPROCESSORS_ONLN);
  if (n_cpus > 1) { /* the members on the other cores */
    CPU_ZERO (&set);
    for (int i = 1; i < n_cpus && i < CPU_SETSIZE; i++)
      CPU_SET (i, &set);
    sched_setaffinity (0, sizeof set, &set);
  }
  dir = g_dir_make_tmp ("bench-mike-XXXXXX", NULL);
  /* credentials: a CA, the controller, a camera and 1000 members */
  pki = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (pki, g_build_filename (tools, "mcsecctl", NULL));
  g_ptr_array_add (pki, g_strdup ("pki"));
  g_ptr_array_add (pki, g_strdup ("pki"));
  g_ptr_array_add (pki, g_strdup ("cam"));
  for (int i = 0; i < MAX_IDS; i++)
    g_ptr_array_add (pki, g_strdup_printf ("m%d", i));
  g_ptr_array_add (pki, NULL);
  if (!g_spawn_sync (dir, (gchar **)pki->pdata, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL))
    return 1;
  g_ptr_array_unref (pki);
  for (int i = 0; i < MAX_IDS; i++) {
    gchar *crt = g_strdup_printf ("%s/pki/m%d.crt", dir, i);
    gchar *key = g_strdup_printf ("%s/pki/m%d.key", dir, i);
    gchar *ca = g_strdup_printf ("%s/pki/ca.crt", dir);
    ctx[i] = SSL_CTX_new (TLS_client_method ());
    SSL_CTX_set_min_proto_version (ctx[i], TLS1_3_VERSION);
    SSL_CTX_set_verify (ctx[i], SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_use_certificate_file (ctx[i], crt, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file (ctx[i], key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations (ctx[i], ca, NULL) != 1)
      return 1;
    g_free (crt);
    g_free (key);
    g_free (ca);
  }
  printf ("bench-mike: controller on core 0, members on the other %d "
          "core(s); P-256 certificates, X25519, TLS 1.3\n",
          n_cpus - 1);
  bench_registrations (quick ? 300 : 3000, 32);
  for (guint n = 10; n <= (quick ? 100u : 1000u); n *= 10) {
    bench_rekey (n, 500, FALSE);
    /* key tree: every simulated member verifies every datagram and
     * heartbeat in this one process (about 0.1 ms each), which at 1000
     * members starves their connections; the controller's side does not
     * grow with N (bench-lkh measures the rekey at 1,024 to 1,048,576) */
    if (n <= 100)
      bench_rekey (n, 500, TRUE);
  }
  bench_join_latency (argv[2], 200, quick ? 3 : 5);
  {
    gchar *rm[] = {(gchar *)"rm", (gchar *)"-rf", dir, NULL};
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                  NULL, NULL);
  }
  return 0;
}
