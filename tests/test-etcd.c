/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-etcd: the controller cluster's etcd client (tools/controller/etcd.c)
 * against a real 3-member etcd on loopback, started by tests/etcd-client.sh
 * (tests/etcd-lib.sh), which passes ETCD_ENDPOINTS (member 1, 2, 3 in that
 * order), ETCD_LIB and ETCD_DIR; members are killed, stopped and restarted
 * through etcd-lib.sh.  Every wait has a deadline; no test depends on a
 * sleep being long enough.
 */
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "etcd-test-util.h"
#include "etcd.h"

static const char *eps; /* every member */
static gchar *ep[4];    /* ep[i]: member i */
static gchar *base;     /* "/test-etcd-PID/": this run's keys */

/* ---- helpers ---- */

static void
member (const char *verb, int i)
{
  gchar *arg = g_strdup_printf ("%d", i);
  etcd_lib (verb, arg);
  g_free (arg);
}

static void
healthy (void)
{
  etcd_lib ("wait_healthy", NULL);
}

static GBytes *
b (const char *s)
{
  return str_bytes (s);
}

static gchar *
key (const char *test, const char *rest)
{
  return g_strconcat (base, test, "/", rest, NULL);
}

static mcsec_etcd_t *
client (const char *endpoints, guint timeout_ms)
{
  GError *error = NULL;
  mcsec_etcd_t *e = mcsec_etcd_new (endpoints, timeout_ms, &error);
  g_assert_no_error (error);
  g_assert_nonnull (e);
  return e;
}

static gint64
put (mcsec_etcd_t *e, const char *k, const char *v, gint64 lease)
{
  GError *error = NULL;
  GBytes *bv = b (v);
  gint64 rev = 0;

  g_assert_true (mcsec_etcd_put (e, k, bv, lease, &rev, &error));
  g_assert_no_error (error);
  g_assert_cmpint (rev, >, 0);
  g_bytes_unref (bv);
  return rev;
}

/* the pairs of key (prefix), asserting success */
static GPtrArray *
get (mcsec_etcd_t *e, const char *k, gboolean prefix, gboolean keys_only)
{
  GError *error = NULL;
  GPtrArray *kvs = mcsec_etcd_get (e, k, prefix, keys_only, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (kvs);
  return kvs;
}

static mcsec_etcd_kv_t *
kv_at (GPtrArray *kvs, guint i)
{
  return g_ptr_array_index (kvs, i);
}

/* the next event within timeout_ms, waiting on the watcher's fd */
static gboolean
next_event (mcsec_etcd_watch_t *w, mcsec_etcd_event_t *ev, int timeout_ms)
{
  gint64 until = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  for (;;) {
    struct pollfd p = {.fd = mcsec_etcd_watch_fd (w), .events = POLLIN};
    gint64 left;

    if (mcsec_etcd_watch_next (w, ev))
      return TRUE;
    left = until - g_get_monotonic_time ();
    if (left <= 0)
      return FALSE;
    poll (&p, 1, (int)(left / 1000) + 1);
  }
}

/* poll cond every 20 ms until it holds or timeout_ms passed */
#define WAIT_FOR(cond, timeout_ms)                                             \
  G_STMT_START                                                                 \
  {                                                                            \
    gint64 until_ = g_get_monotonic_time () + (timeout_ms)*1000;               \
    while (!(cond) && g_get_monotonic_time () < until_)                        \
      g_usleep (20000);                                                        \
    if (!(cond))                                                               \
      g_error ("%s:%d: not true within %d ms: %s", __FILE__, __LINE__,         \
               (int)(timeout_ms), #cond);                                      \
  }                                                                            \
  G_STMT_END

static void
expect_event (mcsec_etcd_watch_t *w, mcsec_etcd_event_type_t type,
              const char *k, const char *value, gint64 rev)
{
  mcsec_etcd_event_t ev;

  if (!next_event (w, &ev, 10000))
    g_error ("no event for %s within 10 s", k);
  g_assert_cmpint (ev.type, ==, type);
  g_assert_cmpstr (ev.kv.key, ==, k);
  g_assert_cmpint (ev.kv.mod_revision, ==, rev);
  if (value)
    g_assert_true (bytes_is (ev.kv.value, value));
  else
    g_assert_null (ev.kv.value);
  mcsec_etcd_event_clear (&ev);
}

/* ---- key-value ---- */

static void
test_kv (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *pre = key ("kv", ""), *a = key ("kv", "a"), *bk = key ("kv", "b");
  gchar *bx = key ("kv", "b/x"), *c = key ("kv", "c");
  gchar *outside = g_strconcat (base, "kv0", NULL);
  gchar *below = g_strconcat (base, "kv", NULL);
  GError *error = NULL;
  gint64 ra, rb, rbx, rc, ra2, rev = 0, deleted = -1;
  GPtrArray *kvs;
  GBytes *secret;

  ra = put (e, a, "1", 0);
  rb = put (e, bk, "22", 0);
  rbx = put (e, bx, "3", 0);
  rc = put (e, c, "", 0); /* an empty value: etcd leaves it out */
  put (e, outside, "out", 0);
  put (e, below, "below", 0);
  g_assert_cmpint (ra, <, rb);

  kvs = mcsec_etcd_get (e, a, FALSE, FALSE, &rev, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kvs->len, ==, 1);
  g_assert_cmpstr (kv_at (kvs, 0)->key, ==, a);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "1"));
  g_assert_cmpint (kv_at (kvs, 0)->create_revision, ==, ra);
  g_assert_cmpint (kv_at (kvs, 0)->mod_revision, ==, ra);
  g_assert_cmpint (kv_at (kvs, 0)->version, ==, 1);
  g_assert_cmpint (kv_at (kvs, 0)->lease, ==, 0);
  g_assert_cmpint (rev, >=, rc);
  g_ptr_array_unref (kvs);

  kvs = get (e, below, FALSE, FALSE);
  g_assert_cmpuint (kvs->len, ==, 1);
  g_ptr_array_unref (kvs);
  kvs = get (e, pre, FALSE, FALSE); /* no key ".../kv/" itself */
  g_assert_cmpuint (kvs->len, ==, 0);
  g_ptr_array_unref (kvs);

  /* the prefix, sorted by key, nothing outside it */
  kvs = get (e, pre, TRUE, FALSE);
  g_assert_cmpuint (kvs->len, ==, 4);
  g_assert_cmpstr (kv_at (kvs, 0)->key, ==, a);
  g_assert_cmpstr (kv_at (kvs, 1)->key, ==, bk);
  g_assert_cmpstr (kv_at (kvs, 2)->key, ==, bx);
  g_assert_cmpstr (kv_at (kvs, 3)->key, ==, c);
  g_assert_true (bytes_is (kv_at (kvs, 1)->value, "22"));
  g_assert_cmpint (kv_at (kvs, 2)->mod_revision, ==, rbx);
  g_assert_nonnull (kv_at (kvs, 3)->value);
  g_assert_cmpuint (g_bytes_get_size (kv_at (kvs, 3)->value), ==, 0);
  g_ptr_array_unref (kvs);

  kvs = get (e, pre, TRUE, TRUE);
  g_assert_cmpuint (kvs->len, ==, 4);
  for (guint i = 0; i < kvs->len; i++)
    g_assert_null (kv_at (kvs, i)->value);
  g_assert_cmpint (kv_at (kvs, 1)->create_revision, ==, rb);
  g_ptr_array_unref (kvs);

  /* a new version */
  ra2 = put (e, a, "one", 0);
  kvs = get (e, a, FALSE, FALSE);
  g_assert_cmpint (kv_at (kvs, 0)->version, ==, 2);
  g_assert_cmpint (kv_at (kvs, 0)->create_revision, ==, ra);
  g_assert_cmpint (kv_at (kvs, 0)->mod_revision, ==, ra2);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "one"));
  g_ptr_array_unref (kvs);

  /* delete: one key, a prefix, nothing */
  g_assert_true (mcsec_etcd_delete (e, bk, TRUE, &deleted, &rev, &error));
  g_assert_no_error (error);
  g_assert_cmpint (deleted, ==, 2);
  g_assert_cmpint (rev, >, ra2);
  g_assert_true (mcsec_etcd_delete (e, bk, FALSE, &deleted, NULL, &error));
  g_assert_cmpint (deleted, ==, 0);
  kvs = get (e, pre, TRUE, TRUE);
  g_assert_cmpuint (kvs->len, ==, 2);
  g_ptr_array_unref (kvs);

  /* every key ("" as a prefix) holds ours */
  kvs = get (e, "", TRUE, TRUE);
  g_assert_cmpuint (kvs->len, >=, 4);
  g_ptr_array_unref (kvs);

  /* no key */
  g_assert_null (mcsec_etcd_get (e, "", FALSE, FALSE, NULL, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID);
  g_clear_error (&error);

  /* etcd's refusal names the endpoint and the request, never the value */
  secret = b ("SECRET-VALUE-0123");
  g_assert_false (mcsec_etcd_put (e, a, secret, 12345, NULL, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_LEASE_GONE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, mcsec_etcd_endpoint (e)));
  g_assert_nonnull (strstr (error->message, "/v3/kv/put"));
  g_assert_null (strstr (error->message, "SECRET"));
  g_assert_null (strstr (error->message, "U0VDUkVU")); /* base64 */
  g_clear_error (&error);
  g_bytes_unref (secret);

  mcsec_etcd_free (e);
  g_free (pre);
  g_free (a);
  g_free (bk);
  g_free (bx);
  g_free (c);
  g_free (outside);
  g_free (below);
}

