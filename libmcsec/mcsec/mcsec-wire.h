/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-wire.h: every wire format and every protocol limit of the ESP data
 * plane, in one place.  docs/wire-format.md explains each of them; the code
 * and the document must agree.
 *
 * An mcsec packet is the payload of one UDP datagram (RFC 3948 style UDP
 * encapsulation: the first four bytes are the non-zero SPI):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |               Security Parameters Index (SPI)                 |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |      Sequence Number (low 32 bits of the sender's counter)    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  IV: Sender-ID (sender_id_bits) || counter (64 - sender_id_bits)
 *   +                                                               +
 *   |                                                               |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Payload (application datagram), encrypted except in GMAC  ~
 *   ~               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |               |  Padding (0-3)|  Pad Length   | Next Header   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 Integrity Check Value (16 bytes)              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
#ifndef MCSEC_WIRE_H
#define MCSEC_WIRE_H

/* ---- ESP header and trailer (RFC 4303) ---- */
#define MCSEC_ESP_SPI_LEN 4
#define MCSEC_ESP_SN_LEN 4
#define MCSEC_ESP_IV_LEN 8
/* SPI || SN || IV */
#define MCSEC_ESP_HEADER_LEN                                                   \
  (MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN + MCSEC_ESP_IV_LEN)
/* Pad Length and Next Header */
#define MCSEC_ESP_TRAILER_LEN 2
/* the ICV starts on a 4-byte boundary (RFC 4303 section 2.4) */
#define MCSEC_ESP_ALIGN 4
/* a sender pads with at most ALIGN - 1 bytes; a receiver accepts up to 255 */
#define MCSEC_ESP_MAX_SEND_PAD (MCSEC_ESP_ALIGN - 1)
#define MCSEC_ESP_ICV_LEN 16
/* worst-case growth of a datagram */
#define MCSEC_ESP_MAX_OVERHEAD                                                 \
  (MCSEC_ESP_HEADER_LEN + MCSEC_ESP_MAX_SEND_PAD + MCSEC_ESP_TRAILER_LEN +     \
   MCSEC_ESP_ICV_LEN)
/* the smallest valid packet: empty payload, 2 bytes of padding */
#define MCSEC_ESP_MIN_PACKET_LEN                                               \
  (MCSEC_ESP_HEADER_LEN + MCSEC_ESP_ALIGN + MCSEC_ESP_ICV_LEN)
/* the largest UDP payload over IPv4 (65535 - 20 - 8) */
#define MCSEC_ESP_MAX_PACKET_LEN 65507
#define MCSEC_ESP_MAX_PAYLOAD_LEN                                              \
  (MCSEC_ESP_MAX_PACKET_LEN - MCSEC_ESP_MAX_OVERHEAD)

/* SPIs 1..255 are reserved by IANA and 0 means "no SA" (RFC 4303 2.1) */
#define MCSEC_SPI_MIN 256u

/* ---- Next Header values mcsec puts in the ESP trailer ---- */
/* one application datagram (an RTP packet, an MPEG-TS chunk) */
#define MCSEC_NEXT_HEADER_DATAGRAM 253
/* a datagram carrying source-authentication data (SAM), reserved */
#define MCSEC_NEXT_HEADER_SAM 254
/* dummy packet (RFC 4303 2.6): authenticated, then silently discarded */
#define MCSEC_NEXT_HEADER_DUMMY 59
/* a datagram behind an 8-byte UDP header, which a standard ESP stack hands
 * to a UDP socket (docs/wire-format.md 10.1) */
#define MCSEC_NEXT_HEADER_UDP 17
#define MCSEC_UDP_HEADER_LEN 8

/* ---- Keys: key material = cipher key || 4-byte salt ---- */
#define MCSEC_SALT_LEN 4
#define MCSEC_NONCE_LEN (MCSEC_SALT_LEN + MCSEC_ESP_IV_LEN)
#define MCSEC_AES128_KEY_LEN 16
#define MCSEC_AES256_KEY_LEN 32
#define MCSEC_CHACHA20_KEY_LEN 32
#define MCSEC_MAX_KEY_MATERIAL_LEN (32 + MCSEC_SALT_LEN)

/* ---- Sender-ID in the IV (RFC 6054) ---- */
#define MCSEC_SENDER_ID_BITS_MIN 8
#define MCSEC_SENDER_ID_BITS_MAX 32
#define MCSEC_SENDER_ID_BITS_DEFAULT 16
/* per-sender SPIs (docs/wire-format.md 10.3): the widest Sender-ID a
 * block of SPIs takes (the base keeps 8 bits of its own) */
#define MCSEC_SPI_PER_SENDER_BITS_MAX 24
/* counter 0 is never sent: a window that has seen nothing has top = 0 */
#define MCSEC_COUNTER_FIRST 1

/* ---- Replay window per (SPI, Sender-ID) ---- */
#define MCSEC_REPLAY_WINDOW_MIN 64
#define MCSEC_REPLAY_WINDOW_MAX 65536
#define MCSEC_REPLAY_WINDOW_DEFAULT 1024
/* senders one SA remembers; beyond it new senders are refused */
#define MCSEC_MAX_SENDERS_DEFAULT 65536

/* ---- Key lifetime in packets, per SA (sender side: per local sender) ---- */
#define MCSEC_HARD_PACKETS_DEFAULT (UINT64_C (1) << 36)
#define MCSEC_SOFT_PACKETS_DEFAULT                                             \
  (MCSEC_HARD_PACKETS_DEFAULT - (MCSEC_HARD_PACKETS_DEFAULT >> 4))

/* ---- Counter store (nonce safety across restarts) ---- */
#define MCSEC_COUNTER_STORE_MAGIC "MCSECCTR"
#define MCSEC_COUNTER_STORE_VERSION 1
/* one slot: magic(8) version(4) generation(4) limit(8) check(8) */
#define MCSEC_COUNTER_STORE_SLOT_LEN 32
#define MCSEC_COUNTER_STORE_SLOTS 2
#define MCSEC_COUNTER_STORE_BLOCK_DEFAULT (UINT64_C (1) << 20)
/* the largest block; also what a damaged record makes the store skip */
#define MCSEC_COUNTER_STORE_DAMAGE_SKIP (UINT64_C (1) << 32)

/* ---- SAM: source authentication data, inside the ESP payload ----
 *
 * An ESP packet with Next Header MCSEC_NEXT_HEADER_SAM carries:
 *
 *   type (1) | alg (1) | rest of the SAM header (by type) | datagram
 *
 * type 1, per-packet signature:
 *   signature (64)
 * type 2, member of a signed block; type 3, carrier only (no datagram):
 *   block (4, BE) | index (1) | delta (1) | auth_n - 1 (1) | count (1) |
 *   count x ( symbol id (1) | symbol (16) )
 * where the symbols belong to the authenticator of block `block - delta`
 * (auth_n packets); docs/source-authentication.md explains the code. */
#define MCSEC_SAM_TYPE_SIGNED 1
#define MCSEC_SAM_TYPE_BLOCK 2
#define MCSEC_SAM_TYPE_CARRIER 3
#define MCSEC_SAM_ALG_ED25519 1
#define MCSEC_SAM_ALG_ECDSA_P256 2
#define MCSEC_SAM_SIG_LEN 64
#define MCSEC_SAM_HASH_LEN 16 /* SHA-256 truncated to 128 bits */
#define MCSEC_SAM_SYMBOL_LEN 16
#define MCSEC_SAM_SIG_SYMBOLS (MCSEC_SAM_SIG_LEN / MCSEC_SAM_SYMBOL_LEN)
#define MCSEC_SAM_SIGNED_HEADER_LEN (2 + MCSEC_SAM_SIG_LEN)
#define MCSEC_SAM_BLOCK_HEADER_LEN 10
#define MCSEC_SAM_CARRIED_LEN (1 + MCSEC_SAM_SYMBOL_LEN)
#define MCSEC_SAM_BLOCK_MIN 8
#define MCSEC_SAM_BLOCK_MAX 256
#define MCSEC_SAM_BLOCK_DEFAULT 64
/* symbol ids are one byte; the data and parity symbols of one code share
 * GF(2^8), so a block of more than MCSEC_SAM_ONE_CODE_MAX packets is cut
 * into two interleaved codes (even and odd positions) */
#define MCSEC_SAM_MAX_SYMBOLS 256
#define MCSEC_SAM_ONE_CODE_MAX 128
/* authenticator symbols per packet, in hundredths (0.75 per packet) */
#define MCSEC_SAM_CARRY_PERCENT_DEFAULT 75
/* at most this many symbols ride on one packet */
#define MCSEC_SAM_MAX_CARRIED 4
/* blocks a receiver keeps pending per sender before giving up on one */
#define MCSEC_SAM_PENDING_BLOCKS 3

#endif /* MCSEC_WIRE_H */
