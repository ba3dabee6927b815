/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec.h: the public API of libmcsec's ESP group data plane.
 *
 * The core is "sans-I/O": it turns bytes and state into bytes and a status,
 * and never touches a socket, a clock or a log.  The one exception is the
 * counter store (bottom of this file), a small file-backed helper that keeps
 * a restarted sender from reusing a nonce.
 *
 * Objects are not thread-safe: a caller that shares one between threads
 * serialises the calls.
 */
#ifndef MCSEC_H
#define MCSEC_H

#include <stddef.h>
#include <stdint.h>

#include <mcsec/mcsec-wire.h>
#include <openssl/evp.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MCSEC_COMPILATION) && defined(__GNUC__)
#define MCSEC_API __attribute__ ((visibility ("default")))
#else
#define MCSEC_API
#endif

#if defined(__GNUC__)
#define MCSEC_WARN_UNUSED __attribute__ ((warn_unused_result))
#else
#define MCSEC_WARN_UNUSED
#endif

/* One status for every call: OK is 0, so callers write `if (st) ...`. */
typedef enum {
  MCSEC_OK = 0,
  /* configuration and calls */
  MCSEC_ERR_INVALID_ARG,        /* NULL pointer or impossible argument */
  MCSEC_ERR_BAD_SUITE,          /* setting "suite": unknown cipher suite */
  MCSEC_ERR_BAD_KEY_LENGTH,     /* setting "key": wrong length for the suite */
  MCSEC_ERR_BAD_SPI,            /* setting "spi": 0..255 are reserved */
  MCSEC_ERR_BAD_SENDER_ID_BITS, /* setting "sender_id_bits": not 8..32 */
  MCSEC_ERR_BAD_SENDER_ID,      /* setting "sender_id": wider than its bits */
  MCSEC_ERR_BAD_REPLAY_WINDOW, /* setting "replay_window": not 2^n, 64..65536 */
  MCSEC_ERR_BAD_LIFETIME,      /* settings "soft_packets"/"hard_packets" */
  MCSEC_ERR_NO_MEMORY,
  MCSEC_ERR_CRYPTO,     /* OpenSSL refused an operation */
  MCSEC_ERR_SPI_EXISTS, /* the SA database already holds this SPI */
  /* sending */
  MCSEC_ERR_NOT_SENDER,        /* no local sender was set on this SA */
  MCSEC_ERR_BUFFER_TOO_SMALL,  /* output buffer too small */
  MCSEC_ERR_PAYLOAD_TOO_LONG,  /* payload longer than MCSEC_ESP_MAX_PAYLOAD_LEN
                                */
  MCSEC_ERR_HARD_LIMIT,        /* the SA's packet lifetime is used up */
  MCSEC_ERR_COUNTER_EXHAUSTED, /* the sender's counter space is used up */
  MCSEC_ERR_RESERVATION_EXHAUSTED, /* no reserved counter left: extend it */
  /* receiving: the packet is dropped, no state changed */
  MCSEC_ERR_TOO_SHORT,        /* shorter than the smallest valid packet */
  MCSEC_ERR_TOO_LONG,         /* longer than MCSEC_ESP_MAX_PACKET_LEN */
  MCSEC_ERR_MALFORMED,        /* misaligned, counter 0, SN != counter */
  MCSEC_ERR_UNKNOWN_SPI,      /* no SA with this SPI */
  MCSEC_ERR_AUTH,             /* ICV did not verify */
  MCSEC_ERR_BAD_PADDING,      /* authentic, but the ESP trailer is invalid */
  MCSEC_ERR_REPLAY,           /* counter already accepted */
  MCSEC_ERR_TOO_OLD,          /* counter below the replay window */
  MCSEC_ERR_TOO_MANY_SENDERS, /* the SA already tracks max_senders senders */
  /* counter store */
  MCSEC_ERR_IO,            /* reading or writing the store failed */
  MCSEC_ERR_LOCKED,        /* held: by this process or another one */
  MCSEC_ERR_CORRUPT_STATE, /* the store holds no valid record */
  /* source authentication */
  MCSEC_ERR_BAD_SIGNING_KEY, /* "signing-key-file": not Ed25519/P-256 */
  MCSEC_ERR_BAD_BLOCK_SIZE,  /* setting "block-size": not 8..256 */
  MCSEC_ERR_NO_SENDER_KEY,   /* no public key for this Sender-ID */
  MCSEC_ERR_SIGNATURE,       /* the source signature did not verify */
  /* key management (MIKE) */
  MCSEC_ERR_STALE_UPDATE,    /* an update not newer than the last applied */
  MCSEC_ERR_TLS,             /* the TLS connection failed */
  MCSEC_ERR_BAD_CREDENTIALS, /* certificate, key or CA file unusable */
  MCSEC_ERR_OUT_OF_SYNC,     /* a rekey this member's path keys cannot open */
  /* source authentication, receivers that require it */
  MCSEC_ERR_UNVERIFIABLE, /* its source could not be verified in time */
  MCSEC_ERR_UNSIGNED,     /* no source data, or no key for its sender */
  /* a decoder of one RTP session's RTP (or RTCP) stream given the other */
  MCSEC_ERR_WRONG_STREAM,
  MCSEC_STATUS_COUNT_
} mcsec_status_t;

