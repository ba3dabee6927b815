/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * relay-stub: one end of a relay link (tools/controller/relay.c) with no
 * controller behind it, for tests/relay-backpressure.sh: an end that stops
 * reading its link for a while, so that the controller at the other end
 * finds it full.
 *
 *   relay-stub follower ADDRESS CA CLUSTER_KEY GROUP LISTED UNLISTED HOLD_MS
 *
 * Brings a link up to the leader at ADDRESS (its certificate must chain to
 * CA; CLUSTER_KEY: the file of 64 hexadecimal digits), opens LISTED streams
 * as the identities w0, w1, ... and UNLISTED as x0, x1, ..., each with a
 * receiver's JOIN for GROUP, and writes them all; then reads nothing for
 * HOLD_MS, so that what the leader answers fills the link; then reads until
 * every w stream has its WELCOME and every x stream its CLOSE, 30 s at
 * most.  Prints "welcomed=A/LISTED closed=B/UNLISTED refused=C other=D
 * lost=WHY" and exits 0 when every stream got what it should.
 *
 *   relay-stub leader LISTEN CERTIFICATE KEY CLUSTER_KEY HOLD_MS
 *
 * Takes one link from a follower on LISTEN (HOST:PORT) and, once the first
 * member's bytes came, reads nothing for HOLD_MS, so that what the
 * follower's members send fills the link; then reads until a stream
 * closes, 30 s at most.  Prints "bytes=N closed=yes|no lost=WHY" (N: that
 * stream's bytes) and exits 0 when it closed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/crypto.h>

#include <mcsec/mcsec-mike.h>

#include "cluster.h"
#include "relay.h"

typedef struct {
  GByteArray *in; /* the leader's bytes, not yet a whole frame (NULL:
                     only counted) */
  guint64 bytes;
  guint welcomes, refuses, others;
  gboolean closed;
} Stream;

static gint64
now_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

/* The cluster key file, as the controller reads it. */
static gboolean
read_key (const char *path, guint8 key[32])
{
  gchar *text = NULL;
  gsize len = 0;
  gboolean ok = g_file_get_contents (path, &text, &len, NULL) &&
                ctl_cluster_key_parse (text, key);

  if (text)
    OPENSSL_cleanse (text, len);
  g_free (text);
  return ok;
}

/* The leader's MIKE frames on a stream, counted by type. */
static void
stream_data (Stream *s, const guint8 *p, gsize len)
{
  g_byte_array_append (s->in, p, (guint)len);
  while (s->in->len >= MCSEC_MIKE_HEADER_LEN) {
    guint32 flen = (guint32)s->in->data[0] << 24 |
                   (guint32)s->in->data[1] << 16 |
                   (guint32)s->in->data[2] << 8 | s->in->data[3];
    guint8 type = s->in->data[5];
    if (s->in->len < 4 + (gsize)flen)
      break;
    if (type == MCSEC_MIKE_WELCOME)
      s->welcomes++;
    else if (type == MCSEC_MIKE_REFUSE)
      s->refuses++;
    else
      s->others++;
    g_byte_array_remove_range (s->in, 0, 4 + flen);
  }
}

/* One turn of the link's I/O (a 10 ms wait at most); FALSE once lost. */
static gboolean
link_turn (CtlRelayLink *l, Stream *streams, guint n, const char **why)
{
  struct pollfd p = {.fd = ctl_relay_link_fd (l)};
  guint32 want = ctl_relay_link_events (l), events = 0;
  CtlRelayEvent ev;

  p.events =
      (short)((want & EPOLLIN ? POLLIN : 0) | (want & EPOLLOUT ? POLLOUT : 0));
  if (poll (&p, 1, 10) > 0)
    events = (p.revents & POLLIN ? EPOLLIN : 0) |
             (p.revents & POLLOUT ? EPOLLOUT : 0) |
             (p.revents & POLLERR ? EPOLLERR : 0) |
             (p.revents & POLLHUP ? EPOLLHUP : 0);
  ctl_relay_link_io (l, events, TRUE, now_ms ());
  while (ctl_relay_link_next (l, &ev)) {
    Stream *s =
        ev.stream >= 1 && ev.stream <= n ? &streams[ev.stream - 1] : NULL;
    switch (ev.type) {
    case CTL_RELAY_EV_DATA:
      if (s)
        s->bytes += ev.len;
      if (s && s->in)
        stream_data (s, ev.data, ev.len);
      break;
    case CTL_RELAY_EV_CLOSE:
      if (s)
        s->closed = TRUE;
      break;
    case CTL_RELAY_EV_LOST:
      *why = ev.why;
      return FALSE;
    default:
      break;
    }
  }
  ctl_relay_link_check (l, now_ms (), 10000);
  return TRUE;
}

static int
follower_main (int argc, char **argv)
{
  guint8 cluster_key[32], key[CTL_RELAY_KEY_LEN];
  guint listed, unlisted, n, welcomed = 0, closed = 0, refused = 0, other = 0;
  gint64 hold_ms, end;
  const char *why = NULL;
  gchar *lost = NULL;
  GError *error = NULL;
  CtlRelayLink *l;
  Stream *streams;
  SSL_CTX *ctx;
  gboolean up = FALSE, done = FALSE;

  if (argc != 8) {
    fprintf (stderr, "usage: relay-stub follower ADDRESS CA CLUSTER_KEY "
                     "GROUP LISTED UNLISTED HOLD_MS\n");
    return 2;
  }
  listed = (guint)atoi (argv[5]);
  unlisted = (guint)atoi (argv[6]);
  hold_ms = atoi (argv[7]);
  n = listed + unlisted;
  if (!read_key (argv[3], cluster_key) || !ctl_relay_key (cluster_key, key)) {
    fprintf (stderr, "relay-stub: %s: not a cluster key\n", argv[3]);
    return 2;
  }
  OPENSSL_cleanse (cluster_key, sizeof cluster_key);
  ctx = ctl_relay_client_ctx (argv[2], &error);
  l = ctx ? ctl_relay_link_connect (ctx, argv[1], key, "stub", now_ms () + 5000,
                                    &error)
          : NULL;
  OPENSSL_cleanse (key, sizeof key);
  if (l == NULL) {
    fprintf (stderr, "relay-stub: %s\n", error->message);
    return 2;
  }
  streams = g_new0 (Stream, n);
  for (guint i = 0; i < n; i++) {
    guint8 open[2 + 2 * CTL_RELAY_MAX_NAME], join[256];
    gchar source[32], identity[32];
    mcsec_mike_builder_t b;
    gsize olen;
    size_t jlen;

    streams[i].in = g_byte_array_new ();
    g_snprintf (source, sizeof source, "10.9.%u.%u:4000", i / 250, i % 250);
    g_snprintf (identity, sizeof identity, "%c%u", i < listed ? 'w' : 'x',
                i < listed ? i : i - listed);
    olen = ctl_relay_open_build (source, identity, open);
    mcsec_mike_begin (&b, join, sizeof join, MCSEC_MIKE_JOIN);
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, argv[4]);
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
    if (olen == 0 || mcsec_mike_finish (&b, &jlen) != MCSEC_OK)
      return 2;
    ctl_relay_link_send (l, CTL_RELAY_OPEN, i + 1, open, olen);
    ctl_relay_link_send (l, CTL_RELAY_DATA, i + 1, join, jlen);
  }
  /* up, and every JOIN written */
  end = now_ms () + 10000;
  while (now_ms () < end && link_turn (l, streams, n, &why)) {
    up = up || ctl_relay_link_is_up (l);
    if (up && ctl_relay_link_queued (l) == 0)
      break;
  }
  if (why == NULL && (!up || ctl_relay_link_queued (l) != 0))
    why = "not up, or the JOINs not written, in 10 s";
  if (why == NULL) {
    /* the leader answers; nothing is read */
    g_usleep ((gulong)hold_ms * 1000);
    end = now_ms () + 30000;
    while (!done && now_ms () < end && link_turn (l, streams, n, &why)) {
      done = TRUE;
      for (guint i = 0; i < n && done; i++)
        done = i < listed ? streams[i].welcomes > 0 : streams[i].closed;
    }
  }
  lost = g_strdup (why ? why : "no");
  for (guint i = 0; i < n; i++) {
    if (i < listed && streams[i].welcomes == 1 && !streams[i].closed)
      welcomed++;
    if (i >= listed && streams[i].closed)
      closed++;
    refused += streams[i].refuses;
    other += streams[i].others;
    g_byte_array_unref (streams[i].in);
  }
  printf ("welcomed=%u/%u closed=%u/%u refused=%u other=%u lost=\"%s\"\n",
          welcomed, listed, closed, unlisted, refused, other, lost);
  ctl_relay_link_free (l);
  SSL_CTX_free (ctx);
  g_free (streams);
  g_free (lost);
  return welcomed == listed && closed == unlisted && why == NULL ? 0 : 1;
}

