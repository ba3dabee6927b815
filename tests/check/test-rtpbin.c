/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * rtpbin and RTCP (issue 17, item 2): mcsecrtpenc and mcsecrtpdec in
 * rtpbin's request-rtp-encoder / -decoder and request-rtcp-encoder /
 * -decoder signals.  A sender's and a receiver's rtpbin, each in a pipeline
 * of its own, joined by appsink and appsrc (no sockets): RTP and the
 * sender's SR one way, the receiver's RR the other, every packet between
 * them an ESP packet with a nonce no other packet has.  Then the same with
 * keys from a controller, the receiver a feedback member (mcseckeysrc
 * role=feedback): its receiver reports reach the sender, and a datagram it
 * makes that is not RTCP is refused by a receiver of the group.
 */
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>

#include "check-util.h"

#include <mcsec/mcsec-mike.h>
#include <mcsec/mcsec.h>
#include <openssl/pem.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPI 0x1000
/* the RTCP of both rtpbins names it (SDES): it must not be on the wire */
#define CNAME "mcsec-plaintext-cname"
#define L16_CAPS                                                               \
  "application/x-rtp,media=audio,clock-rate=8000,encoding-name=L16,"           \
  "channels=1,payload=96"

static gchar *tmpdir, *tools, *key_file;
static GPid controller = 0;
static guint port;

/* ---- the controller (as test-keysrc) ---- */

static void
make_tmpdir (void)
{
  gchar *keygen = g_build_filename (tools, "mcsec-keygen", NULL);
  const gchar *argv[] = {keygen, "--output", "group.key", NULL};

  tmpdir = g_dir_make_tmp ("mcsec-rtpbin-XXXXXX", NULL);
  /* counter stores of the static-key encoders */
  g_setenv ("XDG_STATE_HOME", tmpdir, TRUE);
  run_tool_in (tmpdir, argv);
  key_file = g_build_filename (tmpdir, "group.key", NULL);
  g_free (keygen);
}

static void
remove_tmpdir (void)
{
  remove_dir (&tmpdir);
  g_clear_pointer (&key_file, g_free);
}
static void
start_controller (void)
{
  make_tmpdir ();
  controller = controller_start (tools, tmpdir, "rx1 rx2", "rx1;rx2", &port);
}

static void
stop_controller (void)
{
  controller_stop (&controller);
  remove_tmpdir ();
}

/* "mcseckeysrc ..." for a member of the test PKI */
static gchar *
keysrc_desc (const gchar *who, const gchar *extra)
{
  return g_strdup_printf (
      "mcseckeysrc name=k controller=127.0.0.1:%u group=video "
      "certificate=%s/pki/%s.crt private-key=%s/pki/%s.key ca=%s/pki/ca.crt "
      "%s",
      port, tmpdir, who, tmpdir, who, tmpdir, extra);
}

static GstElement *
launch (const gchar *desc)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  fail_unless (p != NULL && err == NULL, "%s: %s", desc,
               err ? err->message : "");
  return p;
}

/* ---- two rtpbins joined by appsink / appsrc ---- */

typedef enum { WIRE_RTP, WIRE_SR, WIRE_RR, N_WIRES } WireKind;

static const gchar *const wire_caps[N_WIRES] = {
    "application/x-srtp", "application/x-srtcp", "application/x-srtcp"};

static gboolean
caps_equal (GstCaps *caps, const gchar *str)
{
  GstCaps *want = gst_caps_from_string (str);
  gboolean same = caps != NULL && gst_caps_is_equal (caps, want);
  gst_caps_unref (want);
  return same;
}

typedef struct {
  GMutex lock;
  GHashTable *nonces; /* "spi:iv" of every packet, to find a repeat */
  guint packets[N_WIRES];
  GHashTable *sender_ids[N_WIRES]; /* the Sender-IDs seen on each */
  gchar *failure;                  /* the first packet that was no ESP */
  guint32 spi;                     /* the SA's, or 0: the controller's */
  guint depayloaded;
} Wire;

typedef struct {
  Wire *wire;
  WireKind kind;
  GstElement *to; /* an appsrc */
} Bridge;

static GstFlowReturn
on_wire_sample (GstAppSink *sink, gpointer data)
{
  Bridge *b = data;
  Wire *w = b->wire;
  GstSample *s = gst_app_sink_pull_sample (sink);
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstCaps *caps = gst_sample_get_caps (s);
  guint8 h[16];
  gsize n = gst_buffer_extract (buf, 0, h, sizeof h);
  gchar *nonce;
  GstMapInfo map;
  gboolean plain = TRUE;

  /* the plaintext cannot be there: the audio is silence (16 zero bytes in
   * a row in RTP) and the RTCP carries our CNAME */
  if (gst_buffer_map (buf, &map, GST_MAP_READ)) {
    static const guint8 zeros[16];
    plain = memmem (map.data, map.size, zeros, sizeof zeros) != NULL ||
            memmem (map.data, map.size, CNAME, strlen (CNAME)) != NULL;
    gst_buffer_unmap (buf, &map);
  }
  g_mutex_lock (&w->lock);
  /* ESP (RFC 4303): SPI, sequence number, IV = Sender-ID || counter; with
   * the static keys' SPI, no RTP or RTCP header either (version 2 in the
   * first two bits; a random SPI may start so) */
  if (w->failure == NULL &&
      (plain || n < 16 || gst_buffer_get_size (buf) < 36 ||
       GST_READ_UINT32_BE (h) < 256 ||
       (w->spi && (GST_READ_UINT32_BE (h) != w->spi || (h[0] >> 6) == 2)) ||
       !caps_equal (caps, wire_caps[b->kind]))) {
    gchar *c = caps ? gst_caps_to_string (caps) : NULL;
    w->failure = g_strdup_printf (
        "not an ESP packet on wire %d (%" G_GSIZE_FORMAT
        " bytes, SPI %08x, caps %s%s)",
        b->kind, gst_buffer_get_size (buf), GST_READ_UINT32_BE (h), c,
        plain ? ", the plaintext" : "");
    g_free (c);
  }
  nonce = g_strdup_printf ("%08x:%016" G_GINT64_MODIFIER "x",
                           GST_READ_UINT32_BE (h), GST_READ_UINT64_BE (h + 8));
  if (!g_hash_table_add (w->nonces, nonce) && w->failure == NULL)
    w->failure = g_strdup_printf ("nonce %s twice", nonce);
  /* 16-bit Sender-IDs (the default width) */
  g_hash_table_add (w->sender_ids[b->kind],
                    GUINT_TO_POINTER (GST_READ_UINT16_BE (h + 8)));
  w->packets[b->kind]++;
  g_mutex_unlock (&w->lock);
  gst_app_src_push_buffer (GST_APP_SRC (b->to), gst_buffer_ref (buf));
  gst_sample_unref (s);
  return GST_FLOW_OK;
}