/* A range from a first key to a last one, both included, in pages (limit,
 * more) read at one revision: what a later write did is not in a page read
 * at the revision before it. */
static void
test_range (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k[6];
  gchar *after = key ("range", "c/"); /* after c, before d */
  GError *error = NULL;
  gint64 rev = 0, rev2 = 0;
  gboolean more = FALSE;
  GPtrArray *kvs;

  for (int i = 0; i < 6; i++) {
    gchar name[2] = {(gchar)('a' + i), 0};
    k[i] = key ("range", name);
    put (e, k[i], name, 0);
  }
  put (e, after, "c/", 0);
  /* a to d: four keys and the one between c and d; e and f are out */
  kvs = mcsec_etcd_range (e, k[0], FALSE, k[3], 0, 0, &rev, &more, &error);
  g_assert_no_error (error);
  g_assert_false (more);
  g_assert_cmpuint (kvs->len, ==, 5);
  g_assert_cmpstr (kv_at (kvs, 0)->key, ==, k[0]);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "a"));
  g_assert_cmpstr (kv_at (kvs, 3)->key, ==, after);
  g_assert_cmpstr (kv_at (kvs, 4)->key, ==, k[3]);
  g_assert_true (bytes_is (kv_at (kvs, 4)->value, "d"));
  g_ptr_array_unref (kvs);
  /* pages of two */
  kvs = mcsec_etcd_range (e, k[0], FALSE, k[5], 2, 0, &rev, &more, &error);
  g_assert_no_error (error);
  g_assert_true (more);
  g_assert_cmpuint (kvs->len, ==, 2);
  g_assert_cmpstr (kv_at (kvs, 1)->key, ==, k[1]);
  g_ptr_array_unref (kvs);
  /* c changes and e goes after the first page: the next page (after b,
   * its last key), read at the first one's revision, has them as they
   * were */
  put (e, k[2], "C", 0);
  g_assert_true (mcsec_etcd_delete (e, k[4], FALSE, NULL, NULL, &error));
  kvs = mcsec_etcd_range (e, k[1], TRUE, k[5], 2, rev, &rev2, &more, &error);
  g_assert_no_error (error);
  g_assert_cmpint (rev2, >, rev);
  g_assert_true (more);
  g_assert_cmpuint (kvs->len, ==, 2);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "c"));
  g_assert_cmpstr (kv_at (kvs, 1)->key, ==, after);
  g_ptr_array_unref (kvs);
  kvs = mcsec_etcd_range (e, after, TRUE, k[5], 2, rev, NULL, &more, &error);
  g_assert_no_error (error);
  g_assert_true (more);
  g_assert_cmpuint (kvs->len, ==, 2);
  g_assert_cmpstr (kv_at (kvs, 1)->key, ==, k[4]);
  g_ptr_array_unref (kvs);
  /* and now: c changed, e gone, the last page not "more" */
  kvs = mcsec_etcd_range (e, k[2], FALSE, k[5], 0, 0, NULL, &more, &error);
  g_assert_no_error (error);
  g_assert_false (more);
  g_assert_cmpuint (kvs->len, ==, 4);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "C"));
  g_assert_cmpstr (kv_at (kvs, 3)->key, ==, k[5]);
  g_ptr_array_unref (kvs);
  /* the first page's revision compacted: an error of its own (the store
   * reads the range once more) */
  {
    gint64 now = put (e, k[0], "a", 0);
    gchar *cmd = g_strdup_printf ("ETCDCTL_API=3 etcdctl --endpoints %s "
                                  "compact %" G_GINT64_FORMAT " >/dev/null",
                                  eps, now);
    g_assert_cmpint (system (cmd), ==, 0);
    g_free (cmd);
    g_assert_null (
        mcsec_etcd_range (e, k[1], TRUE, k[5], 2, rev, NULL, NULL, &error));
    g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_COMPACTED);
    g_clear_error (&error);
  }
  /* no key */
  g_assert_null (
      mcsec_etcd_range (e, "", FALSE, k[5], 0, 0, NULL, NULL, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID);
  g_clear_error (&error);
  for (int i = 0; i < 6; i++)
    g_free (k[i]);
  g_free (after);
  mcsec_etcd_free (e);
}

