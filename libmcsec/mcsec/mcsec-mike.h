/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-mike.h: MIKE, the key management protocol (docs/mike-protocol.md).
 *
 * Three layers, each usable alone:
 *  - the codec: frames of attributes, a bounds-checked parser and a builder;
 *  - the member: the protocol logic as a sans-I/O state machine (bytes and
 *    time in, bytes, events and the MSA out);
 *  - the client: the member's I/O (TLS 1.3 with X.509 on both sides, a
 *    thread, reconnection with backoff).
 * The controller (tools/mcsec-controller.c) uses the codec.
 */
#ifndef MCSEC_MIKE_H
#define MCSEC_MIKE_H

#include <mcsec/mcsec.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- wire format (docs/mike-protocol.md) ---- */
#define MCSEC_MIKE_VERSION 1
#define MCSEC_MIKE_LENGTH_LEN 4
#define MCSEC_MIKE_HEADER_LEN 8 /* length, version, type, reserved */
#define MCSEC_MIKE_ATTR_HEADER_LEN 4
#define MCSEC_MIKE_MAX_FRAME 65536 /* the length field's maximum */
#define MCSEC_MIKE_MAX_STRING 255
#define MCSEC_MIKE_MAX_SPKI 512
#define MCSEC_MIKE_SIGNATURE_LEN 64 /* Ed25519 */
#define MCSEC_MIKE_SA_FIXED_LEN 14
#define MCSEC_MIKE_MAX_KEY_LEN 64
#define MCSEC_MIKE_MAX_SAS 4         /* SA attributes in one update */
#define MCSEC_MIKE_MAX_SENDERS 256   /* SENDER attributes in one update */
#define MCSEC_MIKE_MAX_SENDER_IDS 16 /* Sender-IDs of one member */
#define MCSEC_MIKE_DERIVED_SA_LEN 14 /* SA without key: SPI .. lifetime */
#define MCSEC_MIKE_PATH_KEY_LEN 20   /* node (4), key (16) */
#define MCSEC_MIKE_MAX_PATH 48       /* PATH_KEYs in one update */
#define MCSEC_MIKE_PING_MS 2000      /* a member pings this often */
#define MCSEC_MIKE_DEAD_MS 7000      /* silence after which a peer is gone */
#define MCSEC_MIKE_JOIN_TIMEOUT_MS 10000
#define MCSEC_MIKE_BACKOFF_MIN_MS 200
#define MCSEC_MIKE_BACKOFF_MAX_MS 5000
/* a rekey channel silent this long (no heartbeat): ask over unicast */
#define MCSEC_MIKE_CHANNEL_SILENT_MS 1000
/* after a rejoin, SAs the first update omits are kept this much longer:
 * the other members may still be reconnecting to a restarted controller */
#define MCSEC_MIKE_REJOIN_GRACE_MS 10000

typedef enum {
  MCSEC_MIKE_JOIN = 1,
  MCSEC_MIKE_WELCOME = 2,
  MCSEC_MIKE_REFUSE = 3,
  MCSEC_MIKE_UPDATE = 4,
  MCSEC_MIKE_ACK = 5,
  MCSEC_MIKE_EVICTED = 6,
  MCSEC_MIKE_LEAVE = 7,
  MCSEC_MIKE_PING = 8,
  MCSEC_MIKE_PONG = 9,
  MCSEC_MIKE_REKEY = 10,     /* key tree rekey, one part (mcsec-rekey.h) */
  MCSEC_MIKE_HEARTBEAT = 11, /* the newest rekey's SEQ and part count */
  MCSEC_MIKE_REPAIR = 12,    /* member: resend from SEQ on */
} mcsec_mike_type_t;

