/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mike-peer: a member process for the MIKE tests and benchmarks.  It joins
 * a group with mcseckeysrc and either sends numbered datagrams at a fixed
 * rate through mcsecenc, or receives them through mcsecdec and reports
 * what arrived: how many, which numbers are missing between the first and
 * the last, per-SPI acceptance, drops by reason, the time from start to the
 * first decrypted datagram.  Output: key=value lines on standard output.
 *
 *   mike-peer send    --to HOST:PORT[,HOST:PORT...] [--rate PPS] ...
 *   mike-peer receive --port PORT [--group-address ADDR] ...
 * Both take --rekey-interface IFACE (the rekey channel's, and with
 * --group-address the interface to join the media group on).
 * common: --controller HOST:PORT[,HOST:PORT...] (repeated: one list)
 *         --group --certificate --private-key --ca
 *         [--signing-key-file] [--duration S] [--size BYTES] [--sam-block-size
 * N]
 *         [--stats-file FILE]  (rewritten with the stats every 100 ms)
 * send also: --inner-udp-port PORT (mcsecenc's: Next Header 17, for a
 *         kernel receiver; no --signing-key-file then) --fill BYTE (what
 *         follows the number and time in each datagram, default 0x5a: tells
 *         senders apart at a receiver that is not mike-peer)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#define MAX_SPIS 64

#ifdef __SANITIZE_ADDRESS__
/* Under AddressSanitizer (the environment's ASAN_OPTIONS add to this):
 * full stacks for every allocation.  GLib replaces its quark array when
 * GStreamer's quarks outgrow it and keeps the old one on purpose (readers
 * take no lock); the first array is allocated by GLib's constructor, and
 * only a full stack reaches _dl_init, where tests/lsan.supp lets it be.
 * The fast unwinder stops in GLib (built without frame pointers), so
 * every receiver reported those 16 KiB as a leak. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}
#endif

static struct {
  gboolean send;
  const gchar *group, *cert, *key, *ca, *signing, *to, *sfile, *rekey_if,
      *group_addr;
  GString *controller; /* the list, in order */
  gint port, inner_port;
  gdouble rate, duration;
  guint size, block, fill;
} opt = {.rate = 200, .duration = 5, .size = 200, .block = 16, .fill = 0x5a};

static GstElement *pipeline, *dec, *keysrc;
static GMainLoop *loop;
static gint64 t_start;
static volatile gint stop_sending;

/* receiver state (streaming thread) */
static GMutex lock;
static guint8 *seen; /* bitmap of sequence numbers */
static guint64 seen_bits, received, dups, first_seq = G_MAXUINT64, last_seq;
static gint64 first_rx_us = -1;
static guint32 spis[MAX_SPIS];
static guint64 spi_accepted[MAX_SPIS];
static guint n_spis;
static GString *events;

static void
note_event (const gchar *fmt, ...)
{
  va_list ap;
  gchar *s;
  va_start (ap, fmt);
  s = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_mutex_lock (&lock);
  g_string_append_printf (events, "event=%.3f %s\n",
                          (g_get_monotonic_time () - t_start) / 1e6, s);
  g_mutex_unlock (&lock);
  g_free (s);
}

static GstFlowReturn
on_sample (GstAppSink *sink, gpointer data)
{
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buf = sample ? gst_sample_get_buffer (sample) : NULL;
  guint8 hdr[8];

  (void)data;
  if (buf && gst_buffer_extract (buf, 0, hdr, 8) == 8) {
    guint64 seq = GST_READ_UINT64_BE (hdr);
    g_mutex_lock (&lock);
    if (first_rx_us < 0)
      first_rx_us = g_get_monotonic_time () - t_start;
    if (seq < seen_bits) {
      if (seen[seq / 8] & (1u << (seq % 8)))
        dups++;
      seen[seq / 8] |= 1u << (seq % 8);
    }
    received++;
    if (seq < first_seq)
      first_seq = seq;
    if (seq > last_seq)
      last_seq = seq;
    g_mutex_unlock (&lock);
  }
  if (sample)
    gst_sample_unref (sample);
  return GST_FLOW_OK;
}

