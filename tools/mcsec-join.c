/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-join: join a group as a member with the library's MIKE client and
 * report what happens (joined, refused, updates, evicted), without keys.
 * For trying a controller configuration and for scripts and tests.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/pem.h>

#include <mcsec/mcsec-mike.h>

#include "kernel-xfrm.h"

static volatile sig_atomic_t stop;
static volatile int outcome; /* 0 running, 1 joined, 3 refused, 5 evicted */
static int once;

static void
on_signal (int sig)
{
  (void)sig;
  stop = 1;
}

static mcsec_client_t *client;
static gint msa_changed = 1; /* an event came: the MSA may have changed */
static gchar *controllers;   /* --controller's, joined with commas */

/* The SPI most recently added to the member's MSA (events come from the
 * client's thread, outside its lock). */
static unsigned
newest_spi (void)
{
  mcsec_msa_t *msa = NULL;
  unsigned spi = 0;
  if (client && mcsec_client_msa (client, &msa) == MCSEC_OK && msa &&
      msa->n_sas)
    spi = msa->sas[msa->n_sas - 1].spi;
  mcsec_msa_free (msa);
  return spi;
}

static void
on_event (const mcsec_member_event_t *ev, void *data)
{
  (void)data;
  g_atomic_int_set (&msa_changed, 1);
  switch (ev->type) {
  case MCSEC_MEMBER_EV_REFUSED:
  case MCSEC_MEMBER_EV_EVICTED:
  case MCSEC_MEMBER_EV_REDIRECTED:
    printf ("%s reason=%s text=\"%s\"\n", mcsec_member_event_name (ev->type),
            mcsec_mike_reason_name (ev->reason), ev->text);
    /* redirected: not final, the client tries another controller */
    if (ev->type != MCSEC_MEMBER_EV_REDIRECTED)
      outcome = ev->type == MCSEC_MEMBER_EV_REFUSED ? 3 : 5;
    break;
  case MCSEC_MEMBER_EV_JOINED:
  case MCSEC_MEMBER_EV_UPDATED:
  case MCSEC_MEMBER_EV_REJECTED:
    printf ("%s seq=%llu newest-spi=0x%08x%s%s\n",
            mcsec_member_event_name (ev->type), (unsigned long long)ev->seq,
            newest_spi (), ev->text[0] ? " text=" : "", ev->text);
    if (ev->type == MCSEC_MEMBER_EV_JOINED)
      outcome = 1;
    break;
  default:
    printf ("%s%s%s\n", mcsec_member_event_name (ev->type),
            ev->text[0] ? " " : "", ev->text);
  }
  fflush (stdout);
}

static const char summary[] =
    "Join an mcsec group and print the membership's events (never a key).\n"
    "--controller takes a cluster's controllers, comma-separated (or\n"
    "repeated: added to the list in order); the member tries them in\n"
    "turn, goes first where a not-leader refusal names one of them, and\n"
    "backs off after a round of the list without a join.  Lines:\n"
    "  redirected reason=REASON text=\"TEXT\"  (not final: next one)\n"
    "  connected HOST:PORT                    (the controller took us in)\n"
    "  connection-lost WHY\n"
    "--once exits after the join (0), a refusal (3) or a timeout (4);\n"
    "otherwise it runs until SIGINT/SIGTERM or an eviction (5); a bad\n"
    "command line exits with 2.\n"
    "Each update line names the SPI the member sends with (never a key);\n"
    "at the end, the rekey channel's counters (key tree groups).\n"
    "--kernel (receivers, as root or with CAP_NET_ADMIN) hands the group's\n"
    "keys to the Linux kernel's IPsec, so that a plain UDP socket on\n"
    "--inner-udp-port receives the datagrams (senders: mcsecenc\n"
    "inner-udp-port): it opens the ESP-in-UDP socket on the group's\n"
    "address and port, adds an inbound policy and follows every rekey\n"
    "with the kernel's states (one per sender with the group's\n"
    "spi-per-sender); all is removed when it stops or is evicted\n"
    "(docs/linux-ipsec.md).  Lines: kernel installed|removed spi=...";

static struct {
  gchar **controllers;
  gchar *group, *certificate, *private_key, *ca, *role, *signing_key_file;
  gchar *controller_name, *rekey_interface, *kernel_interface;
  gboolean once, version, kernel;
  gdouble timeout_s;
  gint inner_udp_port, kernel_reqid, kernel_replay_window;
} opt = {.timeout_s = 10, .kernel_replay_window = 128};