static void
on_depayloaded (GstElement *sink, GstBuffer *buf, GstPad *pad, gpointer data)
{
  Wire *w = data;

  (void)sink;
  (void)buf;
  (void)pad;
  g_mutex_lock (&w->lock);
  w->depayloaded++;
  g_mutex_unlock (&w->lock);
}

/* rtpbin's encoder signals: the pads rtpbin looks up must exist */
static GstElement *
request_rtp_encoder (GstElement *rtpbin, guint session, gpointer enc)
{
  gchar *name = g_strdup_printf ("rtp_sink_%u", session);
  GstPad *pad = gst_element_get_static_pad (enc, name);

  (void)rtpbin;
  if (pad == NULL)
    pad = gst_element_request_pad_simple (enc, name);
  fail_unless (pad != NULL);
  gst_object_unref (pad);
  g_free (name);
  return gst_object_ref (enc);
}

static GstElement *
request_rtcp_encoder (GstElement *rtpbin, guint session, gpointer enc)
{
  gchar *name = g_strdup_printf ("rtcp_sink_%u", session);
  GstPad *pad = gst_element_get_static_pad (enc, name);

  (void)rtpbin;
  if (pad == NULL)
    pad = gst_element_request_pad_simple (enc, name);
  fail_unless (pad != NULL);
  gst_object_unref (pad);
  g_free (name);
  return gst_object_ref (enc);
}

/* one decoder per session, the same for its RTP and RTCP */
static GstElement *
request_decoder (GstElement *rtpbin, guint session, gpointer dec)
{
  (void)rtpbin;
  fail_unless_equals_int (session, 0);
  return gst_object_ref (dec);
}

static GstCaps *
request_pt_map (GstElement *rtpbin, guint session, guint pt, gpointer data)
{
  (void)rtpbin;
  (void)session;
  (void)data;
  return pt == 96 ? gst_caps_from_string (L16_CAPS) : NULL;
}

static void
on_pad_added (GstElement *rtpbin, GstPad *pad, gpointer depay)
{
  GstPad *sink;

  (void)rtpbin;
  if (!g_str_has_prefix (GST_PAD_NAME (pad), "recv_rtp_src_"))
    return;
  sink = gst_element_get_static_pad (depay, "sink");
  fail_unless (gst_pad_link (pad, sink) == GST_PAD_LINK_OK);
  gst_object_unref (sink);
}

typedef struct {
  GstElement *tx, *rx;       /* the sender's and the receiver's pipelines */
  GstElement *txbin, *rxbin; /* their rtpbins */
  GstElement *txenc, *txdec, *rxenc, *rxdec;
  Bridge bridge[N_WIRES];
  Wire wire;
} Link;

static void
link_pads (GstElement *a, const gchar *pa, GstElement *b, const gchar *pb)
{
  GstPad *src = gst_element_get_static_pad (a, pa);
  GstPad *sink = gst_element_get_static_pad (b, pb);

  if (src == NULL)
    src = gst_element_request_pad_simple (a, pa);
  if (sink == NULL)
    sink = gst_element_request_pad_simple (b, pb);
  fail_unless (src != NULL && sink != NULL, "%s, %s", pa, pb);
  fail_unless_equals_int (gst_pad_link (src, sink), GST_PAD_LINK_OK);
  gst_object_unref (src);
  gst_object_unref (sink);
}

static GstElement *
by_name (GstElement *bin, const gchar *name)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (bin), name);
  fail_unless (e != NULL, "%s", name);
  gst_object_unref (e); /* the pipeline holds it */
  return e;
}

static void
bridge (Link *l, WireKind kind, GstElement *from, GstElement *to)
{
  GstAppSinkCallbacks cb;

  memset (&cb, 0, sizeof cb);
  cb.new_sample = on_wire_sample;
  l->bridge[kind].wire = &l->wire;
  l->bridge[kind].kind = kind;
  l->bridge[kind].to = to;
  gst_app_sink_set_callbacks (GST_APP_SINK (from), &cb, &l->bridge[kind], NULL);
}

/* The sender's pipeline (keysrc: its mcseckeysrc, or NULL for static keys)
 * and the receiver's, mcsec in all four rtpbin signals of each; the
 * elements are set up by `setup` before rtpbin asks for them. */
