/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An etcd v3 client (etcd.h) over etcd's JSON gateway, with libcurl and
 * json-glib.  What it relies on, checked against etcd 3.4.23:
 *
 *   Requests are POSTs of a JSON object to /v3/kv/range, /v3/kv/put,
 *   /v3/kv/deleterange, /v3/kv/txn, /v3/lease/grant, /v3/lease/revoke;
 *   keys and values in base64, int64 fields as JSON strings ("42"), enums
 *   by name ("MOD", "NOT_EQUAL").  Answers leave out every field at its
 *   default: no "value" for an empty value, no "kvs" and no "count" for an
 *   empty range, no "succeeded" for a failed transaction, no "type" for a
 *   PUT event, no "TTL" in the keepalive of a lease that is gone.
 *
 *   etcd's errors: {"error":"text","message":"text","code":N} with an HTTP
 *   status from the gRPC code N (400, 404, 500, 503); a stream's error is
 *   a frame {"error":{"grpc_code":N,"http_code":N,"message":"text",...}}
 *   without a newline after it, with HTTP 200 when the stream had started.
 *   Code 14 (unavailable: "etcdserver: no leader", "etcdserver: request
 *   timed out", "leader changed") sends the request to the next endpoint.
 *   "requested lease not found" (code 5) is MCSEC_ETCD_ERROR_LEASE_GONE.
 *
 *   The header Grpc-Metadata-Hasleader: true reaches etcd as the gRPC
 *   metadata its own client sends with WithRequireLeader: a member that
 *   knows it has no leader refuses any request at once (503 "etcdserver:
 *   no leader", code 14) and ends a running watch after three election
 *   timeouts, instead of holding the request or leaving the watch silently
 *   stale.  Every request sends it.
 *
 *   Without a quorum, a write, a linearizable read, a lease grant or a
 *   keepalive sent before the member noticed (an election timeout) hangs
 *   in etcd for its own request timeout (5 s + 2 election timeouts: 6 s
 *   with the tests' 500 ms) before a 503; the client's timeout_ms ends it
 *   first.  Later ones get "no leader" at once.  Either way each endpoint
 *   is tried, and the error says the quorum may be lost.
 *
 *   /v3/lease/keepalive and /v3/watch are streams (bidirectional in gRPC):
 *   the gateway decodes JSON objects from the request body as they come and
 *   writes each answer as one line, {"result":{...}}\n, flushed.  A
 *   keepalive is one request body and one line back.  The watch keeps its
 *   request body open (chunked) to send {"progress_request":{}} every
 *   second; etcd answers each at once (a result with "watch_id":"-1" and
 *   no events) whether or not keys change, so a stream that stays silent
 *   for WATCH_SILENT_US is dead (a stopped member, a lost network) and the
 *   watcher moves on.  (progress_notify alone is sent every 10 minutes by
 *   default, --experimental-watch-progress-notify-interval.)  That needs
 *   "Expect: 100-continue": without it Go's HTTP/1.1 server (etcd 3.4 is
 *   built with Go 1.19) reads the rest of the request body, up to 256 kB,
 *   before it writes the answer's headers, so nothing would come back.
 *   The answer to a progress request carries the current revision but
 *   travels apart from the events, so it is never taken as delivered.
 *
 *   A watch created from revision 0 starts after the revision in the
 *   header of its "created" answer; a watch from a compacted revision is
 *   answered "created" then "canceled" with "compact_revision", the oldest
 *   revision one can watch from.  etcd never splits one revision's events
 *   (one transaction) between two answers.
 *
 * The client (mcsec_etcd_t) sends each request with one curl easy handle
 * (its connections kept between requests), to the endpoint that answered
 * last, then, on a connection error, a timeout or an unavailable etcd, to
 * each other endpoint once.  Every attempt is bounded by timeout_ms, so a
 * call fails within about timeout_ms * endpoints.
 *
 * The watcher (etcd-watch.c) runs, in its thread, one stream at a time with a
 * curl multi handle, waiting in curl_multi_poll() on the stream and an eventfd
 * that asks it to stop.  It keeps the first revision it has not delivered yet
 * and starts every new stream there, and drops anything older, so a
 * reconnection neither loses nor repeats an event.  Whole answers are
 * parsed in the write callback, line by line; events go to a queue under a
 * mutex, with an eventfd readable while the queue is not empty.
 *
 * The lease keeper's thread sends a keepalive every TTL/3 from the time
 * the last one was sent, and keeps `valid_until`: the time the last
 * successful keepalive (or the grant) was sent plus the TTL etcd gave.
 * etcd's leader renews from when the request reached it, later, and a new
 * leader only extends leases, so the lease lives at least that long.
 *
 * Values may be secret: no error message holds one, and the buffers that
 * carried one are wiped before they are freed (not json-glib's own).
 *
 * Debugging: g_debug () says why a watch stream ended or a keepalive
 * failed (G_MESSAGES_DEBUG=mcsec-etcd); MCSEC_ETCD_VERBOSE=1 turns on
 * curl's trace (connections and headers, never bodies) on stderr.
 */
#define G_LOG_DOMAIN "mcsec-etcd"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-glib/json-glib.h>

#include "etcd.h"
#include "etcd-private.h"

G_DEFINE_QUARK (mcsec - etcd - error - quark, mcsec_etcd_error)

void
etcd_global_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    curl_global_init (CURL_GLOBAL_DEFAULT);
    g_once_init_leave (&done, 1);
  }
}

void
etcd_wipe_string (GString *s)
{
  if (s->len)
    explicit_bzero (s->str, s->len);
  g_string_truncate (s, 0);
}

static void
wipe_free (gchar *p)
{
  if (p) {
    explicit_bzero (p, strlen (p));
    g_free (p);
  }
}

/* "http://a:1, http://b:2/" -> {"http://a:1", "http://b:2"} */
gchar **
etcd_parse_endpoints (const char *list, guint *n, GError **error)
{
  gchar **parts = g_strsplit (list ? list : "", ",", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i]; i++) {
    gchar *p = g_strstrip (parts[i]);
    gsize len = strlen (p);
    const char *rest;

    if (!*p)
      continue;
    while (len && p[len - 1] == '/')
      p[--len] = '\0';
    rest = g_str_has_prefix (p, "http://")    ? p + 7
           : g_str_has_prefix (p, "https://") ? p + 8
                                              : NULL;
    if (!rest || !*rest || strpbrk (rest, " \t\r\n/?#@")) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                   "etcd: bad endpoint \"%s\" (want http://HOST:PORT or "
                   "https://HOST:PORT)",
                   p);
      g_ptr_array_free (out, TRUE);
      g_strfreev (parts);
      return NULL;
    }
    g_ptr_array_add (out, g_strdup (p));
  }
  g_strfreev (parts);
  if (!out->len) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                 "etcd: no endpoint in \"%s\"", list ? list : "");
    g_ptr_array_free (out, TRUE);
    return NULL;
  }
  *n = out->len;
  g_ptr_array_add (out, NULL);
  return (gchar **)g_ptr_array_free (out, FALSE);
}

