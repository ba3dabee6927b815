/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Nonce safety across restarts.  A sender process with a static key and a
 * fixed Sender-ID is started, killed with SIGKILL at a random moment, and
 * started again, many times; every IV it ever put on the wire is captured
 * and none may repeat.  Also: the store's reservations, its lock against a
 * second process, and its refusal to guess after damage.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcsec-private.h"
#include "mcsec-test.h"

#define SPI 0x5e5e0001u
#define BLOCK 64

static char dir[] = "/tmp/mcsec-counter-XXXXXX";
static char path[256];
static const uint8_t static_key[20] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0xa, 0xb, 0xc, 0xd};

/* The sender: protect forever, write each packet's IV to fd. */
static void
sender_child (int fd)
{
  mcsec_counter_store_t *store;
  mcsec_sa_t *sa;
  uint64_t first, limit;
  uint8_t payload[32] = {0}, pkt[128];
  size_t len;
  unsigned events;

  if (mcsec_counter_store_open (path, BLOCK, &store, &first, &limit))
    _exit (3);
  sa = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, static_key);
  if (mcsec_sa_set_sender (sa, 42, first, limit))
    _exit (4);
  for (;;) {
    mcsec_status_t st = mcsec_sa_protect (sa, 253, payload, sizeof (payload),
                                          pkt, sizeof (pkt), &len, &events);
    if (st == MCSEC_ERR_RESERVATION_EXHAUSTED)
      _exit (5); /* must not happen: we extend at half */
    if (st)
      _exit (6);
    if (write (fd, pkt + 8, 8) != 8)
      _exit (7);
    if (events & MCSEC_EVENT_RESERVATION_LOW) {
      if (mcsec_counter_store_extend (store, &limit) ||
          mcsec_sa_extend_reservation (sa, limit))
        _exit (8);
    }
  }
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void
test_restarts_never_repeat_a_nonce (void)
{
  enum { RUNS = 25, MAX_IVS = 400000 };
  static uint64_t ivs[MAX_IVS];
  size_t n = 0, dup = 0;
  uint64_t seed = (uint64_t)getpid () * 2654435761u;

  for (int run = 0; run < RUNS; run++) {
    int fds[2];
    pid_t pid;
    size_t want = 50 + test_rand (&seed) % 3000;
    size_t got = 0;
    uint8_t buf[8 * 256];
    ssize_t r;
    int status;

    REQUIRE (pipe (fds) == 0);
    pid = fork ();
    REQUIRE (pid >= 0);
    if (pid == 0) {
      close (fds[0]);
      sender_child (fds[1]);
    }
    close (fds[1]);
    /* let it run for a random number of packets, then kill it hard */
    while (got < want && (r = read (fds[0], buf, 8)) == 8) {
      REQUIRE (n < MAX_IVS);
      ivs[n++] = mcsec_load_be64 (buf);
      got++;
    }
    kill (pid, SIGKILL);
    /* whatever it wrote before dying was on the wire too */
    while ((r = read (fds[0], buf, sizeof (buf))) > 0) {
      for (ssize_t i = 0; i + 8 <= r; i += 8) {
        REQUIRE (n < MAX_IVS);
        ivs[n++] = mcsec_load_be64 (buf + i);
      }
    }
    close (fds[0]);
    REQUIRE (waitpid (pid, &status, 0) == pid);
    CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  }
  qsort (ivs, n, sizeof (ivs[0]), cmp_u64);
  for (size_t i = 1; i < n; i++)
    dup += ivs[i] == ivs[i - 1];
  printf ("  %d runs killed with SIGKILL, %zu IVs, %zu repeated\n", RUNS, n,
          dup);
  CHECK (n > RUNS * 50);
  CHECK (dup == 0);
  /* every IV carries Sender-ID 42 */
  for (size_t i = 0; i < n; i++)
    CHECK ((ivs[i] >> 48) == 42);
  /* and the same static key without the store would have repeated: the
   * first packet of two fresh SAs is the same nonce */
  {
    mcsec_sa_t *a = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, static_key);
    mcsec_sa_t *b = test_sa_new (MCSEC_SUITE_AES_128_GCM, SPI, static_key);
    uint8_t pa[64], pb[64], payload[4] = {0};
    size_t la, lb;
    REQUIRE (mcsec_sa_set_sender (a, 42, 0, 0) == MCSEC_OK);
    REQUIRE (mcsec_sa_set_sender (b, 42, 0, 0) == MCSEC_OK);
    REQUIRE (mcsec_sa_protect (a, 253, payload, 4, pa, 64, &la, NULL) == 0);
    REQUIRE (mcsec_sa_protect (b, 253, payload, 4, pb, 64, &lb, NULL) == 0);
    CHECK (memcmp (pa + 8, pb + 8, 8) == 0);
    mcsec_sa_free (a);
    mcsec_sa_free (b);
  }
}