static void
link_init (Link *l, const gchar *tx_keysrc, const gchar *rx_keysrc)
{
  gchar *d;

  memset (l, 0, sizeof *l);
  g_mutex_init (&l->wire.lock);
  l->wire.nonces =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (int i = 0; i < N_WIRES; i++)
    l->wire.sender_ids[i] = g_hash_table_new (NULL, NULL);

  d = g_strdup_printf (
      "%s rtpbin name=rtpbin "
      "sdes=\"application/x-rtp-source-sdes,cname=(string)" CNAME "\" "
      "audiotestsrc is-live=true wave=silence samplesperbuffer=160 ! "
      "audio/x-raw,format=S16BE,rate=8000,channels=1 ! rtpL16pay name=pay "
      "appsink name=rtp_out sync=false async=false "
      "appsink name=rtcp_out sync=false async=false "
      "appsrc name=rtcp_in is-live=true format=time do-timestamp=true",
      tx_keysrc ? tx_keysrc : "");
  l->tx = launch (d);
  g_free (d);
  d = g_strdup_printf (
      "%s rtpbin name=rtpbin "
      "sdes=\"application/x-rtp-source-sdes,cname=(string)" CNAME "\" "
      "rtpL16depay name=depay ! "
      "fakesink name=out signal-handoffs=true sync=false "
      "appsrc name=rtp_in is-live=true format=time do-timestamp=true "
      "appsrc name=rtcp_in is-live=true format=time do-timestamp=true "
      "appsink name=rtcp_out sync=false async=false",
      rx_keysrc ? rx_keysrc : "");
  l->rx = launch (d);
  g_free (d);
  l->txbin = by_name (l->tx, "rtpbin");
  l->rxbin = by_name (l->rx, "rtpbin");

  l->txenc =
      gst_object_ref_sink (gst_element_factory_make ("mcsecrtpenc", "txenc"));
  l->txdec =
      gst_object_ref_sink (gst_element_factory_make ("mcsecrtpdec", "txdec"));
  l->rxenc =
      gst_object_ref_sink (gst_element_factory_make ("mcsecrtpenc", "rxenc"));
  l->rxdec =
      gst_object_ref_sink (gst_element_factory_make ("mcsecrtpdec", "rxdec"));
  fail_unless (l->txenc && l->txdec && l->rxenc && l->rxdec);
  g_signal_connect (l->txbin, "request-rtp-encoder",
                    G_CALLBACK (request_rtp_encoder), l->txenc);
  g_signal_connect (l->txbin, "request-rtcp-encoder",
                    G_CALLBACK (request_rtcp_encoder), l->txenc);
  g_signal_connect (l->txbin, "request-rtp-decoder",
                    G_CALLBACK (request_decoder), l->txdec);
  g_signal_connect (l->txbin, "request-rtcp-decoder",
                    G_CALLBACK (request_decoder), l->txdec);
  g_signal_connect (l->rxbin, "request-rtp-encoder",
                    G_CALLBACK (request_rtp_encoder), l->rxenc);
  g_signal_connect (l->rxbin, "request-rtcp-encoder",
                    G_CALLBACK (request_rtcp_encoder), l->rxenc);
  g_signal_connect (l->rxbin, "request-rtp-decoder",
                    G_CALLBACK (request_decoder), l->rxdec);
  g_signal_connect (l->rxbin, "request-rtcp-decoder",
                    G_CALLBACK (request_decoder), l->rxdec);
  g_signal_connect (l->rxbin, "request-pt-map", G_CALLBACK (request_pt_map),
                    NULL);
  g_signal_connect (l->rxbin, "pad-added", G_CALLBACK (on_pad_added),
                    by_name (l->rx, "depay"));
  g_signal_connect (by_name (l->rx, "out"), "handoff",
                    G_CALLBACK (on_depayloaded), &l->wire);
}

/* The pads of both rtpbins: rtpbin asks for the encoders and decoders now. */
static void
link_connect (Link *l)
{
  link_pads (by_name (l->tx, "pay"), "src", l->txbin, "send_rtp_sink_0");
  link_pads (l->txbin, "send_rtp_src_0", by_name (l->tx, "rtp_out"), "sink");
  link_pads (l->txbin, "send_rtcp_src_0", by_name (l->tx, "rtcp_out"), "sink");
  link_pads (by_name (l->tx, "rtcp_in"), "src", l->txbin, "recv_rtcp_sink_0");
  link_pads (by_name (l->rx, "rtp_in"), "src", l->rxbin, "recv_rtp_sink_0");
  link_pads (by_name (l->rx, "rtcp_in"), "src", l->rxbin, "recv_rtcp_sink_0");
  link_pads (l->rxbin, "send_rtcp_src_0", by_name (l->rx, "rtcp_out"), "sink");
  bridge (l, WIRE_RTP, by_name (l->tx, "rtp_out"), by_name (l->rx, "rtp_in"));
  bridge (l, WIRE_SR, by_name (l->tx, "rtcp_out"), by_name (l->rx, "rtcp_in"));
  bridge (l, WIRE_RR, by_name (l->rx, "rtcp_out"), by_name (l->tx, "rtcp_in"));
  /* RTCP every 100 ms or so, not every 5 s */
  for (int i = 0; i < 2; i++) {
    GObject *session = NULL;
    g_signal_emit_by_name (i ? l->rxbin : l->txbin, "get-internal-session", 0,
                           &session);
    fail_unless (session != NULL);
    g_object_set (session, "rtcp-min-interval", (guint64)(100 * GST_MSECOND),
                  NULL);
    g_object_unref (session);
  }
}

static void
link_clear (Link *l)
{
  gst_element_set_state (l->tx, GST_STATE_NULL);
  gst_element_set_state (l->rx, GST_STATE_NULL);
  gst_object_unref (l->tx);
  gst_object_unref (l->rx);
  gst_object_unref (l->txenc);
  gst_object_unref (l->txdec);
  gst_object_unref (l->rxenc);
  gst_object_unref (l->rxdec);
  g_hash_table_unref (l->wire.nonces);
  for (int i = 0; i < N_WIRES; i++)
    g_hash_table_unref (l->wire.sender_ids[i]);
  g_free (l->wire.failure);
  g_mutex_clear (&l->wire.lock);
}

/* What rtpbin's session knows of its remote sources: TRUE when one of
 * them sent a sender report (have-sr) or a report block about us
 * (have-rb). */