/* ---- JSON ---- */

static void
add_b64 (JsonBuilder *b, const char *name, const void *data, gsize len)
{
  gchar *s = g_base64_encode (data, len);

  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, s);
  wipe_free (s);
}

static void
add_bytes (JsonBuilder *b, const char *name, GBytes *value)
{
  gsize len = 0;
  const void *d = value ? g_bytes_get_data (value, &len) : NULL;

  add_b64 (b, name, len ? d : "", len);
}

void
etcd_add_int (JsonBuilder *b, const char *name, gint64 v)
{
  gchar s[24];

  g_snprintf (s, sizeof s, "%" G_GINT64_FORMAT, v);
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, s);
}

void
etcd_add_bool (JsonBuilder *b, const char *name, gboolean v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, v);
}

/* key, and for a prefix the end of its range: the prefix with its last
 * byte below 0xff incremented and the bytes after it dropped, or "\0" (up
 * to the end) when every byte is 0xff; "" as a prefix is every key */
void
etcd_add_range (JsonBuilder *b, const char *key, const char *end)
{
  add_b64 (b, "key", key, strlen (key));
  add_b64 (b, "range_end", end, strlen (end));
}

void
etcd_add_key_range (JsonBuilder *b, const char *key, gboolean prefix)
{
  gsize len = strlen (key);

  if (!prefix) {
    add_b64 (b, "key", key, len);
    return;
  }
  if (!len) {
    add_b64 (b, "key", "", 1);
    add_b64 (b, "range_end", "", 1);
    return;
  }
  add_b64 (b, "key", key, len);
  for (gsize i = len; i-- > 0;) {
    if ((guint8)key[i] != 0xff) {
      gchar *end = g_strndup (key, i + 1);
      end[i]++;
      add_b64 (b, "range_end", end, i + 1);
      g_free (end);
      return;
    }
  }
  add_b64 (b, "range_end", "", 1);
}

gchar *
etcd_builder_text (JsonBuilder *b)
{
  JsonGenerator *g = json_generator_new ();
  JsonNode *root = json_builder_get_root (b);
  gchar *text;

  json_generator_set_root (g, root);
  text = json_generator_to_data (g, NULL);
  json_node_unref (root);
  g_object_unref (g);
  g_object_unref (b);
  return text;
}

/* an int64 field: a JSON string ("42") or number; 0 when left out */
gint64
etcd_get_int (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  gint64 v = 0;

  if (!n || JSON_NODE_TYPE (n) != JSON_NODE_VALUE)
    return 0;
  if (json_node_get_value_type (n) == G_TYPE_STRING)
    g_ascii_string_to_signed (json_node_get_string (n), 10, G_MININT64,
                              G_MAXINT64, &v, NULL);
  else if (json_node_get_value_type (n) == G_TYPE_INT64)
    v = json_node_get_int (n);
  return v;
}