/* SAs leave the stats when they retire: keep the highest count seen. */
static void
poll_spis (void)
{
  GstStructure *s = NULL;
  const GValue *sas;

  g_object_get (dec, "stats", &s, NULL);
  if (s == NULL)
    return;
  sas = gst_structure_get_value (s, "sas");
  g_mutex_lock (&lock);
  for (guint i = 0; sas && i < gst_value_array_get_size (sas); i++) {
    const GstStructure *ss =
        gst_value_get_structure (gst_value_array_get_value (sas, i));
    guint spi = 0, j;
    guint64 acc = 0;
    gst_structure_get_uint (ss, "spi", &spi);
    gst_structure_get_uint64 (ss, "accepted", &acc);
    for (j = 0; j < n_spis && spis[j] != spi; j++)
      ;
    if (j == n_spis && n_spis < MAX_SPIS)
      spis[n_spis++] = spi;
    if (j < MAX_SPIS && acc > spi_accepted[j])
      spi_accepted[j] = acc;
  }
  g_mutex_unlock (&lock);
  gst_structure_free (s);
}

static void
print_report (FILE *f)
{
  GstStructure *s = NULL;
  guint64 unique = 0;

  if (!opt.send) {
    poll_spis ();
    g_object_get (dec, "stats", &s, NULL);
  }
  g_mutex_lock (&lock);
  fputs (events->str, f);
  if (opt.send)
    fprintf (f, "sent=%" G_GUINT64_FORMAT "\n", received);
  if (!opt.send) {
    for (guint64 i = first_seq; received && i <= last_seq && i < seen_bits; i++)
      unique += (seen[i / 8] >> (i % 8)) & 1;
    fprintf (f, "received=%" G_GUINT64_FORMAT "\n", received);
    fprintf (f, "unique=%" G_GUINT64_FORMAT "\n", unique);
    fprintf (f, "duplicates=%" G_GUINT64_FORMAT "\n", dups);
    fprintf (f, "first=%" G_GUINT64_FORMAT "\n", received ? first_seq : 0);
    fprintf (f, "last=%" G_GUINT64_FORMAT "\n", last_seq);
    fprintf (f, "missing=%" G_GUINT64_FORMAT "\n",
             received ? last_seq - first_seq + 1 - unique : 0);
    fprintf (f, "first-rx-ms=%.1f\n",
             first_rx_us < 0 ? -1.0 : first_rx_us / 1000.0);
    for (guint i = 0; i < n_spis; i++)
      fprintf (f, "spi-%08x=%" G_GUINT64_FORMAT "\n", spis[i], spi_accepted[i]);
  }
  g_mutex_unlock (&lock);
  if (s) {
    for (gint i = 0; i < gst_structure_n_fields (s); i++) {
      const gchar *name = gst_structure_nth_field_name (s, i);
      guint64 v = 0;
      if ((g_str_has_prefix (name, "dropped") ||
           g_str_has_prefix (name, "sam-")) &&
          gst_structure_get_uint64 (s, name, &v) && v)
        fprintf (f, "%s=%" G_GUINT64_FORMAT "\n", name, v);
    }
    gst_structure_free (s);
  }
  fflush (f);
}

static gboolean
on_tick (gpointer data)
{
  (void)data;
  if (!opt.send)
    poll_spis ();
  if (opt.sfile) {
    gchar *tmp = g_strconcat (opt.sfile, ".tmp", NULL);
    FILE *f = fopen (tmp, "w");
    if (f) {
      print_report (f);
      fclose (f);
      rename (tmp, opt.sfile);
    }
    g_free (tmp);
  }
  if (g_get_monotonic_time () - t_start > opt.duration * G_USEC_PER_SEC)
    g_main_loop_quit (loop);
  return G_SOURCE_CONTINUE;
}

