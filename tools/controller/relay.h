/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Relaying (docs/cluster.md "Relaying"): a controller that does not lead a
 * group passes its members' MIKE bytes to the leader over one TLS link per
 * leader, and the leader's bytes back.  The link is TLS 1.3 to the
 * leader's listen port with ALPN "mcsec-relay/1"; each end proves the
 * cluster key with a HELLO (HMAC under a key derived from it, over the
 * TLS session's exporter), then members' streams are multiplexed:
 *
 *   type (1) | stream (4) | body length (4) | body
 *
 * HELLO (1, stream 0): version (1: 1) | role (1: 1 the follower, 2 the
 *   leader) | name length (1) | name | HMAC-SHA256 (32)
 * OPEN (2, follower to leader): source length (1) | source | identity
 *   length (1) | identity: a member the follower authenticated
 * DATA (3): the stream's bytes, in order (at most 16384 per frame)
 * CLOSE (4): the stream ended (after its DATA)
 *
 * The codec (ctl_relay_frame_*, hello, open) is pure; a link
 * (CtlRelayLink) adds the socket, TLS and buffers, and hands its events to
 * the daemon one at a time (ctl_relay_link_next), as the core does its
 * actions.
 */
#ifndef MCSEC_CTL_RELAY_H
#define MCSEC_CTL_RELAY_H

#include <glib.h>
#include <openssl/ssl.h>

G_BEGIN_DECLS

#define CTL_RELAY_ALPN "mcsec-relay/1"
#define CTL_RELAY_KEY_LEN 32
#define CTL_RELAY_MAC_LEN 32
#define CTL_RELAY_HEADER_LEN 9
#define CTL_RELAY_MAX_BODY 16384
#define CTL_RELAY_MAX_NAME 255

typedef enum {
  CTL_RELAY_HELLO = 1,
  CTL_RELAY_OPEN,
  CTL_RELAY_DATA,
  CTL_RELAY_CLOSE,
} CtlRelayType;

typedef enum {
  CTL_RELAY_ROLE_FOLLOWER = 1,
  CTL_RELAY_ROLE_LEADER = 2,
} CtlRelayRole;

/* ---- the codec ---- */

typedef struct {
  guint8 type;
  guint32 stream;
  const guint8 *body;
  gsize len;
} CtlRelayFrame;

/* The frame at the start of buf[len]: its size (> 0), 0 when more bytes
 * are needed, -1 when it is malformed (an unknown type, a body over
 * CTL_RELAY_MAX_BODY, a HELLO on a stream other than 0 or a stream 0
 * that is not a HELLO). */
gssize ctl_relay_frame_parse (const guint8 *buf, gsize len, CtlRelayFrame *f);
/* A frame's header into h. */
void ctl_relay_frame_header (guint8 h[CTL_RELAY_HEADER_LEN], guint8 type,
                             guint32 stream, gsize body_len);
/* The links' key: HKDF-SHA256 of the cluster key (info "mcsec relay link
 * v1"), never the cluster key itself.  FALSE when OpenSSL fails. */
gboolean ctl_relay_key (const guint8 cluster_key[32],
                        guint8 key[CTL_RELAY_KEY_LEN]);
/* A HELLO's body (at most 3 + 255 + 32 bytes) into out: its length, 0
 * when name is too long or empty or the MAC failed.  binding: the TLS
 * session's exporter value (32 bytes), both ends compute the same. */
gsize ctl_relay_hello_build (const guint8 key[CTL_RELAY_KEY_LEN],
                             CtlRelayRole role, const char *name,
                             const guint8 binding[32], guint8 *out);
/* TRUE when body is a HELLO of role whose MAC proves key over binding;
 * name: the sender's (printable) name. */
gboolean ctl_relay_hello_check (const guint8 key[CTL_RELAY_KEY_LEN],
                                CtlRelayRole role, const guint8 binding[32],
                                const guint8 *body, gsize len,
                                gchar name[CTL_RELAY_MAX_NAME + 1]);
/* An OPEN's body into out (at most 2 + 2 * 255): its length, 0 when a
 * string is empty, too long or holds what ctl_relay_open_parse refuses. */
gsize ctl_relay_open_build (const char *source, const char *identity,
                            guint8 *out);
/* The stream number after *last for a new stream (from 1; 0 is the
 * HELLO's), past those open (keys of open: GUINT_TO_POINTER of a
 * number): after 2^32 streams a link goes round.  Stored in *last. */
guint32 ctl_relay_stream_next (guint32 *last, GHashTable *open);
/* TRUE when body is an OPEN of two strings as the core takes identities
 * (no space, quote, backslash, semicolon or control character; UTF-8
 * passes). */
gboolean ctl_relay_open_parse (const guint8 *body, gsize len,
                               gchar source[CTL_RELAY_MAX_NAME + 1],
                               gchar identity[CTL_RELAY_MAX_NAME + 1]);

/* ---- a buffer that leaves no copy behind ---- */

/* Members' MIKE frames pass through (updates hold keys): the bytes are
 * data[off..len); everything else in data is wiped, and a buffer that
 * grows or is freed wipes what it leaves (a realloc or a GByteArray
 * would leave copies in freed memory). */
typedef struct {
  guint8 *data;
  gsize off, len, cap;
} CtlRelayBuf;

void ctl_relay_buf_append (CtlRelayBuf *b, const guint8 *p, gsize n);
void ctl_relay_buf_consume (CtlRelayBuf *b, gsize n);
void ctl_relay_buf_clear (CtlRelayBuf *b);
static inline gsize
ctl_relay_buf_len (const CtlRelayBuf *b)
{
  return b->len - b->off;
}
static inline const guint8 *
ctl_relay_buf_data (const CtlRelayBuf *b)
{
  return b->data + b->off;
}

/* ---- a link ---- */

typedef struct _CtlRelayLink CtlRelayLink;

typedef enum {
  CTL_RELAY_EV_UP = 1, /* both ends proved the cluster key */
  CTL_RELAY_EV_OPEN,   /* (the leader's end) stream, source, identity */
  CTL_RELAY_EV_DATA,   /* stream, data, len */
  CTL_RELAY_EV_CLOSE,  /* stream */
  CTL_RELAY_EV_LOST,   /* why: the link is over; free it */
} CtlRelayEventType;

typedef struct {
  CtlRelayEventType type;
  guint32 stream;
  const guint8 *data; /* valid until the next call on the link */
  gsize len;
  const char *source, *identity, *why;
} CtlRelayEvent;

/* A TLS 1.3 client context for links: the CA the leader's certificate
 * must chain to, the ALPN.  The follower shows no certificate: its HELLO
 * proves the cluster key, which no member holds (a controller's
 * certificate is often a server's only, and any member has one of the
 * CA's). */
SSL_CTX *ctl_relay_client_ctx (const char *ca, GError **error);
/* The follower's end: connects to address ("HOST:PORT") without blocking;
 * the link must be up by deadline_ms. */
CtlRelayLink *ctl_relay_link_connect (SSL_CTX *ctx, const char *address,
                                      const guint8 key[CTL_RELAY_KEY_LEN],
                                      const char *name, gint64 deadline_ms,
                                      GError **error);
/* The leader's end: a connection whose handshake chose CTL_RELAY_ALPN
 * (the link takes fd and ssl); its HELLO must come by deadline_ms. */
CtlRelayLink *ctl_relay_link_accept (int fd, SSL *ssl, const char *peer,
                                     const guint8 key[CTL_RELAY_KEY_LEN],
                                     const char *name, gint64 deadline_ms);
int ctl_relay_link_fd (const CtlRelayLink *l);
/* The epoll events the link waits for now. */
guint32 ctl_relay_link_events (const CtlRelayLink *l);
/* The socket is ready (events): connect, handshake, read, and write
 * what is queued unless may_write is FALSE (a leader past its lease). */
void ctl_relay_link_io (CtlRelayLink *l, guint32 events, gboolean may_write,
                        gint64 now_ms);
/* The next event; FALSE when none waits.  After EV_LOST, none comes. */
gboolean ctl_relay_link_next (CtlRelayLink *l, CtlRelayEvent *ev);
/* Queue a frame (DATA longer than CTL_RELAY_MAX_BODY goes in several);
 * before the link is up it waits.  Written by ctl_relay_link_io. */
void ctl_relay_link_send (CtlRelayLink *l, CtlRelayType type, guint32 stream,
                          const guint8 *data, gsize len);
/* Bytes queued, not yet written. */
gsize ctl_relay_link_queued (const CtlRelayLink *l);
gboolean ctl_relay_link_is_up (const CtlRelayLink *l);
/* The other end's name (its HELLO's) once up, else its address. */
const char *ctl_relay_link_peer (const CtlRelayLink *l);
/* Deadlines: a link not up by its deadline, or whose queue stopped moving
 * for stall_ms, is lost. */
void ctl_relay_link_check (CtlRelayLink *l, gint64 now_ms, gint64 stall_ms);
void ctl_relay_link_free (CtlRelayLink *l);

G_END_DECLS

#endif
