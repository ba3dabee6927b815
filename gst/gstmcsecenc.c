/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
/**
 * SECTION:element-mcsecenc
 * @title: mcsecenc
 * @see_also: mcsecdec
 *
 * mcsecenc protects each buffer (one datagram: an RTP packet, an MPEG-TS
 * chunk) as one ESP packet of the group SA (docs/wire-format.md), ready for
 * `udpsink`.  Many senders share one SA: each has its own `sender-id`,
 * carried in the IV, so no two of them ever use the same nonce.
 *
 * With a static key the encoder keeps a counter store (`counter-file`, by
 * default `$XDG_STATE_HOME/mcsec/sender-<spi>-<sender-id>.ctr`), so that a
 * restarted sender never repeats a nonce.  Two processes with the same SPI
 * and sender-id cannot run at once: the second fails with an error naming
 * `counter-file`.
 *
 * The element adds no latency: each buffer is pushed as soon as it is
 * protected; buffer lists are protected as lists.
 *
 * ## Example pipelines
 * |[
 * mcsec-keygen --output group.key
 * gst-launch-1.0 videotestsrc ! vp8enc deadline=1 ! rtpvp8pay ! \
 *     mcsecenc key-file=group.key spi=0x1000 sender-id=1 ! \
 *     udpsink host=127.0.0.1 port=5004
 * ]| Encrypts a VP8 RTP stream with the key in group.key (hex).
 * |[
 * gst-launch-1.0 audiotestsrc ! rtpL16pay ! \
 *     mcsecenc key=000102030405060708090a0b0c0d0e0f10111213 \
 *     cipher=aes-128-gmac ! udpsink host=127.0.0.1 port=5004
 * ]| Authentication only (the payload stays readable), key on the command
 * line (visible to other users of the machine: prefer key-file).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <glib/gstdio.h>
#include <openssl/crypto.h>

#include "gstmcsecelement.h"
#include "gstmcsecenc.h"
#include "gstmcsecmembership.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

struct _GstMcsecEnc {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  /* settings, under the object lock */
  GstMcsecKey key;
  guint spi;
  mcsec_suite_t cipher;
  guint sender_id;
  guint sender_id_bits;
  gchar *counter_file;
  guint64 soft_packets, hard_packets;
  guint inner_udp_port;    /* 0: Next Header 253; else 17 behind a UDP header */
  gboolean spi_per_sender; /* SPI spi | sender-id (wire-format.md 10.3) */
  gboolean settings_changed;

  /* streaming state, under the object lock */
  mcsec_sa_t *sa;
  mcsec_counter_store_t *store;
  gchar *store_path;
  GstBufferPool *pool;
  gboolean hard_limit_signalled;

  /* source authentication (SAM), when a signing key is set */
  gchar *signing_key_file;
  mcsec_sam_scheme_t sam_scheme;
  guint sam_block_size;
  guint64 sam_block_time;
  mcsec_sam_signer_t *signer;
  guint8 *sam_buf; /* the SAM-wrapped datagram, before ESP */
  gsize sam_buf_size;
  guint64 sam_signed, sam_carriers;

  /* keys from a membership (mcseckeysrc), when the pipeline has one */
  GstMcsecMembershipLink link;
  gboolean msa_dirty;      /* the membership changed since we looked */
  gint slot;               /* our Sender-ID among the member's, -1: none yet */
  gboolean feedback_only;  /* role=feedback: RTCP only, the rest dropped */
  gboolean group_unsigned; /* the MSA's group asks no source authentication
                              (the controller's sam = none) */
  GCond key_cond;          /* signalled on membership changes and flushes */
  GstBufferList *pending;  /* carriers to push before the next packets */
  gboolean flushing;
  guint64 key_waits;

  /* statistics, under the object lock */
  guint64 packets, bytes_in, bytes_out, dropped;
  guint64 dropped_by[MCSEC_STATUS_COUNT_];

  /* what the application hears on the bus */
  GError *key_error;          /* the last failed key/key-file write */
  guint warning_interval;     /* ms */
  GstMcsecDropWarnings drops; /* rate limit of the drop warnings */
  GstMcsecStatsTimer stats_timer;
};

enum {
  PROP_0,
  PROP_KEY,
  PROP_KEY_FILE,
  PROP_SPI,
  PROP_CIPHER,
  PROP_SENDER_ID,
  PROP_SENDER_ID_BITS,
  PROP_COUNTER_FILE,
  PROP_SOFT_PACKETS,
  PROP_HARD_PACKETS,
  PROP_INNER_UDP_PORT,
  PROP_SPI_PER_SENDER,
  PROP_SIGNING_KEY_FILE,
  PROP_SAM_SCHEME,
  PROP_SAM_BLOCK_SIZE,
  PROP_SAM_BLOCK_TIME,
  PROP_WARNING_INTERVAL,
  PROP_STATS_INTERVAL,
  PROP_STATS,
};

enum { SIGNAL_SOFT_LIMIT, SIGNAL_HARD_LIMIT, SIGNAL_SET_KEY, N_SIGNALS };

static guint signals[N_SIGNALS];

/* a receiver's default sam-max-latency (1 s) is four of these */
#define DEFAULT_SAM_BLOCK_TIME (250 * GST_MSECOND)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (MCSEC_CAPS));

