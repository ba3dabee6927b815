/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
/**
 * SECTION:element-mcsecrtpdec
 * @title: mcsecrtpdec
 * @see_also: mcsecrtpenc, mcsecdec, rtpbin
 *
 * mcsecrtpdec is the decoder rtpbin asks for with its `request-rtp-decoder`
 * and `request-rtcp-decoder` signals, with the pads of srtpdec: `rtp_sink`
 * and `rtp_src` for the RTP of one session, `rtcp_sink` and `rtcp_src` for
 * its RTCP.  Return the same mcsecrtpdec for both signals of a session,
 * and one per session.
 *
 * Two mcsecdec children do the work, `rtp` and `rtcp`: every setting
 * written to mcsecrtpdec goes to both.  `rtcp_src` has the caps
 * `application/x-rtcp`; `rtp_src` those of the `caps` property (by default
 * `application/x-rtp`: rtpbin asks the application for the payload's
 * clock-rate with its `request-pt-map` signal).
 *
 * With mcseckeysrc in the pipeline both take the group's keys; datagrams
 * of a feedback member (mcseckeysrc role=feedback) are accepted only when
 * they are RTCP, and only on rtcp_sink.  Each child passes on its own
 * stream only (mcsecdec's `stream`: `rtp` drops RTCP by RFC 5761's rule,
 * `rtcp` anything else), so a packet copied to the other port is dropped
 * (`dropped-wrong-stream`), not taken twice.
 *
 * ## Example
 * |[
 * static GstElement *
 * on_request_decoder (GstElement *rtpbin, guint session, gpointer decs)
 * {
 *   // one per session, the same for its RTP and its RTCP
 *   GstElement *dec = g_hash_table_lookup (decs, GUINT_TO_POINTER (session));
 *   if (dec == NULL) {
 *     dec = gst_element_factory_make ("mcsecrtpdec", NULL);
 *     g_hash_table_insert (decs, GUINT_TO_POINTER (session), dec);
 *   }
 *   return gst_object_ref (dec);
 * }
 * ]| docs/elements.md, "With rtpbin", has the whole recipe.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmcsecdec.h"
#include "gstmcsecelement.h"
#include "gstmcsecrtpdec.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

#define DEFAULT_RTP_CAPS "application/x-rtp"
#define RTCP_CAPS "application/x-rtcp"

/* the settings of mcsecdec that hold for both children (caps is the RTP
 * child's alone) */
static const gchar *const mirrored[] = {
    "key",
    "key-file",
    "spi",
    "cipher",
    "sender-id-bits",
    "replay-window",
    "sam-policy",
    "sender-keys",
    "sam-max-hold",
    "sam-max-latency",
    "warning-interval",
    "stats-interval",
    NULL,
};

enum {
  PROP_0,
  PROP_CAPS,
  PROP_STATS,
  PROP_MIRRORED, /* the first of mirrored[] */
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

struct _GstMcsecRtpDec {
  GstBin parent;
  GstElement *rtp, *rtcp; /* the children, set once */
  GstMcsecMirror mirror;  /* under the object lock */
  GstCaps *caps;          /* of the RTP output, under the object lock */
};

/* application/x-srtp and -srtcp are rtpbin's names for protected RTP and
 * RTCP: here they are mcsec's ESP packets (docs/wire-format.md), not SRTP */
static GstStaticPadTemplate rtp_sink_template = GST_STATIC_PAD_TEMPLATE (
    "rtp_sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-srtp; " MCSEC_CAPS));
static GstStaticPadTemplate rtp_src_template =
    GST_STATIC_PAD_TEMPLATE ("rtp_src", GST_PAD_SRC, GST_PAD_ALWAYS,
                             GST_STATIC_CAPS ("application/x-rtp"));