JsonObject *
etcd_get_object (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

JsonArray *
etcd_get_array (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

const char *
etcd_get_string (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) &&
                 json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : NULL;
}

gboolean
etcd_get_bool (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE (n) &&
         json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
         json_node_get_boolean (n);
}

/* etcd's error in an answer, if there is one: {"error":"text","code":N}
 * or, from a stream, {"error":{"grpc_code":N,"message":"text"}} */
gboolean
etcd_json_error (JsonObject *o, gint64 *code, const char **message)
{
  JsonNode *n = json_object_get_member (o, "error");
  JsonObject *eo;

  if (!n)
    return FALSE;
  if (JSON_NODE_HOLDS_OBJECT (n)) {
    eo = json_node_get_object (n);
    *code = etcd_get_int (eo, "grpc_code");
    *message = etcd_get_string (eo, "message");
  } else {
    *message = etcd_get_string (o, "error");
    if (!*message || !**message)
      return FALSE; /* LeaseGrantResponse's "error" field, empty */
    *code = etcd_get_int (o, "code");
  }
  if (!*message)
    *message = "(no message)";
  return TRUE;
}

/* unavailable (try another endpoint): gRPC's UNAVAILABLE and
 * DEADLINE_EXCEEDED, and the lease service's "context deadline exceeded" */
static gboolean
code_unavailable (gint64 code, const char *message)
{
  return code == 14 || code == 4 || strstr (message, "deadline exceeded");
}

mcsec_etcd_kv_t *
etcd_kv_from_json (JsonObject *o, gboolean with_value)
{
  mcsec_etcd_kv_t *kv = g_new0 (mcsec_etcd_kv_t, 1);
  const char *s = etcd_get_string (o, "key");
  gsize len = 0;
  guchar *d;

  d = s ? g_base64_decode (s, &len) : NULL;
  kv->key = g_strndup ((const char *)d, len);
  g_free (d);
  s = etcd_get_string (o, "value");
  if (s) {
    d = g_base64_decode (s, &len);
    kv->value = g_bytes_new_take (d, len);
  } else if (with_value) {
    kv->value = g_bytes_new (NULL, 0); /* an empty value is left out */
  }
  kv->create_revision = etcd_get_int (o, "create_revision");
  kv->mod_revision = etcd_get_int (o, "mod_revision");
  kv->version = etcd_get_int (o, "version");
  kv->lease = etcd_get_int (o, "lease");
  return kv;
}

void
etcd_kv_clear (mcsec_etcd_kv_t *kv)
{
  g_clear_pointer (&kv->key, g_free);
  g_clear_pointer (&kv->value, g_bytes_unref);
}

void
mcsec_etcd_kv_free (mcsec_etcd_kv_t *kv)
{
  if (!kv)
    return;
  etcd_kv_clear (kv);
  g_free (kv);
}

static void
append_kvs (GPtrArray *to, JsonObject *range, gboolean with_value)
{
  JsonArray *kvs = etcd_get_array (range, "kvs");
  guint n = kvs ? json_array_get_length (kvs) : 0;

  for (guint i = 0; i < n; i++) {
    JsonObject *o = json_array_get_object_element (kvs, i);
    if (o)
      g_ptr_array_add (to, etcd_kv_from_json (o, with_value));
  }
}

/* ---- the client ---- */

struct _McsecEtcd {
  gchar **endpoints;
  guint n, current, timeout_ms;
  CURL *curl;
  struct curl_slist *headers;
  GString *answer;
  gboolean overflow;
  char errbuf[CURL_ERROR_SIZE];
};

static size_t
collect (char *data, size_t size, size_t nmemb, void *user)
{
  mcsec_etcd_t *e = user;
  size_t n = size * nmemb;

  if (e->answer->len + n > MAX_ANSWER) {
    e->overflow = TRUE;
    return CURL_WRITEFUNC_ERROR;
  }
  g_string_append_len (e->answer, data, (gssize)n);
  return n;
}

/* TLS towards etcd (https:// endpoints): the CA that signed etcd's
 * certificates, and this client's certificate and key when etcd asks for
 * them (--client-cert-auth).  Set once, before the first handle. */
static struct {
  gchar *ca, *cert, *key;
} tls;

gboolean
mcsec_etcd_set_tls (const char *ca, const char *cert, const char *key,
                    GError **error)
{
  if ((cert == NULL) != (key == NULL)) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                 "etcd: a client certificate needs its key, and a key its "
                 "certificate");
    return FALSE;
  }
  g_free (tls.ca);
  g_free (tls.cert);
  g_free (tls.key);
  tls.ca = g_strdup (ca);
  tls.cert = g_strdup (cert);
  tls.key = g_strdup (key);
  return TRUE;
}