#define gst_mcsec_enc_parent_class parent_class
G_DEFINE_TYPE (GstMcsecEnc, gst_mcsec_enc, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (mcsecenc, "mcsecenc", GST_RANK_NONE,
                                       GST_TYPE_MCSEC_ENC,
                                       gst_mcsec_element_init (plugin));

/* Called with the object lock: drop the SA and the counter store. */
static void
reset_sa (GstMcsecEnc *self)
{
  mcsec_sa_free (self->sa);
  self->sa = NULL;
  mcsec_counter_store_close (self->store);
  self->store = NULL;
  g_clear_pointer (&self->store_path, g_free);
}

static gchar *
default_counter_file (guint spi, guint sender_id)
{
  return g_strdup_printf ("%s/mcsec/sender-%08x-%u.ctr",
                          g_get_user_state_dir (), spi, sender_id);
}

/* Called with the object lock.  Builds the SA from the settings, with its
 * counters reserved in the counter store.  FALSE with *error set. */
static void finish_block_before_change (GstMcsecEnc *self);

static gboolean
build_sa (GstMcsecEnc *self, gchar **error)
{
  gchar *path, *dir;
  mcsec_counter_store_t *store = NULL;
  mcsec_sa_t *sa;
  guint64 first, limit;
  mcsec_status_t st;

  sa = gst_mcsec_make_sa (self->spi, self->cipher, &self->key,
                          self->sender_id_bits, 0, self->soft_packets,
                          self->hard_packets, MCSEC_SA_TYPE_GROUP, FALSE,
                          self->spi_per_sender, error);
  if (sa == NULL)
    return FALSE;

  path = self->counter_file ? g_strdup (self->counter_file)
                            : default_counter_file (self->spi, self->sender_id);
  if (self->store && g_strcmp0 (path, self->store_path) == 0) {
    /* same store (same SPI and sender): carry on with its counters */
    store = self->store;
    self->store = NULL;
    first = mcsec_sa_next_counter (self->sa);
    st = mcsec_counter_store_extend (store, &limit);
  } else {
    dir = g_path_get_dirname (path);
    if (g_mkdir_with_parents (dir, 0700) != 0)
      GST_WARNING_OBJECT (self, "cannot create %s: %s", dir,
                          g_strerror (errno));
    g_free (dir);
    st = mcsec_counter_store_open (path, 0, &store, &first, &limit);
  }
  if (st == MCSEC_OK)
    st = mcsec_sa_set_sender (sa, self->sender_id, first, limit);
  if (st) {
    *error = g_strdup_printf (
        "Cannot use counter-file %s: %s (spi 0x%08x sender-id %u: is "
        "another sender running with the same SPI and sender-id, or is the "
        "directory unwritable?).",
        path, mcsec_status_message (st), self->spi, self->sender_id);
    mcsec_sa_free (sa);
    mcsec_counter_store_close (store);
    g_free (path);
    return FALSE;
  }
  finish_block_before_change (self);
  reset_sa (self);
  self->sa = sa;
  self->store = store;
  self->store_path = path;
  self->hard_limit_signalled = FALSE;
  self->settings_changed = FALSE;
  GST_INFO_OBJECT (self,
                   "SA ready: spi 0x%08x, %s, sender-id %u, "
                   "counters %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT,
                   self->spi, mcsec_suite_name (self->cipher), self->sender_id,
                   first, limit);
  return TRUE;
}

typedef struct {
  gboolean soft, hard;
  guint spi;
} PendingSignals;

/* Called with the object lock: ESP-protect len bytes of data into a new
 * buffer, or NULL with *st set. */
static GstBuffer *
seal_prefixed (GstMcsecEnc *self, guint8 next_header, const guint8 *prefix,
               gsize prefix_len, const guint8 *data, gsize len,
               PendingSignals *sig, mcsec_status_t *st)
{
  GstBuffer *outbuf =
      gst_mcsec_buffer_new (self->pool, mcsec_protected_len (prefix_len + len));
  GstMcsecMap out;
  size_t out_len = 0;
  unsigned events = 0;

  if (outbuf == NULL || !gst_mcsec_map (outbuf, &out, GST_MAP_WRITE)) {
    if (outbuf)
      gst_buffer_unref (outbuf);
    *st = MCSEC_ERR_NO_MEMORY;
    return NULL;
  }
  *st = mcsec_sa_protect_prefixed (self->sa, next_header, prefix, prefix_len,
                                   data, len, out.info.data, out.info.size,
                                   &out_len, &events);
  gst_mcsec_unmap (outbuf, &out);
  if (*st) {
    gst_buffer_unref (outbuf);
    return NULL;
  }
  if (events & MCSEC_EVENT_RESERVATION_LOW) {
    guint64 limit;
    mcsec_status_t est = mcsec_counter_store_extend (self->store, &limit);
    if (est == MCSEC_OK)
      est = mcsec_sa_extend_reservation (self->sa, limit);
    if (est)
      GST_WARNING_OBJECT (self,
                          "counter-file %s: cannot extend the "
                          "reservation (%s); sending stops when it runs out",
                          self->store_path, mcsec_status_message (est));
  }
  if (events & MCSEC_EVENT_SOFT_LIMIT)
    sig->soft = TRUE;
  /* a fresh buffer: one memory that only it holds, so its size is set
   * as gst_memory_resize() would, without the checks */
  gst_buffer_peek_memory (outbuf, 0)->size = out_len;
  self->bytes_out += out_len;
  return outbuf;
}

static inline GstBuffer *
seal (GstMcsecEnc *self, guint8 next_header, const guint8 *data, gsize len,
      PendingSignals *sig, mcsec_status_t *st)
{
  return seal_prefixed (self, next_header, NULL, 0, data, len, sig, st);
}

/* Called with the object lock: add carrier packets, sealed under the
 * current SA, to list: all that are pending, or (due_only) those the time
 * budget says cannot wait for the next datagram. */
static void
send_carriers (GstMcsecEnc *self, GstBufferList *list, PendingSignals *sig,
               gboolean due_only)
{
  if (self->signer == NULL || self->sa == NULL)
    return;
  while (due_only ? mcsec_sam_carriers_due (self->signer)
                  : mcsec_sam_pending_symbols (self->signer) > 0) {
    size_t len = 0;
    mcsec_status_t st;
    GstBuffer *b;
    if (mcsec_sam_carrier (self->signer, self->sam_buf, self->sam_buf_size,
                           &len) != MCSEC_OK ||
        len == 0)
      break;
    b = seal (self, MCSEC_NEXT_HEADER_SAM, self->sam_buf, len, sig, &st);
    if (b == NULL)
      break;
    self->sam_carriers++;
    gst_buffer_list_add (list, b);
  }
}

/* Called with the object lock: close the current SAM block and add its
 * remaining authenticator symbols, sealed under the current SA, to list
 * (end of stream, or before the SA or the Sender-ID changes: a block
 * belongs to one SA and one Sender-ID). */
static void
end_sam_block (GstMcsecEnc *self, GstBufferList *list, PendingSignals *sig)
{
  if (self->signer == NULL || self->sa == NULL ||
      mcsec_sam_end_block (self->signer) != MCSEC_OK)
    return;
  send_carriers (self, list, sig, FALSE);
}

/* Called with the object lock: before the SA changes, the open block is
 * finished under the old one (its carriers go out before the next
 * packets). */
static void
finish_block_before_change (GstMcsecEnc *self)
{
  PendingSignals sig = {0};

  if (self->sa == NULL || self->signer == NULL)
    return;
  if (self->pending == NULL)
    self->pending = gst_buffer_list_new ();
  end_sam_block (self, self->pending, &sig);
}

/* Called with the object lock: the time of the element's clock (the
 * pipeline's), or of the system's monotonic clock before it has one. */
static guint64
enc_now (GstMcsecEnc *self)
{
  GstClock *clock = GST_ELEMENT_CLOCK (self);
  if (clock != NULL)
    return gst_clock_get_time (clock);
  return (guint64)g_get_monotonic_time () * 1000;
}

/* Called with the object lock.  Consumes inbuf; returns the ESP packet or
 * NULL when the buffer was dropped (counted). */
static GstBuffer *
protect_one (GstMcsecEnc *self, GstBuffer *inbuf, PendingSignals *sig)
{
  GstMcsecMap map;
  const GstMapInfo *in = &map.info;
  GstBuffer *outbuf = NULL;
  mcsec_status_t st;
  gsize in_size;

  if (!gst_mcsec_map (inbuf, &map, GST_MAP_READ)) {
    st = MCSEC_ERR_INVALID_ARG;
    goto drop;
  }
  /* a feedback member sends RTCP, and receivers accept nothing else */
  if (G_UNLIKELY (self->feedback_only) &&
      !gst_mcsec_is_rtcp (in->data, in->size)) {
    gst_mcsec_unmap (inbuf, &map);
    st = MCSEC_ERR_NOT_SENDER;
    goto drop;
  }
  /* with source data the datagram must leave room for it */
  if (in->size + (self->signer ? mcsec_sam_max_overhead () : 0) >
      MCSEC_ESP_MAX_PAYLOAD_LEN) {
    gst_mcsec_unmap (inbuf, &map);
    st = MCSEC_ERR_PAYLOAD_TOO_LONG;
    goto drop;
  }
  if (self->signer) {
    /* the source signature covers the ESP counter this packet will get */
    size_t sam_len = 0;
    st = mcsec_sam_sign_at (
        self->signer, enc_now (self), mcsec_sa_spi (self->sa), self->sender_id,
        mcsec_sa_next_counter (self->sa), in->data, in->size, self->sam_buf,
        self->sam_buf_size, &sam_len);
    if (st == MCSEC_OK)
      outbuf =
          seal (self, MCSEC_NEXT_HEADER_SAM, self->sam_buf, sam_len, sig, &st);
    if (outbuf)
      self->sam_signed++;
  } else if (self->inner_udp_port) {
    /* Next Header 17 (docs/wire-format.md 10.1): what a standard ESP
     * stack hands to a UDP socket; checksum 0, "not computed" */
    guint8 udp[MCSEC_UDP_HEADER_LEN];
    GST_WRITE_UINT16_BE (udp, self->inner_udp_port);
    GST_WRITE_UINT16_BE (udp + 2, self->inner_udp_port);
    GST_WRITE_UINT16_BE (udp + 4, (guint16)(in->size + sizeof (udp)));
    GST_WRITE_UINT16_BE (udp + 6, 0);
    /* (the length fits: mcsec's payloads are shorter than 65,528) */
    outbuf = seal_prefixed (self, MCSEC_NEXT_HEADER_UDP, udp, sizeof (udp),
                            in->data, in->size, sig, &st);
  } else {
    outbuf =
        seal (self, MCSEC_NEXT_HEADER_DATAGRAM, in->data, in->size, sig, &st);
  }
  in_size = in->size;
  gst_mcsec_unmap (inbuf, &map);
  if (outbuf == NULL)
    goto drop;
  gst_mcsec_copy_stamps (outbuf, inbuf);
  self->packets++;
  self->bytes_in += in_size;
  gst_buffer_unref (inbuf);
  return outbuf;

drop:
  if (outbuf)
    gst_buffer_unref (outbuf);
  self->dropped++;
  self->dropped_by[st]++;
  gst_mcsec_drop_note (&self->drops, st);
  if ((st == MCSEC_ERR_HARD_LIMIT || st == MCSEC_ERR_COUNTER_EXHAUSTED) &&
      !self->hard_limit_signalled) {
    self->hard_limit_signalled = TRUE;
    sig->hard = TRUE;
  }
  GST_DEBUG_OBJECT (self, "dropped a buffer of %" G_GSIZE_FORMAT " bytes: %s",
                    gst_buffer_get_size (inbuf), mcsec_status_name (st));
  gst_buffer_unref (inbuf);
  return NULL;
}

static void
emit_pending (GstMcsecEnc *self, const PendingSignals *sig)
{
  if (sig->soft) {
    GST_INFO_OBJECT (self, "SA 0x%08x reached its soft limit", sig->spi);
    g_signal_emit (self, signals[SIGNAL_SOFT_LIMIT], 0, sig->spi);
  }
  if (sig->hard) {
    GST_WARNING_OBJECT (self,
                        "SA 0x%08x reached its hard limit: buffers "
                        "are dropped until a new key is set",
                        sig->spi);
    g_signal_emit (self, signals[SIGNAL_HARD_LIMIT], 0, sig->spi);
  }
}

/* Called with the object lock: the SA from the membership's MSA.  *wait
 * is set while there is no SA to send with yet.  A fresh SA object (from
 * counter 1) is made only for a new SPI, with the Sender-ID the membership
 * has for our slot then: the controller never hands out a Sender-ID twice,
 * and each mcsecenc of a membership uses a slot of its own, never a
 * released one.  When a rejoin brings new Sender-IDs, the SA in use keeps
 * its Sender-ID and counter (receivers know that sender's key already);
 * the new one starts with the next SA. */
static gboolean
ensure_member_sa (GstMcsecEnc *self, gboolean *wait, gchar **error)
{
  mcsec_msa_t *msa;
  const mcsec_msa_sa_t *send = NULL;
  gboolean current_listed = FALSE;
  guint32 sid;

  if (self->sa && !self->msa_dirty)
    return TRUE;
  msa = gst_mcsec_membership_get_msa (self->link.membership);
  self->msa_dirty = FALSE;
  if (msa == NULL) {
    *wait = TRUE;
    return TRUE;
  }
  if (!msa->may_send && msa->role != MCSEC_MIKE_ROLE_FEEDBACK) {
    *error = g_strdup_printf (
        "mcseckeysrc: the membership of group %s does not allow sending "
        "(set role=sender on mcseckeysrc, or role=feedback to send RTCP "
        "only)",
        gst_mcsec_membership_group (self->link.membership));
    mcsec_msa_free (msa);
    return FALSE;
  }
  self->feedback_only = !msa->may_send;
  self->group_unsigned = msa->sam == 0;
  if (self->slot < 0) {
    self->slot = gst_mcsec_membership_claim_sender (self->link.membership);
    if (self->slot < 0) {
      *error = g_strdup_printf (
          "mcseckeysrc: all %u Sender-IDs of the membership are in use or "
          "were used (one per mcsecenc, and again after each restart of it): "
          "raise senders on mcseckeysrc",
          gst_mcsec_membership_sender_slots (self->link.membership));
      mcsec_msa_free (msa);
      return FALSE;
    }
  }
  if ((gsize)self->slot >= msa->n_sender_ids) {
    mcsec_msa_free (msa);
    *wait = TRUE;
    return TRUE;
  }
  sid = msa->sender_ids[self->slot];
  for (gsize i = 0; i < msa->n_sas; i++) {
    if (msa->sas[i].sending)
      send = &msa->sas[i];
    if (self->sa && msa->sas[i].spi == mcsec_sa_spi (self->sa))
      current_listed = TRUE;
  }
  if (send == NULL) {
    /* nothing active yet; an SA we hold but that left the MSA is over */
    if (!current_listed)
      reset_sa (self);
    *wait = self->sa == NULL;
  } else if (self->sa == NULL || mcsec_sa_spi (self->sa) != send->spi) {
    mcsec_sa_config_t cfg = {0};
    mcsec_sa_t *sa = NULL;
    mcsec_status_t st;
    cfg.spi = send->spi;
    cfg.suite = send->suite;
    cfg.key = send->key;
    cfg.key_len = send->key_len;
    cfg.sender_id_bits = msa->sender_id_bits;
    /* the group's SAs are blocks: this sender's SPI is spi | sender-id */
    cfg.spi_per_sender = msa->spi_per_sender;
    cfg.soft_packets = self->soft_packets;
    cfg.hard_packets = self->hard_packets;
    st = mcsec_sa_new (&cfg, &sa);
    if (st == MCSEC_OK)
      st = mcsec_sa_set_sender (sa, sid, 0, 0);
    if (st) {
      *error = g_strdup_printf ("mcseckeysrc: unusable SA 0x%08x: %s",
                                send->spi, mcsec_status_message (st));
      mcsec_sa_free (sa);
      mcsec_msa_free (msa);
      return FALSE;
    }
    if (self->sa && (self->sender_id != sid || self->spi != send->spi))
      finish_block_before_change (self);
    reset_sa (self);
    self->sa = sa;
    self->spi = send->spi;
    self->cipher = send->suite;
    self->sender_id = sid;
    self->sender_id_bits = msa->sender_id_bits;
    self->hard_limit_signalled = FALSE;
    GST_INFO_OBJECT (self, "sending with SA 0x%08x (%s) as sender-id %u",
                     send->spi, mcsec_suite_name (send->suite), sid);
  }
  mcsec_msa_free (msa);
  return TRUE;
}

/* Called with the object lock.  *wait is set when keys are still to come
 * from the membership. */
static gboolean
ensure_sa (GstMcsecEnc *self, gboolean *wait, gchar **error)
{
  gboolean member_signs;

  *wait = FALSE;
  if (self->link.membership) {
    if (!ensure_member_sa (self, wait, error))
      return FALSE;
    if (*wait)
      return TRUE;
  } else if (!self->sa || self->settings_changed) {
    if (!build_sa (self, error))
      return FALSE;
  }
  /* a membership's sender signs, but for a kernel (inner-udp-port) in a
   * group that asks no source authentication: a kernel cannot check it */
  member_signs = self->link.membership &&
                 gst_mcsec_membership_sender_slots (self->link.membership) &&
                 !(self->inner_udp_port && self->group_unsigned);
  if (G_UNLIKELY (self->inner_udp_port) &&
      (self->signing_key_file || member_signs)) {
    *error = g_strdup_printf (
        "inner-udp-port=%u sends datagrams a kernel can receive, which "
        "carry no source authentication: %s, or unset inner-udp-port",
        self->inner_udp_port,
        self->signing_key_file
            ? "unset signing-key-file"
            : "the group requires it (the controller's sam setting: none "
              "for a group with kernel receivers)");
    return FALSE;
  }
  /* the signer outlives rekeys: a block may span two SAs */
  if (self->signer == NULL && (self->signing_key_file || member_signs)) {
    GError *err = NULL;
    EVP_PKEY *key =
        self->signing_key_file
            ? gst_mcsec_load_private_key (self->signing_key_file, &err)
            : gst_mcsec_membership_get_sam_key (self->link.membership);
    mcsec_status_t st;
    if (key == NULL) {
      *error = g_strdup (err ? err->message
                             : "mcseckeysrc: no signing key for this sender");
      g_clear_error (&err);
      return FALSE;
    }
    st = mcsec_sam_signer_new (self->sam_scheme, key, self->sam_block_size, 0,
                               &self->signer);
    EVP_PKEY_free (key);
    if (st == MCSEC_OK)
      st =
          mcsec_sam_signer_set_time_budget (self->signer, self->sam_block_time);
    if (st) {
      *error =
          g_strdup_printf ("Cannot sign with signing-key-file %s: %s.",
                           self->signing_key_file, mcsec_status_message (st));
      return FALSE;
    }
    self->sam_buf_size = MCSEC_ESP_MAX_PAYLOAD_LEN + mcsec_sam_max_overhead ();
    self->sam_buf = g_malloc (self->sam_buf_size);
    GST_INFO_OBJECT (self, "signing sources with %s (%s)",
                     self->signing_key_file ? self->signing_key_file
                                            : "the membership's key",
                     self->sam_scheme == MCSEC_SAM_BLOCK ? "blocks"
                                                         : "per packet");
  }
  return TRUE;
}

/* Called with the object lock. */
static void
free_signer (GstMcsecEnc *self)
{
  mcsec_sam_signer_free (self->signer);
  self->signer = NULL;
  if (self->sam_buf)
    OPENSSL_cleanse (self->sam_buf, self->sam_buf_size);
  g_clear_pointer (&self->sam_buf, g_free);
}

/* Called with the object lock: an SA to send with, waiting for the
 * membership's keys if needed (a sender sends nothing before it has them).
 * GST_FLOW_OK, or an error already posted / flushing. */
static GstFlowReturn
acquire_sa (GstMcsecEnc *self)
{
  gchar *error = NULL;
  gboolean wait;

  for (;;) {
    if (!ensure_sa (self, &wait, &error)) {
      GST_OBJECT_UNLOCK (self);
      gst_mcsec_post_settings_error (GST_ELEMENT (self), error);
      GST_OBJECT_LOCK (self);
      return GST_FLOW_ERROR;
    }
    if (!wait)
      return GST_FLOW_OK;
    if (self->flushing)
      return GST_FLOW_FLUSHING;
    GST_DEBUG_OBJECT (self, "waiting for keys from mcseckeysrc");
    g_cond_wait (&self->key_cond, GST_OBJECT_GET_LOCK (self));
  }
}

/* Called with the object lock, before it is released: the drop warnings
 * that are due go to warn (posted once unlocked). */
static inline void
collect_warnings (GstMcsecEnc *self, GstMcsecDropWarningList *warn)
{
  if (G_UNLIKELY (self->drops.pending))
    gst_mcsec_drop_warnings_collect (&self->drops, GST_ELEMENT (self),
                                     self->dropped_by, FALSE, warn);
}

/* What to do, per reason a buffer was not sent, in the bus warning. */
static const gchar *
drop_hint (mcsec_status_t st)
{
  switch (st) {
  case MCSEC_ERR_HARD_LIMIT:
  case MCSEC_ERR_COUNTER_EXHAUSTED:
    return "Nothing is sent until a new key is set (set-key, or the "
           "controller's rekey)";
  case MCSEC_ERR_RESERVATION_EXHAUSTED:
    return "The counter-file could not be extended: check that its folder "
           "is writable and its disk not full";
  case MCSEC_ERR_PAYLOAD_TOO_LONG:
    return "Datagrams longer than one ESP packet carries (65,470 bytes, "
           "less with source authentication): lower the payloader's mtu";
  case MCSEC_ERR_NOT_SENDER:
    return "The membership is a feedback member's (mcseckeysrc "
           "role=feedback): it sends RTCP only, which receivers accept; "
           "role=sender sends media";
  default:
    return "Counted in the 'stats' property";
  }
}

/* Not under the lock: post the drop warnings collected. */
static void
post_drop_warnings (GstMcsecEnc *self, const GstMcsecDropWarningList *warn)
{
  guint interval;

  GST_OBJECT_LOCK (self);
  interval = self->warning_interval;
  GST_OBJECT_UNLOCK (self);
  for (guint i = 0; i < warn->n; i++)
    gst_mcsec_post_drop_warning (GST_ELEMENT (self), GST_STREAM_ERROR,
                                 GST_STREAM_ERROR_FAILED, &warn->w[i], "buffer",
                                 drop_hint (warn->w[i].reason), interval);
}

/* Not under the lock: push carriers that closed a block (consumed). */
static GstFlowReturn
push_pending (GstMcsecEnc *self, GstBufferList *pending)
{
  if (gst_buffer_list_length (pending) == 0) {
    gst_buffer_list_unref (pending);
    return GST_FLOW_OK;
  }
  return gst_pad_push_list (self->srcpad, pending);
}

static GstFlowReturn
gst_mcsec_enc_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstFlowReturn ret;
  GstMcsecEnc *self = GST_MCSEC_ENC (parent);
  PendingSignals sig = {0};
  GstBufferList *pending, *due = NULL;
  GstBuffer *out;
  GstMcsecDropWarningList warn;

  (void)pad;
  warn.n = 0;
  GST_OBJECT_LOCK (self);
  if ((ret = acquire_sa (self)) != GST_FLOW_OK) {
    GST_OBJECT_UNLOCK (self);
    gst_buffer_unref (buf);
    return ret;
  }
  sig.spi = self->spi;
  pending = self->pending;
  self->pending = NULL;
  out = protect_one (self, buf, &sig);
  if (self->signer && mcsec_sam_carriers_due (self->signer)) {
    /* the time budget: what the next datagram would carry too late */
    due = gst_buffer_list_new ();
    send_carriers (self, due, &sig, TRUE);
  }
  collect_warnings (self, &warn);
  GST_OBJECT_UNLOCK (self);
  if (G_UNLIKELY (warn.n))
    post_drop_warnings (self, &warn);
  emit_pending (self, &sig);
  if (pending && (ret = push_pending (self, pending)) != GST_FLOW_OK) {
    if (out)
      gst_buffer_unref (out);
    if (due)
      gst_buffer_list_unref (due);
    return ret;
  }
  if (out != NULL && (ret = gst_pad_push (self->srcpad, out)) != GST_FLOW_OK) {
    if (due)
      gst_buffer_list_unref (due);
    return ret;
  }
  return due ? push_pending (self, due) : GST_FLOW_OK;
}