typedef enum {
  MCSEC_MIKE_A_GROUP = 1,
  MCSEC_MIKE_A_ROLE = 2,
  MCSEC_MIKE_A_SIGNING_KEY = 3,
  MCSEC_MIKE_A_IDENTITY = 4,
  MCSEC_MIKE_A_CONTROLLER_KEY = 5,
  MCSEC_MIKE_A_SENDER_ID = 6,
  MCSEC_MIKE_A_SENDER_ID_BITS = 7,
  MCSEC_MIKE_A_ADDRESS = 8,
  MCSEC_MIKE_A_PORT = 9,
  MCSEC_MIKE_A_SAM = 10,
  MCSEC_MIKE_A_REASON = 11,
  MCSEC_MIKE_A_TEXT = 12,
  MCSEC_MIKE_A_SEQ = 13,
  MCSEC_MIKE_A_DEACTIVATION = 14,
  MCSEC_MIKE_A_SA = 15,
  MCSEC_MIKE_A_SENDER = 16,
  MCSEC_MIKE_A_SIGNATURE = 17,
  MCSEC_MIKE_A_SENDER_COUNT = 18,
  MCSEC_MIKE_A_WRAPPED_KEY = 19, /* node (4), wrapper (4), wrap (24) */
  MCSEC_MIKE_A_PART = 20,        /* index (2), count (2) */
  /* key tree groups (docs/mike-protocol.md, "Key tree", "Rekey channel") */
  MCSEC_MIKE_A_DERIVED_SA = 21, /* an SA whose key comes from the tree */
  MCSEC_MIKE_A_PATH_KEY = 22,   /* node (4), key (16): one run, leaf first */
  MCSEC_MIKE_A_NEXT_REKEY = 23, /* 8 bytes: the first rekey SEQ to follow */
  MCSEC_MIKE_A_CHANNEL_ADDRESS = 24, /* string: the rekey channel's group */
  MCSEC_MIKE_A_CHANNEL_PORT = 25,    /* 2 bytes: its UDP port */
  /* a feedback member (role feedback): laid out as SENDER, but receivers
   * accept only feedback (RTCP) from its Sender-IDs.  Numbered from 64 on:
   * parsers check types below 62 for repetition, known or not, so a
   * repeated type 26 was malformed to the members before it; from 62 on
   * they skip it, repeated or not (docs/mike-protocol.md, "Attributes") */
  MCSEC_MIKE_A_FEEDBACK_SENDER = 64,
  /* WELCOME, 1 byte, 1: the group's SAs take one SPI per sender, SPI |
   * Sender-ID out of an aligned block of 2^SENDER_ID_BITS (wire-format.md
   * 10.3), so that a kernel keeps one replay window per sender.  Skipped
   * by older members (type 64 and up) */
  MCSEC_MIKE_A_SPI_PER_SENDER = 65,
} mcsec_mike_attr_t;

enum {
  MCSEC_MIKE_ROLE_RECEIVER = 1,
  MCSEC_MIKE_ROLE_SENDER = 2,
  MCSEC_MIKE_ROLE_BOTH = 3,
  /* receives, and sends feedback (RTCP) only: Sender-IDs and a signing key
   * as a sender's, listed to the others as a FEEDBACK_SENDER, whose
   * datagrams receivers accept only when they are RTCP */
  MCSEC_MIKE_ROLE_FEEDBACK = 4,
};

/* 1 when the role protects datagrams of its own (Sender-IDs, a signing
 * key): sender, both, feedback. */
static inline int
mcsec_mike_role_has_sender_ids (unsigned role)
{
  return (role & MCSEC_MIKE_ROLE_SENDER) != 0 ||
         role == MCSEC_MIKE_ROLE_FEEDBACK;
}

typedef enum {
  MCSEC_MIKE_REASON_UNKNOWN_GROUP = 1,
  MCSEC_MIKE_REASON_NOT_AUTHORISED = 2,
  MCSEC_MIKE_REASON_ROLE_NOT_ALLOWED = 3,
  MCSEC_MIKE_REASON_BAD_REQUEST = 4,
  MCSEC_MIKE_REASON_SENDER_IDS_EXHAUSTED = 5,
  MCSEC_MIKE_REASON_EVICTED = 6,
  MCSEC_MIKE_REASON_DUPLICATE = 7,
  MCSEC_MIKE_REASON_SHUTTING_DOWN = 8,
  /* not final: the member tries again, elsewhere (docs/cluster.md) */
  MCSEC_MIKE_REASON_NOT_LEADER = 9,   /* TEXT: "leader=HOST:PORT" or
                                         "leader=unknown" */
  MCSEC_MIKE_REASON_UNAVAILABLE = 10, /* the controller cannot reach the
                                         cluster's state store */
} mcsec_mike_reason_t;

