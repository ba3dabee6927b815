/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * dos-client: the attacker's side of tests/dos.sh (issue 14), what the
 * shell cannot do.  One mode per attack; each prints key=value lines on
 * standard output (line-buffered): "ready ..." once the attack is in place,
 * "status ..." while it is held, "summary ..." at the end.  Every mode ends
 * after --hold seconds or on SIGTERM/SIGINT.
 *
 *  flood      --connect HOST:PORT --source ADDR --count N --hold S
 *             N TCP connections from ADDR (bound before connect), never a
 *             byte sent; RLIMIT_NOFILE raised to its hard limit (exit 3,
 *             "FAIL ...", if that is too low for N);
 *  handshake  --connect HOST:PORT --source ADDR --count N --hold S
 *             N connections that send a TLS ClientHello and never finish
 *             the handshake; ends early once the controller closed them all;
 *  repair     --connect HOST:PORT --group NAME --ca FILE --certificate FILE
 *             --private-key FILE [--rcvbuf BYTES] [--bytes N] [--seq N]
 *             [--flood-timeout S] [--ping-ms MS] --hold S
 *             a real member (TLS 1.3, client certificate, JOIN, WELCOME and
 *             the first UPDATE read) that then stops reading and writes N
 *             bytes of REPAIR frames (SEQ --seq), pinging while it holds the
 *             connection open; ends early when the controller drops it;
 *  admin      --socket PATH --clients silent,partial,... --hold S
 *             connections to the admin socket that send nothing ("silent")
 *             or a line without its newline ("partial").
 *
 * Exit: 0 (the figures say what happened), 2 usage or setup error, 3 the
 * attack could not be mounted (RLIMIT_NOFILE) or the member was refused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mcsec/mcsec-mike.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static volatile sig_atomic_t stop;

static void
on_signal (int sig)
{
  (void)sig;
  stop = 1;
}

static int64_t
now_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

typedef struct {
  const char *connect, *source, *group, *ca, *certificate, *private_key,
      *socket_path, *clients;
  long count, hold_s, rcvbuf, bytes, seq, flood_timeout_s, ping_ms,
      connect_timeout_s, pong, no_join;
} Opts;

static void
usage (void)
{
  fprintf (stderr,
           "usage: dos-client flood|handshake --connect HOST:PORT --source "
           "ADDR --count N --hold S\n"
           "       dos-client repair --connect HOST:PORT --group NAME --ca F "
           "--certificate F --private-key F\n"
           "                  [--rcvbuf B] [--bytes N] [--seq N] "
           "[--flood-timeout S] [--ping-ms MS] --hold S\n"
           "                  [--pong 1: PONG frames instead of REPAIR]\n"
           "                  [--no-join 1: flood right after the handshake]\n"
           "       dos-client admin --socket PATH --clients silent,partial,... "
           "--hold S\n");
}

static int
parse_opts (int argc, char **argv, Opts *o)
{
  memset (o, 0, sizeof *o);
  o->count = 1;
  o->hold_s = 10;
  o->rcvbuf = 4096;
  o->bytes = 1 << 20;
  o->seq = 1;
  o->flood_timeout_s = 10;
  o->ping_ms = 500;
  o->connect_timeout_s = 5;
  for (int i = 2; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      return -1;
#define STR(name, field)                                                       \
  if (strcmp (a, "--" name) == 0) {                                            \
    o->field = v;                                                              \
    continue;                                                                  \
  }
#define NUM(name, field)                                                       \
  if (strcmp (a, "--" name) == 0) {                                            \
    o->field = strtol (v, NULL, 10);                                           \
    continue;                                                                  \
  }
    STR ("connect", connect)
    STR ("source", source)
    STR ("group", group)
    STR ("ca", ca)
    STR ("certificate", certificate)
    STR ("private-key", private_key)
    STR ("socket", socket_path)
    STR ("clients", clients)
    NUM ("count", count)
    NUM ("hold", hold_s)
    NUM ("rcvbuf", rcvbuf)
    NUM ("bytes", bytes)
    NUM ("seq", seq)
    NUM ("flood-timeout", flood_timeout_s)
    NUM ("ping-ms", ping_ms)
    NUM ("connect-timeout", connect_timeout_s)
    NUM ("pong", pong)
    NUM ("no-join", no_join)
#undef STR
#undef NUM
    return -1;
  }
  return 0;
}

