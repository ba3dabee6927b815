/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The etcd client's watcher (etcd.h): one thread per watch, one stream at
 * a time over etcd's JSON gateway, resumed after the last revision it
 * delivered on the next endpoint when a stream dies; how the gateway
 * frames a watch and why the request body stays open are in etcd.c's
 * header.
 */
#define G_LOG_DOMAIN "mcsec-etcd"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-glib/json-glib.h>

#include "etcd-private.h"
#include "etcd.h"

/* the watcher: a progress request every second; a stream with nothing to
 * read for 4 s, or not confirmed 4 s after it started, is dead */
#define WATCH_PROBE_US (1 * G_USEC_PER_SEC)
#define WATCH_SILENT_US (4 * G_USEC_PER_SEC)
#define WATCH_CONNECT_MS 2000
/* a stream that worked this long is a success: the next one starts at
 * once; after a round of endpoints that all failed (or ended sooner), wait
 * this long, doubled up to the maximum */
#define WATCH_STABLE_US (1 * G_USEC_PER_SEC)
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 2000

/* ---- the watcher ---- */

struct _McsecEtcdWatch {
  gchar **endpoints;
  guint n;
  gchar *prefix;
  gchar *until; /* the range's end (excluded), or NULL: the whole prefix */
  GThread *thread;
  int fd, stop_fd;
  gint stop; /* atomic */
  GMutex lock;
  GQueue events;   /* of mcsec_etcd_event_t *, under lock */
  gchar *endpoint; /* of the stream that is up, under lock */
  gint64 next_rev; /* the watcher thread's: first revision not delivered
                      yet, 0 until the first stream from "now" starts */
  char errbuf[CURL_ERROR_SIZE];
};

/* one stream, on the watcher's thread */
typedef struct {
  mcsec_etcd_watch_t *w;
  const char *endpoint;
  CURL *curl;
  GString *in;  /* received, not a whole line yet */
  GString *out; /* to send */
  gboolean send_paused, created, end, resync;
  gint64 last_rx, next_probe;
  gchar *why; /* why it ended */
} Stream;

static void
queue_event (mcsec_etcd_watch_t *w, mcsec_etcd_event_t *ev)
{
  guint64 one = 1;

  g_mutex_lock (&w->lock);
  g_queue_push_tail (&w->events, ev);
  if (write (w->fd, &one, sizeof one) < 0 && errno != EAGAIN)
    g_warning ("etcd watch: eventfd: %s", g_strerror (errno));
  g_mutex_unlock (&w->lock);
}

static void
stream_end (Stream *s, gchar *why)
{
  if (!s->end) {
    s->end = TRUE;
    s->why = why;
  } else {
    g_free (why);
  }
}

/* one answer: {"result":WatchResponse} or {"error":{...}} */
static void
stream_frame (Stream *s, const char *line, gsize len)
{
  mcsec_etcd_watch_t *w = s->w;
  JsonParser *p = json_parser_new ();
  JsonObject *o = NULL, *r;
  JsonNode *root;
  JsonArray *events;
  const char *message;
  gint64 code = 0, next = w->next_rev, compact;

  if (json_parser_load_from_data (p, line, (gssize)len, NULL) &&
      (root = json_parser_get_root (p)) && JSON_NODE_HOLDS_OBJECT (root))
    o = json_node_get_object (root);
  if (!o) {
    stream_end (s, g_strdup ("an answer that is not a JSON object"));
    goto out;
  }
  if (etcd_json_error (o, &code, &message)) {
    stream_end (s, g_strdup_printf ("etcd: %s (code %" G_GINT64_FORMAT ")",
                                    message, code));
    goto out;
  }
  r = etcd_get_object (o, "result");
  if (!r) {
    stream_end (s, g_strdup ("an answer without a result"));
    goto out;
  }
  if (etcd_get_bool (r, "canceled")) {
    compact = etcd_get_int (r, "compact_revision");
    if (compact > 0) {
      mcsec_etcd_event_t *ev = g_new0 (mcsec_etcd_event_t, 1);
      ev->type = MCSEC_ETCD_EVENT_RESYNC;
      ev->kv.key = g_strdup (w->prefix);
      ev->kv.mod_revision = compact;
      queue_event (w, ev);
      /* the events before compact are gone: the caller re-reads (at a
       * revision >= compact) and the watch goes on from compact, the
       * oldest revision etcd still has, so nothing after the re-read is
       * missed */
      w->next_rev = compact;
      s->resync = TRUE;
      stream_end (s, g_strdup_printf ("revision %" G_GINT64_FORMAT
                                      " compacted (up to %" G_GINT64_FORMAT ")",
                                      next, compact));
    } else {
      const char *reason = etcd_get_string (r, "cancel_reason");
      stream_end (s, g_strdup_printf ("watch canceled: %s",
                                      reason ? reason : "(no reason)"));
    }
    goto out;
  }
  if (etcd_get_bool (r, "created") && !s->created) {
    s->created = TRUE;
    if (!w->next_rev)
      w->next_rev =
          etcd_get_int (etcd_get_object (r, "header"), "revision") + 1;
    g_mutex_lock (&w->lock);
    g_free (w->endpoint);
    w->endpoint = g_strdup (s->endpoint);
    g_mutex_unlock (&w->lock);
  }
  events = etcd_get_array (r, "events");
  for (guint i = 0; events && i < json_array_get_length (events); i++) {
    JsonObject *eo = json_array_get_object_element (events, i);
    JsonObject *kvo = etcd_get_object (eo, "kv");
    const char *type = etcd_get_string (eo, "type");
    gboolean del = type && !strcmp (type, "DELETE");
    mcsec_etcd_event_t *ev;
    mcsec_etcd_kv_t *kv;

    if (!kvo || (type && !del && strcmp (type, "PUT"))) {
      stream_end (s, g_strdup ("an event not understood"));
      break;
    }
    /* delivered already (never, as etcd does not repeat itself) */
    if (etcd_get_int (kvo, "mod_revision") < w->next_rev)
      continue;
    kv = etcd_kv_from_json (kvo, !del);
    ev = g_new0 (mcsec_etcd_event_t, 1);
    ev->type = del ? MCSEC_ETCD_EVENT_DELETE : MCSEC_ETCD_EVENT_PUT;
    ev->kv = *kv;
    g_free (kv);
    next = MAX (next, ev->kv.mod_revision + 1);
    queue_event (w, ev);
  }
  /* one revision's events are all in one answer */
  w->next_rev = next;
out:
  g_object_unref (p);
}

