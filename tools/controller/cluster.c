/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One controller of a cluster (cluster.h, docs/cluster.md "Leaders").
 *
 * A group's leader key PREFIX/leader/GROUP holds "NAME ADVERTISE" under the
 * leader's lease.  A controller campaigns (create the key if it does not
 * exist) when it sees no leader; with a `controllers` list, each group has
 * an order of preference (rendezvous hashing of name and group) and a
 * controller waits RANK_DELAY_MS per rank before it campaigns, so groups
 * that need a leader while all are up spread over the controllers.  Each
 * controller also keeps PREFIX/controller/NAME (its ADVERTISE) under its
 * lease: a leader hands a group over to a better placed controller once
 * that one has been up for HANDOFF_SETTLE_MS (rebalancing, one group per
 * HANDOFF_INTERVAL_MS), so a controller that starts late takes its share
 * back.  The key disappears when the lease
 * ends (the leader died, or was stopped past its TTL): the watch tells the
 * others, who campaign.  The leader itself stops issuing at the lease's
 * deadline, measured from when it sent the keepalive that etcd answered
 * (the core checks it on every call: mcsec_ctl_set_lease_deadline), and
 * its writes of the group's state compare the leader key's revision
 * (store-etcd.c): a leader that lost its lease issues nothing more.
 */
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cluster.h"
#include "etcd.h"
#include "relay.h"
#include "seal.h"
#include "store-etcd.h"

#define RANK_DELAY_MS 300
#define RETRY_MS 1000           /* a campaign or a lease that failed */
#define LEASE_MARGIN_MS 200     /* the deadline before etcd's */
#define HANDOFF_SETTLE_MS 5000  /* a controller up this long takes groups */
#define HANDOFF_BOUNCE_MS 10000 /* back within this: it bounced */
#define HANDOFF_HELD_MS 2000    /* held less by the other: it did not take it */
#define HANDOFF_QUIET_MS 30000  /* then no handoff of it for this long */
#define HANDOFF_QUIET_MAX_MS (30 * 60000) /* doubling up to this */
#define HANDOFF_INTERVAL_MS 50            /* between two groups handed over */

/* Another controller that is up (its presence key exists). */
typedef struct {
  gchar *advertise;
  gint64 since; /* when we saw it come */
} Peer;

typedef struct {
  mcsec_ctl_group_t *g;
  const char *name;
  gchar *key;
  gint64 my_rev;   /* the create revision of our leader key: we lead */
  gint64 seen_rev; /* the newest revision applied: older events are stale */
  gboolean has_leader;
  gchar *leader; /* its ADVERTISE */
  gint64 campaign_due;
  guint rank;
  /* rebalancing: when we last handed it over, when another controller's
   * leader key for it appeared, and (when it came back to us within
   * seconds, the other having held it less than HANDOFF_HELD_MS: it did
   * not take it, e.g. it cannot read the state) until when we do not hand
   * it over again; the quiet time doubles */
  gint64 handed_at, taken_at, handoff_quiet_until, handoff_quiet_ms;
} Election;

