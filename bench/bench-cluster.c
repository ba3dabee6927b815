/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-cluster: the simulated members of bench/bench-cluster.sh (issue
 * 15), which starts etcd and the controllers and reads the figures.
 *
 * Members are simulated as bench-mike simulates them: one non-blocking TLS
 * 1.3 connection each (a P-256 client certificate, CN = the identity),
 * driven through the library's member state machine, all on one epoll
 * loop.  Unlike bench-mike's, they take a list of controllers and move
 * between them as mcsec_client does (libmcsec/io/mike-client.c): a round
 * tries every controller once, a not-leader refusal naming one of the list
 * sends the member there first (once per round), a round without a join
 * backs off 200 ms doubling to 5 s (+-25%), a join starts a new round.
 * Their certificates are made here, signed by the bench's CA (ca.crt,
 * ca.key in --pki) with the profile `mcsecctl pki` uses; one key for all.
 * Key tree members hear the rekey channel through one socket per group
 * (--channel GROUP=ADDR:PORT on lo), but only the first 32 held in the
 * group: they get every REKEY datagram, HEARTBEATs at most every 500 ms (a
 * member asks for a repair after 1 s of silence; the controller sends one
 * every 250 ms).  Every member verifies every datagram (Ed25519), which
 * real members do on their own machines: in this one process, 2,000
 * members took a core for that alone.  The others (while 32 listen) are
 * *passive*: their state machines get what comes over their connections
 * (WELCOME, updates, PONGs) but no datagram and no timer; the bench sends
 * their PING every 2 s (a MIKE frame built with the library's codec).  A
 * channel rekey needs no ACK, and a member that never polls (REPAIR) is
 * one the channel reaches: the controller cannot tell them from listening
 * members.
 *
 *   bench-cluster --pki DIR --controllers H:P,H:P,... --admins S1,S2,...
 *                 [--channel GROUP=ADDR:PORT]...
 *
 * --admins are the controllers' admin sockets, in the order of
 * --controllers.  Commands, one a line on standard input, each answered
 * with one line on standard output ("ok KEY=VALUE ..." or "error ..."):
 *
 *   register GROUPS TOTAL CONCURRENCY leader|first
 *       TOTAL registrations (identities r0..r999 in turn, over the
 *       comma-separated GROUPS in turn), CONCURRENCY at a time, each member
 *       closing as soon as it holds its first update; starting at its
 *       group's leader (asked once over the admin sockets) or at the first
 *       controller of the list (then redirected)
 *   hold GROUP N [first|leader|follower]
 *                   N more members (identities h0, h1, ... in the order
 *                   held) join GROUP, from the first controller of the
 *                   list, from the group's leader or from the controller
 *                   after it in the list (which relays them to the
 *                   leader), and stay (pinging); 48 handshakes at a time
 *   leave GROUP N   N of GROUP's held members send LEAVE and close
 *   rekey GROUP R   R administrator's rekeys of GROUP at its leader (`rekey
 *                   GROUP` on its admin socket, as mcsecctl sends it), each
 *                   until every held member of GROUP holds the new update
 *                   (unicast groups).  The first member to read it verifies
 *                   it; every other copy is compared byte for byte and
 *                   given to its member's state machine after the timed
 *                   window (the controller sends all the same signed
 *                   update; real members verify in parallel)
 *   failover GROUP PIDS   SIGKILL the leader of GROUP (PIDS: the
 *                   controllers' pids, in the list's order); then the time
 *                   until another controller says it leads GROUP (its
 *                   `stats`, asked every 20 ms) and until every held member
 *                   of GROUP has joined again
 *   leader GROUP    the index in the list of GROUP's leader (-1: none)
 *   quit
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <glib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mcsec/mcsec-mike.h>

#define MAX_CTLS 8
#define REG_IDS 1000 /* r0..r999 */
#define IN_FLIGHT 48 /* handshakes of held members at a time */
#define HB_EVERY_MS 500
#define LISTENERS 32 /* members of a key tree group that hear the channel */
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { TAG_MEMBER = 1, TAG_CHANNEL, TAG_STDIN, TAG_ADMIN };

typedef enum {
  M_FREE = 0,
  M_WAIT, /* backing off, or a connection to open */
  M_TLS,
  M_MIKE, /* TLS done, JOIN sent */
  M_JOINED,
} MState;

typedef struct {
  int tag;
} Tagged;

typedef struct {
  int tag;
  int fd;
  SSL *ssl;
  mcsec_member_t *m;
  mcsec_mike_reader_t rd;
  MState state;
  gboolean held;    /* stays; else closes once joined (registrations) */
  gboolean passive; /* a key tree member that does not hear the channel:
                       no timers of its state machine, a PING every 2 s */
  guint group;
  guint32 src; /* its loopback source address (host order) */
  gchar *identity;
  X509 *cert;
  guint cur;     /* the controller of the list it talks to */
  guint32 tried; /* this round */
  gboolean redirect_used, redirected, joined_here;
  guint redirect_reason;
  gchar redirect_text[MCSEC_MIKE_MAX_STRING + 1];
  guint64 backoff, wait_until, next_tick;
  uint32_t events;
  guint64 t0, last_seq;
  /* failover */
  gboolean lost, rejoined;
  guint64 rejoined_at;
  /* rekey timing */
  gboolean has_update, deferred;
  gboolean dead; /* freed at the end of the loop's turn */
} Member;

typedef struct {
  int tag;
  int fd;
  guint group;
  guint64 last_hb;
} Channel;

typedef struct {
  gchar *name;
  Channel *chan;
} Group;

static struct {
  gchar *host[MAX_CTLS], *port[MAX_CTLS], *admin[MAX_CTLS];
  struct sockaddr_in addr[MAX_CTLS];
  guint n;
} ctls;

static GPtrArray *groups;    /* Group */
static GPtrArray *members;   /* Member, held and registering */
static GPtrArray *graveyard; /* Member, dead: freed after the turn */
static int ep;
static SSL_CTX *cctx;
static EVP_PKEY *mkey, *ca_key;
static X509 *ca;
static guint held_next;
static X509 *reg_cert[REG_IDS];
static Tagged stdin_tag = {TAG_STDIN}, admin_tag = {TAG_ADMIN};
static gboolean stdin_ready, admin_ready;

static struct {
  guint64 handshakes, redirects, conn_failures, backoffs, joins, lost, refused,
      tls_failures;
} cnt;

/* registrations in flight */
static guint reg_done, reg_failed;

/* rekey timing */
static struct {
  gboolean on;
  guint group;
  guint8 *frame;
  gsize len;
  guint64 seq;
  guint held;
  guint64 t_first, t_last;
} cap;

static guint64
now_us (void)
{
  return (guint64)g_get_monotonic_time ();
}

static guint64
now_ms (void)
{
  return now_us () / 1000;
}

static double
self_cpu (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static guint
group_index (const char *name)
{
  for (guint i = 0; i < groups->len; i++)
    if (strcmp (((Group *)groups->pdata[i])->name, name) == 0)
      return i;
  {
    Group *g = g_new0 (Group, 1);
    g->name = g_strdup (name);
    g_ptr_array_add (groups, g);
  }
  return groups->len - 1;
}

static const char *
group_name (guint i)
{
  return ((Group *)groups->pdata[i])->name;
}

/* ---- certificates ------------------------------------------------------ */

static void
add_ext (X509 *cert, int nid, const char *value)
{
  X509V3_CTX v3;
  X509_EXTENSION *ext;

  X509V3_set_ctx (&v3, ca, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &v3, nid, value);
  if (ext) {
    X509_add_ext (cert, ext, -1);
    X509_EXTENSION_free (ext);
  }
}

/* As `mcsecctl pki` makes them: P-256, the test CA, SHA-256 */
static X509 *
make_cert (const char *cn)
{
  X509 *cert = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  unsigned char serial[16];
  BIGNUM *bn;

  X509_set_version (cert, 2);
  RAND_bytes (serial, sizeof serial);
  serial[0] &= 0x7f;
  bn = BN_bin2bn (serial, sizeof serial, NULL);
  BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert));
  BN_free (bn);
  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_ASC,
                              (const unsigned char *)"mcsec test PKI", -1, -1,
                              0);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                              (const unsigned char *)cn, -1, -1, 0);
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, X509_get_subject_name (ca));
  X509_NAME_free (name);
  X509_gmtime_adj (X509_getm_notBefore (cert), -86400);
  X509_gmtime_adj (X509_getm_notAfter (cert), 86400);
  X509_set_pubkey (cert, mkey);
  add_ext (cert, NID_basic_constraints, "critical,CA:FALSE");
  add_ext (cert, NID_key_usage, "critical,digitalSignature");
  add_ext (cert, NID_ext_key_usage, "clientAuth");
  add_ext (cert, NID_subject_key_identifier, "hash");
  add_ext (cert, NID_authority_key_identifier, "keyid");
  if (X509_sign (cert, ca_key, EVP_sha256 ()) <= 0)
    abort ();
  return cert;
}

static void
load_pki (const char *dir)
{
  gchar *p = g_build_filename (dir, "ca.crt", NULL);
  FILE *f = fopen (p, "r");

  ca = f ? PEM_read_X509 (f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose (f);
  cctx = SSL_CTX_new (TLS_client_method ());
  SSL_CTX_set_min_proto_version (cctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (cctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_mode (cctx, SSL_MODE_RELEASE_BUFFERS);
  if (ca == NULL || SSL_CTX_load_verify_locations (cctx, p, NULL) != 1) {
    fprintf (stderr, "bench-cluster: cannot read %s\n", p);
    exit (2);
  }
  g_free (p);
  p = g_build_filename (dir, "ca.key", NULL);
  f = fopen (p, "r");
  ca_key = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose (f);
  if (ca_key == NULL) {
    fprintf (stderr, "bench-cluster: cannot read %s\n", p);
    exit (2);
  }
  g_free (p);
  mkey = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  for (guint i = 0; i < REG_IDS; i++) {
    gchar *cn = g_strdup_printf ("r%u", i);
    reg_cert[i] = make_cert (cn);
    g_free (cn);
  }
}

/* ---- the admin sockets ------------------------------------------------- */

static int
admin_send (guint i, const char *line)
{
  struct sockaddr_un sa = {0};
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gchar *msg = g_strconcat (line, "\n", NULL);

  sa.sun_family = AF_UNIX;
  g_strlcpy (sa.sun_path, ctls.admin[i], sizeof sa.sun_path);
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      write (fd, msg, strlen (msg)) <= 0) {
    close (fd);
    fd = -1;
  }
  g_free (msg);
  return fd;
}

static gchar *
admin_read (int fd)
{
  GString *out = g_string_new (NULL);
  char buf[8192];
  ssize_t n;

  if (fd >= 0) {
    while ((n = read (fd, buf, sizeof buf)) > 0)
      g_string_append_len (out, buf, n);
    close (fd);
  }
  return g_string_free (out, FALSE);
}

static gchar *
admin (guint i, const char *line)
{
  return admin_read (admin_send (i, line));
}

/* Whether controller i says (in `stats`) it leads group; -1: no answer */
static int
leads (guint i, const char *group)
{
  gchar *a = admin (i, "stats");
  gchar *pat = g_strdup_printf ("{\"name\":\"%s\",", group);
  const char *p = strstr (a, pat), *next, *l;
  int r = -1;

  if (strstr (a, "\"ok\":true")) {
    r = 0;
    if (p) {
      next = strstr (p + 1, "{\"name\":");
      l = strstr (p, "\"leading\":");
      if (l == NULL)
        r = ctls.n == 1; /* not a cluster: the only controller */
      else if (next == NULL || l < next)
        r = strncmp (l + 10, "true", 4) == 0;
    }
  }
  g_free (pat);
  g_free (a);
  return r;
}

static int
leader_of (const char *group)
{
  for (guint i = 0; i < ctls.n; i++)
    if (leads (i, group) == 1)
      return (int)i;
  return -1;
}

static guint64
json_u64 (const char *json, const char *key)
{
  gchar *pat = g_strdup_printf ("\"%s\":", key);
  const char *p = strstr (json, pat);
  guint64 v = p ? g_ascii_strtoull (p + strlen (pat), NULL, 10) : 0;
  g_free (pat);
  return v;
}

/* ---- members ----------------------------------------------------------- */

static void
want (Member *mb, uint32_t events)
{
  struct epoll_event ev = {.events = events, .data.ptr = mb};
  if (mb->events != events) {
    epoll_ctl (ep, mb->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, mb->fd, &ev);
    mb->events = events;
  }
}

static void
transport_close (Member *mb)
{
  if (mb->ssl)
    SSL_free (mb->ssl);
  if (mb->fd >= 0) {
    if (mb->events)
      epoll_ctl (ep, EPOLL_CTL_DEL, mb->fd, NULL);
    close (mb->fd);
  }
  mb->ssl = NULL;
  mb->fd = -1;
  mb->events = 0;
  mcsec_mike_reader_clear (&mb->rd);
}

/* Gone: its connection closed now, the rest once nothing can name it */
static void
member_free (Member *mb)
{
  if (mb->dead)
    return;
  transport_close (mb);
  mb->dead = TRUE;
  mb->state = M_FREE;
  g_ptr_array_add (graveyard, mb);
}

static void
bury (void)
{
  if (graveyard->len == 0)
    return;
  for (guint i = 0; i < members->len;)
    if (((Member *)members->pdata[i])->dead)
      g_ptr_array_remove_index_fast (members, i);
    else
      i++;
  for (guint i = 0; i < graveyard->len; i++) {
    Member *mb = graveyard->pdata[i];
    mcsec_member_free (mb->m);
    if (mb->held && mb->cert)
      X509_free (mb->cert);
    g_free (mb->identity);
    g_free (mb);
  }
  g_ptr_array_set_size (graveyard, 0);
}

static void next_controller (Member *mb);

static void
member_connect (Member *mb)
{
  int one = 1;

  struct sockaddr_in src = {0};

  mb->tried |= 1u << mb->cur;
  mb->joined_here = mb->redirected = FALSE;
  mb->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  mb->state = M_TLS;
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl (mb->src);
  setsockopt (mb->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt (mb->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (mb->fd < 0 || bind (mb->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
      (connect (mb->fd, (struct sockaddr *)&ctls.addr[mb->cur],
                sizeof ctls.addr[0]) != 0 &&
       errno != EINPROGRESS)) {
    cnt.conn_failures++;
    transport_close (mb);
    mcsec_member_disconnected (mb->m, now_ms ());
    next_controller (mb);
    return;
  }
  mb->ssl = SSL_new (cctx);
  if (SSL_use_certificate (mb->ssl, mb->cert) != 1 ||
      SSL_use_PrivateKey (mb->ssl, mkey) != 1)
    abort ();
  SSL_set_fd (mb->ssl, mb->fd);
  SSL_set_connect_state (mb->ssl);
  want (mb, EPOLLOUT);
}

/* Members come from many addresses, 16 per address (127.0.0.1,
 * 127.0.1.1, ...: all on lo), as members on many machines would: the
 * controller's cap of 64 handshakes in flight per source address is
 * against floods from one host, not a crowd reconnecting at once. */
static guint32
source_of (guint id)
{
  return 0x7f000001u + (((id / 16) % 4096) << 8);
}

static Member *
member_new (guint group, gboolean held, guint start)
{
  Member *mb = g_new0 (Member, 1);
  mcsec_member_config_t mc = {group_name (group), MCSEC_MIKE_ROLE_RECEIVER,
                              NULL, 0};

  mb->tag = TAG_MEMBER;
  mb->fd = -1;
  mb->group = group;
  mb->held = held;
  if (held) {
    Group *gr = groups->pdata[group];
    guint listening = 0;
    for (guint i = 0; gr->chan && i < members->len; i++) {
      Member *o = members->pdata[i];
      listening += !o->dead && o->held && o->group == group && !o->passive;
    }
    mb->passive = gr->chan && listening >= LISTENERS;
    mb->src = source_of (held_next);
    mb->identity = g_strdup_printf ("h%u", held_next++);
    mb->cert = make_cert (mb->identity);
  } else {
    static guint reg_next;
    guint id = reg_next++ % REG_IDS;
    mb->src = source_of (id);
    mb->identity = g_strdup_printf ("r%u", id);
    mb->cert = reg_cert[id];
  }
  if (mcsec_member_new (&mc, &mb->m) != MCSEC_OK)
    abort ();
  mb->backoff = MCSEC_MIKE_BACKOFF_MIN_MS;
  mb->cur = start;
  mb->t0 = now_us ();
  g_ptr_array_add (members, mb);
  member_connect (mb);
  return mb;
}

/* The controller of the list (not cur) a not-leader refusal names, or n */
static guint
find_leader (const char *text, guint cur)
{
  gsize len;
  if (strncmp (text, "leader=", 7) != 0)
    return ctls.n;
  text += 7;
  len = strcspn (text, " \t,;");
  for (guint i = 0; i < ctls.n; i++) {
    gchar *a = g_strdup_printf ("%s:%s", ctls.host[i], ctls.port[i]);
    gboolean same =
        i != cur && strlen (a) == len && strncmp (a, text, len) == 0;
    g_free (a);
    if (same)
      return i;
  }
  return ctls.n;
}

/* The connection is gone (closed, lost, refused, redirected): where next,
 * as mcsec_client's thread decides. */
static void
next_controller (Member *mb)
{
  guint k;

  mb->state = M_WAIT;
  if (mb->joined_here) {
    mb->tried = 1u << mb->cur;
    mb->redirect_used = FALSE;
    mb->backoff = MCSEC_MIKE_BACKOFF_MIN_MS;
  }
  if (mb->redirected) {
    if (!mb->redirect_used &&
        mb->redirect_reason == MCSEC_MIKE_REASON_NOT_LEADER &&
        (k = find_leader (mb->redirect_text, mb->cur)) < ctls.n) {
      mb->redirect_used = TRUE;
      mb->cur = k;
      member_connect (mb);
      return;
    }
  }
  for (k = 1; k < ctls.n && (mb->tried & (1u << ((mb->cur + k) % ctls.n))); k++)
    ;
  if (k < ctls.n) {
    mb->cur = (mb->cur + k) % ctls.n;
    member_connect (mb);
    return;
  }
  /* a round without a join */
  {
    guint32 r = g_random_int ();
    mb->wait_until =
        now_ms () + mb->backoff * 3 / 4 + r % (mb->backoff / 2 + 1);
  }
  cnt.backoffs++;
  mb->backoff = MIN (mb->backoff * 2, MCSEC_MIKE_BACKOFF_MAX_MS);
  mb->tried = 0;
  mb->redirect_used = FALSE;
  mb->cur = (mb->cur + 1) % ctls.n;
}

static void
connection_over (Member *mb)
{
  transport_close (mb);
  mcsec_member_disconnected (mb->m, now_ms ());
  if (mb->joined_here) {
    cnt.lost++;
    mb->lost = TRUE;
  }
  next_controller (mb);
}

/* Events and output after the state machine ran; FALSE: mb is gone */
static gboolean
settle (Member *mb)
{
  mcsec_member_event_t ev;
  const uint8_t *out;
  size_t n;
  gboolean close_now = FALSE, final = FALSE;

  while (mcsec_member_next_event (mb->m, &ev)) {
    switch (ev.type) {
    case MCSEC_MEMBER_EV_JOINED:
      if (mb->state == M_MIKE) {
        mb->state = M_JOINED;
        mb->joined_here = TRUE;
        mb->next_tick = now_ms () + MCSEC_MIKE_PING_MS;
        cnt.joins++;
        if (mb->lost && !mb->rejoined) {
          mb->rejoined = TRUE;
          mb->rejoined_at = now_us ();
        }
      }
      break;
    case MCSEC_MEMBER_EV_REDIRECTED:
      mb->redirected = TRUE;
      mb->redirect_reason = ev.reason;
      g_strlcpy (mb->redirect_text, ev.text, sizeof mb->redirect_text);
      cnt.redirects++;
      close_now = TRUE;
      break;
    case MCSEC_MEMBER_EV_REFUSED:
    case MCSEC_MEMBER_EV_EVICTED:
      if (cnt.refused++ < 5)
        fprintf (stderr, "bench-cluster: %s %s: %s (%s)\n", mb->identity,
                 mcsec_member_event_name (ev.type),
                 mcsec_mike_reason_name (ev.reason), ev.text);
      final = TRUE;
      break;
    default:
      break;
    }
    if (ev.seq > mb->last_seq)
      mb->last_seq = ev.seq;
  }
  if (final) {
    if (!mb->held)
      reg_failed++;
    member_free (mb);
    return FALSE;
  }
  if (!mb->held && mb->state == M_JOINED) {
    reg_done++;
    member_free (mb);
    return FALSE;
  }
  if (close_now) {
    connection_over (mb);
    return FALSE;
  }
  while (mb->ssl && (n = mcsec_member_output (mb->m, &out)) > 0) {
    int w = SSL_write (mb->ssl, out, (int)n);
    if (w <= 0) {
      ERR_clear_error ();
      break;
    }
    mcsec_member_written (mb->m, (size_t)w);
  }
  return TRUE;
}

static void
member_io (Member *mb)
{
  uint8_t buf[16384];
  const uint8_t *fr;
  size_t fl;

  if (mb->state == M_TLS) {
    int r = SSL_do_handshake (mb->ssl);
    if (r != 1) {
      int e = SSL_get_error (mb->ssl, r);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_READ)
        want (mb, EPOLLIN);
      else if (e == SSL_ERROR_WANT_WRITE)
        want (mb, EPOLLOUT);
      else {
        cnt.tls_failures++;
        connection_over (mb);
      }
      return;
    }
    cnt.handshakes++;
    want (mb, EPOLLIN);
    mcsec_member_connected (mb->m, now_ms ());
    mb->state = M_MIKE;
  }
  for (;;) {
    int r = SSL_read (mb->ssl, buf, sizeof buf);
    if (r <= 0) {
      int e = SSL_get_error (mb->ssl, r);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      if (!settle (mb)) /* a REFUSE read just before the close */
        return;
      connection_over (mb);
      return;
    }
    if (mcsec_mike_reader_feed (&mb->rd, buf, (size_t)r) != MCSEC_OK) {
      connection_over (mb);
      return;
    }
    while ((fl = mcsec_mike_reader_next (&mb->rd, &fr)) > 0) {
      guint64 before = mb->last_seq;
      if (cap.on && cap.len && fl == cap.len &&
          memcmp (fr, cap.frame, fl) == 0) {
        /* the update being timed, already verified by another member */
        if (!mb->has_update) {
          mb->has_update = mb->deferred = TRUE;
          cap.held++;
          cap.t_last = now_us ();
        }
        continue;
      }
      if (mcsec_member_receive (mb->m, fr, fl, now_ms ()) != MCSEC_OK) {
        connection_over (mb);
        return;
      }
      if (!settle (mb))
        return;
      if (cap.on && mb->group == cap.group && mb->state == M_JOINED &&
          mb->last_seq > before && cap.len == 0 && !mb->has_update) {
        cap.frame = g_memdup2 (fr, fl);
        cap.len = fl;
        cap.seq = mb->last_seq;
        mb->has_update = TRUE;
        cap.held++;
        cap.t_first = cap.t_last = now_us ();
      }
    }
  }
  settle (mb);
}

/* Timers: pings, repairs; members waiting to connect */
static void
sweep (void)
{
  static guint64 next;
  guint64 now = now_ms ();

  if (now < next)
    return;
  next = now + 20;
  for (guint i = 0; i < members->len; i++) {
    Member *mb = members->pdata[i];
    if (mb->dead)
      continue;
    if (mb->state == M_WAIT && now >= mb->wait_until) {
      member_connect (mb);
    } else if (mb->state == M_JOINED && now >= mb->next_tick && mb->passive) {
      uint8_t buf[64];
      mcsec_mike_builder_t b;
      size_t len;
      mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_PING);
      if (mcsec_mike_finish (&b, &len) == MCSEC_OK &&
          SSL_write (mb->ssl, buf, (int)len) <= 0)
        ERR_clear_error ();
      mb->next_tick = now + MCSEC_MIKE_PING_MS;
    } else if (mb->state == M_JOINED && now >= mb->next_tick) {
      int dead;
      mb->next_tick = mcsec_member_tick (mb->m, now, &dead);
      mb->next_tick = MAX (mb->next_tick, now + 20);
      if (dead) {
        connection_over (mb);
        continue;
      }
      settle (mb);
    }
  }
}

/* ---- the rekey channel ----------------------------------------------------
 */

static void
channel_open (const char *spec)
{
  gchar **kv = g_strsplit (spec, "=", 2);
  gchar *colon = kv[1] ? strrchr (kv[1], ':') : NULL;
  struct sockaddr_in a = {0};
  struct ip_mreqn mr = {0};
  int one = 1, rcv = 4 << 20;
  Channel *ch = g_new0 (Channel, 1);
  struct epoll_event ev = {.events = EPOLLIN};

  if (colon == NULL) {
    fprintf (stderr, "bench-cluster: --channel GROUP=ADDR:PORT\n");
    exit (2);
  }
  *colon = '\0';
  ch->tag = TAG_CHANNEL;
  ch->group = group_index (kv[0]);
  ((Group *)groups->pdata[ch->group])->chan = ch;
  a.sin_family = AF_INET;
  a.sin_port = htons ((uint16_t)atoi (colon + 1));
  inet_pton (AF_INET, kv[1], &a.sin_addr);
  mr.imr_multiaddr = a.sin_addr;
  mr.imr_ifindex = (int)if_nametoindex ("lo");
  ch->fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt (ch->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (ch->fd < 0 ||
      setsockopt (ch->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      bind (ch->fd, (struct sockaddr *)&a, sizeof a) ||
      setsockopt (ch->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr)) {
    fprintf (stderr, "bench-cluster: channel %s: %s\n", spec,
             g_strerror (errno));
    exit (2);
  }
  ev.data.ptr = ch;
  epoll_ctl (ep, EPOLL_CTL_ADD, ch->fd, &ev);
  g_strfreev (kv);
}

static void
channel_feed (Channel *ch)
{
  uint8_t buf[2048];
  ssize_t r;

  while ((r = recv (ch->fd, buf, sizeof buf, 0)) > 0) {
    guint64 now = now_ms ();
    if (r > 5 && buf[5] == MCSEC_MIKE_HEARTBEAT) {
      if (now - ch->last_hb < HB_EVERY_MS)
        continue;
      ch->last_hb = now;
    }
    for (guint i = 0; i < members->len; i++) {
      Member *mb = members->pdata[i];
      if (mb->group != ch->group || mb->state != M_JOINED || mb->passive)
        continue;
      (void)mcsec_member_datagram (mb->m, buf, (size_t)r, now);
      settle (mb);
    }
  }
}

/* ---- the loop ---------------------------------------------------------- */

static void
step (int timeout_ms)
{
  struct epoll_event evs[256];
  int n = epoll_wait (ep, evs, G_N_ELEMENTS (evs), timeout_ms);

  for (int k = 0; k < n; k++) {
    Tagged *t = evs[k].data.ptr;
    if (t->tag == TAG_STDIN)
      stdin_ready = TRUE;
    else if (t->tag == TAG_ADMIN)
      admin_ready = TRUE;
    else if (t->tag == TAG_CHANNEL)
      channel_feed ((Channel *)t);
  }
  for (int k = 0; k < n; k++) {
    Tagged *t = evs[k].data.ptr;
    Member *mb = (Member *)t;
    if (t->tag == TAG_MEMBER && !mb->dead &&
        (mb->state == M_TLS || mb->state == M_MIKE || mb->state == M_JOINED))
      member_io (mb);
  }
  sweep ();
  bury ();
}

static guint
count (guint group, MState state, gboolean held)
{
  guint c = 0;
  for (guint i = 0; i < members->len; i++) {
    Member *mb = members->pdata[i];
    c += !mb->dead && mb->group == group && mb->state == state &&
         mb->held == held;
  }
  return c;
}

/* ---- commands ---------------------------------------------------------- */

static void
cmd_register (gchar **a)
{
  gchar **names = g_strsplit (a[1], ",", -1);
  guint ng = g_strv_length (names), total = atoi (a[2]), conc = atoi (a[3]);
  gboolean at_leader = strcmp (a[4], "leader") == 0;
  guint *gi = g_new0 (guint, ng), *start = g_new0 (guint, ng);
  guint started = 0, in_flight;
  guint64 t0, c0 = cnt.handshakes, r0 = cnt.redirects;
  double cpu0;

  for (guint i = 0; i < ng; i++) {
    gi[i] = group_index (names[i]);
    if (at_leader) {
      int l = leader_of (names[i]);
      if (l < 0) {
        printf ("error no leader for %s\n", names[i]);
        goto out;
      }
      start[i] = (guint)l;
    }
  }
  reg_done = reg_failed = 0;
  cpu0 = self_cpu ();
  t0 = now_us ();
  while (reg_done + reg_failed < total) {
    in_flight = 0;
    for (guint i = 0; i < members->len; i++) {
      Member *mb = members->pdata[i];
      in_flight += !mb->held && !mb->dead;
    }
    while (in_flight < conc && started < total) {
      guint k = started++ % ng;
      member_new (gi[k], FALSE, start[k]);
      in_flight++;
    }
    step (50);
    if (now_us () - t0 > 120 * G_USEC_PER_SEC)
      break;
  }
  {
    double wall = (now_us () - t0) / 1e6;
    printf (
        "ok done=%u failed=%u wall=%.3f rate=%.1f handshakes=%" G_GUINT64_FORMAT
        " redirects=%" G_GUINT64_FORMAT " self_cpu=%.3f\n",
        reg_done, reg_failed, wall, reg_done / wall, cnt.handshakes - c0,
        cnt.redirects - r0, self_cpu () - cpu0);
  }
out:
  g_free (gi);
  g_free (start);
  g_strfreev (names);
}

static void
cmd_hold (gchar **a)
{
  guint g = group_index (a[1]), n = atoi (a[2]), opened = 0, start = 0;
  guint base = count (g, M_JOINED, TRUE);
  guint64 t0 = now_us (), c0 = cnt.handshakes, r0 = cnt.redirects;

  /* START: at the group's leader, at the controller after it (relayed:
   * it does not lead the group), or (none) at the list's first */
  gboolean follower = a[3] && strcmp (a[3], "follower") == 0;
  if (follower || (a[3] && strcmp (a[3], "leader") == 0)) {
    int l = leader_of (a[1]);
    if (l < 0) {
      printf ("error no leader for %s\n", a[1]);
      return;
    }
    if (follower && ctls.n < 2) {
      printf ("error no follower: one controller\n");
      return;
    }
    start = follower ? ((guint)l + 1) % ctls.n : (guint)l;
  }

  while (count (g, M_JOINED, TRUE) < base + n &&
         now_us () - t0 < 120 * G_USEC_PER_SEC) {
    guint in_flight = 0;
    for (guint i = 0; i < members->len; i++) {
      Member *mb = members->pdata[i];
      in_flight += mb->held && mb->group == g &&
                   (mb->state == M_TLS || mb->state == M_MIKE);
    }
    while (opened < n && in_flight < IN_FLIGHT) {
      member_new (g, TRUE, start);
      opened++;
      in_flight++;
    }
    step (20);
  }
  printf ("ok joined=%u secs=%.3f handshakes=%" G_GUINT64_FORMAT
          " redirects=%" G_GUINT64_FORMAT "\n",
          count (g, M_JOINED, TRUE) - base, (now_us () - t0) / 1e6,
          cnt.handshakes - c0, cnt.redirects - r0);
}

static void
cmd_leave (gchar **a)
{
  guint g = group_index (a[1]), n = atoi (a[2]), left = 0;
  guint64 until;

  for (guint i = 0; i < members->len && left < n; i++) {
    Member *mb = members->pdata[i];
    if (!mb->dead && mb->held && mb->group == g && mb->state == M_JOINED) {
      mcsec_member_leave (mb->m);
      settle (mb);
      member_free (mb);
      left++;
    }
  }
  bury ();
  until = now_us () + 300 * 1000;
  while (now_us () < until)
    step (20);
  printf ("ok left=%u\n", left);
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void
cmd_rekey (gchar **a)
{
  guint g = group_index (a[1]), reps = atoi (a[2]);
  int l = leader_of (a[1]);
  double *last = g_new0 (double, MAX (reps, 1));
  double first_sum = 0, answer_sum = 0;
  guint members_n = count (g, M_JOINED, TRUE), all_held = TRUE;
  GString *each = g_string_new (NULL);

  if (l < 0) {
    printf ("error no leader for %s\n", a[1]);
    g_free (last);
    g_string_free (each, TRUE);
    return;
  }
  for (guint r = 0; r < reps; r++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &admin_tag};
    guint64 t0, deadline, t_answer = 0;
    int afd;

    for (guint i = 0; i < members->len; i++)
      ((Member *)members->pdata[i])->has_update = FALSE;
    memset (&cap, 0, sizeof cap);
    cap.on = TRUE;
    cap.group = g;
    admin_ready = FALSE;
    t0 = now_us ();
    {
      gchar *req = g_strdup_printf ("rekey %s", a[1]);
      afd = admin_send ((guint)l, req);
      g_free (req);
    }
    fcntl (afd, F_SETFL, O_NONBLOCK);
    epoll_ctl (ep, EPOLL_CTL_ADD, afd, &ev);
    deadline = t0 + 30 * G_USEC_PER_SEC;
    while ((cap.held < members_n || afd >= 0) && now_us () < deadline) {
      step (10);
      if (admin_ready && afd >= 0) {
        char buf[4096];
        ssize_t k;
        admin_ready = FALSE;
        while ((k = read (afd, buf, sizeof buf)) > 0)
          ;
        if (k == 0 || (k < 0 && errno != EAGAIN)) {
          t_answer = now_us ();
          epoll_ctl (ep, EPOLL_CTL_DEL, afd, NULL);
          close (afd);
          afd = -1;
        }
      }
    }
    if (afd >= 0) {
      epoll_ctl (ep, EPOLL_CTL_DEL, afd, NULL);
      close (afd);
    }
    last[r] = cap.t_last ? (cap.t_last - t0) / 1000.0 : -1;
    first_sum += cap.t_first ? (cap.t_first - t0) / 1000.0 : 0;
    answer_sum += t_answer ? (t_answer - t0) / 1000.0 : 0;
    all_held = all_held && cap.held == members_n;
    g_string_append_printf (each, "%s%.1f", r ? "," : "", last[r]);
    /* untimed: every member's state machine takes its copy */
    cap.on = FALSE;
    for (guint i = 0; i < members->len; i++) {
      Member *mb = members->pdata[i];
      if (!mb->deferred)
        continue;
      mb->deferred = FALSE;
      if (mb->dead || mb->state != M_JOINED)
        continue;
      if (mcsec_member_receive (mb->m, cap.frame, cap.len, now_ms ()) !=
          MCSEC_OK) {
        connection_over (mb);
        continue;
      }
      settle (mb);
    }
    bury ();
    g_clear_pointer (&cap.frame, g_free);
    {
      guint64 until = now_us () + 200 * 1000; /* the ACKs */
      while (now_us () < until)
        step (20);
    }
  }
  qsort (last, reps, sizeof *last, cmp_double);
  printf ("ok members=%u all=%s median_last_ms=%.2f mean_first_ms=%.2f "
          "mean_answer_ms=%.2f each_last_ms=%s\n",
          members_n, all_held ? "yes" : "no", last[reps / 2], first_sum / reps,
          answer_sum / reps, each->str);
  g_free (last);
  g_string_free (each, TRUE);
}

static int
cmp_u64 (const void *a, const void *b)
{
  guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
  return x < y ? -1 : x > y;
}

static void
cmd_failover (gchar **a)
{
  guint g = group_index (a[1]), n = count (g, M_JOINED, TRUE);
  gchar **pids = g_strsplit (a[2], ",", -1);
  int l = leader_of (a[1]), new_leader = -1;
  guint64 t0, t_lead = 0, next_poll = 0, c0 = cnt.handshakes,
              r0 = cnt.redirects, f0 = cnt.conn_failures + cnt.tls_failures,
              b0 = cnt.backoffs;
  guint64 *at = g_new0 (guint64, MAX (n, 1));
  struct timespec real;
  guint done = 0;
  double cpu0 = self_cpu ();

  if (l < 0 || (guint)l >= g_strv_length (pids)) {
    printf ("error no leader for %s\n", a[1]);
    g_strfreev (pids);
    g_free (at);
    return;
  }
  for (guint i = 0; i < members->len; i++) {
    Member *mb = members->pdata[i];
    mb->lost = mb->rejoined = FALSE;
    mb->rejoined_at = 0;
  }
  clock_gettime (CLOCK_REALTIME, &real);
  t0 = now_us ();
  kill ((pid_t)atoi (pids[l]), SIGKILL);
  while (now_us () - t0 < 60 * G_USEC_PER_SEC) {
    step (10);
    done = 0;
    for (guint i = 0; i < members->len; i++) {
      Member *mb = members->pdata[i];
      if (!mb->dead && mb->held && mb->group == g && mb->rejoined &&
          mb->state == M_JOINED && done < n)
        at[done++] = mb->rejoined_at - t0;
    }
    if (done >= n)
      break;
    if (!t_lead && now_us () >= next_poll) {
      next_poll = now_us () + 20000;
      for (guint i = 0; i < ctls.n; i++)
        if ((int)i != l && leads (i, a[1]) == 1) {
          t_lead = now_us ();
          new_leader = (int)i;
          break;
        }
    }
  }
  qsort (at, done, sizeof *at, cmp_u64);
#define PCT(p)                                                                 \
  (done ? at[MIN (done - 1, (guint)((p) * (n - 1) / 100))] / 1000.0 : -1.0)
  printf ("ok members=%u rejoined=%u old=%d new=%d kill_real=%ld.%09ld "
          "lead_ms=%.1f first_ms=%.1f half_ms=%.1f p90_ms=%.1f all_ms=%.1f "
          "handshakes=%" G_GUINT64_FORMAT " redirects=%" G_GUINT64_FORMAT
          " conn_failures=%" G_GUINT64_FORMAT " backoffs=%" G_GUINT64_FORMAT
          " self_cpu=%.2f\n",
          n, done, l, new_leader, (long)real.tv_sec, real.tv_nsec,
          t_lead ? (t_lead - t0) / 1000.0 : -1.0, PCT (0), PCT (50), PCT (90),
          done == n ? at[n - 1] / 1000.0 : -1.0, cnt.handshakes - c0,
          cnt.redirects - r0, cnt.conn_failures + cnt.tls_failures - f0,
          cnt.backoffs - b0, self_cpu () - cpu0);
  g_strfreev (pids);
  g_free (at);
}

static gboolean
command (const char *line)
{
  gchar **a = g_strsplit_set (line, " \t", -1);
  guint n = g_strv_length (a);
  gboolean go_on = TRUE;

  if (n == 0 || a[0][0] == '\0')
    printf ("error empty command\n");
  else if (strcmp (a[0], "register") == 0 && n == 5)
    cmd_register (a);
  else if (strcmp (a[0], "hold") == 0 && (n == 3 || n == 4))
    cmd_hold (a);
  else if (strcmp (a[0], "leave") == 0 && n == 3)
    cmd_leave (a);
  else if (strcmp (a[0], "rekey") == 0 && n == 3)
    cmd_rekey (a);
  else if (strcmp (a[0], "failover") == 0 && n == 3)
    cmd_failover (a);
  else if (strcmp (a[0], "leader") == 0 && n == 2)
    printf ("ok %d\n", leader_of (a[1]));
  else if (strcmp (a[0], "cluster") == 0 && n == 2) {
    gchar *c = admin ((guint)atoi (a[1]), "cluster");
    printf ("ok etcd_writes=%" G_GUINT64_FORMAT "\n",
            json_u64 (c, "etcd-writes"));
    g_free (c);
  } else if (strcmp (a[0], "quit") == 0)
    go_on = FALSE;
  else
    printf ("error unknown command: %s\n", line);
  g_strfreev (a);
  return go_on;
}

int
main (int argc, char **argv)
{
  const char *pki = NULL;
  gchar **list = NULL, **admins = NULL;
  GPtrArray *chans = g_ptr_array_new ();
  GString *in = g_string_new (NULL);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_tag};
  gboolean go_on = TRUE;
  struct rlimit rl;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp (argv[i], "--pki") == 0)
      pki = argv[i + 1];
    else if (strcmp (argv[i], "--controllers") == 0)
      list = g_strsplit (argv[i + 1], ",", -1);
    else if (strcmp (argv[i], "--admins") == 0)
      admins = g_strsplit (argv[i + 1], ",", -1);
    else if (strcmp (argv[i], "--channel") == 0)
      g_ptr_array_add (chans, argv[i + 1]);
    else
      pki = NULL, i = argc;
  }
  if (pki == NULL || list == NULL || admins == NULL ||
      g_strv_length (list) != g_strv_length (admins) ||
      g_strv_length (list) == 0 || g_strv_length (list) > MAX_CTLS) {
    fprintf (stderr,
             "usage: bench-cluster --pki DIR --controllers H:P,... --admins "
             "S1,... [--channel GROUP=ADDR:PORT]... (commands on stdin)\n");
    return 2;
  }
  signal (SIGPIPE, SIG_IGN);
  setvbuf (stdout, NULL, _IOLBF, 0);
  getrlimit (RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
  for (guint i = 0; list[i]; i++) {
    gchar *c = strrchr (list[i], ':');
    if (c == NULL)
      return 2;
    ctls.host[i] = g_strndup (list[i], c - list[i]);
    ctls.port[i] = g_strdup (c + 1);
    ctls.admin[i] = g_strdup (admins[i]);
    ctls.addr[i].sin_family = AF_INET;
    ctls.addr[i].sin_port = htons ((uint16_t)atoi (c + 1));
    if (inet_pton (AF_INET, ctls.host[i], &ctls.addr[i].sin_addr) != 1)
      return 2;
    ctls.n++;
  }
  groups = g_ptr_array_new ();
  members = g_ptr_array_new ();
  graveyard = g_ptr_array_new ();
  ep = epoll_create1 (EPOLL_CLOEXEC);
  load_pki (pki);
  for (guint i = 0; i < chans->len; i++)
    channel_open (chans->pdata[i]);
  fcntl (0, F_SETFL, fcntl (0, F_GETFL) | O_NONBLOCK);
  epoll_ctl (ep, EPOLL_CTL_ADD, 0, &ev);
  printf ("ok ready controllers=%u\n", ctls.n);
  while (go_on) {
    char buf[4096];
    ssize_t r;
    gchar *nl;

    step (100);
    if (!stdin_ready)
      continue;
    stdin_ready = FALSE;
    while ((r = read (0, buf, sizeof buf)) > 0)
      g_string_append_len (in, buf, r);
    if (r == 0 && in->len == 0)
      break; /* EOF */
    while (go_on && (nl = strchr (in->str, '\n'))) {
      gchar *line = g_strndup (in->str, nl - in->str);
      g_string_erase (in, 0, nl - in->str + 1);
      go_on = command (g_strstrip (line));
      g_free (line);
    }
    if (r == 0)
      break;
  }
  for (guint i = 0; i < members->len; i++)
    member_free (members->pdata[i]);
  bury ();
  return 0;
}
