/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Relay links between the controllers of a cluster (relay.h,
 * docs/cluster.md "Relaying").
 */
#include "relay.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#define HELLO_VERSION 1
#define EXPORTER_LABEL "EXPORTER-mcsec-relay"
#define MAC_LABEL "mcsec relay hello v1"
#define KEY_INFO "mcsec relay link v1"
#define BEFORE_UP_MAX 1024 /* bytes a link may send before its HELLO */
#define QUEUE_MAX                                                              \
  (64u * 1024 * 1024) /* queued to a link that does not read                   \
                       */

/* ------------------------------------------------------------------------ */
/* The codec                                                                  */

static guint32
load32 (const guint8 *p)
{
  return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

static void
store32 (guint8 *p, guint32 v)
{
  p[0] = (guint8)(v >> 24);
  p[1] = (guint8)(v >> 16);
  p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

gssize
ctl_relay_frame_parse (const guint8 *buf, gsize len, CtlRelayFrame *f)
{
  guint32 blen;

  if (len < CTL_RELAY_HEADER_LEN)
    return 0;
  f->type = buf[0];
  f->stream = load32 (buf + 1);
  blen = load32 (buf + 5);
  if (f->type < CTL_RELAY_HELLO || f->type > CTL_RELAY_CLOSE ||
      blen > CTL_RELAY_MAX_BODY ||
      (f->type == CTL_RELAY_HELLO) != (f->stream == 0))
    return -1;
  if (len - CTL_RELAY_HEADER_LEN < blen)
    return 0;
  f->body = buf + CTL_RELAY_HEADER_LEN;
  f->len = blen;
  return (gssize)(CTL_RELAY_HEADER_LEN + blen);
}

void
ctl_relay_frame_header (guint8 h[CTL_RELAY_HEADER_LEN], guint8 type,
                        guint32 stream, gsize body_len)
{
  h[0] = type;
  store32 (h + 1, stream);
  store32 (h + 5, (guint32)body_len);
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                    */

void
ctl_relay_buf_append (CtlRelayBuf *b, const guint8 *p, gsize n)
{
  gsize have = b->len - b->off;
  if (n == 0)
    return;
  if (b->len + n > b->cap) {
    if (have + n <= b->cap / 2) {
      /* room at the front: move down, wipe what the move left */
      memmove (b->data, b->data + b->off, have);
      OPENSSL_cleanse (b->data + have, b->len - have);
    } else {
      gsize cap = MAX (MAX (b->cap * 2, have + n), 4096);
      guint8 *d = g_malloc0 (cap); /* nothing unwiped past len */
      if (have)
        memcpy (d, b->data + b->off, have);
      if (b->data) {
        OPENSSL_cleanse (b->data + b->off, have);
        g_free (b->data);
      }
      b->data = d;
      b->cap = cap;
    }
    b->off = 0;
    b->len = have;
  }
  memcpy (b->data + b->len, p, n);
  b->len += n;
}

void
ctl_relay_buf_consume (CtlRelayBuf *b, gsize n)
{
  n = MIN (n, b->len - b->off);
  OPENSSL_cleanse (b->data + b->off, n);
  b->off += n;
  if (b->off == b->len)
    b->off = b->len = 0;
}

void
ctl_relay_buf_clear (CtlRelayBuf *b)
{
  if (b->data) {
    OPENSSL_cleanse (b->data + b->off, b->len - b->off);
    g_free (b->data);
  }
  memset (b, 0, sizeof *b);
}

static void
buf_frame (CtlRelayBuf *b, guint8 type, guint32 stream, const guint8 *body,
           gsize len)
{
  guint8 h[CTL_RELAY_HEADER_LEN];
  ctl_relay_frame_header (h, type, stream, len);
  ctl_relay_buf_append (b, h, sizeof h);
  ctl_relay_buf_append (b, body, len);
}

gboolean
ctl_relay_key (const guint8 cluster_key[32], guint8 key[CTL_RELAY_KEY_LEN])
{
  EVP_KDF *kdf = EVP_KDF_fetch (NULL, "HKDF", NULL);
  EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new (kdf) : NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string (OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_KEY,
                                         (void *)cluster_key, 32),
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_INFO, KEY_INFO,
                                         strlen (KEY_INFO)),
      OSSL_PARAM_construct_end (),
  };
  gboolean ok =
      kctx && EVP_KDF_derive (kctx, key, CTL_RELAY_KEY_LEN, params) == 1;
  EVP_KDF_CTX_free (kctx);
  EVP_KDF_free (kdf);
  if (!ok)
    OPENSSL_cleanse (key, CTL_RELAY_KEY_LEN);
  ERR_clear_error ();
  return ok;
}

static gboolean
printable (const guint8 *s, gsize len)
{
  if (len == 0 || len > CTL_RELAY_MAX_NAME)
    return FALSE;
  /* the core's own test of identities (UTF-8 passes): whatever a
   * follower admitted, the leader takes */
  for (gsize i = 0; i < len; i++)
    if (s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\' ||
        s[i] == ';')
      return FALSE;
  return TRUE;
}

/* HMAC-SHA256 over the label, the role, the name and the binding. */
static gboolean
hello_mac (const guint8 key[CTL_RELAY_KEY_LEN], CtlRelayRole role,
           const guint8 *name, gsize name_len, const guint8 binding[32],
           guint8 mac[CTL_RELAY_MAC_LEN])
{
  guint8 in[sizeof MAC_LABEL + 2 + CTL_RELAY_MAX_NAME + 32];
  gsize n = 0, mac_len = 0;
  gboolean ok;

  memcpy (in, MAC_LABEL, sizeof MAC_LABEL); /* with its NUL */
  n = sizeof MAC_LABEL;
  in[n++] = (guint8)role;
  in[n++] = (guint8)name_len;
  memcpy (in + n, name, name_len);
  n += name_len;
  memcpy (in + n, binding, 32);
  n += 32;
  ok = EVP_Q_mac (NULL, "HMAC", NULL, "SHA256", NULL, key, CTL_RELAY_KEY_LEN,
                  in, n, mac, CTL_RELAY_MAC_LEN, &mac_len) != NULL &&
       mac_len == CTL_RELAY_MAC_LEN;
  OPENSSL_cleanse (in, n);
  ERR_clear_error ();
  return ok;
}

gsize
ctl_relay_hello_build (const guint8 key[CTL_RELAY_KEY_LEN], CtlRelayRole role,
                       const char *name, const guint8 binding[32], guint8 *out)
{
  gsize nl = strlen (name);
  if (!printable ((const guint8 *)name, nl))
    return 0;
  out[0] = HELLO_VERSION;
  out[1] = (guint8)role;
  out[2] = (guint8)nl;
  memcpy (out + 3, name, nl);
  if (!hello_mac (key, role, out + 3, nl, binding, out + 3 + nl))
    return 0;
  return 3 + nl + CTL_RELAY_MAC_LEN;
}

gboolean
ctl_relay_hello_check (const guint8 key[CTL_RELAY_KEY_LEN], CtlRelayRole role,
                       const guint8 binding[32], const guint8 *body, gsize len,
                       gchar name[CTL_RELAY_MAX_NAME + 1])
{
  guint8 mac[CTL_RELAY_MAC_LEN];
  gsize nl;
  gboolean ok;

  if (len < 3 || body[0] != HELLO_VERSION || body[1] != role)
    return FALSE;
  nl = body[2];
  if (len != 3 + nl + CTL_RELAY_MAC_LEN || !printable (body + 3, nl))
    return FALSE;
  ok = hello_mac (key, role, body + 3, nl, binding, mac) &&
       CRYPTO_memcmp (mac, body + 3 + nl, CTL_RELAY_MAC_LEN) == 0;
  OPENSSL_cleanse (mac, sizeof mac);
  if (ok) {
    memcpy (name, body + 3, nl);
    name[nl] = '\0';
  }
  return ok;
}

gsize
ctl_relay_open_build (const char *source, const char *identity, guint8 *out)
{
  gsize sl = strlen (source), il = strlen (identity);
  if (!printable ((const guint8 *)source, sl) ||
      !printable ((const guint8 *)identity, il))
    return 0;
  out[0] = (guint8)sl;
  memcpy (out + 1, source, sl);
  out[1 + sl] = (guint8)il;
  memcpy (out + 2 + sl, identity, il);
  return 2 + sl + il;
}

guint32
ctl_relay_stream_next (guint32 *last, GHashTable *open)
{
  do {
    if (++*last == 0)
      *last = 1;
  } while (g_hash_table_contains (open, GUINT_TO_POINTER (*last)));
  return *last;
}

gboolean
ctl_relay_open_parse (const guint8 *body, gsize len,
                      gchar source[CTL_RELAY_MAX_NAME + 1],
                      gchar identity[CTL_RELAY_MAX_NAME + 1])
{
  gsize sl, il;
  if (len < 1)
    return FALSE;
  sl = body[0];
  if (len < 2 + sl)
    return FALSE;
  il = body[1 + sl];
  if (len != 2 + sl + il || !printable (body + 1, sl) ||
      !printable (body + 2 + sl, il))
    return FALSE;
  memcpy (source, body + 1, sl);
  source[sl] = '\0';
  memcpy (identity, body + 2 + sl, il);
  identity[il] = '\0';
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* A link                                                                     */

typedef enum {
  L_CONNECTING, /* TCP (the follower's end) */
  L_HANDSHAKE,  /* TLS (the follower's end; the leader's did it on a worker) */
  L_HELLO,      /* waiting for the other end's HELLO */
  L_UP,
  L_LOST,
} LinkState;

struct _CtlRelayLink {
  LinkState state;
  gboolean follower; /* the end that connected */
  int fd;
  SSL *ssl;
  gchar *address; /* where it connected, or the peer's address */
  gchar *name;    /* ours */
  gchar peer_name[CTL_RELAY_MAX_NAME + 1];
  guint8 key[CTL_RELAY_KEY_LEN];
  CtlRelayBuf in, out, held; /* held: queued before the link is up */
  gsize handed; /* the frame the last event came from, still in `in` */
  gint64 deadline_ms, progress_ms;
  gboolean lost_told;
  gchar *why;
  /* an event's strings outlive the frame they came from */
  gchar source[CTL_RELAY_MAX_NAME + 1], identity[CTL_RELAY_MAX_NAME + 1];
  gboolean up_told;
};

static void
link_lose (CtlRelayLink *l, const char *why)
{
  if (l->state == L_LOST)
    return;
  l->state = L_LOST;
  g_free (l->why);
  l->why = g_strdup (why);
}

static CtlRelayLink *
link_new (const char *address, const guint8 key[CTL_RELAY_KEY_LEN],
          const char *name, gint64 deadline_ms)
{
  CtlRelayLink *l = g_new0 (CtlRelayLink, 1);
  l->fd = -1;
  l->address = g_strdup (address);
  l->name = g_strdup (name);
  memcpy (l->key, key, CTL_RELAY_KEY_LEN);
  l->deadline_ms = deadline_ms;
  g_strlcpy (l->peer_name, address, sizeof l->peer_name);
  return l;
}

SSL_CTX *
ctl_relay_client_ctx (const char *ca, GError **error)
{
  static const guint8 alpn[] = "\x0d" CTL_RELAY_ALPN;
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
  if (ctx == NULL || SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_load_verify_locations (ctx, ca, NULL) != 1 ||
      SSL_CTX_set_alpn_protos (ctx, alpn, sizeof alpn - 1) != 0) {
    unsigned long e = ERR_peek_last_error ();
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "relay links' TLS context: %s",
                 e ? ERR_reason_error_string (e) : "out of memory");
    ERR_clear_error ();
    SSL_CTX_free (ctx);
    return NULL;
  }
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, NULL);
  /* the leader's updates hold keys: OpenSSL wipes its read buffers */
  SSL_CTX_set_options (ctx, SSL_OP_CLEANSE_PLAINTEXT);
  SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

CtlRelayLink *
ctl_relay_link_connect (SSL_CTX *ctx, const char *address,
                        const guint8 key[CTL_RELAY_KEY_LEN], const char *name,
                        gint64 deadline_ms, GError **error)
{
  struct addrinfo hints = {0}, *res = NULL;
  const char *colon = strrchr (address, ':');
  gchar *host;
  int rc, fd = -1, one = 1;
  CtlRelayLink *l;

  if (colon == NULL || colon == address) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "'%s' is not HOST:PORT", address);
    return NULL;
  }
  host = g_strndup (address, (gsize)(colon - address));
  if (host[0] == '[' && strlen (host) > 2 && host[strlen (host) - 1] == ']') {
    gchar *h = g_strndup (host + 1, strlen (host) - 2);
    g_free (host);
    host = h;
  }
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  rc = getaddrinfo (host, colon + 1, &hints, &res);
  g_free (host);
  if (rc != 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: %s", address,
                 gai_strerror (rc));
    return NULL;
  }
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || (connect (fd, res->ai_addr, res->ai_addrlen) != 0 &&
                 errno != EINPROGRESS)) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s",
                 address, g_strerror (errno));
    if (fd >= 0)
      close (fd);
    freeaddrinfo (res);
    return NULL;
  }
  freeaddrinfo (res);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  l = link_new (address, key, name, deadline_ms);
  l->follower = TRUE;
  l->fd = fd;
  l->ssl = SSL_new (ctx);
  if (l->ssl == NULL) {
    ERR_clear_error ();
    ctl_relay_link_free (l);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "out of memory");
    return NULL;
  }
  SSL_set_fd (l->ssl, fd);
  SSL_set_connect_state (l->ssl);
  l->state = L_CONNECTING;
  return l;
}

