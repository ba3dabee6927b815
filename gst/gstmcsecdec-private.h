/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * gstmcsecdec-private.h: mcsecdec's state, shared by gstmcsecdec.c (the
 * element, ESP, keys, stats) and gstmcsecdec-sam.c (source
 * authentication: the verifier, held datagrams, sender keys).
 */
#ifndef GST_MCSEC_DEC_PRIVATE_H
#define GST_MCSEC_DEC_PRIVATE_H

#include "gstmcsecdec.h"
#include "gstmcsecelement.h"
#include "gstmcsecmembership.h"

G_BEGIN_DECLS

typedef enum {
  STREAM_ANY,
  STREAM_RTP,
  STREAM_RTCP,
} Stream;

typedef struct {
  guint64 received, accepted, dropped;
  guint64 dropped_by[MCSEC_STATUS_COUNT_];
} Counters;

typedef struct {
  Counters c;
  guint64 highest_counter;
} SenderStats;

typedef struct {
  mcsec_suite_t cipher;
  Counters c;
  GHashTable *senders; /* sender-id -> SenderStats */
} SaStats;

typedef struct {
  guint64 verified, failed, unverifiable, unsigned_, pending, carriers;
} SamStats;

/* A datagram held for its source's verdict (sam-policy=required).  Its
 * ESP packet is tentative: the replay window of (spi, sender_id) moves
 * only when the verdict is VERIFIED. */
typedef struct {
  GstBuffer *buf;
  guint32 spi, sender_id;
  guint64 counter;
  guint64 tag; /* unique: the verifier's events name it */
  GstClockTime arrival;
  mcsec_sam_outcome_t state; /* 0 while pending */
  mcsec_status_t reason;     /* why it is dropped (state set, not VERIFIED) */
} HeldEntry;

struct _GstMcsecDec {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* settings, under the object lock */
  GstMcsecKey key;
  guint spi;
  mcsec_suite_t cipher;
  guint sender_id_bits;
  guint replay_window;
  mcsec_sa_type_t sa_type; /* of the SAs made from properties and add-key */
  gboolean esn;
  gboolean spi_per_sender; /* their SPI is a block's base (10.3) */
  GstCaps *caps;
  Stream stream;
  gboolean settings_changed;

  /* state, under the object lock */
  mcsec_sadb_t *db;
  GHashTable *sa_stats; /* spi -> SaStats */
  /* the last SA and sender counted (a stream's packets come from one):
   * NULL whenever sa_stats changes */
  SaStats *last_sa;
  guint32 last_spi;
  guint32 prop_spi, prev_prop_spi; /* SAs made from the properties */
  GHashTable *requested;           /* SPIs asked about with request-key */

  /* source authentication (SAM) */
  GstMcsecSamPolicy sam_policy;
  gchar *sender_keys; /* "ID=file;ID=file" */
  gboolean sender_keys_changed;
  guint sam_max_hold;
  guint64 sam_max_latency;
  mcsec_sam_verifier_t *verifier;
  GQueue held;             /* HeldEntry, in arrival order (required) */
  GHashTable *held_by_tag; /* tag -> entry */
  guint64 next_tag;
  GstBufferList *ready;  /* released, to be pushed outside the lock */
  GHashTable *sam_stats; /* Sender-ID -> SamStats */
  SamStats sam_total;
  guint64 hold_max_ns, hold_sum_ns, hold_count;
  GstBufferPool *pool;
  gboolean caps_sent;
  Counters total;

  /* keys from a membership (mcseckeysrc), when the pipeline has one */
  GstMcsecMembershipLink link;
  gboolean msa_dirty;
  GHashTable *member_spis; /* SPIs installed from the membership */
  /* (spi << 32 | sender-id) of feedback members (role=feedback): from
   * these only RTCP is accepted */
  GHashTable *feedback_ids;
  gboolean sam_policy_set; /* sam-policy given explicitly */
  guint64 dummies;
  gboolean warned[MCSEC_STATUS_COUNT_];

  /* what the application hears on the bus */
  GError *key_error;          /* the last failed key/key-file write */
  guint warning_interval;     /* ms */
  GstMcsecDropWarnings drops; /* rate limit of the drop warnings */
  GstMcsecStatsTimer stats_timer;
};

/* ---- gstmcsecdec.c ---- */

/* Called with the object lock: the final count of a packet whose ESP
 * outcome was tentative (or of a datagram its source check dropped). */
void gst_mcsec_dec_count_outcome_of (GstMcsecDec *self, guint32 spi,
                                     guint32 sender_id, guint64 counter,
                                     mcsec_status_t st, gboolean arrived);

/* ---- gstmcsecdec-sam.c ---- */

/* Called with the object lock: apply the source policy to a datagram that
 * ESP accepted.  Returns what to push now (off and optional), or NULL
 * (held, or dropped). */
GstBuffer *gst_mcsec_dec_sam_filter (GstMcsecDec *self, GstBuffer *out,
                                     const mcsec_rx_info_t *info);
/* Called with the object lock: hand the held datagrams that are decided
 * (or, with all, every one) over to self->ready; those waiting past
 * sam-max-latency at `now` are given up. */
void gst_mcsec_dec_release_held (GstMcsecDec *self, GstClockTime now,
                                 gboolean all);
/* The verifier's callback (mcsec_sam_verifier_new). */
void gst_mcsec_dec_on_sam_event (const mcsec_sam_event_t *ev, void *data);
/* Called with the object lock: trust the keys of `sender-keys`. */
gboolean gst_mcsec_dec_apply_sender_keys (GstMcsecDec *self, gchar **error);
/* The add-sender-key action signal. */
gboolean gst_mcsec_dec_add_sender_key (GstMcsecDec *self, guint sender_id,
                                       const gchar *file);

G_END_DECLS

#endif /* GST_MCSEC_DEC_PRIVATE_H */