static size_t
stream_write (char *data, size_t size, size_t nmemb, void *user)
{
  Stream *s = user;
  size_t n = size * nmemb;
  const char *nl;

  s->last_rx = g_get_monotonic_time ();
  g_string_append_len (s->in, data, (gssize)n);
  while (!s->end && (nl = memchr (s->in->str, '\n', s->in->len))) {
    gsize len = (gsize)(nl - s->in->str);
    if (len)
      stream_frame (s, s->in->str, len);
    explicit_bzero (s->in->str, len + 1);
    g_string_erase (s->in, 0, (gssize)len + 1);
  }
  if (!s->end && s->in->len > MAX_ANSWER)
    stream_end (s,
                g_strdup_printf ("an answer larger than %d bytes", MAX_ANSWER));
  return s->end ? CURL_WRITEFUNC_ERROR : n;
}

static size_t
stream_read (char *buf, size_t size, size_t nitems, void *user)
{
  Stream *s = user;
  size_t n = MIN (size * nitems, s->out->len);

  if (!n) {
    s->send_paused = TRUE;
    return CURL_READFUNC_PAUSE;
  }
  memcpy (buf, s->out->str, n);
  g_string_erase (s->out, 0, (gssize)n);
  return n;
}

static void
stream_send (Stream *s, const char *text)
{
  g_string_append (s->out, text);
  if (s->send_paused) {
    s->send_paused = FALSE;
    curl_easy_pause (s->curl, CURLPAUSE_CONT);
  }
}

static gchar *
watch_request (mcsec_etcd_watch_t *w)
{
  JsonBuilder *b = json_builder_new ();
  gchar *text, *line;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "create_request");
  json_builder_begin_object (b);
  if (w->until)
    etcd_add_range (b, w->prefix, w->until);
  else
    etcd_add_key_range (b, w->prefix, TRUE);
  if (w->next_rev > 0)
    etcd_add_int (b, "start_revision", w->next_rev);
  etcd_add_bool (b, "progress_notify", TRUE);
  json_builder_end_object (b);
  json_builder_end_object (b);
  text = etcd_builder_text (b);
  line = g_strconcat (text, "\n", NULL);
  g_free (text);
  return line;
}

/* One stream on endpoint until it ends or the watcher stops; TRUE when etcd
 * confirmed the watch (or said its start was compacted) */
