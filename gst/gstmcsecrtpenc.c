/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
/**
 * SECTION:element-mcsecrtpenc
 * @title: mcsecrtpenc
 * @see_also: mcsecrtpdec, mcsecenc, rtpbin
 *
 * mcsecrtpenc is the encoder rtpbin asks for with its `request-rtp-encoder`
 * and `request-rtcp-encoder` signals, with the pads of srtpenc: request
 * `rtp_sink_%u` (and its `rtp_src_%u`) for the RTP of session %u,
 * `rtcp_sink_%u` (and `rtcp_src_%u`) for its RTCP.  One element may serve
 * every session of an rtpbin.
 *
 * Each stream is protected by an mcsecenc of its own, a child named
 * `rtp_%u` or `rtcp_%u`, with a Sender-ID of its own: no two streams ever
 * share a (key, nonce).  With mcseckeysrc in the pipeline each child takes
 * one of the membership's Sender-IDs (`senders` must count every stream:
 * RTP and RTCP of each session); with a static key each child needs its
 * own `sender-id`, given through the child's name
 * (`rtp_0::sender-id=1 rtcp_0::sender-id=2`, or gst_child_proxy_set())
 * before the element starts: it does not start when two children share an
 * SPI and a Sender-ID.  Every other setting is set on mcsecrtpenc and holds
 * for all its streams.
 *
 * A member whose mcseckeysrc has role=feedback (a receiver that sends RTCP
 * receiver reports) may protect RTCP only: its `rtp_%u` streams drop every
 * buffer, and receivers accept only RTCP from its Sender-IDs.
 *
 * ## Example
 * |[
 * static GstElement *
 * on_request_encoder (GstElement *rtpbin, guint session, gpointer enc)
 * {
 *   gchar *rtp = g_strdup_printf ("rtp_sink_%u", session);
 *   gchar *rtcp = g_strdup_printf ("rtcp_sink_%u", session);
 *   // rtpbin looks the pads up: they must exist when it gets the element
 *   if (gst_element_get_static_pad (enc, rtp) == NULL)
 *     gst_element_request_pad_simple (enc, rtp);
 *   ...
 *   return gst_object_ref (enc);
 * }
 * g_signal_connect (rtpbin, "request-rtp-encoder", on_request_encoder, enc);
 * g_signal_connect (rtpbin, "request-rtcp-encoder", on_request_encoder, enc);
 * ]| docs/elements.md, "With rtpbin", has the whole recipe.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>

#include "gstmcsecelement.h"
#include "gstmcsecenc.h"
#include "gstmcsecrtpenc.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

/* the settings of mcsecenc that hold for every stream (sender-id and
 * counter-file are each stream's own) */
static const gchar *const mirrored[] = {
    "key",
    "key-file",
    "spi",
    "cipher",
    "sender-id-bits",
    "soft-packets",
    "hard-packets",
    "signing-key-file",
    "sam-scheme",
    "sam-block-size",
    "sam-block-time",
    "warning-interval",
    "stats-interval",
    NULL,
};

enum {
  PROP_0,
  PROP_STATS,
  PROP_MIRRORED, /* the first of mirrored[] */
};

enum { SIGNAL_SOFT_LIMIT, SIGNAL_HARD_LIMIT, SIGNAL_SET_KEY, N_SIGNALS };

static guint signals[N_SIGNALS];

struct _GstMcsecRtpEnc {
  GstBin parent;
  GstMcsecMirror mirror; /* under the object lock */
  GHashTable *streams;   /* child names in use, under the object lock */
};

static GstStaticPadTemplate rtp_sink_template =
    GST_STATIC_PAD_TEMPLATE ("rtp_sink_%u", GST_PAD_SINK, GST_PAD_REQUEST,
                             GST_STATIC_CAPS ("application/x-rtp"));
/* rtpbin's names for protected RTP and RTCP: the packets are mcsec's ESP
 * packets (docs/wire-format.md), not SRTP */
static GstStaticPadTemplate rtp_src_template =
    GST_STATIC_PAD_TEMPLATE ("rtp_src_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
                             GST_STATIC_CAPS ("application/x-srtp"));