/* "127.0.0.1:7700" (IPv4: the tests use loopback addresses only) */
static int
parse_addr (const char *s, const char *default_port, struct sockaddr_in *sa)
{
  char host[64];
  const char *colon = s ? strrchr (s, ':') : NULL;
  size_t n = colon ? (size_t)(colon - s) : (s ? strlen (s) : 0);

  if (s == NULL || n >= sizeof host)
    return -1;
  memcpy (host, s, n);
  host[n] = '\0';
  memset (sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons ((uint16_t)atoi (colon ? colon + 1 : default_port));
  return inet_pton (AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Many connections from one source address: idle, or stuck in a handshake   */

enum { C_UNUSED, C_PENDING, C_OPEN, C_FAILED, C_CLOSED };

typedef struct {
  int fd, state;
  SSL *ssl;
  int64_t started, closed;
} Sock;

static const char *
errno_name (int e)
{
  switch (e) {
  case ECONNREFUSED:
    return "refused";
  case ECONNRESET:
    return "reset";
  case ETIMEDOUT:
    return "timed-out";
  case EADDRNOTAVAIL:
    return "no-port";
  case EMFILE:
  case ENFILE:
    return "no-fd";
  default:
    return "other";
  }
}

typedef struct {
  long pending, open, failed, closed, hello_sent, data_bytes;
  long failed_by[6]; /* refused, reset, timed-out, no-port, no-fd, other */
  int64_t first_close, last_close, longest_open;
} Counts;

static void
count_fail (Counts *k, int e)
{
  static const char *names[] = {"refused", "reset", "timed-out",
                                "no-port", "no-fd", "other"};
  for (int i = 0; i < 6; i++)
    if (strcmp (errno_name (e), names[i]) == 0)
      k->failed_by[i]++;
}

static void
print_counts (const char *what, const Counts *k, int64_t t0, int tls)
{
  printf ("%s t-ms=%lld open=%ld pending=%ld failed=%ld closed-by-peer=%ld",
          what, (long long)(now_ms () - t0), k->open, k->pending, k->failed,
          k->closed);
  if (tls)
    printf (" hello-sent=%ld", k->hello_sent);
  if (k->failed)
    printf (" failed-refused=%ld failed-reset=%ld failed-timed-out=%ld "
            "failed-no-port=%ld failed-no-fd=%ld failed-other=%ld",
            k->failed_by[0], k->failed_by[1], k->failed_by[2], k->failed_by[3],
            k->failed_by[4], k->failed_by[5]);
  if (k->closed)
    printf (" first-close-ms=%lld last-close-ms=%lld longest-open-ms=%lld",
            (long long)(k->first_close - t0), (long long)(k->last_close - t0),
            (long long)k->longest_open);
  if (k->data_bytes)
    printf (" bytes-from-peer=%ld", k->data_bytes);
  printf ("\n");
}

static void
sock_closed (Sock *s, Counts *k, int64_t now)
{
  if (s->ssl)
    SSL_free (s->ssl);
  s->ssl = NULL;
  close (s->fd);
  s->fd = -1;
  s->state = C_CLOSED;
  s->closed = now;
  k->open--;
  k->closed++;
  if (k->closed == 1)
    k->first_close = now;
  k->last_close = now;
  if (now - s->started > k->longest_open)
    k->longest_open = now - s->started;
}

/* A connection just completed: with TLS, send the ClientHello (SSL_connect
 * once; it then waits for the server's answer, which never gets read by
 * OpenSSL: the handshake never finishes). */
static void
sock_opened (Sock *s, Counts *k, SSL_CTX *ctx)
{
  s->state = C_OPEN;
  k->pending--;
  k->open++;
  if (ctx) {
    s->ssl = SSL_new (ctx);
    if (s->ssl) {
      SSL_set_fd (s->ssl, s->fd);
      int r = SSL_connect (s->ssl);
      if (r <= 0 && SSL_get_error (s->ssl, r) == SSL_ERROR_WANT_READ)
        k->hello_sent++;
      ERR_clear_error ();
    }
  }
}

static int
cmd_connections (const Opts *o, int tls)
{
  struct sockaddr_in to, from;
  struct rlimit rl;
  Sock *socks;
  struct pollfd *pfds;
  long *map;
  Counts k = {0};
  SSL_CTX *ctx = NULL;
  int64_t t0, deadline, next_status;
  int one = 1;

  if (parse_addr (o->connect, "0", &to) != 0 ||
      parse_addr (o->source, "0", &from) != 0 || o->count <= 0) {
    usage ();
    return 2;
  }
  /* the attacker's own descriptors: as many as the hard limit allows */
  if (getrlimit (RLIMIT_NOFILE, &rl) != 0) {
    perror ("getrlimit");
    return 2;
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &rl) != 0) {
    perror ("setrlimit");
    return 2;
  }
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)o->count + 32) {
    printf ("FAIL rlimit-nofile-hard=%llu needed=%ld: this process cannot "
            "hold %ld connections; raise the hard limit (ulimit -Hn)\n",
            (unsigned long long)rl.rlim_max, o->count + 32, o->count);
    return 3;
  }
  if (tls) {
    ctx = SSL_CTX_new (TLS_client_method ());
    SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify (ctx, SSL_VERIFY_NONE, NULL);
  }
  socks = calloc ((size_t)o->count, sizeof *socks);
  pfds = calloc ((size_t)o->count, sizeof *pfds);
  map = calloc ((size_t)o->count, sizeof *map);
  if (socks == NULL || pfds == NULL || map == NULL)
    return 2;
  for (long i = 0; i < o->count; i++)
    socks[i].fd = -1;
  printf ("start count=%ld source=%s rlimit-nofile=%llu tls=%d\n", o->count,
          o->source, (unsigned long long)rl.rlim_cur, tls);
  t0 = now_ms ();
  for (long i = 0; i < o->count && !stop; i++) {
    Sock *s = &socks[i];
    s->started = now_ms ();
    s->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
      s->state = C_FAILED;
      k.failed++;
      count_fail (&k, errno);
      continue;
    }
    /* the port is picked by connect (per destination): no bind-time limit */
    setsockopt (s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind (s->fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        (connect (s->fd, (struct sockaddr *)&to, sizeof to) != 0 &&
         errno != EINPROGRESS)) {
      s->state = C_FAILED;
      k.failed++;
      count_fail (&k, errno);
      close (s->fd);
      s->fd = -1;
      continue;
    }
    s->state = C_PENDING;
    k.pending++;
  }
  /* until every connection is through (or failed), or the deadline; then
   * hold them until --hold runs out */
  deadline = now_ms () + o->connect_timeout_s * 1000;
  next_status = now_ms () + 1000;
  int ready = 0;
  int64_t hold_end = 0;
  while (!stop) {
    int64_t now = now_ms ();
    nfds_t n = 0;
    int r;
    if (!ready && (k.pending == 0 || now >= deadline)) {
      print_counts ("ready", &k, t0, tls);
      ready = 1;
      hold_end = now + o->hold_s * 1000;
    }
    if (ready && now >= hold_end)
      break;
    /* handshake: nothing left to watch once all were closed */
    if (ready && tls && k.open == 0 && k.pending == 0)
      break;
    if (now >= next_status) {
      print_counts ("status", &k, t0, tls);
      next_status = now + 1000;
    }
    for (long i = 0; i < o->count; i++) {
      Sock *s = &socks[i];
      if (s->state == C_PENDING || s->state == C_OPEN) {
        pfds[n].fd = s->fd;
        pfds[n].events = s->state == C_PENDING ? POLLOUT : POLLIN | POLLRDHUP;
        pfds[n].revents = 0;
        map[n++] = i;
      }
    }
    r = poll (pfds, n, 100);
    if (r < 0 && errno != EINTR) {
      perror ("poll");
      break;
    }
    now = now_ms ();
    for (nfds_t j = 0; r > 0 && j < n; j++) {
      Sock *s = &socks[map[j]];
      if (pfds[j].revents == 0)
        continue;
      if (s->state == C_PENDING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt (s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          sock_opened (s, &k, ctx);
        } else if (err == ECONNRESET || err == EPIPE) {
          /* made, then closed by the server before we looked */
          sock_opened (s, &k, NULL);
          sock_closed (s, &k, now);
        } else {
          s->state = C_FAILED;
          k.pending--;
          k.failed++;
          count_fail (&k, err);
          close (s->fd);
          s->fd = -1;
        }
        continue;
      }
      /* open: whatever the server sends is read and dropped (a TLS server's
       * first flight); end of stream or a reset is the server closing */
      for (;;) {
        char buf[16384];
        ssize_t got = recv (s->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got > 0) {
          k.data_bytes += got;
          continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
          break;
        sock_closed (s, &k, now);
        break;
      }
    }
  }
  if (!ready)
    print_counts ("ready", &k, t0, tls);
  print_counts ("summary", &k, t0, tls);
  for (long i = 0; i < o->count; i++) {
    if (socks[i].ssl)
      SSL_free (socks[i].ssl);
    if (socks[i].fd >= 0)
      close (socks[i].fd);
  }
  SSL_CTX_free (ctx);
  free (socks);
  free (pfds);
  free (map);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* A member that floods REPAIR frames and stops reading                       */

static int
tls_write_all (SSL *ssl, const uint8_t *p, size_t n)
{
  while (n) {
    int w = SSL_write (ssl, p, (int)n);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int
cmd_repair (const Opts *o)
{
  struct sockaddr_in to;
  SSL_CTX *ctx;
  SSL *ssl = NULL;
  int fd = -1, one = 1, rcvbuf = (int)o->rcvbuf, got_welcome = 0,
      got_update = 0;
  struct timeval tv = {10, 0};
  uint8_t buf[16384], frame[256];
  static uint8_t chunk[16000];
  mcsec_mike_builder_t b;
  mcsec_mike_reader_t reader = {0};
  static mcsec_mike_msg_t msg;
  size_t flen, clen, total, written = 0;
  int64_t t0 = now_ms (), flood_start, flood_end, deadline;
  const char *how = NULL;
  int stalled = 0;

  if (parse_addr (o->connect, "0", &to) != 0 || o->group == NULL ||
      o->ca == NULL || o->certificate == NULL || o->private_key == NULL) {
    usage ();
    return 2;
  }
  ctx = SSL_CTX_new (TLS_client_method ());
  SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version (ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_use_certificate_chain_file (ctx, o->certificate) != 1 ||
      SSL_CTX_use_PrivateKey_file (ctx, o->private_key, SSL_FILETYPE_PEM) !=
          1 ||
      SSL_CTX_load_verify_locations (ctx, o->ca, NULL) != 1) {
    fprintf (stderr, "dos-client: cannot load the credentials\n");
    ERR_print_errors_fp (stderr);
    return 2;
  }
  /* a small receive buffer from the start: the controller's writes stall
   * as soon as the member stops reading */
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect (fd, (struct sockaddr *)&to, sizeof to) != 0) {
    printf ("summary joined=0 why=\"connect: %s\"\n", strerror (errno));
    return 3;
  }
  ssl = SSL_new (ctx);
  X509_VERIFY_PARAM_set1_ip_asc (SSL_get0_param (ssl), inet_ntoa (to.sin_addr));
  SSL_set_fd (ssl, fd);
  if (SSL_connect (ssl) != 1) {
    printf ("summary joined=0 why=\"TLS handshake failed\"\n");
    ERR_print_errors_fp (stderr);
    return 3;
  }
  if (o->no_join) {
    printf ("joined ms=0 update-seq=0 next-rekey=0 (no JOIN sent)\n");
    goto flood;
  }
  mcsec_mike_begin (&b, frame, sizeof frame, MCSEC_MIKE_JOIN);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, o->group);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
  if (mcsec_mike_finish (&b, &flen) != MCSEC_OK ||
      tls_write_all (ssl, frame, flen) != 0) {
    printf ("summary joined=0 why=\"cannot send JOIN\"\n");
    return 3;
  }
  /* WELCOME, then the first UPDATE (a key tree group's comes with the
   * commit that places the member, after the batch interval) */
  deadline = now_ms () + 10000;
  while (!(got_welcome && got_update) && now_ms () < deadline && !stop) {
    const uint8_t *f;
    size_t n;
    int r = SSL_read (ssl, buf, sizeof buf);
    if (r <= 0) {
      printf ("summary joined=0 why=\"connection ended before the first "
              "update\"\n");
      return 3;
    }
    if (mcsec_mike_reader_feed (&reader, buf, (size_t)r) != MCSEC_OK) {
      printf ("summary joined=0 why=\"bad framing from the controller\"\n");
      return 3;
    }
    while ((n = mcsec_mike_reader_next (&reader, &f)) > 0) {
      if (mcsec_mike_parse (f, n, &msg) != MCSEC_OK)
        continue;
      if (msg.type == MCSEC_MIKE_WELCOME)
        got_welcome = 1;
      else if (msg.type == MCSEC_MIKE_UPDATE && got_welcome)
        got_update = 1;
      else if (msg.type == MCSEC_MIKE_REFUSE) {
        printf ("summary joined=0 why=\"refused: %s\"\n",
                mcsec_mike_reason_name (msg.reason));
        return 3;
      }
    }
  }
  mcsec_mike_reader_clear (&reader);
  if (!(got_welcome && got_update)) {
    printf ("summary joined=0 why=\"no WELCOME and UPDATE within 10 s\"\n");
    return 3;
  }
  printf ("joined ms=%lld update-seq=%llu next-rekey=%llu\n",
          (long long)(now_ms () - t0), (unsigned long long)msg.seq,
          msg.has_next_rekey ? (unsigned long long)msg.next_rekey : 0ULL);

flood:
  /* from here on nothing is read; writes never block */
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  mcsec_mike_begin (&b, frame, sizeof frame,
                    o->pong ? MCSEC_MIKE_PONG : MCSEC_MIKE_REPAIR);
  if (!o->pong)
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, (uint64_t)o->seq);
  if (mcsec_mike_finish (&b, &flen) != MCSEC_OK)
    return 2;
  for (clen = 0; clen + flen <= sizeof chunk; clen += flen)
    memcpy (chunk + clen, frame, flen);
  total = (size_t)o->bytes / flen * flen;
  flood_start = now_ms ();
  deadline = flood_start + o->flood_timeout_s * 1000;
  /* a chunk that would block is retried as it is (OpenSSL's rule) */
  while (written < total && !stop) {
    size_t n = total - written < clen ? total - written : clen;
    int w = SSL_write (ssl, chunk, (int)n), e;
    if (w > 0) {
      written += (size_t)w;
      continue;
    }
    e = SSL_get_error (ssl, w);
    ERR_clear_error ();
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      struct pollfd p = {fd, POLLOUT, 0};
      int64_t left = deadline - now_ms ();
      if (left <= 0 || poll (&p, 1, (int)left) == 0) {
        stalled = 1; /* the controller stopped taking them */
        break;
      }
      if (p.revents & (POLLERR | POLLHUP)) {
        how = "reset";
        break;
      }
      continue;
    }
    how = errno == EPIPE ? "broken-pipe" : "reset";
    break;
  }
  flood_end = now_ms ();
  printf ("flooded bytes=%zu frames=%zu ms=%lld complete=%d stalled=%d%s%s\n",
          written, written / flen, (long long)(flood_end - flood_start),
          written == total, stalled, how ? " disconnected-during-flood=" : "",
          how ? how : "");

  /* hold the connection open, still not reading; a PING now and then (a
   * live member, not a silent one) until the controller drops it */
  if (how == NULL) {
    int64_t hold_end = flood_end + o->hold_s * 1000, next_ping = flood_end;
    uint8_t ping[64];
    size_t plen;
    const uint8_t *pending = NULL; /* a write that would block, retried */
    size_t pending_len = 0;
    mcsec_mike_begin (&b, ping, sizeof ping, MCSEC_MIKE_PING);
    if (mcsec_mike_finish (&b, &plen) != MCSEC_OK)
      return 2;
    if (stalled) {
      pending = chunk;
      pending_len = total - written < clen ? total - written : clen;
    }
    while (!stop && now_ms () < hold_end) {
      struct pollfd p = {fd, POLLRDHUP, 0};
      if (poll (&p, 1, 50) > 0 &&
          (p.revents & (POLLERR | POLLHUP | POLLRDHUP))) {
        how = (p.revents & POLLERR) ? "reset" : "closed";
        break;
      }
      if (now_ms () >= next_ping) {
        int w, e;
        if (pending == NULL) {
          pending = ping;
          pending_len = plen;
        }
        w = SSL_write (ssl, pending, (int)pending_len);
        e = w > 0 ? SSL_ERROR_NONE : SSL_get_error (ssl, w);
        ERR_clear_error ();
        if (w > 0)
          pending = NULL;
        else if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
          how = errno == EPIPE ? "broken-pipe" : "reset";
          break;
        }
        next_ping = now_ms () + o->ping_ms;
      }
    }
  }
  if (how)
    printf ("summary disconnected=1 how=%s after-flood-ms=%lld\n", how,
            (long long)(now_ms () - flood_end));
  else
    printf ("summary disconnected=0 held-ms=%lld\n",
            (long long)(now_ms () - flood_end));
  SSL_free (ssl);
  close (fd);
  SSL_CTX_free (ctx);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Admin clients that stall                                                   */

