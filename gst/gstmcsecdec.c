/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
/**
 * SECTION:element-mcsecdec
 * @title: mcsecdec
 * @see_also: mcsecenc
 *
 * mcsecdec verifies, decrypts and replay-checks ESP packets of one or more
 * group SAs and pushes the datagrams they carry.  Packets from many senders
 * arrive interleaved on one SPI; each sender has its own replay window.
 *
 * A packet that fails (integrity, replay, unknown SPI, malformed, past the
 * hard limit, ...) is dropped and counted by reason in `stats`, overall,
 * per SPI and per sender; it never becomes a pipeline error, so nobody can
 * stop the stream by sending garbage.  Drops are reported on the bus as
 * WARNING messages, rate-limited per reason (`warning-interval`), and
 * logged at DEBUG level (the first of each reason at WARNING).  With
 * `stats-interval` the element also posts its `stats` as element messages.
 *
 * Keys: `key`, `spi` and `cipher` describe one SA.  Setting them again while
 * PLAYING adds the new SA and keeps the previous one (a hitless rekey: both
 * are accepted until the next change or `remove-key`).  The `add-key`,
 * `remove-key` and `clear-keys` action signals manage any number of SAs,
 * and `request-key` asks the application for the key of an unknown SPI.
 *
 * Output caps: the `caps` property, or else fixed caps that downstream
 * asks for (a capsfilter after mcsecdec); with neither the element posts
 * an error naming `caps`.
 *
 * Decryption happens in place when the incoming buffer is writable (as
 * udpsrc's are); the element adds no latency.
 *
 * ## Example pipelines
 * |[
 * gst-launch-1.0 udpsrc port=5004 caps=application/x-mcsec ! \
 *     mcsecdec key-file=group.key spi=0x1000 \
 *       caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96"
 * ! \ rtpjitterbuffer ! rtpvp8depay ! vp8dec ! videoconvert ! autovideosink
 * ]| Receives the stream of the mcsecenc example.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmcsecelement.h"
#include <openssl/x509.h>

#include "gstmcsecdec-private.h"
#include "gstmcsecmembership.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

/* at most this many unknown SPIs are asked about with request-key */
#define MAX_REQUESTED_SPIS 64
/* an SPI is asked about again after this long, and an entry this old
 * makes room for another: a flood of random SPIs silences request-key
 * only while it lasts */
#define REQUEST_RETRY (10 * GST_SECOND)

/* the reasons a receiver drops a packet, in stats order */
static const mcsec_status_t drop_reasons[] = {
    MCSEC_ERR_TOO_SHORT,
    MCSEC_ERR_TOO_LONG,
    MCSEC_ERR_MALFORMED,
    MCSEC_ERR_UNKNOWN_SPI,
    MCSEC_ERR_AUTH,
    MCSEC_ERR_BAD_PADDING,
    MCSEC_ERR_REPLAY,
    MCSEC_ERR_TOO_OLD,
    MCSEC_ERR_TOO_MANY_SENDERS,
    MCSEC_ERR_HARD_LIMIT,
    /* sam-policy=required: what the source check gave up or refused */
    MCSEC_ERR_SIGNATURE,
    MCSEC_ERR_UNVERIFIABLE,
    MCSEC_ERR_UNSIGNED,
    /* a feedback member's datagram that is not RTCP */
    MCSEC_ERR_NOT_SENDER,
    /* stream=rtp given RTCP, or stream=rtcp given something else */
    MCSEC_ERR_WRONG_STREAM,
};

/* stream: what the decoder passes on (mcsecrtpdec sets its children) */

