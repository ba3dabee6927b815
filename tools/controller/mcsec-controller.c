/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-controller: the group controller of MIKE (docs/mike-protocol.md,
 * docs/controller.md).  This file is the daemon's shell around the I/O-free
 * core (core/ctl-core.c, which makes every decision): configuration, TLS
 * and sockets, the admin socket, durable state (store-file.c) and logs.
 *
 *  - The main thread runs an epoll loop over the connections that have
 *    work: its cost follows active connections, not all of them.  It
 *    accepts, reads and writes members' TLS records, answers the admin
 *    socket without ever blocking on a client, sends on the rekey channels
 *    and runs the core's timers.
 *  - TLS handshakes (the expensive part of a registration) run on worker
 *    threads, one per core by default; a finished handshake hands the
 *    connection and the certificate's identity to the main thread.
 *  - Against outsiders: the open-file limit is raised to the hard limit;
 *    handshakes in flight are capped per source address and in total, and
 *    each has a deadline; accept errors back off instead of spinning.
 *    Against members: the core caps each connection's queued output and
 *    rate-limits REPAIR; a member that does not read is disconnected.
 *  - Key memory never reaches a core file: RLIMIT_CORE 0 and the process
 *    is not dumpable.  Keys never reach a log.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>

#include <glib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "core/ctl-core.h"
#include "cluster.h"
#include "relay.h"
#include "store-etcd.h"
#include "store-file.h"

#define ACCEPT_BATCH 64
#define ADMIN_MAX_CLIENTS 16
#define ADMIN_TIMEOUT_MS 2000
#define ADMIN_LINE_MAX 1024
#define CLOSE_FLUSH_MS 2000 /* a goodbye gets this long to go out */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
#define WINDOW_SWEEP_MS 2000  /* members whose window stays shut */
#define LINK_DEADLINE_MS 5000 /* a relay link is up by then */
#define LINK_IDLE_MS 10000    /* a link to a leader nobody uses is closed */
#define READ_BUDGET                                                            \
  65536 /* bytes read from one member per loop turn: one                       \
           member cannot hold the loop (level-triggered                        \
           epoll, and d.again, bring the rest) */

typedef enum {
  K_LISTEN = 1,
  K_ADMIN_LISTEN,
  K_ADMIN,
  K_MEMBER,
  K_INBOX,
  K_SIGNAL,
  K_CLUSTER,
  K_LINK,
} Kind;

typedef struct {
  Kind kind;
} Watch;

/* A relay link (relay.h, docs/cluster.md "Relaying"): to a leader
 * (outgoing: this controller's relayed members) or from a follower (its
 * members are core connections here, without a socket of their own). */
typedef struct {
  Watch w;
  GList qlink; /* in d.links */
  CtlRelayLink *rl;
  gchar *to;           /* outgoing: the leader's address */
  gchar *host;         /* from a follower, until its HELLO proved the key: the
                          source its handshake counted against (the caps) */
  GHashTable *streams; /* stream id -> Member */
  guint32 next_stream, events;
  gint64 idle_since;
  gboolean dead, was_up, blocked, unblocking;
} Link;

typedef struct {
  Watch w;
  GList link; /* in d.members */
  int fd;     /* -1: a follower's member, relayed to us over `via` */
  SSL *ssl;
  mcsec_ctl_conn_t *core; /* NULL: relayed to the leader over `via` */
  Link *via;
  guint32 stream;
  gboolean link_closed; /* the link ended the stream (or is gone) */
  CtlRelayBuf rout;     /* relayed: the leader's bytes for the member */
  guint32 events;
  gboolean closing, dead;
  gint64 close_deadline;
  gint64 shut_since; /* its TCP receive window is shut since */
  gboolean again;    /* more to read next turn (d.again) */
  gboolean paused;   /* relayed: not read while its link is full */
  gchar peer[INET6_ADDRSTRLEN + 8];
} Member;

typedef struct {
  Watch w;
  GList link; /* in d.admins */
  int fd;
  char line[ADMIN_LINE_MAX];
  gsize n;
  gchar *answer;
  gsize off, len;
  gint64 deadline;
  gboolean dead;
} AdminClient;

/* A connection between accept and the end of its TLS handshake. */
typedef struct {
  int fd;
  SSL *ssl;
  gint64 deadline;
  guint32 events;
  gchar host[INET6_ADDRSTRLEN + 8]; /* the source the caps count */
  gchar peer[INET6_ADDRSTRLEN + 8];
  /* the result, for the main thread */
  gchar *identity;
  gchar *why; /* NULL: done */
  gboolean timed_out;
} Handshake;

typedef struct {
  pthread_t thread;
  int epfd, inbox; /* eventfd: new handshakes in `in` */
  GMutex lock;
  GQueue in;
  GList *active;
} Worker;

static struct {
  CtlConfig *cfg;
  SSL_CTX *ctx;
  EVP_PKEY *update_key;
  mcsec_ctl_store_t *store;
  mcsec_ctl_t *core;
  CtlCluster *cluster; /* [cluster]: state in etcd (cluster.c) */
  int epfd, listen_fd, admin_fd, sig_fd;
  Watch listen_w, admin_w, sig_w, inbox_w, cluster_w;
  int inbox; /* eventfd: finished handshakes in `done` */
  GMutex done_lock;
  GQueue done;
  Worker *workers;
  guint n_workers, next_worker;
  volatile gint stopping_workers;
  GHashTable *pending_by_host; /* host -> count of handshakes in flight */
  GQueue members;              /* Member */
  GPtrArray *again;            /* Member: read budget spent, more waits */
  GQueue admins;               /* AdminClient */
  GQueue closing;              /* Member, flushing a goodbye */
  GPtrArray *graveyard;        /* freed at the end of a loop turn */
  guint n_admin;
  gboolean listen_paused, stopping;
  gint64 window_sweep_ms;
  gint64 hf_window_ms; /* handshake-failed lines: at most 10 a second */
  guint hf_logged, hf_quiet;
  dev_t admin_dev;
  ino_t admin_ino; /* the socket file we bound: a newer controller may have
                      replaced it by the time we stop */
  guint output_stall_ms;
  gint64 accept_resume_ms;
  guint backoff_ms;
  int *channel_fds;
  /* relaying (docs/cluster.md) */
  gboolean relay;
  gboolean links_fenced; /* the lease ran out: links from followers write
                            nothing more and are dropped (loop_run) */
  guint8 relay_key[CTL_RELAY_KEY_LEN];
  SSL_CTX *relay_ctx;
  GQueue links;               /* Link */
  GHashTable *link_by_leader; /* address -> outgoing Link */
  mcsec_ctl_io_stats_t io;
  gboolean journal; /* stderr is journald's: lines start with "<N>" */
} d;

/* ------------------------------------------------------------------------ */

/* eventfd counters: a wake-up, and taking it */
static void
efd_signal (int fd)
{
  guint64 v = 1;
  ssize_t r = write (fd, &v, sizeof v);
  (void)r; /* EAGAIN: the counter is already non-zero */
}

static void
efd_drain (int fd)
{
  guint64 v;
  ssize_t r = read (fd, &v, sizeof v);
  (void)r;
}

static gint64
mono_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

/* systemd connects stderr to journald and says so in JOURNAL_STREAM
 * ("DEVICE:INODE" of that stream): then each line starts with its syslog
 * priority, "<3>" to "<7>" (sd-daemon(3)), which journald takes off. */
static gboolean
stderr_is_journal (void)
{
  const char *js = g_getenv ("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  return js && sscanf (js, "%llu:%llu", &dev, &ino) == 2 &&
         fstat (STDERR_FILENO, &st) == 0 && st.st_dev == dev &&
         st.st_ino == ino;
}

static void
log_line (const char *event, const char *text)
{
  GDateTime *now = g_date_time_new_now_utc ();
  gchar *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");
  char prio[8] = "";
  if (d.journal)
    g_snprintf (prio, sizeof prio, "<%d>", mcsec_ctl_event_priority (event));
  fprintf (stderr, "%s%s.%03dZ mcsec-controller event=%s %s\n", prio, ts,
           g_date_time_get_microsecond (now) / 1000, event, text);
  fflush (stderr);
  g_free (ts);
  g_date_time_unref (now);
}

static void G_GNUC_PRINTF (2, 3)
    log_event (const char *event, const char *fmt, ...)
{
  gchar *text;
  va_list ap;
  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  log_line (event, text);
  g_free (text);
}

/* What the configuration should change (a deprecated setting name), as
 * warnings in the log. */
static void
config_warnings (const CtlConfig *c)
{
  for (guint i = 0; i < c->warnings->len; i++) {
    gchar *q = g_strescape (c->warnings->pdata[i], NULL);
    log_event ("warning", "what=\"%s\"", q);
    g_free (q);
  }
}

/* Why the controller cannot start (or --check fails): one line, an error
 * to journald; the exit status. */
static int G_GNUC_PRINTF (1, 2) fatal (const char *fmt, ...)
{
  gchar *text;
  va_list ap;
  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "%smcsec-controller: %s\n", d.journal ? "<3>" : "", text);
  g_free (text);
  return 1;
}