struct _CtlCluster {
  const CtlConfig *cfg;
  guint8 relay_key[CTL_RELAY_KEY_LEN]; /* derived from the cluster key */
  gboolean has_relay_key;
  void (*log) (const char *event, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
  mcsec_ctl_store_t *store;
  mcsec_etcd_t *etcd; /* the store's client, this thread's */
  mcsec_etcd_lease_t *lease;
  mcsec_etcd_watch_t *watch;
  mcsec_ctl_t *core;
  GPtrArray *elections; /* Election, in the core's group order */
  gchar *value;         /* "NAME ADVERTISE" */
  gboolean available;
  gint64 lease_retry_due;
  gint64 evictions_rev; /* eviction events up to it are in the last read */
  gchar *presence_key;  /* PREFIX/controller/NAME */
  gboolean present;     /* it is under the current lease */
  GHashTable *peers;    /* name -> Peer: the controllers up, us excepted */
  gint64 handoff_due;
  guint64 campaigns, won, lost_leases, watch_events, handoffs;
};

/* The lease's deadline in the core's clock (0: none). */
static gint64
lease_deadline (CtlCluster *cl)
{
  gint64 until = cl->lease ? mcsec_etcd_lease_valid_until (cl->lease) : 0;
  return until ? until / 1000 - LEASE_MARGIN_MS : 0;
}

static void
peer_free (gpointer p)
{
  Peer *peer = p;
  g_free (peer->advertise);
  g_free (peer);
}

static void
election_free (Election *e)
{
  g_free (e->key);
  g_free (e->leader);
  g_free (e);
}

/* A well-mixed 64-bit hash of "controller/group" (SHA-256's first bytes:
 * g_str_hash ranked names of one length alike, so groups did not spread). */
static guint64
pref_hash (const char *controller, const char *group)
{
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 d[32];
  gsize len = sizeof d;
  guint64 h = 0;

  g_checksum_update (c, (const guchar *)controller, -1);
  g_checksum_update (c, (const guchar *)"/", 1);
  g_checksum_update (c, (const guchar *)group, -1);
  g_checksum_get_digest (c, d, &len);
  g_checksum_free (c);
  for (guint i = 0; i < 8; i++)
    h = h << 8 | d[i];
  return h;
}

/* The group's order of preference: rank among the configured controllers
 * by the hash of (controller, group), highest first (rendezvous hashing:
 * a controller's death moves only its own groups). */
static guint
rank_of (const CtlConfig *cfg, const char *group)
{
  guint rank = 0;
  guint64 mine;

  if (cfg->controllers == NULL)
    return 0;
  mine = pref_hash (cfg->cluster_name, group);
  for (guint i = 0; cfg->controllers[i]; i++) {
    guint64 h;
    if (strcmp (cfg->controllers[i], cfg->cluster_name) == 0)
      continue;
    h = pref_hash (cfg->controllers[i], group);
    if (h > mine ||
        (h == mine && strcmp (cfg->controllers[i], cfg->cluster_name) < 0))
      rank++;
  }
  return rank;
}

static gboolean
check_tls_files (const CtlConfig *cfg, GError **error)
{
  return (!cfg->etcd_ca || ctl_config_check_file (cfg, "cluster", "etcd-ca",
                                                  cfg->etcd_ca, error)) &&
         (!cfg->etcd_certificate ||
          (ctl_config_check_file (cfg, "cluster", "etcd-certificate",
                                  cfg->etcd_certificate, error) &&
           ctl_config_check_file (cfg, "cluster", "etcd-private-key",
                                  cfg->etcd_private_key, error)));
}

static gboolean read_cluster_key (const CtlConfig *cfg, guint8 key[32],
                                  GError **error);

gboolean
ctl_cluster_check_files (const CtlConfig *cfg, GError **error)
{
  guint8 key[32];
  gboolean ok;

  if (!check_tls_files (cfg, error))
    return FALSE;
  if (cfg->cluster_key == NULL)
    return TRUE;
  ok = read_cluster_key (cfg, key, error);
  OPENSSL_cleanse (key, sizeof key);
  return ok;
}

CtlCluster *
ctl_cluster_new (const CtlConfig *cfg,
                 void (*log) (const char *event, const char *fmt, ...),
                 GError **error)
{
  CtlCluster *cl = g_new0 (CtlCluster, 1);
  mcsec_etcd_t *etcd;

  cl->cfg = cfg;
  cl->log = log;
  cl->elections =
      g_ptr_array_new_with_free_func ((GDestroyNotify)election_free);
  cl->value = g_strdup_printf ("%s %s", cfg->cluster_name, cfg->advertise);
  cl->presence_key =
      g_strconcat (cfg->etcd_prefix, "controller/", cfg->cluster_name, NULL);
  cl->peers =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, peer_free);
  /* before any handle: each takes the TLS settings when it is made */
  if (!check_tls_files (cfg, error) ||
      !mcsec_etcd_set_tls (cfg->etcd_ca, cfg->etcd_certificate,
                           cfg->etcd_private_key, error))
    goto fail;
  etcd = mcsec_etcd_new (cfg->etcd, cfg->etcd_timeout_ms, error);
  if (etcd == NULL)
    goto fail;
  cl->etcd = etcd;
  cl->store = ctl_etcd_store_new (etcd, cfg->etcd_prefix);
  cl->lease = mcsec_etcd_lease_new (cfg->etcd, cfg->lease_s, error);
  if (cl->lease == NULL)
    goto fail;
  return cl;

fail:
  ctl_cluster_free (cl);
  return NULL;
}

gboolean
ctl_cluster_relay_key (CtlCluster *cl, guint8 key[32])
{
  if (!cl->has_relay_key)
    return FALSE;
  memcpy (key, cl->relay_key, CTL_RELAY_KEY_LEN);
  return TRUE;
}

/* ---- the update-signing key, sealed in etcd under the cluster key ---- */

#define SIGNING_KEY_LEN 32 /* Ed25519's raw private key */