/* Without source authentication each buffer of the list is replaced by
 * its ESP packet (or removed when dropped), and the list goes on. */
typedef struct {
  GstMcsecEnc *self;
  PendingSignals *sig;
} ListProtect;

static gboolean
protect_in_list (GstBuffer **buffer, guint idx, gpointer user_data)
{
  ListProtect *lp = user_data;

  (void)idx;
  *buffer = protect_one (lp->self, *buffer, lp->sig);
  return TRUE;
}

static GstFlowReturn
gst_mcsec_enc_chain_list (GstPad *pad, GstObject *parent, GstBufferList *list)
{
  GstFlowReturn ret;
  GstMcsecEnc *self = GST_MCSEC_ENC (parent);
  PendingSignals sig = {0};
  GstBufferList *outlist, *pending;
  GstMcsecDropWarningList warn;

  (void)pad;
  warn.n = 0;
  GST_OBJECT_LOCK (self);
  if ((ret = acquire_sa (self)) != GST_FLOW_OK) {
    GST_OBJECT_UNLOCK (self);
    gst_buffer_list_unref (list);
    return ret;
  }
  sig.spi = self->spi;
  pending = self->pending;
  self->pending = NULL;
  if (self->signer == NULL) {
    ListProtect lp = {self, &sig};
    outlist = gst_buffer_list_make_writable (list);
    gst_buffer_list_foreach (outlist, protect_in_list, &lp);
  } else {
    /* carriers go between the packets: a new list */
    guint n = gst_buffer_list_length (list);
    outlist = gst_buffer_list_new_sized (n + 4);
    for (guint i = 0; i < n; i++) {
      GstBuffer *out = protect_one (
          self, gst_buffer_ref (gst_buffer_list_get (list, i)), &sig);
      if (out)
        gst_buffer_list_add (outlist, out);
      send_carriers (self, outlist, &sig, TRUE);
    }
    gst_buffer_list_unref (list);
  }
  collect_warnings (self, &warn);
  GST_OBJECT_UNLOCK (self);
  if (G_UNLIKELY (warn.n))
    post_drop_warnings (self, &warn);
  emit_pending (self, &sig);
  if (pending && (ret = push_pending (self, pending)) != GST_FLOW_OK) {
    gst_buffer_list_unref (outlist);
    return ret;
  }
  if (gst_buffer_list_length (outlist) == 0) {
    gst_buffer_list_unref (outlist);
    return GST_FLOW_OK;
  }
  return gst_pad_push_list (self->srcpad, outlist);
}