/* options every handle shares */
void
etcd_common_options (CURL *c, char *errbuf)
{
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  /* straight to the cluster, whatever http_proxy says */
  curl_easy_setopt (c, CURLOPT_PROXY, "");
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, errbuf);
  /* https://: etcd's certificate is checked (peer and name, curl's
   * default) against tls.ca, else the system's CAs */
  if (tls.ca)
    curl_easy_setopt (c, CURLOPT_CAINFO, tls.ca);
  if (tls.cert) {
    curl_easy_setopt (c, CURLOPT_SSLCERT, tls.cert);
    curl_easy_setopt (c, CURLOPT_SSLKEY, tls.key);
  }
  /* curl's trace on stderr: connections and headers, no bodies */
  if (g_getenv ("MCSEC_ETCD_VERBOSE"))
    curl_easy_setopt (c, CURLOPT_VERBOSE, 1L);
}

mcsec_etcd_t *
mcsec_etcd_new (const char *endpoints, guint timeout_ms, GError **error)
{
  mcsec_etcd_t *e;
  gchar **list;
  guint n = 0;

  list = etcd_parse_endpoints (endpoints, &n, error);
  if (!list)
    return NULL;
  etcd_global_init ();
  e = g_new0 (mcsec_etcd_t, 1);
  e->endpoints = list;
  e->n = n;
  e->timeout_ms = MAX (timeout_ms, 1);
  e->answer = g_string_new (NULL);
  e->curl = curl_easy_init ();
  if (!e->curl) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_FAILED,
                 "etcd: cannot make a curl handle");
    mcsec_etcd_free (e);
    return NULL;
  }
  e->headers = curl_slist_append (NULL, "Content-Type: application/json");
  e->headers = curl_slist_append (e->headers, "Expect:");
  /* a member without a leader says so at once rather than hold the
   * request: the next endpoint is tried */
  e->headers = curl_slist_append (e->headers, "Grpc-Metadata-Hasleader: true");
  etcd_common_options (e->curl, e->errbuf);
  curl_easy_setopt (e->curl, CURLOPT_HTTPHEADER, e->headers);
  curl_easy_setopt (e->curl, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
  curl_easy_setopt (e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
  curl_easy_setopt (e->curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt (e->curl, CURLOPT_WRITEDATA, e);
  curl_easy_setopt (e->curl, CURLOPT_POST, 1L);
  return e;
}

void
mcsec_etcd_free (mcsec_etcd_t *e)
{
  if (!e)
    return;
  if (e->curl)
    curl_easy_cleanup (e->curl);
  curl_slist_free_all (e->headers);
  etcd_wipe_string (e->answer);
  g_string_free (e->answer, TRUE);
  g_strfreev (e->endpoints);
  g_free (e);
}

const char *
mcsec_etcd_endpoint (const mcsec_etcd_t *e)
{
  return e->endpoints[e->current];
}

/* The answer's JSON object: the whole body, or a stream's first line
 * unwrapped from {"result":...}.  NULL when it is not JSON. */
static JsonNode *
parse_answer (GString *answer, gboolean stream)
{
  JsonParser *p = json_parser_new ();
  JsonNode *root = NULL;
  gsize len = answer->len;
  const char *nl;

  if (stream && (nl = memchr (answer->str, '\n', answer->len)))
    len = (gsize)(nl - answer->str);
  if (json_parser_load_from_data (p, answer->str, (gssize)len, NULL)) {
    root = json_parser_get_root (p);
    if (root && JSON_NODE_HOLDS_OBJECT (root)) {
      JsonObject *o = json_node_get_object (root);
      JsonNode *result = stream ? json_object_get_member (o, "result") : NULL;
      root = json_node_copy (result ? result : root);
    } else {
      root = NULL;
    }
  }
  g_object_unref (p);
  return root;
}

/* POST body to path on the endpoint that answered last, then on each other
 * one once; the answer's object (a stream's first result), or NULL */
static JsonObject *
request (mcsec_etcd_t *e, const char *path, const char *body, gboolean stream,
         GError **error)
{
  GString *why = g_string_new (NULL);
  gboolean maybe_quorum = FALSE;

  for (guint t = 0; t < e->n; t++) {
    guint i = (e->current + t) % e->n;
    const char *ep = e->endpoints[i];
    gchar *url = g_strconcat (ep, path, NULL);
    JsonNode *node;
    JsonObject *o;
    const char *message;
    gint64 code = 0;
    long status = 0;
    CURLcode rc;

    etcd_wipe_string (e->answer);
    e->overflow = FALSE;
    e->errbuf[0] = '\0';
    curl_easy_setopt (e->curl, CURLOPT_URL, url);
    curl_easy_setopt (e->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen (body));
    rc = curl_easy_perform (e->curl);
    g_free (url);
    if (rc != CURLE_OK && e->overflow) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_PROTOCOL,
                   "etcd %s%s: an answer larger than %d bytes", ep, path,
                   MAX_ANSWER);
      etcd_wipe_string (e->answer);
      g_string_free (why, TRUE);
      return NULL;
    }
    if (rc != CURLE_OK) {
      if (rc == CURLE_OPERATION_TIMEDOUT)
        maybe_quorum = TRUE;
      g_string_append_printf (why, "%s%s: %s", why->len ? "; " : "", ep,
                              e->errbuf[0] ? e->errbuf
                                           : curl_easy_strerror (rc));
      continue;
    }
    curl_easy_getinfo (e->curl, CURLINFO_RESPONSE_CODE, &status);
    node = parse_answer (e->answer, stream);
    etcd_wipe_string (e->answer);
    if (!node) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_PROTOCOL,
                   "etcd %s%s: HTTP %ld and an answer that is not a JSON "
                   "object",
                   ep, path, status);
      g_string_free (why, TRUE);
      return NULL;
    }
    o = json_node_get_object (node);
    if (etcd_json_error (o, &code, &message)) {
      if (code_unavailable (code, message)) {
        maybe_quorum = TRUE;
        g_string_append_printf (why, "%s%s: etcd: %s", why->len ? "; " : "", ep,
                                message);
        json_node_unref (node);
        continue;
      }
      e->current = i;
      g_set_error (
          error, MCSEC_ETCD_ERROR,
          strstr (message, "lease not found") ? MCSEC_ETCD_ERROR_LEASE_GONE
          : strstr (message, "required revision has been compacted")
              ? MCSEC_ETCD_ERROR_COMPACTED
              : MCSEC_ETCD_ERROR_FAILED,
          "etcd %s%s: %s (code %" G_GINT64_FORMAT ")", ep, path, message, code);
      json_node_unref (node);
      g_string_free (why, TRUE);
      return NULL;
    }
    if (status != 200) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_PROTOCOL,
                   "etcd %s%s: HTTP %ld without an error", ep, path, status);
      json_node_unref (node);
      g_string_free (why, TRUE);
      return NULL;
    }
    e->current = i;
    g_string_free (why, TRUE);
    o = json_object_ref (o);
    json_node_unref (node);
    return o;
  }
  g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_UNREACHABLE,
               "etcd %s: no endpoint served it in %u ms (%s)%s", path,
               e->timeout_ms, why->str,
               maybe_quorum ? "; the cluster may have lost its quorum" : "");
  g_string_free (why, TRUE);
  return NULL;
}

