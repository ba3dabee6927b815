/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: any bytes as what a relay link receives (relay.h,
 * docs/cluster.md "Relaying").  Frames are cut as the link cuts them; each
 * stays inside the input and within its bounds; a HELLO never proves a
 * key it was not made with; an OPEN that parses gives printable strings
 * that build back to the same body; the wiping buffer holds exactly what
 * went in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const guint8 key[CTL_RELAY_KEY_LEN] = {1, 2, 3};
  static const guint8 binding[32] = {4, 5, 6};
  CtlRelayBuf in = {0};
  gsize off = 0;

  /* the link's own path: bytes into its buffer, in pieces */
  for (gsize i = 0; i < size; i += 7)
    ctl_relay_buf_append (&in, data + i, MIN (7, size - i));
  if (ctl_relay_buf_len (&in) != size ||
      (size && memcmp (ctl_relay_buf_data (&in), data, size) != 0))
    abort ();
  while (off < size) {
    CtlRelayFrame f;
    gssize n = ctl_relay_frame_parse (data + off, size - off, &f);
    gchar a[CTL_RELAY_MAX_NAME + 1], b[CTL_RELAY_MAX_NAME + 1];
    if (n <= 0)
      break;
    if ((gsize)n > size - off || f.len > CTL_RELAY_MAX_BODY ||
        f.body + f.len != data + off + (gsize)n)
      abort ();
    if (f.type == CTL_RELAY_HELLO &&
        (ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding, f.body,
                                f.len, a) ||
         ctl_relay_hello_check (key, CTL_RELAY_ROLE_LEADER, binding, f.body,
                                f.len, a)))
      abort (); /* a MAC forged without the key */
    if (f.type == CTL_RELAY_OPEN &&
        ctl_relay_open_parse (f.body, f.len, a, b)) {
      guint8 again[2 + 2 * CTL_RELAY_MAX_NAME];
      gsize m = ctl_relay_open_build (a, b, again);
      if (m != f.len || memcmp (again, f.body, m) != 0 ||
          strpbrk (a, " \"\\;") || strpbrk (b, " \"\\;"))
        abort ();
    }
    off += (gsize)n;
    ctl_relay_buf_consume (&in, (gsize)n);
  }
  if (ctl_relay_buf_len (&in) != size - off)
    abort ();
  ctl_relay_buf_clear (&in);
  return 0;
}
