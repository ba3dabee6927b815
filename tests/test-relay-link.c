/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-relay-link: both ends of a relay link (tools/controller/relay.c,
 * docs/cluster.md "Relaying") over TCP and TLS 1.3 on loopback, driven in
 * one thread with poll(): the follower's end connects, the leader's end is
 * accepted after a TLS handshake as the daemon's workers do it.  A link up
 * on both ends with the same key carries what the follower queued before
 * it was up, in order, DATA longer than a frame reassembled; with another
 * key nothing the follower sends is handed to the leader; a leader that
 * may not write (fencing) sends nothing and its link is lost as stalled;
 * a link without a HELLO by its deadline is lost.
 */
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mcsec-test.h"
#include "relay.h"

static SSL_CTX *server_ctx, *client_ctx;
static int listen_fd;
static gchar *address;

static int
alpn_select (SSL *ssl, const unsigned char **out, unsigned char *outlen,
             const unsigned char *in, unsigned int inlen, void *arg)
{
  (void)ssl;
  (void)arg;
  if (inlen == 1 + strlen (CTL_RELAY_ALPN) &&
      memcmp (in + 1, CTL_RELAY_ALPN, strlen (CTL_RELAY_ALPN)) == 0) {
    *out = in + 1;
    *outlen = in[0];
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

/* A self-signed leader certificate (the CA the follower trusts), a server
 * context with it, the follower's client context, a listening socket. */
static void
setup (void)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  X509 *x = X509_new ();
  X509_NAME *n = X509_get_subject_name (x);
  gchar *dir = g_dir_make_tmp ("test-relay-link-XXXXXX", NULL);
  gchar *ca = g_build_filename (dir, "ca.pem", NULL);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t sl = sizeof sa;
  GError *error = NULL;
  FILE *f;

  X509_set_version (x, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (x), 1);
  X509_gmtime_adj (X509_getm_notBefore (x), 0);
  X509_gmtime_adj (X509_getm_notAfter (x), 3600);
  X509_NAME_add_entry_by_txt (n, "CN", MBSTRING_ASC,
                              (const unsigned char *)"leader", -1, -1, 0);
  X509_set_issuer_name (x, n);
  X509_set_pubkey (x, k);
  if (X509_sign (x, k, EVP_sha256 ()) <= 0)
    abort ();
  f = fopen (ca, "w");
  if (f == NULL || PEM_write_X509 (f, x) != 1)
    abort ();
  fclose (f);
  server_ctx = SSL_CTX_new (TLS_server_method ());
  SSL_CTX_set_min_proto_version (server_ctx, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate (server_ctx, x) != 1 ||
      SSL_CTX_use_PrivateKey (server_ctx, k) != 1)
    abort ();
  SSL_CTX_set_alpn_select_cb (server_ctx, alpn_select, NULL);
  client_ctx = ctl_relay_client_ctx (ca, &error);
  if (client_ctx == NULL)
    abort ();
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (bind (listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen (listen_fd, 8) != 0 ||
      getsockname (listen_fd, (struct sockaddr *)&sa, &sl) != 0)
    abort ();
  address = g_strdup_printf ("127.0.0.1:%u", ntohs (sa.sin_port));
  unlink (ca);
  rmdir (dir);
  g_free (ca);
  g_free (dir);
  X509_free (x);
  EVP_PKEY_free (k);
}

typedef struct {
  CtlRelayLink *f, *l; /* the follower's end, the leader's */
  SSL *hs;             /* the leader's handshake in progress */
  int hs_fd;
  gboolean leader_writes;
  GString *flog, *llog;      /* events, "UP;OPEN 1 src rx1;..." */
  GByteArray *fdata, *ldata; /* DATA each end received */
  guint8 lkey[CTL_RELAY_KEY_LEN];
} Pair;

static void
drain (CtlRelayLink *l, GString *log, GByteArray *data)
{
  CtlRelayEvent ev;
  while (ctl_relay_link_next (l, &ev)) {
    switch (ev.type) {
    case CTL_RELAY_EV_UP:
      g_string_append (log, "UP;");
      break;
    case CTL_RELAY_EV_OPEN:
      g_string_append_printf (log, "OPEN %u %s %s;", ev.stream, ev.source,
                              ev.identity);
      break;
    case CTL_RELAY_EV_DATA:
      g_byte_array_append (data, ev.data, (guint)ev.len);
      break;
    case CTL_RELAY_EV_CLOSE:
      g_string_append_printf (log, "CLOSE %u;", ev.stream);
      break;
    case CTL_RELAY_EV_LOST:
      g_string_append_printf (log, "LOST %s;", ev.why);
      break;
    }
  }
}

static guint32
poll_events (CtlRelayLink *l)
{
  struct pollfd p = {.fd = ctl_relay_link_fd (l)};
  guint32 want = ctl_relay_link_events (l);
  p.events =
      (short)((want & EPOLLIN ? POLLIN : 0) | (want & EPOLLOUT ? POLLOUT : 0));
  if (poll (&p, 1, 0) <= 0)
    return 0;
  return (p.revents & POLLIN ? EPOLLIN : 0) |
         (p.revents & POLLOUT ? EPOLLOUT : 0) |
         (p.revents & POLLERR ? EPOLLERR : 0) |
         (p.revents & POLLHUP ? EPOLLHUP : 0);
}

static gboolean
has (GString *log, const char *what)
{
  return strstr (log->str, what) != NULL;
}

/* Both ends' work until log holds what (at most 10 s: a loaded machine
 * under the sanitizers), or for ms when what is NULL. */
static void
pump_until (Pair *p, GString *log, const char *what, gint64 ms)
{
  gint64 end = g_get_monotonic_time () / 1000 + (what ? 10000 : ms);
  while (g_get_monotonic_time () / 1000 < end && !(what && has (log, what))) {
    gint64 now = g_get_monotonic_time () / 1000;
    if (p->f) {
      ctl_relay_link_io (p->f, poll_events (p->f), TRUE, now);
      drain (p->f, p->flog, p->fdata);
    }
    if (p->l == NULL && p->hs == NULL) {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK);
      if (fd >= 0) {
        p->hs = SSL_new (server_ctx);
        SSL_set_fd (p->hs, fd);
        SSL_set_accept_state (p->hs);
        p->hs_fd = fd;
      }
    }
    if (p->hs) {
      int r = SSL_do_handshake (p->hs);
      if (r == 1) {
        p->l = ctl_relay_link_accept (p->hs_fd, p->hs, "127.0.0.1:1", p->lkey,
                                      "c1", now + 2000);
        p->hs = NULL;
      } else {
        int e = SSL_get_error (p->hs, r);
        ERR_clear_error ();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          SSL_free (p->hs);
          close (p->hs_fd);
          p->hs = NULL;
          g_string_append (p->llog, "HANDSHAKE-FAILED;");
        }
      }
    }
    if (p->l) {
      ctl_relay_link_io (p->l, poll_events (p->l), p->leader_writes, now);
      drain (p->l, p->llog, p->ldata);
    }
    g_usleep (500);
  }
}