gboolean
ctl_cluster_key_parse (gchar *text, guint8 key[32])
{
  const gchar *hex = g_strstrip (text);
  gboolean ok = strlen (hex) == 64;

  for (guint i = 0; i < 32 && ok; i++) {
    int hi = g_ascii_xdigit_value (hex[2 * i]);
    int lo = g_ascii_xdigit_value (hex[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    key[i] = (guint8)(hi << 4 | lo);
  }
  if (!ok)
    OPENSSL_cleanse (key, 32);
  return ok;
}

/* The cluster key: 64 hex digits in a file only its owner can read. */
static gboolean
read_cluster_key (const CtlConfig *cfg, guint8 key[32], GError **error)
{
  gchar *text = NULL;
  gsize len = 0;
  struct stat st;
  GError *err = NULL;
  gboolean ok = FALSE;

  if (!ctl_config_check_file (cfg, "cluster", "cluster-key", cfg->cluster_key,
                              error))
    return FALSE;
  if (stat (cfg->cluster_key, &st) == 0 && (st.st_mode & 077)) {
    ctl_config_error (cfg, error, "cluster", "cluster-key",
                      "%s is readable by others (chmod 600 it)",
                      cfg->cluster_key);
    return FALSE;
  }
  if (!g_file_get_contents (cfg->cluster_key, &text, &len, &err)) {
    ctl_config_error (cfg, error, "cluster", "cluster-key", "%s", err->message);
    g_error_free (err);
    return FALSE;
  }
  ok = ctl_cluster_key_parse (text, key);
  OPENSSL_cleanse (text, len);
  g_free (text);
  if (!ok) {
    ctl_config_error (cfg, error, "cluster", "cluster-key",
                      "%s does not hold 64 hex digits (make one with "
                      "`openssl rand -hex 32`)",
                      cfg->cluster_key);
  }
  return ok;
}

gboolean
ctl_cluster_signing_key (CtlCluster *cl, EVP_PKEY **key, GError **error)
{
  const CtlConfig *cfg = cl->cfg;
  gchar *name = g_strconcat (cfg->etcd_prefix, "secret/signing-key", NULL);
  gchar *aad = g_strconcat ("mcsec cluster signing-key ", name, NULL);
  guint8 ck[32], mine[SIGNING_KEY_LEN], theirs[SIGNING_KEY_LEN];
  gsize mine_len = sizeof mine;
  gboolean ok = FALSE;
  GError *err = NULL;

  if (cfg->cluster_key == NULL) {
    ok = TRUE; /* each controller's own file (the same one, docs) */
    goto out_plain;
  }
  if (!read_cluster_key (cfg, ck, error))
    goto out_plain;
  /* the store seals the groups' SAs with it too (docs/cluster.md); the
   * relay links prove a key derived from it */
  ctl_etcd_store_set_seal_key (cl->store, ck);
  cl->has_relay_key = ctl_relay_key (ck, cl->relay_key);
  if (*key && EVP_PKEY_get_raw_private_key (*key, mine, &mine_len) != 1) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "[controller] %s: not an Ed25519 private key",
                 cfg->update_signing_key_setting);
    goto out;
  }
  for (guint attempt = 0; attempt < 2; attempt++) {
    GPtrArray *kvs = mcsec_etcd_get (cl->etcd, name, FALSE, FALSE, NULL, &err);
    mcsec_etcd_kv_t *kv = kvs && kvs->len ? kvs->pdata[0] : NULL;
    gsize len = 0;
    const guint8 *v =
        kv && kv->value ? g_bytes_get_data (kv->value, &len) : NULL;

    if (kvs == NULL) {
      g_propagate_prefixed_error (error, err, "[cluster] etcd: ");
      goto out;
    }
    if (kv) {
      gsize n = 0;
      guint8 *opened = v ? ctl_open (ck, aad, v, len, &n) : NULL;
      if (opened && n == SIGNING_KEY_LEN)
        memcpy (theirs, opened, SIGNING_KEY_LEN);
      if (opened) {
        OPENSSL_cleanse (opened, n);
        g_free (opened);
      }
      g_ptr_array_unref (kvs);
      if (!opened || n != SIGNING_KEY_LEN) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                     "[cluster] cluster-key: it does not open the cluster's "
                     "signing key in etcd (another cluster key?)");
        goto out;
      }
      if (*key && CRYPTO_memcmp (mine, theirs, SIGNING_KEY_LEN) != 0) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                     "[controller] %s: not the cluster's signing "
                     "key (members would reject this controller's updates): "
                     "use the same key, or leave the setting out",
                     cfg->update_signing_key_setting);
        goto out;
      }
      if (*key == NULL) {
        *key = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, theirs,
                                             SIGNING_KEY_LEN);
        if (*key == NULL) {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "the cluster's signing key is not usable");
          goto out;
        }
      }
      cl->log ("signing-key", "from=etcd sealed=aes-256-gcm");
      ok = TRUE;
      goto out;
    }
    g_ptr_array_unref (kvs);
    if (*key == NULL) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "[controller] %s: missing, and etcd holds no "
                   "update-signing key yet (the cluster's first controller "
                   "needs one)",
                   cfg->update_signing_key_setting);
      goto out;
    }
    /* the first controller: seal ours, unless another was faster */
    {
      GBytes *b = ctl_seal (ck, aad, mine, SIGNING_KEY_LEN);
      if (b == NULL) {
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                     "cannot seal the signing key");
        goto out;
      }
      mcsec_etcd_cmp_t cmp = {name, MCSEC_ETCD_CMP_CREATE, MCSEC_ETCD_EQUAL, 0,
                              NULL};
      mcsec_etcd_op_t put = {MCSEC_ETCD_OP_PUT, name, b, 0, FALSE};
      gboolean done = FALSE;
      gboolean sent = mcsec_etcd_txn (cl->etcd, &cmp, 1, &put, 1, NULL, 0,
                                      &done, NULL, NULL, &err);
      g_bytes_unref (b);
      if (!sent) {
        g_propagate_prefixed_error (error, err, "[cluster] etcd: ");
        goto out;
      }
      if (done) {
        cl->log ("signing-key", "to=etcd sealed=aes-256-gcm");
        ok = TRUE;
        goto out;
      }
    }
    /* someone sealed one meanwhile: read it (and compare) */
  }
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
               "[cluster] etcd: the signing key keeps changing");
out:
  OPENSSL_cleanse (ck, sizeof ck);
  OPENSSL_cleanse (mine, sizeof mine);
  OPENSSL_cleanse (theirs, sizeof theirs);
out_plain:
  if (ok && *key == NULL) {
    ok = FALSE;
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "[controller] %s: missing (required)",
                 cfg->update_signing_key_setting);
  }
  g_free (aad);
  g_free (name);
  return ok;
}

