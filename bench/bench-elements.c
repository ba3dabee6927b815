/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench-elements: the figures of issue 18, from one run, at payloads of
 * 1200 and 1400 bytes (the datagram given to mcsecenc: an RTP packet of
 * that size):
 *
 *  1. encrypt, in memory: appsrc (buffer lists of 64) ! X ! fakesink with
 *     X = nothing | identity | mcsecenc | srtpenc AES-128-GCM, and
 *     identity | mcsecenc fed single buffers (identity, a GstBaseTransform,
 *     pushes a list's buffers one by one: the same shape as mcsecenc only
 *     when both are fed single buffers);
 *  2. decrypt, in memory: the packets encrypted once beforehand (mcsecenc,
 *     srtpenc), then appsrc ! X ! fakesink, X = identity | mcsecdec, fed
 *     lists, and identity | mcsecdec | srtpdec fed single buffers (Debian
 *     1.22's srtpdec corrupts its heap when fed lists);
 *     next to them, in this process and taking turns with the runs, the
 *     raw OpenSSL EVP AES-128-GCM floor: one keyed context, a per-packet
 *     IV, 8-byte AAD, 16-byte tag (seal; open with the tag check), as
 *     bench-esp measures it, and the same over 100 MB of packets;
 *  3. through real sockets on loopback, each pipeline pinned to one core:
 *     appsrc (lists) ! X ! udpsink (lists: sendmmsg) and udpsrc ! X !
 *     fakesink with a sender process (pinned to another core) blasting the
 *     pre-encrypted packets with sendmmsg; the receiver counts what its
 *     fakesink rendered against what was sent, and its CPU time;
 *  4. the sustained rate of one core in packets/s and Gbit/s of payload.
 *
 * Every timed run is a child process of its own (this program with
 * --run), its packets built fresh (writable, as a payloader or udpsrc gives
 * them) before the clock starts; each case runs several times, the cases
 * taking turns, and the best run counts.  Usage:
 *
 *   bench-elements [--quick] [--packets N] [--cpu C] [--only SUBSTRING]
 *   bench-elements [--packets N] --prepare   (prints DIR), then, to profile
 *     one case: bench-elements --packets N --dir DIR --run CASE SIZE
 *     (CASE: the index in cases[] below), e.g. under valgrind --tool=callgrind
 *
 * (GST_PLUGIN_PATH must find the mcsec plugin.)  --cpu: the core the
 * pipelines are pinned to (the socket sender gets another one).
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <openssl/evp.h>

#define LIST_LEN 64
#define SSRC 0x12345678u
#define RTP_CAPS                                                               \
  "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,"          \
  "payload=(int)96,ssrc=(uint)305419896"
#define MCSEC_CAPS "application/x-mcsec"
/* 16-byte AES key || 4-byte salt; 16 || 12 for SRTP GCM */
#define MCSEC_KEY "000102030405060708090a0b0c0d0e0f10111213"
#define SRTP_GCM_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b"
#define SRTP_GCM                                                               \
  "srtpenc key=" SRTP_GCM_KEY " rtp-cipher=aes-128-gcm rtp-auth=null "         \
  "rtcp-cipher=aes-128-gcm rtcp-auth=null"
/* @DIR@ is replaced by the run's temporary directory */
#define MCSECENC "mcsecenc key=" MCSEC_KEY " counter-file=@DIR@/enc.ctr"
#define MCSECDEC "mcsecdec key=" MCSEC_KEY " caps=\"" RTP_CAPS "\""
#define RCVBUF (128 << 20)
#define EVP_BATCH 4096
#define EVP_RING 8
/* the floor again over as many distinct packets as a pipeline run holds
 * (100 MB: out of L2, as the pipelines' packets are) */
#define COLD_N 65536
#define MAX_PKT 1600

static const guint sizes[] = {1200, 1400};
#define N_SIZES G_N_ELEMENTS (sizes)

typedef enum { K_ENC, K_DEC, K_SEND, K_RECV } kind_t;
typedef enum { IN_PLAIN, IN_MCSEC, IN_SRTP } input_t;

typedef struct {
  const char *name;
  kind_t kind;
  input_t input;
  gboolean single;   /* appsrc pushes single buffers, not lists */
  const char *chain; /* between source and sink; NULL: nothing */
} bench_case_t;

/* the order is the --run index */
static const bench_case_t cases[] = {
    {"identity", K_ENC, IN_PLAIN, FALSE, "identity"},
    {"(no element)", K_ENC, IN_PLAIN, FALSE, NULL},
    {"mcsecenc", K_ENC, IN_PLAIN, FALSE, MCSECENC},
    {"srtpenc AES-128-GCM", K_ENC, IN_PLAIN, FALSE, SRTP_GCM},
    {"identity, single buffers", K_ENC, IN_PLAIN, TRUE, "identity"},
    {"mcsecenc, single buffers", K_ENC, IN_PLAIN, TRUE, MCSECENC},
    {"(no element)", K_DEC, IN_MCSEC, FALSE, NULL},
    {"identity", K_DEC, IN_MCSEC, FALSE, "identity"},
    {"mcsecdec", K_DEC, IN_MCSEC, FALSE, MCSECDEC},
    {"identity, single buffers", K_DEC, IN_MCSEC, TRUE, "identity"},
    {"mcsecdec, single buffers", K_DEC, IN_MCSEC, TRUE, MCSECDEC},
    {"srtpdec AES-128-GCM, single buffers", K_DEC, IN_SRTP, TRUE, "srtpdec"},
    {"identity ! udpsink", K_SEND, IN_PLAIN, FALSE, "identity"},
    {"udpsink alone", K_SEND, IN_PLAIN, FALSE, NULL},
    {"mcsecenc ! udpsink", K_SEND, IN_PLAIN, FALSE, MCSECENC},
    {"srtpenc ! udpsink", K_SEND, IN_PLAIN, FALSE, SRTP_GCM},
    {"udpsrc ! identity", K_RECV, IN_MCSEC, TRUE, "identity"},
    {"udpsrc ! mcsecdec", K_RECV, IN_MCSEC, TRUE, MCSECDEC},
    {"udpsrc ! srtpdec", K_RECV, IN_SRTP, TRUE, "srtpdec"},
};
#define N_CASES G_N_ELEMENTS (cases)
enum {
  C_ID,
  C_NONE,
  C_ENC,
  C_SRTPENC,
  C_ID1,
  C_ENC1,
  C_DNONE,
  C_DID,
  C_DEC,
  C_DID1,
  C_DEC1,
  C_SRTPDEC1,
  C_SID,
  C_SNONE,
  C_SENC,
  C_SSRTP,
  C_RID,
  C_RDEC,
  C_RSRTP
};

/* one run's result; the child prints it as one line */
typedef struct {
  double ns;       /* wall ns/packet (in memory), or 1e9/pps */
  double cpu_pps;  /* packets per CPU second of the pipeline's process */
  double wall_pps; /* packets per second of wall time */
  guint64 sent, received;
  int rcvbuf;
  double sender_pps; /* the socket sender's own rate */
} result_t;

static guint n_packets = 100000;
static int pin_cpu = -1, sender_cpu = -1;
static const char *tmp_dir;

#define FAIL(...)                                                              \
  do {                                                                         \
    g_printerr ("bench-elements: " __VA_ARGS__);                               \
    exit (1);                                                                  \
  } while (0)

static double
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
cpu_seconds (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
pin_to (int cpu)
{
  cpu_set_t set;
  if (cpu < 0)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  sched_setaffinity (0, sizeof (set), &set);
}

/* ---- packets ---------------------------------------------------------- */

/* a set of packets as bytes, built or read once, turned into fresh
 * buffers for every timed run */
typedef struct {
  guint n;
  guint16 *len;
  guint8 *data; /* n slots of MAX_PKT */
} pkts_t;

static void
pkts_alloc (pkts_t *p, guint n)
{
  p->n = n;
  p->len = g_new0 (guint16, n);
  p->data = g_malloc ((gsize)n * MAX_PKT);
}

static void
make_plain (pkts_t *p, guint size)
{
  pkts_alloc (p, n_packets);
  for (guint seq = 0; seq < p->n; seq++) {
    guint8 *d = p->data + (gsize)seq * MAX_PKT;
    memset (d, 0x5a, size);
    d[0] = 0x80;
    d[1] = 96;
    d[2] = (guint8)(seq >> 8);
    d[3] = (guint8)seq;
    GST_WRITE_UINT32_BE (d + 4, seq * 3000);
    GST_WRITE_UINT32_BE (d + 8, SSRC);
    p->len[seq] = (guint16)size;
  }
}

static gchar *
file_of (input_t in, guint size, const char *ext)
{
  return g_strdup_printf ("%s/%s-%u.%s", tmp_dir,
                          in == IN_MCSEC ? "mcsec" : "srtp", size, ext);
}

static void
pkts_save (const pkts_t *p, const char *path)
{
  FILE *f = fopen (path, "wb");
  if (f == NULL || fwrite (&p->n, sizeof (p->n), 1, f) != 1 ||
      fwrite (p->len, sizeof (*p->len), p->n, f) != p->n)
    FAIL ("cannot write %s\n", path);
  for (guint i = 0; i < p->n; i++)
    if (fwrite (p->data + (gsize)i * MAX_PKT, 1, p->len[i], f) != p->len[i])
      FAIL ("cannot write %s\n", path);
  fclose (f);
}

static void
pkts_load (pkts_t *p, const char *path)
{
  FILE *f = fopen (path, "rb");
  guint n;
  if (f == NULL || fread (&n, sizeof (n), 1, f) != 1)
    FAIL ("cannot read %s\n", path);
  pkts_alloc (p, n);
  if (fread (p->len, sizeof (*p->len), n, f) != n)
    FAIL ("cannot read %s\n", path);
  for (guint i = 0; i < n; i++)
    if (fread (p->data + (gsize)i * MAX_PKT, 1, p->len[i], f) != p->len[i])
      FAIL ("cannot read %s\n", path);
  fclose (f);
}

static GstBuffer *
buffer_of (const pkts_t *p, guint i)
{
  GstBuffer *b = gst_buffer_new_allocate (NULL, p->len[i], NULL);
  gst_buffer_fill (b, 0, p->data + (gsize)i * MAX_PKT, p->len[i]);
  GST_BUFFER_PTS (b) = (GstClockTime)i * GST_MSECOND;
  return b;
}

static gchar *
with_dir (const char *s)
{
  gchar **parts = g_strsplit (s, "@DIR@", -1);
  gchar *r = g_strjoinv (tmp_dir, parts);
  g_strfreev (parts);
  return r;
}

static gchar *
caps_of (input_t in, guint size)
{
  gchar *path, *caps = NULL;
  if (in == IN_PLAIN)
    return g_strdup (RTP_CAPS);
  if (in == IN_MCSEC)
    return g_strdup (MCSEC_CAPS);
  path = file_of (in, size, "caps");
  if (!g_file_get_contents (path, &caps, NULL, NULL))
    FAIL ("cannot read %s\n", path);
  g_free (path);
  return caps;
}

static void
log_error (GstMessage *m, const char *what)
{
  GError *e = NULL;
  gchar *dbg = NULL;
  gst_message_parse_error (m, &e, &dbg);
  g_printerr ("  %s: %s (%s)\n", what, e->message, dbg ? dbg : "");
  g_error_free (e);
  g_free (dbg);
}

/* Encrypt the plain packets once with mcsecenc or srtpenc into an appsink;
 * keep the bytes (and srtpenc's caps, which carry its key for srtpdec). */
static void
pre_encrypt (input_t in, guint size)
{
  pkts_t plain, out;
  gchar *chain = with_dir (in == IN_MCSEC ? MCSECENC : SRTP_GCM);
  gchar *desc = g_strdup_printf (
      "appsrc name=src format=time caps=\"%s\" max-bytes=0 block=false ! "
      "%s ! appsink name=sink sync=false",
      RTP_CAPS, chain);
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err), *src, *sink;
  GstSample *s;
  guint got = 0;
  gchar *path;

  if (p == NULL)
    FAIL ("%s: %s\n", desc, err->message);
  src = gst_bin_get_by_name (GST_BIN (p), "src");
  sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  make_plain (&plain, size);
  pkts_alloc (&out, plain.n);
  for (guint i = 0; i < plain.n; i++)
    gst_app_src_push_buffer (GST_APP_SRC (src), buffer_of (&plain, i));
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  gst_element_set_state (p, GST_STATE_PLAYING);
  while ((s = gst_app_sink_pull_sample (GST_APP_SINK (sink))) != NULL) {
    GstBuffer *b = gst_sample_get_buffer (s);
    gsize len = gst_buffer_get_size (b);
    if (got == 0 && in == IN_SRTP) {
      gchar *caps = gst_caps_to_string (gst_sample_get_caps (s));
      path = file_of (in, size, "caps");
      g_file_set_contents (path, caps, -1, NULL);
      g_free (path);
      g_free (caps);
    }
    if (got < out.n && len <= MAX_PKT) {
      gst_buffer_extract (b, 0, out.data + (gsize)got * MAX_PKT, len);
      out.len[got++] = (guint16)len;
    }
    gst_sample_unref (s);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  if (got != plain.n)
    FAIL ("pre-encryption (%s): %u of %u packets\n", chain, got, plain.n);
  out.n = got;
  path = file_of (in, size, "bin");
  pkts_save (&out, path);
  g_free (path);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (p);
  g_free (desc);
  g_free (chain);
  g_free (plain.len);
  g_free (plain.data);
  g_free (out.len);
  g_free (out.data);
}

static void
load_input (pkts_t *p, input_t in, guint size)
{
  gchar *path;
  if (in == IN_PLAIN) {
    make_plain (p, size);
    return;
  }
  path = file_of (in, size, "bin");
  pkts_load (p, path);
  g_free (path);
}

/* push every packet into appsrc (lists of LIST_LEN or single buffers) */
static void
queue_packets (GstElement *src, const pkts_t *p, gboolean single)
{
  for (guint i = 0; i < p->n;) {
    if (single) {
      gst_app_src_push_buffer (GST_APP_SRC (src), buffer_of (p, i++));
      continue;
    }
    GstBufferList *l = gst_buffer_list_new_sized (LIST_LEN);
    for (guint k = 0; k < LIST_LEN && i < p->n; k++)
      gst_buffer_list_add (l, buffer_of (p, i++));
    gst_app_src_push_buffer_list (GST_APP_SRC (src), l);
  }
  gst_app_src_end_of_stream (GST_APP_SRC (src));
}

static guint64
rendered (GstElement *sink)
{
  GstStructure *st = NULL;
  guint64 n = 0;
  g_object_get (sink, "stats", &st, NULL);
  if (st) {
    gst_structure_get_uint64 (st, "rendered", &n);
    gst_structure_free (st);
  }
  return n;
}

static gchar *
describe (const bench_case_t *c, const char *src, const char *sink)
{
  gchar *chain = c->chain ? with_dir (c->chain) : NULL;
  gchar *d = g_strdup_printf ("%s ! %s%s%s", src, chain ? chain : "",
                              chain ? " ! " : "", sink);
  g_free (chain);
  return d;
}

static GstElement *
launch (const char *desc)
{
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  if (p == NULL) {
    g_printerr ("  %s: %s\n", desc, err->message);
    g_error_free (err);
  }
  return p;
}

/* ---- the timed runs (in a child) --------------------------------------- */

/* appsrc ! X ! fakesink or udpsink, timed from PLAYING to EOS */
static gboolean
run_appsrc (const bench_case_t *c, guint size, result_t *r)
{
  gchar *caps = caps_of (c->input, size);
  gchar *src_desc = g_strdup_printf (
      "appsrc name=src format=time caps=\"%s\" max-bytes=0 block=false", caps);
  gchar *sink_desc, *desc;
  GstElement *p, *src, *sink;
  pkts_t pk;
  GstBus *bus;
  GstMessage *m;
  double t0, t1, c0, c1;
  int sock = -1;
  gboolean ok = FALSE;

  if (c->kind == K_SEND) {
    /* a socket on loopback to receive the packets, never read: once its
     * buffer is full the kernel drops them, alike for every case */
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t alen = sizeof (a);
    sock = socket (AF_INET, SOCK_DGRAM, 0);
    if (sock < 0 || bind (sock, (struct sockaddr *)&a, sizeof (a)) != 0 ||
        getsockname (sock, (struct sockaddr *)&a, &alen) != 0)
      FAIL ("receiving socket: %s\n", g_strerror (errno));
    sink_desc = g_strdup_printf ("udpsink name=sink host=127.0.0.1 port=%u "
                                 "sync=false async=false",
                                 ntohs (a.sin_port));
  } else {
    sink_desc = g_strdup ("fakesink name=sink sync=false "
                          "enable-last-sample=false");
  }
  desc = describe (c, src_desc, sink_desc);
  p = launch (desc);
  g_free (desc);
  g_free (src_desc);
  g_free (sink_desc);
  g_free (caps);
  if (p == NULL)
    return FALSE;
  src = gst_bin_get_by_name (GST_BIN (p), "src");
  sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  load_input (&pk, c->input, size);
  /* everything is queued in appsrc, and the first buffer prerolls, before
   * the clock starts */
  queue_packets (src, &pk, c->single);
  g_free (pk.data);
  g_free (pk.len);
  gst_element_set_state (p, GST_STATE_PAUSED);
  gst_element_get_state (p, NULL, NULL, 30 * GST_SECOND);
  bus = gst_element_get_bus (p);
  t0 = now_ns ();
  c0 = cpu_seconds ();
  gst_element_set_state (p, GST_STATE_PLAYING);
  m = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
                                  GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  t1 = now_ns ();
  c1 = cpu_seconds ();
  if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS) {
    r->sent = pk.n;
    r->received = c->kind == K_SEND ? pk.n : rendered (sink);
    r->ns = (t1 - t0) / pk.n;
    r->wall_pps = pk.n / ((t1 - t0) / 1e9);
    r->cpu_pps = pk.n / (c1 - c0);
    ok = r->received == pk.n;
    if (!ok)
      g_printerr ("  %s: %" G_GUINT64_FORMAT " of %u packets came out\n",
                  c->name, r->received, pk.n);
  } else if (m) {
    log_error (m, c->name);
  }
  if (m)
    gst_message_unref (m);
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (p);
  if (sock >= 0)
    close (sock);
  return ok;
}

/* the fakesink's buffers: time of the first and the last */
static double first_ns, last_ns;

static GstPadProbeReturn
stamp (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  (void)pad;
  (void)info;
  (void)data;
  last_ns = now_ns ();
  if (first_ns == 0)
    first_ns = last_ns;
  return GST_PAD_PROBE_OK;
}

/* the sender: a process of its own, on another core, that blasts the
 * packets with sendmmsg in batches of LIST_LEN and counts what the kernel
 * took into *sent */
static pid_t
start_sender (const pkts_t *pk, guint16 port, guint64 *sent, double *ns)
{
  struct sockaddr_in to = {.sin_family = AF_INET,
                           .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
  struct mmsghdr *msgs = g_new0 (struct mmsghdr, pk->n);
  struct iovec *iov = g_new0 (struct iovec, pk->n);
  pid_t pid;

  for (guint i = 0; i < pk->n; i++) {
    iov[i].iov_base = pk->data + (gsize)i * MAX_PKT;
    iov[i].iov_len = pk->len[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof (to);
  }
  pid = fork ();
  if (pid == 0) {
    int s = socket (AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 4 << 20;
    guint i = 0;
    double t0;
    pin_to (sender_cpu);
    t0 = now_ns ();
    setsockopt (s, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof (sndbuf));
    while (i < pk->n) {
      guint k = MIN (LIST_LEN, pk->n - i);
      int n = sendmmsg (s, msgs + i, k, 0);
      if (n < 0) {
        if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
          continue;
        break;
      }
      i += (guint)n;
      *sent = i;
    }
    *ns = now_ns () - t0;
    _exit (0);
  }
  g_free (msgs);
  g_free (iov);
  return pid;
}

/* udpsrc ! X ! fakesink with a sender blasting at it; ends at EOS sent
 * once the sender is done and nothing came for 200 ms, or after 60 s */
static gboolean
run_udpsrc (const bench_case_t *c, guint size, result_t *r)
{
  gchar *caps = caps_of (c->input, size);
  gchar *src_desc, *desc;
  GstElement *p, *src, *sink;
  GstPad *pad;
  GSocket *gsock;
  pkts_t pk;
  GstBus *bus;
  guint64 *sent;
  double *sender_ns;
  pid_t sender;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
  socklen_t alen = sizeof (a);
  int fd, rcvbuf = RCVBUF, status;
  double c0, c1, deadline;
  gboolean eos = FALSE, ok = FALSE, sender_done = FALSE, eos_sent = FALSE;

  /* the socket, made here so that its port and buffer are known */
  fd = socket (AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 ||
      (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof (rcvbuf)) &&
       setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof (rcvbuf))) ||
      bind (fd, (struct sockaddr *)&a, sizeof (a)) != 0 ||
      getsockname (fd, (struct sockaddr *)&a, &alen) != 0)
    FAIL ("receiving socket: %s\n", g_strerror (errno));
  alen = sizeof (rcvbuf);
  getsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &alen);
  r->rcvbuf = rcvbuf;
  gsock = g_socket_new_from_fd (fd, NULL);
  src_desc =
      g_strdup_printf ("udpsrc name=src caps=\"%s\" timeout=200000000", caps);
  desc = describe (c, src_desc,
                   "fakesink name=sink sync=false async=false "
                   "enable-last-sample=false");
  p = launch (desc);
  g_free (desc);
  g_free (src_desc);
  g_free (caps);
  if (p == NULL)
    return FALSE;
  src = gst_bin_get_by_name (GST_BIN (p), "src");
  sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  g_object_set (src, "socket", gsock, "close-socket", FALSE, NULL);
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad,
                     GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                     stamp, NULL, NULL);
  gst_object_unref (pad);
  load_input (&pk, c->input, size);
  sent = mmap (NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
  *sent = 0;
  sender_ns = (double *)(sent + 1);
  *sender_ns = 0;
  gst_element_set_state (p, GST_STATE_PLAYING);
  gst_element_get_state (p, NULL, NULL, 30 * GST_SECOND);
  bus = gst_element_get_bus (p);
  sender = start_sender (&pk, ntohs (a.sin_port), sent, sender_ns);
  /* after the fork: copying this process's page tables is not the
   * pipeline's work */
  c0 = cpu_seconds ();
  deadline = now_ns () + 60e9;
  while (!eos) {
    GstMessage *m = gst_bus_timed_pop (bus, 100 * GST_MSECOND);
    if (!sender_done && waitpid (sender, &status, WNOHANG) == sender)
      sender_done = TRUE;
    if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS) {
      eos = TRUE;
    } else if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      log_error (m, c->name);
      gst_message_unref (m);
      break;
    } else if (!eos_sent &&
               ((m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT &&
                 gst_message_has_name (m, "GstUDPSrcTimeout") && sender_done) ||
                now_ns () > deadline)) {
      /* the sender is done and nothing came for 200 ms (or time is up):
       * what has not come is lost */
      gst_element_send_event (p, gst_event_new_eos ());
      eos_sent = TRUE;
    }
    if (m)
      gst_message_unref (m);
    if (now_ns () > deadline + 10e9)
      break;
  }
  c1 = cpu_seconds ();
  if (!sender_done) {
    kill (sender, SIGKILL);
    waitpid (sender, &status, 0);
  }
  if (eos) {
    r->sent = *sent;
    r->sender_pps = *sender_ns > 0 ? *sent / (*sender_ns / 1e9) : 0;
    r->received = rendered (sink);
    /* the udpsrc's idle wake-ups after the last packet are in c1 - c0:
     * a few, at most a few hundred microseconds */
    r->cpu_pps = r->received / (c1 - c0);
    r->wall_pps =
        last_ns > first_ns ? r->received / ((last_ns - first_ns) / 1e9) : 0;
    r->ns = 1e9 / r->cpu_pps;
    ok = r->received > 0;
  }
  gst_object_unref (bus);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_object_unref (p);
  g_object_unref (gsock);
  close (fd);
  munmap (sent, 4096);
  g_free (pk.data);
  g_free (pk.len);
  return ok;
}