static void
test_bad_endpoints (void)
{
  const char *bad[] = {"",
                       " , ",
                       "127.0.0.1:2379",
                       "http://",
                       "http://a:1,ftp://b:2",
                       "http://a:1/path"};
  GError *error = NULL;
  mcsec_etcd_t *e;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_assert_null (mcsec_etcd_new (bad[i], 1000, &error));
    g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID);
    g_clear_error (&error);
    g_assert_null (mcsec_etcd_watch_new (bad[i], "x", 0, &error));
    g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_INVALID);
    g_clear_error (&error);
  }
  e = client (" http://127.0.0.1:1/ , http://127.0.0.1:2", 1000);
  g_assert_cmpstr (mcsec_etcd_endpoint (e), ==, "http://127.0.0.1:1");
  mcsec_etcd_free (e);
}

/* ---- transactions ---- */

static void
test_txn (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k = key ("txn", "k"), *k2 = key ("txn", "k2"), *k3 = key ("txn", "k3");
  GBytes *first = b ("first"), *second = b ("second");
  mcsec_etcd_cmp_t create = {k, MCSEC_ETCD_CMP_CREATE, MCSEC_ETCD_EQUAL, 0};
  mcsec_etcd_op_t put1 = {MCSEC_ETCD_OP_PUT, k, first, 0, FALSE};
  mcsec_etcd_op_t getk = {MCSEC_ETCD_OP_GET, k, NULL, 0, FALSE};
  GError *error = NULL;
  GPtrArray *got = NULL, *kvs;
  gboolean ok = FALSE;
  gint64 rev = 0, mod;

  /* create only: once */
  g_assert_true (mcsec_etcd_txn (e, &create, 1, &put1, 1, &getk, 1, &ok, &rev,
                                 &got, &error));
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpuint (got->len, ==, 0);
  mod = rev;
  g_assert_true (mcsec_etcd_txn (e, &create, 1, &put1, 1, &getk, 1, &ok, &rev,
                                 &got, &error));
  g_assert_false (ok);
  g_assert_cmpint (rev, ==, mod);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpstr (kv_at (got, 0)->key, ==, k);
  g_assert_true (bytes_is (kv_at (got, 0)->value, "first"));
  g_assert_cmpint (kv_at (got, 0)->mod_revision, ==, mod);
  g_ptr_array_unref (got);
  got = NULL;

  /* compare-and-swap on mod_revision: the stale one fails */
  {
    mcsec_etcd_cmp_t cas = {k, MCSEC_ETCD_CMP_MOD, MCSEC_ETCD_EQUAL, mod};
    mcsec_etcd_op_t put2 = {MCSEC_ETCD_OP_PUT, k, second, 0, FALSE};
    g_assert_true (mcsec_etcd_txn (e, &cas, 1, &put2, 1, NULL, 0, &ok, &rev,
                                   NULL, &error));
    g_assert_true (ok);
    g_assert_cmpint (rev, >, mod);
    g_assert_true (mcsec_etcd_txn (e, &cas, 1, &put2, 1, NULL, 0, &ok, NULL,
                                   NULL, &error));
    g_assert_false (ok);
    g_assert_no_error (error);
  }

  /* the other comparisons: value, version, lease, not equal, less */
  {
    mcsec_etcd_cmp_t c[] = {
        {k, MCSEC_ETCD_CMP_VALUE, MCSEC_ETCD_EQUAL, 0, second},
        {k, MCSEC_ETCD_CMP_VERSION, MCSEC_ETCD_GREATER, 1},
        {k, MCSEC_ETCD_CMP_LEASE, MCSEC_ETCD_EQUAL, 0},
        {k, MCSEC_ETCD_CMP_MOD, MCSEC_ETCD_NOT_EQUAL, mod},
        {k, MCSEC_ETCD_CMP_CREATE, MCSEC_ETCD_LESS, mod + 1},
    };
    mcsec_etcd_cmp_t wrong = {k, MCSEC_ETCD_CMP_VALUE, MCSEC_ETCD_NOT_EQUAL, 0,
                              second};
    g_assert_true (mcsec_etcd_txn (e, c, G_N_ELEMENTS (c), NULL, 0, NULL, 0,
                                   &ok, NULL, NULL, &error));
    g_assert_true (ok);
    g_assert_true (mcsec_etcd_txn (e, &wrong, 1, NULL, 0, NULL, 0, &ok, NULL,
                                   NULL, &error));
    g_assert_false (ok);
  }

  /* several operations in one step; the GETs' pairs in order */
  {
    mcsec_etcd_op_t ops[] = {
        {MCSEC_ETCD_OP_PUT, k2, first, 0, FALSE},
        {MCSEC_ETCD_OP_GET, k, NULL, 0, FALSE},
        {MCSEC_ETCD_OP_PUT, k3, NULL, 0, FALSE},
    };
    mcsec_etcd_op_t del = {MCSEC_ETCD_OP_DELETE, k, NULL, 0, TRUE};
    g_assert_true (mcsec_etcd_txn (e, NULL, 0, ops, G_N_ELEMENTS (ops), NULL, 0,
                                   &ok, &rev, &got, &error));
    g_assert_no_error (error);
    g_assert_true (ok);
    g_assert_cmpuint (got->len, ==, 1);
    g_assert_true (bytes_is (kv_at (got, 0)->value, "second"));
    g_ptr_array_unref (got);
    got = NULL;
    kvs = get (e, k, TRUE, FALSE); /* k, k2, k3 */
    g_assert_cmpuint (kvs->len, ==, 3);
    g_assert_cmpint (kv_at (kvs, 1)->mod_revision, ==, rev);
    g_assert_cmpint (kv_at (kvs, 2)->mod_revision, ==, rev);
    g_assert_cmpuint (g_bytes_get_size (kv_at (kvs, 2)->value), ==, 0);
    g_ptr_array_unref (kvs);
    /* a prefix delete */
    g_assert_true (
        mcsec_etcd_txn (e, NULL, 0, &del, 1, NULL, 0, &ok, NULL, NULL, &error));
    kvs = get (e, k, TRUE, TRUE);
    g_assert_cmpuint (kvs->len, ==, 0);
    g_ptr_array_unref (kvs);
  }

  /* etcd refuses two writes of one key in one transaction */
  {
    mcsec_etcd_op_t twice[] = {
        {MCSEC_ETCD_OP_PUT, k, first, 0, FALSE},
        {MCSEC_ETCD_OP_PUT, k, second, 0, FALSE},
    };
    g_assert_false (mcsec_etcd_txn (e, NULL, 0, twice, 2, NULL, 0, &ok, NULL,
                                    NULL, &error));
    g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_FAILED);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "duplicate key"));
    g_clear_error (&error);
  }

  g_bytes_unref (first);
  g_bytes_unref (second);
  mcsec_etcd_free (e);
  g_free (k);
  g_free (k2);
  g_free (k3);
}

