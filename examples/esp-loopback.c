/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * esp-loopback: the data plane end to end over real UDP on 127.0.0.1.
 *
 * Two senders share one group SA (Sender-IDs 1 and 2, each with a counter
 * store so a restart could never repeat a nonce).  Every packet goes to two
 * receivers, as a multicast group would deliver it: one holds the group
 * key, one a wrong key.  An attacker on the path replays, tampers with and
 * invents packets.  Both receivers print their counts by drop reason and
 * per sender.  Exit status 0 when the keyed receiver got every genuine
 * datagram intact and nothing else, and the other receiver got nothing.
 *
 * Unicast to two loopback ports stands in for a multicast group here,
 * because multicast on `lo` needs a route that a bare machine may lack;
 * the packets are the same.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <mcsec/mcsec.h>

#define N_PACKETS 400
#define SUITE MCSEC_SUITE_AES_128_GCM

typedef struct {
  const char *name;
  int fd;
  struct sockaddr_in addr;
  mcsec_sadb_t *db;
  unsigned long ok, dropped[MCSEC_STATUS_COUNT_];
  unsigned long intact;
} receiver_t;

static void
die (const char *what, mcsec_status_t st)
{
  fprintf (stderr, "esp-loopback: %s: %s\n", what, mcsec_status_message (st));
  exit (1);
}

static mcsec_sa_t *
make_sa (uint32_t spi, const uint8_t *key)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa;
  mcsec_status_t st;

  cfg.spi = spi;
  cfg.suite = SUITE;
  cfg.key = key;
  cfg.key_len = mcsec_suite_key_material_len (SUITE);
  st = mcsec_sa_new (&cfg, &sa);
  if (st)
    die ("SA", st);
  return sa;
}

static void
receiver_init (receiver_t *r, const char *name, uint32_t spi,
               const uint8_t *key)
{
  socklen_t len = sizeof (r->addr);
  mcsec_status_t st;

  memset (r, 0, sizeof (*r));
  r->name = name;
  r->fd = socket (AF_INET, SOCK_DGRAM, 0);
  r->addr.sin_family = AF_INET;
  r->addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (r->fd < 0 || bind (r->fd, (struct sockaddr *)&r->addr, len) != 0 ||
      getsockname (r->fd, (struct sockaddr *)&r->addr, &len) != 0) {
    perror ("socket");
    exit (1);
  }
  st = mcsec_sadb_new (&r->db);
  if (st || (st = mcsec_sadb_add (r->db, make_sa (spi, key))))
    die ("SADB", st);
}

/* Drain what has arrived; the payload of datagram i is i repeated. */
static void
receiver_poll (receiver_t *r, int timeout_ms)
{
  static uint8_t pkt[2048], out[2048];
  struct pollfd p = {.fd = r->fd, .events = POLLIN};

  while (poll (&p, 1, timeout_ms) > 0) {
    ssize_t n = recv (r->fd, pkt, sizeof (pkt), 0);
    mcsec_rx_info_t info;
    mcsec_status_t st;
    if (n < 0)
      break;
    st = mcsec_sadb_unprotect (r->db, pkt, (size_t)n, out, sizeof (out), &info);
    if (st) {
      r->dropped[st]++;
      continue;
    }
    if (info.next_header == MCSEC_NEXT_HEADER_DUMMY)
      continue;
    r->ok++;
    if (info.payload_len == 200 && out[0] == out[199])
      r->intact++;
    timeout_ms = 0;
  }
}

static void
print_sender (const mcsec_sender_stats_t *s, void *data)
{
  (void)data;
  printf ("    sender-id %u: %llu accepted, highest counter %llu\n",
          s->sender_id, (unsigned long long)s->accepted,
          (unsigned long long)s->highest_counter);
}

static void
receiver_report (receiver_t *r, uint32_t spi)
{
  mcsec_sa_t *sa = mcsec_sadb_lookup (r->db, spi);

  printf ("%s: %lu accepted (%lu intact)", r->name, r->ok, r->intact);
  for (int s = 1; s < MCSEC_STATUS_COUNT_; s++)
    if (r->dropped[s])
      printf (", %lu dropped [%s]", r->dropped[s], mcsec_status_name (s));
  printf ("\n");
  mcsec_sa_foreach_sender (sa, print_sender, NULL);
}

