/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-etcd-store: the controller's durable state in etcd
 * (tools/controller/store-etcd.c, docs/cluster.md "State in etcd")
 * against a real 3-member etcd on loopback, started by
 * tests/etcd-client.sh: optimistic concurrency (a key changed since this
 * store read it is a conflict), fencing by the leader key's revision,
 * values under "sealed/" never in the clear in etcd and bound to their
 * key, the sealed SA's deletion open to any controller (an eviction's),
 * and a write whose outcome is unknown (etcd without quorum): the keys it
 * read must be read again, the sealed ones, written blind, need not.
 */
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/rand.h>

#include "etcd-test-util.h"
#include "store-etcd.h"

static const char *eps;
static gchar *prefix; /* "/test-etcd-store-PID/" */

static GBytes *
b (const char *s)
{
  return str_bytes (s);
}

/* a store on its own client (one per controller), with a cluster key */
static mcsec_ctl_store_t *
store_new (const guint8 *seal_key)
{
  GError *error = NULL;
  mcsec_etcd_t *e = mcsec_etcd_new (eps, 1000, &error);
  mcsec_ctl_store_t *s;

  g_assert_no_error (error);
  s = ctl_etcd_store_new (e, prefix);
  if (seal_key)
    ctl_etcd_store_set_seal_key (s, seal_key);
  return s;
}

static gboolean
put1 (mcsec_ctl_store_t *s, const char *key, const char *value, GError **error)
{
  GBytes *v = value ? b (value) : NULL;
  gboolean ok = s->put (s, &key, &v, 1, error);
  if (v)
    g_bytes_unref (v);
  return ok;
}

static GBytes *
get1 (mcsec_ctl_store_t *s, const char *key)
{
  GError *error = NULL;
  GBytes *v = s->get (s, key, &error);
  g_assert_no_error (error);
  return v;
}

/* the raw value etcd holds under PREFIX key (NULL: none) */
static GBytes *
raw (const char *key)
{
  GError *error = NULL;
  mcsec_etcd_t *e = mcsec_etcd_new (eps, 1000, &error);
  gchar *full = g_strconcat (prefix, key, NULL);
  GPtrArray *kvs = mcsec_etcd_get (e, full, FALSE, FALSE, NULL, &error);
  GBytes *v = NULL;

  g_assert_no_error (error);
  if (kvs->len)
    v = g_bytes_ref (((mcsec_etcd_kv_t *)kvs->pdata[0])->value);
  g_ptr_array_unref (kvs);
  g_free (full);
  mcsec_etcd_free (e);
  return v;
}

/* The leader key of group, created (or replaced) now: its create revision */
static gint64
take_lead (const char *group)
{
  GError *error = NULL;
  mcsec_etcd_t *e = mcsec_etcd_new (eps, 1000, &error);
  gchar *lk = ctl_etcd_leader_key (prefix, group);
  GBytes *v = b ("a controller");
  gint64 rev = 0;

  g_assert_true (mcsec_etcd_delete (e, lk, FALSE, NULL, NULL, &error));
  g_assert_true (mcsec_etcd_put (e, lk, v, 0, &rev, &error));
  g_assert_no_error (error);
  g_bytes_unref (v);
  g_free (lk);
  mcsec_etcd_free (e);
  return rev;
}

/* Two controllers reserve a counter's block: the one whose read is stale
 * gets a conflict, reads again and goes on. */