/* A short, stable, lower-case name ("auth", "replay", ...) for stats keys. */
MCSEC_API const char *mcsec_status_name (mcsec_status_t status);
/* A sentence for people, naming the setting where one is at fault. */
MCSEC_API const char *mcsec_status_message (mcsec_status_t status);

typedef enum {
  MCSEC_SUITE_AES_128_GCM = 1,       /* RFC 4106, 16-byte ICV */
  MCSEC_SUITE_AES_256_GCM = 2,       /* RFC 4106, 16-byte ICV */
  MCSEC_SUITE_CHACHA20_POLY1305 = 3, /* RFC 7634 */
  MCSEC_SUITE_AES_128_GMAC = 4,      /* RFC 4543, authentication only */
  MCSEC_SUITE_AES_256_GMAC = 5,      /* RFC 4543, authentication only */
} mcsec_suite_t;

/* "aes-128-gcm", ... or NULL for an unknown suite. */
MCSEC_API const char *mcsec_suite_name (mcsec_suite_t suite);
/* The suite with that name, or 0. */
MCSEC_API mcsec_suite_t mcsec_suite_from_name (const char *name);
/* Length of key || salt for the suite, or 0 for an unknown suite. */
MCSEC_API size_t mcsec_suite_key_material_len (mcsec_suite_t suite);
/* 1 when the suite encrypts the payload, 0 for GMAC (integrity only). */
MCSEC_API int mcsec_suite_encrypts (mcsec_suite_t suite);

/* Fill buf with fresh key material from RAND_bytes. */
MCSEC_API mcsec_status_t mcsec_generate_key_material (
    mcsec_suite_t suite, uint8_t *buf, size_t buf_len) MCSEC_WARN_UNUSED;

/* Packet length after protecting payload_len bytes (every suite alike). */
MCSEC_API size_t mcsec_protected_len (size_t payload_len);
/* The SPI of a packet, or 0 when it is too short to hold one. */
MCSEC_API uint32_t mcsec_packet_spi (const uint8_t *packet, size_t len);

/* ------------------------------------------------------------------------ */
/* Security association                                                       */

typedef struct mcsec_sa mcsec_sa_t;

/* What the IV of an SA's packets holds (docs/wire-format.md 4 and 10.2). */
typedef enum {
  /* Sender-ID || counter (RFC 6054): mcsec's group SA, many senders, a
   * replay window per sender */
  MCSEC_SA_TYPE_GROUP = 0,
  /* an opaque IV, one sender, replay on the sequence number (RFC 4303):
   * what the Linux kernel, strongSwan or any ESP stack sends; receive only */
  MCSEC_SA_TYPE_STANDARD = 1,
} mcsec_sa_type_t;