int
main (int argc, char **argv)
{
  uint8_t key[MCSEC_MAX_KEY_MATERIAL_LEN], wrong[MCSEC_MAX_KEY_MATERIAL_LEN];
  uint8_t payload[200], pkt[2048], saved[2048];
  char dir[] = "/tmp/mcsec-demo-XXXXXX", path[256];
  mcsec_counter_store_t *stores[2];
  mcsec_sa_t *tx[2];
  receiver_t good, bad;
  size_t len, saved_len = 0;
  uint32_t spi;
  int out_fd, attacks = 0;
  mcsec_status_t st;

  if (argc > 1) {
    int help = strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0;
    fprintf (help ? stdout : stderr,
             "Usage: esp-loopback\n\n"
             "The data plane end to end over UDP on 127.0.0.1: two senders "
             "share a\ngroup SA, a keyed and a wrong-key receiver, an "
             "attacker replays, tampers\nwith and invents packets.  Takes "
             "no arguments; exit status 0 when the\nkeyed receiver got every "
             "genuine datagram and nothing else.\n");
    return help ? 0 : 2;
  }
  if (mcsec_generate_key_material (SUITE, key, sizeof (key)) ||
      mcsec_generate_key_material (SUITE, wrong, sizeof (wrong)) ||
      RAND_bytes ((unsigned char *)&spi, sizeof (spi)) != 1 ||
      mkdtemp (dir) == NULL)
    die ("setup", MCSEC_ERR_CRYPTO);
  spi |= 0x100u;

  printf ("mcsec ESP data plane demo: suite %s, SPI 0x%08x, two senders, "
          "two receivers on 127.0.0.1\n",
          mcsec_suite_name (SUITE), spi);
  receiver_init (&good, "receiver with the group key", spi, key);
  receiver_init (&bad, "receiver with a wrong key  ", spi, wrong);
  for (int s = 0; s < 2; s++) {
    uint64_t first, limit;
    snprintf (path, sizeof (path), "%s/sender-%d.ctr", dir, s + 1);
    st = mcsec_counter_store_open (path, 0, &stores[s], &first, &limit);
    if (st)
      die (path, st);
    tx[s] = make_sa (spi, key);
    st = mcsec_sa_set_sender (tx[s], (uint32_t)s + 1, first, limit);
    if (st)
      die ("sender", st);
  }
  OPENSSL_cleanse (key, sizeof (key));
  OPENSSL_cleanse (wrong, sizeof (wrong));
  out_fd = socket (AF_INET, SOCK_DGRAM, 0);

  for (int i = 0; i < N_PACKETS; i++) {
    int s = i % 2;
    unsigned events;
    memset (payload, i & 0xff, sizeof (payload));
    st = mcsec_sa_protect (tx[s], MCSEC_NEXT_HEADER_DATAGRAM, payload,
                           sizeof (payload), pkt, sizeof (pkt), &len, &events);
    if (st)
      die ("protect", st);
    if (events & MCSEC_EVENT_RESERVATION_LOW) {
      uint64_t limit;
      if ((st = mcsec_counter_store_extend (stores[s], &limit)) ||
          (st = mcsec_sa_extend_reservation (tx[s], limit)))
        die ("counter store", st);
    }
    if (i == 10) {
      memcpy (saved, pkt, len);
      saved_len = len;
    }
    /* the attacker, racing the genuine packet: a copy with a flipped bit,
     * a replay of an old packet, an unknown SPI, a runt */
    if (i % 50 == 49) {
      uint8_t forged[2048];
      memcpy (forged, pkt, len);
      forged[len / 2] ^= 0x01;
      sendto (out_fd, saved, saved_len, 0, (struct sockaddr *)&good.addr,
              sizeof (good.addr));
      sendto (out_fd, forged, len, 0, (struct sockaddr *)&good.addr,
              sizeof (good.addr));
      forged[0] ^= 0x40;
      sendto (out_fd, forged, len, 0, (struct sockaddr *)&good.addr,
              sizeof (good.addr));
      sendto (out_fd, forged, 7, 0, (struct sockaddr *)&good.addr,
              sizeof (good.addr));
      attacks += 4;
    }
    sendto (out_fd, pkt, len, 0, (struct sockaddr *)&good.addr,
            sizeof (good.addr));
    sendto (out_fd, pkt, len, 0, (struct sockaddr *)&bad.addr,
            sizeof (bad.addr));
    if (i % 32 == 31) {
      receiver_poll (&good, 0);
      receiver_poll (&bad, 0);
    }
  }
  receiver_poll (&good, 500);
  receiver_poll (&bad, 500);

  printf ("sent %d genuine datagrams and %d attacker packets\n", N_PACKETS,
          attacks);
  receiver_report (&good, spi);
  receiver_report (&bad, spi);

  for (int s = 0; s < 2; s++) {
    mcsec_sa_free (tx[s]);
    mcsec_counter_store_close (stores[s]);
    snprintf (path, sizeof (path), "%s/sender-%d.ctr", dir, s + 1);
    unlink (path);
  }
  rmdir (dir);
  close (out_fd);
  close (good.fd);
  close (bad.fd);
  mcsec_sadb_free (good.db);
  mcsec_sadb_free (bad.db);

  /* UDP on loopback does not drop in practice; say so if it did */
  if (good.ok != N_PACKETS || good.intact != N_PACKETS || bad.ok != 0) {
    printf ("RESULT: FAILED\n");
    return 1;
  }
  printf (
      "RESULT: every genuine datagram delivered intact to the key "
      "holder, every forgery and replay dropped, nothing for the wrong key\n");
  return 0;
}