static const GOptionEntry entries[] = {
    {"controller", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt.controllers,
     "The controller (a cluster's: comma-separated, or repeated)",
     "HOST:PORT[,...]"},
    {"group", 'g', 0, G_OPTION_ARG_STRING, &opt.group, "The group to join",
     "NAME"},
    {"certificate", 0, 0, G_OPTION_ARG_FILENAME, &opt.certificate,
     "The member's certificate (PEM; its CN is the identity)", "FILE"},
    {"private-key", 0, 0, G_OPTION_ARG_FILENAME, &opt.private_key,
     "The certificate's private key (PEM)", "FILE"},
    {"ca", 0, 0, G_OPTION_ARG_FILENAME, &opt.ca,
     "The CA that signed the controller's certificate (PEM)", "FILE"},
    {"role", 0, 0, G_OPTION_ARG_STRING, &opt.role,
     "receiver (default), sender (sends and receives; 'both' is an older "
     "name for it), or feedback (receives, sends RTCP only)",
     "ROLE"},
    {"signing-key-file", 0, 0, G_OPTION_ARG_FILENAME, &opt.signing_key_file,
     "Senders and feedback members: this member's source authentication "
     "key (PEM, Ed25519 or ECDSA P-256), as mcseckeysrc's signing-key-file",
     "FILE"},
    /* its name before it took the elements' word (the controller's own
     * key is update-signing-key) */
    {"signing-key", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME,
     &opt.signing_key_file, NULL, NULL},
    {"controller-name", 0, 0, G_OPTION_ARG_STRING, &opt.controller_name,
     "The name the controller's certificate must carry (default: the "
     "host of --controller)",
     "NAME"},
    {"rekey-interface", 0, 0, G_OPTION_ARG_STRING, &opt.rekey_interface,
     "The interface that receives the rekey channel", "IFACE"},
    {"once", 0, 0, G_OPTION_ARG_NONE, &opt.once,
     "Exit after the join, a refusal or --timeout", NULL},
    {"timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt.timeout_s,
     "With --once: seconds to wait for the join (default: 10)", "S"},
    {"kernel", 0, 0, G_OPTION_ARG_NONE, &opt.kernel,
     "Receive through the kernel's IPsec: program its XFRM states and "
     "follow rekeys (needs CAP_NET_ADMIN)",
     NULL},
    {"inner-udp-port", 0, 0, G_OPTION_ARG_INT, &opt.inner_udp_port,
     "With --kernel: the UDP port the datagrams go to (the senders' "
     "mcsecenc inner-udp-port)",
     "PORT"},
    {"kernel-interface", 0, 0, G_OPTION_ARG_STRING, &opt.kernel_interface,
     "With --kernel and a multicast group: the interface to join it on",
     "IFACE"},
    {"kernel-reqid", 0, 0, G_OPTION_ARG_INT, &opt.kernel_reqid,
     "With --kernel: the reqid that marks this follower's states "
     "(default 0x6d637300; one follower per reqid and address)",
     "N"},
    {"kernel-replay-window", 0, 0, G_OPTION_ARG_INT, &opt.kernel_replay_window,
     "With --kernel: each state's replay window, 32..4096 packets "
     "(default 128)",
     "N"},
    {"version", 0, 0, G_OPTION_ARG_NONE, &opt.version, "Print the version",
     NULL},
    G_OPTION_ENTRY_NULL};

/* --kernel: the follower, made once the MSA names the group's address */
static mcsec_kx_t *kx;
static uint64_t kx_generation;
static gint64 kx_retry_us, kx_checked_us, kx_backoff_s;
static unsigned kx_not_removed;

/* the kernel's states and policy removed (said line by line) */
static void
kernel_stop (void)
{
  kx_not_removed += mcsec_kx_free (kx);
  kx = NULL;
}
static int kernel_failed;

static void
kernel_line (const char *line, void *data)
{
  (void)data;
  printf ("kernel %s\n", line);
  fflush (stdout);
}

/* Keeps the kernel's states the MSA's; -1 (said) when the follower must
 * stop: it cannot start, the group asks for source authentication, or
 * its policy or a state was removed by someone else. */