/* The relay's ALPN, whatever else the follower offers. */
static int
alpn_select (SSL *ssl, const unsigned char **out, unsigned char *outlen,
             const unsigned char *in, unsigned int inlen, void *arg)
{
  (void)ssl;
  (void)arg;
  for (unsigned i = 0; i < inlen && i + 1 + in[i] <= inlen; i += 1 + in[i])
    if (in[i] == strlen (CTL_RELAY_ALPN) &&
        memcmp (in + i + 1, CTL_RELAY_ALPN, in[i]) == 0) {
      *out = in + i + 1;
      *outlen = in[i];
      return SSL_TLSEXT_ERR_OK;
    }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* One connection on listen (HOST:PORT, IPv4), its TLS handshake done
 * with ctx: the SSL, NULL after 30 s or a failure. */
static SSL *
accept_tls (const char *listen_at, SSL_CTX *ctx)
{
  struct sockaddr_in sa = {.sin_family = AF_INET};
  const char *colon = strrchr (listen_at, ':');
  gchar *host = colon ? g_strndup (listen_at, colon - listen_at) : NULL;
  int one = 1, lfd, fd = -1;
  struct pollfd p;
  gint64 end = now_ms () + 30000;
  SSL *ssl;

  if (host == NULL || inet_pton (AF_INET, host, &sa.sin_addr) != 1) {
    g_free (host);
    return NULL;
  }
  g_free (host);
  sa.sin_port = htons ((guint16)atoi (colon + 1));
  lfd = socket (AF_INET, SOCK_STREAM, 0);
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen (lfd, 1) != 0) {
    perror ("relay-stub: listen");
    close (lfd);
    return NULL;
  }
  printf ("listening\n");
  fflush (stdout);
  p = (struct pollfd){.fd = lfd, .events = POLLIN};
  if (poll (&p, 1, 30000) == 1)
    fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK);
  close (lfd);
  if (fd < 0)
    return NULL;
  ssl = SSL_new (ctx);
  SSL_set_fd (ssl, fd);
  SSL_set_accept_state (ssl);
  while (now_ms () < end) {
    int r = SSL_do_handshake (ssl), e;
    if (r == 1)
      return ssl;
    e = SSL_get_error (ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
      break;
    p = (struct pollfd){.fd = fd,
                        .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
    poll (&p, 1, 100);
  }
  SSL_free (ssl);
  close (fd);
  return NULL;
}

static int
leader_main (int argc, char **argv)
{
  guint8 cluster_key[32], key[CTL_RELAY_KEY_LEN];
  Stream first = {0};
  const char *why = NULL;
  gchar *lost;
  CtlRelayLink *l;
  SSL_CTX *ctx;
  SSL *ssl;
  gint64 end;
  int rc;

  if (argc != 6) {
    fprintf (stderr, "usage: relay-stub leader LISTEN CERTIFICATE KEY "
                     "CLUSTER_KEY HOLD_MS\n");
    return 2;
  }
  if (!read_key (argv[4], cluster_key) || !ctl_relay_key (cluster_key, key)) {
    fprintf (stderr, "relay-stub: %s: not a cluster key\n", argv[4]);
    return 2;
  }
  OPENSSL_cleanse (cluster_key, sizeof cluster_key);
  ctx = SSL_CTX_new (TLS_server_method ());
  SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION);
  if (SSL_CTX_use_certificate_chain_file (ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file (ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    fprintf (stderr, "relay-stub: %s, %s: not a certificate and its key\n",
             argv[2], argv[3]);
    return 2;
  }
  SSL_CTX_set_alpn_select_cb (ctx, alpn_select, NULL);
  ssl = accept_tls (argv[1], ctx);
  if (ssl == NULL) {
    fprintf (stderr, "relay-stub: no follower's link on %s\n", argv[1]);
    return 2;
  }
  /* the link takes the socket and the SSL */
  l = ctl_relay_link_accept (SSL_get_fd (ssl), ssl, "follower", key, "stub",
                             now_ms () + 5000);
  OPENSSL_cleanse (key, sizeof key);
  /* the first member's bytes; then nothing is read for HOLD_MS */
  end = now_ms () + 30000;
  while (first.bytes == 0 && now_ms () < end && link_turn (l, &first, 1, &why))
    ;
  if (why == NULL && first.bytes) {
    g_usleep ((gulong)atoi (argv[5]) * 1000);
    end = now_ms () + 30000;
    while (!first.closed && now_ms () < end && link_turn (l, &first, 1, &why))
      ;
  }
  lost = g_strdup (why ? why : "no");
  printf ("bytes=%" G_GUINT64_FORMAT " closed=%s lost=\"%s\"\n", first.bytes,
          first.closed ? "yes" : "no", lost);
  rc = first.closed && why == NULL ? 0 : 1;
  g_free (lost);
  ctl_relay_link_free (l);
  SSL_CTX_free (ctx);
  return rc;
}

int
main (int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "follower") == 0)
    return follower_main (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "leader") == 0)
    return leader_main (argc - 1, argv + 1);
  fprintf (stderr, "usage: relay-stub follower|leader ...\n");
  return 2;
}