static Pair *
pair_new (const guint8 *fkey, const guint8 *lkey)
{
  Pair *p = g_new0 (Pair, 1);
  GError *error = NULL;
  p->leader_writes = TRUE;
  p->flog = g_string_new ("");
  p->llog = g_string_new ("");
  p->fdata = g_byte_array_new ();
  p->ldata = g_byte_array_new ();
  memcpy (p->lkey, lkey, sizeof p->lkey);
  p->f = ctl_relay_link_connect (client_ctx, address, fkey, "c2",
                                 g_get_monotonic_time () / 1000 + 3000, &error);
  CHECK (p->f != NULL);
  if (p->f == NULL)
    abort ();
  return p;
}

static void
pair_free (Pair *p)
{
  ctl_relay_link_free (p->f);
  ctl_relay_link_free (p->l);
  g_string_free (p->flog, TRUE);
  g_string_free (p->llog, TRUE);
  g_byte_array_unref (p->fdata);
  g_byte_array_unref (p->ldata);
  g_free (p);
}

static void
pump (Pair *p, gint64 ms)
{
  pump_until (p, NULL, NULL, ms);
}

/* One key: up at both ends; the follower's frames queued before that go
 * out after the HELLOs, in order, 40,000 bytes in three DATA frames. */
static void
test_up (void)
{
  guint8 key[CTL_RELAY_KEY_LEN], opened[600], big[40000];
  Pair *p;
  gsize n;

  memset (key, 7, sizeof key);
  for (gsize i = 0; i < sizeof big; i++)
    big[i] = (guint8)(i * 31 + 5);
  p = pair_new (key, key);
  n = ctl_relay_open_build ("10.0.0.9:4000", "rx1", opened);
  ctl_relay_link_send (p->f, CTL_RELAY_OPEN, 1, opened, n);
  ctl_relay_link_send (p->f, CTL_RELAY_DATA, 1, big, sizeof big);
  ctl_relay_link_send (p->f, CTL_RELAY_CLOSE, 1, NULL, 0);
  CHECK (!ctl_relay_link_is_up (p->f) && ctl_relay_link_queued (p->f) > 0);
  pump_until (p, p->llog, "CLOSE 1;", 0);
  CHECK (ctl_relay_link_is_up (p->f) && p->l && ctl_relay_link_is_up (p->l));
  CHECK (strcmp (p->flog->str, "UP;") == 0);
  CHECK (strcmp (p->llog->str, "UP;OPEN 1 10.0.0.9:4000 rx1;CLOSE 1;") == 0);
  CHECK (p->ldata->len == sizeof big &&
         memcmp (p->ldata->data, big, sizeof big) == 0);
  CHECK (strcmp (ctl_relay_link_peer (p->f), "c1") == 0);
  CHECK (p->l && strcmp (ctl_relay_link_peer (p->l), "c2") == 0);
  /* the leader's answer, and its end of the stream */
  ctl_relay_link_send (p->l, CTL_RELAY_DATA, 1, big, 100);
  ctl_relay_link_send (p->l, CTL_RELAY_CLOSE, 1, NULL, 0);
  pump_until (p, p->flog, "CLOSE 1;", 0);
  CHECK (p->fdata->len == 100 && memcmp (p->fdata->data, big, 100) == 0);
  CHECK (has (p->flog, "CLOSE 1;"));
  /* the follower goes: the leader sees its end */
  ctl_relay_link_free (p->f);
  p->f = NULL;
  pump_until (p, p->llog, "LOST ", 0);
  CHECK (has (p->llog, "LOST "));
  pair_free (p);
}