mcsec_ctl_store_t *
ctl_cluster_store (CtlCluster *cl)
{
  return cl->store;
}

int
ctl_cluster_watch_fd (CtlCluster *cl)
{
  return cl->watch ? mcsec_etcd_watch_fd (cl->watch) : -1;
}

int
ctl_cluster_lease_fd (CtlCluster *cl)
{
  return cl->lease ? mcsec_etcd_lease_fd (cl->lease) : -1;
}

static void
set_fence (CtlCluster *cl, Election *e, gint64 rev)
{
  e->my_rev = rev;
  ctl_etcd_store_set_fence (cl->store, e->name, rev);
}

/* Someone else leads (leader: its ADVERTISE), or nobody is known. */
static void
follow (CtlCluster *cl, Election *e, const char *leader, gint64 now)
{
  set_fence (cl, e, 0);
  e->has_leader = leader != NULL;
  if (g_strcmp0 (e->leader, leader) != 0) {
    g_free (e->leader);
    e->leader = g_strdup (leader);
  }
  mcsec_ctl_group_follow (e->g, leader, !cl->available, now);
  if (!e->has_leader)
    e->campaign_due = now + (gint64)e->rank * RANK_DELAY_MS;
}

/* A leader key's value "NAME ADVERTISE": the advertised address. */
static const char *
value_address (GBytes *v, gchar **owned)
{
  gsize len = 0;
  const char *d = v ? g_bytes_get_data (v, &len) : NULL;
  gchar *s = d ? g_strndup (d, len) : g_strdup ("");
  gchar *sp = strchr (s, ' ');
  *owned = s;
  return sp ? sp + 1 : "unknown";
}

/* Give a group up: our leader key deleted if it is still the one we made
 * (best effort: otherwise it goes with the lease), and no leader known. */
static void
resign (CtlCluster *cl, Election *e, gint64 rev, gint64 now)
{
  mcsec_etcd_cmp_t mine = {e->key, MCSEC_ETCD_CMP_CREATE, MCSEC_ETCD_EQUAL, rev,
                           NULL};
  mcsec_etcd_op_t del = {MCSEC_ETCD_OP_DELETE, e->key, NULL, 0, FALSE};
  gboolean done;
  GError *err = NULL;

  if (rev && !mcsec_etcd_txn (cl->etcd, &mine, 1, &del, 1, NULL, 0, &done, NULL,
                              NULL, &err))
    g_clear_error (&err);
  follow (cl, e, NULL, now);
}

/* Our leader key exists (a campaign won, or one that timed out although
 * etcd applied it): lead the group, or give it up when we cannot. */
static void
adopt (CtlCluster *cl, Election *e, gint64 create_revision, gint64 now)
{
  GError *err = NULL;

  set_fence (cl, e, create_revision);
  e->has_leader = TRUE;
  g_free (e->leader);
  e->leader = g_strdup (cl->cfg->advertise);
  /* the lease may have moved on during the calls before this one */
  mcsec_ctl_set_lease_deadline (cl->core, lease_deadline (cl));
  if (mcsec_ctl_group_leading (e->g))
    return;
  if (e->handed_at && now - e->handed_at < HANDOFF_BOUNCE_MS &&
      (e->taken_at == 0 || now - e->taken_at < HANDOFF_HELD_MS)) {
    /* handed over and back within seconds without anyone else taking it:
     * the controller it went to did not; no handoff of it for a while,
     * longer each time */
    e->handoff_quiet_ms = MIN (MAX (e->handoff_quiet_ms * 2, HANDOFF_QUIET_MS),
                               HANDOFF_QUIET_MAX_MS);
    e->handoff_quiet_until = now + e->handoff_quiet_ms;
    cl->log ("handoff-bounced", "group=%s quiet-ms=%" G_GINT64_FORMAT, e->name,
             e->handoff_quiet_ms);
  }
  e->handed_at = e->taken_at = 0;
  if (!mcsec_ctl_group_lead (e->g, now, g_get_real_time (), &err)) {
    /* cannot read the group's state: let another controller try */
    cl->log ("lead-failed", "group=%s error=\"%s\"", e->name, err->message);
    g_clear_error (&err);
    resign (cl, e, create_revision, now);
    e->campaign_due = now + RETRY_MS;
    return;
  }
  cl->won++;
}

static gboolean
ours (CtlCluster *cl, const mcsec_etcd_kv_t *kv)
{
  return cl->lease && kv->lease && kv->lease == mcsec_etcd_lease_id (cl->lease);
}