static GstStaticPadTemplate rtcp_sink_template =
    GST_STATIC_PAD_TEMPLATE ("rtcp_sink_%u", GST_PAD_SINK, GST_PAD_REQUEST,
                             GST_STATIC_CAPS ("application/x-rtcp"));
static GstStaticPadTemplate rtcp_src_template =
    GST_STATIC_PAD_TEMPLATE ("rtcp_src_%u", GST_PAD_SRC, GST_PAD_SOMETIMES,
                             GST_STATIC_CAPS ("application/x-srtcp"));

#define gst_mcsec_rtp_enc_parent_class parent_class
G_DEFINE_TYPE (GstMcsecRtpEnc, gst_mcsec_rtp_enc, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (mcsecrtpenc, "mcsecrtpenc",
                                       GST_RANK_NONE, GST_TYPE_MCSEC_RTP_ENC,
                                       gst_mcsec_element_init (plugin));

static void
on_soft_limit (GstElement *child, guint spi, gpointer self)
{
  (void)child;
  g_signal_emit (self, signals[SIGNAL_SOFT_LIMIT], 0, spi);
}

static void
on_hard_limit (GstElement *child, guint spi, gpointer self)
{
  (void)child;
  g_signal_emit (self, signals[SIGNAL_HARD_LIMIT], 0, spi);
}

/* "rtp" or "rtcp", and the session, of a pad name of ours; FALSE when it
 * is none. */
static gboolean
parse_pad_name (const gchar *name, gboolean *rtcp, guint *session)
{
  static const struct {
    const gchar *prefix;
    gboolean rtcp;
  } kinds[] = {{"rtcp_sink_", TRUE},
               {"rtcp_src_", TRUE},
               {"rtp_sink_", FALSE},
               {"rtp_src_", FALSE}};

  if (name == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++) {
    const gchar *digits;
    gsize n;
    if (!g_str_has_prefix (name, kinds[i].prefix))
      continue;
    /* decimal digits only: no sign, no space, no "-1" taken as 2^32 - 1 */
    digits = name + strlen (kinds[i].prefix);
    n = strspn (digits, "0123456789");
    if (n == 0 || n > 9 || digits[n] != '\0')
      return FALSE;
    *session = (guint)g_ascii_strtoull (digits, NULL, 10);
    *rtcp = kinds[i].rtcp;
    return TRUE;
  }
  return FALSE;
}

static GstPad *
gst_mcsec_rtp_enc_request_new_pad (GstElement *element, GstPadTemplate *templ,
                                   const gchar *name, const GstCaps *caps)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (element);
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (element);
  gboolean rtcp =
      templ == gst_element_class_get_pad_template (klass, "rtcp_sink_%u");
  const gchar *kind = rtcp ? "rtcp" : "rtp";
  gboolean named_rtcp = rtcp;
  guint session = 0;
  gchar *child_name, *sink_name, *src_name;
  GstElement *enc;
  GstPad *target, *sinkpad, *srcpad;
  GstPadTemplate *src_templ;
  GstCaps *outside;

  (void)caps;
  if (name != NULL && strchr (name, '%') == NULL &&
      (!parse_pad_name (name, &named_rtcp, &session) || named_rtcp != rtcp)) {
    GST_WARNING_OBJECT (self, "not a pad name of ours: %s", name);
    return NULL;
  }
  GST_OBJECT_LOCK (self);
  if (name == NULL || strchr (name, '%') != NULL) {
    /* the lowest session without this kind of stream */
    for (session = 0;; session++) {
      gchar *n = g_strdup_printf ("%s_%u", kind, session);
      gboolean used = g_hash_table_contains (self->streams, n);
      g_free (n);
      if (!used)
        break;
    }
  }
  child_name = g_strdup_printf ("%s_%u", kind, session);
  if (g_hash_table_contains (self->streams, child_name)) {
    GST_OBJECT_UNLOCK (self);
    GST_WARNING_OBJECT (self, "the %s stream of session %u exists already",
                        kind, session);
    g_free (child_name);
    return NULL;
  }
  g_hash_table_add (self->streams, g_strdup (child_name));
  GST_OBJECT_UNLOCK (self);

  /* a child of its own: its own Sender-ID, counter and signer */
  enc = g_object_new (GST_TYPE_MCSEC_ENC, "name", child_name, NULL);
  gst_mcsec_mirror_apply (&self->mirror, GST_OBJECT (self), G_OBJECT (enc),
                          G_MAXUINT);
  g_signal_connect (enc, "soft-limit", G_CALLBACK (on_soft_limit), self);
  g_signal_connect (enc, "hard-limit", G_CALLBACK (on_hard_limit), self);
  gst_bin_add (GST_BIN (self), enc);

  sink_name = g_strdup_printf ("%s_sink_%u", kind, session);
  src_name = g_strdup_printf ("%s_src_%u", kind, session);
  target = gst_element_get_static_pad (enc, "src");
  src_templ = gst_element_class_get_pad_template (klass, rtcp ? "rtcp_src_%u"
                                                              : "rtp_src_%u");
  /* ESP packets inside, the caps rtpbin links outside */
  outside = gst_pad_template_get_caps (src_templ);
  srcpad = gst_mcsec_ghost_pad_new (src_name, target, src_templ, outside, NULL);
  gst_caps_unref (outside);
  gst_object_unref (target);
  target = gst_element_get_static_pad (enc, "sink");
  sinkpad = gst_ghost_pad_new_from_template (sink_name, target, templ);
  gst_object_unref (target);
  /* rtpbin looks both up as soon as it has the element: the source first */
  gst_element_add_pad (element, srcpad);
  gst_element_add_pad (element, sinkpad);
  gst_element_sync_state_with_parent (enc);
  GST_INFO_OBJECT (self, "%s of session %u: encoder %s", kind, session,
                   child_name);
  g_free (sink_name);
  g_free (src_name);
  g_free (child_name);
  return sinkpad;
}