static GstStaticPadTemplate rtcp_sink_template = GST_STATIC_PAD_TEMPLATE (
    "rtcp_sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("application/x-srtcp; " MCSEC_CAPS));
static GstStaticPadTemplate rtcp_src_template = GST_STATIC_PAD_TEMPLATE (
    "rtcp_src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (RTCP_CAPS));

#define gst_mcsec_rtp_dec_parent_class parent_class
G_DEFINE_TYPE (GstMcsecRtpDec, gst_mcsec_rtp_dec, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (mcsecrtpdec, "mcsecrtpdec",
                                       GST_RANK_NONE, GST_TYPE_MCSEC_RTP_DEC,
                                       gst_mcsec_element_init (plugin));

/* A child's request-key, asked of the application through ours. */
static GstCaps *
on_request_key (GstElement *child, guint spi, gpointer self)
{
  GstCaps *caps = NULL;

  (void)child;
  g_signal_emit (self, signals[SIGNAL_REQUEST_KEY], 0, spi, &caps);
  return caps;
}

static gboolean
gst_mcsec_rtp_dec_add_key (GstMcsecRtpDec *self, guint spi, const gchar *cipher,
                           GstBuffer *key)
{
  gboolean rtp = FALSE, rtcp = FALSE;

  g_signal_emit_by_name (self->rtp, "add-key", spi, cipher, key, &rtp);
  g_signal_emit_by_name (self->rtcp, "add-key", spi, cipher, key, &rtcp);
  return rtp && rtcp;
}

static gboolean
gst_mcsec_rtp_dec_remove_key (GstMcsecRtpDec *self, guint spi)
{
  gboolean rtp = FALSE, rtcp = FALSE;

  g_signal_emit_by_name (self->rtp, "remove-key", spi, &rtp);
  g_signal_emit_by_name (self->rtcp, "remove-key", spi, &rtcp);
  return rtp && rtcp;
}

static void
gst_mcsec_rtp_dec_clear_keys (GstMcsecRtpDec *self)
{
  g_signal_emit_by_name (self->rtp, "clear-keys");
  g_signal_emit_by_name (self->rtcp, "clear-keys");
}

static gboolean
gst_mcsec_rtp_dec_add_sender_key (GstMcsecRtpDec *self, guint sender_id,
                                  const gchar *file)
{
  gboolean rtp = FALSE, rtcp = FALSE;

  g_signal_emit_by_name (self->rtp, "add-sender-key", sender_id, file, &rtp);
  g_signal_emit_by_name (self->rtcp, "add-sender-key", sender_id, file, &rtcp);
  return rtp && rtcp;
}

static GstStructure *
make_stats (GstMcsecRtpDec *self)
{
  GstStructure *s =
      gst_structure_new_empty ("application/x-mcsec-rtp-dec-stats");
  GstElement *child[2] = {self->rtp, self->rtcp};
  const gchar *name[2] = {"rtp", "rtcp"};

  for (guint i = 0; i < 2; i++) {
    GstStructure *st = NULL;
    g_object_get (child[i], "stats", &st, NULL);
    if (st) {
      gst_structure_set (s, name[i], GST_TYPE_STRUCTURE, st, NULL);
      gst_structure_free (st);
    }
  }
  return s;
}

static void
gst_mcsec_rtp_dec_set_property (GObject *object, guint prop_id,
                                const GValue *value, GParamSpec *pspec)
{
  GstMcsecRtpDec *self = GST_MCSEC_RTP_DEC (object);
  guint index;
  gboolean ours;

  if (prop_id == PROP_CAPS) {
    GstCaps *caps = (GstCaps *)gst_value_get_caps (value);
    GstCaps *def = caps ? NULL : gst_caps_from_string (DEFAULT_RTP_CAPS);
    GST_OBJECT_LOCK (self);
    gst_caps_replace (&self->caps, caps ? caps : def);
    GST_OBJECT_UNLOCK (self);
    g_object_set (self->rtp, "caps", caps ? caps : def, NULL);
    if (def)
      gst_caps_unref (def);
    return;
  }
  GST_OBJECT_LOCK (self);
  ours = gst_mcsec_mirror_set (&self->mirror, prop_id, value, &index);
  GST_OBJECT_UNLOCK (self);
  if (!ours) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    return;
  }
  gst_mcsec_mirror_apply (&self->mirror, GST_OBJECT (self),
                          G_OBJECT (self->rtp), index);
  gst_mcsec_mirror_apply (&self->mirror, GST_OBJECT (self),
                          G_OBJECT (self->rtcp), index);
}

static void
gst_mcsec_rtp_dec_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  GstMcsecRtpDec *self = GST_MCSEC_RTP_DEC (object);
  gboolean ours;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_CAPS) {
    gst_value_set_caps (value, self->caps);
    ours = TRUE;
  } else {
    ours = gst_mcsec_mirror_get (&self->mirror, prop_id, value, pspec);
  }
  GST_OBJECT_UNLOCK (self);
  if (!ours)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
gst_mcsec_rtp_dec_finalize (GObject *object)
{
  GstMcsecRtpDec *self = GST_MCSEC_RTP_DEC (object);

  gst_mcsec_mirror_clear (&self->mirror);
  gst_caps_replace (&self->caps, NULL);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mcsec_rtp_dec_class_init (GstMcsecRtpDecClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_mcsec_rtp_dec_set_property;
  gobject_class->get_property = gst_mcsec_rtp_dec_get_property;
  gobject_class->finalize = gst_mcsec_rtp_dec_finalize;

  /* key, key-file, spi, cipher, ...: as mcsecdec's, for both children */
  gst_mcsec_mirror_install (gobject_class, GST_TYPE_MCSEC_DEC, mirrored,
                            PROP_MIRRORED);
  g_object_class_install_property (
      gobject_class, PROP_CAPS,
      g_param_spec_boxed ("caps", "RTP caps",
                          "Caps of the RTP output (rtp_src); rtpbin asks the "
                          "application for the clock-rate of each payload "
                          "type (request-pt-map) when these lack it. The "
                          "RTCP output is application/x-rtcp",
                          GST_TYPE_CAPS,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                              GST_PARAM_MUTABLE_READY));
  /**
   * GstMcsecRtpDec:stats:
   *
   * `application/x-mcsec-rtp-dec-stats`: `rtp` and `rtcp`, the `stats` of
   * each child (`application/x-mcsec-dec-stats`).
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
                          "application/x-mcsec-rtp-dec-stats: rtp and rtcp, "
                          "the stats of the mcsecdec of each",
                          GST_TYPE_STRUCTURE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstMcsecRtpDec::request-key:
   * @spi: the SPI
   *
   * mcsecdec's request-key, for either child (each asks once per SPI).
   */
  signals[SIGNAL_REQUEST_KEY] =
      g_signal_new ("request-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, GST_TYPE_CAPS, 1, G_TYPE_UINT);
  /**
   * GstMcsecRtpDec::add-key:
   * @spi: the SPI
   * @cipher: cipher nick
   * @key: key material
   *
   * Add or replace an SA in both children.
   */
  signals[SIGNAL_ADD_KEY] = g_signal_new_class_handler (
      "add-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_rtp_dec_add_key), NULL, NULL, NULL, G_TYPE_BOOLEAN,
      3, G_TYPE_UINT, G_TYPE_STRING, GST_TYPE_BUFFER);
  /**
   * GstMcsecRtpDec::remove-key:
   * @spi: the SPI
   *
   * Remove an SA from both children.
   */
  signals[SIGNAL_REMOVE_KEY] = g_signal_new_class_handler (
      "remove-key", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_rtp_dec_remove_key), NULL, NULL, NULL,
      G_TYPE_BOOLEAN, 1, G_TYPE_UINT);
  /**
   * GstMcsecRtpDec::clear-keys:
   *
   * Remove every SA of both children.
   */
  signals[SIGNAL_CLEAR_KEYS] =
      g_signal_new_class_handler ("clear-keys", G_TYPE_FROM_CLASS (klass),
                                  G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
                                  G_CALLBACK (gst_mcsec_rtp_dec_clear_keys),
                                  NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * GstMcsecRtpDec::add-sender-key:
   * @sender_id: a Sender-ID
   * @file: its PEM public key
   *
   * Trust a sender's key in both children.
   */
  signals[SIGNAL_ADD_SENDER_KEY] = g_signal_new_class_handler (
      "add-sender-key", G_TYPE_FROM_CLASS (klass),
      G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_rtp_dec_add_sender_key), NULL, NULL, NULL,
      G_TYPE_BOOLEAN, 2, G_TYPE_UINT, G_TYPE_STRING);

  gst_element_class_add_static_pad_template (element_class, &rtp_sink_template);
  gst_element_class_add_static_pad_template (element_class, &rtp_src_template);
  gst_element_class_add_static_pad_template (element_class,
                                             &rtcp_sink_template);
  gst_element_class_add_static_pad_template (element_class, &rtcp_src_template);
  gst_element_class_set_static_metadata (
      element_class, "mcsec RTP/RTCP decoder", "Filter/Network/Decryptor",
      "Decrypts and checks the ESP packets of one rtpbin session's RTP and "
      "RTCP (rtpbin's request-rtp-decoder and request-rtcp-decoder)",
      "The mcsec authors");
  gst_element_class_add_static_metadata (element_class,
                                         GST_ELEMENT_METADATA_DOC_URI,
                                         GST_MCSEC_DOC_URI ("with-rtpbin"));
}

/* A child and the two ghost pads that show it. */
static GstElement *
add_child (GstMcsecRtpDec *self, const gchar *name, const gchar *caps,
           GstStaticPadTemplate *sink, GstStaticPadTemplate *src)
{
  GstCaps *c = gst_caps_from_string (caps);
  GstElement *dec =
      g_object_new (GST_TYPE_MCSEC_DEC, "name", name, "caps", c, NULL);

  /* each child has its own replay windows: what reaches one must be its
   * stream's, or a datagram copied from the RTCP port to the RTP port
   * (or back) would pass a second time, as the other kind */
  gst_util_set_object_arg (G_OBJECT (dec), "stream", name);
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (self);
  GstCaps *esp = gst_caps_from_string (MCSEC_CAPS);
  GstPad *target;

  gst_caps_unref (c);
  g_signal_connect (dec, "request-key", G_CALLBACK (on_request_key), self);
  gst_bin_add (GST_BIN (self), dec);
  /* the caps rtpbin links outside, ESP packets inside */
  target = gst_element_get_static_pad (dec, "sink");
  gst_element_add_pad (
      GST_ELEMENT (self),
      gst_mcsec_ghost_pad_new (
          sink->name_template, target,
          gst_element_class_get_pad_template (klass, sink->name_template), NULL,
          esp));
  gst_object_unref (target);
  gst_caps_unref (esp);
  target = gst_element_get_static_pad (dec, "src");
  gst_element_add_pad (
      GST_ELEMENT (self),
      gst_ghost_pad_new_from_template (
          src->name_template, target,
          gst_element_class_get_pad_template (klass, src->name_template)));
  gst_object_unref (target);
  return dec;
}

static void
gst_mcsec_rtp_dec_init (GstMcsecRtpDec *self)
{
  gst_mcsec_mirror_init (&self->mirror, mirrored, PROP_MIRRORED);
  self->caps = gst_caps_from_string (DEFAULT_RTP_CAPS);
  self->rtp = add_child (self, "rtp", DEFAULT_RTP_CAPS, &rtp_sink_template,
                         &rtp_src_template);
  self->rtcp = add_child (self, "rtcp", RTCP_CAPS, &rtcp_sink_template,
                          &rtcp_src_template);
}