static void
epoll_set (int fd, void *ptr, guint32 events, int op)
{
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl (d.epfd, op, fd, &ev) != 0 && op != EPOLL_CTL_DEL)
    log_event ("error", "what=\"epoll: %s\"", g_strerror (errno));
}

/* ------------------------------------------------------------------------ */
/* Members: TLS records in and out                                            */

static void run_actions (void);

static void link_flush (Link *k);

/* The member's stream leaves its relay link (a CLOSE goes unless the link
 * ended it). */
static void
member_unlink (Member *m)
{
  Link *k = m->via;
  if (k == NULL)
    return;
  m->via = NULL;
  g_hash_table_remove (k->streams, GUINT_TO_POINTER (m->stream));
  if (k->to)
    d.io.relayed_open--;
  else
    d.io.relay_accepted_open--;
  if (g_hash_table_size (k->streams) == 0)
    k->idle_since = mono_ms ();
  if (!m->link_closed && !k->dead) {
    ctl_relay_link_send (k->rl, CTL_RELAY_CLOSE, m->stream, NULL, 0);
    link_flush (k);
  }
}

static void
member_finish (Member *m)
{
  if (m->dead)
    return;
  m->dead = TRUE;
  if (m->closing)
    g_queue_remove (&d.closing, m);
  if (m->again)
    g_ptr_array_remove (d.again, m);
  member_unlink (m);
  if (m->fd >= 0) {
    epoll_ctl (d.epfd, EPOLL_CTL_DEL, m->fd, NULL);
    if (m->closing)
      SSL_shutdown (m->ssl);
    SSL_free (m->ssl);
    m->ssl = NULL;
    close (m->fd);
    d.io.open_connections--;
  }
  if (m->core)
    mcsec_ctl_conn_free (m->core);
  m->core = NULL;
  ctl_relay_buf_clear (&m->rout);
  g_queue_unlink (&d.members, &m->link);
  g_ptr_array_add (d.graveyard, m);
}

static void
member_events (Member *m, guint32 want)
{
  if (m->paused)
    want &= ~(guint32)EPOLLIN; /* resumed by link_unblock */
  if (!m->dead && m->fd >= 0 && want != m->events) {
    m->events = want;
    epoll_set (m->fd, m, want, EPOLL_CTL_MOD);
  }
}

/* The socket ended or failed: the core hears it, the member goes. */
static void
member_lost (Member *m, const char *why)
{
  if (m->dead)
    return;
  if (m->core)
    mcsec_ctl_conn_lost (m->core, why, mono_ms ());
  member_finish (m);
}

/* Fencing at the last moment: a controller that leads a group writes
 * nothing to members or the rekey channel past its lease's deadline, even
 * when the core judged with a time an etcd call made stale; a turn first
 * steps the groups down (their members' output is dropped). */
static gboolean
cluster_may_write (void)
{
  if (d.cluster == NULL || ctl_cluster_may_write (d.cluster, mono_ms ()))
    return TRUE;
  /* what links from followers hold was issued under the lease: it never
   * goes out, the links go at the end of the turn (their members
   * reconnect, as ours do) */
  d.links_fenced = TRUE;
  ctl_cluster_turn (d.cluster, mono_ms ());
  return ctl_cluster_may_write (d.cluster, mono_ms ());
}

/* The link holds [cluster] relay-queue: its members wait. */
static gboolean
link_full (const Link *k)
{
  return ctl_relay_link_queued (k->rl) >= d.cfg->relay_queue;
}

/* Members wait on a full link (counted once each time it fills). */
static void
link_blocked (Link *k)
{
  if (!k->blocked)
    d.io.relay_link_waits++;
  k->blocked = TRUE;
}

/* A link may write: a follower's link always (its bytes are the leader's),
 * a link from a follower while this controller's lease holds. */
static gboolean
link_may_write (const Link *k)
{
  return k->to != NULL || (cluster_may_write () && !d.links_fenced);
}

/* A follower's member: what the core queued goes over the link, as long
 * as the link's queue is short (else the core holds it: its max-output
 * and stall limits apply as to any member). */
static gboolean
member_flush_to_link (Member *m)
{
  const guint8 *data;
  gsize len;
  Link *k;

  if (!cluster_may_write () || d.links_fenced || m->dead)
    return !m->dead;
  k = m->via;
  while (k && (len = mcsec_ctl_conn_output (m->core, &data)) > 0) {
    if (link_full (k)) {
      link_blocked (k);
      break;
    }
    len = MIN (len, 65536);
    ctl_relay_link_send (k->rl, CTL_RELAY_DATA, m->stream, data, len);
    mcsec_ctl_conn_written (m->core, len, mono_ms ());
  }
  if (k)
    link_flush (k); /* its unblock may flush (and finish) m itself */
  if (m->dead)
    return FALSE;
  if (m->closing &&
      (k == NULL || mcsec_ctl_conn_output (m->core, &data) == 0)) {
    member_finish (m);
    return FALSE;
  }
  return TRUE;
}

/* Write what the core queued (or, relayed, what the leader sent); TRUE
 * while the member lives. */
static gboolean
member_flush (Member *m)
{
  const guint8 *data;
  gsize len;

  if (m->fd < 0)
    return member_flush_to_link (m);
  /* fencing is the leader's: a relayed member's bytes are the leader's */
  if (m->core && !cluster_may_write ())
    return TRUE;
  while ((len = m->core ? mcsec_ctl_conn_output (m->core, &data)
                        : ctl_relay_buf_len (&m->rout)) > 0) {
    int n;
    if (m->core == NULL)
      data = ctl_relay_buf_data (&m->rout);
    n = SSL_write (m->ssl, data, (int)MIN (len, 16384));
    if (n <= 0) {
      int e = SSL_get_error (m->ssl, n);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        member_events (m, EPOLLIN | EPOLLOUT);
        return TRUE;
      }
      member_lost (m, "write failed");
      return FALSE;
    }
    if (m->core)
      mcsec_ctl_conn_written (m->core, (gsize)n, mono_ms ());
    else
      ctl_relay_buf_consume (&m->rout, (gsize)n);
  }
  if (m->closing) {
    member_finish (m);
    return FALSE;
  }
  member_events (m, EPOLLIN);
  return TRUE;
}

static void
member_io (Member *m, guint32 events)
{
  guint8 buf[16384];

  if (m->dead)
    return;
  if (events & EPOLLOUT) {
    if (!member_flush (m))
      return;
  }
  if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || m->closing)
    return;
  for (gsize budget = 0;; budget += sizeof buf) {
    int n;
    if (budget >= READ_BUDGET) {
      /* the rest next turn, after the others and the timers; TLS may hold
       * decrypted records epoll does not see */
      if (!m->again) {
        m->again = TRUE;
        g_ptr_array_add (d.again, m);
      }
      break;
    }
    /* a relayed member whose link (the members share it) is full is read
     * again once it drains (link_unblock); a link that does not drain is
     * lost */
    if (m->core == NULL && m->via && link_full (m->via)) {
      if (events & (EPOLLERR | EPOLLHUP)) {
        /* reset: nothing it sent can be answered (and epoll would
         * report it every turn until the link drains) */
        member_lost (m, "connection lost");
        OPENSSL_cleanse (buf, sizeof buf);
        return;
      }
      m->paused = TRUE;
      link_blocked (m->via);
      member_events (m, m->events);
      break;
    }
    n = SSL_read (m->ssl, buf, sizeof buf);
    if (n <= 0) {
      int e = SSL_get_error (m->ssl, n);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      member_lost (m, e == SSL_ERROR_ZERO_RETURN ? "connection closed"
                                                 : "connection lost");
      OPENSSL_cleanse (buf, sizeof buf);
      return;
    }
    if (m->core) {
      mcsec_ctl_conn_input (m->core, buf, (gsize)n, mono_ms ());
      run_actions ();
    } else if (m->via) {
      ctl_relay_link_send (m->via->rl, CTL_RELAY_DATA, m->stream, buf,
                           (gsize)n);
    }
    if (m->dead || m->closing)
      break;
  }
  if (!m->dead && m->via && m->core == NULL)
    link_flush (m->via);
  OPENSSL_cleanse (buf, sizeof buf);
}

static void member_relay (Member *m, const char *leader, GBytes *bytes);

/* What the core decided: writes, closes, channel datagrams, log lines. */
static void
run_actions (void)
{
  mcsec_ctl_action_t a;

  while (mcsec_ctl_next_action (d.core, &a)) {
    Member *m = a.conn ? mcsec_ctl_conn_get_user_data (a.conn) : NULL;
    switch (a.type) {
    case MCSEC_CTL_ACTION_WRITE:
      if (m && !m->dead && !m->closing)
        member_flush (m);
      break;
    case MCSEC_CTL_ACTION_CLOSE:
      if (m && !m->dead) {
        if (a.flush) {
          m->closing = TRUE;
          m->close_deadline = mono_ms () + CLOSE_FLUSH_MS;
          g_queue_push_tail (&d.closing, m);
          member_flush (m);
        } else {
          member_finish (m);
        }
      }
      break;
    case MCSEC_CTL_ACTION_CHANNEL: {
      guint i = GPOINTER_TO_UINT (mcsec_ctl_group_get_user_data (a.group));
      if (!cluster_may_write () || !mcsec_ctl_group_leading (a.group))
        break; /* its lease ended: the group stepped down */
      CtlChannelConfig *ch = d.cfg->channels->pdata[i];
      gsize len;
      const guint8 *p = g_bytes_get_data (a.data, &len);
      ssize_t n = sendto (d.channel_fds[i], p, len, 0,
                          (struct sockaddr *)&ch->to, ch->to_len);
      mcsec_ctl_channel_sent (a.group, len,
                              n == (ssize_t)len ? NULL
                              : n < 0           ? g_strerror (errno)
                                                : "short write");
      break;
    }
    case MCSEC_CTL_ACTION_LOG:
      log_line (a.event, a.text);
      break;
    case MCSEC_CTL_ACTION_RELAY:
      if (m && !m->dead)
        member_relay (m, a.text, a.data);
      break;
    }
    mcsec_ctl_action_clear (&a);
  }
}