CtlRelayLink *
ctl_relay_link_accept (int fd, SSL *ssl, const char *peer,
                       const guint8 key[CTL_RELAY_KEY_LEN], const char *name,
                       gint64 deadline_ms)
{
  CtlRelayLink *l = link_new (peer, key, name, deadline_ms);
  l->fd = fd;
  l->ssl = ssl;
  l->state = L_HELLO;
  l->progress_ms = g_get_monotonic_time () / 1000;
  return l;
}

int
ctl_relay_link_fd (const CtlRelayLink *l)
{
  return l->fd;
}

gsize
ctl_relay_link_queued (const CtlRelayLink *l)
{
  return ctl_relay_buf_len (&l->out) + ctl_relay_buf_len (&l->held);
}

gboolean
ctl_relay_link_is_up (const CtlRelayLink *l)
{
  return l->state == L_UP;
}

const char *
ctl_relay_link_peer (const CtlRelayLink *l)
{
  return l->peer_name;
}

guint32
ctl_relay_link_events (const CtlRelayLink *l)
{
  if (l->state == L_CONNECTING)
    return EPOLLOUT;
  if (l->state == L_HANDSHAKE)
    return SSL_want_write (l->ssl) ? EPOLLOUT : EPOLLIN;
  if (l->state == L_LOST)
    return 0;
  return EPOLLIN | (ctl_relay_buf_len (&l->out) ? EPOLLOUT : 0);
}