static void
campaign (CtlCluster *cl, Election *e, gint64 now)
{
  mcsec_etcd_cmp_t cmp = {0};
  mcsec_etcd_op_t put = {0}, get = {0};
  GBytes *v = g_bytes_new (cl->value, strlen (cl->value));
  GPtrArray *got = NULL;
  gboolean won = FALSE;
  gint64 rev = 0;
  GError *err = NULL;

  cl->campaigns++;
  cmp.key = e->key;
  cmp.target = MCSEC_ETCD_CMP_CREATE;
  cmp.result = MCSEC_ETCD_EQUAL;
  cmp.number = 0;
  put.type = MCSEC_ETCD_OP_PUT;
  put.key = e->key;
  put.value = v;
  put.lease = mcsec_etcd_lease_id (cl->lease);
  get.type = MCSEC_ETCD_OP_GET;
  get.key = e->key;
  if (!mcsec_etcd_txn (cl->etcd, &cmp, 1, &put, 1, &get, 1, &won, &rev, &got,
                       &err)) {
    cl->log ("campaign-failed", "group=%s error=\"%s\"", e->name, err->message);
    g_error_free (err);
    e->campaign_due = now + RETRY_MS;
    goto out;
  }
  if (!won && got && got->len && ours (cl, got->pdata[0])) {
    /* ours already (an earlier attempt that timed out was applied) */
    won = TRUE;
    rev = ((mcsec_etcd_kv_t *)got->pdata[0])->create_revision;
  }
  e->seen_rev = MAX (e->seen_rev, rev);
  if (won) {
    adopt (cl, e, rev, now);
  } else if (got && got->len) {
    mcsec_etcd_kv_t *kv = got->pdata[0];
    gchar *owned;
    follow (cl, e, value_address (kv->value, &owned), now);
    g_free (owned);
  } else {
    /* gone between the compare and the get: try again soon */
    e->campaign_due = now + RANK_DELAY_MS;
  }
out:
  if (got)
    g_ptr_array_unref (got);
  g_bytes_unref (v);
}

static void
on_leader_event (CtlCluster *cl, Election *e, const mcsec_etcd_event_t *ev,
                 gint64 now)
{
  if (ev->kv.mod_revision && ev->kv.mod_revision < e->seen_rev)
    return; /* older than what we know (our campaign read past it) */
  e->seen_rev = MAX (e->seen_rev, ev->kv.mod_revision);
  if (ev->type == MCSEC_ETCD_EVENT_PUT) {
    gchar *owned;
    if (e->my_rev && ev->kv.create_revision == e->my_rev)
      return; /* ours */
    if (ours (cl, &ev->kv)) {
      /* a campaign of ours etcd applied though we did not hear back */
      adopt (cl, e, ev->kv.create_revision, now);
      return;
    }
    if (e->handed_at && e->taken_at == 0)
      e->taken_at = now; /* another controller took it (for how long?) */
    follow (cl, e, value_address (ev->kv.value, &owned), now);
    g_free (owned);
    return;
  }
  /* DELETE: the leader's lease ended (ours too, maybe) */
  if (e->my_rev)
    cl->log ("leader-key-gone", "group=%s", e->name);
  follow (cl, e, NULL, now);
}

static void
on_eviction_event (CtlCluster *cl, const char *rest,
                   const mcsec_etcd_event_t *ev, gint64 now)
{
  const char *slash = strchr (rest, '/');
  gchar *eg, *group, *id;

  if (slash == NULL)
    return;
  eg = g_strndup (rest, slash - rest);
  group = g_uri_unescape_string (eg, NULL);
  id = g_uri_unescape_string (slash + 1, NULL);
  if (group && id)
    mcsec_ctl_eviction_changed (cl->core, group, id,
                                ev->type == MCSEC_ETCD_EVENT_PUT, now);
  g_free (eg);
  g_free (group);
  g_free (id);
}

/* Read every leader key again (at the start, and when the watch lost
 * events): PUTs for those present, no leader for the others. */
static gboolean
read_leaders (CtlCluster *cl, gint64 now, gint64 *revision, GError **error)
{
  gchar *prefix = g_strconcat (cl->cfg->etcd_prefix, "leader/", NULL);
  GPtrArray *kvs =
      mcsec_etcd_get (cl->etcd, prefix, TRUE, FALSE, revision, error);
  GHashTable *seen = g_hash_table_new (NULL, NULL);

  g_free (prefix);
  if (kvs == NULL) {
    g_hash_table_unref (seen);
    return FALSE;
  }
  for (guint i = 0; i < kvs->len; i++) {
    mcsec_etcd_kv_t *kv = kvs->pdata[i];
    for (guint k = 0; k < cl->elections->len; k++) {
      Election *e = cl->elections->pdata[k];
      mcsec_etcd_event_t ev = {MCSEC_ETCD_EVENT_PUT, *kv};
      if (strcmp (e->key, kv->key) == 0) {
        g_hash_table_add (seen, e);
        on_leader_event (cl, e, &ev, now);
      }
    }
  }
  for (guint k = 0; k < cl->elections->len; k++) {
    Election *e = cl->elections->pdata[k];
    if (!g_hash_table_contains (seen, e) && (e->has_leader || e->my_rev))
      follow (cl, e, NULL, now);
    /* events up to the read's revision are in it already */
    if (revision)
      e->seen_rev = MAX (e->seen_rev, *revision);
  }
  g_ptr_array_unref (kvs);
  g_hash_table_unref (seen);
  return TRUE;
}

/* Every eviction recorded, for every group (at the start, and after watch
 * events were lost): the core's sets become exactly these; later events
 * up to the read's revision are skipped. */