/* two clients increment one counter with compare-and-swap */
typedef struct {
  const char *key;
  guint tries, won;
  GArray *from; /* mod_revision each win replaced */
  GError *error;
} Racer;

static gpointer
racer (gpointer data)
{
  Racer *r = data;
  mcsec_etcd_t *e = mcsec_etcd_new (eps, 5000, &r->error);

  for (guint i = 0; e && i < r->tries && !r->error; i++) {
    GPtrArray *kvs = mcsec_etcd_get (e, r->key, FALSE, FALSE, NULL, &r->error);
    mcsec_etcd_kv_t *kv;
    gchar *text, *next;
    gint64 mod;
    GBytes *v;
    gboolean ok = FALSE;

    if (!kvs)
      break;
    kv = kv_at (kvs, 0);
    text = g_strndup (g_bytes_get_data (kv->value, NULL),
                      g_bytes_get_size (kv->value));
    mod = kv->mod_revision;
    next = g_strdup_printf ("%" G_GINT64_FORMAT,
                            g_ascii_strtoll (text, NULL, 10) + 1);
    v = b (next);
    {
      mcsec_etcd_cmp_t cas = {r->key, MCSEC_ETCD_CMP_MOD, MCSEC_ETCD_EQUAL,
                              mod};
      mcsec_etcd_op_t op = {MCSEC_ETCD_OP_PUT, r->key, v, 0, FALSE};
      if (mcsec_etcd_txn (e, &cas, 1, &op, 1, NULL, 0, &ok, NULL, NULL,
                          &r->error) &&
          ok) {
        r->won++;
        g_array_append_val (r->from, mod);
      }
    }
    g_bytes_unref (v);
    g_free (next);
    g_free (text);
    g_ptr_array_unref (kvs);
  }
  mcsec_etcd_free (e);
  return NULL;
}

static void
test_cas_race (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k = key ("race", "counter");
  Racer r[2] = {{k, 150, 0, NULL, NULL}, {k, 150, 0, NULL, NULL}};
  GThread *t[2];
  GPtrArray *kvs;
  GHashTable *seen = g_hash_table_new (g_int64_hash, g_int64_equal);

  put (e, k, "0", 0);
  for (int i = 0; i < 2; i++) {
    r[i].from = g_array_new (FALSE, FALSE, sizeof (gint64));
    t[i] = g_thread_new ("racer", racer, &r[i]);
  }
  for (int i = 0; i < 2; i++) {
    g_thread_join (t[i]);
    g_assert_no_error (r[i].error);
  }
  g_test_message ("wins: %u and %u of %u tries each", r[0].won, r[1].won,
                  r[0].tries);
  kvs = get (e, k, FALSE, FALSE);
  {
    gchar *want = g_strdup_printf ("%u", r[0].won + r[1].won);
    g_assert_true (bytes_is (kv_at (kvs, 0)->value, want));
    g_free (want);
  }
  g_ptr_array_unref (kvs);
  /* no revision was replaced twice */
  for (int i = 0; i < 2; i++) {
    for (guint j = 0; j < r[i].from->len; j++) {
      gint64 *m = &g_array_index (r[i].from, gint64, j);
      g_assert_false (g_hash_table_contains (seen, m));
      g_hash_table_add (seen, m);
    }
  }
  g_assert_cmpuint (r[0].won + r[1].won, >=, 150);
  g_hash_table_destroy (seen);
  for (int i = 0; i < 2; i++)
    g_array_free (r[i].from, TRUE);
  mcsec_etcd_free (e);
  g_free (k);
}

/* ---- leases ---- */