static gboolean
gst_mcsec_enc_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (parent);

  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START ||
      GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP) {
    GST_OBJECT_LOCK (self);
    self->flushing = GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START;
    g_cond_broadcast (&self->key_cond);
    GST_OBJECT_UNLOCK (self);
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    /* the last block's authenticator goes out before the end, and every
     * drop not reported yet is */
    GstBufferList *list = gst_buffer_list_new ();
    PendingSignals sig = {0};
    GstMcsecDropWarningList warn;
    gboolean stats;
    warn.n = 0;
    GST_OBJECT_LOCK (self);
    end_sam_block (self, list, &sig);
    if (self->drops.pending)
      gst_mcsec_drop_warnings_collect (&self->drops, GST_ELEMENT (self),
                                       self->dropped_by, TRUE, &warn);
    stats = self->stats_timer.interval_ms != 0;
    GST_OBJECT_UNLOCK (self);
    if (gst_buffer_list_length (list) > 0)
      gst_pad_push_list (self->srcpad, list);
    else
      gst_buffer_list_unref (list);
    post_drop_warnings (self, &warn);
    if (stats)
      gst_mcsec_post_stats (GST_ELEMENT (self));
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
    /* whatever comes in, ESP packets go out */
    gst_event_unref (event);
    return gst_pad_push_event (
        self->srcpad,
        gst_event_new_caps (gst_static_pad_template_get_caps (&src_template)));
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_mcsec_enc_set_key (GstMcsecEnc *self, guint spi, const gchar *cipher,
                       GstBuffer *key)
{
  GEnumClass *klass = g_type_class_ref (GST_TYPE_MCSEC_CIPHER);
  GEnumValue *v = g_enum_get_value_by_nick (klass, cipher ? cipher : "");
  gboolean ok = FALSE;

  GST_OBJECT_LOCK (self);
  if (v != NULL && key != NULL && gst_mcsec_key_set_buffer (&self->key, key)) {
    self->spi = spi;
    self->cipher = v->value;
    self->settings_changed = TRUE;
    g_clear_error (&self->key_error);
    ok = TRUE;
  }
  GST_OBJECT_UNLOCK (self);
  g_type_class_unref (klass);
  if (!ok)
    GST_WARNING_OBJECT (self, "set-key: unknown cipher '%s' or bad key",
                        GST_STR_NULL (cipher));
  return ok;
}

static GstStructure *
make_stats (GstMcsecEnc *self)
{
  GstStructure *s;

  GST_OBJECT_LOCK (self);
  s = gst_structure_new (
      "application/x-mcsec-enc-stats", "spi", G_TYPE_UINT, self->spi, "cipher",
      G_TYPE_STRING, mcsec_suite_name (self->cipher), "sender-id", G_TYPE_UINT,
      self->sender_id, "packets", G_TYPE_UINT64, self->packets, "bytes-in",
      G_TYPE_UINT64, self->bytes_in, "bytes-out", G_TYPE_UINT64,
      self->bytes_out, "next-counter", G_TYPE_UINT64,
      self->sa ? mcsec_sa_next_counter (self->sa) : (guint64)0, "dropped",
      G_TYPE_UINT64, self->dropped, "dropped-hard-limit", G_TYPE_UINT64,
      self->dropped_by[MCSEC_ERR_HARD_LIMIT], "dropped-counter-exhausted",
      G_TYPE_UINT64, self->dropped_by[MCSEC_ERR_COUNTER_EXHAUSTED],
      "dropped-reservation-exhausted", G_TYPE_UINT64,
      self->dropped_by[MCSEC_ERR_RESERVATION_EXHAUSTED], "sam-signed",
      G_TYPE_UINT64, self->sam_signed, "sam-carriers", G_TYPE_UINT64,
      self->sam_carriers, "dropped-payload-too-long", G_TYPE_UINT64,
      self->dropped_by[MCSEC_ERR_PAYLOAD_TOO_LONG], "dropped-not-sender",
      G_TYPE_UINT64, self->dropped_by[MCSEC_ERR_NOT_SENDER], NULL);
  GST_OBJECT_UNLOCK (self);
  return s;
}

static void
gst_mcsec_enc_set_property (GObject *object, guint prop_id, const GValue *value,
                            GParamSpec *pspec)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (object);
  GError *error = NULL;

  GST_OBJECT_LOCK (self);
  /* a sender's identity and counter store cannot change under a running
   * SA: moving them could make a counter repeat */
  if (!gst_mcsec_property_mutable (GST_ELEMENT (self), pspec)) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
  case PROP_KEY:
  case PROP_KEY_FILE:
    if (!gst_mcsec_key_set_property (&self->key, prop_id == PROP_KEY_FILE,
                                     value, &error)) {
      GST_OBJECT_UNLOCK (self);
      /* kept: posted again when the element starts */
      gst_mcsec_setting_error_keep (GST_ELEMENT (self), &self->key_error,
                                    error);
      return;
    }
    g_clear_error (&self->key_error);
    break;
  case PROP_SPI:
    self->spi = g_value_get_uint (value);
    break;
  case PROP_CIPHER:
    self->cipher = g_value_get_enum (value);
    break;
  case PROP_SENDER_ID:
    self->sender_id = g_value_get_uint (value);
    break;
  case PROP_SENDER_ID_BITS:
    self->sender_id_bits = g_value_get_uint (value);
    break;
  case PROP_COUNTER_FILE:
    g_free (self->counter_file);
    self->counter_file = g_value_dup_string (value);
    break;
  case PROP_SOFT_PACKETS:
    self->soft_packets = g_value_get_uint64 (value);
    break;
  case PROP_HARD_PACKETS:
    self->hard_packets = g_value_get_uint64 (value);
    break;
  case PROP_SIGNING_KEY_FILE:
    g_free (self->signing_key_file);
    self->signing_key_file = g_value_dup_string (value);
    break;
  case PROP_SAM_SCHEME:
    self->sam_scheme = g_value_get_enum (value);
    break;
  case PROP_SAM_BLOCK_TIME:
    self->sam_block_time = g_value_get_uint64 (value);
    break;
  case PROP_SAM_BLOCK_SIZE:
    self->sam_block_size = g_value_get_uint (value);
    break;
  case PROP_INNER_UDP_PORT:
    self->inner_udp_port = g_value_get_uint (value);
    break;
  case PROP_SPI_PER_SENDER:
    self->spi_per_sender = g_value_get_boolean (value);
    break;
  case PROP_WARNING_INTERVAL:
    /* reporting settings: the SA stays */
    self->warning_interval = g_value_get_uint (value);
    gst_mcsec_drop_warnings_init (&self->drops, self->warning_interval);
    GST_OBJECT_UNLOCK (self);
    return;
  case PROP_STATS_INTERVAL:
    self->stats_timer.interval_ms = g_value_get_uint (value);
    GST_OBJECT_UNLOCK (self);
    gst_mcsec_stats_timer_reset (GST_ELEMENT (self), &self->stats_timer);
    return;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    GST_OBJECT_UNLOCK (self);
    return;
  }
  self->settings_changed = TRUE;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_mcsec_enc_get_property (GObject *object, guint prop_id, GValue *value,
                            GParamSpec *pspec)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (object);

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_SPI:
    g_value_set_uint (value, self->spi);
    break;
  case PROP_CIPHER:
    g_value_set_enum (value, self->cipher);
    break;
  case PROP_SENDER_ID:
    g_value_set_uint (value, self->sender_id);
    break;
  case PROP_SENDER_ID_BITS:
    g_value_set_uint (value, self->sender_id_bits);
    break;
  case PROP_COUNTER_FILE:
    g_value_set_string (value, self->counter_file);
    break;
  case PROP_SOFT_PACKETS:
    g_value_set_uint64 (value, self->soft_packets);
    break;
  case PROP_HARD_PACKETS:
    g_value_set_uint64 (value, self->hard_packets);
    break;
  case PROP_SIGNING_KEY_FILE:
    g_value_set_string (value, self->signing_key_file);
    break;
  case PROP_SAM_SCHEME:
    g_value_set_enum (value, self->sam_scheme);
    break;
  case PROP_SAM_BLOCK_TIME:
    g_value_set_uint64 (value, self->sam_block_time);
    break;
  case PROP_SAM_BLOCK_SIZE:
    g_value_set_uint (value, self->sam_block_size);
    break;
  case PROP_INNER_UDP_PORT:
    g_value_set_uint (value, self->inner_udp_port);
    break;
  case PROP_SPI_PER_SENDER:
    g_value_set_boolean (value, self->spi_per_sender);
    break;
  case PROP_WARNING_INTERVAL:
    g_value_set_uint (value, self->warning_interval);
    break;
  case PROP_STATS_INTERVAL:
    g_value_set_uint (value, self->stats_timer.interval_ms);
    break;
  default:
    /* key and key-file are write-only */
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
drop_membership (GstMcsecEnc *self)
{
  GstMcsecMembershipLink link;

  GST_OBJECT_LOCK (self);
  link = self->link;
  self->link.membership = NULL;
  self->slot = -1;
  GST_OBJECT_UNLOCK (self);
  gst_mcsec_membership_unlink (&link);
}