static gboolean
run_stream (mcsec_etcd_watch_t *w, CURLM *multi, const char *endpoint)
{
  Stream s = {.w = w, .endpoint = endpoint};
  struct curl_slist *headers = NULL;
  struct curl_waitfd stop = {.fd = w->stop_fd, .events = CURL_WAIT_POLLIN};
  gchar *url = g_strconcat (endpoint, "/v3/watch", NULL), *req;
  gint64 start = g_get_monotonic_time ();
  CURLcode result = CURLE_OK;
  gboolean done = FALSE, created;

  s.in = g_string_new (NULL);
  s.out = g_string_new (NULL);
  req = watch_request (w);
  g_string_append (s.out, req);
  g_free (req);
  headers = curl_slist_append (headers, "Content-Type: application/json");
  headers = curl_slist_append (headers, "Transfer-Encoding: chunked");
  /* without it, Go's server reads the request body to its end (or 256 kB)
   * before it writes the answer's headers: nothing would come back */
  headers = curl_slist_append (headers, "Expect: 100-continue");
  /* a member without a leader ends the stream rather than go stale */
  headers = curl_slist_append (headers, "Grpc-Metadata-Hasleader: true");
  s.curl = curl_easy_init ();
  w->errbuf[0] = '\0';
  etcd_common_options (s.curl, w->errbuf);
  curl_easy_setopt (s.curl, CURLOPT_URL, url);
  curl_easy_setopt (s.curl, CURLOPT_POST, 1L);
  curl_easy_setopt (s.curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt (s.curl, CURLOPT_READFUNCTION, stream_read);
  curl_easy_setopt (s.curl, CURLOPT_READDATA, &s);
  curl_easy_setopt (s.curl, CURLOPT_WRITEFUNCTION, stream_write);
  curl_easy_setopt (s.curl, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt (s.curl, CURLOPT_CONNECTTIMEOUT_MS, (long)WATCH_CONNECT_MS);
  curl_multi_add_handle (multi, s.curl);

  while (!g_atomic_int_get (&w->stop)) {
    CURLMsg *msg;
    int running, left;
    gint64 now, wake;

    curl_multi_perform (multi, &running);
    while ((msg = curl_multi_info_read (multi, &left)))
      if (msg->msg == CURLMSG_DONE) {
        done = TRUE;
        result = msg->data.result;
      }
    if (done || s.end)
      break;
    now = g_get_monotonic_time ();
    if (!s.created && now - start > WATCH_SILENT_US) {
      stream_end (&s, g_strdup ("no answer to the watch request"));
      break;
    }
    if (s.created && now - s.last_rx > WATCH_SILENT_US) {
      stream_end (&s,
                  g_strdup_printf ("silent for %d s",
                                   (int)(WATCH_SILENT_US / G_USEC_PER_SEC)));
      break;
    }
    if (s.created && now >= s.next_probe) {
      stream_send (&s, "{\"progress_request\":{}}\n");
      s.next_probe = now + WATCH_PROBE_US;
      continue; /* send it */
    }
    wake = s.created ? MIN (s.next_probe, s.last_rx + WATCH_SILENT_US)
                     : start + WATCH_SILENT_US;
    curl_multi_poll (multi, &stop, 1,
                     (int)CLAMP ((wake - now) / 1000 + 1, 1, 1000), NULL);
  }
  /* etcd's last frame, an error, has no newline after it */
  if (!s.end && s.in->len && !g_atomic_int_get (&w->stop))
    stream_frame (&s, s.in->str, s.in->len);
  if (!s.end && !g_atomic_int_get (&w->stop))
    stream_end (&s,
                g_strdup_printf ("the stream ended: %s",
                                 w->errbuf[0] ? w->errbuf
                                              : curl_easy_strerror (result)));
  if (s.why)
    g_debug ("etcd watch %s/v3/watch: %s", endpoint, s.why);
  curl_multi_remove_handle (multi, s.curl);
  curl_easy_cleanup (s.curl);
  curl_slist_free_all (headers);
  g_mutex_lock (&w->lock);
  g_clear_pointer (&w->endpoint, g_free);
  g_mutex_unlock (&w->lock);
  etcd_wipe_string (s.in);
  g_string_free (s.in, TRUE);
  g_string_free (s.out, TRUE);
  g_free (s.why);
  g_free (url);
  created = s.created || s.resync;
  return created;
}

/* wait ms or until asked to stop */
static void
wait_stop (mcsec_etcd_watch_t *w, int ms)
{
  struct pollfd p = {.fd = w->stop_fd, .events = POLLIN};
  gint64 until = g_get_monotonic_time () + ms * 1000;
  gint64 left;

  while (!g_atomic_int_get (&w->stop) &&
         (left = until - g_get_monotonic_time ()) > 0)
    poll (&p, 1, (int)(left / 1000) + 1);
}

static gpointer
watch_thread (gpointer data)
{
  mcsec_etcd_watch_t *w = data;
  CURLM *multi = curl_multi_init ();
  guint i = 0, failed = 0;
  int backoff = WATCH_BACKOFF_MIN_MS;

  while (!g_atomic_int_get (&w->stop)) {
    gint64 start = g_get_monotonic_time ();
    gboolean created = run_stream (w, multi, w->endpoints[i]);

    /* whatever ended the stream (the member died, went silent, lost its
     * leader), the next one goes to the next endpoint */
    i = (i + 1) % w->n;
    if (created && g_get_monotonic_time () - start >= WATCH_STABLE_US) {
      failed = 0;
      backoff = WATCH_BACKOFF_MIN_MS;
      continue;
    }
    /* a round of endpoints that all failed: wait before the next one */
    if (++failed % w->n == 0) {
      wait_stop (w, backoff);
      backoff = MIN (backoff * 2, WATCH_BACKOFF_MAX_MS);
    }
  }
  curl_multi_cleanup (multi);
  return NULL;
}

mcsec_etcd_watch_t *
mcsec_etcd_watch_new (const char *endpoints, const char *prefix,
                      gint64 start_revision, GError **error)
{
  return mcsec_etcd_watch_new_until (endpoints, prefix, NULL, start_revision,
                                     error);
}

mcsec_etcd_watch_t *
mcsec_etcd_watch_new_until (const char *endpoints, const char *prefix,
                            const char *until, gint64 start_revision,
                            GError **error)
{
  mcsec_etcd_watch_t *w;
  gchar **list;
  guint n = 0;

  if (!prefix)
    prefix = "";
  list = etcd_parse_endpoints (endpoints, &n, error);
  if (!list)
    return NULL;
  etcd_global_init ();
  w = g_new0 (mcsec_etcd_watch_t, 1);
  w->endpoints = list;
  w->n = n;
  w->prefix = g_strdup (prefix);
  w->until = g_strdup (until);
  w->next_rev = MAX (start_revision, 0);
  g_mutex_init (&w->lock);
  g_queue_init (&w->events);
  w->fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  w->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->fd < 0 || w->stop_fd < 0) {
    g_set_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_FAILED,
                 "etcd watch: eventfd: %s", g_strerror (errno));
    mcsec_etcd_watch_free (w);
    return NULL;
  }
  w->thread = g_thread_new ("etcd-watch", watch_thread, w);
  return w;
}