#define GST_TYPE_MCSEC_DEC_STREAM (stream_get_type ())
static GType
stream_get_type (void)
{
  static gsize type;
  static const GEnumValue values[] = {
      {STREAM_ANY, "Any datagram", "any"},
      {STREAM_RTP, "RTP only (no RTCP: RFC 5761's demultiplexing)", "rtp"},
      {STREAM_RTCP, "RTCP compound packets only", "rtcp"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecDecStream", values);
    g_once_init_leave (&type, t);
  }
  return (GType)type;
}

#define N_DROP_REASONS G_N_ELEMENTS (drop_reasons)

enum {
  PROP_0,
  PROP_KEY,
  PROP_KEY_FILE,
  PROP_SPI,
  PROP_CIPHER,
  PROP_SENDER_ID_BITS,
  PROP_REPLAY_WINDOW,
  PROP_SA_TYPE,
  PROP_ESN,
  PROP_SPI_PER_SENDER,
  PROP_CAPS,
  PROP_SAM_POLICY,
  PROP_SENDER_KEYS,
  PROP_SAM_MAX_HOLD,
  PROP_SAM_MAX_LATENCY,
  PROP_WARNING_INTERVAL,
  PROP_STATS_INTERVAL,
  PROP_STREAM,
  PROP_STATS,
};

enum {
  SIGNAL_REQUEST_KEY,
  SIGNAL_ADD_KEY,
  SIGNAL_REMOVE_KEY,
  SIGNAL_CLEAR_KEYS,
  SIGNAL_ADD_SENDER_KEY,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (MCSEC_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_mcsec_dec_parent_class parent_class
G_DEFINE_TYPE (GstMcsecDec, gst_mcsec_dec, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (mcsecdec, "mcsecdec", GST_RANK_NONE,
                                       GST_TYPE_MCSEC_DEC,
                                       gst_mcsec_element_init (plugin));

static void
sa_stats_free (gpointer p)
{
  SaStats *s = p;
  g_hash_table_unref (s->senders);
  g_free (s);
}

static gboolean remove_sa (GstMcsecDec *self, guint32 spi);

static gboolean
feedback_of_spi (gpointer key, gpointer value, gpointer spi)
{
  const gint64 *id = key;

  (void)value;
  return (guint32)((guint64)id[0] >> 32) == GPOINTER_TO_UINT (spi);
}

/* Called with the object lock: the SA's feedback members are forgotten. */
static void
forget_feedback (GstMcsecDec *self, guint32 spi)
{
  if (g_hash_table_size (self->feedback_ids))
    g_hash_table_foreach_remove (self->feedback_ids, feedback_of_spi,
                                 GUINT_TO_POINTER (spi));
}

/* RFC 5761 section 4: a second byte of 192-223 is RTCP's (a packet type),
 * never RTP's. */
static gboolean
looks_rtcp (const guint8 *data, gsize len)
{
  return len >= 2 && data[1] >= 192 && data[1] <= 223;
}

/* Called with the object lock, for a packet ESP accepted (out: its
 * payload): MCSEC_OK, or why its datagram may not go on.  A feedback
 * member's Sender-ID sends RTCP only (NOT_SENDER); stream=rtp takes no
 * RTCP and stream=rtcp nothing else (WRONG_STREAM).  Source data is looked
 * through without being verified: what passes still has its source
 * checked after.  A carrier (no datagram) carries signatures only. */
static mcsec_status_t
datagram_permitted (GstMcsecDec *self, GstBuffer *out,
                    const mcsec_rx_info_t *info)
{
  gint64 key = (gint64)(((guint64)info->spi << 32) | info->sender_id);
  gboolean feedback = g_hash_table_size (self->feedback_ids) &&
                      g_hash_table_contains (self->feedback_ids, &key);
  mcsec_status_t st = MCSEC_OK;
  const guint8 *data;
  GstMapInfo map;
  size_t off = 0, dlen = 0;

  if ((!feedback && self->stream == STREAM_ANY) ||
      info->next_header == MCSEC_NEXT_HEADER_DUMMY)
    return MCSEC_OK;
  if (!gst_buffer_map (out, &map, GST_MAP_READ))
    return MCSEC_ERR_MALFORMED;
  if (info->next_header == MCSEC_NEXT_HEADER_SAM) {
    if (mcsec_sam_locate (map.data, map.size, &off, &dlen) != MCSEC_OK) {
      gst_buffer_unmap (out, &map);
      return feedback ? MCSEC_ERR_NOT_SENDER : MCSEC_OK; /* sam_filter's */
    }
  } else if (info->next_header == MCSEC_NEXT_HEADER_DATAGRAM) {
    dlen = map.size;
  } else {
    gst_buffer_unmap (out, &map);
    return feedback ? MCSEC_ERR_NOT_SENDER : MCSEC_OK;
  }
  data = map.data + off;
  if (dlen > 0) {
    if (feedback && !gst_mcsec_is_rtcp (data, dlen))
      st = MCSEC_ERR_NOT_SENDER;
    else if ((self->stream == STREAM_RTP && looks_rtcp (data, dlen)) ||
             (self->stream == STREAM_RTCP && !gst_mcsec_is_rtcp (data, dlen)))
      st = MCSEC_ERR_WRONG_STREAM;
  }
  gst_buffer_unmap (out, &map);
  return st;
}

/* Called with the object lock.  Takes ownership of sa. */
static gboolean
add_sa (GstMcsecDec *self, mcsec_sa_t *sa)
{
  guint32 spi = mcsec_sa_spi (sa);
  SaStats *stats;

  /* the key in use again changes nothing: the SA keeps its replay windows
   * (a new SA would accept every old packet once more) */
  if (mcsec_sa_same_key (mcsec_sadb_lookup (self->db, spi), sa)) {
    mcsec_sa_free (sa);
    g_hash_table_remove (self->requested, GUINT_TO_POINTER (spi));
    return TRUE;
  }
  /* another key for an SPI we hold replaces it */
  if (mcsec_sadb_lookup (self->db, spi) != NULL)
    remove_sa (self, spi);
  if (mcsec_sadb_add (self->db, sa) != MCSEC_OK) {
    mcsec_sa_free (sa);
    return FALSE;
  }
  stats = g_new0 (SaStats, 1);
  stats->cipher = mcsec_sa_suite (sa);
  stats->senders = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_hash_table_insert (self->sa_stats, GUINT_TO_POINTER (spi), stats);
  self->last_sa = NULL;
  g_hash_table_remove (self->requested, GUINT_TO_POINTER (spi));
  GST_INFO_OBJECT (self, "added SA 0x%08x (%s)", spi,
                   mcsec_suite_name (stats->cipher));
  return TRUE;
}

/* Called with the object lock. */
static gboolean
remove_sa (GstMcsecDec *self, guint32 spi)
{
  if (mcsec_sadb_remove (self->db, spi) != MCSEC_OK)
    return FALSE;
  g_hash_table_remove (self->sa_stats, GUINT_TO_POINTER (spi));
  self->last_sa = NULL;
  forget_feedback (self, spi);
  /* sender keys bound to this SA go with it */
  mcsec_sam_verifier_retain (self->verifier, spi, NULL, 0);
  GST_INFO_OBJECT (self, "removed SA 0x%08x", spi);
  return TRUE;
}

/* Called with the object lock: apply key/spi/cipher properties.  The SA
 * they described before stays until the next change (rekey overlap). */
static gboolean
apply_settings (GstMcsecDec *self, gchar **error)
{
  mcsec_sa_t *sa;

  self->settings_changed = FALSE;
  if (self->key.len == 0)
    return TRUE; /* keys come from add-key / request-key */
  sa =
      gst_mcsec_make_sa (self->spi, self->cipher, &self->key,
                         self->sender_id_bits, self->replay_window, 0, 0,
                         self->sa_type, self->esn, self->spi_per_sender, error);
  if (sa == NULL)
    return FALSE;
  if (self->prev_prop_spi && self->prev_prop_spi != self->spi &&
      self->prev_prop_spi != self->prop_spi)
    remove_sa (self, self->prev_prop_spi);
  if (self->prop_spi != self->spi)
    self->prev_prop_spi = self->prop_spi;
  self->prop_spi = self->spi;
  return add_sa (self, sa);
}

static gboolean
gst_mcsec_dec_add_key (GstMcsecDec *self, guint spi, const gchar *cipher,
                       GstBuffer *key)
{
  mcsec_suite_t suite = mcsec_suite_from_name (cipher);
  GstMcsecKey k = {{0}, 0};
  mcsec_sa_t *sa = NULL;
  gboolean ok = FALSE;

  if (suite == 0 || !gst_mcsec_key_set_buffer (&k, key)) {
    GST_WARNING_OBJECT (self, "add-key: unknown cipher '%s' or bad key",
                        GST_STR_NULL (cipher));
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  {
    mcsec_sa_config_t cfg = {0};
    mcsec_status_t st;
    cfg.spi = spi;
    cfg.suite = suite;
    cfg.key = k.bytes;
    cfg.key_len = k.len;
    cfg.sender_id_bits = (uint8_t)self->sender_id_bits;
    cfg.replay_window = self->replay_window;
    cfg.type = self->sa_type;
    cfg.esn = self->esn;
    cfg.spi_per_sender = self->spi_per_sender;
    st = mcsec_sa_new (&cfg, &sa);
    if (st)
      GST_WARNING_OBJECT (self, "add-key 0x%08x: %s", spi,
                          mcsec_status_message (st));
    else
      ok = add_sa (self, sa);
  }
  GST_OBJECT_UNLOCK (self);
  gst_mcsec_key_clear (&k);
  return ok;
}

static gboolean
gst_mcsec_dec_remove_key (GstMcsecDec *self, guint spi)
{
  gboolean ok;

  GST_OBJECT_LOCK (self);
  ok = remove_sa (self, spi);
  if (spi == self->prop_spi)
    self->prop_spi = 0;
  if (spi == self->prev_prop_spi)
    self->prev_prop_spi = 0;
  GST_OBJECT_UNLOCK (self);
  return ok;
}

static void
gst_mcsec_dec_clear_keys (GstMcsecDec *self)
{
  GST_OBJECT_LOCK (self);
  mcsec_sadb_free (self->db);
  if (mcsec_sadb_new (&self->db) != MCSEC_OK)
    self->db = NULL;
  g_hash_table_remove_all (self->sa_stats);
  self->last_sa = NULL;
  g_hash_table_remove_all (self->feedback_ids);
  self->prop_spi = self->prev_prop_spi = 0;
  /* the membership's SAs come back at the next packet */
  g_hash_table_remove_all (self->member_spis);
  self->msa_dirty = TRUE;
  GST_OBJECT_UNLOCK (self);
}

/* Not under the lock: ask the application for an unknown SPI's key.
 * Returns TRUE when an SA for it now exists. */
static gboolean
requested_expired (gpointer key, gpointer value, gpointer now)
{
  (void)key;
  return *(GstClockTime *)now >= *(GstClockTime *)value + REQUEST_RETRY;
}

/* Called with the object lock: may the application be asked about spi
 * now?  Then it is noted (with the time).  Once per SPI per REQUEST_RETRY,
 * for at most MAX_REQUESTED_SPIS SPIs in that time. */
static gboolean
may_request (GstMcsecDec *self, guint32 spi, GstClockTime now)
{
  GstClockTime *asked =
      g_hash_table_lookup (self->requested, GUINT_TO_POINTER (spi));

  if (asked && now < *asked + REQUEST_RETRY)
    return FALSE;
  if (asked == NULL &&
      g_hash_table_size (self->requested) >= MAX_REQUESTED_SPIS &&
      g_hash_table_foreach_remove (self->requested, requested_expired, &now) ==
          0)
    return FALSE;
  asked = g_new (GstClockTime, 1);
  *asked = now;
  g_hash_table_replace (self->requested, GUINT_TO_POINTER (spi), asked);
  return TRUE;
}

static gboolean
request_key (GstMcsecDec *self, guint32 spi)
{
  GstCaps *caps = NULL;
  const GstStructure *s;
  const gchar *cipher;
  GstBuffer *key = NULL;
  gboolean ok = FALSE;

  GST_OBJECT_LOCK (self);
  if (!may_request (self, spi, gst_mcsec_element_now (GST_ELEMENT (self)))) {
    GST_OBJECT_UNLOCK (self);
    return FALSE;
  }
  GST_OBJECT_UNLOCK (self);

  g_signal_emit (self, signals[SIGNAL_REQUEST_KEY], 0, spi, &caps);
  if (caps == NULL)
    return FALSE;
  if (gst_caps_get_size (caps) == 1) {
    s = gst_caps_get_structure (caps, 0);
    cipher = gst_structure_get_string (s, "cipher");
    if (cipher && gst_structure_get (s, "key", GST_TYPE_BUFFER, &key, NULL)) {
      ok = gst_mcsec_dec_add_key (self, spi, cipher, key);
      gst_buffer_unref (key);
    }
  }
  if (!ok)
    GST_WARNING_OBJECT (self,
                        "request-key 0x%08x: the answer needs "
                        "'cipher' (string) and 'key' (buffer)",
                        spi);
  gst_caps_unref (caps);
  return ok;
}

static void
count_final (Counters *c, mcsec_status_t st)
{
  if (st == MCSEC_OK) {
    c->accepted++;
  } else {
    c->dropped++;
    c->dropped_by[st]++;
  }
}

/* Called with the object lock: a datagram's final outcome (accepted, or
 * dropped for st), overall, for its SA and for its sender.  `arrived`: its
 * arrival is counted here too (else it was, by account()). */
/* Called with the object lock: the stats of SA spi, or NULL. */
static inline SaStats *
sa_stats_of (GstMcsecDec *self, guint32 spi)
{
  if (self->last_sa == NULL || self->last_spi != spi) {
    self->last_sa =
        g_hash_table_lookup (self->sa_stats, GUINT_TO_POINTER (spi));
    self->last_spi = spi;
  }
  return self->last_sa;
}

void
gst_mcsec_dec_count_outcome_of (GstMcsecDec *self, guint32 spi,
                                guint32 sender_id, guint64 counter,
                                mcsec_status_t st, gboolean arrived)
{
  SaStats *sa = sa_stats_of (self, spi);
  SenderStats *snd = NULL;
  gboolean created = FALSE;

  if (sa) {
    snd = g_hash_table_lookup (sa->senders, GUINT_TO_POINTER (sender_id));
    /* a sender gets its own entry only once a packet of it was accepted,
     * so garbage cannot grow this table */
    if (snd == NULL && st == MCSEC_OK) {
      snd = g_new0 (SenderStats, 1);
      g_hash_table_insert (sa->senders, GUINT_TO_POINTER (sender_id), snd);
      created = TRUE;
    }
  }
  if (arrived) {
    self->total.received++;
    if (sa)
      sa->c.received++;
  }
  if (snd && (arrived || created))
    snd->c.received++;
  count_final (&self->total, st);
  if (st != MCSEC_OK)
    gst_mcsec_drop_note_packet (&self->drops, st, spi, sender_id);
  if (sa)
    count_final (&sa->c, st);
  if (snd) {
    count_final (&snd->c, st);
    if (st == MCSEC_OK && counter > snd->highest_counter)
      snd->highest_counter = counter;
  }
}

/* Called with the object lock.  Account for one packet's ESP outcome; a
 * tentative packet (its source to be checked) gets its final count from
 * count_outcome_of() later. */
static void
account (GstMcsecDec *self, mcsec_status_t st, const mcsec_rx_info_t *info,
         gboolean tentative)
{
  if (st == MCSEC_OK && tentative) {
    SaStats *sa = sa_stats_of (self, info->spi);
    SenderStats *snd = sa ? g_hash_table_lookup (
                                sa->senders, GUINT_TO_POINTER (info->sender_id))
                          : NULL;
    self->total.received++;
    if (sa)
      sa->c.received++;
    if (snd)
      snd->c.received++;
    return;
  }
  if (!info->has_header) {
    self->total.received++;
    count_final (&self->total, st);
    if (st != MCSEC_OK)
      gst_mcsec_drop_note (&self->drops, st);
  } else {
    gst_mcsec_dec_count_outcome_of (self, info->spi, info->sender_id,
                                    info->counter, st, TRUE);
  }
  if (st == MCSEC_OK)
    return;
  if (!self->warned[st]) {
    self->warned[st] = TRUE;
    GST_WARNING_OBJECT (
        self,
        "dropping packets: %s (first seen: spi 0x%08x"
        " sender-id %u); further drops are logged at DEBUG level and "
        "counted in stats",
        mcsec_status_message (st), info->spi, info->sender_id);
  } else {
    GST_DEBUG_OBJECT (self,
                      "dropped packet: %s (spi 0x%08x sender-id %u "
                      "counter %" G_GUINT64_FORMAT ")",
                      mcsec_status_name (st), info->spi, info->sender_id,
                      info->counter);
  }
}

/* A datagram that came behind a UDP header (Next Header 17): the header's
 * Length must be the payload's, and goes; info then says "datagram". */
static mcsec_status_t
strip_inner_udp (GstBuffer *out, mcsec_rx_info_t *info)
{
  guint8 udp[MCSEC_UDP_HEADER_LEN];

  if (info->payload_len < MCSEC_UDP_HEADER_LEN ||
      gst_buffer_extract (out, 0, udp, sizeof (udp)) != sizeof (udp) ||
      GST_READ_UINT16_BE (udp + 4) != info->payload_len)
    return MCSEC_ERR_MALFORMED;
  info->payload_len -= MCSEC_UDP_HEADER_LEN;
  info->next_header = MCSEC_NEXT_HEADER_DATAGRAM;
  gst_mcsec_buffer_trim (out, MCSEC_UDP_HEADER_LEN, info->payload_len);
  return MCSEC_OK;
}

/* Called with the object lock: TRUE when the packet (data, size) is long
 * enough to be ESP and its SPI has no SA: *spi says which. */
static gboolean
spi_unknown (GstMcsecDec *self, const guint8 *data, gsize size, guint32 *spi)
{
  guint32 v;

  if (size < MCSEC_ESP_MIN_PACKET_LEN)
    return FALSE;
  v = mcsec_packet_spi (data, size);
  if (v == 0 || mcsec_sadb_lookup (self->db, v) != NULL)
    return FALSE;
  *spi = v;
  return TRUE;
}

/* Called with the object lock.  Consumes buf; returns the datagram, or
 * NULL when the packet was dropped (and counted).  With ask, a packet for
 * an SPI (not 0) that has no SA is neither consumed nor counted: NULL, and
 * *ask_spi (0 before) says whom to ask (request-key) before the packet is
 * tried again. */
static GstBuffer *
unprotect_one (GstMcsecDec *self, GstBuffer *buf, gboolean ask,
               guint32 *ask_spi)
{
  GstMcsecMap m, om;
  GstBuffer *out = NULL;
  mcsec_rx_info_t info = {0};
  mcsec_status_t st = MCSEC_ERR_INVALID_ARG;
  /* a receiver that requires sources moves no replay window before the
   * source is verified: an insider cannot make another sender's genuine
   * packets "too old" */
  gboolean tentative = self->sam_policy == GST_MCSEC_SAM_REQUIRED;

  if (self->db == NULL) {
    st = MCSEC_ERR_UNKNOWN_SPI;
  } else if (gst_buffer_is_writable (buf) && gst_buffer_n_memory (buf) == 1 &&
             gst_mcsec_map (buf, &m, GST_MAP_READWRITE)) {
    /* in place: the datagram ends up at offset 16 of the same memory */
    guint8 *data = m.info.data;
    gsize size = m.info.size;
    gsize room = size > MCSEC_ESP_HEADER_LEN ? size - MCSEC_ESP_HEADER_LEN : 0;
    if (ask && spi_unknown (self, data, size, ask_spi)) {
      gst_mcsec_unmap (buf, &m);
      return NULL;
    }
    st = tentative
             ? mcsec_sadb_unprotect_tentative (self->db, data, size,
                                               data + MCSEC_ESP_HEADER_LEN,
                                               room, &info)
             : mcsec_sadb_unprotect (self->db, data, size,
                                     data + MCSEC_ESP_HEADER_LEN, room, &info);
    gst_mcsec_unmap (buf, &m);
    if (st == MCSEC_OK) {
      gst_mcsec_buffer_trim (buf, MCSEC_ESP_HEADER_LEN, info.payload_len);
      out = buf;
      buf = NULL;
    }
  } else if (gst_mcsec_map (buf, &m, GST_MAP_READ)) {
    /* shared buffer (a tee, a buffer list): into a pool buffer */
    if (ask && spi_unknown (self, m.info.data, m.info.size, ask_spi)) {
      gst_mcsec_unmap (buf, &m);
      return NULL;
    }
    out = gst_mcsec_buffer_new (self->pool, m.info.size);
    if (out && gst_mcsec_map (out, &om, GST_MAP_WRITE)) {
      st = tentative
               ? mcsec_sadb_unprotect_tentative (self->db, m.info.data,
                                                 m.info.size, om.info.data,
                                                 om.info.size, &info)
               : mcsec_sadb_unprotect (self->db, m.info.data, m.info.size,
                                       om.info.data, om.info.size, &info);
      gst_mcsec_unmap (out, &om);
    } else {
      st = MCSEC_ERR_NO_MEMORY;
    }
    gst_mcsec_unmap (buf, &m);
    if (st == MCSEC_OK) {
      gst_mcsec_buffer_trim (out, 0, info.payload_len);
      gst_mcsec_copy_stamps (out, buf);
    } else if (out) {
      gst_buffer_unref (out);
      out = NULL;
    }
  }
  if (buf)
    gst_buffer_unref (buf);
  /* Next Header 17: a datagram behind a UDP header (wire-format.md 10.1),
   * from here on a datagram as any other */
  if (st == MCSEC_OK &&
      G_UNLIKELY (info.next_header == MCSEC_NEXT_HEADER_UDP) &&
      (st = strip_inner_udp (out, &info)) != MCSEC_OK) {
    gst_buffer_unref (out);
    out = NULL;
  }
  /* a feedback member may send RTCP only (its media would be taken for a
   * sender's); an RTP stream's decoder takes no RTCP and the reverse */
  if (st == MCSEC_OK &&
      G_UNLIKELY (self->stream != STREAM_ANY ||
                  g_hash_table_size (self->feedback_ids)) &&
      (st = datagram_permitted (self, out, &info)) != MCSEC_OK) {
    gst_buffer_unref (out);
    out = NULL;
  }
  account (self, st, &info, tentative);
  if (st)
    return NULL;
  if (info.next_header == MCSEC_NEXT_HEADER_DUMMY) {
    if (tentative)
      gst_mcsec_dec_count_outcome_of (self, info.spi, info.sender_id,
                                      info.counter, MCSEC_OK, FALSE);
    self->dummies++;
    gst_buffer_unref (out);
    return NULL;
  }
  return gst_mcsec_dec_sam_filter (self, out, &info);
}

/* Not under the lock.  Send our caps before the first datagram. */
static gboolean
ensure_caps (GstMcsecDec *self)
{
  GstCaps *caps;

  GST_OBJECT_LOCK (self);
  if (self->caps_sent) {
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  caps = self->caps ? gst_caps_ref (self->caps) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (caps == NULL) {
    GstCaps *peer = gst_pad_peer_query_caps (self->srcpad, NULL);
    if (peer && gst_caps_is_fixed (peer))
      caps = peer;
    else if (peer)
      gst_caps_unref (peer);
  }
  if (caps == NULL) {
    GST_ELEMENT_ERROR (
        self, CORE, NEGOTIATION,
        ("Unknown output caps: set the 'caps' property (for example "
         "caps=\"application/x-rtp,media=video,clock-rate=90000,"
         "encoding-name=VP8\") or put a capsfilter after mcsecdec."),
        (NULL));
    return FALSE;
  }
  if (!gst_pad_push_event (self->srcpad, gst_event_new_caps (caps))) {
    gst_caps_unref (caps);
    GST_ELEMENT_ERROR (
        self, CORE, NEGOTIATION,
        ("Downstream refused the caps set with the 'caps' property."), (NULL));
    return FALSE;
  }
  gst_caps_unref (caps);
  GST_OBJECT_LOCK (self);
  self->caps_sent = TRUE;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* Not under the lock: push what release_held handed over. */
static GstFlowReturn
push_ready (GstMcsecDec *self)
{
  GstBufferList *ready;

  GST_OBJECT_LOCK (self);
  ready = self->ready;
  self->ready = NULL;
  GST_OBJECT_UNLOCK (self);
  if (ready == NULL)
    return GST_FLOW_OK;
  if (!ensure_caps (self)) {
    gst_buffer_list_unref (ready);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  return gst_pad_push_list (self->srcpad, ready);
}

/* Called with the object lock: install what the membership holds, remove
 * what it no longer holds, trust its senders' keys. */
static void
sync_membership (GstMcsecDec *self)
{
  mcsec_msa_t *msa = gst_mcsec_membership_get_msa (self->link.membership);
  GHashTableIter it;
  gpointer key;

  self->msa_dirty = FALSE;
  if (self->db == NULL)
    return;
  for (gsize i = 0; msa && i < msa->n_sas; i++) {
    mcsec_sa_config_t cfg = {0};
    mcsec_sa_t *sa = NULL;
    guint32 spi = msa->sas[i].spi;
    if (g_hash_table_contains (self->member_spis, GUINT_TO_POINTER (spi)))
      continue;
    cfg.spi = spi;
    cfg.suite = msa->sas[i].suite;
    cfg.key = msa->sas[i].key;
    cfg.key_len = msa->sas[i].key_len;
    cfg.sender_id_bits = msa->sender_id_bits;
    /* the group's SAs are blocks: one SA takes every sender's SPI */
    cfg.spi_per_sender = msa->spi_per_sender;
    cfg.replay_window = self->replay_window;
    if (mcsec_sa_new (&cfg, &sa) == MCSEC_OK && add_sa (self, sa))
      g_hash_table_add (self->member_spis, GUINT_TO_POINTER (spi));
    else
      GST_WARNING_OBJECT (self, "cannot install SA 0x%08x", spi);
  }
  g_hash_table_iter_init (&it, self->member_spis);
  while (g_hash_table_iter_next (&it, &key, NULL)) {
    gboolean held = FALSE;
    for (gsize i = 0; msa && i < msa->n_sas; i++)
      held |= msa->sas[i].spi == GPOINTER_TO_UINT (key);
    if (!held) {
      remove_sa (self, GPOINTER_TO_UINT (key));
      g_hash_table_iter_remove (&it);
    }
  }
  /* each SA trusts the senders the controller lists with it, and their
   * feedback members, from whom it takes RTCP only */
  if (msa) {
    mcsec_status_t st = mcsec_msa_bind_all_senders (msa, self->verifier);
    if (st)
      GST_WARNING_OBJECT (self, "a sender's key in the membership: %s",
                          mcsec_status_message (st));
    for (gsize i = 0; i < msa->n_sas; i++) {
      if (!msa->sas[i].listed)
        continue; /* it keeps the feedback members it had */
      forget_feedback (self, msa->sas[i].spi);
      for (gsize j = 0; j < msa->n_senders; j++) {
        gint64 *id;
        if (!msa->senders[j].feedback)
          continue;
        id = g_new (gint64, 1);
        *id = (gint64)(((guint64)msa->sas[i].spi << 32) |
                       msa->senders[j].sender_id);
        g_hash_table_add (self->feedback_ids, id);
      }
    }
  }
  /* a group whose senders sign: check them unless told otherwise */
  if (msa && msa->sam && !self->sam_policy_set)
    self->sam_policy = GST_MCSEC_SAM_REQUIRED;
  mcsec_msa_free (msa);
}

/* Called with the object lock, before it is released: the drop warnings
 * that are due go to warn (posted once unlocked).  Only a bit test unless
 * packets were dropped since the last warning. */
static inline void
collect_warnings (GstMcsecDec *self, GstMcsecDropWarningList *warn)
{
  if (G_UNLIKELY (self->drops.pending))
    gst_mcsec_drop_warnings_collect (&self->drops, GST_ELEMENT (self),
                                     self->total.dropped_by, FALSE, warn);
}

/* Called with the object lock (released and taken again around the
 * request-key signal and an error post).  Process one buffer (consumed);
 * for an SPI no SA has, ask the application first (request-key). */
static GstBuffer *
process_locked (GstMcsecDec *self, GstBuffer *buf,
                GstMcsecDropWarningList *warn)
{
  guint32 spi = 0;
  GstBuffer *out;
  gchar *error = NULL;

  if (G_UNLIKELY (self->settings_changed) && !apply_settings (self, &error)) {
    GST_OBJECT_UNLOCK (self);
    gst_mcsec_post_settings_error (GST_ELEMENT (self), error);
    gst_buffer_unref (buf);
    GST_OBJECT_LOCK (self);
    return NULL;
  }
  if (self->link.membership) {
    /* keys come from the membership: no one to ask about other SPIs */
    if (self->msa_dirty)
      sync_membership (self);
    out = unprotect_one (self, buf, FALSE, NULL);
  } else if ((out = unprotect_one (self, buf, TRUE, &spi)) == NULL &&
             spi != 0) {
    /* not consumed: ask the application for the key, then try again */
    GST_OBJECT_UNLOCK (self);
    request_key (self, spi);
    GST_OBJECT_LOCK (self);
    out = unprotect_one (self, buf, FALSE, NULL);
  }
  collect_warnings (self, warn);
  return out;
}

static GstBuffer *
process (GstMcsecDec *self, GstBuffer *buf, GstMcsecDropWarningList *warn)
{
  GstBuffer *out;

  GST_OBJECT_LOCK (self);
  out = process_locked (self, buf, warn);
  GST_OBJECT_UNLOCK (self);
  return out;
}

/* What to check, per drop reason, in the bus warning. */
static const gchar *
drop_hint (mcsec_status_t st)
{
  switch (st) {
  case MCSEC_ERR_TOO_SHORT:
  case MCSEC_ERR_TOO_LONG:
  case MCSEC_ERR_MALFORMED:
    return "Not mcsec packets: another stream on this port, or a network "
           "that truncates them";
  case MCSEC_ERR_UNKNOWN_SPI:
    return "No key for that SPI: normal until the keys arrive; otherwise "
           "check 'spi' and the key against the sender's, or someone else's "
           "traffic reaches this port";
  case MCSEC_ERR_AUTH:
    return "A wrong key (check 'key' or 'key-file' and 'cipher' against the "
           "sender's), or tampered or corrupted packets";
  case MCSEC_ERR_BAD_PADDING:
    return "Authentic but damaged packets: a faulty sender";
  case MCSEC_ERR_REPLAY:
    return "Packets duplicated by the network, or replayed";
  case MCSEC_ERR_TOO_OLD:
    return "Packets reordered beyond 'replay-window', or replayed";
  case MCSEC_ERR_TOO_MANY_SENDERS:
    return "More senders on one SA than it tracks: split the group";
  case MCSEC_ERR_HARD_LIMIT:
    return "The SA's packet lifetime is used up: the senders must rekey";
  case MCSEC_ERR_SIGNATURE:
    return "Forged (by a group member) or damaged datagrams; check "
           "'sender-keys'";
  case MCSEC_ERR_UNSIGNED:
    return "sam-policy=required: the sender does not sign, or its public "
           "key is not in 'sender-keys'";
  case MCSEC_ERR_NOT_SENDER:
    return "A feedback member (mcseckeysrc role=feedback) sent something "
           "other than RTCP: its Sender-IDs may send feedback only";
  case MCSEC_ERR_WRONG_STREAM:
    return "RTCP on the RTP port, or the reverse: a datagram copied to the "
           "other port (the 'stream' property)";
  default:
    return "Counted in the 'stats' property";
  }
}

/* Not under the lock: post the drop warnings collected. */
static void
post_drop_warnings (GstMcsecDec *self, const GstMcsecDropWarningList *warn)
{
  guint64 latency;
  guint hold, interval;

  GST_OBJECT_LOCK (self);
  latency = self->sam_max_latency;
  hold = self->sam_max_hold;
  interval = self->warning_interval;
  GST_OBJECT_UNLOCK (self);
  for (guint i = 0; i < warn->n; i++) {
    gchar *hint = NULL;
    if (warn->w[i].reason == MCSEC_ERR_UNVERIFIABLE)
      hint = g_strdup_printf (
          "sam-max-latency is %" GST_TIME_FORMAT ", sam-max-hold %u "
          "datagrams: the sender's sam-block-time (or sam-block-size) may be "
          "too large for them, or the network lost the packets that carry "
          "signatures",
          GST_TIME_ARGS (latency), hold);
    gst_mcsec_post_drop_warning (
        GST_ELEMENT (self), GST_STREAM_ERROR, GST_STREAM_ERROR_DECRYPT,
        &warn->w[i], "packet", hint ? hint : drop_hint (warn->w[i].reason),
        interval);
    g_free (hint);
  }
}

static GstFlowReturn
gst_mcsec_dec_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstMcsecDec *self = GST_MCSEC_DEC (parent);
  GstMcsecDropWarningList warn;
  GstBuffer *out;

  (void)pad;
  warn.n = 0;
  out = process (self, buf, &warn);
  if (G_UNLIKELY (warn.n))
    post_drop_warnings (self, &warn);
  if (out == NULL)
    return push_ready (self);
  if (!ensure_caps (self)) {
    gst_buffer_unref (out);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  return gst_pad_push (self->srcpad, out);
}

/* Each buffer of the list is replaced by its datagram, or removed when
 * dropped; buffers nobody else holds are decrypted in place.  The object
 * lock is taken once for the list. */
typedef struct {
  GstMcsecDec *self;
  GstMcsecDropWarningList warn;
} ListProcess;

static gboolean
process_in_list (GstBuffer **buffer, guint idx, gpointer user_data)
{
  ListProcess *lp = user_data;

  (void)idx;
  *buffer = process_locked (lp->self, *buffer, &lp->warn);
  return TRUE;
}

static GstFlowReturn
gst_mcsec_dec_chain_list (GstPad *pad, GstObject *parent, GstBufferList *list)
{
  GstMcsecDec *self = GST_MCSEC_DEC (parent);
  ListProcess lp;

  (void)pad;
  lp.self = self;
  lp.warn.n = 0;
  list = gst_buffer_list_make_writable (list);
  GST_OBJECT_LOCK (self);
  gst_buffer_list_foreach (list, process_in_list, &lp);
  GST_OBJECT_UNLOCK (self);
  if (G_UNLIKELY (lp.warn.n))
    post_drop_warnings (self, &lp.warn);
  if (gst_buffer_list_length (list) == 0) {
    gst_buffer_list_unref (list);
    return push_ready (self);
  }
  if (!ensure_caps (self)) {
    gst_buffer_list_unref (list);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  return gst_pad_push_list (self->srcpad, list);
}

static gboolean
gst_mcsec_dec_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstMcsecDec *self = GST_MCSEC_DEC (parent);

  switch (GST_EVENT_TYPE (event)) {
  case GST_EVENT_CAPS:
    /* our output caps are not derived from ESP's: ours go out now */
    gst_event_unref (event);
    return ensure_caps (self);
  case GST_EVENT_SEGMENT:
    /* caps must precede the segment downstream */
    if (!ensure_caps (self)) {
      gst_event_unref (event);
      return FALSE;
    }
    break;
  case GST_EVENT_FLUSH_STOP:
    GST_OBJECT_LOCK (self);
    self->caps_sent = FALSE;
    gst_mcsec_dec_release_held (self, GST_CLOCK_TIME_NONE, TRUE);
    g_clear_pointer (&self->ready, gst_buffer_list_unref);
    GST_OBJECT_UNLOCK (self);
    break;
  case GST_EVENT_EOS: {
    GstMcsecDropWarningList warn;
    gboolean stats;
    warn.n = 0;
    /* the end: every pending source verdict is given now, and every drop
     * not reported yet */
    GST_OBJECT_LOCK (self);
    mcsec_sam_verifier_flush (self->verifier);
    gst_mcsec_dec_release_held (self, GST_CLOCK_TIME_NONE, TRUE);
    if (self->drops.pending)
      gst_mcsec_drop_warnings_collect (&self->drops, GST_ELEMENT (self),
                                       self->total.dropped_by, TRUE, &warn);
    stats = self->stats_timer.interval_ms != 0;
    GST_OBJECT_UNLOCK (self);
    push_ready (self);
    post_drop_warnings (self, &warn);
    if (stats)
      gst_mcsec_post_stats (GST_ELEMENT (self));
    break;
  }
  default:
    break;
  }
  return gst_pad_event_default (pad, parent, event);
}

static void
add_counters (GstStructure *s, const Counters *c)
{
  gst_structure_set (s, "received", G_TYPE_UINT64, c->received, "accepted",
                     G_TYPE_UINT64, c->accepted, "dropped", G_TYPE_UINT64,
                     c->dropped, NULL);
  for (guint i = 0; i < N_DROP_REASONS; i++) {
    gchar *name =
        g_strconcat ("dropped-", mcsec_status_name (drop_reasons[i]), NULL);
    gst_structure_set (s, name, G_TYPE_UINT64, c->dropped_by[drop_reasons[i]],
                       NULL);
    g_free (name);
  }
}

static void
add_sam_stats (GstStructure *s, const SamStats *st)
{
  gst_structure_set (s, "sam-verified", G_TYPE_UINT64, st->verified,
                     "sam-failed", G_TYPE_UINT64, st->failed,
                     "sam-unverifiable", G_TYPE_UINT64, st->unverifiable,
                     "sam-unsigned", G_TYPE_UINT64, st->unsigned_,
                     "sam-pending", G_TYPE_UINT64, st->pending, "sam-carriers",
                     G_TYPE_UINT64, st->carriers, NULL);
}

static GstStructure *
make_stats (GstMcsecDec *self)
{
  GstStructure *s = gst_structure_new_empty ("application/x-mcsec-dec-stats");
  GValue sas = G_VALUE_INIT;
  GHashTableIter it;
  gpointer key, value;

  g_value_init (&sas, GST_TYPE_ARRAY);
  GST_OBJECT_LOCK (self);
  add_counters (s, &self->total);
  gst_structure_set (s, "dummy", G_TYPE_UINT64, self->dummies, NULL);
  g_hash_table_iter_init (&it, self->sa_stats);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    SaStats *sa = value;
    GValue sv = G_VALUE_INIT, senders = G_VALUE_INIT;
    GstStructure *ss =
        gst_structure_new ("application/x-mcsec-sa-stats", "spi", G_TYPE_UINT,
                           GPOINTER_TO_UINT (key), "cipher", G_TYPE_STRING,
                           mcsec_suite_name (sa->cipher), NULL);
    GHashTableIter sit;
    gpointer skey, svalue;

    add_counters (ss, &sa->c);
    g_value_init (&senders, GST_TYPE_ARRAY);
    g_hash_table_iter_init (&sit, sa->senders);
    while (g_hash_table_iter_next (&sit, &skey, &svalue)) {
      SenderStats *snd = svalue;
      GValue v = G_VALUE_INIT;
      GstStructure *st = gst_structure_new (
          "application/x-mcsec-sender-stats", "sender-id", G_TYPE_UINT,
          GPOINTER_TO_UINT (skey), "highest-counter", G_TYPE_UINT64,
          snd->highest_counter, NULL);
      add_counters (st, &snd->c);
      g_value_init (&v, GST_TYPE_STRUCTURE);
      g_value_take_boxed (&v, st);
      gst_value_array_append_and_take_value (&senders, &v);
    }
    gst_structure_take_value (ss, "senders", &senders);
    g_value_init (&sv, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&sv, ss);
    gst_value_array_append_and_take_value (&sas, &sv);
  }
  add_sam_stats (s, &self->sam_total);
  gst_structure_set (s, "sam-hold-max-ns", G_TYPE_UINT64, self->hold_max_ns,
                     "sam-hold-avg-ns", G_TYPE_UINT64,
                     self->hold_count ? self->hold_sum_ns / self->hold_count
                                      : (guint64)0,
                     NULL);
  {
    GValue sam_senders = G_VALUE_INIT;
    g_value_init (&sam_senders, GST_TYPE_ARRAY);
    g_hash_table_iter_init (&it, self->sam_stats);
    while (g_hash_table_iter_next (&it, &key, &value)) {
      GValue v = G_VALUE_INIT;
      GstStructure *st = gst_structure_new (
          "application/x-mcsec-sam-sender-stats", "sender-id", G_TYPE_UINT,
          GPOINTER_TO_UINT (key), NULL);
      add_sam_stats (st, value);
      g_value_init (&v, GST_TYPE_STRUCTURE);
      g_value_take_boxed (&v, st);
      gst_value_array_append_and_take_value (&sam_senders, &v);
    }
    gst_structure_take_value (s, "sam-senders", &sam_senders);
  }
  GST_OBJECT_UNLOCK (self);
  gst_structure_take_value (s, "sas", &sas);
  return s;
}

static void
gst_mcsec_dec_set_property (GObject *object, guint prop_id, const GValue *value,
                            GParamSpec *pspec)
{
  GstMcsecDec *self = GST_MCSEC_DEC (object);
  GError *error = NULL;
  gboolean reset_timer = FALSE;

  GST_OBJECT_LOCK (self);
  /* replay window, Sender-ID width, caps and source settings are fixed
   * while the element runs */
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
    self->settings_changed = TRUE;
    break;
  case PROP_SPI:
    self->spi = g_value_get_uint (value);
    self->settings_changed = TRUE;
    break;
  case PROP_CIPHER:
    self->cipher = g_value_get_enum (value);
    self->settings_changed = TRUE;
    break;
  case PROP_SENDER_ID_BITS:
    self->sender_id_bits = g_value_get_uint (value);
    break;
  case PROP_REPLAY_WINDOW:
    self->replay_window = g_value_get_uint (value);
    break;
  case PROP_SA_TYPE:
    /* the SA made from the properties is made again */
    if (self->sa_type != (mcsec_sa_type_t)g_value_get_enum (value))
      self->settings_changed = TRUE;
    self->sa_type = g_value_get_enum (value);
    break;
  case PROP_ESN:
    if (self->esn != g_value_get_boolean (value))
      self->settings_changed = TRUE;
    self->esn = g_value_get_boolean (value);
    break;
  case PROP_SPI_PER_SENDER:
    if (self->spi_per_sender != g_value_get_boolean (value))
      self->settings_changed = TRUE;
    self->spi_per_sender = g_value_get_boolean (value);
    break;
  case PROP_SAM_POLICY:
    self->sam_policy = g_value_get_enum (value);
    self->sam_policy_set = TRUE;
    break;
  case PROP_SENDER_KEYS:
    g_free (self->sender_keys);
    self->sender_keys = g_value_dup_string (value);
    self->sender_keys_changed = TRUE;
    break;
  case PROP_SAM_MAX_HOLD:
    self->sam_max_hold = g_value_get_uint (value);
    break;
  case PROP_SAM_MAX_LATENCY:
    self->sam_max_latency = g_value_get_uint64 (value);
    break;
  case PROP_CAPS:
    gst_caps_replace (&self->caps, (GstCaps *)gst_value_get_caps (value));
    self->caps_sent = FALSE;
    break;
  case PROP_WARNING_INTERVAL:
    self->warning_interval = g_value_get_uint (value);
    gst_mcsec_drop_warnings_init (&self->drops, self->warning_interval);
    break;
  case PROP_STATS_INTERVAL:
    self->stats_timer.interval_ms = g_value_get_uint (value);
    reset_timer = TRUE;
    break;
  case PROP_STREAM:
    self->stream = (Stream)g_value_get_enum (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
  if (reset_timer)
    gst_mcsec_stats_timer_reset (GST_ELEMENT (self), &self->stats_timer);
}

static void
gst_mcsec_dec_get_property (GObject *object, guint prop_id, GValue *value,
                            GParamSpec *pspec)
{
  GstMcsecDec *self = GST_MCSEC_DEC (object);

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
  case PROP_SENDER_ID_BITS:
    g_value_set_uint (value, self->sender_id_bits);
    break;
  case PROP_REPLAY_WINDOW:
    g_value_set_uint (value, self->replay_window);
    break;
  case PROP_SA_TYPE:
    g_value_set_enum (value, self->sa_type);
    break;
  case PROP_ESN:
    g_value_set_boolean (value, self->esn);
    break;
  case PROP_SPI_PER_SENDER:
    g_value_set_boolean (value, self->spi_per_sender);
    break;
  case PROP_CAPS:
    gst_value_set_caps (value, self->caps);
    break;
  case PROP_SAM_POLICY:
    g_value_set_enum (value, self->sam_policy);
    break;
  case PROP_SENDER_KEYS:
    g_value_set_string (value, self->sender_keys);
    break;
  case PROP_SAM_MAX_HOLD:
    g_value_set_uint (value, self->sam_max_hold);
    break;
  case PROP_SAM_MAX_LATENCY:
    g_value_set_uint64 (value, self->sam_max_latency);
    break;
  case PROP_WARNING_INTERVAL:
    g_value_set_uint (value, self->warning_interval);
    break;
  case PROP_STATS_INTERVAL:
    g_value_set_uint (value, self->stats_timer.interval_ms);
    break;
  case PROP_STREAM:
    g_value_set_enum (value, self->stream);
    break;
  default:
    /* key and key-file are write-only */
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
on_membership_changed (GstMcsecMembership *m, gpointer data)
{
  GstMcsecDec *self = data;

  (void)m;
  GST_OBJECT_LOCK (self);
  self->msa_dirty = TRUE;
  GST_OBJECT_UNLOCK (self);
}

static void
drop_membership (GstMcsecDec *self)
{
  GstMcsecMembershipLink link;

  GST_OBJECT_LOCK (self);
  link = self->link;
  self->link.membership = NULL;
  GST_OBJECT_UNLOCK (self);
  gst_mcsec_membership_unlink (&link);
}

static void
gst_mcsec_dec_set_context (GstElement *element, GstContext *context)
{
  GstMcsecDec *self = GST_MCSEC_DEC (element);

  GST_OBJECT_LOCK (self);
  if (gst_mcsec_membership_link (&self->link, context,
                                 G_CALLBACK (on_membership_changed), self)) {
    self->msa_dirty = TRUE;
    GST_INFO_OBJECT (self, "keys from the membership of group %s",
                     gst_mcsec_membership_group (self->link.membership));
  }
  GST_OBJECT_UNLOCK (self);
  GST_ELEMENT_CLASS (parent_class)->set_context (element, context);
}

static GstStateChangeReturn
gst_mcsec_dec_change_state (GstElement *element, GstStateChange transition)
{
  GstMcsecDec *self = GST_MCSEC_DEC (element);
  GstStateChangeReturn ret;
  gchar *error = NULL;

  /* a key or key-file that could not be used is said now, with its cause
   * (gst-launch-1.0 sets properties before the element has a bus) */
  if ((transition == GST_STATE_CHANGE_NULL_TO_READY ||
       transition == GST_STATE_CHANGE_READY_TO_PAUSED) &&
      !gst_mcsec_setting_error_check (element, &self->key_error, &self->key,
                                      self->cipher))
    return GST_STATE_CHANGE_FAILURE;
  if (transition == GST_STATE_CHANGE_NULL_TO_READY ||
      transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    gboolean bad;
    GST_OBJECT_LOCK (self);
    bad = self->esn && self->sa_type != MCSEC_SA_TYPE_STANDARD;
    GST_OBJECT_UNLOCK (self);
    /* also when keys come from add-key or request-key only */
    if (bad) {
      gst_mcsec_post_settings_error (element,
                                     g_strdup (GST_MCSEC_ESN_NEEDS_STANDARD));
      return GST_STATE_CHANGE_FAILURE;
    }
  }
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    gboolean ask;
    GST_OBJECT_LOCK (self);
    ask = self->link.membership == NULL;
    GST_OBJECT_UNLOCK (self);
    if (ask) /* an mcseckeysrc in the pipeline answers */
      gst_mcsec_membership_request (element);
  }

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    GstBufferPool *pool = gst_mcsec_pool_new ();
    gboolean ok;
    if (pool == NULL)
      return GST_STATE_CHANGE_FAILURE;
    GST_OBJECT_LOCK (self);
    self->pool = pool;
    self->caps_sent = FALSE;
    gst_mcsec_drop_warnings_restart (&self->drops);
    ok = !self->settings_changed || apply_settings (self, &error);
    if (ok && self->sender_keys_changed)
      ok = gst_mcsec_dec_apply_sender_keys (self, &error);
    GST_OBJECT_UNLOCK (self);
    if (!ok) {
      gst_mcsec_post_settings_error (element, error);
      return GST_STATE_CHANGE_FAILURE;
    }
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
    pool = self->pool;
    self->pool = NULL;
    while (!g_queue_is_empty (&self->held)) {
      HeldEntry *e = g_queue_pop_head (&self->held);
      gst_buffer_unref (e->buf);
      g_free (e);
    }
    g_hash_table_remove_all (self->held_by_tag);
    g_clear_pointer (&self->ready, gst_buffer_list_unref);
    /* the times asked are of this run's clock */
    g_hash_table_remove_all (self->requested);
    GST_OBJECT_UNLOCK (self);
    gst_mcsec_pool_free (pool);
  }
  if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    GHashTableIter it;
    gpointer key;
    drop_membership (self);
    /* the membership's SAs go with it */
    GST_OBJECT_LOCK (self);
    g_hash_table_iter_init (&it, self->member_spis);
    while (g_hash_table_iter_next (&it, &key, NULL))
      remove_sa (self, GPOINTER_TO_UINT (key));
    g_hash_table_remove_all (self->member_spis);
    GST_OBJECT_UNLOCK (self);
  }
  return ret;
}

static void
gst_mcsec_dec_finalize (GObject *object)
{
  GstMcsecDec *self = GST_MCSEC_DEC (object);

  drop_membership (self);
  g_hash_table_unref (self->member_spis);
  g_hash_table_unref (self->feedback_ids);
  mcsec_sadb_free (self->db);
  g_hash_table_unref (self->sa_stats);
  g_hash_table_unref (self->requested);
  gst_mcsec_key_clear (&self->key);
  gst_caps_replace (&self->caps, NULL);
  gst_mcsec_pool_free (self->pool);
  while (!g_queue_is_empty (&self->held)) {
    HeldEntry *e = g_queue_pop_head (&self->held);
    gst_buffer_unref (e->buf);
    g_free (e);
  }
  g_hash_table_unref (self->held_by_tag);
  g_hash_table_unref (self->sam_stats);
  g_clear_pointer (&self->ready, gst_buffer_list_unref);
  mcsec_sam_verifier_free (self->verifier);
  g_free (self->sender_keys);
  g_clear_error (&self->key_error);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mcsec_dec_class_init (GstMcsecDecClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_mcsec_dec_set_property;
  gobject_class->get_property = gst_mcsec_dec_get_property;
  gobject_class->finalize = gst_mcsec_dec_finalize;
  element_class->change_state = gst_mcsec_dec_change_state;
  element_class->set_context = gst_mcsec_dec_set_context;

  g_object_class_install_property (
      gobject_class, PROP_KEY,
      g_param_spec_boxed (
          "key", "Key",
          "Key material of the SA named by 'spi': cipher key || 4-byte salt. "
          "Write-only; hex on the gst-launch-1.0 command line. Setting it "
          "while PLAYING adds the new SA and keeps the previous one",
          GST_TYPE_BUFFER,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_KEY_FILE,
      g_param_spec_string (
          "key-file", "Key file",
          "Read the key material (hex) from this file. Write-only. A file "
          "that cannot be used is an error when the element starts, naming "
          "the file and the cause",
          NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_SPI,
      g_param_spec_uint ("spi", "SPI",
                         "SPI of the SA set with 'key' (0-255 are reserved "
                         "by RFC 4303)",
                         GST_MCSEC_MIN_SPI, G_MAXUINT32, GST_MCSEC_DEFAULT_SPI,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_CIPHER,
      g_param_spec_enum ("cipher", "Cipher", "Cipher suite of that SA",
                         GST_TYPE_MCSEC_CIPHER, GST_MCSEC_DEFAULT_CIPHER,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (
      gobject_class, PROP_SENDER_ID_BITS,
      g_param_spec_uint (
          "sender-id-bits", "Sender ID bits",
          "Width of the Sender-ID field of the IV (as the senders use)",
          MCSEC_SENDER_ID_BITS_MIN, MCSEC_SENDER_ID_BITS_MAX,
          MCSEC_SENDER_ID_BITS_DEFAULT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_REPLAY_WINDOW,
      g_param_spec_uint (
          "replay-window", "Replay window",
          "Replay window per sender, in packets (a power of two)",
          MCSEC_REPLAY_WINDOW_MIN, MCSEC_REPLAY_WINDOW_MAX,
          MCSEC_REPLAY_WINDOW_DEFAULT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecDec:sa-type:
   *
   * What the SAs made from `key`/`key-file` and `add-key` are.  `group`
   * (the default): mcsec's, the IV holds Sender-ID || counter and every
   * sender has its own replay window.  `standard`: a plain RFC 4303 SA
   * with one sender, as the Linux kernel, strongSwan or any ESP stack
   * sends: the IV is opaque and the replay window runs on the sequence
   * number (docs/wire-format.md 10.2).  SAs from a membership are always
   * group SAs.
   */
  g_object_class_install_property (
      gobject_class, PROP_SA_TYPE,
      g_param_spec_enum ("sa-type", "SA type",
                         "group: mcsec's (Sender-ID || counter in the IV, a "
                         "replay window per sender); standard: an RFC 4303 "
                         "SA with one sender and an opaque IV, as the Linux "
                         "kernel or strongSwan sends",
                         GST_TYPE_MCSEC_SA_TYPE, MCSEC_SA_TYPE_GROUP,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_ESN,
      g_param_spec_boolean (
          "esn", "Extended sequence numbers",
          "sa-type=standard: the sender uses 64-bit extended sequence "
          "numbers (RFC 4303 2.2.1; 'flag esn' of ip xfrm)",
          FALSE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SPI_PER_SENDER,
      g_param_spec_boolean (
          "spi-per-sender", "SPI per sender",
          "The SAs of key/key-file and add-key take the SPIs spi | "
          "sender-id of a block (as mcsecenc spi-per-sender sends), each "
          "only from that Sender-ID (docs/wire-format.md 10.3)",
          FALSE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_CAPS,
      g_param_spec_boxed (
          "caps", "Caps",
          "Caps of the decrypted datagrams (NULL: fixed caps that "
          "downstream asks for)",
          GST_TYPE_CAPS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_POLICY,
      g_param_spec_enum (
          "sam-policy", "Source policy",
          "Source authentication: off (strip source data unchecked), "
          "optional (pass every datagram, with a GstMcsecSourceMeta saying "
          "verified/pending/unverified/failed), required (hold each datagram "
          "until its sender's signature covers it, release in arrival "
          "order, drop what fails or cannot be verified in time)",
          GST_TYPE_MCSEC_SAM_POLICY, GST_MCSEC_SAM_OFF,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SENDER_KEYS,
      g_param_spec_string (
          "sender-keys", "Sender keys",
          "Trusted public keys of the senders: \"ID=FILE;ID=FILE\", each "
          "FILE a PEM public key (Ed25519 or ECDSA P-256) of that Sender-ID",
          NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_MAX_HOLD,
      g_param_spec_uint ("sam-max-hold", "Most datagrams held",
                         "required policy: datagrams held at most; beyond, "
                         "the oldest is given up (unverifiable)",
                         1, 1 << 20, 4096,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (
      gobject_class, PROP_SAM_MAX_LATENCY,
      g_param_spec_uint64 (
          "sam-max-latency", "Longest hold",
          "required policy: longest a datagram waits for its verdict (ns, "
          "in buffer time); also the latency the element reports",
          0, G_MAXUINT64, GST_SECOND,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecDec:warning-interval:
   *
   * Dropped packets are reported on the bus as WARNING messages (STREAM
   * DECRYPT), one stream of them per drop reason: the first drop of a
   * reason at once, then at most one warning per reason per interval (of
   * the pipeline clock), with the number dropped for that reason since the
   * last one; what is left is reported at the end of the stream.  The
   * message's details are an `application/x-mcsec-drops` structure:
   * `reason` (string, as in the `dropped-<reason>` counters), `count`,
   * `total` (guint64) and, when known, `spi` and `sender-id` (uint) of the
   * last packet dropped.  0: no warnings (the drops are still counted).
   */
  g_object_class_install_property (
      gobject_class, PROP_WARNING_INTERVAL,
      g_param_spec_uint (
          "warning-interval", "Warning interval",
          "Post a WARNING on the bus at the first dropped packet of each "
          "reason, then at most one per reason per this many ms (of the "
          "pipeline clock), with the count since the last one (0: none)",
          0, G_MAXUINT, GST_MCSEC_DEFAULT_WARNING_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstMcsecDec:stats-interval:
   *
   * Post the `stats` structure as an element message every this many ms
   * of the pipeline clock while PLAYING, from the clock's thread: a stream
   * that stops keeps reporting (counters that no longer move), and one last
   * message follows the end of the stream.  0: never.
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS_INTERVAL,
      g_param_spec_uint (
          "stats-interval", "Stats interval",
          "Post the 'stats' structure as an element message every this many "
          "ms of the pipeline clock while PLAYING, even when no packet "
          "comes, and once at the end of the stream (0: never)",
          0, G_MAXUINT, 0,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstMcsecDec:stream:
   *
   * What the decoder passes on: `any` datagram, `rtp` only (a datagram
   * whose second byte is 192-223 is RTCP by RFC 5761's rule and dropped),
   * or `rtcp` only (whole RTCP compound packets).  mcsecrtpdec sets its
   * two children so: each has its own replay windows, and a datagram
   * copied from the RTCP port to the RTP port (or back) would otherwise be
   * new to the other one.  Drops count as `dropped-wrong-stream`.
   */
  g_object_class_install_property (
      gobject_class, PROP_STREAM,
      g_param_spec_enum ("stream", "Stream",
                         "What is passed on: any datagram, RTP only or RTCP "
                         "only (the others dropped as wrong-stream)",
                         GST_TYPE_MCSEC_DEC_STREAM, STREAM_ANY,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                             GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecDec:stats:
   *
   * `application/x-mcsec-dec-stats` with `received`, `accepted`,
   * `dropped` (guint64) and one `dropped-<reason>` counter per reason:
   * `too-short`, `too-long`, `malformed`, `unknown-spi`, `auth`,
   * `bad-padding`, `replay`, `too-old`, `too-many-senders`, `hard-limit`,
   * `not-sender` (a feedback member's datagram that is not RTCP),
   * `wrong-stream` (RTCP under stream=rtp, or not RTCP under stream=rtcp);
   * `dummy` (dummy packets discarded); and `sas`, an array of
   * `application/x-mcsec-sa-stats` (`spi`, `cipher`, the same counters, and
   * `senders`, an array of `application/x-mcsec-sender-stats`: `sender-id`,
   * `highest-counter` and the same counters).  A sender appears once one of
   * its packets verified.
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS,
      g_param_spec_boxed (
          "stats", "Statistics",
          "application/x-mcsec-dec-stats: received, accepted, dropped, "
          "dropped-<reason> for too-short, too-long, malformed, unknown-spi, "
          "auth, bad-padding, replay, too-old, too-many-senders, hard-limit; "
          "dummy; sam-verified, sam-failed, sam-unverifiable, sam-unsigned, "
          "sam-pending, sam-carriers, sam-hold-max-ns, sam-hold-avg-ns; "
          "sam-senders: per sender-id the sam- counters; "
          "sas: per SPI the same counters, cipher, and senders: per "
          "sender-id the same counters and highest-counter",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstMcsecDec::request-key:
   * @spi: an SPI no SA has
   *
   * Return caps `application/x-mcsec, cipher=(string)..., key=(buffer)...`
   * to add the SA, or NULL.  Asked at most once per SPI every 10 s (of the
   * pipeline clock), for at most 64 SPIs in that time.
   */
  signals[SIGNAL_REQUEST_KEY] =
      g_signal_new ("request-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, GST_TYPE_CAPS, 1, G_TYPE_UINT);
  /**
   * GstMcsecDec::add-key:
   * @spi: SPI
   * @cipher: cipher nick
   * @key: key material
   *
   * Add (or replace) the SA for @spi.  Returns FALSE on a bad setting.
   */
  signals[SIGNAL_ADD_KEY] = g_signal_new_class_handler (
      "add-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_dec_add_key), NULL, NULL, NULL, G_TYPE_BOOLEAN, 3,
      G_TYPE_UINT, G_TYPE_STRING, GST_TYPE_BUFFER);
  /**
   * GstMcsecDec::remove-key:
   * @spi: SPI
   *
   * Remove the SA for @spi (end of a rekey overlap).
   */
  signals[SIGNAL_REMOVE_KEY] =
      g_signal_new_class_handler ("remove-key", G_TYPE_FROM_CLASS (klass),
                                  G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
                                  G_CALLBACK (gst_mcsec_dec_remove_key), NULL,
                                  NULL, NULL, G_TYPE_BOOLEAN, 1, G_TYPE_UINT);
  /**
   * GstMcsecDec::clear-keys:
   *
   * Remove every SA.
   */
  signals[SIGNAL_CLEAR_KEYS] = g_signal_new_class_handler (
      "clear-keys", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_dec_clear_keys), NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * GstMcsecDec::add-sender-key:
   * @sender_id: Sender-ID
   * @file: PEM public key file
   *
   * Trust this key for the source authentication of @sender_id.
   */
  signals[SIGNAL_ADD_SENDER_KEY] = g_signal_new_class_handler (
      "add-sender-key", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_dec_add_sender_key), NULL, NULL, NULL,
      G_TYPE_BOOLEAN, 2, G_TYPE_UINT, G_TYPE_STRING);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (
      element_class, "mcsec decoder", "Filter/Network/Decryptor",
      "Verifies, decrypts and replay-checks ESP packets of multicast group "
      "SAs",
      "The mcsec authors");
  gst_element_class_add_static_metadata (element_class,
                                         GST_ELEMENT_METADATA_DOC_URI,
                                         GST_MCSEC_DOC_URI ("mcsecdec"));
}

/* In the required policy datagrams wait for their source's verdict: up to
 * sam-max-latency, which downstream must know. */
static gboolean
gst_mcsec_dec_src_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstMcsecDec *self = GST_MCSEC_DEC (parent);
  gboolean ret = gst_pad_query_default (pad, parent, query);

  if (ret && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gboolean live;
    GstClockTime min, max, add = 0;
    gst_query_parse_latency (query, &live, &min, &max);
    GST_OBJECT_LOCK (self);
    if (self->sam_policy == GST_MCSEC_SAM_REQUIRED)
      add = self->sam_max_latency;
    GST_OBJECT_UNLOCK (self);
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += add;
    gst_query_set_latency (query, live, min + add, max);
  }
  return ret;
}

static void
gst_mcsec_dec_init (GstMcsecDec *self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, gst_mcsec_dec_chain);
  gst_pad_set_chain_list_function (self->sinkpad, gst_mcsec_dec_chain_list);
  gst_pad_set_event_function (self->sinkpad, gst_mcsec_dec_sink_event);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->spi = GST_MCSEC_DEFAULT_SPI;
  self->cipher = GST_MCSEC_DEFAULT_CIPHER;
  self->sender_id_bits = MCSEC_SENDER_ID_BITS_DEFAULT;
  self->replay_window = MCSEC_REPLAY_WINDOW_DEFAULT;
  if (mcsec_sadb_new (&self->db) != MCSEC_OK)
    self->db = NULL;
  self->sa_stats = g_hash_table_new_full (NULL, NULL, NULL, sa_stats_free);
  self->requested = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->member_spis = g_hash_table_new (NULL, NULL);
  self->feedback_ids =
      g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  self->sam_policy = GST_MCSEC_SAM_OFF;
  self->sam_max_hold = 4096;
  self->sam_max_latency = GST_SECOND;
  if (mcsec_sam_verifier_new (gst_mcsec_dec_on_sam_event, self,
                              &self->verifier) != MCSEC_OK)
    self->verifier = NULL;
  g_queue_init (&self->held);
  self->held_by_tag = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->sam_stats = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->warning_interval = GST_MCSEC_DEFAULT_WARNING_INTERVAL;
  gst_mcsec_drop_warnings_init (&self->drops, self->warning_interval);
  gst_mcsec_drop_warnings_restart (&self->drops);
  gst_pad_set_query_function (self->srcpad, gst_mcsec_dec_src_query);
}