/* "not-authorised", ... or "unknown". */
MCSEC_API const char *mcsec_mike_reason_name (unsigned reason);
/* "join", "update", ... or "unknown". */
MCSEC_API const char *mcsec_mike_type_name (unsigned type);

/* ---- codec ---- */

/* One SA attribute (a view into the frame when parsed). */
typedef struct {
  uint32_t spi;
  mcsec_suite_t suite;
  uint32_t activate_in_ms;
  uint32_t lifetime_s;
  const uint8_t *key;
  size_t key_len;
} mcsec_mike_sa_t;

typedef struct {
  uint32_t sender_id;
  const uint8_t *spki;
  size_t spki_len;
  int feedback; /* a FEEDBACK_SENDER: may send feedback (RTCP) only */
} mcsec_mike_sender_t;

/* A parsed frame.  Pointers point into the frame; absent attributes are
 * NULL / 0 with their has_ flag clear. */
typedef struct {
  uint8_t type;
  const uint8_t *group, *identity, *address, *text;
  size_t group_len, identity_len, address_len, text_len;
  const uint8_t *signing_key, *controller_key;
  size_t signing_key_len, controller_key_len;
  int has_role, has_sender_id, has_sender_id_bits, has_port, has_sam,
      has_reason, has_seq, has_deactivation, spi_per_sender;
  uint8_t role, sender_id_bits, sam;
  uint16_t port, reason;
  uint32_t sender_id, deactivation_ms; /* sender_id: the first one */
  uint8_t sender_count;
  size_t n_sender_ids;
  uint32_t sender_ids[MCSEC_MIKE_MAX_SENDER_IDS];
  uint64_t seq;
  /* key tree groups: DERIVED_SA (key NULL), PATH_KEY run (read with
   * mcsec_mike_path_key), NEXT_REKEY, CHANNEL_ADDRESS/PORT */
  int has_derived_sa, has_next_rekey, has_channel_port;
  mcsec_mike_sa_t derived_sa;
  const uint8_t *path;
  size_t n_path;
  uint64_t next_rekey;
  const uint8_t *channel_address;
  size_t channel_address_len;
  uint16_t channel_port;
  size_t n_sas, n_senders;
  mcsec_mike_sa_t sas[MCSEC_MIKE_MAX_SAS];
  mcsec_mike_sender_t senders[MCSEC_MIKE_MAX_SENDERS];
  /* REKEY: n_wrapped WRAPPED_KEY attributes, one after the other from
   * `wrapped` (read them with mcsec_mike_wrapped_key) */
  const uint8_t *wrapped;
  size_t n_wrapped;
  int has_part;
  uint16_t part_index, part_count;
  /* the signed part (version .. before SIGNATURE) and the signature */
  const uint8_t *signed_data, *signature;
  size_t signed_len;
} mcsec_mike_msg_t;

/* Parse one whole frame (length prefix included, len bytes).  Checks the
 * framing, every attribute length and the required attributes of the type;
 * not the signature (mcsec_mike_verify). */
MCSEC_API mcsec_status_t mcsec_mike_parse (
    const uint8_t *frame, size_t len, mcsec_mike_msg_t *msg) MCSEC_WARN_UNUSED;

#define MCSEC_MIKE_WRAPPED_KEY_LEN 32 /* node, wrapper, RFC 3394 wrap */

/* The i-th WRAPPED_KEY of a parsed REKEY: node, wrapper and the 24-byte
 * wrap (see mcsec-lkh.h: an mcsec_lkh_entry_t). */
MCSEC_API void mcsec_mike_wrapped_key (const mcsec_mike_msg_t *msg, size_t i,
                                       uint32_t *node, uint32_t *wrapper,
                                       const uint8_t **wrap);