static int
child_main (guint idx, guint size)
{
  result_t r = {0};
  gboolean ok;
  if (idx >= N_CASES)
    return 1;
  pin_to (pin_cpu);
  if (cases[idx].kind == K_RECV)
    ok = run_udpsrc (&cases[idx], size, &r);
  else
    ok = run_appsrc (&cases[idx], size, &r);
  if (!ok)
    return 1;
  printf (
      "%.3f %.1f %.1f %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %d %.1f\n",
      r.ns, r.cpu_pps, r.wall_pps, r.sent, r.received, r.rcvbuf, r.sender_pps);
  return 0;
}

/* ---- in the parent ----------------------------------------------------- */

typedef struct {
  result_t best;
  int runs, failed, crashed;
  double worst_loss; /* of all runs, in % */
} tally_t;

static const char *self_path;
static const char *only;

static gboolean
run_child (guint idx, guint size, result_t *r, gboolean *crashed)
{
  gchar *argv[16];
  gchar *out = NULL, *err = NULL, *idx_s = g_strdup_printf ("%u", idx),
        *size_s = g_strdup_printf ("%u", size),
        *n_s = g_strdup_printf ("%u", n_packets),
        *cpu_s = g_strdup_printf ("%d", pin_cpu),
        *scpu_s = g_strdup_printf ("%d", sender_cpu);
  gint status = 0, k = 0;
  gboolean ok = FALSE;

  argv[k++] = (gchar *)self_path;
  argv[k++] = (gchar *)"--packets";
  argv[k++] = n_s;
  argv[k++] = (gchar *)"--cpu";
  argv[k++] = cpu_s;
  argv[k++] = (gchar *)"--sender-cpu";
  argv[k++] = scpu_s;
  argv[k++] = (gchar *)"--dir";
  argv[k++] = (gchar *)tmp_dir;
  argv[k++] = (gchar *)"--run";
  argv[k++] = idx_s;
  argv[k++] = size_s;
  argv[k] = NULL;
  *crashed = FALSE;
  if (g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                    &status, NULL)) {
    if (g_spawn_check_wait_status (status, NULL)) {
      ok = sscanf (out,
                   "%lf %lf %lf %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                   " %d %lf",
                   &r->ns, &r->cpu_pps, &r->wall_pps, &r->sent, &r->received,
                   &r->rcvbuf, &r->sender_pps) == 7;
    } else {
      *crashed = WIFSIGNALED (status);
      /* the first error line, if any (srtpdec prints many) */
      if (err && *err && !*crashed) {
        gchar *nl = strchr (err, '\n');
        if (nl)
          *nl = 0;
        g_printerr ("  [%s, %u bytes: %s]\n", cases[idx].name, size, err);
      }
    }
  }
  g_free (out);
  g_free (err);
  g_free (idx_s);
  g_free (size_s);
  g_free (n_s);
  g_free (cpu_s);
  g_free (scpu_s);
  return ok;
}