static void
test_lease_keepalive (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k = key ("lease", "alive");
  GError *error = NULL;
  gint64 id = 0, ttl = 0, start;
  GPtrArray *kvs;

  g_assert_true (mcsec_etcd_lease_grant (e, 2, &id, &ttl, &error));
  g_assert_no_error (error);
  g_assert_cmpint (id, !=, 0);
  g_assert_cmpint (ttl, ==, 2);
  put (e, k, "held", id);
  /* kept alive every 0.5 s for 3 TTLs */
  start = g_get_monotonic_time ();
  while (g_get_monotonic_time () - start < 6 * G_USEC_PER_SEC) {
    g_assert_true (mcsec_etcd_lease_keepalive (e, id, &ttl, &error));
    g_assert_no_error (error);
    g_assert_cmpint (ttl, ==, 2);
    g_usleep (G_USEC_PER_SEC / 2);
  }
  kvs = get (e, k, FALSE, FALSE);
  g_assert_cmpuint (kvs->len, ==, 1);
  g_assert_cmpint (kv_at (kvs, 0)->lease, ==, id);
  g_ptr_array_unref (kvs);
  /* revoked: the key goes with it */
  g_assert_true (mcsec_etcd_lease_revoke (e, id, &error));
  g_assert_no_error (error);
  kvs = get (e, k, FALSE, FALSE);
  g_assert_cmpuint (kvs->len, ==, 0);
  g_ptr_array_unref (kvs);
  g_assert_false (mcsec_etcd_lease_revoke (e, id, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_LEASE_GONE);
  g_clear_error (&error);
  mcsec_etcd_free (e);
  g_free (k);
}

static gboolean
key_exists (mcsec_etcd_t *e, const char *k)
{
  GPtrArray *kvs = get (e, k, FALSE, TRUE);
  gboolean there = kvs->len > 0;
  g_ptr_array_unref (kvs);
  return there;
}

static void
test_lease_expire (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k = key ("lease", "expires");
  GError *error = NULL;
  gint64 id = 0, ttl = 0, start;
  GBytes *v = b ("x");

  g_assert_true (mcsec_etcd_lease_grant (e, 1, &id, &ttl, &error));
  g_assert_no_error (error);
  put (e, k, "short", id);
  start = g_get_monotonic_time ();
  WAIT_FOR (!key_exists (e, k), 15000);
  g_test_message ("the key went %.1f s after a %" G_GINT64_FORMAT
                  " s lease was granted",
                  (g_get_monotonic_time () - start) / 1e6, ttl);
  /* not before the TTL */
  g_assert_cmpint (g_get_monotonic_time () - start, >=, ttl * G_USEC_PER_SEC);
  ttl = 99;
  g_assert_true (mcsec_etcd_lease_keepalive (e, id, &ttl, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ttl, <=, 0);
  g_assert_false (mcsec_etcd_put (e, k, v, id, NULL, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_LEASE_GONE);
  g_clear_error (&error);
  g_bytes_unref (v);
  mcsec_etcd_free (e);
  g_free (k);
}

static gboolean
fd_readable (int fd)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll (&p, 1, 0) == 1;
}

static void
test_lease_keeper (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *k = key ("keeper", "holder");
  GError *error = NULL;
  mcsec_etcd_lease_t *l;
  gint64 id, v0, start, stopped;

  start = g_get_monotonic_time ();
  l = mcsec_etcd_lease_new (eps, 2, &error);
  g_assert_no_error (error);
  id = mcsec_etcd_lease_id (l);
  g_assert_cmpint (id, !=, 0);
  v0 = mcsec_etcd_lease_valid_until (l);
  g_assert_cmpint (v0, >=, start + 2 * G_USEC_PER_SEC);
  g_assert_cmpint (v0, <=, g_get_monotonic_time () + 2 * G_USEC_PER_SEC);
  g_assert_false (mcsec_etcd_lease_lost (l));
  g_assert_false (fd_readable (mcsec_etcd_lease_fd (l)));
  put (e, k, "me", id);

  /* it moves forward, and stays ahead of now for 3 TTLs */
  WAIT_FOR (mcsec_etcd_lease_valid_until (l) > v0 + G_USEC_PER_SEC / 2, 5000);
  start = g_get_monotonic_time ();
  while (g_get_monotonic_time () - start < 6 * G_USEC_PER_SEC) {
    g_assert_cmpint (mcsec_etcd_lease_valid_until (l), >,
                     g_get_monotonic_time ());
    g_usleep (G_USEC_PER_SEC / 10);
  }
  g_assert_true (key_exists (e, k));

  /* no member answers: valid_until runs out within the TTL */
  for (int i = 1; i <= 3; i++)
    member ("stop", i);
  stopped = g_get_monotonic_time ();
  WAIT_FOR (mcsec_etcd_lease_valid_until (l) < g_get_monotonic_time (), 5000);
  g_test_message ("valid_until was passed %.2f s after all members stopped",
                  (g_get_monotonic_time () - stopped) / 1e6);
  g_assert_cmpint (mcsec_etcd_lease_valid_until (l), <=,
                   stopped + 2 * G_USEC_PER_SEC);
  for (int i = 1; i <= 3; i++)
    member ("cont", i);
  healthy ();
  /* back: either kept alive again (a new leader refreshes leases) or gone */
  WAIT_FOR (mcsec_etcd_lease_lost (l) ||
                mcsec_etcd_lease_valid_until (l) > g_get_monotonic_time (),
            15000);
  g_test_message ("after the stop, the lease is %s",
                  mcsec_etcd_lease_lost (l) ? "lost" : "alive");
  if (mcsec_etcd_lease_lost (l))
    g_assert_true (fd_readable (mcsec_etcd_lease_fd (l)));
  mcsec_etcd_lease_free (l);
  /* freed: revoked (or gone), the key with it */
  g_assert_false (key_exists (e, k));

  /* revoked behind its back: lost, the fd readable, valid_until 0 */
  l = mcsec_etcd_lease_new (eps, 2, &error);
  g_assert_no_error (error);
  g_assert_true (mcsec_etcd_lease_revoke (e, mcsec_etcd_lease_id (l), &error));
  g_assert_no_error (error);
  WAIT_FOR (fd_readable (mcsec_etcd_lease_fd (l)), 5000);
  g_assert_true (mcsec_etcd_lease_lost (l));
  g_assert_cmpint (mcsec_etcd_lease_valid_until (l), ==, 0);
  mcsec_etcd_lease_free (l);

  mcsec_etcd_free (e);
  g_free (k);
}

/* ---- the watcher ---- */

static mcsec_etcd_watch_t *
watch (const char *endpoints, const char *prefix, gint64 from)
{
  GError *error = NULL;
  mcsec_etcd_watch_t *w =
      mcsec_etcd_watch_new (endpoints, prefix, from, &error);
  g_assert_no_error (error);
  WAIT_FOR (mcsec_etcd_watch_connected (w), 10000);
  return w;
}

static void
test_watch (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *pre = key ("watch", ""), *a = key ("watch", "a");
  gchar *bk = key ("watch", "b"), *c = key ("watch", "c");
  gchar *d = key ("watch", "d"), *end = key ("watch", "end");
  gchar *outside = g_strconcat (base, "watch0", NULL);
  GBytes *three = b ("3"), *four = b ("4");
  mcsec_etcd_op_t two[] = {{MCSEC_ETCD_OP_PUT, c, three, 0, FALSE},
                           {MCSEC_ETCD_OP_PUT, d, four, 0, FALSE}};
  mcsec_etcd_watch_t *w, *history;
  mcsec_etcd_event_t ev;
  GError *error = NULL;
  gint64 r1, r2, r3, r4 = 0, r5, r6;
  gchar *up;

  w = watch (eps, pre, 0);
  up = mcsec_etcd_watch_endpoint (w);
  g_assert_cmpstr (up, ==, ep[1]);
  g_free (up);
  g_assert_false (mcsec_etcd_watch_next (w, &ev));
  g_assert_false (fd_readable (mcsec_etcd_watch_fd (w)));

  r1 = put (e, a, "1", 0);
  r2 = put (e, bk, "2", 0);
  g_assert_true (mcsec_etcd_delete (e, a, FALSE, NULL, &r3, &error));
  g_assert_true (
      mcsec_etcd_txn (e, NULL, 0, two, 2, NULL, 0, NULL, &r4, NULL, &error));
  g_assert_no_error (error);
  put (e, outside, "not watched", 0);
  r5 = put (e, a, "", 0);
  r6 = put (e, end, "end", 0);

  expect_event (w, MCSEC_ETCD_EVENT_PUT, a, "1", r1);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, bk, "2", r2);
  expect_event (w, MCSEC_ETCD_EVENT_DELETE, a, NULL, r3);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, c, "3", r4);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, d, "4", r4);
  /* a new key again: version 1 */
  g_assert_true (next_event (w, &ev, 10000));
  g_assert_cmpint (ev.type, ==, MCSEC_ETCD_EVENT_PUT);
  g_assert_cmpstr (ev.kv.key, ==, a);
  g_assert_cmpint (ev.kv.create_revision, ==, r5);
  g_assert_cmpint (ev.kv.version, ==, 1);
  g_assert_cmpuint (g_bytes_get_size (ev.kv.value), ==, 0);
  mcsec_etcd_event_clear (&ev);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, end, "end", r6);
  /* drained: the fd is not readable any more */
  g_assert_false (mcsec_etcd_watch_next (w, &ev));
  g_assert_false (fd_readable (mcsec_etcd_watch_fd (w)));

  /* the same history from a past revision */
  history = watch (eps, pre, r1);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, a, "1", r1);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, bk, "2", r2);
  expect_event (history, MCSEC_ETCD_EVENT_DELETE, a, NULL, r3);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, c, "3", r4);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, d, "4", r4);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, a, "", r5);
  expect_event (history, MCSEC_ETCD_EVENT_PUT, end, "end", r6);
  mcsec_etcd_watch_free (history);

  /* freed with events still queued */
  put (e, a, "queued", 0);
  WAIT_FOR (fd_readable (mcsec_etcd_watch_fd (w)), 10000);
  mcsec_etcd_watch_free (w);

  g_bytes_unref (three);
  g_bytes_unref (four);
  mcsec_etcd_free (e);
  g_free (pre);
  g_free (a);
  g_free (bk);
  g_free (c);
  g_free (d);
  g_free (end);
  g_free (outside);
}