int
mcsec_etcd_watch_fd (mcsec_etcd_watch_t *w)
{
  return w->fd;
}

gboolean
mcsec_etcd_watch_next (mcsec_etcd_watch_t *w, mcsec_etcd_event_t *ev)
{
  mcsec_etcd_event_t *e;
  guint64 count;

  g_mutex_lock (&w->lock);
  e = g_queue_pop_head (&w->events);
  if (g_queue_is_empty (&w->events) && read (w->fd, &count, sizeof count) < 0 &&
      errno != EAGAIN)
    g_warning ("etcd watch: eventfd: %s", g_strerror (errno));
  g_mutex_unlock (&w->lock);
  if (!e) {
    memset (ev, 0, sizeof *ev);
    return FALSE;
  }
  *ev = *e;
  g_free (e);
  return TRUE;
}

void
mcsec_etcd_event_clear (mcsec_etcd_event_t *ev)
{
  etcd_kv_clear (&ev->kv);
  memset (ev, 0, sizeof *ev);
}

gboolean
mcsec_etcd_watch_connected (mcsec_etcd_watch_t *w)
{
  gboolean up;

  g_mutex_lock (&w->lock);
  up = w->endpoint != NULL;
  g_mutex_unlock (&w->lock);
  return up;
}

gchar *
mcsec_etcd_watch_endpoint (mcsec_etcd_watch_t *w)
{
  gchar *ep;

  g_mutex_lock (&w->lock);
  ep = g_strdup (w->endpoint);
  g_mutex_unlock (&w->lock);
  return ep;
}

static void
event_free (gpointer p)
{
  mcsec_etcd_event_clear (p);
  g_free (p);
}

void
mcsec_etcd_watch_free (mcsec_etcd_watch_t *w)
{
  guint64 one = 1;

  if (!w)
    return;
  if (w->thread) {
    g_atomic_int_set (&w->stop, 1);
    if (write (w->stop_fd, &one, sizeof one) < 0)
      g_warning ("etcd watch: eventfd: %s", g_strerror (errno));
    g_thread_join (w->thread);
  }
  g_queue_clear_full (&w->events, event_free);
  g_mutex_clear (&w->lock);
  if (w->fd >= 0)
    close (w->fd);
  if (w->stop_fd >= 0)
    close (w->stop_fd);
  g_free (w->endpoint);
  g_free (w->prefix);
  g_free (w->until);
  g_strfreev (w->endpoints);
  g_free (w);
}