static gboolean
remote_has (GstElement *rtpbin, const gchar *field)
{
  GObject *session = NULL;
  GstStructure *stats = NULL;
  GValueArray *sources = NULL;
  gboolean found = FALSE;

  g_signal_emit_by_name (rtpbin, "get-internal-session", 0, &session);
  g_object_get (session, "stats", &stats, NULL);
  /* rtpsession's stats hold a GValueArray */
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  if (gst_structure_has_field (stats, "source-stats"))
    sources =
        g_value_get_boxed (gst_structure_get_value (stats, "source-stats"));
  for (guint i = 0; sources && i < sources->n_values; i++) {
    const GstStructure *s =
        gst_value_get_structure (g_value_array_get_nth (sources, i));
    gboolean internal = TRUE, have = FALSE;
    gst_structure_get_boolean (s, "internal", &internal);
    gst_structure_get_boolean (s, field, &have);
    found |= !internal && have;
  }
  G_GNUC_END_IGNORE_DEPRECATIONS
  gst_structure_free (stats);
  g_object_unref (session);
  return found;
}

/* Run both until the receiver depayloaded `frames`, has the sender's SR and
 * the sender the receiver's RR (10 s at most); fail on an error. */
static void
link_run (Link *l, guint frames)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gboolean done = FALSE;

  gst_element_set_state (l->rx, GST_STATE_PLAYING);
  gst_element_set_state (l->tx, GST_STATE_PLAYING);
  while (!done && g_get_monotonic_time () < end) {
    for (int i = 0; i < 2; i++) {
      GstBus *bus = gst_element_get_bus (i ? l->rx : l->tx);
      GstMessage *m =
          gst_bus_timed_pop_filtered (bus, 50 * GST_MSECOND, GST_MESSAGE_ERROR);
      if (m) {
        GError *err = NULL;
        gst_message_parse_error (m, &err, NULL);
        fail ("%s: %s", GST_OBJECT_NAME (GST_MESSAGE_SRC (m)), err->message);
      }
      gst_object_unref (bus);
    }
    g_mutex_lock (&l->wire.lock);
    done = l->wire.depayloaded >= frames && l->wire.packets[WIRE_SR] > 0 &&
           l->wire.packets[WIRE_RR] > 0;
    g_mutex_unlock (&l->wire.lock);
    done = done && remote_has (l->rxbin, "have-sr") &&
           remote_has (l->txbin, "have-rb");
  }
  g_mutex_lock (&l->wire.lock);
  fail_unless (l->wire.failure == NULL, "%s", l->wire.failure);
  fail_unless (done,
               "depayloaded %u, RTP %u, SR %u, RR %u packets; the receiver "
               "has an SR: %d, the sender a report block: %d",
               l->wire.depayloaded, l->wire.packets[WIRE_RTP],
               l->wire.packets[WIRE_SR], l->wire.packets[WIRE_RR],
               remote_has (l->rxbin, "have-sr"),
               remote_has (l->txbin, "have-rb"));
  g_mutex_unlock (&l->wire.lock);
}

/* A guint64 in the stats of one child of an mcsecrtpdec. */
static guint64
dec_stat (GstElement *dec, const gchar *child, const gchar *field)
{
  GstStructure *stats = NULL, *c = NULL;
  guint64 v = 0;

  g_object_get (dec, "stats", &stats, NULL);
  fail_unless (gst_structure_get (stats, child, GST_TYPE_STRUCTURE, &c, NULL));
  fail_unless (gst_structure_get_uint64 (c, field, &v), "%s", field);
  gst_structure_free (c);
  gst_structure_free (stats);
  return v;
}

static guint
only_sender_id (Link *l, WireKind kind)
{
  GList *ids = g_hash_table_get_keys (l->wire.sender_ids[kind]);
  guint id = GPOINTER_TO_UINT (ids->data);

  fail_unless_equals_int (g_list_length (ids), 1);
  g_list_free (ids);
  return id;
}

/* ---- static keys ---- */

/* The pad contract rtpbin relies on (gstrtpbin.c looks the pads up, it
 * does not request them): an encoder's source pad exists as soon as its
 * sink pad is requested; a decoder has its four pads from the start. */
GST_START_TEST (test_pads)
{
  GstElement *enc = gst_element_factory_make ("mcsecrtpenc", NULL);
  GstElement *dec = gst_element_factory_make ("mcsecrtpdec", NULL);
  const gchar *dec_pads[] = {"rtp_sink", "rtp_src", "rtcp_sink", "rtcp_src"};
  GstPad *rtp, *rtcp, *pad;
  GstElement *child;
  GstCaps *caps;

  fail_unless (enc != NULL && dec != NULL);
  rtp = gst_element_request_pad_simple (enc, "rtp_sink_0");
  rtcp = gst_element_request_pad_simple (enc, "rtcp_sink_3");
  fail_unless (rtp != NULL && rtcp != NULL);
  fail_unless_equals_string (GST_PAD_NAME (rtcp), "rtcp_sink_3");
  pad = gst_element_get_static_pad (enc, "rtp_src_0");
  fail_unless (pad != NULL);
  caps = gst_pad_query_caps (pad, NULL);
  fail_unless (caps_equal (caps, "application/x-srtp"));
  gst_caps_unref (caps);
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (enc, "rtcp_src_3");
  fail_unless (pad != NULL);
  gst_object_unref (pad);
  /* a stream has one encoder, a child named after it */
  child = gst_bin_get_by_name (GST_BIN (enc), "rtcp_3");
  fail_unless (child != NULL);
  gst_object_unref (child);
  /* a session is decimal digits, nothing else */
  fail_unless (gst_element_request_pad_simple (enc, "rtp_sink_+2") == NULL);
  fail_unless (gst_element_request_pad_simple (enc, "rtp_sink_ 2") == NULL);
  fail_unless (gst_element_request_pad_simple (enc, "rtcp_sink_2x") == NULL);
  /* the next free session */
  pad = gst_element_request_pad_simple (enc, "rtp_sink_%u");
  fail_unless_equals_string (GST_PAD_NAME (pad), "rtp_sink_1");
  gst_element_release_request_pad (enc, pad);
  gst_object_unref (pad);
  /* released: both pads and the child are gone */
  gst_element_release_request_pad (enc, rtcp);
  gst_object_unref (rtcp);
  pad = gst_element_get_static_pad (enc, "rtcp_src_3");
  fail_unless (pad == NULL);
  child = gst_bin_get_by_name (GST_BIN (enc), "rtcp_3");
  fail_unless (child == NULL);
  fail_unless_equals_int (GST_BIN_NUMCHILDREN (enc), 1);
  gst_object_unref (rtp);

  for (guint i = 0; i < G_N_ELEMENTS (dec_pads); i++) {
    pad = gst_element_get_static_pad (dec, dec_pads[i]);
    fail_unless (pad != NULL, "%s", dec_pads[i]);
    gst_object_unref (pad);
  }
  pad = gst_element_get_static_pad (dec, "rtcp_src");
  caps = gst_pad_query_caps (pad, NULL);
  fail_unless (caps_equal (caps, "application/x-rtcp"));
  gst_caps_unref (caps);
  gst_object_unref (pad);
  gst_object_unref (enc);
  gst_object_unref (dec);
}
GST_END_TEST;