/* request with the builder's object as the body (wiped after) */
static JsonObject *
request_built (mcsec_etcd_t *e, const char *path, JsonBuilder *b,
               gboolean stream, GError **error)
{
  gchar *body;
  JsonObject *o;

  json_builder_end_object (b);
  body = etcd_builder_text (b);
  o = request (e, path, body, stream, error);
  wipe_free (body);
  return o;
}

static gboolean
check_key (const char *key, gboolean empty_ok, const char *what, GError **error)
{
  if (key && (*key || empty_ok))
    return TRUE;
  g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
               "etcd %s: no key", what);
  return FALSE;
}

GPtrArray *
mcsec_etcd_get (mcsec_etcd_t *e, const char *key, gboolean prefix,
                gboolean keys_only, gint64 *revision, GError **error)
{
  JsonBuilder *b;
  JsonObject *o;
  GPtrArray *kvs;

  if (!check_key (key, prefix, "get", error))
    return NULL;
  b = json_builder_new ();
  json_builder_begin_object (b);
  etcd_add_key_range (b, key, prefix);
  if (keys_only)
    etcd_add_bool (b, "keys_only", TRUE);
  json_builder_set_member_name (b, "sort_order");
  json_builder_add_string_value (b, "ASCEND");
  json_builder_set_member_name (b, "sort_target");
  json_builder_add_string_value (b, "KEY");
  o = request_built (e, "/v3/kv/range", b, FALSE, error);
  if (!o)
    return NULL;
  kvs = g_ptr_array_new_with_free_func ((GDestroyNotify)mcsec_etcd_kv_free);
  append_kvs (kvs, o, !keys_only);
  if (revision)
    *revision = etcd_get_int (etcd_get_object (o, "header"), "revision");
  json_object_unref (o);
  return kvs;
}

/* key + NUL: the key right after key */
static void
add_key_after (JsonBuilder *b, const char *name, const char *key)
{
  gsize n = strlen (key);
  gchar *next = g_malloc0 (n + 1);
  memcpy (next, key, n);
  add_b64 (b, name, next, n + 1);
  g_free (next);
}

GPtrArray *
mcsec_etcd_range (mcsec_etcd_t *e, const char *first, gboolean after_first,
                  const char *last, gint64 limit, gint64 at_revision,
                  gint64 *revision, gboolean *more, GError **error)
{
  JsonBuilder *b;
  JsonObject *o;
  GPtrArray *kvs;

  if (!check_key (first, FALSE, "range", error) ||
      !check_key (last, FALSE, "range", error))
    return NULL;
  b = json_builder_new ();
  json_builder_begin_object (b);
  if (after_first)
    add_key_after (b, "key", first);
  else
    add_b64 (b, "key", first, strlen (first));
  add_key_after (b, "range_end", last); /* (range_end is excluded) */
  if (limit > 0)
    etcd_add_int (b, "limit", limit);
  if (at_revision > 0)
    etcd_add_int (b, "revision", at_revision);
  /* no sort_order: etcd answers in key order anyway, and a sorted range
   * is read whole before the limit cuts it (each page would cost the rest
   * of the range) */
  o = request_built (e, "/v3/kv/range", b, FALSE, error);
  if (!o)
    return NULL;
  kvs = g_ptr_array_new_with_free_func ((GDestroyNotify)mcsec_etcd_kv_free);
  append_kvs (kvs, o, TRUE);
  if (revision)
    *revision = etcd_get_int (etcd_get_object (o, "header"), "revision");
  if (more)
    *more = etcd_get_bool (o, "more");
  json_object_unref (o);
  return kvs;
}