static gpointer
sender_thread (gpointer data)
{
  GstAppSrc *src = data;
  guint64 seq = 0;
  gint64 t0 = g_get_monotonic_time ();

  while (!g_atomic_int_get (&stop_sending)) {
    gint64 due = t0 + (gint64)(seq * (G_USEC_PER_SEC / opt.rate));
    gint64 now = g_get_monotonic_time ();
    GstBuffer *b;
    GstMapInfo m;
    if (due > now)
      g_usleep ((gulong)(due - now));
    b = gst_buffer_new_allocate (NULL, opt.size, NULL);
    gst_buffer_map (b, &m, GST_MAP_WRITE);
    memset (m.data, (int)opt.fill, m.size);
    GST_WRITE_UINT64_BE (m.data, seq);
    GST_WRITE_UINT64_BE (m.data + 8, (guint64)g_get_monotonic_time ());
    gst_buffer_unmap (b, &m);
    /* blocks while mcsecenc waits for its first keys */
    if (gst_app_src_push_buffer (src, b) != GST_FLOW_OK)
      break;
    seq++;
    g_mutex_lock (&lock);
    received = seq; /* for the report: what was sent so far */
    g_mutex_unlock (&lock);
    if (seq == 1)
      note_event ("first-pushed");
  }
  g_mutex_lock (&lock);
  received = seq; /* for the report: what was sent */
  g_mutex_unlock (&lock);
  return NULL;
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
      note_event ("%s reason=%s", gst_structure_get_string (s, "event"),
                  gst_structure_get_string (s, "reason"));
    break;
  }
  case GST_MESSAGE_ERROR: {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    note_event ("error text=\"%s\"", err->message);
    g_error_free (err);
    g_main_loop_quit (loop);
    break;
  }
  default:
    break;
  }
}