static void
static_keys (GstElement *e)
{
  g_object_set (e, "key-file", key_file, NULL);
}

GST_START_TEST (test_rtpbin_static_keys)
{
  Link l;
  GstPad *pad;

  link_init (&l, NULL, NULL);
  l.wire.spi = SPI;
  static_keys (l.txenc);
  static_keys (l.txdec);
  static_keys (l.rxenc);
  static_keys (l.rxdec);
  link_connect (&l);
  /* static keys: a Sender-ID per stream, through the child's name */
  gst_child_proxy_set (GST_CHILD_PROXY (l.txenc), "rtp_0::sender-id", 1,
                       "rtcp_0::sender-id", 2, NULL);
  gst_child_proxy_set (GST_CHILD_PROXY (l.rxenc), "rtcp_0::sender-id", 3, NULL);
  /* the receiver sends no RTP: rtpbin asked it for an RTCP encoder only */
  pad = gst_element_get_static_pad (l.rxenc, "rtp_sink_0");
  fail_unless (pad == NULL);
  link_run (&l, 20);

  g_mutex_lock (&l.wire.lock);
  fail_unless_equals_int (only_sender_id (&l, WIRE_RTP), 1);
  fail_unless_equals_int (only_sender_id (&l, WIRE_SR), 2);
  fail_unless_equals_int (only_sender_id (&l, WIRE_RR), 3);
  g_mutex_unlock (&l.wire.lock);
  /* every packet decrypted, none dropped */
  fail_unless (dec_stat (l.rxdec, "rtp", "accepted") >= 20);
  fail_unless (dec_stat (l.rxdec, "rtcp", "accepted") >= 1);
  fail_unless (dec_stat (l.txdec, "rtcp", "accepted") >= 1);
  fail_unless_equals_int (dec_stat (l.rxdec, "rtp", "dropped"), 0);
  fail_unless_equals_int (dec_stat (l.rxdec, "rtcp", "dropped"), 0);
  fail_unless_equals_int (dec_stat (l.txdec, "rtcp", "dropped"), 0);
  link_clear (&l);
}
GST_END_TEST;

/* set-key switches the streams there are and the ones added later: a
 * session requested after it sends under the new SA (it took the old one
 * from the bin's properties). */