typedef struct {
  uint32_t spi; /* >= MCSEC_SPI_MIN */
  mcsec_suite_t suite;
  const uint8_t *key; /* key || salt; copied, caller wipes its copy */
  size_t key_len;
  uint8_t sender_id_bits; /* 0: MCSEC_SENDER_ID_BITS_DEFAULT */
  uint32_t replay_window; /* 0: MCSEC_REPLAY_WINDOW_DEFAULT */
  uint32_t max_senders;   /* 0: MCSEC_MAX_SENDERS_DEFAULT */
  uint64_t soft_packets;  /* 0: MCSEC_SOFT_PACKETS_DEFAULT */
  uint64_t hard_packets;  /* 0: MCSEC_HARD_PACKETS_DEFAULT */
  mcsec_sa_type_t type;   /* 0: MCSEC_SA_TYPE_GROUP */
  int esn; /* standard SAs: extended (64-bit) sequence numbers, RFC 4303 */
  /* group SAs: each sender's packets carry SPI spi | Sender-ID, spi being
   * the base of a block of 2^sender_id_bits SPIs (its low bits zero;
   * sender_id_bits <= 24): a standard stack then keeps a replay window per
   * sender (docs/wire-format.md 10.3) */
  int spi_per_sender;
} mcsec_sa_config_t;

/* Events reported through the `events` out-parameters (a bit set). */
enum {
  MCSEC_EVENT_SOFT_LIMIT = 1u << 0,      /* this packet crossed soft_packets */
  MCSEC_EVENT_RESERVATION_LOW = 1u << 1, /* half the counter reservation used */
};

MCSEC_API mcsec_status_t mcsec_sa_new (const mcsec_sa_config_t *config,
                                       mcsec_sa_t **out) MCSEC_WARN_UNUSED;
/* Wipes every secret; NULL is fine. */
MCSEC_API void mcsec_sa_free (mcsec_sa_t *sa);

MCSEC_API uint32_t mcsec_sa_spi (const mcsec_sa_t *sa);
/* The SPIs the SA takes besides its own: a mask of low bits (its block,
 * spi_per_sender), or 0. */
MCSEC_API uint32_t mcsec_sa_spi_mask (const mcsec_sa_t *sa);
MCSEC_API mcsec_suite_t mcsec_sa_suite (const mcsec_sa_t *sa);

/* Make this SA able to send as sender_id, using counters first_counter up to
 * (not including) counter_limit.  counter_limit 0 means the whole counter
 * space.  A static key that outlives the process MUST take both from a
 * counter store (below), or a restart repeats nonces. */
MCSEC_API mcsec_status_t
mcsec_sa_set_sender (mcsec_sa_t *sa, uint32_t sender_id, uint64_t first_counter,
                     uint64_t counter_limit) MCSEC_WARN_UNUSED;
/* Raise the counter limit after the reservation was made durable. */
MCSEC_API mcsec_status_t mcsec_sa_extend_reservation (
    mcsec_sa_t *sa, uint64_t counter_limit) MCSEC_WARN_UNUSED;
/* The counter the next protected packet will carry. */
MCSEC_API uint64_t mcsec_sa_next_counter (const mcsec_sa_t *sa);

/* Protect one datagram.  `out` needs mcsec_protected_len(payload_len) bytes.
 * payload may lie at out + MCSEC_ESP_HEADER_LEN (in place) or anywhere that
 * does not otherwise overlap out.  *events receives MCSEC_EVENT_* bits
 * (may be NULL).  A counter is consumed even when sealing fails. */
MCSEC_API mcsec_status_t mcsec_sa_protect (mcsec_sa_t *sa, uint8_t next_header,
                                           const uint8_t *payload,
                                           size_t payload_len, uint8_t *out,
                                           size_t out_size, size_t *out_len,
                                           unsigned *events) MCSEC_WARN_UNUSED;

