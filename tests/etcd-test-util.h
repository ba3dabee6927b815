/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * etcd-test-util.h: what test-etcd and test-etcd-store share, run by
 * tests/etcd-client.sh against a real etcd (ETCD_LIB: tests/etcd-lib.sh).
 */
#ifndef MCSEC_ETCD_TEST_UTIL_H
#define MCSEC_ETCD_TEST_UTIL_H

#include <glib.h>

/* etcd-lib.sh's etcd_VERB ARG (etcd_kill 2, etcd_wait_healthy), asserting
 * that it succeeds */
void etcd_lib (const char *verb, const char *arg);
/* the bytes of a string */
GBytes *str_bytes (const char *s);
/* v holds exactly want */
gboolean bytes_is (GBytes *v, const char *want);

#endif