/* Our HELLO, bound to this TLS session. */
static gboolean
send_hello (CtlRelayLink *l)
{
  guint8 binding[32], body[3 + CTL_RELAY_MAX_NAME + CTL_RELAY_MAC_LEN];
  gsize n;

  if (SSL_export_keying_material (l->ssl, binding, sizeof binding,
                                  EXPORTER_LABEL, strlen (EXPORTER_LABEL), NULL,
                                  0, 0) != 1) {
    ERR_clear_error ();
    return FALSE;
  }
  n = ctl_relay_hello_build (
      l->key, l->follower ? CTL_RELAY_ROLE_FOLLOWER : CTL_RELAY_ROLE_LEADER,
      l->name, binding, body);
  OPENSSL_cleanse (binding, sizeof binding);
  if (n == 0)
    return FALSE;
  if (ctl_relay_buf_len (&l->out) == 0)
    l->progress_ms = g_get_monotonic_time () / 1000; /* a stall starts now */
  buf_frame (&l->out, CTL_RELAY_HELLO, 0, body, n);
  return TRUE;
}

static void
link_write (CtlRelayLink *l, gint64 now_ms)
{
  while (ctl_relay_buf_len (&l->out)) {
    int n = SSL_write (l->ssl, ctl_relay_buf_data (&l->out),
                       (int)MIN (ctl_relay_buf_len (&l->out), 65536));
    if (n <= 0) {
      int e = SSL_get_error (l->ssl, n);
      ERR_clear_error ();
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
        link_lose (l, "write failed");
      break;
    }
    ctl_relay_buf_consume (&l->out, (gsize)n);
    l->progress_ms = now_ms;
  }
}