gboolean
mcsec_etcd_put (mcsec_etcd_t *e, const char *key, GBytes *value, gint64 lease,
                gint64 *revision, GError **error)
{
  JsonBuilder *b;
  JsonObject *o;

  if (!check_key (key, FALSE, "put", error))
    return FALSE;
  b = json_builder_new ();
  json_builder_begin_object (b);
  etcd_add_key_range (b, key, FALSE);
  add_bytes (b, "value", value);
  if (lease)
    etcd_add_int (b, "lease", lease);
  o = request_built (e, "/v3/kv/put", b, FALSE, error);
  if (!o)
    return FALSE;
  if (revision)
    *revision = etcd_get_int (etcd_get_object (o, "header"), "revision");
  json_object_unref (o);
  return TRUE;
}

gboolean
mcsec_etcd_delete (mcsec_etcd_t *e, const char *key, gboolean prefix,
                   gint64 *deleted, gint64 *revision, GError **error)
{
  JsonBuilder *b;
  JsonObject *o;

  if (!check_key (key, prefix, "delete", error))
    return FALSE;
  b = json_builder_new ();
  json_builder_begin_object (b);
  etcd_add_key_range (b, key, prefix);
  o = request_built (e, "/v3/kv/deleterange", b, FALSE, error);
  if (!o)
    return FALSE;
  if (deleted)
    *deleted = etcd_get_int (o, "deleted");
  if (revision)
    *revision = etcd_get_int (etcd_get_object (o, "header"), "revision");
  json_object_unref (o);
  return TRUE;
}

/* ---- transactions ---- */

static void
add_ops (JsonBuilder *b, const char *name, const mcsec_etcd_op_t *ops, guint n)
{
  if (!n)
    return;
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++) {
    const mcsec_etcd_op_t *op = &ops[i];
    json_builder_begin_object (b);
    switch (op->type) {
    case MCSEC_ETCD_OP_PUT:
      json_builder_set_member_name (b, "request_put");
      json_builder_begin_object (b);
      etcd_add_key_range (b, op->key, FALSE);
      add_bytes (b, "value", op->value);
      if (op->lease)
        etcd_add_int (b, "lease", op->lease);
      break;
    case MCSEC_ETCD_OP_DELETE:
      json_builder_set_member_name (b, "request_delete_range");
      json_builder_begin_object (b);
      etcd_add_key_range (b, op->key, op->prefix);
      break;
    case MCSEC_ETCD_OP_GET:
    default:
      json_builder_set_member_name (b, "request_range");
      json_builder_begin_object (b);
      etcd_add_key_range (b, op->key, op->prefix);
      json_builder_set_member_name (b, "sort_order");
      json_builder_add_string_value (b, "ASCEND");
      json_builder_set_member_name (b, "sort_target");
      json_builder_add_string_value (b, "KEY");
      break;
    }
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

static gboolean
check_ops (const mcsec_etcd_op_t *ops, guint n, GError **error)
{
  for (guint i = 0; i < n; i++) {
    if (ops[i].type > MCSEC_ETCD_OP_GET) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                   "etcd txn: unknown operation %d", (int)ops[i].type);
      return FALSE;
    }
    if (!check_key (ops[i].key,
                    ops[i].type != MCSEC_ETCD_OP_PUT && ops[i].prefix, "txn",
                    error))
      return FALSE;
  }
  return TRUE;
}