static void
tally (tally_t *t, guint idx, guint size)
{
  result_t r = {0};
  gboolean crashed;
  if (t->failed)
    return;
  double t0 = now_ns ();
  gboolean ok = run_child (idx, size, &r, &crashed);
  if (g_getenv ("BENCH_VERBOSE"))
    g_printerr ("  [%s, %u bytes: %s, %.2f s]\n", cases[idx].name, size,
                ok ? "ok" : "failed", (now_ns () - t0) / 1e9);
  if (!ok) {
    t->failed = 1;
    t->crashed = crashed;
    return;
  }
  if (r.sent > 0) {
    double loss =
        100.0 * (double)(r.sent - MIN (r.sent, r.received)) / (double)r.sent;
    t->worst_loss = MAX (t->worst_loss, loss);
  }
  /* the best: the fastest per packet (in memory, send) or the most
   * packets per CPU second (receive) */
  if (t->runs == 0 || r.ns < t->best.ns)
    t->best = r;
  t->runs++;
}

/* ---- the EVP floor (bench-esp's approach) ------------------------------ */

static EVP_CIPHER_CTX *seal_ctx, *open_ctx;
static guint8 (*evp_pkts)[MAX_PKT];
static guint8 (*cold_pkts)[MAX_PKT];
static guint cold_next;
static guint8 evp_scratch[MAX_PKT];
static volatile guint8 evp_sink;