static void
gst_mcsec_rtp_enc_release_pad (GstElement *element, GstPad *pad)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (element);
  gboolean rtcp;
  guint session;
  gchar *child_name, *src_name;
  GstElement *enc;
  GstPad *srcpad;

  if (!parse_pad_name (GST_PAD_NAME (pad), &rtcp, &session))
    return;
  child_name = g_strdup_printf ("%s_%u", rtcp ? "rtcp" : "rtp", session);
  src_name = g_strdup_printf ("%s_src_%u", rtcp ? "rtcp" : "rtp", session);
  srcpad = gst_element_get_static_pad (element, src_name);
  if (srcpad) {
    gst_pad_set_active (srcpad, FALSE);
    gst_element_remove_pad (element, srcpad);
    gst_object_unref (srcpad);
  }
  gst_pad_set_active (pad, FALSE);
  gst_element_remove_pad (element, pad);
  enc = gst_bin_get_by_name (GST_BIN (self), child_name);
  if (enc) {
    gst_element_set_state (enc, GST_STATE_NULL);
    gst_bin_remove (GST_BIN (self), enc);
    gst_object_unref (enc);
  }
  GST_OBJECT_LOCK (self);
  g_hash_table_remove (self->streams, child_name);
  GST_OBJECT_UNLOCK (self);
  g_free (child_name);
  g_free (src_name);
}

static gpointer
ref_child (gconstpointer child, gpointer data)
{
  (void)data;
  return gst_object_ref ((gpointer)child);
}

/* The children, each with a reference. */
static GList *
children (GstMcsecRtpEnc *self)
{
  GList *list;

  GST_OBJECT_LOCK (self);
  list = g_list_copy_deep (GST_BIN_CHILDREN (self), ref_child, NULL);
  GST_OBJECT_UNLOCK (self);
  return list;
}

static gboolean
gst_mcsec_rtp_enc_set_key (GstMcsecRtpEnc *self, guint spi, const gchar *cipher,
                           GstBuffer *key)
{
  GList *list = children (self);
  gboolean ok = list != NULL;

  for (GList *l = list; l; l = l->next) {
    gboolean done = FALSE;
    g_signal_emit_by_name (l->data, "set-key", spi, cipher, key, &done);
    ok &= done;
  }
  g_list_free_full (list, gst_object_unref);
  /* the streams that come later send under the same SA */
  if (ok) {
    GST_OBJECT_LOCK (self);
    ok = gst_mcsec_mirror_set_sa (&self->mirror, spi, cipher, key);
    GST_OBJECT_UNLOCK (self);
  }
  return ok;
}