gboolean
mcsec_etcd_txn (mcsec_etcd_t *e, const mcsec_etcd_cmp_t *cmp, guint n_cmp,
                const mcsec_etcd_op_t *on_success, guint n_success,
                const mcsec_etcd_op_t *on_failure, guint n_failure,
                gboolean *succeeded, gint64 *revision, GPtrArray **got,
                GError **error)
{
  static const char *const targets[] = {"VALUE", "VERSION", "CREATE", "MOD",
                                        "LEASE"};
  static const char *const fields[] = {"value", "version", "create_revision",
                                       "mod_revision", "lease"};
  static const char *const results[] = {"EQUAL", "GREATER", "LESS",
                                        "NOT_EQUAL"};
  JsonBuilder *b;
  JsonObject *o;
  JsonArray *responses;
  gboolean ok;

  for (guint i = 0; i < n_cmp; i++) {
    if (!check_key (cmp[i].key, FALSE, "txn", error))
      return FALSE;
    if ((guint)cmp[i].target > MCSEC_ETCD_CMP_LEASE ||
        (guint)cmp[i].result > MCSEC_ETCD_NOT_EQUAL) {
      g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                   "etcd txn: unknown comparison");
      return FALSE;
    }
  }
  if (!check_ops (on_success, n_success, error) ||
      !check_ops (on_failure, n_failure, error))
    return FALSE;

  b = json_builder_new ();
  json_builder_begin_object (b);
  if (n_cmp) {
    json_builder_set_member_name (b, "compare");
    json_builder_begin_array (b);
    for (guint i = 0; i < n_cmp; i++) {
      const mcsec_etcd_cmp_t *c = &cmp[i];
      json_builder_begin_object (b);
      etcd_add_key_range (b, c->key, FALSE);
      json_builder_set_member_name (b, "target");
      json_builder_add_string_value (b, targets[c->target]);
      json_builder_set_member_name (b, "result");
      json_builder_add_string_value (b, results[c->result]);
      if (c->target == MCSEC_ETCD_CMP_VALUE)
        add_bytes (b, fields[c->target], c->value);
      else
        etcd_add_int (b, fields[c->target], c->number);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
  }
  add_ops (b, "success", on_success, n_success);
  add_ops (b, "failure", on_failure, n_failure);
  o = request_built (e, "/v3/kv/txn", b, FALSE, error);
  if (!o)
    return FALSE;
  ok = etcd_get_bool (o, "succeeded");
  if (succeeded)
    *succeeded = ok;
  if (revision)
    *revision = etcd_get_int (etcd_get_object (o, "header"), "revision");
  responses = etcd_get_array (o, "responses");
  if (got) {
    if (!*got)
      *got =
          g_ptr_array_new_with_free_func ((GDestroyNotify)mcsec_etcd_kv_free);
    for (guint i = 0; responses && i < json_array_get_length (responses); i++) {
      JsonObject *r = json_array_get_object_element (responses, i);
      JsonObject *range = etcd_get_object (r, "response_range");
      if (range)
        append_kvs (*got, range, TRUE);
    }
  }
  json_object_unref (o);
  return TRUE;
}

/* ---- leases ---- */

gboolean
mcsec_etcd_lease_grant (mcsec_etcd_t *e, gint64 ttl_s, gint64 *id,
                        gint64 *granted_ttl_s, GError **error)
{
  JsonBuilder *b = json_builder_new ();
  JsonObject *o;

  json_builder_begin_object (b);
  etcd_add_int (b, "TTL", ttl_s);
  o = request_built (e, "/v3/lease/grant", b, FALSE, error);
  if (!o)
    return FALSE;
  if (etcd_get_int (o, "ID") == 0) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_PROTOCOL,
                 "etcd %s/v3/lease/grant: an answer without a lease",
                 mcsec_etcd_endpoint (e));
    json_object_unref (o);
    return FALSE;
  }
  if (id)
    *id = etcd_get_int (o, "ID");
  if (granted_ttl_s)
    *granted_ttl_s = etcd_get_int (o, "TTL");
  json_object_unref (o);
  return TRUE;
}

gboolean
mcsec_etcd_lease_keepalive (mcsec_etcd_t *e, gint64 id, gint64 *ttl_s,
                            GError **error)
{
  JsonBuilder *b = json_builder_new ();
  JsonObject *o;

  json_builder_begin_object (b);
  etcd_add_int (b, "ID", id);
  o = request_built (e, "/v3/lease/keepalive", b, TRUE, error);
  if (!o)
    return FALSE;
  if (ttl_s)
    *ttl_s = etcd_get_int (o, "TTL"); /* left out (0) when the lease is gone */
  json_object_unref (o);
  return TRUE;
}

gboolean
mcsec_etcd_lease_revoke (mcsec_etcd_t *e, gint64 id, GError **error)
{
  JsonBuilder *b = json_builder_new ();
  JsonObject *o;

  json_builder_begin_object (b);
  etcd_add_int (b, "ID", id);
  o = request_built (e, "/v3/lease/revoke", b, FALSE, error);
  if (!o)
    return FALSE;
  json_object_unref (o);
  return TRUE;
}

/* ---- the lease keeper ---- */

struct _McsecEtcdLease {
  mcsec_etcd_t *etcd; /* the keeper thread's while it runs */
  gint64 id, ttl_s;
  int fd;
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean stop, lost; /* under lock */
  gint64 valid_until;  /* under lock */
  gint64 next;         /* when the next keepalive is due */
};

static void
lease_set_lost (mcsec_etcd_lease_t *l)
{
  guint64 one = 1;

  g_mutex_lock (&l->lock);
  l->lost = TRUE;
  l->valid_until = 0;
  g_mutex_unlock (&l->lock);
  if (write (l->fd, &one, sizeof one) < 0)
    g_warning ("etcd lease: eventfd: %s", g_strerror (errno));
}