static int
cmd_admin (const Opts *o)
{
  struct sockaddr_un sa = {0};
  char *list, *save = NULL;
  int fds[16], n = 0;
  int64_t closed_at[16], t0, hold_end;

  if (o->socket_path == NULL || o->clients == NULL ||
      strlen (o->socket_path) >= sizeof sa.sun_path) {
    usage ();
    return 2;
  }
  sa.sun_family = AF_UNIX;
  strcpy (sa.sun_path, o->socket_path);
  list = strdup (o->clients);
  t0 = now_ms ();
  for (char *w = strtok_r (list, ",", &save); w && n < 16;
       w = strtok_r (NULL, ",", &save)) {
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect (fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
      printf ("summary connected=%d why=\"connect: %s\"\n", n,
              strerror (errno));
      return 3;
    }
    if (strcmp (w, "partial") == 0 && write (fd, "stats", 5) != 5) {
      printf ("summary connected=%d why=\"write: %s\"\n", n, strerror (errno));
      return 3;
    }
    closed_at[n] = -1;
    fds[n++] = fd;
  }
  free (list);
  printf ("ready clients=%d ms=%lld\n", n, (long long)(now_ms () - t0));
  hold_end = now_ms () + o->hold_s * 1000;
  for (;;) {
    struct pollfd p[16];
    int open = 0;
    for (int i = 0; i < n; i++) {
      p[i].fd = closed_at[i] < 0 ? fds[i] : -1;
      p[i].events = POLLIN;
      p[i].revents = 0;
      open += closed_at[i] < 0;
    }
    if (stop || open == 0 || now_ms () >= hold_end)
      break;
    if (poll (p, (nfds_t)n, 50) <= 0)
      continue;
    for (int i = 0; i < n; i++) {
      char buf[4096];
      ssize_t got;
      if (p[i].revents == 0)
        continue;
      got = read (fds[i], buf, sizeof buf);
      if (got > 0) {
        printf ("answer client=%d ms=%lld bytes=%zd\n", i,
                (long long)(now_ms () - t0), got);
        continue;
      }
      closed_at[i] = now_ms () - t0;
      printf ("closed client=%d ms=%lld\n", i, (long long)closed_at[i]);
    }
  }
  printf ("summary clients=%d", n);
  for (int i = 0; i < n; i++) {
    printf (" client%d-closed-ms=%lld", i, (long long)closed_at[i]);
    close (fds[i]);
  }
  printf ("\n");
  return 0;
}

int
main (int argc, char **argv)
{
  Opts o;
  struct sigaction sa = {0};

  setvbuf (stdout, NULL, _IOLBF, 0);
  signal (SIGPIPE, SIG_IGN);
  sa.sa_handler = on_signal;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  if (argc < 2 || parse_opts (argc, argv, &o) != 0) {
    usage ();
    return 2;
  }
  if (strcmp (argv[1], "flood") == 0)
    return cmd_connections (&o, 0);
  if (strcmp (argv[1], "handshake") == 0)
    return cmd_connections (&o, 1);
  if (strcmp (argv[1], "repair") == 0)
    return cmd_repair (&o);
  if (strcmp (argv[1], "admin") == 0)
    return cmd_admin (&o);
  usage ();
  return 2;
}
