/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mike-client.c: the member's I/O.  One thread per client runs TLS 1.3 to
 * a controller of its list, feeds the member state machine (core/member.c)
 * and, when the connection is lost or the controller sends it elsewhere
 * (not-leader, unavailable), tries the next controller, backing off after
 * each round of the list; the keys stay in the member meanwhile.  Events go
 * to the caller's callback from that thread, outside the client's lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mcsec/mcsec-mike.h"
#include "mcsec/mcsec-rekey.h"

#define IO_TIMEOUT_MS 5000
#define CHANNEL_RETRY_MS 5000 /* a rekey channel that cannot be joined */

/* One controller of the list. */
typedef struct {
  char *host, *port; /* split_address's parts */
  char *name;        /* as written in the list: "host:port" */
} controller_t;

struct mcsec_client {
  controller_t *ctls; /* the list, in its order */
  size_t n_ctls;
  char *controller_name; /* expected certificate name; NULL: each host */
  mcsec_client_event_fn on_event;
  void *data;
  SSL_CTX *ctx;
  pthread_mutex_t lock; /* guards member */
  mcsec_member_t *member;
  pthread_t thread;
  int started;
  volatile int stop;
  int wake[2];
  /* key tree groups: the rekey channel's socket (client thread only) */
  char *rekey_interface;
  int chan_fd;
  char chan_address[MCSEC_MIKE_MAX_STRING + 1];
  uint16_t chan_port;
  uint64_t chan_tried_ms;
  /* failover (client thread only): the controllers tried in this round,
   * the REDIRECTED event of the current connection */
  unsigned char *tried;
  int redirected;
  unsigned redirect_reason;
  char redirect_text[MCSEC_MIKE_MAX_STRING + 1];
};

static uint64_t
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *
fmt_error (const char *setting, const char *path, const char *what)
{
  char buf[512];
  unsigned long e = ERR_peek_last_error ();
  snprintf (buf, sizeof buf, "%s: %s %s%s%s", setting, what, path,
            e ? ": " : "", e ? ERR_reason_error_string (e) : "");
  ERR_clear_error ();
  return strdup (buf);
}

