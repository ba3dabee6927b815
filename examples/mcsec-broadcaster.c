/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-broadcaster: an application that sends a secured stream: VP8 video
 * and, with --audio, L16 audio, each through its own mcsecenc, both keyed
 * and signed by one mcseckeysrc membership (two Sender-IDs).  It prints the
 * membership's events as they come, and each encoder's SPI, Sender-ID and
 * packet count every two seconds and at the end.
 *
 *   mcsec-broadcaster --controller HOST:PORT --group NAME
 *                     --certificate FILE --private-key FILE --ca FILE
 *                     --signing-key-file FILE --to HOST:PORT[,HOST:PORT...]
 *                     [--audio-to HOST:PORT[,...]] [--duration SECONDS]
 *
 * Video goes to --to, audio (if --audio-to is given) to --audio-to.
 * --signing-key-file is mcseckeysrc's signing-key-file (--signing-key, its
 * older name, is still read).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/gst.h>

static GMainLoop *loop;
static GstElement *encoders[2];

static void
print_encoders (const char *when)
{
  for (int i = 0; i < 2 && encoders[i]; i++) {
    GstStructure *s = NULL;
    guint spi = 0, sid = 0;
    guint64 packets = 0, signed_ = 0;
    g_object_get (encoders[i], "stats", &s, NULL);
    gst_structure_get_uint (s, "spi", &spi);
    gst_structure_get_uint (s, "sender-id", &sid);
    gst_structure_get_uint64 (s, "packets", &packets);
    gst_structure_get_uint64 (s, "sam-signed", &signed_);
    printf ("%s %s spi=0x%08x sender-id=%u packets=%" G_GUINT64_FORMAT
            " signed=%" G_GUINT64_FORMAT "\n",
            when, GST_OBJECT_NAME (encoders[i]), spi, sid, packets, signed_);
    gst_structure_free (s);
  }
  fflush (stdout);
}

static gboolean
on_tick (gpointer data)
{
  (void)data;
  print_encoders ("stats");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_stop (gpointer data)
{
  GstElement *pipeline = data;
  /* end of stream first: the last SAM block's authenticator goes out */
  gst_element_send_event (pipeline, gst_event_new_eos ());
  return G_SOURCE_REMOVE;
}

static void
on_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  (void)bus;
  (void)data;
  switch (GST_MESSAGE_TYPE (msg)) {
  case GST_MESSAGE_ELEMENT: {
    const GstStructure *s = gst_message_get_structure (msg);
    if (gst_structure_has_name (s, "mcsec-membership"))
      printf ("membership %s %s %s\n", gst_structure_get_string (s, "event"),
              gst_structure_get_string (s, "reason"),
              gst_structure_get_string (s, "text"));
    fflush (stdout);
    break;
  }
  case GST_MESSAGE_ERROR: {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    printf ("error: %s\n", err->message);
    g_error_free (err);
    g_main_loop_quit (loop);
    break;
  }
  case GST_MESSAGE_EOS:
    g_main_loop_quit (loop);
    break;
  default:
    break;
  }
}

int
main (int argc, char **argv)
{
  const char *controller = NULL, *group = NULL, *cert = NULL, *key = NULL,
             *ca = NULL, *signing = NULL, *to = NULL, *audio_to = NULL;
  double duration = 0;
  GString *desc;
  GError *error = NULL;
  GstElement *pipeline;
  GstBus *bus;

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
    else if (!strcmp (k, "--signing-key-file") ||
             !strcmp (k, "--signing-key")) /* (older name) */
      signing = v;
    else if (!strcmp (k, "--to"))
      to = v;
    else if (!strcmp (k, "--audio-to"))
      audio_to = v;
    else if (!strcmp (k, "--duration"))
      duration = atof (v);
    else {
      fprintf (stderr, "mcsec-broadcaster: unknown option %s\n", k);
      return 2;
    }
  }
  if (!controller || !group || !cert || !key || !ca || !signing || !to) {
    fprintf (stderr,
             "usage: mcsec-broadcaster --controller HOST:PORT --group NAME "
             "--certificate FILE --private-key FILE --ca FILE "
             "--signing-key-file FILE --to HOST:PORT[,...] [--audio-to "
             "HOST:PORT[,...]] "
             "[--duration S]\n");
    return 2;
  }
  desc = g_string_new (NULL);
  /* one membership, two Sender-IDs: one per encoder */
  g_string_append_printf (
      desc,
      "mcseckeysrc controller=%s group=%s role=sender sender-ids=2 "
      "certificate=%s private-key=%s ca=%s signing-key-file=%s "
      "videotestsrc is-live=true pattern=ball "
      "! video/x-raw,width=320,height=240,framerate=30/1 "
      "! vp8enc deadline=1 ! rtpvp8pay "
      "! mcsecenc name=video sam-block-size=16 "
      "! multiudpsink clients=%s ",
      controller, group, cert, key, ca, signing, to);
  if (audio_to)
    g_string_append_printf (
        desc,
        "audiotestsrc is-live=true samplesperbuffer=160 "
        "! audio/x-raw,format=S16BE,rate=8000,channels=1 ! rtpL16pay "
        "! mcsecenc name=audio sam-block-size=16 "
        "! multiudpsink clients=%s",
        audio_to);
  pipeline = gst_parse_launch (desc->str, &error);
  g_string_free (desc, TRUE);
  if (pipeline == NULL || error) {
    fprintf (stderr, "mcsec-broadcaster: %s\n", error ? error->message : "?");
    return 1;
  }
  encoders[0] = gst_bin_get_by_name (GST_BIN (pipeline), "video");
  encoders[1] = gst_bin_get_by_name (GST_BIN (pipeline), "audio");
  loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipeline);
  gst_bus_add_signal_watch (bus);
  g_signal_connect (bus, "message", G_CALLBACK (on_message), NULL);
  g_unix_signal_add (SIGINT, on_stop, pipeline);
  g_unix_signal_add (SIGTERM, on_stop, pipeline);
  if (duration > 0)
    g_timeout_add ((guint)(duration * 1000), on_stop, pipeline);
  g_timeout_add_seconds (2, on_tick, NULL);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE)
    g_main_loop_run (loop);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  print_encoders ("final");
  for (int i = 0; i < 2; i++)
    if (encoders[i])
      gst_object_unref (encoders[i]);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  g_main_loop_unref (loop);
  return 0;
}