/* A member that does not read: the controller's own queue stays small (it
 * writes into the kernel), but the member's TCP receive window stays shut
 * while bytes wait for it.  Checked every WINDOW_SWEEP_MS; shut for
 * output-stall (10 s) and the member goes. */
static void
window_sweep (gint64 now)
{
  for (GList *l = d.members.head, *nl; l; l = nl) {
    Member *m = l->data;
    int queued = 0, unsent = 0;
    gboolean shut;

    nl = l->next;
    if (m->dead || m->closing || m->fd < 0)
      continue;
    /* bytes wait to be sent, and none is in flight: the peer's window is
     * shut (a slow but reading peer has bytes in flight) */
    shut = ioctl (m->fd, SIOCOUTQ, &queued) == 0 &&
           ioctl (m->fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0 &&
           queued - unsent <= 1;
    if (!shut) {
      m->shut_since = 0;
    } else if (m->shut_since == 0) {
      m->shut_since = now;
    } else if (now - m->shut_since >= d.output_stall_ms) {
      gchar *detail = g_strdup_printf (
          "receive window shut for %" G_GINT64_FORMAT " ms, %d bytes waiting",
          now - m->shut_since, queued);
      if (m->core) {
        mcsec_ctl_conn_not_reading (m->core, detail, now);
      } else {
        log_event ("not-reading", "peer=%s relayed=yes detail=\"%s\"", m->peer,
                   detail);
        member_finish (m);
      }
      g_free (detail);
      run_actions ();
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Relaying: links between controllers (relay.h, docs/cluster.md)           */

static void
link_update_events (Link *k)
{
  guint32 want = ctl_relay_link_events (k->rl);
  if (!k->dead && want != k->events) {
    k->events = want;
    epoll_set (ctl_relay_link_fd (k->rl), k, want, EPOLL_CTL_MOD);
  }
}

/* Events a flood could repeat are logged at most once a second, with how
 * many were not, so that they cannot bury the others. */
typedef struct {
  gint64 window_ms;
  guint64 quiet;
} LogThrottle;

/* TRUE: log this one; *quiet: how many were not since the last */
static gboolean
log_throttle (LogThrottle *t, guint64 *quiet)
{
  gint64 now = mono_ms ();
  if (t->window_ms && now - t->window_ms < 1000) {
    t->quiet++;
    return FALSE;
  }
  t->window_ms = now;
  *quiet = t->quiet;
  t->quiet = 0;
  return TRUE;
}

/* A link that did not prove the cluster key (or came to a controller that
 * does not relay): counted and logged (throttled). */
static void
relay_refused (const char *peer, const char *why)
{
  static LogThrottle t;
  guint64 quiet;

  d.io.relay_link_refusals++;
  if (log_throttle (&t, &quiet))
    log_event ("relay-refused",
               "peer=%s why=\"%s\" not-logged=%" G_GUINT64_FORMAT
               " refusals=%" G_GUINT64_FORMAT,
               peer, why, quiet, d.io.relay_link_refusals);
}

static Link *
link_add (CtlRelayLink *rl, const char *to)
{
  Link *k = g_new0 (Link, 1);
  k->w.kind = K_LINK;
  k->qlink.data = k;
  k->rl = rl;
  k->to = g_strdup (to);
  k->streams = g_hash_table_new (NULL, NULL);
  k->idle_since = mono_ms ();
  k->events = ctl_relay_link_events (rl);
  epoll_set (ctl_relay_link_fd (rl), k, k->events, EPOLL_CTL_ADD);
  g_queue_push_tail_link (&d.links, &k->qlink);
  if (to)
    g_hash_table_insert (d.link_by_leader, g_strdup (to), k);
  d.io.relay_links++;
  return k;
}

static void pending_release (const char *host);
static void member_redirect (Member *m, const char *leader);

/* The link is over: its members go (a follower's are closed without a
 * word and reconnect; the leader's end loses the follower's members). */
static void
link_drop (Link *k, const char *why)
{
  GList *members;

  if (k->dead)
    return;
  if (why && !k->was_up && k->to == NULL) {
    relay_refused (ctl_relay_link_peer (k->rl), why);
  } else if (g_hash_table_size (k->streams) == 0 &&
             (why == NULL || strcmp (why, "closed") == 0)) {
    /* idle: the follower's end closes it after LINK_IDLE_MS */
    log_event ("relay-link-closed", "peer=%s why=\"%s\"",
               k->to ? k->to : ctl_relay_link_peer (k->rl),
               why ? "the other end closed it" : "idle");
  } else if (why) {
    log_event ("relay-link-lost", "peer=%s why=\"%s\" members=%u",
               k->to ? k->to : ctl_relay_link_peer (k->rl), why,
               g_hash_table_size (k->streams));
  }
  if (k->host) {
    pending_release (k->host);
    g_clear_pointer (&k->host, g_free);
  }
  /* dead first: nothing its members' goodbyes run may use it again */
  k->dead = TRUE;
  epoll_ctl (d.epfd, EPOLL_CTL_DEL, ctl_relay_link_fd (k->rl), NULL);
  if (k->to && g_hash_table_lookup (d.link_by_leader, k->to) == k)
    g_hash_table_remove (d.link_by_leader, k->to);
  members = g_hash_table_get_values (k->streams);
  for (GList *l = members; l; l = l->next) {
    Member *m = l->data;
    m->link_closed = TRUE;
    if (k->to && !k->was_up && why && !m->dead && !m->closing)
      member_redirect (m, k->to);
    else
      member_lost (m, "relay link lost");
  }
  g_list_free (members);
  run_actions ();
  ctl_relay_link_free (k->rl);
  k->rl = NULL;
  g_hash_table_unref (k->streams);
  g_free (k->to);
  k->to = NULL;
  g_queue_unlink (&d.links, &k->qlink);
  d.io.relay_links--;
  g_ptr_array_add (d.graveyard, k);
}

/* A link to the leader that never came up (it does not relay, or cannot
 * be reached from here): its members are told where the leader is, as
 * without relaying (REFUSE not-leader, not final), and closed. */
static void
member_redirect (Member *m, const char *leader)
{
  guint8 buf[512];
  mcsec_mike_builder_t b;
  size_t len;
  gchar *text = g_strdup_printf ("leader=%s", leader);

  member_unlink (m);
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_REFUSE);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, MCSEC_MIKE_REASON_NOT_LEADER);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_TEXT, text);
  g_free (text);
  if (mcsec_mike_finish (&b, &len) != MCSEC_OK) {
    member_finish (m);
    return;
  }
  ctl_relay_buf_append (&m->rout, buf, len);
  m->closing = TRUE;
  m->close_deadline = mono_ms () + CLOSE_FLUSH_MS;
  g_queue_push_tail (&d.closing, m);
  member_flush (m);
}

/* The leader's end: a member the follower authenticated. */
static void
link_open (Link *k, guint32 stream, const char *source, const char *identity)
{
  Member *m;
  gchar *peer;

  if (k->to || g_hash_table_contains (k->streams, GUINT_TO_POINTER (stream))) {
    link_drop (k, "an OPEN it may not send");
    return;
  }
  m = g_new0 (Member, 1);
  m->w.kind = K_MEMBER;
  m->link.data = m;
  m->fd = -1;
  m->via = k;
  m->stream = stream;
  g_queue_push_tail_link (&d.members, &m->link);
  g_hash_table_insert (k->streams, GUINT_TO_POINTER (stream), m);
  d.io.relay_accepted++;
  d.io.relay_accepted_open++;
  /* the log names the follower and the member's own address */
  peer = g_strdup_printf ("%s>%s", ctl_relay_link_peer (k->rl), source);
  g_strlcpy (m->peer, peer, sizeof m->peer);
  m->core = mcsec_ctl_conn_new (d.core, peer, identity, mono_ms (),
                                g_get_real_time ());
  g_free (peer);
  mcsec_ctl_conn_set_user_data (m->core, m);
  mcsec_ctl_conn_set_relayed (m->core); /* never relayed on */
  run_actions ();
}

/* The follower's end: bytes from the leader for a relayed member. */
static void
link_data (Member *m, const guint8 *data, gsize len)
{
  if (m->core) { /* the leader's end: the member's bytes */
    mcsec_ctl_conn_input (m->core, data, len, mono_ms ());
    run_actions ();
    return;
  }
  if (ctl_relay_buf_len (&m->rout) + len > d.cfg->max_output) {
    log_event ("not-reading", "peer=%s relayed=yes queued=%zu max-output=%zu",
               m->peer, ctl_relay_buf_len (&m->rout), d.cfg->max_output);
    member_finish (m);
    return;
  }
  ctl_relay_buf_append (&m->rout, data, len);
  if (!m->closing)
    member_flush (m);
}

/* What the link brought: streams opened, bytes, ends; its own end. */
static void
link_process (Link *k)
{
  CtlRelayEvent ev;

  while (!k->dead && ctl_relay_link_next (k->rl, &ev)) {
    Member *m = ev.stream ? g_hash_table_lookup (k->streams,
                                                 GUINT_TO_POINTER (ev.stream))
                          : NULL;
    switch (ev.type) {
    case CTL_RELAY_EV_UP:
      if (strcmp (ctl_relay_link_peer (k->rl), d.cfg->cluster_name) == 0) {
        /* not up: its members are sent on with not-leader */
        link_drop (k, "a link to this controller itself (its advertise?)");
        return;
      }
      k->was_up = TRUE;
      if (k->host) { /* proved: no longer a handshake in flight */
        pending_release (k->host);
        g_clear_pointer (&k->host, g_free);
      }
      log_event ("relay-link-up", "peer=%s end=%s", ctl_relay_link_peer (k->rl),
                 k->to ? "follower" : "leader");
      break;
    case CTL_RELAY_EV_OPEN:
      link_open (k, ev.stream, ev.source, ev.identity);
      break;
    case CTL_RELAY_EV_DATA:
      if (m && !m->dead)
        link_data (m, ev.data, ev.len);
      break;
    case CTL_RELAY_EV_CLOSE:
      if (m == NULL || m->dead)
        break;
      m->link_closed = TRUE;
      if (m->core) {
        member_lost (m, "connection closed"); /* the member went */
      } else if (!m->closing) {
        /* the leader ended it: its last bytes (a REFUSE...) go first */
        m->closing = TRUE;
        m->close_deadline = mono_ms () + CLOSE_FLUSH_MS;
        g_queue_push_tail (&d.closing, m);
        member_flush (m);
      }
      break;
    case CTL_RELAY_EV_LOST:
      link_drop (k, ev.why);
      return;
    }
  }
  if (!k->dead)
    link_update_events (k);
}

/* Room again: the follower's members whose output waited in the core. */
static void
link_unblock (Link *k)
{
  GList *members;
  if (k->dead || !k->blocked ||
      ctl_relay_link_queued (k->rl) >= d.cfg->relay_queue / 2)
    return;
  k->blocked = FALSE;
  members = g_hash_table_get_values (k->streams);
  for (GList *l = members; l; l = l->next) {
    Member *m = l->data;
    if (m->dead)
      continue;
    if (m->core) {
      member_flush (m); /* the leader's end: output waited in the core */
    } else if (m->paused) {
      /* the follower's end: read it again, next turn (TLS may hold
       * records epoll does not see) */
      m->paused = FALSE;
      member_events (m, m->events | EPOLLIN);
      if (!m->again) {
        m->again = TRUE;
        g_ptr_array_add (d.again, m);
      }
    }
  }
  g_list_free (members);
}

static void
link_io (Link *k, guint32 events)
{
  if (k->dead)
    return;
  ctl_relay_link_io (k->rl, events, link_may_write (k), mono_ms ());
  link_process (k);
  link_unblock (k);
}

static void
link_flush (Link *k)
{
  if (!k->dead && ctl_relay_link_is_up (k->rl) &&
      ctl_relay_link_queued (k->rl) && link_may_write (k))
    ctl_relay_link_io (k->rl, EPOLLOUT, TRUE, mono_ms ());
  if (!k->dead)
    link_update_events (k);
  if (!k->dead && k->blocked && !k->unblocking) {
    k->unblocking = TRUE; /* member_flush comes back here */
    link_unblock (k);
    k->unblocking = FALSE;
  }
}

/* The core hands a member whose JOIN is for a group led elsewhere to its
 * leader: its stream goes over the link to that leader (made when none is
 * up), everything it sent so far first.  Without a link, the member is
 * sent to the leader (not-leader), as without relaying. */
static void
member_relay (Member *m, const char *leader, GBytes *bytes)
{
  Link *k = g_hash_table_lookup (d.link_by_leader, leader);
  guint8 open[2 + 2 * CTL_RELAY_MAX_NAME];
  gsize n, len;
  const guint8 *p = g_bytes_get_data (bytes, &len);

  n = ctl_relay_open_build (m->peer, mcsec_ctl_conn_identity (m->core), open);
  /* never to itself (a leader key of this controller's previous run, or
   * an advertise that names it): sent on with not-leader instead */
  if (strcmp (leader, d.cfg->advertise) == 0) {
    mcsec_ctl_conn_free (m->core);
    m->core = NULL;
    member_redirect (m, leader);
    return;
  }
  if (k == NULL && n) {
    GError *error = NULL;
    CtlRelayLink *rl = ctl_relay_link_connect (
        d.relay_ctx, leader, d.relay_key, d.cfg->cluster_name,
        mono_ms () + LINK_DEADLINE_MS, &error);
    if (rl == NULL) {
      /* every member for that leader tries again (throttled) */
      static LogThrottle t;
      guint64 quiet;
      if (log_throttle (&t, &quiet))
        log_event ("relay-link-lost",
                   "peer=%s why=\"%s\" members=0 not-logged=%" G_GUINT64_FORMAT,
                   leader, error->message, quiet);
      g_error_free (error);
    } else {
      k = link_add (rl, leader);
    }
  }
  mcsec_ctl_conn_free (m->core);
  m->core = NULL;
  if (n == 0) {
    member_finish (m);
    return;
  }
  if (k == NULL) {
    member_redirect (m, leader); /* as without relaying */
    return;
  }
  m->via = k;
  m->stream = ctl_relay_stream_next (&k->next_stream, k->streams);
  g_hash_table_insert (k->streams, GUINT_TO_POINTER (m->stream), m);
  d.io.relayed_open++;
  ctl_relay_link_send (k->rl, CTL_RELAY_OPEN, m->stream, open, n);
  ctl_relay_link_send (k->rl, CTL_RELAY_DATA, m->stream, p, len);
  link_flush (k);
}

/* Members whose goodbye could not go out in time.  Gathered first:
 * finishing one may finish another (its link drains, and the leader's end
 * flushes and finishes the members that waited on it), which frees that
 * one's node of d.closing. */
static void
closing_expire (gint64 now)
{
  GPtrArray *due = NULL;

  for (GList *l = d.closing.head; l; l = l->next) {
    Member *m = l->data;
    if (now >= m->close_deadline) {
      if (due == NULL)
        due = g_ptr_array_new ();
      g_ptr_array_add (due, m);
    }
  }
  for (guint i = 0; due && i < due->len; i++)
    member_finish (due->pdata[i]); /* a dead one: nothing (graveyard) */
  if (due)
    g_ptr_array_free (due, TRUE);
}

/* Deadlines, stalls and idle links (every WINDOW_SWEEP_MS). */
static void
links_sweep (gint64 now)
{
  for (GList *l = d.links.head, *nl; l; l = nl) {
    Link *k = l->data;
    nl = l->next;
    ctl_relay_link_check (k->rl, now, d.output_stall_ms);
    link_process (k);
    /* the follower closes its idle links; the leader drops one left idle
     * three times as long (a follower gone without a word) */
    if (!k->dead && g_hash_table_size (k->streams) == 0 &&
        now - k->idle_since >= (k->to ? 1 : 3) * LINK_IDLE_MS)
      link_drop (k, NULL);
  }
}

/* ------------------------------------------------------------------------ */
/* TLS handshakes on worker threads                                           */

/* The handshake chose the relay links' ALPN: a controller's link. */
static gboolean
handshake_is_relay (SSL *ssl)
{
  const guint8 *alpn = NULL;
  unsigned len = 0;
  SSL_get0_alpn_selected (ssl, &alpn, &len);
  return len == strlen (CTL_RELAY_ALPN) &&
         memcmp (alpn, CTL_RELAY_ALPN, len) == 0;
}

/* The server's ALPN (on a worker thread, while the ClientHello is read):
 * a controller's relay link asks for it, members ask for none.  A link
 * is asked for no certificate: its HELLO must prove the cluster key
 * instead (relay.h), before anything it sends is read. */
static int
alpn_select (SSL *ssl, const unsigned char **out, unsigned char *outlen,
             const unsigned char *in, unsigned int inlen, void *arg)
{
  (void)arg;
  if (!d.relay)
    return SSL_TLSEXT_ERR_NOACK; /* then a member's handshake: a certificate */
  for (unsigned i = 0; i < inlen; i += 1u + in[i])
    if (in[i] == strlen (CTL_RELAY_ALPN) && i + 1u + in[i] <= inlen &&
        memcmp (in + i + 1, CTL_RELAY_ALPN, in[i]) == 0) {
      *out = in + i + 1;
      *outlen = in[i];
      SSL_set_verify (ssl, SSL_VERIFY_NONE, NULL);
      return SSL_TLSEXT_ERR_OK;
    }
  return SSL_TLSEXT_ERR_NOACK;
}

static gchar *
peer_identity (SSL *ssl)
{
  X509 *cert = SSL_get1_peer_certificate (ssl);
  char cn[MCSEC_MIKE_MAX_STRING + 1];
  int n;

  if (cert == NULL)
    return NULL;
  n = X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName,
                                 cn, sizeof cn);
  X509_free (cert);
  if (n <= 0 || (size_t)n != strlen (cn))
    return NULL;
  return g_strdup (cn);
}