/* The i-th PATH_KEY of a parsed UPDATE (leaf first): node and 16-byte key. */
MCSEC_API void mcsec_mike_path_key (const mcsec_mike_msg_t *msg, size_t i,
                                    uint32_t *node, const uint8_t **key);

/* Check an UPDATE's signature with the controller's public key. */
MCSEC_API mcsec_status_t mcsec_mike_verify (
    const mcsec_mike_msg_t *msg, EVP_PKEY *controller_key) MCSEC_WARN_UNUSED;

/* Builds a frame in a caller's buffer; errors stick until finish. */
typedef struct {
  uint8_t *buf;
  size_t cap, len;
  int overflow;
} mcsec_mike_builder_t;

MCSEC_API void mcsec_mike_begin (mcsec_mike_builder_t *b, uint8_t *buf,
                                 size_t cap, mcsec_mike_type_t type);
MCSEC_API void mcsec_mike_put (mcsec_mike_builder_t *b, mcsec_mike_attr_t attr,
                               const void *value, size_t len);
MCSEC_API void mcsec_mike_put_u8 (mcsec_mike_builder_t *b,
                                  mcsec_mike_attr_t attr, uint8_t v);
MCSEC_API void mcsec_mike_put_u16 (mcsec_mike_builder_t *b,
                                   mcsec_mike_attr_t attr, uint16_t v);
MCSEC_API void mcsec_mike_put_u32 (mcsec_mike_builder_t *b,
                                   mcsec_mike_attr_t attr, uint32_t v);
MCSEC_API void mcsec_mike_put_u64 (mcsec_mike_builder_t *b,
                                   mcsec_mike_attr_t attr, uint64_t v);
MCSEC_API void mcsec_mike_put_string (mcsec_mike_builder_t *b,
                                      mcsec_mike_attr_t attr, const char *s);
MCSEC_API void mcsec_mike_put_sa (mcsec_mike_builder_t *b,
                                  const mcsec_mike_sa_t *sa);
/* PATH_KEY: one node of a member's path and its 16-byte key (a run of them,
 * leaf first, makes the path). */
MCSEC_API void mcsec_mike_put_path_key (mcsec_mike_builder_t *b, uint32_t node,
                                        const uint8_t *key);
/* DERIVED_SA: sa's fields but the key. */
MCSEC_API void mcsec_mike_put_derived_sa (mcsec_mike_builder_t *b,
                                          const mcsec_mike_sa_t *sa);
/* FEEDBACK_SENDER: the same layout as SENDER. */
MCSEC_API void mcsec_mike_put_feedback_sender (mcsec_mike_builder_t *b,
                                               uint32_t sender_id,
                                               const uint8_t *spki,
                                               size_t spki_len);
MCSEC_API void mcsec_mike_put_sender (mcsec_mike_builder_t *b,
                                      uint32_t sender_id, const uint8_t *spki,
                                      size_t spki_len);
/* Append SIGNATURE (Ed25519 with key) over everything so far. */
MCSEC_API void mcsec_mike_sign (mcsec_mike_builder_t *b, EVP_PKEY *key);
/* Write the length; *len is the frame's size.  MCSEC_ERR_BUFFER_TOO_SMALL
 * if anything did not fit, MCSEC_ERR_CRYPTO if signing failed. */
MCSEC_API mcsec_status_t mcsec_mike_finish (mcsec_mike_builder_t *b,
                                            size_t *len) MCSEC_WARN_UNUSED;

/* Reassembles frames from a byte stream (TLS records cut anywhere). */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
  size_t handed; /* the frame last returned, removed on the next call */
} mcsec_mike_reader_t;

/* Append bytes; MCSEC_ERR_MALFORMED if a frame length is impossible. */
MCSEC_API mcsec_status_t mcsec_mike_reader_feed (mcsec_mike_reader_t *r,
                                                 const uint8_t *data,
                                                 size_t len) MCSEC_WARN_UNUSED;