static gpointer
lease_thread (gpointer data)
{
  mcsec_etcd_lease_t *l = data;
  gint64 third = l->ttl_s * G_USEC_PER_SEC / 3;

  for (;;) {
    GError *error = NULL;
    gint64 sent, ttl = 0;
    gboolean ok;

    g_mutex_lock (&l->lock);
    while (!l->stop && g_get_monotonic_time () < l->next)
      g_cond_wait_until (&l->cond, &l->lock, l->next);
    if (l->stop) {
      g_mutex_unlock (&l->lock);
      break;
    }
    g_mutex_unlock (&l->lock);

    sent = g_get_monotonic_time ();
    ok = mcsec_etcd_lease_keepalive (l->etcd, l->id, &ttl, &error);
    if ((ok && ttl <= 0) || g_error_matches (error, MCSEC_ETCD_ERROR,
                                             MCSEC_ETCD_ERROR_LEASE_GONE)) {
      g_debug ("etcd lease %" G_GINT64_FORMAT " is gone", l->id);
      g_clear_error (&error);
      lease_set_lost (l);
      break;
    }
    if (!ok) {
      /* try again soon; valid_until stays and runs out */
      g_debug ("etcd lease %" G_GINT64_FORMAT ": %s", l->id, error->message);
      g_clear_error (&error);
      l->next = g_get_monotonic_time () + MIN (third, G_USEC_PER_SEC / 4);
      continue;
    }
    g_mutex_lock (&l->lock);
    l->valid_until = MAX (l->valid_until, sent + ttl * G_USEC_PER_SEC);
    g_mutex_unlock (&l->lock);
    l->next = sent + MIN (third, ttl * G_USEC_PER_SEC / 3);
  }
  return NULL;
}

mcsec_etcd_lease_t *
mcsec_etcd_lease_new (const char *endpoints, gint64 ttl_s, GError **error)
{
  mcsec_etcd_lease_t *l;
  mcsec_etcd_t *e;
  gint64 sent, id = 0, granted = 0;

  if (ttl_s <= 0 || ttl_s > G_MAXINT32) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID,
                 "etcd lease: a TTL of %" G_GINT64_FORMAT " s", ttl_s);
    return NULL;
  }
  /* a third of the TTL for each attempt: one endpoint that hangs leaves
   * time for the next one */
  e = mcsec_etcd_new (endpoints, (guint)CLAMP (ttl_s * 1000 / 3, 250, 2000),
                      error);
  if (!e)
    return NULL;
  sent = g_get_monotonic_time ();
  if (!mcsec_etcd_lease_grant (e, ttl_s, &id, &granted, error)) {
    mcsec_etcd_free (e);
    return NULL;
  }
  l = g_new0 (mcsec_etcd_lease_t, 1);
  l->etcd = e;
  l->id = id;
  l->ttl_s = granted > 0 ? granted : ttl_s;
  l->valid_until = sent + l->ttl_s * G_USEC_PER_SEC;
  l->next = sent + l->ttl_s * G_USEC_PER_SEC / 3;
  g_mutex_init (&l->lock);
  g_cond_init (&l->cond);
  l->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (l->fd < 0) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_FAILED,
                 "etcd lease: eventfd: %s", g_strerror (errno));
    l->lost = TRUE; /* not worth revoking: it expires */
    mcsec_etcd_lease_free (l);
    return NULL;
  }
  l->thread = g_thread_new ("etcd-lease", lease_thread, l);
  return l;
}

gint64
mcsec_etcd_lease_id (mcsec_etcd_lease_t *l)
{
  return l->id;
}

gint64
mcsec_etcd_lease_valid_until (mcsec_etcd_lease_t *l)
{
  gint64 v;

  g_mutex_lock (&l->lock);
  v = l->valid_until;
  g_mutex_unlock (&l->lock);
  return v;
}

gboolean
mcsec_etcd_lease_lost (mcsec_etcd_lease_t *l)
{
  gboolean lost;

  g_mutex_lock (&l->lock);
  lost = l->lost;
  g_mutex_unlock (&l->lock);
  return lost;
}

int
mcsec_etcd_lease_fd (mcsec_etcd_lease_t *l)
{
  return l->fd;
}

void
mcsec_etcd_lease_free (mcsec_etcd_lease_t *l)
{
  GError *error = NULL;

  if (!l)
    return;
  if (l->thread) {
    g_mutex_lock (&l->lock);
    l->stop = TRUE;
    g_cond_signal (&l->cond);
    g_mutex_unlock (&l->lock);
    g_thread_join (l->thread);
  }
  if (!l->lost && !mcsec_etcd_lease_revoke (l->etcd, l->id, &error)) {
    g_debug ("etcd lease %" G_GINT64_FORMAT ": %s", l->id, error->message);
    g_clear_error (&error);
  }
  if (l->fd >= 0)
    close (l->fd);
  g_cond_clear (&l->cond);
  g_mutex_clear (&l->lock);
  mcsec_etcd_free (l->etcd);
  g_free (l);
}