static void
evp_init (void)
{
  static const guint8 key[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                 8, 9, 10, 11, 12, 13, 14, 15};
  EVP_CIPHER *cipher = EVP_CIPHER_fetch (NULL, "AES-128-GCM", NULL);
  seal_ctx = EVP_CIPHER_CTX_new ();
  open_ctx = EVP_CIPHER_CTX_new ();
  if (cipher == NULL || seal_ctx == NULL || open_ctx == NULL ||
      EVP_CipherInit_ex (seal_ctx, cipher, NULL, key, NULL, 1) != 1 ||
      EVP_CipherInit_ex (open_ctx, cipher, NULL, key, NULL, 0) != 1)
    FAIL ("EVP setup\n");
  EVP_CIPHER_free (cipher);
  evp_pkts = g_malloc (sizeof (*evp_pkts) * EVP_BATCH);
  cold_pkts = g_malloc (sizeof (*cold_pkts) * COLD_N);
}

/* one packet: nonce, 8-byte AAD, data, tag */
static gboolean
evp_one (EVP_CIPHER_CTX *ctx, int enc, const guint8 *iv, guint8 *in, int n,
         guint8 *out, guint8 *tag)
{
  static const guint8 aad[8] = {0, 1, 0, 1, 0, 0, 0, 1};
  int outl;
  if (enc)
    return EVP_EncryptInit_ex (ctx, NULL, NULL, NULL, iv) == 1 &&
           EVP_EncryptUpdate (ctx, NULL, &outl, aad, 8) == 1 &&
           EVP_EncryptUpdate (ctx, out, &outl, in, n) == 1 &&
           EVP_EncryptFinal_ex (ctx, out + n, &outl) == 1 &&
           EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
  return EVP_DecryptInit_ex (ctx, NULL, NULL, NULL, iv) == 1 &&
         EVP_CIPHER_CTX_ctrl (ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1 &&
         EVP_DecryptUpdate (ctx, NULL, &outl, aad, 8) == 1 &&
         EVP_DecryptUpdate (ctx, out, &outl, in, n) == 1 &&
         EVP_DecryptFinal_ex (ctx, out + n, &outl) == 1;
}

/* ns/packet of one batch: sealing reads a few hot buffers (as with a
 * pool), opening reads EVP_BATCH distinct packets, as in bench-esp */
static double
evp_batch (gboolean seal, int size)
{
  guint8 iv[12] = {1, 2, 3, 4}, tag[16];
  double t0;

  for (int i = 0; i < EVP_BATCH; i++) {
    memset (evp_pkts[i], i, (size_t)size);
    if (!seal) {
      memcpy (iv + 4, &i, sizeof (i));
      if (!evp_one (seal_ctx, 1, iv, evp_pkts[i], size, evp_pkts[i],
                    evp_pkts[i] + size))
        FAIL ("EVP seal\n");
    }
  }
  t0 = now_ns ();
  for (int i = 0; i < EVP_BATCH; i++) {
    memcpy (iv + 4, &i, sizeof (i));
    if (seal) {
      if (!evp_one (seal_ctx, 1, iv, evp_pkts[i % EVP_RING], size, evp_scratch,
                    tag))
        FAIL ("EVP seal\n");
      evp_sink ^= tag[0];
    } else {
      memcpy (tag, evp_pkts[i] + size, 16);
      if (!evp_one (open_ctx, 0, iv, evp_pkts[i], size, evp_scratch, tag))
        FAIL ("EVP open\n");
    }
  }
  return (now_ns () - t0) / EVP_BATCH;
}

/* every slot of cold_pkts sealed with IV = its index, for both floors */
static void
evp_cold_prepare (int size)
{
  guint8 iv[12] = {1, 2, 3, 4};
  for (int i = 0; i < COLD_N; i++) {
    memcpy (iv + 4, &i, sizeof (i));
    memset (cold_pkts[i], i, (size_t)size);
    if (!evp_one (seal_ctx, 1, iv, cold_pkts[i], size, cold_pkts[i],
                  cold_pkts[i] + size))
      FAIL ("EVP seal\n");
  }
  cold_next = 0;
}

/* the floor on packets out of cache: the next EVP_BATCH slots in turn,
 * read from there, written to a hot buffer */
static double
evp_cold_batch (gboolean seal, int size)
{
  guint8 iv[12] = {1, 2, 3, 4}, tag[16];
  double t0 = now_ns ();
  for (int k = 0; k < EVP_BATCH; k++) {
    int i = (int)((cold_next + (guint)k) % COLD_N);
    memcpy (iv + 4, &i, sizeof (i));
    if (seal) {
      if (!evp_one (seal_ctx, 1, iv, cold_pkts[i], size, evp_scratch, tag))
        FAIL ("EVP seal\n");
      evp_sink ^= tag[0];
    } else {
      memcpy (tag, cold_pkts[i] + size, 16);
      if (!evp_one (open_ctx, 0, iv, cold_pkts[i], size, evp_scratch, tag))
        FAIL ("EVP open (cold)\n");
    }
  }
  cold_next = (cold_next + EVP_BATCH) % COLD_N;
  return (now_ns () - t0) / EVP_BATCH;
}

/* ---- the report -------------------------------------------------------- */

static tally_t tallies[N_SIZES][N_CASES];
static double evp_seal[N_SIZES], evp_open[N_SIZES];
static double cold_seal[N_SIZES], cold_open[N_SIZES];

static gboolean
has (guint z, guint c)
{
  return tallies[z][c].runs > 0 && !tallies[z][c].failed;
}

static double
ns_of (guint z, guint c)
{
  return has (z, c) ? tallies[z][c].best.ns : 0;
}

/* ns/packet of case c over case base (the element's cost), or 0 */
static double
over (guint z, guint c, guint base)
{
  return has (z, c) && has (z, base) ? ns_of (z, c) - ns_of (z, base) : 0;
}

static const char *
failure (guint z, guint c)
{
  if (tallies[z][c].runs == 0 && !tallies[z][c].failed)
    return "not run";
  return tallies[z][c].crashed ? "CRASHED" : "failed";
}

/* "| label | ns (+over base) | ... |" */
static void
ns_row (const char *label, guint c, guint base)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++) {
    if (!has (z, c))
      printf (" %s |", failure (z, c));
    else if (base != c && has (z, base))
      printf (" %.0f (%+.0f) |", ns_of (z, c), over (z, c, base));
    else
      printf (" %.0f |", ns_of (z, c));
  }
  printf ("\n");
}