static gboolean
read_evictions (CtlCluster *cl, gint64 now, GError **error)
{
  gchar *prefix = g_strconcat (cl->cfg->etcd_prefix, "evicted/", NULL);
  gint64 rev = 0;
  GPtrArray *kvs = mcsec_etcd_get (cl->etcd, prefix, TRUE, TRUE, &rev, error);
  gsize plen = strlen (prefix);
  GHashTable *by_group;

  g_free (prefix);
  if (kvs == NULL)
    return FALSE;
  by_group = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)g_ptr_array_unref);
  for (guint i = 0; i < kvs->len; i++) {
    const char *rest = ((mcsec_etcd_kv_t *)kvs->pdata[i])->key + plen;
    const char *slash = strchr (rest, '/');
    gchar *eg, *group, *id;
    GPtrArray *ids;
    if (slash == NULL)
      continue;
    eg = g_strndup (rest, slash - rest);
    group = g_uri_unescape_string (eg, NULL);
    id = g_uri_unescape_string (slash + 1, NULL);
    g_free (eg);
    if (group == NULL || id == NULL) {
      g_free (group);
      g_free (id);
      continue;
    }
    ids = g_hash_table_lookup (by_group, group);
    if (ids == NULL) {
      ids = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (by_group, g_strdup (group), ids);
    }
    g_ptr_array_add (ids, id);
    g_free (group);
  }
  for (guint k = 0; k < cl->elections->len; k++) {
    Election *e = cl->elections->pdata[k];
    GPtrArray *ids = g_hash_table_lookup (by_group, e->name);
    if (ids)
      g_ptr_array_add (ids, NULL);
    mcsec_ctl_evictions_replace (
        cl->core, e->name, ids ? (const char *const *)ids->pdata : NULL, now);
    if (ids)
      g_ptr_array_set_size (ids, ids->len - 1);
  }
  cl->evictions_rev = rev;
  g_hash_table_unref (by_group);
  g_ptr_array_unref (kvs);
  return TRUE;
}

/* ---- rebalancing: who is up, and who should lead what ---- */

/* Our presence key, under the current lease (once per lease). */
static void
announce (CtlCluster *cl)
{
  mcsec_etcd_op_t put = {0};
  gboolean done = FALSE;
  GError *err = NULL;

  if (cl->present || cl->lease == NULL)
    return;
  put.type = MCSEC_ETCD_OP_PUT;
  put.key = cl->presence_key;
  put.value = g_bytes_new (cl->cfg->advertise, strlen (cl->cfg->advertise));
  put.lease = mcsec_etcd_lease_id (cl->lease);
  if (mcsec_etcd_txn (cl->etcd, NULL, 0, &put, 1, NULL, 0, &done, NULL, NULL,
                      &err))
    cl->present = TRUE;
  else
    g_clear_error (&err); /* the next turn tries again */
  g_bytes_unref (put.value);
}

/* A presence key came or went (name: after "controller/"). */
static void
on_presence (CtlCluster *cl, const char *name, GBytes *value, gint64 now,
             gint64 since)
{
  Peer *peer;
  gsize len = 0;
  const char *d;

  if (strcmp (name, cl->cfg->cluster_name) == 0)
    return;
  if (value == NULL) {
    g_hash_table_remove (cl->peers, name);
    return;
  }
  d = g_bytes_get_data (value, &len);
  peer = g_new0 (Peer, 1);
  peer->advertise = g_strndup (d ? d : "", len);
  peer->since = since ? since : now;
  g_hash_table_replace (cl->peers, g_strdup (name), peer);
}

static gboolean
read_presence (CtlCluster *cl, gint64 now, GError **error)
{
  gchar *prefix = g_strconcat (cl->cfg->etcd_prefix, "controller/", NULL);
  GPtrArray *kvs = mcsec_etcd_get (cl->etcd, prefix, TRUE, FALSE, NULL, error);

  if (kvs == NULL) {
    g_free (prefix);
    return FALSE;
  }
  g_hash_table_remove_all (cl->peers);
  /* up before us: settled already */
  for (guint i = 0; i < kvs->len; i++) {
    mcsec_etcd_kv_t *kv = kvs->pdata[i];
    on_presence (cl, kv->key + strlen (prefix), kv->value, now,
                 now - HANDOFF_SETTLE_MS);
  }
  g_ptr_array_unref (kvs);
  g_free (prefix);
  return TRUE;
}

/* The controller that should lead group among those up: the first of the
 * group's order of preference (rank_of) that is up and settled, or NULL
 * when it is us (or there is no order). */
static const Peer *
better_leader (CtlCluster *cl, const char *group, gint64 now)
{
  const CtlConfig *cfg = cl->cfg;
  guint64 mine, best_h = 0;
  const Peer *best = NULL;
  const char *best_name = NULL;

  if (cfg->controllers == NULL)
    return NULL;
  mine = pref_hash (cfg->cluster_name, group);
  for (guint i = 0; cfg->controllers[i]; i++) {
    const char *n = cfg->controllers[i];
    const Peer *p = g_hash_table_lookup (cl->peers, n);
    guint64 h;
    if (p == NULL || now - p->since < HANDOFF_SETTLE_MS)
      continue;
    h = pref_hash (n, group);
    /* rank_of's order: higher hash first, ties to the smaller name */
    if (h > mine || (h == mine && strcmp (n, cfg->cluster_name) < 0)) {
      if (best == NULL || h > best_h ||
          (h == best_h && strcmp (n, best_name) < 0)) {
        best = p;
        best_h = h;
        best_name = n;
      }
    }
  }
  return best;
}

/* One group we lead that a better placed controller should lead, handed
 * over: our leader key deleted, the members sent there (they rejoin; a
 * unicast group's SA is adopted, docs/cluster.md). */