static int
kernel_follow (mcsec_client_t *c)
{
  gint64 now = g_get_monotonic_time ();
  mcsec_msa_t *msa = NULL;
  char *error = NULL;
  int rc = 0;

  /* the MSA is copied when an event said it changed, and once a second
   * for the check (a copy holds up to 256 senders' keys) */
  if (!g_atomic_int_compare_and_exchange (&msa_changed, 1, 0) &&
      now < kx_checked_us + G_USEC_PER_SEC)
    return 0;
  if (mcsec_client_msa (c, &msa) != MCSEC_OK || msa == NULL)
    return 0;
  if (msa->sam != 0) {
    /* anyone of the group could put datagrams through the kernel, which
     * cannot check whose they are */
    error = g_strdup_printf (
        "the group requires source authentication (sam = %s), which a "
        "kernel cannot check: the controller's group needs sam = none",
        msa->sam == 1 ? "per-packet" : "block");
    rc = -1;
  } else if (kx && !mcsec_kx_follows (kx, msa->address, msa->port)) {
    /* a controller that restarted with another address or port */
    printf ("kernel following %s:%u anew\n", msa->address, msa->port);
    kernel_stop ();
  }
  if (rc == 0 && kx == NULL) {
    mcsec_kx_config_t kc = {
        .address = msa->address,
        .port = msa->port,
        .inner_port = (uint16_t)opt.inner_udp_port,
        .interface = opt.kernel_interface,
        .reqid = (uint32_t)opt.kernel_reqid,
        .replay_window = (uint32_t)opt.kernel_replay_window,
        .log = kernel_line,
    };
    if (msa->address[0] == '\0')
      error = g_strdup ("the group has no address (the controller's "
                        "'address' setting)");
    else
      kx = mcsec_kx_new (&kc, &error);
    if (kx == NULL)
      rc = -1;
    kx_generation = 0;
  }
  if (rc == 0 && now >= kx_checked_us + G_USEC_PER_SEC) {
    kx_checked_us = now;
    if (mcsec_kx_check (kx, &error) < 0)
      rc = -1;
  }
  if (rc == 0 && msa->generation != kx_generation && now >= kx_retry_us) {
    /* a state the kernel refused: said, and tried again later (1 s,
     * doubling up to 32 s) */
    if (mcsec_kx_sync (kx, msa, &error) == 0) {
      kx_generation = msa->generation;
      kx_backoff_s = 0;
    } else {
      kx_backoff_s = kx_backoff_s ? MIN (kx_backoff_s * 2, 32) : 1;
      kx_retry_us = now + kx_backoff_s * G_USEC_PER_SEC;
      g_atomic_int_set (&msa_changed, 1);
    }
  }
  if (error) {
    fprintf (stderr, "mcsec-join: --kernel: %s\n", error);
    g_free (error);
  }
  mcsec_msa_free (msa);
  return rc;
}