static void
handshake_done (Worker *w, Handshake *h)
{
  epoll_ctl (w->epfd, EPOLL_CTL_DEL, h->fd, NULL);
  w->active = g_list_remove (w->active, h);
  g_mutex_lock (&d.done_lock);
  g_queue_push_tail (&d.done, h);
  g_mutex_unlock (&d.done_lock);
  efd_signal (d.inbox);
}

/* Advance a handshake; TRUE when it ended (done or failed). */
static gboolean
handshake_step (Worker *w, Handshake *h)
{
  int r = SSL_do_handshake (h->ssl);
  guint32 want;

  if (r == 1) {
    if (handshake_is_relay (h->ssl))
      return TRUE; /* a relay link: no certificate, its HELLO proves */
    h->identity = peer_identity (h->ssl);
    if (h->identity == NULL)
      h->why = g_strdup ("certificate without a usable common name");
    return TRUE;
  }
  switch (SSL_get_error (h->ssl, r)) {
  case SSL_ERROR_WANT_READ:
    want = EPOLLIN;
    break;
  case SSL_ERROR_WANT_WRITE:
    want = EPOLLOUT;
    break;
  default: {
    long vr = SSL_get_verify_result (h->ssl);
    unsigned long e = ERR_peek_last_error ();
    if (vr != X509_V_OK)
      h->why = g_strdup_printf ("member certificate rejected: %s",
                                X509_verify_cert_error_string (vr));
    else
      h->why = g_strdup_printf ("TLS: %s", e ? ERR_reason_error_string (e)
                                             : "connection closed");
    ERR_clear_error ();
    return TRUE;
  }
  }
  if (want != h->events) {
    struct epoll_event ev = {.events = want, .data.ptr = h};
    epoll_ctl (w->epfd, EPOLL_CTL_MOD, h->fd, &ev);
    h->events = want;
  }
  return FALSE;
}

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  struct epoll_event evs[64];
  /* a worker's thread never takes the signals the main loop reads */
  sigset_t all;
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, NULL);

  while (!g_atomic_int_get (&d.stopping_workers)) {
    gint64 now = mono_ms (), next = now + 1000;
    int n, timeout;
    for (GList *l = w->active; l; l = l->next)
      next = MIN (next, ((Handshake *)l->data)->deadline);
    timeout = next > now ? (int)(next - now) : 0;
    n = epoll_wait (w->epfd, evs, G_N_ELEMENTS (evs), timeout);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == w) {
        Handshake *h;
        efd_drain (w->inbox);
        for (;;) {
          g_mutex_lock (&w->lock);
          h = g_queue_pop_head (&w->in);
          g_mutex_unlock (&w->lock);
          if (h == NULL)
            break;
          {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = h};
            h->events = EPOLLIN;
            epoll_ctl (w->epfd, EPOLL_CTL_ADD, h->fd, &ev);
          }
          w->active = g_list_prepend (w->active, h);
          if (handshake_step (w, h))
            handshake_done (w, h);
        }
        continue;
      }
      if (handshake_step (w, evs[i].data.ptr))
        handshake_done (w, evs[i].data.ptr);
    }
    now = mono_ms ();
    for (GList *l = w->active, *next_l; l; l = next_l) {
      Handshake *h = l->data;
      next_l = l->next;
      if (now >= h->deadline) {
        h->timed_out = TRUE;
        h->why = g_strdup ("handshake too slow");
        handshake_done (w, h);
      }
    }
  }
  return NULL;
}