static void
rebalance (CtlCluster *cl, gint64 now)
{
  if (!cl->available || now < cl->handoff_due)
    return;
  for (guint k = 0; k < cl->elections->len; k++) {
    Election *e = cl->elections->pdata[k];
    const Peer *to;
    if (!e->my_rev || !mcsec_ctl_group_leading (e->g))
      continue;
    to = better_leader (cl, e->name, now);
    if (to == NULL)
      continue;
    if (now < e->handoff_quiet_until)
      continue; /* handed over lately and back here: the other did not take
                   it (not configured there? cannot read the state?) */
    if (!mcsec_ctl_group_save (e->g, now))
      continue; /* its key rotation failed: it retries here first */
    cl->handoffs++;
    cl->log ("handoff", "group=%s to=%s", e->name, to->advertise);
    e->handed_at = now;
    e->taken_at = 0;
    resign (cl, e, e->my_rev, now);
    /* until the watch says who took it: members are sent there */
    mcsec_ctl_group_follow (e->g, to->advertise, FALSE, now);
    cl->handoff_due = now + HANDOFF_INTERVAL_MS;
    return;
  }
}

gboolean
ctl_cluster_attach (CtlCluster *cl, mcsec_ctl_t *core, gint64 now,
                    GError **error)
{
  gint64 rev = 0;

  cl->core = core;
  cl->available = TRUE;
  for (guint i = 0; i < mcsec_ctl_n_groups (core); i++) {
    Election *e = g_new0 (Election, 1);
    e->g = mcsec_ctl_group_nth (core, i);
    e->name = mcsec_ctl_group_config (e->g)->name;
    e->key = ctl_etcd_leader_key (cl->cfg->etcd_prefix, e->name);
    e->rank = rank_of (cl->cfg, e->name);
    e->campaign_due = now + (gint64)e->rank * RANK_DELAY_MS;
    g_ptr_array_add (cl->elections, e);
  }
  /* leaders first: the watch starts after their revision; eviction events
   * up to the later read of the evictions are skipped */
  if (!read_leaders (cl, now, &rev, error) ||
      !read_evictions (cl, now, error) || !read_presence (cl, now, error))
    return FALSE;
  announce (cl); /* ready to lead: others may hand groups over */
  /* from the revision read on: nothing in between is missed.  Up to
   * "sealed/": controller/, counter/, evicted/ and leader/ are watched;
   * the sealed SAs and key trees (a key tree's snapshot is megabytes)
   * do not stream to every controller */
  {
    gchar *until = g_strconcat (cl->cfg->etcd_prefix, "sealed/", NULL);
    cl->watch = mcsec_etcd_watch_new_until (cl->cfg->etcd, cl->cfg->etcd_prefix,
                                            until, rev + 1, error);
    g_free (until);
  }
  return cl->watch != NULL;
}

static void
take_events (CtlCluster *cl, gint64 now)
{
  mcsec_etcd_event_t ev;
  gsize plen = strlen (cl->cfg->etcd_prefix);

  while (cl->watch && mcsec_etcd_watch_next (cl->watch, &ev)) {
    const char *rest =
        ev.kv.key && g_str_has_prefix (ev.kv.key, cl->cfg->etcd_prefix)
            ? ev.kv.key + plen
            : NULL;
    cl->watch_events++;
    if (ev.type == MCSEC_ETCD_EVENT_RESYNC) {
      GError *err = NULL;
      gint64 rev = 0;
      cl->log ("watch-resync", "what=\"events lost: reading leaders and "
                               "evictions again\"");
      if (!read_leaders (cl, now, &rev, &err) ||
          !read_evictions (cl, now, &err) || !read_presence (cl, now, &err)) {
        cl->log ("watch-resync-failed", "error=\"%s\"", err->message);
        g_error_free (err);
      }
    } else if (rest && g_str_has_prefix (rest, "leader/")) {
      for (guint k = 0; k < cl->elections->len; k++) {
        Election *e = cl->elections->pdata[k];
        if (strcmp (e->key, ev.kv.key) == 0)
          on_leader_event (cl, e, &ev, now);
      }
    } else if (rest && g_str_has_prefix (rest, "evicted/") &&
               ev.kv.mod_revision > cl->evictions_rev) {
      on_eviction_event (cl, rest + strlen ("evicted/"), &ev, now);
    } else if (rest && g_str_has_prefix (rest, "controller/")) {
      on_presence (cl, rest + strlen ("controller/"),
                   ev.type == MCSEC_ETCD_EVENT_PUT ? ev.kv.value : NULL, now,
                   0);
    }
    mcsec_etcd_event_clear (&ev);
  }
}