static void
floor_row (const char *label, const double *floor)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++)
    printf (" %.0f |", floor[z]);
  printf ("\n");
}

/* "| label | a/b | ... | goal |", a and b ns over their bases */
static void
ratio_row (const char *label, guint a, guint a_base, guint b, guint b_base,
           const double *floor, const char *goal)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++) {
    double num = a_base == a ? ns_of (z, a) : over (z, a, a_base);
    double den =
        floor ? floor[z] : (b_base == b ? ns_of (z, b) : over (z, b, b_base));
    if (has (z, a) && (floor || has (z, b)) && num > 0 && den > 0)
      printf (" %.2fx |", num / den);
    else if (has (z, a) && num <= 0)
      printf (" (cost <= 0) |");
    else
      printf (" - |");
  }
  printf (" %s |\n", goal);
}

static double
pps_of (guint z, guint c, gboolean recv)
{
  return recv ? tallies[z][c].best.cpu_pps : tallies[z][c].best.wall_pps;
}

static void
pps_row (const char *label, guint c, guint base, gboolean recv)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++) {
    const result_t *b = &tallies[z][c].best;
    if (!has (z, c)) {
      printf (" %s |", failure (z, c));
      continue;
    }
    printf (" %.0f", pps_of (z, c, recv));
    if (base != c && has (z, base))
      printf (" (%.0f%%)",
              100.0 * pps_of (z, c, recv) / pps_of (z, base, recv));
    if (recv)
      printf ("; wall %.0f/s, sender %.0f/s; lost %" G_GUINT64_FORMAT
              " of %" G_GUINT64_FORMAT " (worst run %.1f%%)",
              b->wall_pps, b->sender_pps, b->sent - MIN (b->sent, b->received),
              b->sent, tallies[z][c].worst_loss);
    printf (" |");
  }
  printf ("\n");
}

