/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Between the etcd client's files (etcd.c: requests, transactions, leases
 * and the lease keeper; etcd-watch.c: the watcher): endpoint lists, the
 * gateway's JSON, curl's common options.  Nothing here is for the
 * controller.
 */
#ifndef MCSEC_ETCD_PRIVATE_H
#define MCSEC_ETCD_PRIVATE_H

#include <curl/curl.h>
#include <json-glib/json-glib.h>

#include "etcd.h"

/* the largest answer read: a range of everything the controller keeps */
#define MAX_ANSWER (64 * 1024 * 1024)

void etcd_global_init (void);
/* Wipes a string that may have carried a value, then frees it. */
void etcd_wipe_string (GString *s);
/* "http://H:P,http://H:P" -> NULL-terminated URLs (*n of them). */
gchar **etcd_parse_endpoints (const char *list, guint *n, GError **error);

/* JSON in: int64s as strings, bytes as base64 */
void etcd_add_int (JsonBuilder *b, const char *name, gint64 v);
void etcd_add_bool (JsonBuilder *b, const char *name, gboolean v);
void etcd_add_key_range (JsonBuilder *b, const char *key, gboolean prefix);
/* keys from key up to end (excluded) */
void etcd_add_range (JsonBuilder *b, const char *key, const char *end);
gchar *etcd_builder_text (JsonBuilder *b);

/* JSON out: absent fields are the defaults (0, FALSE, NULL) */
gint64 etcd_get_int (JsonObject *o, const char *name);
JsonObject *etcd_get_object (JsonObject *o, const char *name);
JsonArray *etcd_get_array (JsonObject *o, const char *name);
const char *etcd_get_string (JsonObject *o, const char *name);
gboolean etcd_get_bool (JsonObject *o, const char *name);
/* An error answer: TRUE, with etcd's code and message. */
gboolean etcd_json_error (JsonObject *o, gint64 *code, const char **message);
mcsec_etcd_kv_t *etcd_kv_from_json (JsonObject *o, gboolean with_value);
void etcd_kv_clear (mcsec_etcd_kv_t *kv);

/* Options every handle gets (no signals, TCP_NODELAY, the verbose trace). */
void etcd_common_options (CURL *c, char *errbuf);

#endif