/* "host:port", "[v6]:port" */
static int
split_address (const char *addr, char **host, char **port)
{
  const char *colon;

  if (addr == NULL)
    return 0;
  if (addr[0] == '[') {
    const char *end = strchr (addr, ']');
    if (end == NULL || end[1] != ':' || end[2] == '\0')
      return 0;
    *host = strndup (addr + 1, (size_t)(end - addr - 1));
    *port = strdup (end + 2);
  } else {
    colon = strrchr (addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0')
      return 0;
    *host = strndup (addr, (size_t)(colon - addr));
    *port = strdup (colon + 1);
  }
  return *host && *port;
}

/* "host:port[,host:port...]" (blanks around each allowed) into c->ctls;
 * 0 if an entry is not HOST:PORT (or memory ran out). */
static int
parse_controllers (mcsec_client_t *c, const char *list)
{
  const char *p = list;

  if (list == NULL)
    return 0;
  for (;;) {
    const char *end = strchr (p, ',');
    size_t len = end ? (size_t)(end - p) : strlen (p);
    controller_t *grown, *ctl;

    while (len && (*p == ' ' || *p == '\t')) {
      p++;
      len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    grown = realloc (c->ctls, (c->n_ctls + 1) * sizeof *grown);
    if (grown == NULL)
      return 0;
    c->ctls = grown;
    ctl = &c->ctls[c->n_ctls++];
    memset (ctl, 0, sizeof *ctl);
    ctl->name = strndup (p, len);
    if (ctl->name == NULL || !split_address (ctl->name, &ctl->host, &ctl->port))
      return 0;
    if (end == NULL)
      return 1;
    p = end + 1;
  }
}

mcsec_status_t
mcsec_client_new (const mcsec_client_config_t *cfg, mcsec_client_t **out,
                  char **error)
{
  mcsec_client_t *c;
  mcsec_status_t st;

  *error = NULL;
  if (cfg == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  c = calloc (1, sizeof *c);
  if (c == NULL)
    return MCSEC_ERR_NO_MEMORY;
  c->wake[0] = c->wake[1] = c->chan_fd = -1;
  pthread_mutex_init (&c->lock, NULL);
  if (cfg->rekey_interface && *cfg->rekey_interface) {
    if (if_nametoindex (cfg->rekey_interface) == 0) {
      char buf[300];
      snprintf (buf, sizeof buf, "rekey-interface: no network interface '%s'",
                cfg->rekey_interface);
      *error = strdup (buf);
      st = MCSEC_ERR_INVALID_ARG;
      goto fail;
    }
    c->rekey_interface = strdup (cfg->rekey_interface);
  }
  c->on_event = cfg->on_event;
  c->data = cfg->data;
  if (!parse_controllers (c, cfg->controller)) {
    *error = strdup ("controller: expected HOST:PORT, or a comma-separated "
                     "list of them");
    st = MCSEC_ERR_INVALID_ARG;
    goto fail;
  }
  if (cfg->controller_name &&
      (c->controller_name = strdup (cfg->controller_name)) == NULL) {
    st = MCSEC_ERR_NO_MEMORY;
    goto fail;
  }
  c->tried = calloc (c->n_ctls, 1);
  c->ctx = SSL_CTX_new (TLS_client_method ());
  if (c->tried == NULL || c->ctx == NULL) {
    st = MCSEC_ERR_NO_MEMORY;
    goto fail;
  }
  SSL_CTX_set_min_proto_version (c->ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version (c->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (c->ctx, SSL_VERIFY_PEER, NULL);
  st = MCSEC_ERR_BAD_CREDENTIALS;
  if (cfg->certificate == NULL ||
      SSL_CTX_use_certificate_chain_file (c->ctx, cfg->certificate) != 1) {
    *error = fmt_error ("certificate", cfg->certificate ? cfg->certificate : "",
                        "cannot use the certificate in");
    goto fail;
  }
  if (cfg->private_key == NULL ||
      SSL_CTX_use_PrivateKey_file (c->ctx, cfg->private_key,
                                   SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key (c->ctx) != 1) {
    *error = fmt_error ("private-key", cfg->private_key ? cfg->private_key : "",
                        "cannot use (or does not match the certificate)");
    goto fail;
  }
  if (cfg->ca == NULL ||
      SSL_CTX_load_verify_locations (c->ctx, cfg->ca, NULL) != 1) {
    *error = fmt_error ("ca", cfg->ca ? cfg->ca : "", "cannot load the CA in");
    goto fail;
  }
  st = mcsec_member_new (&cfg->member, &c->member);
  if (st) {
    *error = strdup (st == MCSEC_ERR_BAD_SIGNING_KEY
                         ? "signing-key-file: a sender needs an Ed25519 or "
                           "ECDSA P-256 source authentication key"
                         : "group/role: invalid");
    goto fail;
  }
  if (pipe2 (c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    st = MCSEC_ERR_IO;
    goto fail;
  }
  *out = c;
  return MCSEC_OK;

fail:
  mcsec_client_free (c);
  return st;
}

/* Emit the member's events, outside the lock. */
static void
dispatch (mcsec_client_t *c)
{
  mcsec_member_event_t ev;
  for (;;) {
    int have;
    pthread_mutex_lock (&c->lock);
    have = mcsec_member_next_event (c->member, &ev);
    pthread_mutex_unlock (&c->lock);
    if (!have)
      return;
    if (ev.type == MCSEC_MEMBER_EV_REDIRECTED) {
      /* where to go next is the client's choice (client_thread) */
      c->redirected = 1;
      c->redirect_reason = ev.reason;
      memcpy (c->redirect_text, ev.text, sizeof c->redirect_text);
    }
    if (c->on_event)
      c->on_event (&ev, c->data);
  }
}

static void
emit (mcsec_client_t *c, mcsec_member_event_type_t type, const char *text)
{
  mcsec_member_event_t ev;
  memset (&ev, 0, sizeof ev);
  ev.type = type;
  snprintf (ev.text, sizeof ev.text, "%s", text ? text : "");
  if (c->on_event)
    c->on_event (&ev, c->data);
}

/* ---- the rekey channel (key tree groups) ---- */

static void
channel_close (mcsec_client_t *c)
{
  if (c->chan_fd >= 0)
    close (c->chan_fd);
  c->chan_fd = -1;
  c->chan_address[0] = '\0';
  c->chan_port = 0;
}

/* Join the multicast group; -1 with why on failure. */
static int
channel_open (mcsec_client_t *c, const char *address, uint16_t port, char *why,
              size_t why_len)
{
  struct addrinfo hints = {0}, *ai = NULL;
  char service[8];
  unsigned ifindex =
      c->rekey_interface ? if_nametoindex (c->rekey_interface) : 0;
  int fd = -1, one = 1, rc;

  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  snprintf (service, sizeof service, "%u", port);
  rc = getaddrinfo (address, service, &hints, &ai);
  if (rc != 0) {
    snprintf (why, why_len, "%.64s: %s", address, gai_strerror (rc));
    return -1;
  }
  fd = socket (ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  /* bound to the group itself: other traffic to the port stays out, and
   * every member on this host gets its copy */
  if (fd < 0 ||
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind (fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    snprintf (why, why_len, "cannot bind %.64s:%u: %s", address, port,
              strerror (errno));
    goto fail;
  }
  if (ai->ai_family == AF_INET) {
    struct ip_mreqn mr;
    memset (&mr, 0, sizeof mr);
    mr.imr_multiaddr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
    mr.imr_ifindex = (int)ifindex;
    rc = setsockopt (fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
  } else {
    struct ipv6_mreq mr;
    memset (&mr, 0, sizeof mr);
    mr.ipv6mr_multiaddr = ((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    mr.ipv6mr_interface = ifindex;
    rc = setsockopt (fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr);
  }
  if (rc != 0) {
    snprintf (why, why_len, "cannot join %.64s on %.32s: %s", address,
              c->rekey_interface ? c->rekey_interface : "the default interface",
              strerror (errno));
    goto fail;
  }
  freeaddrinfo (ai);
  return fd;
fail:
  if (fd >= 0)
    close (fd);
  freeaddrinfo (ai);
  return -1;
}

/* Follow the member's channel: open it when it appears or moves. */
static void
channel_sync (mcsec_client_t *c)
{
  char address[MCSEC_MIKE_MAX_STRING + 1], why[200];
  uint16_t port = 0;
  int have;
  mcsec_member_event_t ev;

  pthread_mutex_lock (&c->lock);
  have = mcsec_member_channel (c->member, address, sizeof address, &port);
  pthread_mutex_unlock (&c->lock);
  if (!have) {
    channel_close (c);
    return;
  }
  if (c->chan_port == port && strcmp (c->chan_address, address) == 0 &&
      (c->chan_fd >= 0 || now_ms () - c->chan_tried_ms < CHANNEL_RETRY_MS))
    return;
  channel_close (c);
  c->chan_tried_ms = now_ms ();
  snprintf (c->chan_address, sizeof c->chan_address, "%s", address);
  c->chan_port = port;
  c->chan_fd = channel_open (c, address, port, why, sizeof why);
  memset (&ev, 0, sizeof ev);
  ev.type = MCSEC_MEMBER_EV_CHANNEL;
  if (c->chan_fd >= 0) {
    snprintf (ev.text, sizeof ev.text, "receiving rekeys on %.64s:%u", address,
              port);
  } else {
    ev.status = MCSEC_ERR_IO;
    snprintf (ev.text, sizeof ev.text,
              "rekey channel: %.180s (rekeys come over the connection "
              "instead)",
              why);
  }
  if (c->on_event)
    c->on_event (&ev, c->data);
}

static void dispatch (mcsec_client_t *c);

static void
channel_drain (mcsec_client_t *c)
{
  uint8_t buf[MCSEC_REKEY_MAX_DATAGRAM + 1];
  ssize_t n;

  while ((n = recv (c->chan_fd, buf, sizeof buf, 0)) >= 0) {
    pthread_mutex_lock (&c->lock);
    /* bad datagrams are counted by the member; nothing here is fatal */
    (void)mcsec_member_datagram (c->member, buf, (size_t)n, now_ms ());
    pthread_mutex_unlock (&c->lock);
    OPENSSL_cleanse (buf, (size_t)n);
  }
  dispatch (c);
}

/* Wait for fd (or only for the wake pipe with fd < 0) until deadline,
 * serving the rekey channel meanwhile; 1 readable, 0 timeout, -1 stop. */
static int
wait_for (mcsec_client_t *c, int fd, short events, uint64_t deadline)
{
  struct pollfd p[3];
  nfds_t n_p = 0;
  int chan = -1, main_fd = -1;

  channel_sync (c);
  p[n_p++] = (struct pollfd){c->wake[0], POLLIN, 0};
  if (fd >= 0) {
    main_fd = (int)n_p;
    p[n_p++] = (struct pollfd){fd, events, 0};
  }
  if (c->chan_fd >= 0) {
    chan = (int)n_p;
    p[n_p++] = (struct pollfd){c->chan_fd, POLLIN, 0};
  }
  for (;;) {
    uint64_t now = now_ms ();
    int timeout = deadline > now ? (int)(deadline - now) : 0;
    int n = poll (p, n_p, timeout);
    if (c->stop)
      return -1;
    if (n <= 0)
      return 0;
    if (p[0].revents & POLLIN) {
      char b[16];
      while (read (c->wake[0], b, sizeof b) > 0)
        ;
    }
    if (chan >= 0 && p[chan].revents) {
      channel_drain (c);
      p[chan].revents = 0;
      /* the member may have something to say (a repair): let the caller
       * tick, unless its fd is ready */
      if (main_fd < 0 || !p[main_fd].revents)
        return 0;
    }
    return main_fd >= 0 && p[main_fd].revents ? 1 : 0;
  }
}

static int
tcp_connect (mcsec_client_t *c, const controller_t *ctl, char *why,
             size_t why_len)
{
  struct addrinfo hints = {0}, *res = NULL, *ai;
  int fd = -1, rc;

  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo (ctl->host, ctl->port, &hints, &res);
  if (rc != 0) {
    snprintf (why, why_len, "cannot resolve %.200s: %s", ctl->host,
              gai_strerror (rc));
    return -1;
  }
  snprintf (why, why_len, "cannot connect to %.200s", ctl->name);
  for (ai = res; ai && fd < 0; ai = ai->ai_next) {
    int err = 0;
    socklen_t len = sizeof err;
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                 ai->ai_protocol);
    if (fd < 0)
      continue;
    if (connect (fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
        (errno != EINPROGRESS ||
         wait_for (c, fd, POLLOUT, now_ms () + IO_TIMEOUT_MS) != 1 ||
         getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
      snprintf (why, why_len, "cannot connect to %.200s: %s", ctl->name,
                strerror (err ? err : errno));
      close (fd);
      fd = -1;
    }
  }
  freeaddrinfo (res);
  if (fd >= 0) {
    int one = 1;
    struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
    /* blocking from here on, each read and write bounded in time */
    fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return fd;
}

static SSL *
tls_connect (mcsec_client_t *c, const controller_t *ctl, int fd, char *why,
             size_t why_len)
{
  SSL *ssl = SSL_new (c->ctx);
  const char *name = c->controller_name ? c->controller_name : ctl->host;
  struct in6_addr a6;
  struct in_addr a4;
  X509_VERIFY_PARAM *vp;

  if (ssl == NULL)
    return NULL;
  vp = SSL_get0_param (ssl);
  if (inet_pton (AF_INET, name, &a4) == 1 ||
      inet_pton (AF_INET6, name, &a6) == 1)
    X509_VERIFY_PARAM_set1_ip_asc (vp, name);
  else {
    SSL_set_tlsext_host_name (ssl, name);
    X509_VERIFY_PARAM_set1_host (vp, name, 0);
  }
  SSL_set_fd (ssl, fd);
  if (SSL_connect (ssl) != 1) {
    long vr = SSL_get_verify_result (ssl);
    unsigned long e = ERR_peek_last_error ();
    if (vr != X509_V_OK)
      snprintf (why, why_len, "TLS: controller certificate rejected: %s",
                X509_verify_cert_error_string (vr));
    else
      snprintf (why, why_len, "TLS handshake failed: %s",
                e ? ERR_reason_error_string (e) : "connection closed");
    ERR_clear_error ();
    SSL_free (ssl);
    return NULL;
  }
  return ssl;
}

/* Write everything the member has queued; 0 on failure. */
static int
flush_output (mcsec_client_t *c, SSL *ssl)
{
  for (;;) {
    const uint8_t *data;
    uint8_t buf[4096];
    size_t n;
    int w;
    pthread_mutex_lock (&c->lock);
    n = mcsec_member_output (c->member, &data);
    if (n > sizeof buf)
      n = sizeof buf;
    memcpy (buf, data, n);
    pthread_mutex_unlock (&c->lock);
    if (n == 0)
      return 1;
    w = SSL_write (ssl, buf, (int)n);
    if (w <= 0) {
      ERR_clear_error ();
      return 0;
    }
    pthread_mutex_lock (&c->lock);
    mcsec_member_written (c->member, (size_t)w);
    pthread_mutex_unlock (&c->lock);
  }
}

static mcsec_member_state_t
member_state (mcsec_client_t *c)
{
  mcsec_member_state_t s;
  pthread_mutex_lock (&c->lock);
  s = mcsec_member_state (c->member);
  pthread_mutex_unlock (&c->lock);
  return s;
}

/* The member's timers run (retiring SAs, pings) and its events go out;
 * the time of its next deadline. */
static uint64_t
tick_member (mcsec_client_t *c)
{
  int dead;
  uint64_t next;
  pthread_mutex_lock (&c->lock);
  next = mcsec_member_tick (c->member, now_ms (), &dead);
  pthread_mutex_unlock (&c->lock);
  dispatch (c);
  return next;
}

static int
final_state (mcsec_client_t *c)
{
  mcsec_member_state_t s = member_state (c);
  return s == MCSEC_MEMBER_REFUSED || s == MCSEC_MEMBER_EVICTED;
}

/* The member still wants this connection: joining or joined (not refused,
 * evicted, or sent elsewhere by a REFUSE that is not final). */
static int
in_session (mcsec_client_t *c)
{
  mcsec_member_state_t s = member_state (c);
  return s == MCSEC_MEMBER_JOINING || s == MCSEC_MEMBER_JOINED;
}

/* One connection to ctl, until it fails, the member is refused (finally or
 * not) or the client stops.  why says what ended it; 1 if the controller
 * took us in. */
static int
run_connection (mcsec_client_t *c, const controller_t *ctl, SSL *ssl, int fd,
                char *why, size_t why_len, uint64_t *backoff)
{
  uint8_t buf[16384];
  int dead = 0, answered = 0;

  snprintf (why, why_len, "the controller closed the connection");
  while (!c->stop) {
    uint64_t next;
    int r, n, joined;
    pthread_mutex_lock (&c->lock);
    next = mcsec_member_tick (c->member, now_ms (), &dead);
    pthread_mutex_unlock (&c->lock);
    dispatch (c);
    if (dead) {
      snprintf (why, why_len, "the controller went silent");
      return answered;
    }
    if (!flush_output (c, ssl)) {
      snprintf (why, why_len, "cannot write to the controller");
      return answered;
    }
    if (!in_session (c)) {
      if (c->redirected)
        snprintf (why, why_len, "%s: %.200s",
                  mcsec_mike_reason_name (c->redirect_reason),
                  c->redirect_text);
      return answered;
    }
    r = SSL_pending (ssl) > 0 ? 1 : wait_for (c, fd, POLLIN, next);
    if (r < 0)
      break;
    if (r == 0)
      continue;
    n = SSL_read (ssl, buf, sizeof buf);
    if (n <= 0) {
      int e = SSL_get_error (ssl, n);
      unsigned long err = ERR_peek_last_error ();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error ();
        continue;
      }
      /* TLS 1.3: the controller judges our certificate after our side of
       * the handshake is done; its verdict arrives here as an alert */
      if (err)
        snprintf (why, why_len, "TLS: %s", ERR_reason_error_string (err));
      ERR_clear_error ();
      return answered;
    }
    pthread_mutex_lock (&c->lock);
    r = mcsec_member_receive (c->member, buf, (size_t)n, now_ms ()) == MCSEC_OK;
    joined = mcsec_member_state (c->member) == MCSEC_MEMBER_JOINED;
    pthread_mutex_unlock (&c->lock);
    if (joined && !answered) {
      /* only a controller that took us in counts as reached */
      answered = 1;
      *backoff = MCSEC_MIKE_BACKOFF_MIN_MS;
      emit (c, MCSEC_MEMBER_EV_CONNECTED, ctl->name);
    }
    OPENSSL_cleanse (buf, (size_t)n);
    if (!r) {
      dispatch (c);
      snprintf (why, why_len, "protocol error from the controller");
      return answered;
    }
  }
  /* stopping: say goodbye if we can */
  pthread_mutex_lock (&c->lock);
  mcsec_member_leave (c->member);
  pthread_mutex_unlock (&c->lock);
  flush_output (c, ssl);
  SSL_shutdown (ssl);
  return answered;
}

/* An address in common (family, address, port). */
static int
common_address (const struct addrinfo *a, const struct addrinfo *b)
{
  for (; a; a = a->ai_next)
    for (const struct addrinfo *x = b; x; x = x->ai_next) {
      if (a->ai_family != x->ai_family)
        continue;
      if (a->ai_family == AF_INET) {
        const struct sockaddr_in *p = (const void *)a->ai_addr,
                                 *q = (const void *)x->ai_addr;
        if (p->sin_port == q->sin_port &&
            p->sin_addr.s_addr == q->sin_addr.s_addr)
          return 1;
      } else if (a->ai_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const void *)a->ai_addr,
                                  *q = (const void *)x->ai_addr;
        if (p->sin6_port == q->sin6_port &&
            p->sin6_scope_id == q->sin6_scope_id &&
            memcmp (&p->sin6_addr, &q->sin6_addr, sizeof p->sin6_addr) == 0)
          return 1;
      }
    }
  return 0;
}

/* The controller of the list, other than cur, that a not-leader refusal's
 * TEXT ("leader=HOST:PORT") names: the same host and port as written in
 * the list, or else an address in common once both are resolved; n_ctls
 * when it names none of them ("leader=unknown", an address not in the
 * list: never followed). */
static size_t
find_leader (mcsec_client_t *c, const char *text, size_t cur)
{
  char addr[MCSEC_MIKE_MAX_STRING + 1], *host = NULL, *port = NULL;
  struct addrinfo hints = {0}, *named = NULL;
  size_t i, found = c->n_ctls;

  if (strncmp (text, "leader=", 7) != 0)
    return found;
  text += 7;
  snprintf (addr, sizeof addr, "%.*s", (int)strcspn (text, " \t,;"), text);
  if (!split_address (addr, &host, &port))
    goto done;
  for (i = 0; i < c->n_ctls && found == c->n_ctls; i++)
    if (i != cur && strcasecmp (c->ctls[i].host, host) == 0 &&
        strcmp (c->ctls[i].port, port) == 0)
      found = i;
  hints.ai_socktype = SOCK_STREAM;
  if (found < c->n_ctls || getaddrinfo (host, port, &hints, &named) != 0)
    goto done;
  for (i = 0; i < c->n_ctls && found == c->n_ctls; i++) {
    struct addrinfo *res = NULL;
    if (i == cur ||
        getaddrinfo (c->ctls[i].host, c->ctls[i].port, &hints, &res) != 0)
      continue;
    if (common_address (named, res))
      found = i;
    freeaddrinfo (res);
  }
  freeaddrinfo (named);
done:
  free (host);
  free (port);
  return found;
}

/* Wait about backoff ms (+-25% jitter: members that lost their controller
 * together do not come back together), running the SA timers meanwhile. */
static void
back_off (mcsec_client_t *c, uint64_t backoff)
{
  uint32_t r = 0;
  uint64_t deadline;

  RAND_bytes ((unsigned char *)&r, sizeof r);
  deadline = now_ms () + backoff * 3 / 4 + r % (backoff / 2 + 1);
  while (!c->stop && now_ms () < deadline) {
    uint64_t next = tick_member (c);
    if (wait_for (c, -1, 0, next < deadline ? next : deadline) < 0)
      break;
  }
}

/* The failover (docs/mike-protocol.md, "Member state machine"): a round
 * tries every controller of the list once, in the list's order from where
 * the last one ended; a connection that fails, is lost, goes silent or
 * is refused with not-leader or unavailable moves on to the next one at
 * once.  A not-leader refusal naming a controller of the list sends the
 * member there first, at once, but only once per round (two controllers
 * naming each other cannot make it spin).  A round without a join ends
 * with a backoff (MCSEC_MIKE_BACKOFF_MIN_MS doubling to _MAX_MS, +-25%);
 * a join starts a new round (with the controller it leaves) and the
 * backoff from its minimum.  With one controller this is the old loop:
 * each failure backs off. */
static void *
client_thread (void *arg)
{
  mcsec_client_t *c = arg;
  sigset_t pipe_set;
  uint64_t backoff = MCSEC_MIKE_BACKOFF_MIN_MS;
  int was_up = 1; /* report the first failure too */
  int redirect_used = 0;
  size_t cur = 0, k;
  char why[MCSEC_MIKE_MAX_STRING + 1];

  /* a controller that closes the connection while we write (a restart,
   * its handshake caps) must not kill the application with SIGPIPE:
   * OpenSSL writes with write(2); blocked here, the write fails with EPIPE
   * and the signal stays pending on this thread, which never takes it */
  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);
  while (!c->stop && !final_state (c)) {
    const controller_t *ctl = &c->ctls[cur];
    SSL *ssl = NULL;
    int fd, joined = 0;

    c->tried[cur] = 1;
    c->redirected = 0;
    fd = tcp_connect (c, ctl, why, sizeof why);
    if (fd >= 0)
      ssl = tls_connect (c, ctl, fd, why, sizeof why);
    if (ssl) {
      pthread_mutex_lock (&c->lock);
      mcsec_member_connected (c->member, now_ms ());
      pthread_mutex_unlock (&c->lock);
      joined = run_connection (c, ctl, ssl, fd, why, sizeof why, &backoff);
      SSL_free (ssl);
    }
    if (fd >= 0)
      close (fd);
    pthread_mutex_lock (&c->lock);
    mcsec_member_disconnected (c->member, now_ms ());
    pthread_mutex_unlock (&c->lock);
    dispatch (c);
    if (c->stop || final_state (c))
      break;
    if (joined) {
      /* a new round, which the controller just lost opens */
      memset (c->tried, 0, c->n_ctls);
      c->tried[cur] = 1;
      redirect_used = 0;
      /* "lost" is news only after the controller took us in */
      was_up = 1;
    }
    if (c->redirected) {
      /* the REDIRECTED event said it; the leader it names first */
      if (!redirect_used &&
          c->redirect_reason == MCSEC_MIKE_REASON_NOT_LEADER &&
          (k = find_leader (c, c->redirect_text, cur)) < c->n_ctls) {
        redirect_used = 1;
        cur = k;
        continue;
      }
    } else {
      if (was_up)
        emit (c, MCSEC_MEMBER_EV_CONNECTION_LOST, why);
      was_up = 0;
    }
    /* the next controller this round has not tried */
    for (k = 1; k < c->n_ctls && c->tried[(cur + k) % c->n_ctls]; k++)
      ;
    if (k < c->n_ctls) {
      cur = (cur + k) % c->n_ctls;
      continue;
    }
    /* a whole round without a join */
    back_off (c, backoff);
    backoff = backoff * 2 > MCSEC_MIKE_BACKOFF_MAX_MS
                  ? MCSEC_MIKE_BACKOFF_MAX_MS
                  : backoff * 2;
    memset (c->tried, 0, c->n_ctls);
    redirect_used = 0;
    cur = (cur + 1) % c->n_ctls;
  }
  /* refused or evicted: keep ticking so retiring SAs go, until stopped */
  while (!c->stop) {
    uint64_t next = tick_member (c);
    if (wait_for (c, -1, 0, next) < 0)
      break;
  }
  return NULL;
}

mcsec_status_t
mcsec_client_start (mcsec_client_t *c)
{
  if (c == NULL || c->started)
    return MCSEC_ERR_INVALID_ARG;
  c->stop = 0;
  if (pthread_create (&c->thread, NULL, client_thread, c) != 0)
    return MCSEC_ERR_NO_MEMORY;
  c->started = 1;
  return MCSEC_OK;
}

void
mcsec_client_stop (mcsec_client_t *c)
{
  if (c == NULL || !c->started)
    return;
  c->stop = 1;
  if (write (c->wake[1], "x", 1) < 0) {
    /* the pipe is full: the thread is awake anyway */
  }
  pthread_join (c->thread, NULL);
  c->started = 0;
}

void
mcsec_client_free (mcsec_client_t *c)
{
  if (c == NULL)
    return;
  mcsec_client_stop (c);
  channel_close (c);
  free (c->rekey_interface);
  mcsec_member_free (c->member);
  SSL_CTX_free (c->ctx);
  if (c->wake[0] >= 0)
    close (c->wake[0]);
  if (c->wake[1] >= 0)
    close (c->wake[1]);
  pthread_mutex_destroy (&c->lock);
  for (size_t i = 0; i < c->n_ctls; i++) {
    free (c->ctls[i].host);
    free (c->ctls[i].port);
    free (c->ctls[i].name);
  }
  free (c->ctls);
  free (c->controller_name);
  free (c->tried);
  free (c);
}

mcsec_member_state_t
mcsec_client_state (mcsec_client_t *c)
{
  return member_state (c);
}

void
mcsec_client_channel_stats (mcsec_client_t *c,
                            mcsec_member_channel_stats_t *out)
{
  pthread_mutex_lock (&c->lock);
  mcsec_member_channel_stats (c->member, out);
  pthread_mutex_unlock (&c->lock);
}

mcsec_status_t
mcsec_client_msa (mcsec_client_t *c, mcsec_msa_t **out)
{
  mcsec_status_t st;
  pthread_mutex_lock (&c->lock);
  st = mcsec_member_msa (c->member, out);
  pthread_mutex_unlock (&c->lock);
  return st;
}