static GstStructure *
make_stats (GstMcsecRtpEnc *self)
{
  GstStructure *s =
      gst_structure_new_empty ("application/x-mcsec-rtp-enc-stats");
  GList *list = children (self);

  for (GList *l = list; l; l = l->next) {
    GstStructure *child = NULL;
    gchar *name = gst_object_get_name (l->data);
    g_object_get (l->data, "stats", &child, NULL);
    if (child) {
      gst_structure_set (s, name, GST_TYPE_STRUCTURE, child, NULL);
      gst_structure_free (child);
    }
    g_free (name);
  }
  g_list_free_full (list, gst_object_unref);
  return s;
}

static void
gst_mcsec_rtp_enc_set_property (GObject *object, guint prop_id,
                                const GValue *value, GParamSpec *pspec)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (object);
  guint index;
  gboolean ours;
  GList *list;

  GST_OBJECT_LOCK (self);
  ours = gst_mcsec_mirror_set (&self->mirror, prop_id, value, &index);
  GST_OBJECT_UNLOCK (self);
  if (!ours) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    return;
  }
  list = children (self);
  for (GList *l = list; l; l = l->next)
    gst_mcsec_mirror_apply (&self->mirror, GST_OBJECT (self), l->data, index);
  g_list_free_full (list, gst_object_unref);
}

static void
gst_mcsec_rtp_enc_get_property (GObject *object, guint prop_id, GValue *value,
                                GParamSpec *pspec)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (object);
  gboolean ours;

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  ours = gst_mcsec_mirror_get (&self->mirror, prop_id, value, pspec);
  GST_OBJECT_UNLOCK (self);
  if (!ours)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

/* With a static key (key or key-file set here) every stream needs a
 * Sender-ID of its own: two children with the same SPI and Sender-ID would
 * use the same nonces (unless their counter-files differ, they would also
 * find the same one locked).  NULL, or the names of two that share one.
 * (With mcseckeysrc the children's sender-id is not used: the membership
 * gives each its own.) */
static gchar *
shared_sender_id (GstMcsecRtpEnc *self)
{
  GHashTable *seen = g_hash_table_new (g_int64_hash, g_int64_equal);
  GList *list = children (self);
  gint64 *ids = g_new (gint64, g_list_length (list) + 1);
  gchar *clash = NULL;
  gboolean static_key;
  guint n = 0;

  GST_OBJECT_LOCK (self);
  static_key = self->mirror.key_set;
  for (guint i = 0; self->mirror.names[i]; i++)
    if (g_str_equal (self->mirror.names[i], "key-file") &&
        G_IS_VALUE (&self->mirror.values[i]) &&
        g_value_get_string (&self->mirror.values[i]) != NULL)
      static_key = TRUE;
  GST_OBJECT_UNLOCK (self);
  for (GList *l = list; static_key && l && clash == NULL; l = l->next) {
    guint spi = 0, sender_id = 0;
    GstElement *other;
    g_object_get (l->data, "spi", &spi, "sender-id", &sender_id, NULL);
    ids[n] = (gint64)(((guint64)spi << 32) | sender_id);
    other = g_hash_table_lookup (seen, &ids[n]);
    if (other)
      clash = g_strdup_printf ("%s and %s both have sender-id %u (spi 0x%08x)",
                               GST_OBJECT_NAME (other),
                               GST_OBJECT_NAME (l->data), sender_id, spi);
    else
      g_hash_table_insert (seen, &ids[n++], l->data);
  }
  g_hash_table_unref (seen);
  g_free (ids);
  g_list_free_full (list, gst_object_unref);
  return clash;
}

static GstStateChangeReturn
gst_mcsec_rtp_enc_change_state (GstElement *element, GstStateChange transition)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (element);

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
    gchar *clash = shared_sender_id (self);
    if (clash) {
      gst_mcsec_post_settings_error (
          element, g_strdup_printf ("Every stream needs a sender-id of its "
                                    "own under a static key: %s (set "
                                    "rtp_N::sender-id and rtcp_N::sender-id)",
                                    clash));
      g_free (clash);
      return GST_STATE_CHANGE_FAILURE;
    }
  }
  return GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
}