/* a watch up to a key: what the controllers watch (up to "sealed/"):
 * keys from there on (megabytes of a key tree's snapshot) do not stream */
static void
test_watch_until (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *pre = key ("until", ""), *leader = key ("until", "leader/g");
  gchar *sealed = key ("until", "sealed/tree/g/1"),
        *spis = key ("until", "spis/g");
  gchar *until = key ("until", "sealed/");
  GError *error = NULL;
  mcsec_etcd_watch_t *w =
      mcsec_etcd_watch_new_until (eps, pre, until, 0, &error);
  mcsec_etcd_event_t ev;
  gint64 r1, r2;

  g_assert_no_error (error);
  WAIT_FOR (mcsec_etcd_watch_connected (w), 10000);
  r1 = put (e, leader, "c1", 0);
  put (e, sealed, "a sealed chunk", 0);
  put (e, spis, "0001", 0);
  r2 = put (e, leader, "c2", 0);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, leader, "c1", r1);
  expect_event (w, MCSEC_ETCD_EVENT_PUT, leader, "c2", r2);
  g_assert_false (mcsec_etcd_watch_next (w, &ev));
  mcsec_etcd_watch_free (w);
  mcsec_etcd_free (e);
  g_free (pre);
  g_free (leader);
  g_free (sealed);
  g_free (spis);
  g_free (until);
}

/* a watch from a compacted revision: RESYNC, the caller re-reads, no
 * event after the re-read is missed */