static void
link_read (CtlRelayLink *l)
{
  guint8 buf[16384];
  for (;;) {
    int n;
    if (l->state != L_UP && ctl_relay_buf_len (&l->in) > BEFORE_UP_MAX) {
      link_lose (l, "too much before its HELLO");
      break;
    }
    /* before the HELLO proved the key, at most BEFORE_UP_MAX + 1 bytes */
    n = SSL_read (l->ssl, buf,
                  l->state == L_UP
                      ? (int)sizeof buf
                      : (int)MIN (sizeof buf, BEFORE_UP_MAX + 1 -
                                                  ctl_relay_buf_len (&l->in)));
    if (n <= 0) {
      int e = SSL_get_error (l->ssl, n);
      ERR_clear_error ();
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        link_lose (l,
                   e == SSL_ERROR_ZERO_RETURN ? "closed" : "connection lost");
      break;
    }
    ctl_relay_buf_append (&l->in, buf, (gsize)n);
  }
  OPENSSL_cleanse (buf, sizeof buf);
}

void
ctl_relay_link_io (CtlRelayLink *l, guint32 events, gboolean may_write,
                   gint64 now_ms)
{
  if (l->state == L_LOST)
    return;
  if (l->state == L_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
      return;
    if (getsockopt (l->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
      gchar *why = g_strdup_printf ("connect: %s", g_strerror (err));
      link_lose (l, why);
      g_free (why);
      return;
    }
    l->state = L_HANDSHAKE;
  }
  if (l->state == L_HANDSHAKE) {
    int r = SSL_do_handshake (l->ssl);
    const guint8 *alpn = NULL;
    unsigned alpn_len = 0;
    if (r != 1) {
      int e = SSL_get_error (l->ssl, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        long vr = SSL_get_verify_result (l->ssl);
        unsigned long ee = ERR_peek_last_error ();
        gchar *why =
            vr != X509_V_OK
                ? g_strdup_printf ("certificate rejected: %s",
                                   X509_verify_cert_error_string (vr))
                : g_strdup_printf ("TLS: %s", ee ? ERR_reason_error_string (ee)
                                                 : "connection closed");
        link_lose (l, why);
        g_free (why);
      }
      ERR_clear_error ();
      return;
    }
    SSL_get0_alpn_selected (l->ssl, &alpn, &alpn_len);
    if (alpn_len != strlen (CTL_RELAY_ALPN) ||
        memcmp (alpn, CTL_RELAY_ALPN, alpn_len) != 0) {
      link_lose (l, "the other end does not relay (no " CTL_RELAY_ALPN ")");
      return;
    }
    if (!send_hello (l)) {
      link_lose (l, "cannot make a HELLO");
      return;
    }
    l->state = L_HELLO;
    l->progress_ms = now_ms;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    link_read (l);
  if (l->state != L_LOST && may_write && ctl_relay_buf_len (&l->out))
    link_write (l, now_ms);
}

/* A HELLO from the other end: the link is up, or lost. */
static void
take_hello (CtlRelayLink *l, const CtlRelayFrame *f)
{
  guint8 binding[32];
  gboolean ok;

  if (l->state != L_HELLO) {
    link_lose (l, "HELLO twice");
    return;
  }
  ok = SSL_export_keying_material (l->ssl, binding, sizeof binding,
                                   EXPORTER_LABEL, strlen (EXPORTER_LABEL),
                                   NULL, 0, 0) == 1 &&
       ctl_relay_hello_check (l->key,
                              l->follower ? CTL_RELAY_ROLE_LEADER
                                          : CTL_RELAY_ROLE_FOLLOWER,
                              binding, f->body, f->len, l->peer_name);
  ERR_clear_error ();
  OPENSSL_cleanse (binding, sizeof binding);
  if (!ok) {
    g_strlcpy (l->peer_name, l->address, sizeof l->peer_name);
    link_lose (l, "its HELLO does not prove the cluster key");
    return;
  }
  if (!l->follower && !send_hello (l)) {
    link_lose (l, "cannot make a HELLO");
    return;
  }
  l->state = L_UP;
  /* what waited for the link */
  ctl_relay_buf_append (&l->out, ctl_relay_buf_data (&l->held),
                        ctl_relay_buf_len (&l->held));
  ctl_relay_buf_clear (&l->held);
}

gboolean
ctl_relay_link_next (CtlRelayLink *l, CtlRelayEvent *ev)
{
  memset (ev, 0, sizeof *ev);
  for (;;) {
    CtlRelayFrame f;
    gssize n;

    if (l->state == L_LOST) {
      if (l->lost_told)
        return FALSE;
      l->lost_told = TRUE;
      ev->type = CTL_RELAY_EV_LOST;
      ev->why = l->why;
      return TRUE;
    }
    if (l->state == L_UP && !l->up_told) {
      l->up_told = TRUE;
      ev->type = CTL_RELAY_EV_UP;
      return TRUE;
    }
    /* the frame handed last time goes (wiped) */
    ctl_relay_buf_consume (&l->in, l->handed);
    l->handed = 0;
    if (ctl_relay_buf_len (&l->in) == 0 || l->state < L_HELLO)
      return FALSE;
    n = ctl_relay_frame_parse (ctl_relay_buf_data (&l->in),
                               ctl_relay_buf_len (&l->in), &f);
    if (n == 0)
      return FALSE;
    if (n < 0) {
      link_lose (l, "malformed frame");
      continue;
    }
    l->handed = (gsize)n;
    if (f.type == CTL_RELAY_HELLO) {
      take_hello (l, &f);
      continue;
    }
    if (l->state != L_UP) {
      link_lose (l, "a frame before its HELLO");
      continue;
    }
    ev->stream = f.stream;
    switch (f.type) {
    case CTL_RELAY_OPEN:
      /* only a follower opens streams, and only to a leader */
      if (l->follower ||
          !ctl_relay_open_parse (f.body, f.len, l->source, l->identity)) {
        link_lose (l, "bad OPEN");
        continue;
      }
      ev->type = CTL_RELAY_EV_OPEN;
      ev->source = l->source;
      ev->identity = l->identity;
      return TRUE;
    case CTL_RELAY_DATA:
      ev->type = CTL_RELAY_EV_DATA;
      ev->data = f.body;
      ev->len = f.len;
      return TRUE;
    default:
      ev->type = CTL_RELAY_EV_CLOSE;
      return TRUE;
    }
  }
}

void
ctl_relay_link_send (CtlRelayLink *l, CtlRelayType type, guint32 stream,
                     const guint8 *data, gsize len)
{
  CtlRelayBuf *to = l->state == L_UP ? &l->out : &l->held;
  if (l->state == L_LOST)
    return;
  if (ctl_relay_buf_len (to) == 0)
    l->progress_ms = g_get_monotonic_time () / 1000; /* a stall starts now */
  do {
    gsize n = MIN (len, CTL_RELAY_MAX_BODY);
    buf_frame (to, type, stream, data, n);
    data += n;
    len -= n;
  } while (len);
  if (ctl_relay_link_queued (l) > QUEUE_MAX)
    link_lose (l, "the other end does not read");
}

void
ctl_relay_link_check (CtlRelayLink *l, gint64 now_ms, gint64 stall_ms)
{
  if (l->state == L_LOST)
    return;
  if (l->state != L_UP && now_ms >= l->deadline_ms)
    link_lose (l, l->state == L_HELLO ? "no HELLO in time"
                                      : "not connected in time");
  else if (ctl_relay_buf_len (&l->out) && now_ms - l->progress_ms > stall_ms)
    link_lose (l, "its queue does not move");
}

void
ctl_relay_link_free (CtlRelayLink *l)
{
  if (l == NULL)
    return;
  if (l->ssl) {
    if (l->state == L_UP)
      SSL_shutdown (l->ssl);
    SSL_free (l->ssl);
  }
  if (l->fd >= 0)
    close (l->fd);
  OPENSSL_cleanse (l->key, sizeof l->key);
  /* members' MIKE frames went through: updates hold keys */
  ctl_relay_buf_clear (&l->in);
  ctl_relay_buf_clear (&l->out);
  ctl_relay_buf_clear (&l->held);
  g_free (l->address);
  g_free (l->name);
  g_free (l->why);
  g_free (l);
}