static void
gst_mcsec_rtp_enc_finalize (GObject *object)
{
  GstMcsecRtpEnc *self = GST_MCSEC_RTP_ENC (object);

  gst_mcsec_mirror_clear (&self->mirror);
  g_hash_table_unref (self->streams);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mcsec_rtp_enc_class_init (GstMcsecRtpEncClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_mcsec_rtp_enc_set_property;
  gobject_class->get_property = gst_mcsec_rtp_enc_get_property;
  gobject_class->finalize = gst_mcsec_rtp_enc_finalize;
  element_class->request_new_pad = gst_mcsec_rtp_enc_request_new_pad;
  element_class->release_pad = gst_mcsec_rtp_enc_release_pad;
  element_class->change_state = gst_mcsec_rtp_enc_change_state;

  /* key, key-file, spi, cipher, ...: as mcsecenc's, for every stream */
  gst_mcsec_mirror_install (gobject_class, GST_TYPE_MCSEC_ENC, mirrored,
                            PROP_MIRRORED);
  /**
   * GstMcsecRtpEnc:stats:
   *
   * `application/x-mcsec-rtp-enc-stats`: one field per stream, named as
   * its child (`rtp_0`, `rtcp_0`, ...), holding that mcsecenc's `stats`
   * (`application/x-mcsec-enc-stats`, with its `sender-id`).
   */
  g_object_class_install_property (
      gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
                          "application/x-mcsec-rtp-enc-stats: a field per "
                          "stream (rtp_0, rtcp_0, ...), each the stats of "
                          "that stream's mcsecenc",
                          GST_TYPE_STRUCTURE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstMcsecRtpEnc::soft-limit:
   * @spi: the SA
   *
   * A stream's SA crossed its soft packet limit: time to rekey.
   */
  signals[SIGNAL_SOFT_LIMIT] =
      g_signal_new ("soft-limit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * GstMcsecRtpEnc::hard-limit:
   * @spi: the SA
   *
   * A stream's SA reached its hard limit: it drops buffers until a new key
   * is set.
   */
  signals[SIGNAL_HARD_LIMIT] =
      g_signal_new ("hard-limit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * GstMcsecRtpEnc::set-key:
   * @spi: the new SA's SPI
   * @cipher: cipher nick, e.g. "aes-128-gcm"
   * @key: key material
   *
   * Switch every stream to a new SA (mcsecenc's set-key on each), and the
   * streams added later too; FALSE when a stream refused it, or there is
   * no stream yet (set the `key` and `spi` properties then).
   */
  signals[SIGNAL_SET_KEY] = g_signal_new_class_handler (
      "set-key", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_mcsec_rtp_enc_set_key), NULL, NULL, NULL, G_TYPE_BOOLEAN,
      3, G_TYPE_UINT, G_TYPE_STRING, GST_TYPE_BUFFER);

  gst_element_class_add_static_pad_template (element_class, &rtp_sink_template);
  gst_element_class_add_static_pad_template (element_class, &rtp_src_template);
  gst_element_class_add_static_pad_template (element_class,
                                             &rtcp_sink_template);
  gst_element_class_add_static_pad_template (element_class, &rtcp_src_template);
  gst_element_class_set_static_metadata (
      element_class, "mcsec RTP/RTCP encoder", "Filter/Network/Encryptor",
      "Protects the RTP and RTCP of rtpbin's sessions as ESP packets of a "
      "multicast group SA, a Sender-ID per stream (rtpbin's "
      "request-rtp-encoder and request-rtcp-encoder)",
      "The mcsec authors");
  gst_element_class_add_static_metadata (element_class,
                                         GST_ELEMENT_METADATA_DOC_URI,
                                         GST_MCSEC_DOC_URI ("with-rtpbin"));
}

static void
gst_mcsec_rtp_enc_init (GstMcsecRtpEnc *self)
{
  gst_mcsec_mirror_init (&self->mirror, mirrored, PROP_MIRRORED);
  self->streams = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}
