/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-join: join a group as a member with the library's MIKE client and
 * report what happens (joined, refused, updates, evicted), without keys.
 * For trying a controller configuration and for scripts and tests.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include <mcsec/mcsec-mike.h>

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
static char *controllers; /* --controller's, joined with commas */

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

static void
usage (FILE *f)
{
  fprintf (
      f,
      "Usage: mcsec-join --controller HOST:PORT[,HOST:PORT...] --group NAME\n"
      "                  --certificate FILE --private-key FILE --ca FILE\n"
      "                  [--role receiver|sender|both] [--signing-key FILE]\n"
      "                  [--controller-name NAME] [--rekey-interface IFACE]\n"
      "                  [--once] [--timeout S]\n"
      "\n"
      "Join an mcsec group and print the membership's events (never a "
      "key).\n"
      "--controller takes a cluster's controllers, comma-separated (or\n"
      "repeated: added to the list in order); the member tries them in\n"
      "turn, goes first where a not-leader refusal names one of them, and\n"
      "backs off after a round of the list without a join.  Lines:\n"
      "  redirected reason=REASON text=\"TEXT\"  (not final: next one)\n"
      "  connected HOST:PORT                    (the controller took us in)\n"
      "  connection-lost WHY\n"
      "--once exits after the join (0), a refusal (3) or a timeout (4);\n"
      "otherwise it runs until SIGINT/SIGTERM or an eviction (5).\n"
      "Each update line names the SPI the member sends with (never a key);\n"
      "at the end, the rekey channel's counters (key tree groups).\n");
}

int
main (int argc, char **argv)
{
  mcsec_client_config_t cfg = {0};
  const char *role = "receiver", *signing = NULL;
  double timeout = 10;
  mcsec_client_t *c = NULL;
  char *error = NULL;
  EVP_PKEY *key = NULL;
  struct timespec t0, t;
  int rc;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp (a, "--help") == 0) {
      usage (stdout);
      return 0;
    } else if (strcmp (a, "--once") == 0) {
      once = 1;
      continue;
    }
    if (v == NULL) {
      usage (stderr);
      return 2;
    }
    i++;
    if (strcmp (a, "--controller") == 0) {
      /* repeated: one list, in order */
      size_t have = controllers ? strlen (controllers) : 0;
      char *grown = realloc (controllers, have + strlen (v) + 2);
      if (grown == NULL)
        return 2;
      controllers = grown;
      sprintf (controllers + have, "%s%s", have ? "," : "", v);
      cfg.controller = controllers;
    } else if (strcmp (a, "--controller-name") == 0)
      cfg.controller_name = v;
    else if (strcmp (a, "--rekey-interface") == 0)
      cfg.rekey_interface = v;
    else if (strcmp (a, "--group") == 0)
      cfg.member.group = v;
    else if (strcmp (a, "--certificate") == 0)
      cfg.certificate = v;
    else if (strcmp (a, "--private-key") == 0)
      cfg.private_key = v;
    else if (strcmp (a, "--ca") == 0)
      cfg.ca = v;
    else if (strcmp (a, "--role") == 0)
      role = v;
    else if (strcmp (a, "--signing-key") == 0)
      signing = v;
    else if (strcmp (a, "--timeout") == 0)
      timeout = atof (v);
    else {
      usage (stderr);
      return 2;
    }
  }
  if (cfg.controller == NULL || cfg.member.group == NULL) {
    usage (stderr);
    return 2;
  }
  cfg.member.role = strcmp (role, "sender") == 0     ? MCSEC_MIKE_ROLE_SENDER
                    : strcmp (role, "both") == 0     ? MCSEC_MIKE_ROLE_BOTH
                    : strcmp (role, "receiver") == 0 ? MCSEC_MIKE_ROLE_RECEIVER
                                                     : 0;
  if (cfg.member.role == 0) {
    fprintf (stderr, "mcsec-join: --role: receiver, sender or both\n");
    return 2;
  }
  if (signing) {
    FILE *f = fopen (signing, "r");
    key = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
    if (f)
      fclose (f);
    if (key == NULL) {
      fprintf (stderr, "mcsec-join: --signing-key: cannot read %s\n", signing);
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
  if (mcsec_client_start (c) != MCSEC_OK) {
    mcsec_client_free (c);
    return 2;
  }
  clock_gettime (CLOCK_MONOTONIC, &t0);
  while (!stop) {
    usleep (20000);
    if (outcome >= 3 || (once && outcome == 1))
      break;
    clock_gettime (CLOCK_MONOTONIC, &t);
    if (once &&
        (double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >
            timeout)
      break;
  }
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
  free (controllers);
  rc = outcome == 1 ? 0 : outcome == 0 ? (once ? 4 : 0) : outcome;
  return rc;
}