/* mcsec_sa_protect with prefix_len bytes (at most MCSEC_PREFIX_MAX) before
 * the payload in the body, such as the UDP header of Next Header 17
 * (docs/wire-format.md 10.1).  The payload may lie at
 * out + MCSEC_ESP_HEADER_LEN + prefix_len (in place). */
#define MCSEC_PREFIX_MAX 8
MCSEC_API mcsec_status_t mcsec_sa_protect_prefixed (
    mcsec_sa_t *sa, uint8_t next_header, const uint8_t *prefix,
    size_t prefix_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
    size_t out_size, size_t *out_len, unsigned *events) MCSEC_WARN_UNUSED;

/* What unprotect learnt about a packet; the header fields are filled as soon
 * as they are parsed, so a dropped packet can still be counted per sender
 * (has_header says whether they are valid). */
typedef struct {
  int has_header;
  uint32_t spi;
  uint32_t sender_id;
  uint64_t counter;
  uint8_t next_header; /* valid on MCSEC_OK */
  size_t payload_len;  /* valid on MCSEC_OK */
  unsigned events;     /* MCSEC_EVENT_* */
} mcsec_rx_info_t;

/* Verify, decrypt and replay-check one packet.  The payload is written to
 * out (out_size >= len - MCSEC_ESP_HEADER_LEN - MCSEC_ESP_ICV_LEN is always
 * enough); out may be packet + MCSEC_ESP_HEADER_LEN (in place).  On any
 * error, nothing in the SA changes and out holds no plaintext.  A packet
 * with next_header MCSEC_NEXT_HEADER_DUMMY returns OK; discard it. */
MCSEC_API mcsec_status_t mcsec_sa_unprotect (
    mcsec_sa_t *sa, const uint8_t *packet, size_t len, uint8_t *out,
    size_t out_size, mcsec_rx_info_t *info) MCSEC_WARN_UNUSED;

/* The same as mcsec_sa_unprotect, except that the sender's replay window is
 * only checked, not moved: the packet is tentative.  The caller accepts it
 * with mcsec_sa_accept() once it trusts it (its source verified), or drops
 * it; until then a copy of it passes again.  Receivers that check sources
 * use this, so that only datagrams whose sender signed them move that
 * sender's window (docs/threat-model.md). */
MCSEC_API mcsec_status_t mcsec_sa_unprotect_tentative (
    mcsec_sa_t *sa, const uint8_t *packet, size_t len, uint8_t *out,
    size_t out_size, mcsec_rx_info_t *info) MCSEC_WARN_UNUSED;
/* Accept a tentative packet: check the window again and move it.
 * MCSEC_ERR_REPLAY / MCSEC_ERR_TOO_OLD when another copy was accepted
 * meanwhile (drop this one), MCSEC_ERR_TOO_MANY_SENDERS when full. */
MCSEC_API mcsec_status_t mcsec_sa_accept (mcsec_sa_t *sa, uint32_t sender_id,
                                          uint64_t counter) MCSEC_WARN_UNUSED;
/* 1 when both SAs have the same SPI, suite, Sender-ID width and key
 * material (compared through a digest, in constant time). */
MCSEC_API int mcsec_sa_same_key (const mcsec_sa_t *a, const mcsec_sa_t *b);

/* Receive-side state of one remote sender. */
typedef struct {
  uint32_t sender_id;
  uint64_t highest_counter;
  uint64_t accepted;
} mcsec_sender_stats_t;

/* Call fn for each sender the SA has accepted a packet from. */
MCSEC_API void
mcsec_sa_foreach_sender (const mcsec_sa_t *sa,
                         void (*fn) (const mcsec_sender_stats_t *, void *),
                         void *user_data);
MCSEC_API size_t mcsec_sa_n_senders (const mcsec_sa_t *sa);
/* Packets protected by the local sender / accepted from all senders. */
MCSEC_API uint64_t mcsec_sa_packets_sent (const mcsec_sa_t *sa);
MCSEC_API uint64_t mcsec_sa_packets_received (const mcsec_sa_t *sa);