static GstStateChangeReturn
gst_mcsec_enc_change_state (GstElement *element, GstStateChange transition)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (element);
  GstStateChangeReturn ret;
  gchar *error = NULL;
  gboolean wait;

  /* a key or key-file that could not be used is said now, with its cause
   * (gst-launch-1.0 sets properties before the element has a bus) */
  if ((transition == GST_STATE_CHANGE_NULL_TO_READY ||
       transition == GST_STATE_CHANGE_READY_TO_PAUSED) &&
      !gst_mcsec_setting_error_check (element, &self->key_error, &self->key,
                                      self->cipher))
    return GST_STATE_CHANGE_FAILURE;
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    gboolean ask;
    GST_OBJECT_LOCK (self);
    ask = self->link.membership == NULL;
    GST_OBJECT_UNLOCK (self);
    if (ask) /* an mcseckeysrc in the pipeline answers */
      gst_mcsec_membership_request (element);
  }
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    /* a chain function waiting for keys lets go */
    GST_OBJECT_LOCK (self);
    self->flushing = TRUE;
    g_cond_broadcast (&self->key_cond);
    GST_OBJECT_UNLOCK (self);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    GstBufferPool *pool = gst_mcsec_pool_new ();
    if (pool == NULL)
      return GST_STATE_CHANGE_FAILURE;
    GST_OBJECT_LOCK (self);
    self->pool = pool;
    self->flushing = FALSE;
    gst_mcsec_drop_warnings_restart (&self->drops);
    /* settings errors show up now, not at the first buffer */
    if (!ensure_sa (self, &wait, &error)) {
      GST_OBJECT_UNLOCK (self);
      gst_mcsec_post_settings_error (element, error);
      return GST_STATE_CHANGE_FAILURE;
    }
    GST_OBJECT_UNLOCK (self);
  }
  if (transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED)
    gst_mcsec_stats_timer_stop (element, &self->stats_timer);
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_PLAYING &&
      ret != GST_STATE_CHANGE_FAILURE)
    gst_mcsec_stats_timer_start (element, &self->stats_timer);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    GstBufferPool *pool;
    GST_OBJECT_LOCK (self);
    reset_sa (self);
    free_signer (self);
    /* counters restart with a new SA object: never under the same
     * Sender-ID, so the next start takes another one */
    self->slot = -1;
    self->msa_dirty = TRUE;
    g_clear_pointer (&self->pending, gst_buffer_list_unref);
    pool = self->pool;
    self->pool = NULL;
    GST_OBJECT_UNLOCK (self);
    gst_mcsec_pool_free (pool);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    drop_membership (self);
  return ret;
}