static void
test_conflict (void)
{
  mcsec_ctl_store_t *a = store_new (NULL), *c = store_new (NULL);
  GError *error = NULL;
  GBytes *v;

  v = get1 (a, "counter/sid");
  g_assert_null (v);
  v = get1 (c, "counter/sid");
  g_assert_null (v);
  g_assert_true (put1 (a, "counter/sid", "1024", &error));
  g_assert_no_error (error);
  /* C read it absent: its put would take the same block */
  g_assert_false (put1 (c, "counter/sid", "1024", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT);
  g_clear_error (&error);
  v = get1 (c, "counter/sid");
  g_assert_true (bytes_is (v, "1024"));
  g_bytes_unref (v);
  g_assert_true (put1 (c, "counter/sid", "2048", &error));
  g_assert_no_error (error);
  /* and now A's read is stale */
  g_assert_false (put1 (a, "counter/sid", "2048", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT);
  g_clear_error (&error);
  a->free (a);
  c->free (c);
}

/* A group's state is written by its leader only, under the leader key it
 * created: another controller, or the leader once its key was replaced, is
 * fenced; nothing it wrote lands. */
static void
test_fence (void)
{
  mcsec_ctl_store_t *a = store_new (NULL), *c = store_new (NULL);
  GError *error = NULL;
  GBytes *v;

  ctl_etcd_store_set_fence (a, "g1", take_lead ("g1"));
  g_assert_true (put1 (a, "spis/g1", "one", &error));
  g_assert_no_error (error);
  g_assert_false (put1 (c, "spis/g1", "two", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED);
  g_clear_error (&error);
  /* another controller leads now (a new leader key) */
  take_lead ("g1");
  g_assert_false (put1 (a, "spis/g1", "three", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED);
  g_clear_error (&error);
  v = raw ("spis/g1");
  g_assert_true (bytes_is (v, "one"));
  g_bytes_unref (v);
  a->free (a);
  c->free (c);
}

/* Values under sealed/ reach etcd sealed under the cluster key, bound to
 * their key: another cluster key does not open them, nor the same bytes
 * under another key; a store without a cluster key writes none. */
static void
test_sealed (void)
{
  guint8 k1[CTL_SEAL_KEY_LEN], k2[CTL_SEAL_KEY_LEN];
  const char *secret = "an SA key: 0123456789abcdef";
  mcsec_ctl_store_t *a, *other, *plain;
  GError *error = NULL;
  GBytes *v, *w;
  gsize len = 0;
  const guint8 *d;
  const char *moved = "sealed/sa/g3";

  g_assert_cmpint (RAND_bytes (k1, sizeof k1), ==, 1);
  g_assert_cmpint (RAND_bytes (k2, sizeof k2), ==, 1);
  a = store_new (k1);
  other = store_new (k2);
  plain = store_new (NULL);
  g_assert_true (ctl_etcd_store_seals (a));
  g_assert_false (ctl_etcd_store_seals (plain));
  ctl_etcd_store_set_fence (a, "g2", take_lead ("g2"));
  g_assert_true (put1 (a, "sealed/sa/g2", secret, &error));
  g_assert_no_error (error);
  v = raw ("sealed/sa/g2");
  d = g_bytes_get_data (v, &len);
  g_assert_nonnull (v);
  g_assert_cmpuint (len, >, strlen (secret));
  g_assert_null (memmem (d, len, secret, strlen (secret)));
  g_assert_null (memmem (d, len, "0123456789abcdef", 16));
  w = get1 (a, "sealed/sa/g2");
  g_assert_true (bytes_is (w, secret));
  g_bytes_unref (w);
  /* another cluster key */
  g_assert_null (other->get (other, "sealed/sa/g2", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "does not open"));
  g_clear_error (&error);
  /* the same bytes under another key */
  {
    mcsec_etcd_t *e = mcsec_etcd_new (eps, 1000, &error);
    gchar *full = g_strconcat (prefix, moved, NULL);
    g_assert_true (mcsec_etcd_put (e, full, v, 0, NULL, &error));
    g_free (full);
    mcsec_etcd_free (e);
  }
  g_assert_null (a->get (a, moved, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_bytes_unref (v);
  /* no cluster key: nothing written */
  ctl_etcd_store_set_fence (plain, "g4", take_lead ("g4"));
  g_assert_false (put1 (plain, "sealed/sa/g4", secret, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_null (raw ("sealed/sa/g4"));
  a->free (a);
  other->free (other);
  plain->free (plain);
}

/* The sealed SA's deletion is not fenced (an eviction at any controller
 * deletes it: at worst the next leader makes a new SA); its writing is. */
static void
test_sealed_delete (void)
{
  guint8 k[CTL_SEAL_KEY_LEN];
  mcsec_ctl_store_t *leader, *any;
  GError *error = NULL;

  g_assert_cmpint (RAND_bytes (k, sizeof k), ==, 1);
  leader = store_new (k);
  any = store_new (k);
  ctl_etcd_store_set_fence (leader, "g5", take_lead ("g5"));
  g_assert_true (put1 (leader, "sealed/sa/g5", "the SA", &error));
  g_assert_no_error (error);
  g_assert_false (put1 (any, "sealed/sa/g5", "another SA", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED);
  g_clear_error (&error);
  g_assert_true (put1 (any, "sealed/sa/g5", NULL, &error));
  g_assert_no_error (error);
  g_assert_null (raw ("sealed/sa/g5"));
  /* and still only its leader writes the group's other state */
  g_assert_false (put1 (any, "spis/g5", NULL, &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_FENCED);
  g_clear_error (&error);
  leader->free (leader);
  any->free (any);
}

/* get_many: one range read in pages, sealed values opened; keys of
 * the range not asked for are passed over, one asked for and absent is
 * NULL; a value that does not open is an error and nothing is returned. */
static void
test_get_many (void)
{
  guint8 k[CTL_SEAL_KEY_LEN];
  mcsec_ctl_store_t *s;
  GError *error = NULL;
  gchar *keys[80], *asked[80];
  GBytes *values[80];
  guint n = 0, n_asked = 0;

  g_assert_cmpint (RAND_bytes (k, sizeof k), ==, 1);
  s = store_new (k);
  g_assert_nonnull (s->get_many);
  ctl_etcd_store_set_fence (s, "tv", take_lead ("tv"));
  for (guint i = 0; i < 70; i++)
    keys[n++] = g_strdup_printf ("sealed/tree/tv/%02u", i);
  for (guint i = 0; i < n; i += 10) {
    GBytes *v[10];
    for (guint j = 0; j < 10; j++)
      v[j] = str_bytes (keys[i + j] + strlen ("sealed/tree/tv/"));
    g_assert_true (s->put (s, (const char *const *)keys + i, v, 10, &error));
    g_assert_no_error (error);
    for (guint j = 0; j < 10; j++)
      g_bytes_unref (v[j]);
  }
  /* all but 33 and 34, and 50a (absent) */
  for (guint i = 0; i < n; i++) {
    if (i == 33 || i == 34)
      continue;
    asked[n_asked++] = keys[i];
    if (i == 50)
      asked[n_asked++] = (gchar *)"sealed/tree/tv/50a";
  }
  g_assert_true (
      s->get_many (s, (const char *const *)asked, n_asked, values, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < n_asked; i++) {
    if (strcmp (asked[i], "sealed/tree/tv/50a") == 0) {
      g_assert_null (values[i]);
      continue;
    }
    g_assert_nonnull (values[i]);
    g_assert_true (bytes_is (values[i], asked[i] + strlen ("sealed/tree/tv/")));
    g_bytes_unref (values[i]);
  }
  /* entry 40's sealed bytes under 41: bound to their key, they do not open */
  {
    mcsec_etcd_t *e = mcsec_etcd_new (eps, 1000, &error);
    GBytes *v = raw (keys[40]);
    gchar *full = g_strconcat (prefix, keys[41], NULL);
    g_assert_true (mcsec_etcd_put (e, full, v, 0, NULL, &error));
    g_bytes_unref (v);
    g_free (full);
    mcsec_etcd_free (e);
  }
  g_assert_false (
      s->get_many (s, (const char *const *)keys, n, values, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "does not open"));
  g_clear_error (&error);
  for (guint i = 0; i < n; i++)
    g_assert_null (values[i]);
  for (guint i = 0; i < n; i++)
    g_free (keys[i]);
  s->free (s);
}

/* A write whose outcome is unknown (no quorum): a key the store read must
 * be read again before it is written (the write may have landed); a
 * sealed key, written blind, is not held up (a rekey is never blocked by
 * one timeout). */
static void
test_unknown_outcome (void)
{
  guint8 k[CTL_SEAL_KEY_LEN];
  mcsec_ctl_store_t *s;
  GError *error = NULL;
  GBytes *keys_v[2];
  const char *keys[2] = {"counter/seq", "sealed/sa/g6"};
  GBytes *v;

  g_assert_cmpint (RAND_bytes (k, sizeof k), ==, 1);
  s = store_new (k);
  ctl_etcd_store_set_fence (s, "g6", take_lead ("g6"));
  g_assert_null (get1 (s, "counter/seq"));
  etcd_lib ("kill", "2");
  etcd_lib ("kill", "3");
  keys_v[0] = b ("4096");
  keys_v[1] = b ("SA one");
  g_assert_false (s->put (s, keys, keys_v, 2, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_bytes_unref (keys_v[0]);
  g_bytes_unref (keys_v[1]);
  etcd_lib ("restart", "2");
  etcd_lib ("restart", "3");
  etcd_lib ("wait_healthy", NULL);
  /* the counter: read it again first */
  g_assert_false (put1 (s, "counter/seq", "4096", &error));
  g_assert_error (error, MCSEC_CTL_STORE_ERROR, MCSEC_CTL_STORE_ERROR_CONFLICT);
  g_assert_nonnull (strstr (error->message, "read it again"));
  g_clear_error (&error);
  /* the sealed SA: written at once */
  g_assert_true (put1 (s, "sealed/sa/g6", "SA two", &error));
  g_assert_no_error (error);
  v = get1 (s, "sealed/sa/g6");
  g_assert_true (bytes_is (v, "SA two"));
  g_bytes_unref (v);
  /* it may have landed or not (etcd's leader, if member 1, logged it and
   * commits it once the quorum is back): read, then written */
  v = get1 (s, "counter/seq");
  g_assert_true (v == NULL || bytes_is (v, "4096"));
  if (v)
    g_bytes_unref (v);
  g_assert_true (put1 (s, "counter/seq", "8192", &error));
  g_assert_no_error (error);
  s->free (s);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  eps = g_getenv ("ETCD_ENDPOINTS");
  if (!eps || !g_getenv ("ETCD_LIB") || !g_getenv ("ETCD_DIR"))
    g_error ("run me through tests/etcd-client.sh (ETCD_ENDPOINTS, ETCD_LIB "
             "and ETCD_DIR unset)");
  prefix = g_strdup_printf ("/test-etcd-store-%d/", (int)getpid ());
  g_test_add_func ("/etcd-store/conflict", test_conflict);
  g_test_add_func ("/etcd-store/fence", test_fence);
  g_test_add_func ("/etcd-store/sealed", test_sealed);
  g_test_add_func ("/etcd-store/sealed-delete", test_sealed_delete);
  g_test_add_func ("/etcd-store/get-many", test_get_many);
  g_test_add_func ("/etcd-store/unknown-outcome", test_unknown_outcome);
  rc = g_test_run ();
  g_free (prefix);
  return rc;
}