/* ------------------------------------------------------------------------ */
/* SA database: several SAs at once (current and next key, several groups)   */

typedef struct mcsec_sadb mcsec_sadb_t;

MCSEC_API mcsec_status_t mcsec_sadb_new (mcsec_sadb_t **out) MCSEC_WARN_UNUSED;
/* Frees every SA it holds. */
MCSEC_API void mcsec_sadb_free (mcsec_sadb_t *db);
/* On MCSEC_OK the database owns sa; on error the caller still does. */
MCSEC_API mcsec_status_t mcsec_sadb_add (mcsec_sadb_t *db,
                                         mcsec_sa_t *sa) MCSEC_WARN_UNUSED;
/* Remove and free the SA; MCSEC_ERR_UNKNOWN_SPI when absent. */
MCSEC_API mcsec_status_t mcsec_sadb_remove (mcsec_sadb_t *db, uint32_t spi);
MCSEC_API mcsec_sa_t *mcsec_sadb_lookup (const mcsec_sadb_t *db, uint32_t spi);
MCSEC_API size_t mcsec_sadb_count (const mcsec_sadb_t *db);
/* mcsec_sa_unprotect on the SA named by the packet's SPI. */
MCSEC_API mcsec_status_t mcsec_sadb_unprotect (
    mcsec_sadb_t *db, const uint8_t *packet, size_t len, uint8_t *out,
    size_t out_size, mcsec_rx_info_t *info) MCSEC_WARN_UNUSED;

/* mcsec_sa_unprotect_tentative on the SA named by the packet's SPI. */
MCSEC_API mcsec_status_t mcsec_sadb_unprotect_tentative (
    mcsec_sadb_t *db, const uint8_t *packet, size_t len, uint8_t *out,
    size_t out_size, mcsec_rx_info_t *info) MCSEC_WARN_UNUSED;

/* ------------------------------------------------------------------------ */
/* Counter store: durable counter reservations for a sender                   */
/*                                                                            */
/* The store remembers the first counter no process has been allowed to use.  */
/* Opening it reserves the next `block` counters and makes the reservation */
/* durable (fsync) before returning them; extending does the same.  A crash */
/* loses at most one block of counters and never repeats one.  The file is    */
/* locked while open, so two processes cannot share it. */

typedef struct mcsec_counter_store mcsec_counter_store_t;

/* block 0: MCSEC_COUNTER_STORE_BLOCK_DEFAULT; at most
 * MCSEC_COUNTER_STORE_DAMAGE_SKIP.  On OK, [*first, *limit) is reserved for
 * the caller. */
MCSEC_API mcsec_status_t mcsec_counter_store_open (
    const char *path, uint64_t block, mcsec_counter_store_t **out,
    uint64_t *first, uint64_t *limit) MCSEC_WARN_UNUSED;
/* Reserve the next block; *limit is the new exclusive limit. */
MCSEC_API mcsec_status_t mcsec_counter_store_extend (
    mcsec_counter_store_t *store, uint64_t *limit) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_counter_store_close (mcsec_counter_store_t *store);

/* ------------------------------------------------------------------------ */
/* SAM: source authentication above ESP (docs/source-authentication.md)     */
/*                                                                            */
/* The sender wraps each datagram in SAM data before ESP protects it with     */
/* next header MCSEC_NEXT_HEADER_SAM; the receiver checks it after ESP.  The  */
/* ESP SPI, Sender-ID and counter of the packet are bound into what is        */
/* signed, so a packet cannot be replayed under another counter or SA.        */

typedef enum {
  MCSEC_SAM_PER_PACKET = 1, /* one signature per packet */
  MCSEC_SAM_BLOCK = 2,      /* one signature per block, erasure-coded */
} mcsec_sam_scheme_t;