static gboolean
on_signal (gpointer data)
{
  (void)data;
  g_main_loop_quit (loop);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  GString *desc = g_string_new (NULL);
  GError *error = NULL;
  GThread *thread = NULL;
  GstBus *bus;

  gst_init (&argc, &argv);
  if (argc < 2 || (strcmp (argv[1], "send") && strcmp (argv[1], "receive"))) {
    fprintf (stderr, "usage: mike-peer send|receive OPTIONS (see source)\n");
    return 2;
  }
  opt.send = strcmp (argv[1], "send") == 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp (k, "--controller")) {
      if (opt.controller == NULL)
        opt.controller = g_string_new (v);
      else
        g_string_append_printf (opt.controller, ",%s", v);
    } else if (!strcmp (k, "--group"))
      opt.group = v;
    else if (!strcmp (k, "--certificate"))
      opt.cert = v;
    else if (!strcmp (k, "--private-key"))
      opt.key = v;
    else if (!strcmp (k, "--ca"))
      opt.ca = v;
    else if (!strcmp (k, "--signing-key-file") ||
             !strcmp (k, "--signing-key")) /* (older name) */
      opt.signing = v;
    else if (!strcmp (k, "--rekey-interface"))
      opt.rekey_if = v;
    else if (!strcmp (k, "--group-address"))
      opt.group_addr = v;
    else if (!strcmp (k, "--to"))
      opt.to = v;
    else if (!strcmp (k, "--port"))
      opt.port = atoi (v);
    else if (!strcmp (k, "--rate"))
      opt.rate = atof (v);
    else if (!strcmp (k, "--duration"))
      opt.duration = atof (v);
    else if (!strcmp (k, "--size"))
      opt.size = (guint)atoi (v);
    else if (!strcmp (k, "--sam-block-size"))
      opt.block = (guint)atoi (v);
    else if (!strcmp (k, "--inner-udp-port"))
      opt.inner_port = atoi (v);
    else if (!strcmp (k, "--fill"))
      opt.fill = (guint)strtoul (v, NULL, 0) & 0xff;
    else if (!strcmp (k, "--stats-file"))
      opt.sfile = v;
    else {
      fprintf (stderr, "mike-peer: unknown option %s\n", k);
      return 2;
    }
  }
  if (opt.size < 16)
    opt.size = 16;
  g_mutex_init (&lock);
  events = g_string_new (NULL);
  g_string_append_printf (
      desc, "mcseckeysrc name=k group=%s certificate=%s private-key=%s ca=%s ",
      opt.group, opt.cert, opt.key, opt.ca);
  if (opt.rekey_if)
    g_string_append_printf (desc, "rekey-interface=%s ", opt.rekey_if);
  if (opt.send) {
    g_string_append (desc, "role=sender ");
    if (opt.signing)
      g_string_append_printf (desc, "signing-key-file=%s ", opt.signing);
    g_string_append_printf (desc, "appsrc name=src is-live=true format=time "
                                  "max-bytes=0 block=true ! mcsecenc name=e ");
    if (opt.inner_port)
      g_string_append_printf (desc, "inner-udp-port=%d ", opt.inner_port);
    else
      g_string_append_printf (desc, "sam-block-size=%u ", opt.block);
    g_string_append_printf (desc, "! multiudpsink clients=%s sync=false",
                            opt.to);
  } else
    g_string_append_printf (
        desc,
        "udpsrc port=%d buffer-size=4194304 %s%s%s%s ! mcsecdec name=d "
        "caps=application/octet-stream ! appsink name=sink sync=false "
        "emit-signals=true",
        opt.port, opt.group_addr ? "address=" : "",
        opt.group_addr ? opt.group_addr : "",
        opt.group_addr && opt.rekey_if ? " multicast-iface=" : "",
        opt.group_addr && opt.rekey_if ? opt.rekey_if : "");
  pipeline = gst_parse_launch (desc->str, &error);
  g_string_free (desc, TRUE);
  if (pipeline == NULL || error != NULL) {
    fprintf (stderr, "mike-peer: %s\n", error ? error->message : "no pipeline");
    return 2;
  }
  keysrc = gst_bin_get_by_name (GST_BIN (pipeline), "k");
  /* set here, not in the description: a list has commas */
  g_object_set (keysrc, "controller",
                opt.controller ? opt.controller->str : NULL, NULL);
  loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipeline);
  gst_bus_add_signal_watch (bus);
  g_signal_connect (bus, "message", G_CALLBACK (on_message), NULL);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);
  t_start = g_get_monotonic_time ();
  if (!opt.send) {
    GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
    dec = gst_bin_get_by_name (GST_BIN (pipeline), "d");
    seen_bits = (guint64)(opt.rate * (opt.duration + 60) + 100000);
    seen = g_malloc0 (seen_bits / 8 + 1);
    g_signal_connect (sink, "new-sample", G_CALLBACK (on_sample), NULL);
    gst_object_unref (sink);
  }
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    fprintf (stderr, "mike-peer: cannot start the pipeline\n");
    printf ("event=0 error text=\"cannot start\"\n");
    return 1;
  }
  if (opt.send) {
    GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
    thread = g_thread_new ("sender", sender_thread, src);
    gst_object_unref (src);
  }
  g_timeout_add (100, on_tick, NULL);
  g_main_loop_run (loop);

  g_atomic_int_set (&stop_sending, 1);
  if (opt.send) {
    /* what was pushed goes out before the end (EOS through the pipeline,
     * at most 5 s: a sender still waiting for keys sends nothing), so
     * that "sent" is what a receiver can expect */
    GstElement *src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
    GstMessage *m;
    gst_app_src_end_of_stream (GST_APP_SRC (src));
    gst_object_unref (src);
    m = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND,
                                    GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    if (m)
      gst_message_unref (m);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  if (thread)
    g_thread_join (thread);
  if (opt.send) {
    fputs (events->str, stdout);
    printf ("sent=%" G_GUINT64_FORMAT "\n", received);
  } else {
    print_report (stdout);
  }
  fflush (stdout); /* before any sanitizer report at exit */
  gst_object_unref (bus);
  gst_object_unref (keysrc);
  if (dec)
    gst_object_unref (dec);
  gst_object_unref (pipeline);
  g_free (seen);
  if (opt.controller)
    g_string_free (opt.controller, TRUE);
  return 0;
}