/* Another key: the leader takes nothing the follower queued, neither end
 * is ever up. */
static void
test_wrong_key (void)
{
  guint8 key[CTL_RELAY_KEY_LEN], other[CTL_RELAY_KEY_LEN], opened[600];
  Pair *p;
  gsize n;

  memset (key, 7, sizeof key);
  memcpy (other, key, sizeof other);
  other[0] ^= 1;
  p = pair_new (other, key);
  n = ctl_relay_open_build ("10.0.0.9:4000", "rx1", opened);
  ctl_relay_link_send (p->f, CTL_RELAY_OPEN, 1, opened, n);
  pump_until (p, p->llog, "LOST ", 0);
  CHECK (strcmp (p->llog->str,
                 "LOST its HELLO does not prove the cluster key;") == 0);
  /* the daemon frees a lost link: its socket closes */
  ctl_relay_link_free (p->l);
  p->l = NULL;
  pump_until (p, p->flog, "LOST ", 0);
  CHECK (has (p->flog, "LOST ") && !has (p->flog, "UP;"));
  CHECK (p->ldata->len == 0);
  pair_free (p);
}

/* A leader that may not write (its lease ran out) sends nothing, and the
 * link is lost as stalled; a link whose HELLO does not come in time is
 * lost. */
static void
test_fenced_and_deadlines (void)
{
  guint8 key[CTL_RELAY_KEY_LEN];
  Pair *p;
  gint64 now;

  memset (key, 9, sizeof key);
  p = pair_new (key, key);
  pump_until (p, p->flog, "UP;", 0);
  pump_until (p, p->llog, "UP;", 0);
  CHECK (p->l && ctl_relay_link_is_up (p->l));
  if (p->l == NULL) {
    pair_free (p);
    return;
  }
  p->leader_writes = FALSE;
  ctl_relay_link_send (p->l, CTL_RELAY_DATA, 1, key, sizeof key);
  pump (p, 100);
  CHECK (p->fdata->len == 0 && ctl_relay_link_queued (p->l) > 0);
  now = g_get_monotonic_time () / 1000;
  ctl_relay_link_check (p->l, now, 10000);
  drain (p->l, p->llog, p->ldata);
  CHECK (!has (p->llog, "LOST")); /* not yet */
  ctl_relay_link_check (p->l, now + 10001, 10000);
  drain (p->l, p->llog, p->ldata);
  CHECK (has (p->llog, "LOST its queue does not move;"));
  pair_free (p);

  /* no HELLO by the deadline: the follower's end has not sent it yet */
  p = pair_new (key, key);
  while (p->l == NULL) {
    gint64 t = g_get_monotonic_time () / 1000;
    if (p->hs == NULL) {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK);
      if (fd >= 0) {
        p->hs = SSL_new (server_ctx);
        SSL_set_fd (p->hs, fd);
        SSL_set_accept_state (p->hs);
        p->hs_fd = fd;
      }
    }
    ctl_relay_link_io (p->f, poll_events (p->f), TRUE, t);
    if (p->hs && SSL_do_handshake (p->hs) == 1) {
      p->l = ctl_relay_link_accept (p->hs_fd, p->hs, "127.0.0.1:1", key, "c1",
                                    t + 50);
      p->hs = NULL;
    }
    ERR_clear_error ();
    g_usleep (500);
  }
  ctl_relay_link_check (p->l, g_get_monotonic_time () / 1000 + 60, 10000);
  drain (p->l, p->llog, p->ldata);
  CHECK (strcmp (p->llog->str, "LOST no HELLO in time;") == 0);
  pair_free (p);
}

int
main (void)
{
  setup ();
  test_up ();
  test_wrong_key ();
  test_fenced_and_deadlines ();
  close (listen_fd);
  SSL_CTX_free (server_ctx);
  SSL_CTX_free (client_ctx);
  g_free (address);
  return test_done ("test-relay-link");
}