/* The next complete frame (length prefix included), or 0; valid until the
 * next call on r.  Call until it returns 0. */
MCSEC_API size_t mcsec_mike_reader_next (mcsec_mike_reader_t *r,
                                         const uint8_t **frame);
/* Wipes and frees the buffer (frames may hold keys). */
MCSEC_API void mcsec_mike_reader_clear (mcsec_mike_reader_t *r);

/* DER SubjectPublicKeyInfo of key's public part into out (at most
 * MCSEC_MIKE_MAX_SPKI bytes). */
MCSEC_API mcsec_status_t
mcsec_mike_public_key_der (EVP_PKEY *key, uint8_t *out, size_t out_size,
                           size_t *out_len) MCSEC_WARN_UNUSED;

/* ---- member: the protocol logic, no I/O ---- */

typedef struct mcsec_member mcsec_member_t;

typedef struct {
  const char *group;
  unsigned role;         /* MCSEC_MIKE_ROLE_* */
  EVP_PKEY *sam_key;     /* senders: the source authentication key (its
                            public part is sent); a reference is taken */
  unsigned sender_count; /* senders: Sender-IDs wanted, one per stream the
                            member sends (0: 1; at most 16) */
} mcsec_member_config_t;

typedef enum {
  MCSEC_MEMBER_IDLE = 0,     /* not connected, never joined */
  MCSEC_MEMBER_JOINING,      /* connected, JOIN sent */
  MCSEC_MEMBER_JOINED,       /* WELCOME and an update received */
  MCSEC_MEMBER_DISCONNECTED, /* was a member; keys kept, reconnecting */
  MCSEC_MEMBER_REFUSED,      /* final */
  MCSEC_MEMBER_EVICTED,      /* final */
} mcsec_member_state_t;

typedef enum {
  MCSEC_MEMBER_EV_JOINED = 1,      /* first update applied (after WELCOME) */
  MCSEC_MEMBER_EV_REFUSED,         /* reason, text */
  MCSEC_MEMBER_EV_UPDATED,         /* a new update applied (seq) */
  MCSEC_MEMBER_EV_SA_CHANGED,      /* an SA became the sending one or retired */
  MCSEC_MEMBER_EV_EVICTED,         /* reason, text */
  MCSEC_MEMBER_EV_REJECTED,        /* an update was rejected (status) */
  MCSEC_MEMBER_EV_CONNECTED,       /* (client) the controller took us in */
  MCSEC_MEMBER_EV_CONNECTION_LOST, /* (client) text: why */
  MCSEC_MEMBER_EV_CHANNEL,         /* (client) the rekey channel: text says
                                      where it listens, or why it cannot
                                      (status set); repairs stand in then */
  MCSEC_MEMBER_EV_REDIRECTED,      /* a REFUSE that is not final (reason
                                      not-leader or unavailable; reason,
                                      text): keys kept, back to IDLE or
                                      DISCONNECTED; the client tries another
                                      controller */
} mcsec_member_event_type_t;

typedef struct {
  mcsec_member_event_type_t type;
  unsigned reason;
  char text[MCSEC_MIKE_MAX_STRING + 1];
  uint64_t seq;
  mcsec_status_t status;
} mcsec_member_event_t;

MCSEC_API const char *mcsec_member_event_name (mcsec_member_event_type_t t);
MCSEC_API const char *mcsec_member_state_name (mcsec_member_state_t s);

MCSEC_API mcsec_status_t mcsec_member_new (const mcsec_member_config_t *config,
                                           mcsec_member_t **out)
    MCSEC_WARN_UNUSED;
/* Wipes every key; NULL is fine. */
MCSEC_API void mcsec_member_free (mcsec_member_t *m);
MCSEC_API mcsec_member_state_t mcsec_member_state (const mcsec_member_t *m);

/* The transport is up (TLS done): queue JOIN. */
MCSEC_API void mcsec_member_connected (mcsec_member_t *m, uint64_t now_ms);
/* The transport is gone: keep the keys, drop the partial input. */
MCSEC_API void mcsec_member_disconnected (mcsec_member_t *m, uint64_t now_ms);
/* Bytes read from the transport.  MCSEC_ERR_MALFORMED (or another error)
 * means the connection must be closed; a rejected update is an event, not
 * an error. */
