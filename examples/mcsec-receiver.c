/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-receiver: an application that receives a secured VP8/RTP stream.
 * It joins the group with mcseckeysrc (keys from the controller), decrypts
 * and checks sources with mcsecdec, decodes, and writes the latest frames
 * as PNG.  It prints the membership's events as they come and, at the end
 * (SIGINT/SIGTERM or --duration), what it received: packets decrypted,
 * dropped by reason, RTP packets lost (sequence gaps), frames decoded.
 *
 *   mcsec-receiver --controller HOST:PORT --group NAME --certificate FILE
 *                  --private-key FILE --ca FILE --port UDP-PORT
 *                  [--address MULTICAST-ADDRESS] [--output-dir DIR]
 *                  [--frames N] [--duration SECONDS] [--name LABEL]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/gst.h>

#define RTP_CAPS                                                               \
  "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,"          \
  "payload=96"

static GMainLoop *loop;
static const char *label = "receiver";
static guint64 rtp_packets, rtp_lost, frames;
static gint rtp_last = -1;

/* RTP sequence numbers after mcsecdec: a gap is a lost packet. */
static GstPadProbeReturn
on_rtp (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  guint8 hdr[4];

  (void)pad;
  (void)data;
  if (buf && gst_buffer_extract (buf, 0, hdr, 4) == 4) {
    gint seq = (hdr[2] << 8) | hdr[3];
    if (rtp_last >= 0)
      rtp_lost += (guint16)(seq - rtp_last - 1);
    rtp_last = seq;
    rtp_packets++;
  }
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_frame (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  (void)pad;
  (void)info;
  (void)data;
  frames++;
  return GST_PAD_PROBE_OK;
}

static void
on_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  (void)bus;
  (void)data;
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT) {
    const GstStructure *s = gst_message_get_structure (msg);
    if (gst_structure_has_name (s, "mcsec-membership")) {
      const gchar *reason = gst_structure_get_string (s, "reason");
      const gchar *text = gst_structure_get_string (s, "text");
      printf ("[%s] %s", label, gst_structure_get_string (s, "event"));
      if (reason && *reason)
        printf (" (%s)", reason);
      if (text && *text)
        printf (": %s", text);
      printf ("\n");
      fflush (stdout);
    }
  } else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    printf ("[%s] error: %s\n", label, err->message);
    fflush (stdout);
    g_error_free (err);
    g_main_loop_quit (loop);
  }
}

static gboolean
on_stop (gpointer data)
{
  (void)data;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static void
print_stats (GstElement *dec)
{
  GstStructure *s = NULL;
  guint64 accepted = 0, dropped = 0;

  g_object_get (dec, "stats", &s, NULL);
  gst_structure_get_uint64 (s, "accepted", &accepted);
  gst_structure_get_uint64 (s, "dropped", &dropped);
  printf ("stats %s decrypted=%" G_GUINT64_FORMAT " dropped=%" G_GUINT64_FORMAT,
          label, accepted, dropped);
  for (gint i = 0; i < gst_structure_n_fields (s); i++) {
    const gchar *name = gst_structure_nth_field_name (s, i);
    guint64 v = 0;
    if (g_str_has_prefix (name, "dropped-") &&
        gst_structure_get_uint64 (s, name, &v) && v)
      printf (" %s=%" G_GUINT64_FORMAT, name, v);
  }
  printf (" rtp-lost=%" G_GUINT64_FORMAT " frames=%" G_GUINT64_FORMAT "\n",
          rtp_lost, frames);
  gst_structure_free (s);
}

int
main (int argc, char **argv)
{
  const char *controller = NULL, *group = NULL, *cert = NULL, *key = NULL,
             *ca = NULL, *address = NULL, *outdir = NULL;
  int port = 0, nframes = 5;
  double duration = 0;
  GError *error = NULL;
  GstElement *pipeline, *dec, *sinkq;
  GstPad *pad;
  gchar *desc, *out = NULL;

  gst_init (&argc, &argv);
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp (k, "--controller"))
      controller = v;
    else if (!strcmp (k, "--group"))
      group = v;
    else if (!strcmp (k, "--certificate"))
      cert = v;
    else if (!strcmp (k, "--private-key"))
      key = v;
    else if (!strcmp (k, "--ca"))
      ca = v;
    else if (!strcmp (k, "--port"))
      port = atoi (v);
    else if (!strcmp (k, "--address"))
      address = v;
    else if (!strcmp (k, "--output-dir"))
      outdir = v;
    else if (!strcmp (k, "--frames"))
      nframes = atoi (v);
    else if (!strcmp (k, "--duration"))
      duration = atof (v);
    else if (!strcmp (k, "--name"))
      label = v;
    else {
      fprintf (stderr,
               "mcsec-receiver: unknown option %s (see the source "
               "header for the usage)\n",
               k);
      return 2;
    }
  }
  if (!controller || !group || !cert || !key || !ca || port <= 0) {
    fprintf (stderr, "usage: mcsec-receiver --controller HOST:PORT --group "
                     "NAME --certificate FILE --private-key FILE --ca FILE "
                     "--port PORT [--address ADDR] [--output-dir DIR] "
                     "[--frames N] [--duration S] [--name LABEL]\n");
    return 2;
  }
  if (outdir) {
    g_mkdir_with_parents (outdir, 0755);
    out = g_strdup_printf ("videoconvert ! pngenc ! multifilesink "
                           "location=%s/frame-%%05d.png max-files=%d",
                           outdir, nframes);
  }
  desc = g_strdup_printf (
      "mcseckeysrc controller=%s group=%s certificate=%s private-key=%s "
      "ca=%s "
      "udpsrc port=%d %s%s ! mcsecdec name=dec caps=\"" RTP_CAPS "\" ! "
      "rtpvp8depay ! vp8dec ! queue name=frames ! %s",
      controller, group, cert, key, ca, port, address ? "address=" : "",
      address ? address : "", out ? out : "fakesink");
  pipeline = gst_parse_launch (desc, &error);
  g_free (desc);
  g_free (out);
  if (pipeline == NULL || error) {
    fprintf (stderr, "mcsec-receiver: %s\n", error ? error->message : "?");
    return 1;
  }
  dec = gst_bin_get_by_name (GST_BIN (pipeline), "dec");
  pad = gst_element_get_static_pad (dec, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_rtp, NULL, NULL);
  gst_object_unref (pad);
  sinkq = gst_bin_get_by_name (GST_BIN (pipeline), "frames");
  pad = gst_element_get_static_pad (sinkq, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, NULL, NULL);
  gst_object_unref (pad);
  gst_object_unref (sinkq);

  loop = g_main_loop_new (NULL, FALSE);
  {
    GstBus *bus = gst_element_get_bus (pipeline);
    gst_bus_add_signal_watch (bus);
    g_signal_connect (bus, "message", G_CALLBACK (on_message), NULL);
    gst_object_unref (bus);
  }
  g_unix_signal_add (SIGINT, on_stop, NULL);
  g_unix_signal_add (SIGTERM, on_stop, NULL);
  if (duration > 0)
    g_timeout_add ((guint)(duration * 1000), on_stop, NULL);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    /* the bus has the reason (a setting, a refusal) */
    GstBus *bus = gst_element_get_bus (pipeline);
    GstMessage *m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (m) {
      on_message (bus, m, NULL);
      gst_message_unref (m);
    }
    gst_object_unref (bus);
  } else {
    g_main_loop_run (loop);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  print_stats (dec);
  gst_object_unref (dec);
  gst_object_unref (pipeline);
  g_main_loop_unref (loop);
  return 0;
}