static void
pps_ratio_row (const char *label, guint c, guint base, gboolean recv)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++)
    if (has (z, c) && has (z, base))
      printf (" %.0f%% |",
              100.0 * pps_of (z, c, recv) / pps_of (z, base, recv));
    else
      printf (" - |");
  printf (" >= 90%% |\n");
}

static void
rate_row (const char *label, guint c, guint base, gboolean recv)
{
  printf ("| %s |", label);
  for (guint z = 0; z < N_SIZES; z++) {
    double pps = 0;
    if (c >= C_SID)
      pps = has (z, c) ? pps_of (z, c, recv) : 0;
    else if (base == c)
      pps = has (z, c) ? 1e9 / ns_of (z, c) : 0;
    else if (over (z, c, base) > 0)
      pps = 1e9 / over (z, c, base);
    if (pps > 0)
      printf (" %.0f, %.2f Gbit/s |", pps, pps * sizes[z] * 8 / 1e9);
    else
      printf (" - |");
  }
  printf ("\n");
}

static void
report (int rounds, int udp_rounds)
{
  printf ("bench-elements: %u packets a run. In memory: appsrc ! X ! "
          "fakesink sync=false, fresh writable buffers (lists of %d unless "
          "said) queued before the clock starts, ns/packet from PLAYING to "
          "EOS; best of %d runs, each a process of its own, the cases taking "
          "turns; pipelines pinned to CPU %d. Payload = the datagram given "
          "to mcsecenc (an RTP packet of that size); AES-128-GCM throughout; "
          "(+N) = ns/packet over the baseline named.\n",
          n_packets, LIST_LEN, rounds, pin_cpu);

  printf ("\n1. Encrypt, ns/packet\n\n");
  printf ("| chain | 1200 bytes | 1400 bytes |\n|---|---|---|\n");
  ns_row ("appsrc ! fakesink (no element), lists", C_NONE, C_NONE);
  ns_row ("identity, lists (+ over no element)", C_ID, C_NONE);
  ns_row ("mcsecenc, lists (+ over identity)", C_ENC, C_ID);
  ns_row ("mcsecenc, lists (+ over no element)", C_ENC, C_NONE);
  ns_row ("srtpenc AES-128-GCM, lists (+ over identity)", C_SRTPENC, C_ID);
  ns_row ("identity, single buffers", C_ID1, C_ID1);
  ns_row ("mcsecenc, single buffers (+ over identity)", C_ENC1, C_ID1);
  floor_row ("raw EVP seal floor, per-packet IV (this process)", evp_seal);
  floor_row ("the same over 65,536 packets (100 MB, out of L2)", cold_seal);
  printf ("\n| ratio | 1200 | 1400 | target |\n|---|---|---|---|\n");
  ratio_row ("mcsecenc cost over identity / EVP seal floor (lists)", C_ENC,
             C_ID, 0, 0, evp_seal, "<= 1.2x");
  ratio_row ("mcsecenc cost over identity / EVP seal floor (single)", C_ENC1,
             C_ID1, 0, 0, evp_seal, "<= 1.2x");
  ratio_row ("mcsecenc cost over no element / EVP seal floor (lists)", C_ENC,
             C_NONE, 0, 0, evp_seal, "");
  ratio_row ("mcsecenc cost over no element / the 100 MB floor (lists)", C_ENC,
             C_NONE, 0, 0, cold_seal, "");
  ratio_row ("srtpenc / mcsecenc, whole chains (lists)", C_SRTPENC, C_SRTPENC,
             C_ENC, C_ENC, NULL, ">= 2x");
  ratio_row ("srtpenc / mcsecenc, costs over identity (lists)", C_SRTPENC, C_ID,
             C_ENC, C_ID, NULL, "");

  printf ("\n2. Decrypt (packets encrypted beforehand by mcsecenc, srtpenc), "
          "ns/packet; srtpdec is fed single buffers, since Debian 1.22's "
          "srtpdec corrupts its heap when fed buffer lists\n\n");
  printf ("| chain | 1200 bytes | 1400 bytes |\n|---|---|---|\n");
  ns_row ("appsrc ! fakesink (no element), lists", C_DNONE, C_DNONE);
  ns_row ("identity, lists (+ over no element)", C_DID, C_DNONE);
  ns_row ("mcsecdec, lists (+ over identity)", C_DEC, C_DID);
  ns_row ("mcsecdec, lists (+ over no element)", C_DEC, C_DNONE);
  ns_row ("identity, single buffers", C_DID1, C_DID1);
  ns_row ("mcsecdec, single buffers (+ over identity)", C_DEC1, C_DID1);
  ns_row ("srtpdec AES-128-GCM, single buffers (+ over identity)", C_SRTPDEC1,
          C_DID1);
  floor_row ("raw EVP open floor, decrypt + tag check (this process)",
             evp_open);
  floor_row ("the same over 65,536 packets (100 MB, out of L2)", cold_open);
  printf ("\n| ratio | 1200 | 1400 | target |\n|---|---|---|---|\n");
  ratio_row ("mcsecdec cost over identity / EVP open floor (lists)", C_DEC,
             C_DID, 0, 0, evp_open, "<= 1.2x");
  ratio_row ("mcsecdec cost over identity / EVP open floor (single)", C_DEC1,
             C_DID1, 0, 0, evp_open, "<= 1.2x");
  ratio_row ("mcsecdec cost over no element / EVP open floor (lists)", C_DEC,
             C_DNONE, 0, 0, evp_open, "");
  ratio_row ("mcsecdec cost over no element / the 100 MB floor (lists)", C_DEC,
             C_DNONE, 0, 0, cold_open, "");
  ratio_row ("srtpdec / mcsecdec, whole chains (single)", C_SRTPDEC1,
             C_SRTPDEC1, C_DEC1, C_DEC1, NULL, ">= 2x");
  ratio_row ("srtpdec / mcsecdec, costs over identity (single)", C_SRTPDEC1,
             C_DID1, C_DEC1, C_DID1, NULL, "");
  ratio_row ("srtpdec single / mcsecdec lists, whole chains", C_SRTPDEC1,
             C_SRTPDEC1, C_DEC, C_DEC, NULL, "");

  printf ("\n3. Loopback sockets, packets/s, the pipeline pinned to one core "
          "(best of %d runs; (N%%) = of the first row)\n\n",
          udp_rounds);
  printf ("Send: appsrc (lists) ! X ! udpsink, packets / wall time from "
          "PLAYING to EOS. identity pushes a list's buffers one by one, so "
          "its udpsink sends a packet a syscall; with no element and after "
          "mcsecenc udpsink gets lists and sends them with sendmmsg. A "
          "socket bound on loopback receives (never read: once full, the "
          "kernel drops).\n\n");
  printf ("| chain | 1200 bytes | 1400 bytes |\n|---|---|---|\n");
  pps_row ("identity ! udpsink", C_SID, C_SID, FALSE);
  pps_row ("udpsink alone (lists)", C_SNONE, C_SID, FALSE);
  pps_row ("mcsecenc ! udpsink", C_SENC, C_SID, FALSE);
  pps_row ("srtpenc ! udpsink", C_SSRTP, C_SID, FALSE);
  printf ("\n| ratio | 1200 | 1400 | target |\n|---|---|---|---|\n");
  pps_ratio_row ("mcsecenc ! udpsink / identity ! udpsink", C_SENC, C_SID,
                 FALSE);
  pps_ratio_row ("mcsecenc ! udpsink / udpsink alone (both sendmmsg)", C_SENC,
                 C_SNONE, FALSE);
  pps_ratio_row ("mcsecenc ! udpsink / srtpenc ! udpsink (informative)", C_SENC,
                 C_SSRTP, FALSE);
  printf ("\nReceive: udpsrc (SO_RCVBUF %d bytes, its defaults otherwise) ! X "
          "! fakesink, while a sender process pinned to CPU %d blasts the %u "
          "pre-encrypted packets with sendmmsg (batches of %d); packets/s = "
          "packets the fakesink rendered / CPU seconds of the receiving "
          "process; wall = rendered / time from its first to its last "
          "packet; lost = sent - rendered; EOS once the sender is done and "
          "nothing came for 200 ms.\n\n",
          tallies[0][C_RDEC].best.rcvbuf, sender_cpu, n_packets, LIST_LEN);
  printf ("| chain | 1200 bytes | 1400 bytes |\n|---|---|---|\n");
  pps_row ("udpsrc ! identity", C_RID, C_RID, TRUE);
  pps_row ("udpsrc ! mcsecdec", C_RDEC, C_RID, TRUE);
  pps_row ("udpsrc ! srtpdec", C_RSRTP, C_RID, TRUE);
  printf ("\n| ratio | 1200 | 1400 | target |\n|---|---|---|---|\n");
  pps_ratio_row ("udpsrc ! mcsecdec / udpsrc ! identity (per CPU second)",
                 C_RDEC, C_RID, TRUE);
  pps_ratio_row ("udpsrc ! mcsecdec / udpsrc ! srtpdec (informative)", C_RDEC,
                 C_RSRTP, TRUE);

  printf ("\n4. Sustained rate of one core: packets/s and Gbit/s of "
          "payload\n\n");
  printf ("| | 1200 bytes | 1400 bytes |\n|---|---|---|\n");
  rate_row ("appsrc ! mcsecenc ! fakesink, lists (whole chain)", C_ENC, C_ENC,
            FALSE);
  rate_row ("mcsecenc's own work (over no element, lists)", C_ENC, C_NONE,
            FALSE);
  rate_row ("appsrc ! mcsecenc ! udpsink (loopback, sendmmsg)", C_SENC, C_SENC,
            FALSE);
  rate_row ("appsrc ! mcsecdec ! fakesink, lists (whole chain)", C_DEC, C_DEC,
            FALSE);
  rate_row ("mcsecdec's own work (over no element, lists)", C_DEC, C_DNONE,
            FALSE);
  rate_row ("udpsrc ! mcsecdec ! fakesink (loopback, per CPU second)", C_RDEC,
            C_RDEC, TRUE);
}

