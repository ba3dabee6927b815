/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * check-util.h: helpers shared by the GstHarness tests.
 */
#ifndef MCSEC_CHECK_UTIL_H
#define MCSEC_CHECK_UTIL_H

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include <mcsec/mcsec.h>

#define RTP_CAPS "application/x-rtp"
#define SPI_A 0x1000
#define SPI_B 0x2000

/* a private directory for counter stores and key files (main() makes it) */
extern gchar *state_dir;

/* A harness around element (its reference taken), input caps src_caps. */
GstHarness *harness_start (GstElement *element, const gchar *src_caps);
GstBuffer *make_key (mcsec_suite_t suite);
/* A datagram whose bytes all say `tag` (and its length), PTS tag ms. */
GstBuffer *make_datagram (guint tag, gsize size);
gboolean datagram_is (GstBuffer *b, guint tag, gsize size);
/* The next output of h is datagram (tag, size); the buffer is released. */
gboolean pulled_is (GstHarness *h, guint tag, gsize size);
gboolean caps_are (GstPad *pad, const gchar *str);
GstHarness *enc_harness (const gchar *cipher, GstBuffer *key, guint spi,
                         guint sender);
GstHarness *dec_harness (const gchar *cipher, GstBuffer *key, guint spi);
/* ---- a real controller (test-keysrc, test-rtpbin) ---- */
/* Run argv in dir; it must succeed. */
void run_tool_in (const gchar *dir, const gchar *const *argv);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
guint free_tcp_port (void);
/* In dir: credentials (mcsecctl pki: the controller, cam1 and the
 * space-separated identities), and a controller (tools: the folder of the
 * built tools) with a [group video] whose sender is cam1 and receivers the
 * `;`-separated list, listening on a free port (*port); its pid, once its
 * admin socket is there. */
GPid controller_start (const gchar *tools, const gchar *dir,
                       const gchar *identities, const gchar *receivers,
                       guint *port);
/* The same, with more settings (lines, each ending in \n) in its
 * [group video]. */
GPid controller_start_with (const gchar *tools, const gchar *dir,
                            const gchar *identities, const gchar *receivers,
                            const gchar *group_settings, guint *port);
/* SIGTERM, and wait (a pid of 0 is fine; it is zeroed). */
void controller_stop (GPid *pid);
/* rm -rf *dir, and free it. */
void remove_dir (gchar **dir);

/* The error an element posts when it cannot start (it must fail to go to
 * PAUSED: a bad setting is an error naming it, at start-up). */
gchar *start_error (GstElement *e);
GstStructure *get_stats (GstHarness *h);
void assert_stats (GstHarness *h, const gchar *expected);
/* The stats of one SA (by SPI) out of the decoder's `sas` array. */
GstStructure *sa_stats (GstHarness *h, guint spi);

/* PEM key files in the state directory: private and public of a sender. */
void write_keys (const gchar *name, gchar **priv_path, gchar **pub_path);
/* A sender's key files and the sender-keys entry ("ID=PUB") trusting it. */
typedef struct {
  gchar *priv, *pub, *keys;
} SenderKeys;
void sender_keys_init (SenderKeys *k, const gchar *name, guint sender_id);
void sender_keys_clear (SenderKeys *k);
GstHarness *sam_enc_harness (GstBuffer *key, guint sender,
                             const gchar *signing_key, const gchar *scheme,
                             guint block);
/* The same with sam-block-time set (< 0: the default). */
GstHarness *sam_enc_harness_timed (GstBuffer *key, guint sender,
                                   const gchar *signing_key,
                                   const gchar *scheme, guint block,
                                   gint64 block_time);
GstHarness *sam_dec_harness_full (GstBuffer *key, const gchar *policy,
                                  const gchar *keys, guint max_hold,
                                  guint64 max_latency);
GstHarness *sam_dec_harness (GstBuffer *key, const gchar *policy,
                             const gchar *keys);
const gchar *source_mark (GstBuffer *b);
/* Everything the encoder has output goes to the decoder; `drop` says
 * which ESP packets the network loses (NULL: none).  Returns the count. */
guint forward (GstHarness *enc, GstHarness *dec, guint *sent,
               gboolean (*drop) (guint));
/* EOS through both, with what the encoder sends last forwarded. */
void end_stream (GstHarness *enc, GstHarness *dec, guint *sent,
                 gboolean (*drop) (guint));

/* main() of a check program: a private state directory, the suite run. */
int check_main (int argc, char **argv, Suite *(*make_suite) (void),
                const gchar *name);

#endif