static void
test_reservations (void)
{
  mcsec_counter_store_t *s;
  uint64_t first, limit, prev_limit;
  char p2[300];

  snprintf (p2, sizeof (p2), "%s/fresh", dir);
  CHECK_STATUS (mcsec_counter_store_open (p2, 100, &s, &first, &limit),
                MCSEC_OK);
  CHECK (first == MCSEC_COUNTER_FIRST && limit == first + 100);
  CHECK_STATUS (mcsec_counter_store_extend (s, &limit), MCSEC_OK);
  CHECK (limit == first + 200);
  prev_limit = limit;
  mcsec_counter_store_close (s);
  CHECK_STATUS (mcsec_counter_store_open (p2, 10, &s, &first, &limit),
                MCSEC_OK);
  CHECK (first == prev_limit && limit == prev_limit + 10);
  mcsec_counter_store_close (s);
  CHECK_STATUS (mcsec_counter_store_open (p2,
                                          MCSEC_COUNTER_STORE_DAMAGE_SKIP + 1,
                                          &s, &first, &limit),
                MCSEC_ERR_INVALID_ARG);
}

static void
test_lock (void)
{
  mcsec_counter_store_t *s;
  uint64_t first, limit;
  int to_child[2], to_parent[2];
  pid_t pid;
  char c;

  REQUIRE (pipe (to_child) == 0 && pipe (to_parent) == 0);
  pid = fork ();
  REQUIRE (pid >= 0);
  if (pid == 0) {
    int ok = mcsec_counter_store_open (path, BLOCK, &s, &first, &limit) == 0;
    if (write (to_parent[1], ok ? "y" : "n", 1) != 1)
      _exit (1);
    if (read (to_child[0], &c, 1) != 1)
      _exit (1);
    _exit (0);
  }
  REQUIRE (read (to_parent[0], &c, 1) == 1);
  CHECK (c == 'y');
  CHECK_STATUS (mcsec_counter_store_open (path, BLOCK, &s, &first, &limit),
                MCSEC_ERR_LOCKED);
  REQUIRE (write (to_child[1], "x", 1) == 1);
  REQUIRE (waitpid (pid, NULL, 0) == pid);
  /* once the holder is gone the store opens */
  CHECK_STATUS (mcsec_counter_store_open (path, BLOCK, &s, &first, &limit),
                MCSEC_OK);
  mcsec_counter_store_close (s);
  close (to_child[0]);
  close (to_child[1]);
  close (to_parent[0]);
  close (to_parent[1]);
}

static void
test_damage (void)
{
  mcsec_counter_store_t *s;
  uint64_t first, limit, newest;
  char p3[300];
  int fd;

  snprintf (p3, sizeof (p3), "%s/damage", dir);
  REQUIRE (mcsec_counter_store_open (p3, 1000, &s, &first, &limit) == 0);
  mcsec_counter_store_close (s);
  REQUIRE (mcsec_counter_store_open (p3, 1000, &s, &first, &limit) == 0);
  mcsec_counter_store_close (s);
  newest = limit; /* generation 2, in slot 0 */

  /* damage the newest record: the store must not fall back below it */
  fd = open (p3, O_RDWR);
  REQUIRE (fd >= 0);
  REQUIRE (pwrite (fd, "\xff", 1, 20) == 1);
  close (fd);
  CHECK_STATUS (mcsec_counter_store_open (p3, 1000, &s, &first, &limit),
                MCSEC_OK);
  CHECK (first >= newest);
  mcsec_counter_store_close (s);

  /* both records damaged: refuse, never guess */
  fd = open (p3, O_RDWR | O_TRUNC);
  REQUIRE (fd >= 0);
  REQUIRE (write (fd,
                  "garbage garbage garbage garbage garbage garbage "
                  "garbage garbage",
                  64) == 64);
  close (fd);
  CHECK_STATUS (mcsec_counter_store_open (p3, 1000, &s, &first, &limit),
                MCSEC_ERR_CORRUPT_STATE);
  CHECK (s == NULL);
}

int
main (void)
{
  REQUIRE (mkdtemp (dir) != NULL);
  snprintf (path, sizeof (path), "%s/sender-42.ctr", dir);
  test_restarts_never_repeat_a_nonce ();
  test_reservations ();
  test_lock ();
  test_damage ();
  {
    char cmd[300];
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", dir);
    CHECK (system (cmd) == 0);
  }
  return test_done ("test-counter-store");
}