static gboolean
wanted (guint c)
{
  return only == NULL || strstr (cases[c].name, only) != NULL || c == C_ID ||
         c == C_DID || c == C_DID1 || c == C_SID || c == C_RID;
}

int
main (int argc, char **argv)
{
  int rounds = 5, udp_rounds = 3, run_idx = -1;
  guint run_size = 0;
  gchar *dir = NULL;
  gboolean prepare = FALSE;
  long ncpu;

  /* freeing the packets must not hand memory back to the kernel in the
   * middle of a timed run (page faults would be billed to the element) */
  mallopt (M_TRIM_THRESHOLD, 1 << 30);
  mallopt (M_MMAP_THRESHOLD, 1 << 30);
  ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  pin_cpu = ncpu > 1 ? (int)ncpu - 1 : 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--quick") == 0) {
      rounds = 2;
      udp_rounds = 1;
      n_packets = 30000;
    } else if (strcmp (argv[i], "--packets") == 0 && i + 1 < argc) {
      n_packets = (guint)g_ascii_strtoull (argv[++i], NULL, 10);
    } else if (strcmp (argv[i], "--cpu") == 0 && i + 1 < argc) {
      pin_cpu = atoi (argv[++i]);
    } else if (strcmp (argv[i], "--sender-cpu") == 0 && i + 1 < argc) {
      sender_cpu = atoi (argv[++i]);
    } else if (strcmp (argv[i], "--prepare") == 0) {
      prepare = TRUE;
    } else if (strcmp (argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (strcmp (argv[i], "--dir") == 0 && i + 1 < argc) {
      tmp_dir = argv[++i];
    } else if (strcmp (argv[i], "--run") == 0 && i + 2 < argc) {
      run_idx = atoi (argv[++i]);
      run_size = (guint)atoi (argv[++i]);
    } else {
      g_printerr ("usage: bench-elements [--quick] [--packets N] [--cpu C] "
                  "[--only SUBSTRING] | [--packets N] --prepare\n");
      return 2;
    }
  }
  if (sender_cpu < 0 && pin_cpu >= 0)
    sender_cpu = ncpu > 1 ? (pin_cpu == 0 ? 1 : 0) : -1;
  gst_init (&argc, &argv);
  if (run_idx >= 0) {
    if (tmp_dir == NULL)
      return 2;
    /* Debian 1.22's srtpdec and srtpenc complain (criticals) on their
     * own; keep the child's stderr to the first lines */
    return child_main ((guint)run_idx, run_size);
  }

  self_path = argv[0];
  if (gst_element_factory_find ("mcsecenc") == NULL) {
    g_printerr ("bench-elements: no mcsecenc: set GST_PLUGIN_PATH\n");
    return 1;
  }
  dir = g_dir_make_tmp ("bench-elements-XXXXXX", NULL);
  if (dir == NULL)
    FAIL ("no temporary directory\n");
  tmp_dir = dir;
  evp_init ();
  for (guint z = 0; z < N_SIZES; z++) {
    pre_encrypt (IN_MCSEC, sizes[z]);
    if (gst_element_factory_find ("srtpenc"))
      pre_encrypt (IN_SRTP, sizes[z]);
  }
  if (prepare) {
    /* for profiling one case: bench-elements --dir DIR --run CASE SIZE */
    printf ("%s\n", dir);
    return 0;
  }
  for (guint z = 0; z < N_SIZES; z++) {
    evp_seal[z] = evp_open[z] = cold_seal[z] = cold_open[z] = 1e18;
    evp_cold_prepare ((int)sizes[z]);
    for (int r = 0; r < rounds; r++) {
      for (guint c = 0; c < N_CASES; c++) {
        gboolean udp = cases[c].kind == K_SEND || cases[c].kind == K_RECV;
        if (!wanted (c) || (udp && r >= udp_rounds))
          continue;
        tally (&tallies[z][c], c, sizes[z]);
      }
      /* the floor, in this process, taking turns with the runs */
      for (int b = 0; b < 3; b++) {
        evp_seal[z] = MIN (evp_seal[z], evp_batch (TRUE, (int)sizes[z]));
        evp_open[z] = MIN (evp_open[z], evp_batch (FALSE, (int)sizes[z]));
        cold_seal[z] = MIN (cold_seal[z], evp_cold_batch (TRUE, (int)sizes[z]));
        cold_open[z] =
            MIN (cold_open[z], evp_cold_batch (FALSE, (int)sizes[z]));
      }
    }
  }
  report (rounds, udp_rounds);
  {
    gchar *cmd = g_strdup_printf ("rm -rf '%s'", dir);
    if (system (cmd) != 0)
      g_printerr ("bench-elements: could not remove %s\n", dir);
    g_free (cmd);
  }
  g_free (dir);
  return 0;
}