MCSEC_API mcsec_status_t
mcsec_member_receive (mcsec_member_t *m, const uint8_t *data, size_t len,
                      uint64_t now_ms) MCSEC_WARN_UNUSED;
/* Bytes to write; mcsec_member_written() once n of them are sent. */
MCSEC_API size_t mcsec_member_output (mcsec_member_t *m, const uint8_t **data);
MCSEC_API void mcsec_member_written (mcsec_member_t *m, size_t n);
/* Run timers (activation, retirement, pings).  Returns the time of the next
 * deadline; *dead is set when the controller has been silent too long. */
MCSEC_API uint64_t mcsec_member_tick (mcsec_member_t *m, uint64_t now_ms,
                                      int *dead);
/* Pop an event; 0 when there is none. */
MCSEC_API int mcsec_member_next_event (mcsec_member_t *m,
                                       mcsec_member_event_t *ev);
/* Queue LEAVE (the caller then closes the transport). */
MCSEC_API void mcsec_member_leave (mcsec_member_t *m);
MCSEC_API uint64_t mcsec_member_rejected_updates (const mcsec_member_t *m);

/* Key tree groups (docs/mike-protocol.md, "Rekey channel"): the multicast
 * group and port the member should receive rekeys on, 1 if there is one. */
MCSEC_API int mcsec_member_channel (const mcsec_member_t *m, char *address,
                                    size_t size, uint16_t *port);
/* A datagram from the rekey channel.  Bad ones are dropped and counted
 * (the status says why); never fatal, whatever the connection's state. */
MCSEC_API mcsec_status_t mcsec_member_datagram (mcsec_member_t *m,
                                                const uint8_t *data, size_t len,
                                                uint64_t now_ms);
typedef struct {
  uint64_t rekeys;  /* applied */
  uint64_t repairs; /* REPAIRs sent: gaps, and silences of the channel */
  uint64_t resyncs; /* new paths asked for (too far behind, or lost) */
  uint64_t datagrams, heartbeats, duplicates, bad_signature, malformed, stale,
      too_far;
} mcsec_member_channel_stats_t;
MCSEC_API void mcsec_member_channel_stats (const mcsec_member_t *m,
                                           mcsec_member_channel_stats_t *out);
MCSEC_API uint64_t mcsec_member_last_seq (const mcsec_member_t *m);

/* The member's MSA, a copy the caller frees (keys wiped). */
typedef struct {
  uint32_t spi;
  mcsec_suite_t suite;
  uint8_t key[MCSEC_MIKE_MAX_KEY_LEN];
  size_t key_len;
  int active;  /* senders may use it (activation time passed) */
  int sending; /* the one this member sends with: newest active */
  int listed;  /* the latest update lists it: the senders below are its
                  senders (an SA kept after it left the updates keeps the
                  senders it had then) */
} mcsec_msa_sa_t;

typedef struct {
  uint32_t sender_id;
  uint8_t spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len;
  int feedback; /* a feedback member's: accept nothing but RTCP from it */
} mcsec_msa_sender_t;

typedef struct {
  uint64_t generation; /* grows on every change of what follows */
  int may_send;
  uint32_t sender_id; /* the first of sender_ids */
  size_t n_sender_ids;
  uint32_t sender_ids[MCSEC_MIKE_MAX_SENDER_IDS];
  uint8_t sender_id_bits;
  uint8_t sam; /* 0 none, 1 per packet, 2 block */
  char identity[MCSEC_MIKE_MAX_STRING + 1];
  size_t n_sas;
  mcsec_msa_sa_t sas[MCSEC_MIKE_MAX_SAS * 2];
  size_t n_senders;
  mcsec_msa_sender_t senders[MCSEC_MIKE_MAX_SENDERS];
  unsigned role;      /* this member's: MCSEC_MIKE_ROLE_*; with FEEDBACK its
                         Sender-IDs may protect feedback (RTCP) only */
  int spi_per_sender; /* the WELCOME's SPI_PER_SENDER: each SA is a block
                         of SPIs, sender i sends under spi | i */
  char address[MCSEC_MIKE_MAX_STRING + 1]; /* the WELCOME's ADDRESS, or "" */
  uint16_t port;                           /* its PORT, or 0 */
} mcsec_msa_t;

