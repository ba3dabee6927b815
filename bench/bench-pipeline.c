/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-pipeline: ns/packet of whole GStreamer pipelines.  N pre-built
 * 1212-byte RTP packets are pushed as buffer lists from appsrc through
 *   identity | mcsecenc | mcsecenc ! mcsecdec |
 *   srtpenc (AES-128-GCM) | srtpenc ! srtpdec (AES-128-GCM) |
 *   srtpenc (default profile) | srtpenc ! srtpdec (default profile)
 * into fakesink, all in the same run; each case is timed from PLAYING to
 * EOS, several times in turns, and the best is kept.  The packets of every
 * run are built fresh (writable, as a payloader makes them) before the
 * clock starts.  Every run is a child process of its own (this program
 * with --run), because Debian 1.22's srtpdec corrupts the heap when fed
 * buffer lists, and one crashing baseline must not take the others down.
 *
 *   bench-pipeline [N [NAME-FILTER]]   (GST_PLUGIN_PATH must find mcsec)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#define PACKET_SIZE 1212
#define LIST_LEN 64
#define ROUNDS 5
#define SSRC 0x12345678u
#define RTP_CAPS                                                               \
  "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,"          \
  "payload=(int)96,ssrc=(uint)305419896"

/* 16-byte AES key || 4-byte salt; 16 || 12 and 16 || 14 for SRTP */
#define MCSEC_KEY "000102030405060708090a0b0c0d0e0f10111213"
#define SRTP_GCM_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b"
#define SRTP_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"

typedef struct {
  const char *name;
  const char *chain;
  double best;
  int failed;
} bench_case_t;

static guint n_packets = 200000;
static guint gst_complaints;

/* Debian 1.22's srtpdec, fed buffer lists by srtpenc, trips GStreamer's
 * refcount checks (warnings and criticals inside libgstsrtp); count them
 * instead of printing thousands of lines. */
static void
count_complaint (const gchar *domain, GLogLevelFlags level, const gchar *msg,
                 gpointer data)
{
  (void)domain;
  (void)level;
  (void)msg;
  (void)data;
  gst_complaints++;
}

static GstBufferList **
make_lists (guint *n_lists)
{
  guint n = (n_packets + LIST_LEN - 1) / LIST_LEN;
  GstBufferList **lists = g_new (GstBufferList *, n);
  guint seq = 0;

  for (guint l = 0; l < n; l++) {
    lists[l] = gst_buffer_list_new_sized (LIST_LEN);
    for (guint i = 0; i < LIST_LEN && seq < n_packets; i++, seq++) {
      GstBuffer *b = gst_buffer_new_allocate (NULL, PACKET_SIZE, NULL);
      GstMapInfo map;
      gst_buffer_map (b, &map, GST_MAP_WRITE);
      memset (map.data, 0x5a, PACKET_SIZE);
      map.data[0] = 0x80;
      map.data[1] = 96;
      map.data[2] = (guint8)(seq >> 8);
      map.data[3] = (guint8)seq;
      GST_WRITE_UINT32_BE (map.data + 4, seq * 3000);
      GST_WRITE_UINT32_BE (map.data + 8, SSRC);
      gst_buffer_unmap (b, &map);
      GST_BUFFER_PTS (b) = seq * GST_MSECOND;
      gst_buffer_list_add (lists[l], b);
    }
  }
  *n_lists = n;
  return lists;
}

/* One timed run: ns/packet, or -1 on failure. */
static double
run_case (const bench_case_t *c)
{
  gchar *desc =
      g_strdup_printf ("appsrc name=src format=time caps=\"%s\" "
                       "max-bytes=0 block=false ! %s ! "
                       "fakesink name=sink sync=false enable-last-sample=false",
                       RTP_CAPS, c->chain);
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  GstElement *src;
  GstBufferList **lists;
  guint n_lists;
  GstBus *bus;
  GstMessage *m;
  gint64 t0, t1;
  double result = -1;

  g_free (desc);
  if (p == NULL) {
    g_printerr ("  %s: %s\n", c->name, err->message);
    g_error_free (err);
    return -1;
  }
  src = gst_bin_get_by_name (GST_BIN (p), "src");
  lists = make_lists (&n_lists);
  /* everything is queued in appsrc, and the first list prerolls, before
   * the clock starts */
  for (guint l = 0; l < n_lists; l++)
    gst_app_src_push_buffer_list (GST_APP_SRC (src), lists[l]);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  gst_element_set_state (p, GST_STATE_PAUSED);
  gst_element_get_state (p, NULL, NULL, 30 * GST_SECOND);
  t0 = g_get_monotonic_time ();
  gst_element_set_state (p, GST_STATE_PLAYING);
  bus = gst_element_get_bus (p);
  m = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
                                  GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  t1 = g_get_monotonic_time ();
  if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS) {
    result = (double)(t1 - t0) * 1000.0 / n_packets;
  } else if (m) {
    GError *e = NULL;
    gst_message_parse_error (m, &e, NULL);
    g_printerr ("  %s: %s\n", c->name, e->message);
    g_error_free (e);
  }
  if (m)
    gst_message_unref (m);
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (p);
  g_free (lists);
  return result;
}