static GstBuffer *
random_key (mcsec_suite_t suite)
{
  guint8 km[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize len = mcsec_suite_key_material_len (suite);

  fail_unless (mcsec_generate_key_material (suite, km, sizeof (km)) ==
               MCSEC_OK);
  return gst_buffer_new_memdup (km, len);
}

GST_START_TEST (test_set_key_reaches_later_streams)
{
  GstElement *enc = gst_element_factory_make ("mcsecrtpenc", NULL);
  GstBuffer *key_a = random_key (MCSEC_SUITE_AES_128_GCM);
  GstBuffer *key_b = random_key (MCSEC_SUITE_AES_256_GCM);
  GstPad *p0, *p1;
  GstElement *c0, *c1;
  gboolean ok = FALSE;
  guint spi = 0;
  gint cipher = 0;

  g_object_set (enc, "key", key_a, "spi", SPI, NULL);
  p0 = gst_element_request_pad_simple (enc, "rtp_sink_0");
  g_signal_emit_by_name (enc, "set-key", (SPI + 1), "aes-256-gcm", key_b, &ok);
  fail_unless (ok);
  p1 = gst_element_request_pad_simple (enc, "rtp_sink_1");
  c0 = gst_bin_get_by_name (GST_BIN (enc), "rtp_0");
  c1 = gst_bin_get_by_name (GST_BIN (enc), "rtp_1");
  fail_unless (c0 != NULL && c1 != NULL);
  g_object_get (c1, "spi", &spi, "cipher", &cipher, NULL);
  fail_unless_equals_int (spi, (SPI + 1));
  fail_unless_equals_int (cipher, MCSEC_SUITE_AES_256_GCM);
  /* so do the bin's properties */
  g_object_get (enc, "spi", &spi, NULL);
  fail_unless_equals_int (spi, (SPI + 1));
  /* a set-key the streams refuse changes nothing for later ones */
  g_signal_emit_by_name (enc, "set-key", SPI, "no-such-cipher", key_a, &ok);
  fail_if (ok);
  g_object_get (enc, "spi", &spi, NULL);
  fail_unless_equals_int (spi, (SPI + 1));
  gst_object_unref (c0);
  gst_object_unref (c1);
  gst_element_release_request_pad (enc, p0);
  gst_element_release_request_pad (enc, p1);
  gst_object_unref (p0);
  gst_object_unref (p1);
  gst_object_unref (enc);
  gst_buffer_unref (key_a);
  gst_buffer_unref (key_b);
}

GST_END_TEST;

/* RTP and RTCP of one sender through two encoders under one key need two
 * Sender-IDs: given the same one, the streams do not start (and with
 * different counter-files neither), so no nonce is ever used twice.  The
 * gst-launch syntax for the children's settings is the one of the docs. */
static gchar *
pair_desc (guint rtp_id, guint rtcp_id, const gchar *extra)
{
  return g_strdup_printf (
      "mcsecrtpenc name=e key-file=%s rtp_0::sender-id=%u "
      "rtcp_0::sender-id=%u %s "
      "fakesrc num-buffers=5 sizetype=fixed sizemax=40 ! e.rtp_sink_0 "
      "e.rtp_src_0 ! fakesink "
      "fakesrc num-buffers=5 sizetype=fixed sizemax=40 ! e.rtcp_sink_0 "
      "e.rtcp_src_0 ! fakesink",
      key_file, rtp_id, rtcp_id, extra);
}

static GstMessage *
run_to_end (GstElement *p)
{
  GstBus *bus = gst_element_get_bus (p);
  GstMessage *m;

  gst_element_set_state (p, GST_STATE_PLAYING);
  m = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
                                  GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_object_unref (bus);
  fail_unless (m != NULL, "neither the end nor an error");
  return m;
}

GST_START_TEST (test_same_sender_id)
{
  /* the second: counter-files that differ do not make it safe */
  const gchar *extra[] = {
      "", "rtp_0::counter-file=a.ctr rtcp_0::counter-file=b.ctr"};
  gchar *d;
  GstElement *p;
  GstMessage *m;
  GError *err = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (extra); i++) {
    d = pair_desc (7, 7, extra[i]);
    p = launch (d);
    m = run_to_end (p);
    fail_unless_equals_int (GST_MESSAGE_TYPE (m), GST_MESSAGE_ERROR);
    gst_message_parse_error (m, &err, NULL);
    fail_unless (strstr (err->message, "both have sender-id 7") != NULL, "%s",
                 err->message);
    g_error_free (err);
    gst_message_unref (m);
    gst_element_set_state (p, GST_STATE_NULL);
    gst_object_unref (p);
    g_free (d);
  }

  d = pair_desc (7, 8, "");
  p = launch (d);
  m = run_to_end (p);
  fail_unless_equals_int (GST_MESSAGE_TYPE (m), GST_MESSAGE_EOS);
  gst_message_unref (m);
  {
    GstStructure *stats = NULL, *rtp = NULL, *rtcp = NULL;
    guint a = 0, b = 0;
    guint64 pa = 0, pb = 0;
    g_object_get (by_name (p, "e"), "stats", &stats, NULL);
    fail_unless (gst_structure_get (stats, "rtp_0", GST_TYPE_STRUCTURE, &rtp,
                                    "rtcp_0", GST_TYPE_STRUCTURE, &rtcp, NULL));
    gst_structure_get (rtp, "sender-id", G_TYPE_UINT, &a, "packets",
                       G_TYPE_UINT64, &pa, NULL);
    gst_structure_get (rtcp, "sender-id", G_TYPE_UINT, &b, "packets",
                       G_TYPE_UINT64, &pb, NULL);
    fail_unless (a == 7 && b == 8 && pa == 5 && pb == 5);
    gst_structure_free (rtp);
    gst_structure_free (rtcp);
    gst_structure_free (stats);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  g_free (d);
}
GST_END_TEST;

/* A feedback member signs what it sends, like a sender. */
GST_START_TEST (test_feedback_needs_signing_key)
{
  GstElement *k = gst_element_factory_make ("mcseckeysrc", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;

  gst_element_set_bus (k, bus);
  gst_util_set_object_arg (G_OBJECT (k), "role", "feedback");
  g_object_set (k, "controller", "127.0.0.1:1", "group", "video", "certificate",
                "c", "private-key", "k", "ca", "a", NULL);
  fail_unless (gst_element_set_state (k, GST_STATE_READY) ==
               GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, NULL);
  fail_unless (strstr (err->message, "signing-key-file") != NULL, "%s",
               err->message);
  g_error_free (err);
  gst_message_unref (m);
  gst_element_set_state (k, GST_STATE_NULL);
  gst_element_set_bus (k, NULL);
  gst_object_unref (bus);
  gst_object_unref (k);
}
GST_END_TEST;

/* ---- keys from a controller; the receiver a feedback member ---- */

/* The same two rtpbins, a sender (role=sender, a Sender-ID for its RTP and
 * one for its RTCP) and a feedback member (role=feedback, one Sender-ID,
 * for its RTCP): the RR reaches the sender, signed and verified. */
GST_START_TEST (test_feedback_receiver_reports)
{
  gchar *tx_extra = g_strdup_printf (
      "role=sender sender-ids=2 signing-key-file=%s/pki/cam1-sign.key", tmpdir);
  gchar *rx_extra = g_strdup_printf (
      "role=feedback sender-ids=1 signing-key-file=%s/pki/rx1-sign.key",
      tmpdir);
  gchar *ks = keysrc_desc ("cam1", tx_extra);
  gchar *kr = keysrc_desc ("rx1", rx_extra);
  Link l;
  guint rtp, sr, rr;

  link_init (&l, ks, kr);
  link_connect (&l);
  link_run (&l, 20);
  g_mutex_lock (&l.wire.lock);
  rtp = only_sender_id (&l, WIRE_RTP);
  sr = only_sender_id (&l, WIRE_SR);
  rr = only_sender_id (&l, WIRE_RR);
  g_mutex_unlock (&l.wire.lock);
  /* three Sender-IDs from the controller */
  fail_unless (rtp != sr && sr != rr && rtp != rr);
  /* the group signs (sam = block): the RR was checked against rx1's key */
  fail_unless (dec_stat (l.txdec, "rtcp", "sam-verified") >= 1);
  fail_unless (dec_stat (l.txdec, "rtcp", "accepted") >= 1);
  fail_unless_equals_int (dec_stat (l.txdec, "rtcp", "dropped-not-sender"), 0);
  fail_unless (dec_stat (l.rxdec, "rtp", "sam-verified") >= 20);
  link_clear (&l);
  g_free (ks);
  g_free (kr);
  g_free (tx_extra);
  g_free (rx_extra);
}
GST_END_TEST;

/* An RTP packet of 12 bytes of header and 20 of payload, PT 96. */
static const guint8 rtp_packet[32] = {0x80, 96,  0,    1,    0,    0,
                                      0,    160, 0x11, 0x22, 0x33, 0x44};
/* An RTCP RR without report blocks (8 bytes) and an SDES with a CNAME. */
static const guint8 rtcp_packet[20] = {
    0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44,                /* RR */
    0x81, 202, 0, 2, 0x11, 0x22, 0x33, 0x44, 1, 1, 'x', 0}; /* SDES */

/* A datagram protected as a feedback member protects it: its Sender-ID,
 * signed with its key (one signature per packet). */
static GstBuffer *
member_packet (mcsec_sa_t *sa, mcsec_sam_signer_t *signer, guint32 sender_id,
               const guint8 *data, gsize len)
{
  guint8 sam[256], out[512];
  size_t sam_len = 0, out_len = 0;
  unsigned events = 0;

  fail_unless (mcsec_sam_sign (signer, mcsec_sa_spi (sa), sender_id,
                               mcsec_sa_next_counter (sa), data, len, sam,
                               sizeof sam, &sam_len) == MCSEC_OK);
  fail_unless (mcsec_sa_protect (sa, MCSEC_NEXT_HEADER_SAM, sam, sam_len, out,
                                 sizeof out, &out_len, &events) == MCSEC_OK);
  return gst_buffer_new_memdup (out, out_len);
}

/* What a feedback member could try: media of its own.  Its encoder drops
 * it (dropped-not-sender); made by hand with its key and Sender-ID, a
 * receiver of the group drops it (dropped-not-sender) while it takes the
 * same member's RTCP. */
GST_START_TEST (test_feedback_member_sends_no_media)
{
  gchar *key_path = g_strdup_printf ("%s/pki/rx1-sign.key", tmpdir);
  gchar *crt = g_strdup_printf ("%s/pki/rx1.crt", tmpdir);
  gchar *pkey = g_strdup_printf ("%s/pki/rx1.key", tmpdir);
  gchar *ca = g_strdup_printf ("%s/pki/ca.crt", tmpdir);
  gchar *controller_addr = g_strdup_printf ("127.0.0.1:%u", port);
  gchar *kr = keysrc_desc ("rx2", "");
  gchar *rd = g_strdup_printf ("%s appsrc name=src ! mcsecdec name=d "
                               "caps=application/x-rtp ! appsink name=sink "
                               "sync=false",
                               kr);
  gchar *ke_extra = g_strdup_printf (
      "role=feedback sender-ids=1 signing-key-file=%s", key_path);
  gchar *ke = keysrc_desc ("rx1", ke_extra);
  gchar *ed = g_strdup_printf ("%s appsrc name=src format=time ! mcsecenc "
                               "name=e ! fakesink name=sink",
                               ke);
  GstElement *rx, *enc_p;
  FILE *f = fopen (key_path, "r");
  EVP_PKEY *sign_key = PEM_read_PrivateKey (f, NULL, NULL, NULL);
  mcsec_client_config_t cfg = {0};
  mcsec_client_t *client = NULL;
  mcsec_msa_t *msa = NULL;
  mcsec_sa_t *sa = NULL;
  mcsec_sam_signer_t *signer = NULL;
  mcsec_sa_config_t sc = {0};
  char *err = NULL;
  gint64 end;
  GstSample *s;
  GstStructure *st;
  guint64 v = 0;

  fclose (f);
  fail_unless (sign_key != NULL);

  /* the feedback member's own encoder refuses media */
  enc_p = launch (ed);
  gst_element_set_state (enc_p, GST_STATE_PLAYING);
  fail_unless (gst_app_src_push_buffer (
                   GST_APP_SRC (by_name (enc_p, "src")),
                   gst_buffer_new_memdup (rtp_packet, sizeof rtp_packet)) ==
               GST_FLOW_OK);
  fail_unless (gst_app_src_push_buffer (
                   GST_APP_SRC (by_name (enc_p, "src")),
                   gst_buffer_new_memdup (rtcp_packet, sizeof rtcp_packet)) ==
               GST_FLOW_OK);
  end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  do {
    guint64 sent = 0;
    GstBus *bus = gst_element_get_bus (enc_p);
    GstMessage *m =
        gst_bus_timed_pop_filtered (bus, 50 * GST_MSECOND, GST_MESSAGE_ERROR);
    fail_unless (m == NULL, "the feedback member's encoder failed");
    gst_object_unref (bus);
    g_object_get (by_name (enc_p, "e"), "stats", &st, NULL);
    gst_structure_get_uint64 (st, "dropped-not-sender", &v);
    gst_structure_get_uint64 (st, "packets", &sent);
    gst_structure_free (st);
    if (v == 1 && sent == 1)
      break;
  } while (g_get_monotonic_time () < end);
  fail_unless_equals_int ((gint)v, 1);
  gst_element_set_state (enc_p, GST_STATE_NULL);
  gst_object_unref (enc_p);

  /* a receiver of the group */
  rx = launch (rd);
  gst_element_set_state (rx, GST_STATE_PLAYING);

  /* the same member through the library, which has no such check */
  cfg.controller = controller_addr;
  cfg.certificate = crt;
  cfg.private_key = pkey;
  cfg.ca = ca;
  cfg.member.group = "video";
  cfg.member.role = MCSEC_MIKE_ROLE_FEEDBACK;
  cfg.member.sam_key = sign_key;
  cfg.member.sender_count = 1;
  fail_unless (mcsec_client_new (&cfg, &client, &err) == MCSEC_OK, "%s",
               err ? err : "");
  fail_unless (mcsec_client_start (client) == MCSEC_OK);
  end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < end) {
    gboolean sending = FALSE;
    fail_unless (mcsec_client_msa (client, &msa) == MCSEC_OK);
    for (gsize i = 0; msa && i < msa->n_sas; i++)
      if (msa->sas[i].sending) {
        sc.spi = msa->sas[i].spi;
        sc.suite = msa->sas[i].suite;
        sc.key = msa->sas[i].key;
        sc.key_len = msa->sas[i].key_len;
        sc.sender_id_bits = msa->sender_id_bits;
        sending = TRUE;
      }
    if (sending)
      break;
    mcsec_msa_free (msa);
    msa = NULL;
    g_usleep (20000);
  }
  fail_unless (msa != NULL, "the feedback member got no SA");
  /* what the controller granted: role feedback, one Sender-ID, no sending */
  fail_unless_equals_int (msa->role, MCSEC_MIKE_ROLE_FEEDBACK);
  fail_unless (!msa->may_send && msa->n_sender_ids == 1);
  fail_unless (mcsec_sa_new (&sc, &sa) == MCSEC_OK);
  fail_unless (mcsec_sa_set_sender (sa, msa->sender_ids[0], 0, 0) == MCSEC_OK);
  fail_unless (mcsec_sam_signer_new (MCSEC_SAM_PER_PACKET, sign_key, 8, 0,
                                     &signer) == MCSEC_OK);

  /* the receiver knows the member's key once the update listing it came:
   * until then its RTCP is dropped as unsigned; try until one goes through */
  end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  s = NULL;
  while (s == NULL && g_get_monotonic_time () < end) {
    fail_unless (gst_app_src_push_buffer (
                     GST_APP_SRC (by_name (rx, "src")),
                     member_packet (sa, signer, msa->sender_ids[0], rtcp_packet,
                                    sizeof rtcp_packet)) == GST_FLOW_OK);
    s = gst_app_sink_try_pull_sample (GST_APP_SINK (by_name (rx, "sink")),
                                      100 * GST_MSECOND);
  }
  fail_unless (s != NULL, "the feedback member's RTCP was not accepted");
  fail_unless (gst_buffer_memcmp (gst_sample_get_buffer (s), 0, rtcp_packet,
                                  sizeof rtcp_packet) == 0);
  gst_sample_unref (s);
  /* its media: authentic, signed, and refused */
  fail_unless (gst_app_src_push_buffer (
                   GST_APP_SRC (by_name (rx, "src")),
                   member_packet (sa, signer, msa->sender_ids[0], rtp_packet,
                                  sizeof rtp_packet)) == GST_FLOW_OK);
  s = gst_app_sink_try_pull_sample (GST_APP_SINK (by_name (rx, "sink")),
                                    500 * GST_MSECOND);
  fail_unless (s == NULL, "a feedback member's media was accepted");
  g_object_get (by_name (rx, "d"), "stats", &st, NULL);
  gst_structure_get_uint64 (st, "dropped-not-sender", &v);
  fail_unless_equals_int ((gint)v, 1);
  gst_structure_free (st);

  mcsec_sam_signer_free (signer);
  mcsec_sa_free (sa);
  mcsec_msa_free (msa);
  mcsec_client_free (client);
  EVP_PKEY_free (sign_key);
  gst_element_set_state (rx, GST_STATE_NULL);
  gst_object_unref (rx);
  g_free (rd);
  g_free (kr);
  g_free (ed);
  g_free (ke);
  g_free (ke_extra);
  g_free (key_path);
  g_free (crt);
  g_free (pkey);
  g_free (ca);
  g_free (controller_addr);
}
GST_END_TEST;

static Suite *
rtpbin_suite (void)
{
  Suite *s = suite_create ("mcsec-rtpbin");
  TCase *tc = tcase_create ("static");
  TCase *tcc = tcase_create ("controller");

  tcase_add_checked_fixture (tc, make_tmpdir, remove_tmpdir);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_pads);
  tcase_add_test (tc, test_rtpbin_static_keys);
  tcase_add_test (tc, test_same_sender_id);
  tcase_add_test (tc, test_set_key_reaches_later_streams);
  tcase_add_test (tc, test_feedback_needs_signing_key);
  suite_add_tcase (s, tc);
  tcase_add_checked_fixture (tcc, start_controller, stop_controller);
  tcase_set_timeout (tcc, 60);
  tcase_add_test (tcc, test_feedback_receiver_reports);
  tcase_add_test (tcc, test_feedback_member_sends_no_media);
  suite_add_tcase (s, tcc);
  return s;
}