static void
handshake_free (Handshake *h)
{
  if (h->ssl)
    SSL_free (h->ssl);
  if (h->fd >= 0)
    close (h->fd);
  g_free (h->identity);
  g_free (h->why);
  g_free (h);
}

static void
pending_release (const char *host)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (d.pending_by_host, host));
  if (n <= 1)
    g_hash_table_remove (d.pending_by_host, host);
  else
    g_hash_table_insert (d.pending_by_host, g_strdup (host),
                         GUINT_TO_POINTER (n - 1));
  d.io.pending_handshakes--;
}

/* Finished handshakes become members of the core (main thread). */
static void
take_handshakes (void)
{
  Handshake *h;

  efd_drain (d.inbox);
  for (;;) {
    g_mutex_lock (&d.done_lock);
    h = g_queue_pop_head (&d.done);
    g_mutex_unlock (&d.done_lock);
    if (h == NULL)
      break;
    pending_release (h->host);
    if (h->why) {
      gint64 now = mono_ms ();
      d.io.handshake_failures++;
      if (h->timed_out)
        d.io.handshake_timeouts++;
      /* at most 10 lines a second: a flood of strangers must not bury the
       * other events (the count says how many were not logged) */
      if (now - d.hf_window_ms >= 1000) {
        if (d.hf_quiet)
          log_event ("handshake-failed",
                     "peer=- why=\"%u more failed handshakes not logged\"",
                     d.hf_quiet);
        d.hf_window_ms = now;
        d.hf_logged = d.hf_quiet = 0;
      }
      if (d.hf_logged++ < 10)
        log_event ("handshake-failed", "peer=%s why=\"%s\"", h->peer, h->why);
      else
        d.hf_quiet++;
      handshake_free (h);
      continue;
    }
    if (handshake_is_relay (h->ssl)) {
      /* a follower's relay link (alpn_select offers it only when this
       * controller relays): it proves the cluster key first, and until
       * then counts as a handshake in flight against the caps */
      Link *k = link_add (
          ctl_relay_link_accept (h->fd, h->ssl, h->peer, d.relay_key,
                                 d.cfg->cluster_name,
                                 mono_ms () + d.cfg->handshake_timeout_ms),
          NULL);
      guint n =
          GPOINTER_TO_UINT (g_hash_table_lookup (d.pending_by_host, h->host));
      g_hash_table_insert (d.pending_by_host, g_strdup (h->host),
                           GUINT_TO_POINTER (n + 1));
      d.io.pending_handshakes++;
      k->host = g_strdup (h->host);
      h->fd = -1;
      h->ssl = NULL;
      handshake_free (h);
      link_io (k, EPOLLIN); /* its HELLO may have come already */
      continue;
    }
    {
      Member *m = g_new0 (Member, 1);
      m->w.kind = K_MEMBER;
      m->link.data = m;
      g_queue_push_tail_link (&d.members, &m->link);
      m->fd = h->fd;
      m->ssl = h->ssl;
      g_strlcpy (m->peer, h->peer, sizeof m->peer);
      h->fd = -1;
      h->ssl = NULL;
      m->events = EPOLLIN;
      epoll_set (m->fd, m, EPOLLIN, EPOLL_CTL_ADD);
      d.io.open_connections++;
      m->core = mcsec_ctl_conn_new (d.core, m->peer, h->identity, mono_ms (),
                                    g_get_real_time ());
      mcsec_ctl_conn_set_user_data (m->core, m);
      handshake_free (h);
      run_actions ();
      /* the member may have sent its JOIN with the handshake's last flight */
      if (!m->dead)
        member_io (m, EPOLLIN);
    }
  }
}

/* Whom the handshake caps count a connection against: an IPv4 address,
 * or an IPv6 /64 (one host commonly holds a whole /64). */
static void
source_of (const struct sockaddr_storage *ss, const char *host, char *out,
           gsize size)
{
  const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
  if (ss->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr)) {
    const guint8 *a = in6->sin6_addr.s6_addr;
    g_snprintf (out, size, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", a[0],
                a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
  } else {
    g_strlcpy (out, host, size);
  }
}

