/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's durable state in a folder (state-dir): one file,
 * rewritten whole on every change (write, fsync, rename, fsync the
 * folder), so a crash at any point leaves the old state or the new one;
 * a lock file keeps a second controller out.
 */
#ifndef MCSEC_CTL_STORE_FILE_H
#define MCSEC_CTL_STORE_FILE_H

#include "core/ctl-core.h"

mcsec_ctl_store_t *ctl_file_store_open (const char *dir, GError **error);

#endif