int
main (int argc, char **argv)
{
  gchar *plugin_dir = NULL;
  int rc;

  /* of the system's plugins only those the tests use (as test-keysrc) */
  if (g_getenv ("MCSEC_SYSTEM_PLUGINS")) {
    gchar *dir = g_dir_make_tmp ("mcsec-plugins-XXXXXX", NULL);
    const gchar *want[] = {"libgstapp.so", "libgstcoreelements.so",
                           "libgstrtpmanager.so", "libgstrtp.so",
                           "libgstaudiotestsrc.so"};
    for (guint i = 0; dir && i < G_N_ELEMENTS (want); i++) {
      gchar *from =
          g_build_filename (g_getenv ("MCSEC_SYSTEM_PLUGINS"), want[i], NULL);
      gchar *to = g_build_filename (dir, want[i], NULL);
      if (symlink (from, to) != 0)
        g_printerr ("cannot link %s\n", from);
      g_free (from);
      g_free (to);
    }
    g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", dir, TRUE);
    plugin_dir = dir;
  }
  gst_check_init (&argc, &argv);
  tools = g_strdup (g_getenv ("MCSEC_TOOLS_DIR"));
  if (tools == NULL) {
    g_printerr ("MCSEC_TOOLS_DIR: the build's tools folder\n");
    return 1;
  }
  rc = gst_check_run_suite (rtpbin_suite (), "mcsec-rtpbin", __FILE__);
  if (plugin_dir) {
    gchar *rm[] = {(gchar *)"rm", (gchar *)"-rf", plugin_dir, NULL};
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                  NULL, NULL);
    g_free (plugin_dir);
  }
  g_free (tools);
  return rc;
}
