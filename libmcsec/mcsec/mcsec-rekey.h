/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-rekey.h: the rekey channel (docs/mike-protocol.md, "Rekey
 * channel"), without I/O.  The controller cuts each key tree rekey into
 * datagrams of at most MCSEC_REKEY_MAX_DATAGRAM bytes, each a signed REKEY
 * frame that stands alone, numbered (SEQ, PART of PARTS), and sends
 * HEARTBEATs naming the latest SEQ.  A member puts the parts back together,
 * hands rekeys over strictly in order, and asks for a repair over its
 * unicast connection when one is missing (REPAIR with the first SEQ it
 * lacks); the controller answers with the stored datagrams, or says the
 * member must resynchronise when they are too old.
 */
#ifndef MCSEC_REKEY_H
#define MCSEC_REKEY_H

#include <mcsec/mcsec-lkh.h>
#include <mcsec/mcsec-mike.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCSEC_REKEY_MAX_DATAGRAM 1400
#define MCSEC_REKEY_KEEP 64         /* rekeys the controller keeps for repair */
#define MCSEC_REKEY_WINDOW 64       /* rekeys a member buffers ahead */
#define MCSEC_REKEY_MAX_PARTS 65535 /* parts of one rekey (16-bit count) */
#define MCSEC_REKEY_REPAIR_DELAY_MS 40  /* a gap this old is repaired */
#define MCSEC_REKEY_REPAIR_RETRY_MS 300 /* a repair not answered is redone */
#define MCSEC_REKEY_HEARTBEAT_MS 250
/* after a rekey the controller sends heartbeats sooner (a member that lost
 * every datagram of it learns of it without waiting for the next one) */
#define MCSEC_REKEY_FOLLOWUP1_MS 50
#define MCSEC_REKEY_FOLLOWUP2_MS 150
#define MCSEC_REKEY_REPEAT_MS 20 /* proactive copies, this far apart */

/* ---- controller side ---- */

typedef struct mcsec_rekey_tx mcsec_rekey_tx_t;

/* group: the group's name; key: the controller's Ed25519 update key (a
 * reference is taken); first_seq: the SEQ of the first rekey. */
MCSEC_API mcsec_status_t
mcsec_rekey_tx_new (const char *group, EVP_PKEY *key, uint64_t first_seq,
                    mcsec_rekey_tx_t **out) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_rekey_tx_free (mcsec_rekey_tx_t *tx);
/* What one rekey says: the wrapped keys of a commit and, for the data
 * plane, the SA whose key members derive from the new group key
 * (mcsec_lkh_derive_sa_key), the deactivation delay and the complete list
 * of authorised senders. */
typedef struct {
  const mcsec_lkh_entry_t *entries;
  size_t n;
  const mcsec_mike_sa_t *sa; /* NULL: none (key and key_len unused) */
  uint32_t deactivation_ms;
  const mcsec_mike_sender_t *senders;
  size_t n_senders; /* at most MCSEC_MIKE_MAX_SENDERS */
} mcsec_rekey_t;

/* Cut a rekey into signed datagrams (kept for repairs): the first carries
 * DEACTIVATION and DERIVED_SA, then SENDERs and WRAPPED_KEYs fill as many
 * datagrams as they need.  *seq is its SEQ, *parts the number of
 * datagrams; read them with mcsec_rekey_tx_datagram. */
MCSEC_API mcsec_status_t
mcsec_rekey_tx_publish (mcsec_rekey_tx_t *tx, const mcsec_rekey_t *rekey,
                        uint64_t *seq, unsigned *parts) MCSEC_WARN_UNUSED;
/* Datagram `part` of rekey `seq`, if still kept: its length, 0 if not. */
MCSEC_API size_t mcsec_rekey_tx_datagram (const mcsec_rekey_tx_t *tx,
                                          uint64_t seq, unsigned part,
                                          const uint8_t **data);
MCSEC_API unsigned mcsec_rekey_tx_parts (const mcsec_rekey_tx_t *tx,
                                         uint64_t seq);
/* The SEQ the next rekey will get. */
MCSEC_API uint64_t mcsec_rekey_tx_next_seq (const mcsec_rekey_tx_t *tx);
/* The oldest and newest SEQ kept (0, 0 before the first). */
MCSEC_API void mcsec_rekey_tx_range (const mcsec_rekey_tx_t *tx,
                                     uint64_t *oldest, uint64_t *newest);
/* A signed HEARTBEAT naming the newest SEQ and its part count. */
MCSEC_API mcsec_status_t
mcsec_rekey_tx_heartbeat (mcsec_rekey_tx_t *tx, uint8_t *out, size_t out_size,
                          size_t *out_len) MCSEC_WARN_UNUSED;

/* ---- member side ---- */

typedef struct mcsec_rekey_rx mcsec_rekey_rx_t;

/* controller_key: the update key from WELCOME (a reference is taken);
 * next_seq: the first rekey this member needs (its path came with the one
 * before). */
MCSEC_API mcsec_status_t mcsec_rekey_rx_new (
    const char *group, EVP_PKEY *controller_key, uint64_t next_seq,
    mcsec_rekey_rx_t **out) MCSEC_WARN_UNUSED;
MCSEC_API void mcsec_rekey_rx_free (mcsec_rekey_rx_t *rx);
/* A datagram from the channel, or a repair over unicast (the same
 * bytes).  Bad signatures, other groups, old or far SEQs are dropped and
 * counted (the status says why); nothing here is fatal. */
MCSEC_API mcsec_status_t mcsec_rekey_rx_datagram (mcsec_rekey_rx_t *rx,
                                                  const uint8_t *data,
                                                  size_t len, uint64_t now_ms);
/* The next complete rekey, in SEQ order: 1 with *seq and *rekey (its
 * pointers valid until the next call on rx), 0 when the next one is not
 * complete. */
MCSEC_API int mcsec_rekey_rx_next (mcsec_rekey_rx_t *rx, uint64_t *seq,
                                   mcsec_rekey_t *rekey);
/* Whether to ask for a repair now: 1 with *from_seq (the first SEQ this
 * member lacks) when a gap is older than the repair delay and no repair is
 * outstanding; the caller sends REPAIR over its unicast connection. */
MCSEC_API int mcsec_rekey_rx_repair (mcsec_rekey_rx_t *rx, uint64_t now_ms,
                                     uint64_t *from_seq);
/* The SEQ this member waits for next, and the newest it heard of. */
MCSEC_API uint64_t mcsec_rekey_rx_expected (const mcsec_rekey_rx_t *rx);
MCSEC_API uint64_t mcsec_rekey_rx_latest (const mcsec_rekey_rx_t *rx);
typedef struct {
  uint64_t datagrams, heartbeats, duplicates, bad_signature, malformed, stale,
      too_far, repairs_asked;
} mcsec_rekey_rx_stats_t;
MCSEC_API void mcsec_rekey_rx_stats (const mcsec_rekey_rx_t *rx,
                                     mcsec_rekey_rx_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* MCSEC_REKEY_H */