/* The lease: its deadline to the core (fencing); a lost one replaced. */
static void
check_lease (CtlCluster *cl, gint64 now)
{
  gint64 deadline = lease_deadline (cl);
  gboolean available = deadline > now;

  if (cl->lease && mcsec_etcd_lease_lost (cl->lease)) {
    cl->lost_leases++;
    cl->log ("lease-lost", "what=\"etcd ended our lease: a new one\"");
    g_clear_pointer (&cl->lease, mcsec_etcd_lease_free);
    cl->present = FALSE; /* the presence key went with it */
    available = FALSE;
    deadline = 0;
  }
  if (cl->lease == NULL && now >= cl->lease_retry_due) {
    GError *err = NULL;
    cl->lease = mcsec_etcd_lease_new (cl->cfg->etcd, cl->cfg->lease_s, &err);
    if (cl->lease == NULL) {
      cl->lease_retry_due = now + RETRY_MS;
      g_error_free (err);
    }
  }
  mcsec_ctl_set_lease_deadline (cl->core, deadline);
  if (available == cl->available)
    return;
  cl->available = available;
  cl->log (available ? "cluster-available" : "cluster-unavailable",
           "what=\"%s\"",
           available ? "the lease holds again"
                     : "no lease: etcd cannot be reached, groups step down");
  for (guint k = 0; k < cl->elections->len; k++) {
    Election *e = cl->elections->pdata[k];
    if (available) {
      e->has_leader = FALSE; /* read again by campaigning */
      e->campaign_due = now + (gint64)e->rank * RANK_DELAY_MS;
    } else {
      follow (cl, e, NULL, now);
    }
  }
}

gint64
ctl_cluster_turn (CtlCluster *cl, gint64 now)
{
  gint64 next = now + RETRY_MS;

  check_lease (cl, now);
  if (cl->available)
    announce (cl);
  take_events (cl, now);
  for (guint k = 0; k < cl->elections->len; k++) {
    Election *e = cl->elections->pdata[k];
    if (e->my_rev && !mcsec_ctl_group_leading (e->g)) {
      /* the core stepped down by itself (its lease deadline passed inside
       * a long turn): the key may still be ours, but nobody serves the
       * group here; give it up and campaign again */
      cl->log ("resign", "group=%s why=\"the core stepped down\"", e->name);
      resign (cl, e, e->my_rev, now);
    }
    if (cl->available && !e->has_leader && !e->my_rev &&
        now >= e->campaign_due) {
      campaign (cl, e, now);
      /* campaigns take time: the core's deadline follows the lease */
      mcsec_ctl_set_lease_deadline (cl->core, lease_deadline (cl));
    }
    if (cl->available && !e->has_leader)
      next = MIN (next, MAX (e->campaign_due, now + 10));
  }
  rebalance (cl, now);
  if (cl->available && g_hash_table_size (cl->peers))
    next = MIN (next, MAX (cl->handoff_due, now + HANDOFF_INTERVAL_MS));
  /* wake at the deadline to step down on time */
  if (cl->available && cl->lease) {
    gint64 until = lease_deadline (cl);
    if (until > now)
      next = MIN (next, until);
  }
  return next;
}

void
ctl_cluster_sync_deadline (CtlCluster *cl)
{
  mcsec_ctl_set_lease_deadline (cl->core, lease_deadline (cl));
}

gboolean
ctl_cluster_may_write (CtlCluster *cl, gint64 now)
{
  for (guint k = 0; k < cl->elections->len; k++)
    if (((Election *)cl->elections->pdata[k])->my_rev)
      return lease_deadline (cl) > now;
  return TRUE; /* nothing led: nothing to fence */
}

gchar *
ctl_cluster_stats_json (CtlCluster *cl, gint64 now)
{
  GString *s = g_string_new (NULL);
  gint64 until = cl->lease ? mcsec_etcd_lease_valid_until (cl->lease) : 0;
  guint leading = 0;

  for (guint k = 0; k < cl->elections->len; k++)
    leading += ((Election *)cl->elections->pdata[k])->my_rev != 0;
  g_string_append_printf (
      s,
      "{\"name\":\"%s\",\"available\":%s,\"lease-ms-left\":%" G_GINT64_FORMAT
      ",\"groups-led\":%u,\"campaigns\":%" G_GUINT64_FORMAT
      ",\"won\":%" G_GUINT64_FORMAT ",\"lost-leases\":%" G_GUINT64_FORMAT
      ",\"watch-events\":%" G_GUINT64_FORMAT ",\"handoffs\":%" G_GUINT64_FORMAT
      ",\"controllers-up\":%u"
      ",\"etcd-writes\":%" G_GUINT64_FORMAT ",\"etcd-endpoint\":\"%s\"}",
      cl->cfg->cluster_name, cl->available ? "true" : "false",
      until ? MAX (0, until / 1000 - now) : 0, leading, cl->campaigns, cl->won,
      cl->lost_leases, cl->watch_events, cl->handoffs,
      g_hash_table_size (cl->peers) + 1, ctl_etcd_store_writes (cl->store),
      mcsec_etcd_endpoint (cl->etcd));
  return g_string_free (s, FALSE);
}

void
ctl_cluster_free (CtlCluster *cl)
{
  if (cl == NULL)
    return;
  OPENSSL_cleanse (cl->relay_key, sizeof cl->relay_key);
  if (cl->watch)
    mcsec_etcd_watch_free (cl->watch);
  if (cl->lease)
    mcsec_etcd_lease_free (cl->lease); /* revoked: the others take over */
  if (cl->store)
    cl->store->free (cl->store);
  else if (cl->etcd)
    mcsec_etcd_free (cl->etcd);
  g_ptr_array_unref (cl->elections);
  g_hash_table_unref (cl->peers);
  g_free (cl->presence_key);
  g_free (cl->value);
  g_free (cl);
}