static void
test_watch_compacted (void)
{
  mcsec_etcd_t *e = client (eps, 2000);
  gchar *pre = key ("compact", ""), *a = key ("compact", "a");
  gchar *cmd, *after;
  gint64 r1, r2, r3, read_rev = 0;
  mcsec_etcd_watch_t *w;
  mcsec_etcd_event_t ev;
  GPtrArray *kvs;
  GError *error = NULL;

  r1 = put (e, a, "1", 0);
  put (e, a, "2", 0);
  r2 = put (e, a, "3", 0);
  cmd = g_strdup_printf ("ETCDCTL_API=3 etcdctl --endpoints %s compact "
                         "%" G_GINT64_FORMAT " >/dev/null",
                         eps, r2);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (cmd);

  w = mcsec_etcd_watch_new (eps, pre, r1, NULL);
  g_assert_true (next_event (w, &ev, 10000));
  g_assert_cmpint (ev.type, ==, MCSEC_ETCD_EVENT_RESYNC);
  g_assert_cmpstr (ev.kv.key, ==, pre);
  g_assert_cmpint (ev.kv.mod_revision, ==, r2);
  mcsec_etcd_event_clear (&ev);
  /* the caller's re-read, then a write at once */
  kvs = mcsec_etcd_get (e, pre, TRUE, FALSE, &read_rev, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kvs->len, ==, 1);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "3"));
  g_assert_cmpint (read_rev, >=, r2);
  g_ptr_array_unref (kvs);
  after = key ("compact", "after");
  r3 = put (e, after, "4", 0);
  /* what follows the re-read comes, after what it already had */
  for (;;) {
    g_assert_true (next_event (w, &ev, 10000));
    g_assert_cmpint (ev.type, ==, MCSEC_ETCD_EVENT_PUT);
    if (ev.kv.mod_revision > read_rev)
      break;
    g_assert_cmpstr (ev.kv.key, ==, a);
    mcsec_etcd_event_clear (&ev);
  }
  g_assert_cmpstr (ev.kv.key, ==, after);
  g_assert_cmpint (ev.kv.mod_revision, ==, r3);
  mcsec_etcd_event_clear (&ev);
  mcsec_etcd_watch_free (w);
  mcsec_etcd_free (e);
  g_free (pre);
  g_free (a);
  g_free (after);
}

/* keys written while the watch's member is killed */
typedef struct {
  const char *test;
  gint written, until; /* atomic: how many keys, how many to write */
  GArray *revs;        /* of gint64: each key's revision */
  GError *error;
} Writer;

/* Creates key-000, key-001, ... each once (create-only, so that a retry
 * after a timeout cannot write it twice), one every 10 ms, keeping each
 * one's revision, until `until` keys are written. */
static gpointer
writer (gpointer data)
{
  Writer *wr = data;
  gchar *eps23 = g_strconcat (ep[2], ",", ep[3], NULL);
  mcsec_etcd_t *e = mcsec_etcd_new (eps23, 1000, &wr->error);
  GBytes *v = b ("v");

  for (gint i = 0; e && i < g_atomic_int_get (&wr->until); i++) {
    gchar *num = g_strdup_printf ("key-%03d", i), *k = key (wr->test, num);
    mcsec_etcd_cmp_t create = {k, MCSEC_ETCD_CMP_CREATE, MCSEC_ETCD_EQUAL, 0};
    mcsec_etcd_op_t op = {MCSEC_ETCD_OP_PUT, k, v, 0, FALSE};
    mcsec_etcd_op_t getk = {MCSEC_ETCD_OP_GET, k, NULL, 0, FALSE};
    gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
    gboolean done = FALSE;

    while (!done && g_get_monotonic_time () < until) {
      GPtrArray *got = NULL;
      gboolean ok = FALSE;
      gint64 rev = 0;
      GError *error = NULL;

      if (mcsec_etcd_txn (e, &create, 1, &op, 1, &getk, 1, &ok, &rev, &got,
                          &error)) {
        if (!ok)
          rev = kv_at (got, 0)->mod_revision;
        g_array_append_val (wr->revs, rev);
        done = TRUE;
      } else {
        g_test_message ("writer, %s: %s", num, error->message);
        g_error_free (error);
      }
      if (got)
        g_ptr_array_unref (got);
    }
    if (!done)
      g_set_error (&wr->error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_UNREACHABLE,
                   "%s not written in 20 s", num);
    g_free (num);
    g_free (k);
    if (!done)
      break;
    g_atomic_int_set (&wr->written, i + 1);
    g_usleep (10000);
  }
  g_bytes_unref (v);
  mcsec_etcd_free (e);
  g_free (eps23);
  return NULL;
}

/* the watch is up on another endpoint than from */
static gboolean
watch_moved (mcsec_etcd_watch_t *w, const char *from)
{
  gchar *up = mcsec_etcd_watch_endpoint (w);
  gboolean moved = up && strcmp (up, from) != 0;
  g_free (up);
  return moved;
}

/* The member the watch is on killed (verb "kill": the stream breaks) or
 * stopped ("stop": the stream goes silent) while keys are written. */
static void
watch_failover (const char *verb)
{
  gchar *test = g_strconcat ("watch-", verb, NULL), *pre = key (test, "");
  Writer wr = {test, 0, G_MAXINT, NULL, NULL};
  mcsec_etcd_watch_t *w;
  GThread *t;
  gchar *up;
  gint killed_at, moved_at;
  gint64 last = 0;

  wr.revs = g_array_new (FALSE, FALSE, sizeof (gint64));
  w = watch (eps, pre, 0);
  up = mcsec_etcd_watch_endpoint (w);
  g_assert_cmpstr (up, ==, ep[1]);
  g_free (up);
  t = g_thread_new ("writer", writer, &wr);
  /* before, during and after the kill of the watch's member */
  WAIT_FOR (g_atomic_int_get (&wr.written) >= 40, 30000);
  member (verb, 1);
  killed_at = g_atomic_int_get (&wr.written);
  WAIT_FOR (watch_moved (w, ep[1]), 20000);
  moved_at = g_atomic_int_get (&wr.written);
  g_atomic_int_set (&wr.until, moved_at + 40);
  g_thread_join (t);
  g_assert_no_error (wr.error);
  g_test_message ("keys written: %d before the %s, %d until the watch "
                  "moved on, %u in all",
                  killed_at, verb, moved_at, wr.revs->len);
  g_assert_cmpuint (wr.revs->len, ==, (guint)moved_at + 40);

  /* every key once, in order, with its revision */
  for (guint n = 0; n < wr.revs->len; n++) {
    gchar *num = g_strdup_printf ("key-%03u", n), *k = key (test, num);
    mcsec_etcd_event_t ev;

    if (!next_event (w, &ev, 10000))
      g_error ("event %u (%s) missing", n, num);
    g_assert_cmpint (ev.type, ==, MCSEC_ETCD_EVENT_PUT);
    g_assert_cmpstr (ev.kv.key, ==, k);
    g_assert_cmpint (ev.kv.mod_revision, ==,
                     g_array_index (wr.revs, gint64, n));
    g_assert_cmpint (ev.kv.mod_revision, >, last);
    last = ev.kv.mod_revision;
    mcsec_etcd_event_clear (&ev);
    g_free (num);
    g_free (k);
  }
  /* nothing more: the next event is a key written now */
  {
    mcsec_etcd_t *e = client (eps, 2000);
    gchar *k = key (test, "zz-last");
    gint64 r = put (e, k, "z", 0);
    expect_event (w, MCSEC_ETCD_EVENT_PUT, k, "z", r);
    mcsec_etcd_free (e);
    g_free (k);
  }
  mcsec_etcd_watch_free (w);
  member (strcmp (verb, "kill") ? "cont" : "restart", 1);
  healthy ();
  g_array_free (wr.revs, TRUE);
  g_free (pre);
  g_free (test);
}