typedef struct mcsec_sam_signer mcsec_sam_signer_t;
typedef struct mcsec_sam_verifier mcsec_sam_verifier_t;

/* key: an Ed25519 or ECDSA P-256 private key (a reference is taken).
 * block_size 0: MCSEC_SAM_BLOCK_DEFAULT; carry_percent 0: the default
 * number of authenticator symbols per packet, in hundredths. */
MCSEC_API mcsec_status_t mcsec_sam_signer_new (
    mcsec_sam_scheme_t scheme, EVP_PKEY *key, unsigned block_size,
    unsigned carry_percent, mcsec_sam_signer_t **out) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_sam_signer_free (mcsec_sam_signer_t *signer);

/* Wrap one datagram.  spi, sender_id and counter are those of the ESP
 * packet that will carry it (mcsec_sa_next_counter()).  out needs
 * mcsec_sam_max_overhead() + len bytes. */
MCSEC_API mcsec_status_t mcsec_sam_sign (mcsec_sam_signer_t *signer,
                                         uint32_t spi, uint32_t sender_id,
                                         uint64_t counter,
                                         const uint8_t *datagram, size_t len,
                                         uint8_t *out, size_t out_size,
                                         size_t *out_len) MCSEC_WARN_UNUSED;
/* Time-closed blocks.  With a budget (ns; 0: off, blocks close on their
 * count only), a block closes when the next datagram is expected after
 * budget_ns from its first one, and its authenticator is sent within
 * budget_ns after that: a receiver's wait for a verdict stays about two
 * budgets at any rate.  The expected gap to the next datagram is the
 * longest recent one.  Times come from the caller (any monotonic ns clock)
 * through mcsec_sam_sign_at(). */
MCSEC_API mcsec_status_t mcsec_sam_signer_set_time_budget (
    mcsec_sam_signer_t *signer, uint64_t budget_ns) MCSEC_WARN_UNUSED;
/* mcsec_sam_sign at time now (ns).  Afterwards, while
 * mcsec_sam_carriers_due() says so, send mcsec_sam_carrier() packets. */
MCSEC_API mcsec_status_t mcsec_sam_sign_at (
    mcsec_sam_signer_t *signer, uint64_t now, uint32_t spi, uint32_t sender_id,
    uint64_t counter, const uint8_t *datagram, size_t len, uint8_t *out,
    size_t out_size, size_t *out_len) MCSEC_WARN_UNUSED;
/* 1 when the oldest pending authenticator cannot wait for the next
 * datagram: send carrier packets now. */
MCSEC_API int mcsec_sam_carriers_due (const mcsec_sam_signer_t *signer);
MCSEC_API size_t mcsec_sam_max_overhead (void);
/* Close the current block early (end of stream, a change of SA or
 * Sender-ID).  Its authenticator then needs carrier packets: see
 * mcsec_sam_carrier().  A block and its authenticator belong to one SA and
 * one Sender-ID: a caller that changes either closes the block and sends
 * the carriers, sealed under the old SA, first (what is left is dropped
 * when a datagram of the new one is signed). */
MCSEC_API mcsec_status_t mcsec_sam_end_block (mcsec_sam_signer_t *signer)
    MCSEC_WARN_UNUSED;
/* Authenticator symbols not yet sent. */
MCSEC_API size_t mcsec_sam_pending_symbols (const mcsec_sam_signer_t *signer);
/* A carrier packet (no datagram) with up to MCSEC_SAM_MAX_CARRIED pending
 * symbols; *out_len is 0 when nothing is pending. */
MCSEC_API mcsec_status_t mcsec_sam_carrier (mcsec_sam_signer_t *signer,
                                            uint8_t *out, size_t out_size,
                                            size_t *out_len) MCSEC_WARN_UNUSED;

/* The outcome of mcsec_sam_verify for one packet: VERIFIED, FAILED or
 * UNVERIFIABLE are verdicts given at once (per-packet signatures; block
 * members arriving after their block was decided); PENDING ones get their
 * verdict later, through exactly one event. */