static void
on_membership_changed (GstMcsecMembership *m, gpointer data)
{
  GstMcsecEnc *self = data;

  (void)m;
  GST_OBJECT_LOCK (self);
  self->msa_dirty = TRUE;
  g_cond_broadcast (&self->key_cond);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_mcsec_enc_set_context (GstElement *element, GstContext *context)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (element);

  GST_OBJECT_LOCK (self);
  if (gst_mcsec_membership_link (&self->link, context,
                                 G_CALLBACK (on_membership_changed), self)) {
    self->msa_dirty = TRUE;
    self->slot = -1;
    g_cond_broadcast (&self->key_cond);
    GST_INFO_OBJECT (self, "keys from the membership of group %s",
                     gst_mcsec_membership_group (self->link.membership));
  }
  GST_OBJECT_UNLOCK (self);
  GST_ELEMENT_CLASS (parent_class)->set_context (element, context);
}

static void
gst_mcsec_enc_finalize (GObject *object)
{
  GstMcsecEnc *self = GST_MCSEC_ENC (object);

  drop_membership (self);
  g_cond_clear (&self->key_cond);
  g_clear_pointer (&self->pending, gst_buffer_list_unref);
  reset_sa (self);
  free_signer (self);
  g_free (self->signing_key_file);
  gst_mcsec_key_clear (&self->key);
  g_free (self->counter_file);
  gst_mcsec_pool_free (self->pool);
  g_clear_error (&self->key_error);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mcsec_enc_class_init (GstMcsecEncClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_mcsec_enc_set_property;
  gobject_class->get_property = gst_mcsec_enc_get_property;
  gobject_class->finalize = gst_mcsec_enc_finalize;
  element_class->change_state = gst_mcsec_enc_change_state;
  element_class->set_context = gst_mcsec_enc_set_context;

  g_object_class_install_property (
      gobject_class, PROP_KEY,
      g_param_spec_boxed (
          "key", "Key",
          "SA key material: cipher key || 4-byte salt (20 bytes for "
          "AES-128, 36 for AES-256 and ChaCha20). Write-only; hex on the "
          "gst-launch-1.0 command line. Can be changed while PLAYING "
          "(prefer the set-key action signal then)",
          GST_TYPE_BUFFER,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_KEY_FILE,
      g_param_spec_string (
          "key-file", "Key file",
          "Read the key material (hex) from this file, so that it stays "
          "out of process listings (see mcsec-keygen). Write-only. A file "
          "that cannot be used is an error when the element starts, naming "
          "the file and the cause",
          NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_SPI,
      g_param_spec_uint (
          "spi", "SPI",
          "Security Parameters Index of the group SA (0-255 are reserved "
          "by RFC 4303)",
          GST_MCSEC_MIN_SPI, G_MAXUINT32, GST_MCSEC_DEFAULT_SPI,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_CIPHER,
      g_param_spec_enum ("cipher", "Cipher", "Cipher suite of the SA",
                         GST_TYPE_MCSEC_CIPHER, GST_MCSEC_DEFAULT_CIPHER,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_SENDER_ID,
      g_param_spec_uint (
          "sender-id", "Sender ID",
          "This sender's ID in the SA, unique among the group's senders "
          "(carried in the IV)",
          0, G_MAXUINT32, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SENDER_ID_BITS,
      g_param_spec_uint (
          "sender-id-bits", "Sender ID bits",
          "Width of the Sender-ID field of the IV; the counter gets the "
          "rest of 64 bits. All members of the group must agree",
          MCSEC_SENDER_ID_BITS_MIN, MCSEC_SENDER_ID_BITS_MAX,
          MCSEC_SENDER_ID_BITS_DEFAULT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_COUNTER_FILE,
      g_param_spec_string (
          "counter-file", "Counter file",
          "Counter store that keeps a restarted sender from repeating a "
          "nonce (NULL: $XDG_STATE_HOME/mcsec/sender-<spi>-<sender-id>.ctr)",
          NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SOFT_PACKETS,
      g_param_spec_uint64 (
          "soft-packets", "Soft limit",
          "Packets after which soft-limit is emitted (0: 15/16 of the hard "
          "limit)",
          0, G_MAXUINT64, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_HARD_PACKETS,
      g_param_spec_uint64 (
          "hard-packets", "Hard limit",
          "Packets after which the SA refuses to protect (0: 2^36)", 0,
          G_MAXUINT64, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecEnc:inner-udp-port:
   *
   * Send each datagram behind an 8-byte UDP header with this port as
   * source and destination, under Next Header 17 instead of 253, so that
   * a standard ESP stack (the Linux kernel's XFRM, in transport mode)
   * hands it to an ordinary UDP socket on that port
   * (docs/wire-format.md 10.1).  The UDP checksum is 0, which IPv4
   * receivers accept.  Not with source authentication: a kernel cannot
   * check signatures, so a signing key, or a sender's membership in a
   * group that requires signatures, with this set is refused at start; a
   * membership's sender in a group with sam = none does not sign.  0:
   * off.
   */
  g_object_class_install_property (
      gobject_class, PROP_INNER_UDP_PORT,
      g_param_spec_uint (
          "inner-udp-port", "Inner UDP port",
          "Put each datagram behind a UDP header with this port (Next "
          "Header 17) so that a standard ESP stack, such as the Linux "
          "kernel's, delivers it to a UDP socket on that port; no source "
          "authentication then (0: off, Next Header 253)",
          0, G_MAXUINT16, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SPI_PER_SENDER,
      g_param_spec_boolean (
          "spi-per-sender", "SPI per sender",
          "Send under SPI spi | sender-id: spi is the base of a block of "
          "2^sender-id-bits SPIs (its low bits zero, sender-id-bits at most "
          "24), so that a standard ESP stack keeps a replay window per "
          "sender (docs/wire-format.md 10.3); receivers set it too. With "
          "mcseckeysrc the group's setting decides",
          FALSE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SIGNING_KEY_FILE,
      g_param_spec_string (
          "signing-key-file", "Signing key file",
          "PEM private key (Ed25519 or ECDSA P-256) of this sender: when set, "
          "every datagram carries source authentication (SAM) that receivers "
          "check with the matching public key",
          NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_SCHEME,
      g_param_spec_enum ("sam-scheme", "SAM scheme",
                         "Source authentication: one signature per packet, "
                         "or one per block (erasure-coded, no added delay)",
                         GST_TYPE_MCSEC_SAM_SCHEME, MCSEC_SAM_BLOCK,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_BLOCK_SIZE,
      g_param_spec_uint ("sam-block-size", "SAM block size",
                         "Packets per signed block, at most",
                         MCSEC_SAM_BLOCK_MIN, MCSEC_SAM_BLOCK_MAX,
                         MCSEC_SAM_BLOCK_DEFAULT,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_BLOCK_TIME,
      g_param_spec_uint64 (
          "sam-block-time", "SAM block time",
          "Time budget of a signed block (ns, of the pipeline clock): a "
          "block closes when the next datagram is expected later than this "
          "after its first, and its signature is sent within this after "
          "that (in carrier packets when no datagram comes), so receivers "
          "verify within about twice this at any rate. 0: blocks close on "
          "their size only",
          0, 10 * GST_SECOND, DEFAULT_SAM_BLOCK_TIME,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecEnc:warning-interval:
   *
   * Buffers that cannot be sent (hard limit, counters used up, too long)
   * are reported on the bus as WARNING messages (STREAM FAILED), rate
   * limited per reason as in mcsecdec: the first at once, then at most one
   * per reason per interval, with the count since the last one; details
   * in an `application/x-mcsec-drops` structure (`reason`, `count`,
   * `total`).  0: no warnings.
   */
  g_object_class_install_property (
      gobject_class, PROP_WARNING_INTERVAL,
      g_param_spec_uint (
          "warning-interval", "Warning interval",
          "Post a WARNING on the bus at the first buffer dropped for each "
          "reason, then at most one per reason per this many ms (of the "
          "pipeline clock), with the count since the last one (0: none)",
          0, G_MAXUINT, GST_MCSEC_DEFAULT_WARNING_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstMcsecEnc:stats-interval:
   *
   * Post the `stats` structure as an element message every this many ms
   * of the pipeline clock while PLAYING, from the clock's thread (a stream
   * that stops keeps reporting), and once after the end of the stream.
   * 0: never.
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint (
          "stats-interval", "Stats interval",
          "Post the 'stats' structure as an element message every this many "
          "ms of the pipeline clock while PLAYING, even when no buffer "
          "comes, and once at the end of the stream (0: never)",
          0, G_MAXUINT, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstMcsecEnc:stats:
   *
   * `application/x-mcsec-enc-stats`: `spi` (uint), `cipher` (string),
   * `sender-id` (uint), `packets` (guint64, protected), `bytes-in` and
   * `bytes-out` (guint64), `next-counter` (guint64, the counter of the next
   * packet), `dropped` (guint64, buffers not sent) and by reason
   * `dropped-hard-limit`, `dropped-counter-exhausted`,
   * `dropped-reservation-exhausted`, `dropped-payload-too-long`,
   * `dropped-not-sender` (a feedback member's buffer that is not RTCP).
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS,
      g_param_spec_boxed (
          "stats", "Statistics",
          "application/x-mcsec-enc-stats: spi, cipher, sender-id, packets, "
          "bytes-in, bytes-out, next-counter, dropped, dropped-hard-limit, "
          "dropped-counter-exhausted, dropped-reservation-exhausted, "
          "sam-signed, sam-carriers, "
          "dropped-payload-too-long, dropped-not-sender",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstMcsecEnc::soft-limit:
   * @spi: the SA
   *
   * The SA crossed its soft packet limit: time to rekey.
   */
  signals[SIGNAL_SOFT_LIMIT] =
      g_signal_new ("soft-limit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * GstMcsecEnc::hard-limit:
   * @spi: the SA
   *
   * The SA reached its hard limit (or its counter space): buffers are
   * dropped until a new key is set.
   */
  signals[SIGNAL_HARD_LIMIT] =
      g_signal_new ("hard-limit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * GstMcsecEnc::set-key:
   * @spi: the new SA's SPI
   * @cipher: cipher nick, e.g. "aes-128-gcm"
   * @key: key material
   *
   * Switch to a new SA atomically; the next buffer uses it.  Returns FALSE
   * for an unknown cipher.  (mcseckeysrc, and applications, rekey with it.)
   */
  signals[SIGNAL_SET_KEY] = g_signal_new_class_handler (
      "set-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_enc_set_key), NULL, NULL, NULL, G_TYPE_BOOLEAN, 3,
      G_TYPE_UINT, G_TYPE_STRING, GST_TYPE_BUFFER);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (
      element_class, "mcsec encoder", "Filter/Network/Encryptor",
      "Protects datagrams as ESP packets of a multicast group SA",
      "The mcsec authors");
  gst_element_class_add_static_metadata (element_class,
                                         GST_ELEMENT_METADATA_DOC_URI,
                                         GST_MCSEC_DOC_URI ("mcsecenc"));
}

static void
gst_mcsec_enc_init (GstMcsecEnc *self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_mcsec_enc_chain);
  gst_pad_set_chain_list_function (self->sinkpad, gst_mcsec_enc_chain_list);
  gst_pad_set_event_function (self->sinkpad, gst_mcsec_enc_sink_event);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->spi = GST_MCSEC_DEFAULT_SPI;
  self->cipher = GST_MCSEC_DEFAULT_CIPHER;
  self->sender_id_bits = MCSEC_SENDER_ID_BITS_DEFAULT;
  self->sam_scheme = MCSEC_SAM_BLOCK;
  self->sam_block_size = MCSEC_SAM_BLOCK_DEFAULT;
  self->sam_block_time = DEFAULT_SAM_BLOCK_TIME;
  self->slot = -1;
  g_cond_init (&self->key_cond);
  self->warning_interval = GST_MCSEC_DEFAULT_WARNING_INTERVAL;
  gst_mcsec_drop_warnings_init (&self->drops, self->warning_interval);
  gst_mcsec_drop_warnings_restart (&self->drops);
}