static void
test_watch_failover (void)
{
  watch_failover ("kill");
}

static void
test_watch_silent (void)
{
  watch_failover ("stop");
}

/* ---- a lost quorum, endpoints that fail ---- */

static void
test_quorum (void)
{
  const guint timeout = 1000;
  mcsec_etcd_t *e = client (eps, timeout);
  gchar *k = key ("quorum", "k");
  GError *error = NULL;
  GBytes *v = b ("v");
  gint64 start, took, rev = 0;
  gboolean ok;

  put (e, k, "before", 0);
  member ("kill", 2);
  member ("kill", 3);
  for (int i = 0; i < 3; i++) {
    start = g_get_monotonic_time ();
    ok = mcsec_etcd_put (e, k, v, 0, NULL, &error);
    took = g_get_monotonic_time () - start;
    g_assert_false (ok);
    g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_UNREACHABLE);
    g_test_message ("put %d failed in %.2f s: %s", i, took / 1e6,
                    error->message);
    g_assert_nonnull (strstr (error->message, "quorum"));
    g_assert_nonnull (strstr (error->message, "/v3/kv/put"));
    g_clear_error (&error);
    /* an upper bound on a hang, not a benchmark */
    g_assert_cmpint (took, <, (3 * timeout + 2000) * G_TIME_SPAN_MILLISECOND);
  }
  /* a linearizable read too */
  start = g_get_monotonic_time ();
  g_assert_null (mcsec_etcd_get (e, k, FALSE, FALSE, NULL, &error));
  g_assert_error (error, MCSEC_ETCD_ERROR, MCSEC_ETCD_ERROR_UNREACHABLE);
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - start, <,
                   (3 * timeout + 2000) * G_TIME_SPAN_MILLISECOND);

  member ("restart", 2);
  member ("restart", 3);
  healthy ();
  g_assert_true (mcsec_etcd_put (e, k, v, 0, &rev, &error));
  g_assert_no_error (error);
  g_assert_cmpint (rev, >, 0);
  g_bytes_unref (v);
  mcsec_etcd_free (e);
  g_free (k);
}

static void
test_failover (void)
{
  gchar *k = key ("failover-client", "k");
  gchar *dead_first;
  mcsec_etcd_t *e;
  GPtrArray *kvs;

  /* a port nobody listens on, first */
  dead_first = g_strconcat ("http://127.0.0.1:1,", eps, NULL);
  e = client (dead_first, 1000);
  put (e, k, "1", 0);
  g_assert_cmpstr (mcsec_etcd_endpoint (e), ==, ep[1]);
  mcsec_etcd_free (e);
  g_free (dead_first);

  /* the first member killed: the second one answers (once it has a
   * leader), and is kept */
  member ("kill", 1);
  etcd_lib ("wait_healthy", "2 3");
  e = client (eps, 1000);
  put (e, k, "2", 0);
  g_assert_cmpstr (mcsec_etcd_endpoint (e), ==, ep[2]);
  kvs = get (e, k, FALSE, FALSE);
  g_assert_true (bytes_is (kv_at (kvs, 0)->value, "2"));
  g_ptr_array_unref (kvs);
  g_assert_cmpstr (mcsec_etcd_endpoint (e), ==, ep[2]);
  mcsec_etcd_free (e);
  member ("restart", 1);
  healthy ();

  /* the first member stopped (it hangs): a timeout, then the next one */
  member ("stop", 1);
  etcd_lib ("wait_healthy", "2 3");
  e = client (eps, 500);
  put (e, k, "3", 0);
  g_assert_cmpstr (mcsec_etcd_endpoint (e), !=, ep[1]);
  mcsec_etcd_free (e);
  member ("cont", 1);
  healthy ();
  g_free (k);
}

int
main (int argc, char **argv)
{
  gchar **list;

  g_test_init (&argc, &argv, NULL);
  eps = g_getenv ("ETCD_ENDPOINTS");
  if (!eps || !g_getenv ("ETCD_LIB") || !g_getenv ("ETCD_DIR"))
    g_error ("run me through tests/etcd-client.sh (ETCD_ENDPOINTS, ETCD_LIB "
             "and ETCD_DIR unset)");
  list = g_strsplit (eps, ",", -1);
  g_assert_cmpuint (g_strv_length (list), ==, 3);
  for (int i = 0; i < 3; i++)
    ep[i + 1] = list[i];
  base = g_strdup_printf ("/test-etcd-%d/", (int)getpid ());

  g_test_add_func ("/etcd/bad-endpoints", test_bad_endpoints);
  g_test_add_func ("/etcd/kv", test_kv);
  g_test_add_func ("/etcd/range", test_range);
  g_test_add_func ("/etcd/txn", test_txn);
  g_test_add_func ("/etcd/cas-race", test_cas_race);
  g_test_add_func ("/etcd/lease-keepalive", test_lease_keepalive);
  g_test_add_func ("/etcd/lease-expire", test_lease_expire);
  g_test_add_func ("/etcd/lease-keeper", test_lease_keeper);
  g_test_add_func ("/etcd/watch", test_watch);
  g_test_add_func ("/etcd/watch-until", test_watch_until);
  g_test_add_func ("/etcd/watch-compacted", test_watch_compacted);
  g_test_add_func ("/etcd/watch-failover", test_watch_failover);
  g_test_add_func ("/etcd/watch-silent", test_watch_silent);
  g_test_add_func ("/etcd/quorum", test_quorum);
  g_test_add_func ("/etcd/failover", test_failover);

  {
    int rc = g_test_run ();
    g_free (base);
    g_free (list);
    for (int i = 1; i <= 3; i++)
      g_free (ep[i]);
    return rc;
  }
}