static void
on_accept (void)
{
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN + 8] = "?", port[8] = "?";
    char peer[INET6_ADDRSTRLEN + 8];
    int one = 1;
    guint n;
    Handshake *h;
    Worker *w;
    int fd = accept4 (d.listen_fd, (struct sockaddr *)&ss, &sl,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
        return;
      /* out of descriptors or memory: stop accepting for a while rather
       * than spin on a listen socket that stays readable */
      d.io.accept_errors++;
      d.io.accept_backoffs++;
      d.backoff_ms = d.backoff_ms ? MIN (d.backoff_ms * 2, BACKOFF_MAX_MS)
                                  : BACKOFF_MIN_MS;
      if (d.io.accept_backoffs % 100 == 1)
        log_event ("accept-error",
                   "error=\"%s\" backoff-ms=%u backoffs=%" G_GUINT64_FORMAT,
                   g_strerror (errno), d.backoff_ms, d.io.accept_backoffs);
      epoll_ctl (d.epfd, EPOLL_CTL_DEL, d.listen_fd, NULL);
      d.listen_paused = TRUE;
      d.accept_resume_ms = mono_ms () + d.backoff_ms;
      return;
    }
    d.backoff_ms = 0;
    d.io.connections++;
    getnameinfo ((struct sockaddr *)&ss, sl, host, sizeof host, port,
                 sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    g_snprintf (peer, sizeof peer, "%s:%s", host, port);
    source_of (&ss, host, host, sizeof host);
    n = GPOINTER_TO_UINT (g_hash_table_lookup (d.pending_by_host, host));
    if (d.io.pending_handshakes >= d.cfg->max_handshakes) {
      d.io.refused_total++;
      close (fd);
      continue;
    }
    if (n >= d.cfg->max_handshakes_per_source) {
      d.io.refused_per_source++;
      if (d.io.refused_per_source % 1000 == 1)
        log_event ("connections-refused",
                   "peer=%s why=\"too many handshakes from this address\" "
                   "max-handshakes-per-source=%u refused=%" G_GUINT64_FORMAT,
                   host, d.cfg->max_handshakes_per_source,
                   d.io.refused_per_source);
      close (fd);
      continue;
    }
    g_hash_table_insert (d.pending_by_host, g_strdup (host),
                         GUINT_TO_POINTER (n + 1));
    d.io.pending_handshakes++;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    h = g_new0 (Handshake, 1);
    h->fd = fd;
    h->ssl = SSL_new (d.ctx);
    if (h->ssl == NULL) {
      ERR_clear_error ();
      pending_release (host);
      handshake_free (h);
      continue;
    }
    SSL_set_fd (h->ssl, fd);
    SSL_set_accept_state (h->ssl);
    h->deadline = mono_ms () + d.cfg->handshake_timeout_ms;
    g_strlcpy (h->host, host, sizeof h->host);
    g_strlcpy (h->peer, peer, sizeof h->peer);
    w = &d.workers[d.next_worker++ % d.n_workers];
    g_mutex_lock (&w->lock);
    g_queue_push_tail (&w->in, h);
    g_mutex_unlock (&w->lock);
    efd_signal (w->inbox);
  }
}

/* ------------------------------------------------------------------------ */
/* The admin socket: one line in, one JSON answer out, never blocking        */

static void
admin_finish (AdminClient *a)
{
  if (a->dead)
    return;
  a->dead = TRUE;
  epoll_ctl (d.epfd, EPOLL_CTL_DEL, a->fd, NULL);
  close (a->fd);
  if (a->answer) {
    OPENSSL_cleanse (a->answer, a->len); /* export-keys holds keys */
    g_free (a->answer);
    a->answer = NULL;
  }
  d.n_admin--;
  g_queue_unlink (&d.admins, &a->link);
  g_ptr_array_add (d.graveyard, a);
}

static void
admin_write (AdminClient *a)
{
  while (a->off < a->len) {
    ssize_t n = write (a->fd, a->answer + a->off, a->len - a->off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      epoll_set (a->fd, a, EPOLLOUT, EPOLL_CTL_MOD);
      return;
    }
    if (n <= 0) {
      admin_finish (a);
      return;
    }
    a->off += (gsize)n;
  }
  admin_finish (a);
}

static void
admin_io (AdminClient *a, guint32 events)
{
  if (a->dead)
    return;
  if (a->answer) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
      admin_write (a);
    return;
  }
  for (;;) {
    ssize_t r = read (a->fd, a->line + a->n, sizeof a->line - 1 - a->n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN)
      return;
    if (r <= 0 && a->n == 0) {
      admin_finish (a);
      return;
    }
    if (r > 0)
      a->n += (gsize)r;
    if (r <= 0 || memchr (a->line, '\n', a->n) || a->n == sizeof a->line - 1)
      break;
  }
  a->line[a->n] = '\0';
  if (d.cluster && strcmp (g_strchomp (a->line), "cluster") == 0) {
    gchar *c = ctl_cluster_stats_json (d.cluster, mono_ms ());
    a->answer = g_strdup_printf ("{\"ok\":true,\"cluster\":%s}\n", c);
    g_free (c);
  } else {
    a->answer =
        mcsec_ctl_admin (d.core, a->line, mono_ms (), g_get_real_time ());
  }
  a->len = strlen (a->answer);
  run_actions ();
  admin_write (a);
}

static void
on_admin_accept (void)
{
  for (;;) {
    int fd = accept4 (d.admin_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    AdminClient *a;
    if (fd < 0)
      return;
    if (d.n_admin >= ADMIN_MAX_CLIENTS) {
      close (fd);
      continue;
    }
    a = g_new0 (AdminClient, 1);
    a->w.kind = K_ADMIN;
    a->link.data = a;
    g_queue_push_tail_link (&d.admins, &a->link);
    a->fd = fd;
    a->deadline = mono_ms () + ADMIN_TIMEOUT_MS;
    d.n_admin++;
    epoll_set (fd, a, EPOLLIN, EPOLL_CTL_ADD);
  }
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                     */

static gboolean
setup_listen (GError **error)
{
  struct addrinfo hints = {0}, *res = NULL;
  gchar *host = NULL, *port = NULL;
  const char *listen_at = d.cfg->listen;
  const char *colon = strrchr (listen_at, ':');
  int one = 1, rc;
  gboolean ok = FALSE;

  if (colon == NULL || colon == listen_at) {
    ctl_config_error (d.cfg, error, "controller", "listen",
                      "'%s' is not HOST:PORT", listen_at);
    return FALSE;
  }
  host = g_strndup (listen_at, (gsize)(colon - listen_at));
  if (host[0] == '[' && host[strlen (host) - 1] == ']') {
    gchar *h = g_strndup (host + 1, strlen (host) - 2);
    g_free (host);
    host = h;
  }
  port = g_strdup (colon + 1);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0) {
    ctl_config_error (d.cfg, error, "controller", "listen", "'%s': %s",
                      listen_at, gai_strerror (rc));
    goto out;
  }
  d.listen_fd =
      socket (res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (d.listen_fd < 0 ||
      setsockopt (d.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
          0 ||
      bind (d.listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
      listen (d.listen_fd, 4096) != 0) {
    ctl_config_error (d.cfg, error, "controller", "listen",
                      "cannot listen on %s: %s", listen_at, g_strerror (errno));
    freeaddrinfo (res);
    goto out;
  }
  freeaddrinfo (res);
  ok = TRUE;
out:
  g_free (host);
  g_free (port);
  return ok;
}

static gboolean
setup_admin (GError **error)
{
  struct sockaddr_un sa = {0};
  mode_t old;
  const char *path = d.cfg->admin_socket;

  if (strlen (path) >= sizeof sa.sun_path) {
    ctl_config_error (d.cfg, error, "controller", "admin-socket",
                      "path too long");
    return FALSE;
  }
  sa.sun_family = AF_UNIX;
  strcpy (sa.sun_path, path);
  unlink (path);
  d.admin_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  old = umask (0077); /* only the controller's user may administer it */
  if (d.admin_fd < 0 ||
      bind (d.admin_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen (d.admin_fd, 16) != 0) {
    umask (old);
    ctl_config_error (d.cfg, error, "controller", "admin-socket",
                      "cannot listen on %s: %s", path, g_strerror (errno));
    return FALSE;
  }
  umask (old);
  {
    struct stat st;
    if (stat (path, &st) == 0) {
      d.admin_dev = st.st_dev;
      d.admin_ino = st.st_ino;
    }
  }
  return TRUE;
}

/* The rekey channels' sockets, one per key tree group. */
static gboolean
setup_channels (GError **error)
{
  guint n = mcsec_ctl_n_groups (d.core);
  d.channel_fds = g_new (int, n);
  for (guint i = 0; i < n; i++) {
    CtlChannelConfig *ch = d.cfg->channels->pdata[i];
    mcsec_ctl_group_t *g = mcsec_ctl_group_nth (d.core, i);
    int fd, one = 1, ttl;
    unsigned ifindex;
    gboolean ok;

    d.channel_fds[i] = -1;
    mcsec_ctl_group_set_user_data (g, GUINT_TO_POINTER (i));
    if (ch == NULL)
      continue;
    ttl = (int)ch->ttl;
    ifindex = ch->interface ? if_nametoindex (ch->interface) : 0;
    fd =
        socket (ch->to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    d.channel_fds[i] = fd;
    if (ch->to.ss_family == AF_INET) {
      struct ip_mreqn mr = {0};
      unsigned char t = (unsigned char)ttl, loop = 1;
      mr.imr_ifindex = (int)ifindex;
      ok = fd >= 0 &&
           setsockopt (fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof t) == 0 &&
           setsockopt (fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) ==
               0 &&
           (!ifindex ||
            setsockopt (fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) == 0);
    } else {
      ok = fd >= 0 &&
           setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl,
                       sizeof ttl) == 0 &&
           setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one,
                       sizeof one) == 0 &&
           (!ifindex || setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_IF,
                                    &ifindex, sizeof ifindex) == 0);
    }
    if (!ok) {
      gchar *sec =
          g_strdup_printf ("group %s", mcsec_ctl_group_config (g)->name);
      ctl_config_error (d.cfg, error, sec, "rekey-interface", "%s",
                        g_strerror (errno));
      g_free (sec);
      return FALSE;
    }
  }
  return TRUE;
}

/* Descriptors for every member, and no key in a core file. */
static void
setup_limits (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
      log_event ("warning", "what=\"cannot raise the open-file limit: %s\"",
                 g_strerror (errno));
  }
  rl.rlim_cur = rl.rlim_max = 0;
  if (setrlimit (RLIMIT_CORE, &rl) != 0 ||
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    log_event ("warning", "what=\"cannot keep keys out of core dumps: %s\"",
               g_strerror (errno));
}

static gboolean
setup_workers (GError **error)
{
  long cpus = sysconf (_SC_NPROCESSORS_ONLN);
  d.n_workers = d.cfg->workers ? d.cfg->workers : (guint)MAX (cpus, 1);
  d.io.workers = d.n_workers;
  d.workers = g_new0 (Worker, d.n_workers);
  for (guint i = 0; i < d.n_workers; i++) {
    Worker *w = &d.workers[i];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    g_mutex_init (&w->lock);
    g_queue_init (&w->in);
    w->epfd = epoll_create1 (EPOLL_CLOEXEC);
    w->inbox = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->inbox < 0 ||
        epoll_ctl (w->epfd, EPOLL_CTL_ADD, w->inbox, &ev) != 0 ||
        pthread_create (&w->thread, NULL, worker_main, w) != 0) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "cannot start TLS worker %u: %s", i, g_strerror (errno));
      d.n_workers = i;
      return FALSE;
    }
  }
  return TRUE;
}

