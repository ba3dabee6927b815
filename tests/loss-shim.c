/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * loss-shim: datagram loss at the socket layer, for tests on kernels
 * without `tc netem`.  Preloaded (LD_PRELOAD) into a receiving process, it
 * drops each datagram that process reads from a UDP socket with the
 * probability MCSEC_TEST_LOSS (0..1), as if the network had lost it: the
 * datagram is read and thrown away, and the call goes on to the next one
 * (or says there is none, on a non-blocking socket).  MCSEC_TEST_LOSS_SEED
 * makes the drops repeatable.  Test code only; never installed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

static double loss = -1;
static uint64_t state;

static int
drop (int fd)
{
  int type = 0;
  socklen_t len = sizeof type;

  if (loss < 0) {
    const char *v = getenv ("MCSEC_TEST_LOSS");
    const char *s = getenv ("MCSEC_TEST_LOSS_SEED");
    loss = v ? atof (v) : 0;
    state = s ? strtoull (s, NULL, 10) : 0x6c6f7373ull;
    state |= 1;
  }
  if (loss <= 0 || getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      type != SOCK_DGRAM)
    return 0;
  state ^= state << 13; /* xorshift64 */
  state ^= state >> 7;
  state ^= state << 17;
  return (double)(state >> 11) / 9007199254740992.0 < loss;
}

ssize_t recvmsg (int fd, struct msghdr *msg, int flags);
ssize_t recvfrom (int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                  socklen_t *addr_len);
ssize_t recv (int fd, void *buf, size_t n, int flags);

ssize_t
recvmsg (int fd, struct msghdr *msg, int flags)
{
  static ssize_t (*real) (int, struct msghdr *, int);
  ssize_t r;
  if (real == NULL)
    real =
        (ssize_t (*) (int, struct msghdr *, int))dlsym (RTLD_NEXT, "recvmsg");
  do
    r = real (fd, msg, flags);
  while (r >= 0 && !(flags & MSG_PEEK) && drop (fd));
  return r;
}

ssize_t
recvfrom (int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
          socklen_t *addr_len)
{
  static ssize_t (*real) (int, void *, size_t, int, struct sockaddr *,
                          socklen_t *);
  ssize_t r;
  if (real == NULL)
    real = (ssize_t (*) (int, void *, size_t, int, struct sockaddr *,
                         socklen_t *))dlsym (RTLD_NEXT, "recvfrom");
  do
    r = real (fd, buf, n, flags, addr, addr_len);
  while (r >= 0 && !(flags & MSG_PEEK) && drop (fd));
  return r;
}

ssize_t
recv (int fd, void *buf, size_t n, int flags)
{
  return recvfrom (fd, buf, n, flags, NULL, NULL);
}