/* NULL in *out when the member holds no SA yet. */
MCSEC_API mcsec_status_t mcsec_member_msa (const mcsec_member_t *m,
                                           mcsec_msa_t **out) MCSEC_WARN_UNUSED;
MCSEC_API uint64_t mcsec_member_generation (const mcsec_member_t *m);
MCSEC_API void mcsec_msa_free (mcsec_msa_t *msa);
/* Bind the MSA's senders' keys to its SAs in a source verifier, as the
 * controller's updates say: every SA the latest update lists trusts exactly
 * the senders it lists (keys of Sender-IDs no longer listed are dropped);
 * SAs kept from earlier updates keep what they had.  A sender whose key
 * cannot be used is left out and the others bound all the same; the
 * status is then the first failure (MCSEC_ERR_BAD_SIGNING_KEY for a key
 * that does not parse). */
MCSEC_API mcsec_status_t mcsec_msa_bind_senders (const mcsec_msa_t *msa,
                                                 mcsec_sam_verifier_t *v);
/* The same, and the keys of the feedback members (senders[].feedback) too.
 * mcsec_msa_bind_senders leaves them out, so that a receiver that does not
 * look at the flag never takes a feedback member's datagram for a sender's;
 * a receiver that binds them must accept nothing but RTCP from their
 * Sender-IDs (docs/mike-protocol.md, "Feedback members"). */
MCSEC_API mcsec_status_t mcsec_msa_bind_all_senders (const mcsec_msa_t *msa,
                                                     mcsec_sam_verifier_t *v);

/* ---- client: the member's I/O (a thread) ---- */

typedef struct mcsec_client mcsec_client_t;

typedef void (*mcsec_client_event_fn) (const mcsec_member_event_t *ev,
                                       void *data);

typedef struct {
  const char *controller;      /* "host:port", or a cluster's controllers:
                                  "host:port,host:port,..." (tried in turn,
                                  docs/mike-protocol.md) */
  const char *controller_name; /* expected in the certificate of every
                                  controller; NULL: the host of each */
  const char *certificate;     /* PEM file: the member's certificate */
  const char *private_key;     /* PEM file: its key */
  const char *ca;              /* PEM file: the CA for the controller */
  mcsec_member_config_t member;
  const char *rekey_interface;    /* key tree groups: the network interface
                                    to receive the rekey channel on (a
                                    name); NULL: the kernel's choice */
  mcsec_client_event_fn on_event; /* called from the client's thread */
  void *data;
} mcsec_client_config_t;

/* Loads and checks the credentials; *error (free()) names the setting. */
MCSEC_API mcsec_status_t mcsec_client_new (const mcsec_client_config_t *config,
                                           mcsec_client_t **out,
                                           char **error) MCSEC_WARN_UNUSED;
MCSEC_API mcsec_status_t mcsec_client_start (mcsec_client_t *c)
    MCSEC_WARN_UNUSED;
/* Leaves the group (if joined) and stops the thread. */
MCSEC_API void mcsec_client_stop (mcsec_client_t *c);
MCSEC_API void mcsec_client_free (mcsec_client_t *c);
MCSEC_API mcsec_member_state_t mcsec_client_state (mcsec_client_t *c);
MCSEC_API void mcsec_client_channel_stats (mcsec_client_t *c,
                                           mcsec_member_channel_stats_t *out);
MCSEC_API mcsec_status_t mcsec_client_msa (mcsec_client_t *c,
                                           mcsec_msa_t **out) MCSEC_WARN_UNUSED;

#ifdef __cplusplus
}
#endif

#endif /* MCSEC_MIKE_H */