typedef enum {
  MCSEC_SAM_VERIFIED = 1,     /* the sender's signature covers it */
  MCSEC_SAM_PENDING = 2,      /* a block member: decided later (event) */
  MCSEC_SAM_CARRIER = 3,      /* authenticator symbols only, no datagram */
  MCSEC_SAM_FAILED = 4,       /* (events) the block's signature failed */
  MCSEC_SAM_UNVERIFIABLE = 5, /* (events) too little arrived in time */
} mcsec_sam_outcome_t;

typedef struct {
  mcsec_sam_outcome_t outcome;
  size_t payload_offset; /* the datagram inside the SAM packet */
  size_t payload_len;
  uint32_t block; /* block members and events */
  unsigned index;
} mcsec_sam_result_t;

/* A block member whose fate is now known (VERIFIED, FAILED or
 * UNVERIFIABLE): the SPI, Sender-ID and ESP counter it arrived with, and
 * the tag the caller gave it, which tells this datagram from any other
 * (the same Sender-ID and counter exist once per SA, and an insider can
 * send copies of them). */
typedef struct {
  uint32_t spi;
  uint32_t sender_id;
  uint64_t counter;
  uint64_t tag;
  uint32_t block;
  unsigned index;
  mcsec_sam_outcome_t outcome;
} mcsec_sam_event_t;

typedef void (*mcsec_sam_event_fn) (const mcsec_sam_event_t *ev, void *data);

MCSEC_API mcsec_status_t
mcsec_sam_verifier_new (mcsec_sam_event_fn fn, void *data,
                        mcsec_sam_verifier_t **out) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_sam_verifier_free (mcsec_sam_verifier_t *v);
/* Trust key (Ed25519 or P-256 public key; a reference is taken) for the
 * packets of sender_id under the SA spi, or under any SA when spi is 0 (a
 * key bound to the SA wins).  Keys are bound as the key manager says: a
 * Sender-ID is one member's under one key, and may be another's under the
 * next.  The same key again changes nothing; another key for the same
 * (spi, sender_id) gives up what the old one had pending. */
MCSEC_API mcsec_status_t mcsec_sam_verifier_add_sender (
    mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id,
    EVP_PKEY *key) MCSEC_WARN_UNUSED;
/* Forget the key of (spi, sender_id), giving up its pending blocks;
 * MCSEC_ERR_NO_SENDER_KEY when there is none. */
MCSEC_API mcsec_status_t mcsec_sam_verifier_remove_sender (
    mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id);
/* Forget every key bound to spi whose Sender-ID is not among the n
 * sender_ids (n 0: all of spi's, when the SA goes). */
MCSEC_API void mcsec_sam_verifier_retain (mcsec_sam_verifier_t *v, uint32_t spi,
                                          const uint32_t *sender_ids, size_t n);
/* Check one SAM packet (the ESP payload) from spi/sender_id/counter (as
 * mcsec_sa_unprotect reported them).  tag is the caller's name for this
 * datagram, given back in its event.  Events for earlier packets may be
 * delivered during the call. */
MCSEC_API mcsec_status_t
mcsec_sam_verify (mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id,
                  uint64_t counter, uint64_t tag, const uint8_t *pkt,
                  size_t len, mcsec_sam_result_t *res) MCSEC_WARN_UNUSED;
/* Where the datagram is in a SAM packet, without verifying anything (for
 * receivers that do not check sources).  A carrier gives length 0. */
MCSEC_API mcsec_status_t mcsec_sam_locate (const uint8_t *pkt, size_t len,
                                           size_t *offset,
                                           size_t *dlen) MCSEC_WARN_UNUSED;
/* Give up on every pending block of every sender (end of stream). */
MCSEC_API void mcsec_sam_verifier_flush (mcsec_sam_verifier_t *v);

#ifdef __cplusplus
}
#endif

#endif /* MCSEC_H */