/* Run case i once in a child: its ns/packet, or -1 (failed or crashed). */
static double
run_in_child (const char *self_path, guint i, gboolean *crashed)
{
  gchar *argv[] = {(gchar *)self_path, g_strdup_printf ("%u", n_packets),
                   (gchar *)"--run", g_strdup_printf ("%u", i), NULL};
  gchar *out = NULL;
  gint status = 0;
  double t = -1;

  *crashed = FALSE;
  if (g_spawn_sync (NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                    &out, NULL, &status, NULL)) {
    if (g_spawn_check_wait_status (status, NULL))
      t = g_ascii_strtod (out, NULL);
    else
      *crashed = WIFSIGNALED (status);
  }
  g_free (out);
  g_free (argv[1]);
  g_free (argv[3]);
  return t > 0 ? t : -1;
}

int
main (int argc, char **argv)
{
  bench_case_t cases[] = {
      {"identity", "identity", 0, 0},
      {"mcsecenc aes-128-gcm", "mcsecenc key=" MCSEC_KEY, 0, 0},
      {"mcsecenc ! mcsecdec",
       "mcsecenc key=" MCSEC_KEY " ! mcsecdec key=" MCSEC_KEY
       " caps=\"" RTP_CAPS "\"",
       0, 0},
      {"srtpenc AES-128-GCM",
       "srtpenc key=" SRTP_GCM_KEY " rtp-cipher=aes-128-gcm rtp-auth=null "
       "rtcp-cipher=aes-128-gcm rtcp-auth=null",
       0, 0},
      {"srtpenc ! srtpdec AES-128-GCM",
       "srtpenc key=" SRTP_GCM_KEY " rtp-cipher=aes-128-gcm rtp-auth=null "
       "rtcp-cipher=aes-128-gcm rtcp-auth=null ! srtpdec",
       0, 0},
      {"srtpenc default (AES-CM + HMAC-SHA1-80)", "srtpenc key=" SRTP_KEY, 0,
       0},
      {"srtpenc ! srtpdec default", "srtpenc key=" SRTP_KEY " ! srtpdec", 0, 0},
  };
  const guint n_cases = G_N_ELEMENTS (cases);
  gboolean crashed[G_N_ELEMENTS (cases)] = {0};
  double id, enc, encdec, sgcm, sdef;

  /* freeing the packets must not hand memory back to the kernel in the
   * middle of a timed run (page faults would be billed to the element) */
  mallopt (M_TRIM_THRESHOLD, 1 << 30);
  mallopt (M_MMAP_THRESHOLD, 1 << 30);
  gst_init (&argc, &argv);
  g_log_set_handler ("GStreamer", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL,
                     count_complaint, NULL);
  if (argc > 1)
    n_packets = (guint)g_ascii_strtoull (argv[1], NULL, 10);
  if (argc > 3 && strcmp (argv[2], "--run") == 0) {
    guint i = (guint)g_ascii_strtoull (argv[3], NULL, 10);
    double t = i < n_cases ? run_case (&cases[i]) : -1;
    printf ("%.1f\n", t);
    return t > 0 ? 0 : 1;
  }
  if (gst_element_factory_find ("mcsecenc") == NULL) {
    g_printerr ("bench-pipeline: no mcsecenc: set GST_PLUGIN_PATH\n");
    return 1;
  }
  /* only the cases whose name contains the filter (identity always) */
  for (guint i = 1; argc > 2 && i < n_cases; i++)
    if (strstr (cases[i].name, argv[2]) == NULL)
      cases[i].failed = 2;
  for (guint i = 0; i < n_cases; i++)
    cases[i].best = 1e18;
  for (int r = 0; r < ROUNDS; r++) {
    for (guint i = 0; i < n_cases; i++) {
      double t;
      if (cases[i].failed)
        continue;
      t = run_in_child (argv[0], i, &crashed[i]);
      if (t < 0)
        cases[i].failed = 1;
      else if (t < cases[i].best)
        cases[i].best = t;
    }
  }
  printf ("bench-pipeline: %u RTP packets of %d bytes in buffer lists of %d, "
          "appsrc ! X ! fakesink; best of %d runs taken in turns\n",
          n_packets, PACKET_SIZE, LIST_LEN, ROUNDS);
  for (guint i = 0; i < n_cases; i++) {
    if (cases[i].failed == 2)
      continue;
    if (cases[i].failed)
      printf ("  %-42s %s\n", cases[i].name,
              crashed[i] ? "CRASHED (a bug of that element, not measured)"
                         : "failed");
    else
      printf ("  %-42s %8.0f ns/packet  (%.2fx identity)\n", cases[i].name,
              cases[i].best, cases[i].best / cases[0].best);
  }
  id = cases[0].best;
  enc = cases[1].best;
  encdec = cases[2].best;
  sgcm = cases[3].best;
  sdef = cases[5].best;
  if (!cases[1].failed)
    printf ("\n  mcsecenc cost over identity: %.0f ns/packet\n", enc - id);
  if (!cases[1].failed && !cases[2].failed)
    printf ("  mcsecdec cost (enc!dec - enc): %.0f ns/packet\n", encdec - enc);
  if (!cases[1].failed && !cases[3].failed)
    printf ("  srtpenc AES-128-GCM / mcsecenc: %.2fx (goal >= 2x)\n",
            sgcm / enc);
  if (!cases[1].failed && !cases[5].failed)
    printf ("  srtpenc default / mcsecenc: %.2fx\n", sdef / enc);
  printf ("  (goal: mcsecenc <= identity + 1.2 x the library's protect "
          "cost, which bench-esp measures)\n");
  return 0;
}