static void
stop_workers (void)
{
  g_atomic_int_set (&d.stopping_workers, 1);
  for (guint i = 0; i < d.n_workers; i++) {
    Worker *w = &d.workers[i];
    Handshake *h;
    efd_signal (w->inbox);
    pthread_join (w->thread, NULL);
    while ((h = g_queue_pop_head (&w->in)) != NULL)
      handshake_free (h);
    g_list_free_full (w->active, (GDestroyNotify)handshake_free);
    close (w->epfd);
    close (w->inbox);
    g_mutex_clear (&w->lock);
  }
  {
    Handshake *h;
    while ((h = g_queue_pop_head (&d.done)) != NULL)
      handshake_free (h);
  }
  g_free (d.workers);
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                   */

/* The core's settings from the configuration's [controller]. */
static void
core_config (mcsec_ctl_config_t *cc)
{
  cc->rejoin_window_ms = d.cfg->rejoin_window_ms;
  cc->allow_key_export = d.cfg->allow_key_export;
  cc->max_output = d.cfg->max_output;
  cc->repair_per_s = d.cfg->repair_per_s;
}

/* SIGHUP: the configuration file again (docs/controller.md "Reloading").
 * A file that does not load changes nothing; otherwise what can change
 * live does (config.c: [controller]; the core: the groups), and what
 * cannot is logged as waiting for a restart. */
static void
reload (void)
{
  GError *error = NULL;
  CtlConfig *next = ctl_config_load (d.cfg->path, NULL, &error);
  GPtrArray *changed, *restart;
  mcsec_ctl_config_t cc = {0};

  if (next == NULL) {
    log_event ("reload-failed",
               "why=\"%s\" action=\"the running configuration stays\"",
               error->message);
    g_error_free (error);
    return;
  }
  config_warnings (next);
  changed = g_ptr_array_new_with_free_func (g_free);
  restart = g_ptr_array_new_with_free_func (g_free);
  ctl_config_update (d.cfg, next, changed, restart);
  core_config (&cc);
  mcsec_ctl_reload (d.core, &cc, g_ptr_array_ref (next->groups), changed,
                    restart, mono_ms ());
  run_actions ();
  g_ptr_array_unref (changed);
  g_ptr_array_unref (restart);
  ctl_config_free (next);
}

static void
loop_run (void)
{
  struct epoll_event evs[256];
  gint64 cluster_next =
      d.cluster ? ctl_cluster_turn (d.cluster, mono_ms ()) : G_MAXINT64;
  gint64 next = mcsec_ctl_tick (d.core, mono_ms ());

  run_actions ();
  while (!d.stopping) {
    gint64 now = mono_ms ();
    gint64 due = MIN (next, cluster_next);
    int timeout, n;

    if (d.listen_paused)
      due = MIN (due, d.accept_resume_ms);
    for (GList *l = d.closing.head; l; l = l->next)
      due = MIN (due, ((Member *)l->data)->close_deadline);
    if (d.n_admin)
      due = MIN (due, now + 200); /* admin deadlines, checked below */
    timeout = due > now ? (int)MIN (due - now, 1000) : 0;
    if (d.again->len)
      timeout = 0;
    mcsec_ctl_set_io_stats (d.core, &d.io);
    n = epoll_wait (d.epfd, evs, G_N_ELEMENTS (evs), timeout);
    /* the cluster first: a lease that ran out (a stop past its TTL) steps
     * the groups down before any member's message reaches the core; what
     * links from followers still queue was issued under it and never
     * goes out (the links are dropped at the end of this turn) */
    if (d.cluster && !ctl_cluster_may_write (d.cluster, mono_ms ()))
      d.links_fenced = TRUE;
    if (d.cluster) {
      cluster_next = ctl_cluster_turn (d.cluster, mono_ms ());
      run_actions ();
    }
    /* members whose read budget ran out last turn */
    if (d.again->len) {
      GPtrArray *todo = d.again;
      d.again = g_ptr_array_new ();
      for (guint i = 0; i < todo->len; i++) {
        Member *m = todo->pdata[i];
        m->again = FALSE;
        member_io (m, EPOLLIN);
      }
      g_ptr_array_unref (todo);
    }
    for (int i = 0; i < n; i++) {
      Watch *w = evs[i].data.ptr;
      switch (w->kind) {
      case K_LISTEN:
        on_accept ();
        break;
      case K_ADMIN_LISTEN:
        on_admin_accept ();
        break;
      case K_ADMIN:
        admin_io ((AdminClient *)w, evs[i].events);
        break;
      case K_MEMBER:
        member_io ((Member *)w, evs[i].events);
        break;
      case K_INBOX:
        take_handshakes ();
        break;
      case K_CLUSTER: /* its events were taken by the turn above */
        break;
      case K_LINK:
        link_io ((Link *)w, evs[i].events);
        break;
      case K_SIGNAL: {
        struct signalfd_siginfo si;
        if (read (d.sig_fd, &si, sizeof si) != sizeof si)
          break;
        if (si.ssi_signo == SIGHUP)
          reload ();
        else
          d.stopping = TRUE;
        break;
      }
      }
    }
    now = mono_ms ();
    if (d.listen_paused && now >= d.accept_resume_ms) {
      d.listen_paused = FALSE;
      epoll_set (d.listen_fd, &d.listen_w, EPOLLIN, EPOLL_CTL_ADD);
    }
    closing_expire (now);
    /* admin clients that say nothing are closed: they never hold the
     * loop, and only ADMIN_MAX_CLIENTS may wait at once */
    for (GList *l = d.admins.head, *nl; l; l = nl) {
      AdminClient *a = l->data;
      nl = l->next;
      if (now >= a->deadline)
        admin_finish (a);
    }
    if (now >= d.window_sweep_ms) {
      d.window_sweep_ms = now + WINDOW_SWEEP_MS;
      window_sweep (now);
      links_sweep (now);
    }
    if (d.links_fenced) {
      for (GList *l = d.links.head, *nl; l; l = nl) {
        nl = l->next;
        if (((Link *)l->data)->to == NULL)
          link_drop (l->data, "this controller's lease ran out");
      }
      d.links_fenced = FALSE;
    }
    if (d.cluster)
      ctl_cluster_sync_deadline (d.cluster);
    next = mcsec_ctl_tick (d.core, now);
    run_actions ();
    for (guint i = 0; i < d.graveyard->len; i++)
      g_free (d.graveyard->pdata[i]);
    g_ptr_array_set_size (d.graveyard, 0);
  }
}

/* The command line, the GLib way: the configuration's path in *config,
 * --check in *check; 0 to go on, -1 to exit 0 (--version), else the exit
 * status. */
static int
parse_options (int *argc, char ***argv, const char **config, gboolean *check)
{
  static gboolean version;
  const GOptionEntry entries[] = {
      {"check", 0, 0, G_OPTION_ARG_NONE, check,
       "Load and check the configuration and the credentials it names, "
       "then exit (0: usable)",
       NULL},
      {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
      G_OPTION_ENTRY_NULL};
  GOptionContext *ctx = g_option_context_new ("CONFIG");
  GError *error = NULL;

  g_option_context_set_summary (
      ctx, "Run the mcsec group controller with the configuration CONFIG\n"
           "(docs/controller.md, mcsec-controller.conf(5)).  Logs go to "
           "standard error,\none event per line.  SIGHUP reloads CONFIG; "
           "SIGINT or SIGTERM stops it.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, argc, argv, &error)) {
    fprintf (stderr, "mcsec-controller: %s (see mcsec-controller --help)\n",
             error->message);
    g_error_free (error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (version) {
    printf ("mcsec-controller %s\n", MCSEC_VERSION);
    return -1;
  }
  if (*argc != 2) {
    fprintf (stderr, "mcsec-controller: %s (see mcsec-controller --help)\n",
             *argc < 2 ? "which configuration? mcsec-controller CONFIG"
                       : "one configuration file only");
    return 2;
  }
  *config = (*argv)[1];
  return 0;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  gboolean check = FALSE;
  const char *config = NULL;
  sigset_t sigs;
  mcsec_ctl_config_t cc = {0};
  int rc = parse_options (&argc, &argv, &config, &check);

  if (rc != 0)
    return rc < 0 ? 0 : rc;
  signal (SIGPIPE, SIG_IGN);
  d.journal = stderr_is_journal ();
  d.listen_fd = d.admin_fd = -1;
  d.cfg = ctl_config_load (config, NULL, &error);
  if (d.cfg == NULL ||
      !ctl_config_credentials (d.cfg, &d.ctx, &d.update_key, &error))
    return fatal ("%s", error->message);
  if (check) {
    /* the cluster's files as a start reads them (etcd is not reached) */
    if (d.cfg->etcd && !ctl_cluster_check_files (d.cfg, &error))
      return fatal ("%s", error->message);
    /* deprecated names: the file loads, but says what to write instead */
    for (guint i = 0; i < d.cfg->warnings->len; i++)
      fprintf (stderr, "%smcsec-controller: warning: %s\n",
               d.journal ? "<4>" : "", (const char *)d.cfg->warnings->pdata[i]);
    printf ("%s: OK (%u groups%s)\n", config, d.cfg->groups->len,
            d.cfg->warnings->len ? ", with warnings" : "");
    return 0;
  }
  config_warnings (d.cfg);
  setup_limits ();
  /* blocked before any thread starts (the cluster's etcd threads, the TLS
   * workers): the loop reads them from a signalfd, no thread dies of them */
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGINT);
  sigaddset (&sigs, SIGTERM);
  sigaddset (&sigs, SIGHUP);
  sigprocmask (SIG_BLOCK, &sigs, NULL);
  if (d.cfg->etcd) {
    d.cluster = ctl_cluster_new (d.cfg, log_event, &error);
    if (d.cluster == NULL) {
      GError *e2 = NULL;
      /* a setting's own error already names it (etcd-ca, ...) */
      if (g_error_matches (error, G_KEY_FILE_ERROR,
                           G_KEY_FILE_ERROR_INVALID_VALUE))
        return fatal ("%s", error->message);
      ctl_config_error (d.cfg, &e2, "cluster", "etcd", "%s", error->message);
      return fatal ("%s", e2->message);
    }
    d.store = ctl_cluster_store (d.cluster);
    cc.cluster = TRUE;
    if (!ctl_cluster_signing_key (d.cluster, &d.update_key, &error))
      return fatal ("%s", error->message);
    /* with a cluster key, SAs are kept sealed in etcd: a failover adopts
     * them instead of rekeying (docs/cluster.md) */
    cc.store_seals = ctl_etcd_store_seals (d.store);
    /* relaying: members of groups led elsewhere are served through us */
    if (d.cfg->relay) {
      if (!ctl_cluster_relay_key (d.cluster, d.relay_key))
        return fatal ("[cluster] relay: no key derived from cluster-key");
      d.relay_ctx = ctl_relay_client_ctx (d.cfg->ca, &error);
      if (d.relay_ctx == NULL)
        return fatal ("[cluster] relay: %s", error->message);
      d.relay = cc.relay = TRUE;
    }
    /* no state in it, but the admin socket lives there */
    if (g_mkdir_with_parents (d.cfg->state_dir, 0700) != 0)
      return fatal ("[controller] state-dir: %s: %s", d.cfg->state_dir,
                    g_strerror (errno));
  } else {
    d.store = ctl_file_store_open (d.cfg->state_dir, &error);
  }
  if (d.store == NULL) {
    GError *e2 = NULL;
    ctl_config_error (d.cfg, &e2, "controller", "state-dir", "%s",
                      error->message);
    return fatal ("%s", e2->message);
  }
  cc.update_key = d.update_key;
  core_config (&cc);
  cc.output_stall_ms = d.output_stall_ms = MCSEC_CTL_OUTPUT_STALL_MS_DEFAULT;
  d.core = mcsec_ctl_new (&cc, d.store, g_ptr_array_ref (d.cfg->groups),
                          mono_ms (), &error);
  if (d.core == NULL) {
    GError *e2 = NULL;
    ctl_config_error (d.cfg, &e2, "controller", "state-dir", "%s",
                      error->message);
    return fatal ("%s", e2->message);
  }
  /* the core took the group settings: the daemon keeps only its channels */
  g_ptr_array_set_size (d.cfg->groups, 0);
  if (d.cluster && !ctl_cluster_attach (d.cluster, d.core, mono_ms (), &error))
    return fatal ("[cluster] etcd: %s", error->message);
  d.epfd = epoll_create1 (EPOLL_CLOEXEC);
  d.inbox = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  d.sig_fd = signalfd (-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
  d.pending_by_host =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  d.link_by_leader =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  SSL_CTX_set_alpn_select_cb (d.ctx, alpn_select, NULL);
  d.graveyard = g_ptr_array_new ();
  d.again = g_ptr_array_new ();
  g_mutex_init (&d.done_lock);
  if (!setup_channels (&error) || !setup_listen (&error) ||
      !setup_admin (&error) || !setup_workers (&error))
    return fatal ("%s", error->message);
  d.listen_w.kind = K_LISTEN;
  d.admin_w.kind = K_ADMIN_LISTEN;
  d.inbox_w.kind = K_INBOX;
  d.sig_w.kind = K_SIGNAL;
  epoll_set (d.listen_fd, &d.listen_w, EPOLLIN, EPOLL_CTL_ADD);
  epoll_set (d.admin_fd, &d.admin_w, EPOLLIN, EPOLL_CTL_ADD);
  epoll_set (d.inbox, &d.inbox_w, EPOLLIN, EPOLL_CTL_ADD);
  epoll_set (d.sig_fd, &d.sig_w, EPOLLIN, EPOLL_CTL_ADD);
  if (d.cluster) {
    d.cluster_w.kind = K_CLUSTER;
    epoll_set (ctl_cluster_watch_fd (d.cluster), &d.cluster_w, EPOLLIN,
               EPOLL_CTL_ADD);
    log_event ("cluster", "name=%s advertise=%s etcd=%s lease-s=%u",
               d.cfg->cluster_name, d.cfg->advertise, d.cfg->etcd,
               d.cfg->lease_s);
  }
  {
    struct rlimit rl = {0};
    getrlimit (RLIMIT_NOFILE, &rl);
    /* which update key members will check (a public key's digest: the
     * controllers of a cluster must show the same) */
    guint8 spki[MCSEC_MIKE_MAX_SPKI];
    gsize spki_len = 0;
    gchar *fp = NULL;
    if (mcsec_mike_public_key_der (d.update_key, spki, sizeof spki,
                                   &spki_len) == MCSEC_OK)
      fp = g_compute_checksum_for_data (G_CHECKSUM_SHA256, spki, spki_len);
    if (fp)
      fp[16] = '\0';
    log_event ("started",
               "listen=%s groups=%u admin-socket=%s rejoin-window-ms=%u "
               "workers=%u max-open-files=%llu update-key=sha256:%s",
               d.cfg->listen, mcsec_ctl_n_groups (d.core), d.cfg->admin_socket,
               mcsec_ctl_rejoin_window_ms (d.core), d.n_workers,
               (unsigned long long)rl.rlim_cur, fp ? fp : "-");
    g_free (fp);
  }
  loop_run ();

  /* members keep their keys and reconnect to the next controller: close
   * without a word (an EVICTED would end their membership), no rekey */
  mcsec_ctl_stop (d.core);
  stop_workers ();
  while (d.members.head) {
    member_finish (d.members.head->data);
    run_actions (); /* the "left" lines; no rekey while stopping */
  }
  while (d.links.head)
    link_drop (d.links.head->data, NULL);
  while (d.admins.head)
    admin_finish (d.admins.head->data);
  for (guint i = 0; i < d.graveyard->len; i++)
    g_free (d.graveyard->pdata[i]);
  g_ptr_array_unref (d.graveyard);
  log_event ("stopped", "connections=%" G_GUINT64_FORMAT, d.io.connections);
  {
    struct stat st;
    if (stat (d.cfg->admin_socket, &st) == 0 && st.st_dev == d.admin_dev &&
        st.st_ino == d.admin_ino)
      unlink (d.cfg->admin_socket);
  }
  mcsec_ctl_free (d.core);
  if (d.cluster)
    ctl_cluster_free (d.cluster); /* the lease revoked: others take over */
  else
    d.store->free (d.store);
  EVP_PKEY_free (d.update_key);
  SSL_CTX_free (d.ctx);
  for (guint i = 0; i < d.cfg->channels->len; i++)
    if (d.channel_fds[i] >= 0)
      close (d.channel_fds[i]);
  g_free (d.channel_fds);
  g_hash_table_unref (d.pending_by_host);
  g_hash_table_unref (d.link_by_leader);
  SSL_CTX_free (d.relay_ctx);
  OPENSSL_cleanse (d.relay_key, sizeof d.relay_key);
  ctl_config_free (d.cfg);
  return 0;
}
