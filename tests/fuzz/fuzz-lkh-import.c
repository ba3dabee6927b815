/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: a key tree's export (mcsec_lkh_import), as a
 * controller reads it from etcd when it takes a key tree group over.  A
 * tree it takes is used as a leader would: exported again (it must give
 * the same bytes), every member's path read, members joined and removed,
 * and a commit made.  The same input is also read as a log, as a
 * controller reads a snapshot and the changes after it: [len (2,
 * big-endian) | bytes]..., the first the snapshot (mcsec_lkh_import_log).
 */
#include <stdlib.h>
#include <string.h>

#include <mcsec/mcsec-lkh.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define LOG_MAX 16

static void
as_log (const uint8_t *data, size_t size)
{
  const uint8_t *part[LOG_MAX];
  size_t len[LOG_MAX], n = 0, pos = 0;
  mcsec_lkh_t *t = NULL;

  while (pos + 2 <= size && n < LOG_MAX) {
    size_t l = (size_t)data[pos] << 8 | data[pos + 1];
    pos += 2;
    if (l > size - pos)
      l = size - pos;
    part[n] = data + pos;
    len[n++] = l;
    pos += l;
  }
  if (n && mcsec_lkh_import_log (part[0], len[0], part + 1, len + 1, n - 1,
                                 &t) == MCSEC_OK) {
    size_t el = mcsec_lkh_export_len (t);
    uint8_t *x = malloc (el ? el : 1);
    if (x == NULL || el == 0 || mcsec_lkh_export (t, x, el))
      abort (); /* a tree taken must export */
    free (x);
  }
  mcsec_lkh_free (t);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  mcsec_lkh_t *t = NULL;
  const mcsec_lkh_entry_t *e;
  mcsec_lkh_key_t path[64];
  uint8_t *again;
  size_t len, n;
  uint32_t leaf;

  as_log (data, size);
  if (mcsec_lkh_import (data, size, &t) != MCSEC_OK)
    return 0;
  len = mcsec_lkh_export_len (t);
  again = malloc (len ? len : 1);
  if (again == NULL || len != size || mcsec_lkh_export (t, again, len) ||
      memcmp (again, data, size) != 0)
    abort (); /* an import that does not export as it came */
  free (again);
  /* the paths of the members, whose numbers are in the export */
  for (size_t off = 6; off + 25 <= size; off += 25) {
    uint32_t id = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
                  (uint32_t)data[off + 2] << 8 | data[off + 3];
    if (data[off + 8] &&
        (!mcsec_lkh_is_member (t, id) || mcsec_lkh_path (t, id, path, 64) == 0))
      abort ();
    if (data[off + 8] && off == 6 + 25 && mcsec_lkh_leave (t, id) != MCSEC_OK)
      abort (); /* a member that cannot leave */
  }
  for (int i = 0; i < 3; i++)
    if (mcsec_lkh_join (t, &leaf) != MCSEC_OK)
      break;
  if (mcsec_lkh_commit (t, &e, &n) != MCSEC_OK)
    n = 0;
  mcsec_lkh_free (t);
  return 0;
}