/* The command line, the GLib way; 0 to go on, else the exit status. */
static int
parse_options (int *argc, char ***argv)
{
  GOptionContext *ctx = g_option_context_new (NULL);
  GError *error = NULL;
  const char *missing = NULL;

  g_option_context_set_summary (ctx, summary);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, argc, argv, &error)) {
    fprintf (stderr, "mcsec-join: %s (see mcsec-join --help)\n",
             error->message);
    g_error_free (error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (opt.version) {
    printf ("mcsec-join %s\n", MCSEC_VERSION);
    return -1;
  }
  if (*argc > 1) {
    fprintf (stderr,
             "mcsec-join: unexpected argument '%s' (see mcsec-join "
             "--help)\n",
             (*argv)[1]);
    return 2;
  }
  missing = !opt.controllers   ? "--controller"
            : !opt.group       ? "--group"
            : !opt.certificate ? "--certificate"
            : !opt.private_key ? "--private-key"
            : !opt.ca          ? "--ca"
                               : NULL;
  if (missing) {
    fprintf (stderr, "mcsec-join: %s is required (see mcsec-join --help)\n",
             missing);
    return 2;
  }
  if (opt.kernel &&
      (opt.inner_udp_port < 1 || opt.inner_udp_port > 65535 || opt.once)) {
    fprintf (stderr,
             "mcsec-join: --kernel needs --inner-udp-port 1..65535 and runs "
             "until stopped (not with --once)\n");
    return 2;
  }
  if (opt.kernel_replay_window < 32 || opt.kernel_replay_window > 4096 ||
      opt.kernel_replay_window % 32) {
    fprintf (stderr, "mcsec-join: --kernel-replay-window: 32..4096, a "
                     "multiple of 32\n");
    return 2;
  }
  once = opt.once;
  /* repeated: one list, in order */
  controllers = g_strjoinv (",", opt.controllers);
  return 0;
}

int
main (int argc, char **argv)
{
  mcsec_client_config_t cfg = {0};
  const char *role;
  double timeout;
  mcsec_client_t *c = NULL;
  char *error = NULL;
  EVP_PKEY *key = NULL;
  struct timespec t0, t;
  int rc;

  rc = parse_options (&argc, &argv);
  if (rc != 0)
    return rc < 0 ? 0 : rc;
  cfg.controller = controllers;
  cfg.controller_name = opt.controller_name;
  cfg.rekey_interface = opt.rekey_interface;
  cfg.member.group = opt.group;
  cfg.certificate = opt.certificate;
  cfg.private_key = opt.private_key;
  cfg.ca = opt.ca;
  role = opt.role ? opt.role : "receiver";
  timeout = opt.timeout_s;
  /* both (3): what sender (2) is, as the controller sees it (every
   * member may receive): an older name, its wire value kept */
  cfg.member.role = strcmp (role, "sender") == 0     ? MCSEC_MIKE_ROLE_SENDER
                    : strcmp (role, "both") == 0     ? MCSEC_MIKE_ROLE_BOTH
                    : strcmp (role, "receiver") == 0 ? MCSEC_MIKE_ROLE_RECEIVER
                    : strcmp (role, "feedback") == 0 ? MCSEC_MIKE_ROLE_FEEDBACK
                                                     : 0;
  if (cfg.member.role == 0) {
    fprintf (stderr, "mcsec-join: --role: receiver, sender or feedback\n");
    return 2;
  }
  /* the kernel makes its IVs from its own sequence numbers: a kernel
   * sender on a group key could repeat another sender's nonce */
  if (opt.kernel && cfg.member.role != MCSEC_MIKE_ROLE_RECEIVER) {
    fprintf (stderr, "mcsec-join: --kernel receives only (--role receiver): "
                     "the kernel's IVs are not Sender-ID || counter\n");
    return 2;
  }
  if (opt.signing_key_file) {
    FILE *f = fopen (opt.signing_key_file, "r");
    int e = errno;
    key = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
    if (f)
      fclose (f);
    if (key == NULL) {
      fprintf (stderr, "mcsec-join: --signing-key-file %s: %s\n",
               opt.signing_key_file,
               f ? "not a PEM private key" : g_strerror (e));
      return 2;
    }
  }
  cfg.member.sam_key = key;
  cfg.on_event = on_event;
  if (mcsec_client_new (&cfg, &c, &error) != MCSEC_OK) {
    fprintf (stderr, "mcsec-join: %s\n", error ? error : "cannot start");
    free (error);
    EVP_PKEY_free (key);
    return 2;
  }
  EVP_PKEY_free (key);
  client = c;
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  /* the kernel's states go at every end it can see: a hang-up or quit
   * too, and a closed stdout is no reason to die with them in place */
  signal (SIGHUP, on_signal);
  signal (SIGQUIT, on_signal);
  signal (SIGPIPE, SIG_IGN);
  if (mcsec_client_start (c) != MCSEC_OK) {
    mcsec_client_free (c);
    return 2;
  }
  clock_gettime (CLOCK_MONOTONIC, &t0);
  while (!stop) {
    usleep (20000);
    if (outcome >= 3 || (once && outcome == 1))
      break;
    if (opt.kernel && outcome == 1 && kernel_follow (c) < 0) {
      kernel_failed = 1;
      break;
    }
    clock_gettime (CLOCK_MONOTONIC, &t);
    if (once &&
        (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >
            timeout)
      break;
  }
  /* before leaving: the keys go from the kernel first */
  kernel_stop ();
  if (outcome == 1 || (outcome == 0 && !once)) {
    mcsec_msa_t *msa = NULL;
    if (mcsec_client_msa (c, &msa) == MCSEC_OK && msa) {
      printf ("msa identity=%s sas=%zu senders=%zu sender-id=%u\n",
              msa->identity, msa->n_sas, msa->n_senders, msa->sender_id);
      mcsec_msa_free (msa);
    }
  }
  mcsec_client_stop (c);
  {
    mcsec_member_channel_stats_t cs;
    mcsec_client_channel_stats (c, &cs);
    if (cs.datagrams + cs.heartbeats + cs.repairs + cs.rekeys)
      printf (
          "channel rekeys=%llu datagrams=%llu heartbeats=%llu "
          "repairs=%llu resyncs=%llu dropped=%llu\n",
          (unsigned long long)cs.rekeys, (unsigned long long)cs.datagrams,
          (unsigned long long)cs.heartbeats, (unsigned long long)cs.repairs,
          (unsigned long long)cs.resyncs,
          (unsigned long long)(cs.bad_signature + cs.malformed + cs.too_far));
  }
  client = NULL;
  mcsec_client_free (c);
  g_free (controllers);
  g_strfreev (opt.controllers);
  rc = outcome == 1 ? 0 : outcome == 0 ? (once ? 4 : 0) : outcome;
  if (kx_not_removed)
    fprintf (stderr,
             "mcsec-join: --kernel: %u of the kernel's states or policy "
             "could not be removed (ip xfrm state list reqid ...)\n",
             kx_not_removed);
  return kernel_failed || kx_not_removed ? 1 : rc;
}
