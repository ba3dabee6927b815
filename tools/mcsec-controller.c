/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-controller: the group controller of MIKE (docs/mike-protocol.md,
 * docs/controller.md).  One thread, one GLib main loop: members connect
 * over TLS 1.3 with X.509 certificates on both sides, join groups by the
 * access lists of the configuration, get their MSA and follow signed,
 * numbered updates; administrators talk to it over a Unix socket
 * (mcsecctl).  Keys live in memory only and never reach a log.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <glib-unix.h>
#include <glib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mcsec/mcsec-mike.h>
#include <mcsec/mcsec-rekey.h>

#define HANDSHAKE_TIMEOUT_MS MCSEC_MIKE_JOIN_TIMEOUT_MS
#define SEQ_BLOCK 4096
#define SENDER_ID_BLOCK 64
#define REKEY_SEQ_BLOCK 1024
#define RESYNC_MIN_MS 250 /* a member gets at most one new path this often */
#define MAX_CONNECTIONS 20000

typedef struct {
  int valid;
  uint32_t spi;
  mcsec_suite_t suite;
  uint8_t key[MCSEC_MIKE_MAX_KEY_LEN];
  size_t key_len;
  gint64 created_ms, activate_ms;
  /* Sender-IDs valid under this key: those members held when it was made
   * and those handed out since; never handed out twice (a second sender
   * with the same Sender-ID would repeat its nonces) */
  GHashTable *ids;
} GroupSa;

typedef struct _Conn Conn;

typedef struct {
  gchar *name, *address;
  guint16 port;
  mcsec_suite_t suite;
  guint8 sam;
  guint sender_id_bits;
  guint key_lifetime_s, activation_ms, deactivation_ms;
  gboolean rekey_on_join, rekey_on_leave;
  GHashTable *senders, *receivers; /* identity set */
  GHashTable *evicted;             /* identities evicted since start */
  GList *members;                  /* Conn */
  GroupSa sa;
  guint64 seq;    /* of the last update */
  GBytes *update; /* the signed update frame, for everyone */
  guint64 rekeys, updates_sent;
  gint64 last_rekey_ms;
  gchar *last_rekey_reason;
  /* key tree groups (rekey-channel set): docs/mike-protocol.md "Key tree",
   * "Rekey channel" */
  gchar *channel; /* "ADDRESS:PORT" as configured; NULL: unicast updates */
  gchar *channel_address, *channel_interface;
  guint16 channel_port;
  struct sockaddr_storage channel_to;
  socklen_t channel_to_len;
  guint tree_degree, batch_ms, redundancy, channel_ttl;
  mcsec_lkh_t *tree;
  mcsec_rekey_tx_t *tx;
  mcsec_counter_store_t *rekey_store; /* rekey SEQs never repeat */
  guint64 rekey_next, rekey_limit;
  int channel_fd;
  guint batch_timer, heartbeat_timer;
  gchar *batch_reason;
  guint64 channel_rekeys, channel_datagrams, channel_bytes, channel_errors,
      repairs_served, resyncs_served, repair_polls, direct_rekeys;
  gsize last_rekey_bytes, last_rekey_entries;
  guint last_rekey_datagrams;
} Group;

typedef enum { C_HANDSHAKE, C_AWAIT_JOIN, C_MEMBER, C_CLOSING } ConnState;

/* What waits to be written to a member: updates hold keys, so the buffer
 * grows and shrinks by hand, wiping what it leaves behind (a realloc or a
 * GByteArray would leave copies in freed or unused memory). */
typedef struct {
  guint8 *data;
  gsize len, cap;
} OutBuf;

static void
out_append (OutBuf *o, const guint8 *p, gsize n)
{
  if (o->len + n > o->cap) {
    gsize cap = o->cap ? o->cap * 2 : 4096;
    guint8 *nb;
    while (cap < o->len + n)
      cap *= 2;
    nb = g_malloc (cap);
    if (o->len)
      memcpy (nb, o->data, o->len);
    if (o->data) {
      OPENSSL_cleanse (o->data, o->cap);
      g_free (o->data);
    }
    o->data = nb;
    o->cap = cap;
  }
  memcpy (o->data + o->len, p, n);
  o->len += n;
}

/* The first n bytes were written. */
static void
out_consume (OutBuf *o, gsize n)
{
  memmove (o->data, o->data + n, o->len - n);
  OPENSSL_cleanse (o->data + o->len - n, n);
  o->len -= n;
}

static void
out_clear (OutBuf *o)
{
  if (o->data) {
    OPENSSL_cleanse (o->data, o->cap);
    g_free (o->data);
  }
  memset (o, 0, sizeof *o);
}

struct _Conn {
  int fd;
  SSL *ssl;
  guint watch;
  GIOCondition cond;
  ConnState state;
  gboolean want_write;
  mcsec_mike_reader_t reader;
  OutBuf out;
  gchar peer[INET6_ADDRSTRLEN + 8];
  gchar *identity;
  Group *group;
  guint role;
  guint32 sender_id; /* the first of sender_ids, 0 for receivers */
  guint n_sender_ids;
  guint32 sender_ids[MCSEC_MIKE_MAX_SENDER_IDS];
  guint8 spki[MCSEC_MIKE_MAX_SPKI];
  gsize spki_len;
  gint64 started_ms, last_rx_ms, joined_real_us;
  guint64 acked_seq;
  /* key tree groups: the member's leaf; its path goes out with the commit
   * that places it */
  guint32 leaf;
  gboolean in_tree, awaiting_path;
  gint64 last_resync_ms;
  gint64 unreached_until_ms; /* the channel does not reach it: rekeys go
                                over its connection too, until then */
};

typedef struct {
  gchar *config_path;
  gchar *listen, *certificate, *private_key, *ca, *signing_key, *state_dir,
      *admin_socket;
  SSL_CTX *ctx;
  EVP_PKEY *update_key;
  guint8 update_spki[MCSEC_MIKE_MAX_SPKI];
  gsize update_spki_len;
  int listen_fd, admin_fd;
  GHashTable *groups; /* name -> Group */
  GList *conns;
  guint n_conns;
  mcsec_counter_store_t *seq_store, *sid_store;
  guint64 seq_next, seq_limit, sid_next, sid_limit;
  GMainLoop *loop;
  gboolean stopping;
  gint64 started_real_us;
  gint64 recovery_until_ms; /* restarted: first SAs wait for rejoins */
  guint rejoin_window_ms;
  gboolean allow_key_export; /* mcsecctl wireshark-esp: off unless asked */
  gboolean log_quiet;        /* the fuzz targets: format, do not print */
  /* statistics */
  guint64 connections, handshake_failures, registrations, refusals,
      refused_by[16], leaves, evictions, disconnects, updates_sent, acks,
      rejected_messages;
} Ctl;

static Ctl ctl;

/* ------------------------------------------------------------------------ */
/* Logs: one line per event, key=value, never a key byte                     */

static void G_GNUC_PRINTF (2, 3)
    log_event (const char *event, const char *fmt, ...)
{
  GDateTime *now = g_date_time_new_now_utc ();
  gchar *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");
  gchar *rest = NULL;
  va_list ap;

  va_start (ap, fmt);
  rest = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (!ctl.log_quiet) {
    fprintf (stderr, "%s.%03dZ mcsec-controller event=%s %s\n", ts,
             g_date_time_get_microsecond (now) / 1000, event, rest);
    fflush (stderr);
  }
  g_free (rest);
  g_free (ts);
  g_date_time_unref (now);
}

/* Identities and group names go into logs and access lists: printable,
 * no spaces, quotes or backslashes. */
static gboolean
safe_token (const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"' ||
        s[i] == '\\' || s[i] == ';')
      return FALSE;
  return TRUE;
}

static gint64
mono_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                              */

/* The line of `key` in [section] of the file, for error messages; 0 if not
 * found. */
static int
config_line (const char *path, const char *section, const char *key)
{
  gchar *text = NULL, **lines;
  gboolean in_section = section == NULL;
  int found = 0;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i] && !found; i++) {
    gchar *l = g_strstrip (lines[i]);
    if (l[0] == '[') {
      gchar *want = g_strdup_printf ("[%s]", section ? section : "");
      in_section = g_strcmp0 (l, want) == 0;
      g_free (want);
    } else if (in_section && g_str_has_prefix (l, key)) {
      const char *r = l + strlen (key);
      while (*r == ' ' || *r == '\t')
        r++;
      if (*r == '=')
        found = i + 1;
    }
  }
  g_strfreev (lines);
  g_free (text);
  return found;
}

static void G_GNUC_PRINTF (4, 5)
    config_fail (GError **error, const char *section, const char *key,
                 const char *fmt, ...)
{
  gchar *msg;
  va_list ap;
  int line = config_line (ctl.config_path, section, key);

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (line)
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "%s:%d: [%s] %s: %s", ctl.config_path, line, section, key,
                 msg);
  else
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "%s: [%s] %s: %s", ctl.config_path, section, key, msg);
  g_free (msg);
}

/* A required string setting; paths relative to the config file's folder. */
static gchar *
config_path_setting (GKeyFile *kf, const char *section, const char *key,
                     gboolean required, GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, key, NULL);
  gchar *dir, *abs;

  if (v == NULL || *g_strstrip (v) == '\0') {
    g_free (v);
    if (required)
      config_fail (error, section, key, "missing (required)");
    return NULL;
  }
  if (g_path_is_absolute (v))
    return v;
  dir = g_path_get_dirname (ctl.config_path);
  abs = g_build_filename (dir, v, NULL);
  g_free (dir);
  g_free (v);
  return abs;
}

static gboolean
config_uint (GKeyFile *kf, const char *section, const char *key, guint64 def,
             guint64 min, guint64 max, guint64 *out, GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, key, NULL);
  guint64 n;
  gchar *end;

  if (v == NULL) {
    *out = def;
    return TRUE;
  }
  g_strstrip (v);
  n = g_ascii_strtoull (v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < min || n > max) {
    config_fail (error, section, key,
                 "'%s' is not a number from %" G_GUINT64_FORMAT
                 " to %" G_GUINT64_FORMAT,
                 v, min, max);
    g_free (v);
    return FALSE;
  }
  g_free (v);
  *out = n;
  return TRUE;
}

static gboolean
config_bool (GKeyFile *kf, const char *section, const char *key, gboolean def,
             gboolean *out, GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, key, NULL);
  if (v == NULL) {
    *out = def;
    return TRUE;
  }
  g_strstrip (v);
  if (g_ascii_strcasecmp (v, "true") == 0 || strcmp (v, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (v, "false") == 0 || strcmp (v, "0") == 0)
    *out = FALSE;
  else {
    config_fail (error, section, key, "'%s' is not true or false", v);
    g_free (v);
    return FALSE;
  }
  g_free (v);
  return TRUE;
}

static GHashTable *
config_list (GKeyFile *kf, const char *section, const char *key)
{
  GHashTable *set =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gchar **items = g_key_file_get_string_list (kf, section, key, NULL, NULL);
  for (int i = 0; items && items[i]; i++) {
    gchar *s = g_strstrip (items[i]);
    if (*s)
      g_hash_table_add (set, g_strdup (s));
  }
  g_strfreev (items);
  return set;
}

/* Wipe and drop the group's signed update (it holds the SA key). */
static void wipe_bytes (GBytes *bytes);

static void
group_drop_update (Group *g)
{
  if (g->update) {
    wipe_bytes (g->update);
    g->update = NULL;
  }
}

static void
group_free (Group *g)
{
  g_free (g->name);
  g_free (g->address);
  g_hash_table_unref (g->senders);
  g_hash_table_unref (g->receivers);
  g_hash_table_unref (g->evicted);
  g_list_free (g->members);
  if (g->sa.ids)
    g_hash_table_unref (g->sa.ids);
  OPENSSL_cleanse (&g->sa, sizeof g->sa);
  group_drop_update (g);
  g_free (g->last_rekey_reason);
  g_free (g->channel);
  g_free (g->channel_address);
  g_free (g->channel_interface);
  g_free (g->batch_reason);
  if (g->batch_timer)
    g_source_remove (g->batch_timer);
  if (g->heartbeat_timer)
    g_source_remove (g->heartbeat_timer);
  if (g->channel_fd >= 0)
    close (g->channel_fd);
  mcsec_rekey_tx_free (g->tx);
  mcsec_lkh_free (g->tree);
  mcsec_counter_store_close (g->rekey_store);
  g_free (g);
}

/* A key tree group's settings: rekey-channel and what goes with it. */
static gboolean
load_channel (GKeyFile *kf, const char *section, Group *g, GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, "rekey-channel", NULL);
  gchar *host = NULL, *colon;
  struct sockaddr_in *in4 = (struct sockaddr_in *)&g->channel_to;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&g->channel_to;
  guint64 n;
  gboolean ok = FALSE;

  if (v == NULL)
    return TRUE; /* unicast updates */
  g_strstrip (v);
  g->channel = g_strdup (v);
  colon = strrchr (v, ':');
  if (colon && v[0] == '[' && colon > v && colon[-1] == ']')
    host = g_strndup (v + 1, (gsize)(colon - v - 2));
  else if (colon)
    host = g_strndup (v, (gsize)(colon - v));
  n = colon ? g_ascii_strtoull (colon + 1, NULL, 10) : 0;
  memset (&g->channel_to, 0, sizeof g->channel_to);
  if (host && inet_pton (AF_INET, host, &in4->sin_addr) == 1 &&
      IN_MULTICAST (ntohl (in4->sin_addr.s_addr))) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons ((guint16)n);
    g->channel_to_len = sizeof *in4;
  } else if (host && inet_pton (AF_INET6, host, &in6->sin6_addr) == 1 &&
             IN6_IS_ADDR_MULTICAST (&in6->sin6_addr)) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons ((guint16)n);
    g->channel_to_len = sizeof *in6;
  }
  if (g->channel_to_len == 0 || n < 1 || n > 65535 ||
      !g_ascii_isdigit (colon[1])) {
    config_fail (error, section, "rekey-channel",
                 "'%s' is not a multicast ADDRESS:PORT (239.1.2.3:5100, "
                 "[ff15::1]:5100)",
                 v);
    goto out;
  }
  g->channel_address = g_strdup (host);
  g->channel_port = (guint16)n;
  if (g->address && g_strcmp0 (g->address, host) == 0 && g->port == n) {
    config_fail (error, section, "rekey-channel",
                 "the rekey channel cannot be the media's address and port");
    goto out;
  }
  if (!g->rekey_on_join || !g->rekey_on_leave) {
    config_fail (error, section,
                 g->rekey_on_join ? "rekey-on-leave" : "rekey-on-join",
                 "a key tree group (rekey-channel) rekeys on every membership "
                 "change; remove this setting or rekey-channel");
    goto out;
  }
  g->channel_interface =
      g_key_file_get_string (kf, section, "rekey-interface", NULL);
  if (g->channel_interface &&
      if_nametoindex (g_strstrip (g->channel_interface)) == 0) {
    config_fail (error, section, "rekey-interface", "no network interface '%s'",
                 g->channel_interface);
    goto out;
  }
  if (!config_uint (kf, section, "key-tree-degree", MCSEC_LKH_DEGREE_DEFAULT, 2,
                    MCSEC_LKH_DEGREE_MAX, &n, error))
    goto out;
  g->tree_degree = (guint)n;
  if (!config_uint (kf, section, "batch-interval", 200, 0, 60000, &n, error))
    goto out;
  g->batch_ms = (guint)n;
  if (!config_uint (kf, section, "rekey-redundancy", 0, 0, 3, &n, error))
    goto out;
  g->redundancy = (guint)n;
  if (!config_uint (kf, section, "rekey-ttl", 1, 1, 255, &n, error))
    goto out;
  g->channel_ttl = (guint)n;
  ok = TRUE;
out:
  g_free (host);
  g_free (v);
  return ok;
}

static Group *
load_group (GKeyFile *kf, const char *section, GError **error)
{
  Group *g = g_new0 (Group, 1);
  gchar *cipher, *sam;

  g->channel_fd = -1;
  guint64 v;

  g->name = g_strdup (section + strlen ("group "));
  g_strstrip (g->name);
  if (*g->name == '\0' || strlen (g->name) > MCSEC_MIKE_MAX_STRING) {
    config_fail (error, section, "name", "a group needs a name of 1-255 bytes");
    goto fail;
  }
  g->senders = config_list (kf, section, "senders");
  g->receivers = config_list (kf, section, "receivers");
  g->evicted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g->address = g_key_file_get_string (kf, section, "address", NULL);
  if (g->address)
    g_strstrip (g->address);
  if (!config_uint (kf, section, "port", 5004, 1, 65535, &v, error))
    goto fail;
  g->port = (guint16)v;
  cipher = g_key_file_get_string (kf, section, "cipher", NULL);
  g->suite = cipher ? mcsec_suite_from_name (g_strstrip (cipher))
                    : MCSEC_SUITE_AES_128_GCM;
  if (g->suite == 0) {
    config_fail (error, section, "cipher",
                 "unknown cipher '%s' (aes-128-gcm, aes-256-gcm, "
                 "chacha20-poly1305, aes-128-gmac, aes-256-gmac)",
                 cipher);
    g_free (cipher);
    goto fail;
  }
  g_free (cipher);
  sam = g_key_file_get_string (kf, section, "sam", NULL);
  if (sam == NULL || strcmp (g_strstrip (sam), "block") == 0)
    g->sam = MCSEC_SAM_BLOCK;
  else if (strcmp (sam, "per-packet") == 0)
    g->sam = MCSEC_SAM_PER_PACKET;
  else if (strcmp (sam, "none") == 0)
    g->sam = 0;
  else {
    config_fail (error, section, "sam", "'%s' is not block, per-packet or none",
                 sam);
    g_free (sam);
    goto fail;
  }
  g_free (sam);
  if (!config_uint (kf, section, "sender-id-bits", MCSEC_SENDER_ID_BITS_DEFAULT,
                    MCSEC_SENDER_ID_BITS_MIN, MCSEC_SENDER_ID_BITS_MAX, &v,
                    error))
    goto fail;
  g->sender_id_bits = (guint)v;
  if (!config_uint (kf, section, "key-lifetime", 3600, 1, 7 * 86400, &v, error))
    goto fail;
  g->key_lifetime_s = (guint)v;
  if (!config_uint (kf, section, "activation-delay", 500, 0, 60000, &v, error))
    goto fail;
  g->activation_ms = (guint)v;
  if (!config_uint (kf, section, "deactivation-delay", 2000, 0, 600000, &v,
                    error))
    goto fail;
  g->deactivation_ms = (guint)v;
  if (!config_bool (kf, section, "rekey-on-join", TRUE, &g->rekey_on_join,
                    error) ||
      !config_bool (kf, section, "rekey-on-leave", TRUE, &g->rekey_on_leave,
                    error))
    goto fail;
  if (!load_channel (kf, section, g, error))
    goto fail;
  if (g_hash_table_size (g->senders) + g_hash_table_size (g->receivers) == 0) {
    config_fail (error, section, "receivers",
                 "the group admits nobody: list identities in senders and/or "
                 "receivers");
    goto fail;
  }
  return g;

fail:
  if (g->senders == NULL)
    g->senders = g_hash_table_new (g_str_hash, g_str_equal);
  if (g->receivers == NULL)
    g->receivers = g_hash_table_new (g_str_hash, g_str_equal);
  if (g->evicted == NULL)
    g->evicted = g_hash_table_new (g_str_hash, g_str_equal);
  group_free (g);
  return NULL;
}

static gboolean
load_config (GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  gchar **sections;
  gboolean ok = FALSE;
  const char *c = "controller";

  if (!g_key_file_load_from_file (kf, ctl.config_path, G_KEY_FILE_NONE,
                                  error)) {
    g_prefix_error (error, "%s: ", ctl.config_path);
    goto out;
  }
  ctl.listen = g_key_file_get_string (kf, c, "listen", NULL);
  if (ctl.listen == NULL)
    ctl.listen = g_strdup ("127.0.0.1:7700");
  g_strstrip (ctl.listen);
  if (!(ctl.certificate =
            config_path_setting (kf, c, "certificate", TRUE, error)) ||
      !(ctl.private_key =
            config_path_setting (kf, c, "private-key", TRUE, error)) ||
      !(ctl.ca = config_path_setting (kf, c, "ca", TRUE, error)) ||
      !(ctl.signing_key =
            config_path_setting (kf, c, "signing-key", TRUE, error)) ||
      !(ctl.state_dir = config_path_setting (kf, c, "state-dir", TRUE, error)))
    goto out;
  ctl.admin_socket = config_path_setting (kf, c, "admin-socket", FALSE, NULL);
  {
    guint64 v;
    if (!config_uint (kf, c, "rejoin-window", 7000, 0, 600000, &v, error))
      goto out;
    ctl.rejoin_window_ms = (guint)v;
  }
  if (!config_bool (kf, c, "allow-key-export", FALSE, &ctl.allow_key_export,
                    error))
    goto out;
  if (ctl.admin_socket == NULL)
    ctl.admin_socket = g_build_filename (ctl.state_dir, "admin.sock", NULL);

  ctl.groups = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                      (GDestroyNotify)group_free);
  sections = g_key_file_get_groups (kf, NULL);
  for (int i = 0; sections[i]; i++) {
    Group *g;
    if (strcmp (sections[i], c) == 0)
      continue;
    if (!g_str_has_prefix (sections[i], "group ")) {
      config_fail (error, sections[i], "section",
                   "unknown section (expected [controller] or [group NAME])");
      g_strfreev (sections);
      goto out;
    }
    g = load_group (kf, sections[i], error);
    if (g == NULL) {
      g_strfreev (sections);
      goto out;
    }
    if (g_hash_table_contains (ctl.groups, g->name)) {
      config_fail (error, sections[i], "name", "group %s is defined twice",
                   g->name);
      group_free (g);
      g_strfreev (sections);
      goto out;
    }
    g_hash_table_insert (ctl.groups, g->name, g);
  }
  g_strfreev (sections);
  if (g_hash_table_size (ctl.groups) == 0) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                 "%s: no [group NAME] section: nothing to control",
                 ctl.config_path);
    goto out;
  }
  ok = TRUE;
out:
  g_key_file_free (kf);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* Durable counters: update SEQ and Sender-IDs never repeat across restarts  */

static gboolean
next_durable (mcsec_counter_store_t *store, guint64 *next, guint64 *limit,
              guint64 *out)
{
  if (*next >= *limit) {
    if (mcsec_counter_store_extend (store, limit) != MCSEC_OK)
      return FALSE;
  }
  *out = (*next)++;
  return TRUE;
}

static gboolean
open_state (GError **error)
{
  gchar *p;
  mcsec_status_t st;
  gboolean restarted;

  if (g_mkdir_with_parents (ctl.state_dir, 0700) != 0) {
    config_fail (error, "controller", "state-dir", "cannot create %s: %s",
                 ctl.state_dir, g_strerror (errno));
    return FALSE;
  }
  p = g_build_filename (ctl.state_dir, "update-seq.ctr", NULL);
  restarted = g_file_test (p, G_FILE_TEST_EXISTS);
  st = mcsec_counter_store_open (p, SEQ_BLOCK, &ctl.seq_store, &ctl.seq_next,
                                 &ctl.seq_limit);
  g_free (p);
  if (restarted)
    ctl.recovery_until_ms = mono_ms () + ctl.rejoin_window_ms;
  if (st == MCSEC_OK) {
    p = g_build_filename (ctl.state_dir, "sender-ids.ctr", NULL);
    st = mcsec_counter_store_open (p, SENDER_ID_BLOCK, &ctl.sid_store,
                                   &ctl.sid_next, &ctl.sid_limit);
    g_free (p);
  }
  if (st) {
    config_fail (error, "controller", "state-dir", "%s (%s)",
                 mcsec_status_message (st),
                 st == MCSEC_ERR_LOCKED ? "is another controller running?"
                                        : ctl.state_dir);
    return FALSE;
  }
  return TRUE;
}

/* Key tree groups: the tree, the channel's sender and its durable rekey
 * numbers (a file per group, named by a hash of the name). */
static gboolean
setup_tree (Group *g, GError **error)
{
  gchar *hash, *file, *path;
  mcsec_status_t st;

  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, g->name, -1);
  file = g_strdup_printf ("rekey-%.16s.ctr", hash);
  path = g_build_filename (ctl.state_dir, file, NULL);
  st = mcsec_counter_store_open (path, REKEY_SEQ_BLOCK, &g->rekey_store,
                                 &g->rekey_next, &g->rekey_limit);
  g_free (hash);
  g_free (file);
  g_free (path);
  if (st == MCSEC_OK && g->rekey_next == 0)
    st = next_durable (g->rekey_store, &g->rekey_next, &g->rekey_limit,
                       &(guint64){0})
             ? MCSEC_OK
             : MCSEC_ERR_IO; /* SEQ 0 means none */
  if (st == MCSEC_OK)
    st = mcsec_lkh_new (g->tree_degree, &g->tree);
  if (st == MCSEC_OK)
    st = mcsec_rekey_tx_new (g->name, ctl.update_key, g->rekey_next, &g->tx);
  if (st) {
    config_fail (error, "controller", "state-dir", "group %s: %s", g->name,
                 mcsec_status_message (st));
    return FALSE;
  }
  return TRUE;
}

/* ... and the channel's socket. */
static gboolean
setup_channel (Group *g, GError **error)
{
  char sec[sizeof "group " + MCSEC_MIKE_MAX_STRING];
  int fd, one = 1, ttl = (int)g->channel_ttl;
  unsigned ifindex =
      g->channel_interface ? if_nametoindex (g->channel_interface) : 0;

  g_snprintf (sec, sizeof sec, "group %s", g->name);
  fd = socket (g->channel_to.ss_family,
               SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    config_fail (error, sec, "rekey-channel", "cannot make a socket: %s",
                 g_strerror (errno));
    return FALSE;
  }
  g->channel_fd = fd;
  if (g->channel_to.ss_family == AF_INET) {
    struct ip_mreqn mr = {0};
    unsigned char t = (unsigned char)ttl, loop = 1;
    mr.imr_ifindex = (int)ifindex;
    if (setsockopt (fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof t) != 0 ||
        setsockopt (fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) !=
            0 ||
        (ifindex &&
         setsockopt (fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) != 0)) {
      config_fail (error, sec, "rekey-interface", "%s", g_strerror (errno));
      return FALSE;
    }
  } else {
    if (setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) !=
            0 ||
        setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) !=
            0 ||
        (ifindex && setsockopt (fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex,
                                sizeof ifindex) != 0)) {
      config_fail (error, sec, "rekey-interface", "%s", g_strerror (errno));
      return FALSE;
    }
  }
  return setup_tree (g, error);
}

static gboolean on_heartbeat (gpointer data);

static gboolean
setup_channels (GError **error)
{
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init (&it, ctl.groups);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    Group *g = v;
    if (g->channel == NULL)
      continue;
    if (!setup_channel (g, error))
      return FALSE;
    g->heartbeat_timer =
        g_timeout_add (MCSEC_REKEY_HEARTBEAT_MS, on_heartbeat, g);
  }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                                */

static void conn_close (Conn *c, const char *why);
static void conn_update_watch (Conn *c);
static void group_send_update (Group *g, Conn *only);

static void
conn_queue (Conn *c, const guint8 *frame, gsize len)
{
  out_append (&c->out, frame, len);
}

static void
conn_queue_simple (Conn *c, mcsec_mike_type_t type, guint reason,
                   const char *text)
{
  guint8 buf[512];
  mcsec_mike_builder_t b;
  size_t len;

  mcsec_mike_begin (&b, buf, sizeof buf, type);
  if (reason)
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_REASON, (uint16_t)reason);
  if (text)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_TEXT, text);
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    conn_queue (c, buf, len);
}

/* Refuse or evict: say why, then close once it is written. */
static void
conn_goodbye (Conn *c, mcsec_mike_type_t type, guint reason, const char *text)
{
  conn_queue_simple (c, type, reason, text);
  c->state = C_CLOSING;
  c->started_ms = mono_ms (); /* the sweep gives the goodbye time to go */
  conn_update_watch (c);
}

static void
refuse (Conn *c, guint reason, const char *text, const char *group)
{
  ctl.refusals++;
  if (reason < G_N_ELEMENTS (ctl.refused_by))
    ctl.refused_by[reason]++;
  log_event ("refused", "peer=%s identity=%s group=%s reason=%s text=\"%s\"",
             c->peer, c->identity ? c->identity : "-", group ? group : "-",
             mcsec_mike_reason_name (reason), text);
  conn_goodbye (c, MCSEC_MIKE_REFUSE, reason, text);
}

/* The Sender-IDs the group's members hold. */
static GHashTable *
members_ids (Group *g)
{
  GHashTable *set = g_hash_table_new (NULL, NULL);
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    for (guint i = 0; i < m->n_sender_ids; i++)
      g_hash_table_add (set, GUINT_TO_POINTER (m->sender_ids[i]));
  }
  return set;
}

/* The next Sender-ID of the durable counter that is not in `avoid` (it is
 * added there); FALSE when there is none. */
static gboolean
new_sender_id (Group *g, GHashTable *avoid, guint32 *out)
{
  guint64 n, max = g->sender_id_bits == 32
                       ? G_GUINT64_CONSTANT (0xffffffff)
                       : (G_GUINT64_CONSTANT (1) << g->sender_id_bits) - 1;
  if (g_hash_table_size (avoid) >= max)
    return FALSE;
  for (;;) {
    guint32 id;
    if (!next_durable (ctl.sid_store, &ctl.sid_next, &ctl.sid_limit, &n))
      return FALSE;
    if (n == 0)
      continue;
    id = (guint32)(1 + (n - 1) % max);
    if (!g_hash_table_contains (avoid, GUINT_TO_POINTER (id))) {
      g_hash_table_add (avoid, GUINT_TO_POINTER (id));
      *out = id;
      return TRUE;
    }
  }
}

/* A new SA for the group: fresh SPI and key from RAND_bytes. */
static gboolean
group_new_sa (Group *g, const char *reason)
{
  GroupSa sa = {0};
  gint64 now = mono_ms ();

  sa.suite = g->suite;
  sa.key_len = mcsec_suite_key_material_len (g->suite);
  do {
    if (RAND_bytes ((unsigned char *)&sa.spi, sizeof sa.spi) != 1)
      return FALSE;
  } while (sa.spi < MCSEC_SPI_MIN || (g->sa.valid && sa.spi == g->sa.spi));
  /* key tree groups: from the group key the commit just made, so the
   * channel's rekey gives it to every member and nobody else */
  if ((g->tree
           ? mcsec_lkh_derive_sa_key (mcsec_lkh_group_key (g->tree), g->name,
                                      sa.spi, sa.suite, sa.key, sa.key_len)
           : mcsec_generate_key_material (sa.suite, sa.key, sa.key_len)) !=
      MCSEC_OK) {
    OPENSSL_cleanse (&sa, sizeof sa);
    return FALSE;
  }
  sa.valid = 1;
  sa.created_ms = now;
  sa.ids = members_ids (g);
  /* later SAs are used after the activation delay, once every member had
   * time to install them; a group's first SA at once.  After a restart
   * members may still hold the previous run's SA and be reconnecting, so no
   * SA made before the rejoin window ends is used before it ends: a key
   * tree group commits each rejoin with a new SA, and one used at once
   * would reach members that rejoined earlier while later ones (which get
   * only the newest) cannot read it */
  sa.activate_ms =
      MAX (now + (g->sa.valid ? g->activation_ms : 0), ctl.recovery_until_ms);
  if (g->sa.ids)
    g_hash_table_unref (g->sa.ids);
  OPENSSL_cleanse (&g->sa, sizeof g->sa);
  g->sa = sa;
  OPENSSL_cleanse (&sa, sizeof sa);
  g->rekeys++;
  g->last_rekey_ms = now;
  g_free (g->last_rekey_reason);
  g->last_rekey_reason = g_strdup (reason);
  log_event ("rekey",
             "group=%s reason=%s spi=0x%08x suite=%s activate-in-ms=%u "
             "members=%u",
             g->name, reason, g->sa.spi, mcsec_suite_name (g->suite),
             (guint)(g->sa.activate_ms - now), g_list_length (g->members));
  return TRUE;
}

/* Build and sign an update: the group's SA and senders; for a key tree
 * group's member (path_for), its path keys and the first rekey it follows
 * on the channel.  NULL on failure (logged). */
static GBytes *
build_update (Group *g, Conn *path_for)
{
  gsize cap = 2048 + g_list_length (g->members) * (MCSEC_MIKE_MAX_SPKI + 8);
  guint8 *buf;
  mcsec_mike_builder_t b;
  mcsec_mike_sa_t sa;
  guint64 seq;
  size_t len;
  guint n_senders = 0;
  gint64 now = mono_ms ();
  GBytes *out;

  if (!next_durable (ctl.seq_store, &ctl.seq_next, &ctl.seq_limit, &seq)) {
    log_event ("error", "what=\"cannot reserve update numbers in %s\"",
               ctl.state_dir);
    return NULL;
  }
  if (cap > MCSEC_MIKE_MAX_FRAME + 4)
    cap = MCSEC_MIKE_MAX_FRAME + 4;
  buf = g_malloc (cap);
  mcsec_mike_begin (&b, buf, cap, MCSEC_MIKE_UPDATE);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, g->name);
  mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_DEACTIVATION, g->deactivation_ms);
  sa.spi = g->sa.spi;
  sa.suite = g->sa.suite;
  sa.key = g->sa.key;
  sa.key_len = g->sa.key_len;
  sa.activate_in_ms =
      g->sa.activate_ms > now ? (uint32_t)(g->sa.activate_ms - now) : 0;
  sa.lifetime_s = g->key_lifetime_s;
  mcsec_mike_put_sa (&b, &sa);
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    for (guint i = 0; i < m->n_sender_ids; i++)
      if (n_senders < MCSEC_MIKE_MAX_SENDERS) {
        mcsec_mike_put_sender (&b, m->sender_ids[i], m->spki, m->spki_len);
        n_senders++;
      }
  }
  if (path_for) {
    mcsec_lkh_key_t path[MCSEC_MIKE_MAX_PATH];
    size_t n =
        mcsec_lkh_path (g->tree, path_for->leaf, path, G_N_ELEMENTS (path));
    for (size_t i = 0; i < n; i++)
      mcsec_mike_put_path_key (&b, path[i].node, path[i].key);
    OPENSSL_cleanse (path, sizeof path);
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_NEXT_REKEY,
                        mcsec_rekey_tx_next_seq (g->tx));
  }
  mcsec_mike_sign (&b, ctl.update_key);
  if (mcsec_mike_finish (&b, &len) != MCSEC_OK) {
    OPENSSL_cleanse (buf, cap);
    g_free (buf);
    log_event ("error", "group=%s what=\"cannot build the update\"", g->name);
    return NULL;
  }
  out = g_bytes_new (buf, len);
  OPENSSL_cleanse (buf, cap);
  g_free (buf);
  g->seq = seq;
  return out;
}

/* The group's update for every member (unicast groups). */
static gboolean
group_build_update (Group *g)
{
  GBytes *u = build_update (g, NULL);
  if (u == NULL)
    return FALSE;
  group_drop_update (g);
  g->update = u;
  return TRUE;
}

/* Wipe and drop a signed update (it holds keys). */
static void
wipe_bytes (GBytes *bytes)
{
  gsize len;
  guint8 *data = g_bytes_unref_to_data (bytes, &len);
  OPENSSL_cleanse (data, len);
  g_free (data);
}

/* A key tree group's member gets its path (after the commit that placed
 * it, or to resynchronise). */
static void
send_path_update (Group *g, Conn *c)
{
  GBytes *u = build_update (g, c);
  gsize len;
  const guint8 *data;

  if (u == NULL)
    return;
  data = g_bytes_get_data (u, &len);
  conn_queue (c, data, len);
  conn_update_watch (c);
  wipe_bytes (u);
  g->updates_sent++;
  ctl.updates_sent++;
}

/* Send the current update to one member, or to all of them. */
static void
group_send_update (Group *g, Conn *only)
{
  gsize len;
  const guint8 *data;

  if (g->update == NULL)
    return;
  data = g_bytes_get_data (g->update, &len);
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    if (only && m != only)
      continue;
    conn_queue (m, data, len);
    conn_update_watch (m);
    g->updates_sent++;
    ctl.updates_sent++;
  }
}

/* ---- key tree groups: the rekey channel ---- */

static void
channel_send (Group *g, const guint8 *data, gsize len)
{
  ssize_t n = sendto (g->channel_fd, data, len, 0,
                      (struct sockaddr *)&g->channel_to, g->channel_to_len);
  if (n == (ssize_t)len) {
    g->channel_datagrams++;
    g->channel_bytes += len;
    return;
  }
  /* members notice the silence and ask over their connections */
  if (g->channel_errors++ % 1000 == 0)
    log_event ("channel-error",
               "group=%s channel=%s errors=%" G_GUINT64_FORMAT " error=\"%s\"",
               g->name, g->channel, g->channel_errors,
               n < 0 ? g_strerror (errno) : "short write");
}

static void
channel_send_rekey (Group *g, guint64 seq)
{
  unsigned parts = mcsec_rekey_tx_parts (g->tx, seq);
  for (unsigned p = 0; p < parts; p++) {
    const guint8 *d;
    gsize len = mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
    if (len)
      channel_send (g, d, len);
  }
}

static gboolean
on_heartbeat (gpointer data)
{
  Group *g = data;
  guint8 hb[MCSEC_REKEY_MAX_DATAGRAM];
  size_t len;

  if (mcsec_rekey_tx_heartbeat (g->tx, hb, sizeof hb, &len) == MCSEC_OK)
    channel_send (g, hb, len);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_followup (gpointer data)
{
  on_heartbeat (data);
  return G_SOURCE_REMOVE;
}

typedef struct {
  Group *g;
  guint64 seq;
} Resend;

/* rekey-redundancy: the datagrams of a rekey once more */
static gboolean
on_resend (gpointer data)
{
  Resend *r = data;
  channel_send_rekey (r->g, r->seq);
  return G_SOURCE_REMOVE;
}

static void queue_rekey (Conn *c, Group *g, guint64 first, guint64 last);

/* Commit the tree's queued changes as one rekey: a new group key, the SA
 * derived from it, one signed message on the channel for every member
 * present before; newcomers get their path over their connections. */
static void
group_commit (Group *g, const char *reason)
{
  const mcsec_lkh_entry_t *e;
  mcsec_mike_sender_t *senders =
      g_new0 (mcsec_mike_sender_t, MCSEC_MIKE_MAX_SENDERS);
  mcsec_mike_sa_t sa = {0};
  mcsec_rekey_t r = {0};
  size_t n, ns = 0, bytes = 0;
  guint64 seq = 0, durable;
  unsigned parts = 0;
  gint64 now = mono_ms ();
  mcsec_status_t st;

  if (g->batch_timer) {
    g_source_remove (g->batch_timer);
    g->batch_timer = 0;
  }
  st = mcsec_lkh_commit (g->tree, &e, &n);
  if (st == MCSEC_OK && !group_new_sa (g, reason))
    st = MCSEC_ERR_CRYPTO;
  if (st == MCSEC_OK &&
      !next_durable (g->rekey_store, &g->rekey_next, &g->rekey_limit, &durable))
    st = MCSEC_ERR_IO;
  if (st == MCSEC_OK && durable != mcsec_rekey_tx_next_seq (g->tx))
    st = MCSEC_ERR_INVALID_ARG; /* cannot happen: one counter each */
  if (st) {
    log_event ("error", "group=%s what=\"cannot rekey: %s\"", g->name,
               mcsec_status_message (st));
    g_free (senders);
    return;
  }
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    for (guint i = 0; i < m->n_sender_ids && ns < MCSEC_MIKE_MAX_SENDERS; i++) {
      senders[ns].sender_id = m->sender_ids[i];
      senders[ns].spki = m->spki;
      senders[ns++].spki_len = m->spki_len;
    }
  }
  sa.spi = g->sa.spi;
  sa.suite = g->sa.suite;
  sa.activate_in_ms =
      g->sa.activate_ms > now ? (uint32_t)(g->sa.activate_ms - now) : 0;
  sa.lifetime_s = g->key_lifetime_s;
  r.entries = e;
  r.n = n;
  r.sa = &sa;
  r.deactivation_ms = g->deactivation_ms;
  r.senders = senders;
  r.n_senders = ns;
  st = mcsec_rekey_tx_publish (g->tx, &r, &seq, &parts);
  g_free (senders);
  if (st) {
    log_event ("error", "group=%s what=\"cannot publish the rekey: %s\"",
               g->name, mcsec_status_message (st));
    return;
  }
  channel_send_rekey (g, seq);
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    if (!m->awaiting_path && m->unreached_until_ms > now) {
      queue_rekey (m, g, seq, seq);
      g->direct_rekeys++;
    }
  }
  for (guint k = 1; k <= g->redundancy; k++) {
    Resend *rs = g_new (Resend, 1);
    rs->g = g;
    rs->seq = seq;
    g_timeout_add_full (G_PRIORITY_DEFAULT, k * MCSEC_REKEY_REPEAT_MS,
                        on_resend, rs, g_free);
  }
  g_timeout_add (MCSEC_REKEY_FOLLOWUP1_MS, on_followup, g);
  g_timeout_add (MCSEC_REKEY_FOLLOWUP2_MS, on_followup, g);
  for (unsigned p = 0; p < parts; p++) {
    const guint8 *d;
    bytes += mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
  }
  g->channel_rekeys++;
  g->last_rekey_bytes = bytes;
  g->last_rekey_entries = n;
  g->last_rekey_datagrams = parts;
  log_event ("rekey-sent",
             "group=%s seq=%" G_GUINT64_FORMAT " wrapped-keys=%zu datagrams=%u "
             "bytes=%zu members=%zu depth=%u",
             g->name, seq, n, parts, bytes, mcsec_lkh_members (g->tree),
             mcsec_lkh_depth (g->tree));
  for (GList *l = g->members; l; l = l->next) {
    Conn *m = l->data;
    if (m->awaiting_path) {
      m->awaiting_path = FALSE;
      send_path_update (g, m);
    }
  }
}

static gboolean
on_batch (gpointer data)
{
  Group *g = data;
  gchar *reason = g->batch_reason;

  g->batch_timer = 0;
  g->batch_reason = NULL;
  group_commit (g, reason ? reason : "batch");
  g_free (reason);
  return G_SOURCE_REMOVE;
}

/* A join or leave of a key tree group: committed with the others of the
 * batch interval. */
static void
group_batch (Group *g, const char *reason)
{
  if (g->batch_reason && strcmp (g->batch_reason, reason) != 0) {
    g_free (g->batch_reason);
    g->batch_reason = g_strdup ("batch"); /* joins and leaves */
  } else if (g->batch_reason == NULL) {
    g->batch_reason = g_strdup (reason);
  }
  if (g->batch_timer == 0)
    g->batch_timer = g_timeout_add (g->batch_ms, on_batch, g);
}

static void
tree_leave (Group *g, Conn *c)
{
  if (g->tree && c->in_tree) {
    if (mcsec_lkh_leave (g->tree, c->leaf) != MCSEC_OK)
      log_event ("error", "group=%s what=\"key tree: no leaf %u\"", g->name,
                 c->leaf);
    c->in_tree = FALSE;
  }
}

/* The channel's datagrams of rekeys first..last, over a connection. */
static void
queue_rekey (Conn *c, Group *g, guint64 first, guint64 last)
{
  for (guint64 seq = first; seq <= last; seq++) {
    unsigned parts = mcsec_rekey_tx_parts (g->tx, seq);
    for (unsigned p = 0; p < parts; p++) {
      const guint8 *d;
      gsize len = mcsec_rekey_tx_datagram (g->tx, seq, p, &d);
      conn_queue (c, d, len);
    }
  }
  conn_update_watch (c);
}

/* A member asks for the channel's rekeys from SEQ on (it lacks them, or
 * the channel is silent for it), or for its path (SEQ 0, or older than
 * the controller keeps). */
static void
group_repair (Group *g, Conn *c, guint64 from)
{
  guint64 oldest, newest;
  gint64 now = mono_ms ();

  if (c->awaiting_path)
    return; /* its path comes with the next commit */
  mcsec_rekey_tx_range (g->tx, &oldest, &newest);
  if (from == 0 || (newest && from < oldest)) {
    if (now - c->last_resync_ms < RESYNC_MIN_MS)
      return;
    c->last_resync_ms = now;
    g->resyncs_served++;
    log_event ("resync", "group=%s identity=%s asked=%" G_GUINT64_FORMAT,
               g->name, c->identity, from);
    send_path_update (g, c);
    return;
  }
  if (from > newest) {
    /* nothing newer: a poll of a member that hears no heartbeat; the
     * channel does not reach it, so rekeys go to it directly for a while
     * (it polls again every MCSEC_MIKE_CHANNEL_SILENT_MS while deaf) */
    g->repair_polls++;
    c->unreached_until_ms = now + 3 * MCSEC_MIKE_CHANNEL_SILENT_MS;
    return;
  }
  g->repairs_served++;
  queue_rekey (c, g, from, newest);
}

/* Rekey (or only redistribute, when new_key is FALSE) to every member. */
static void
group_change (Group *g, gboolean new_key, const char *reason)
{
  if (g->tree) {
    /* a new group key at once, with whatever the batch holds */
    if (mcsec_lkh_refresh (g->tree) != MCSEC_OK)
      log_event ("error", "group=%s what=\"key tree: out of memory\"", g->name);
    group_commit (g, reason);
    return;
  }
  if (new_key || !g->sa.valid)
    if (!group_new_sa (g, reason))
      log_event ("error", "group=%s what=\"no random bytes for a key\"",
                 g->name);
  if (group_build_update (g))
    group_send_update (g, NULL);
}

static void
member_left (Conn *c, const char *why)
{
  Group *g = c->group;

  g->members = g_list_remove (g->members, c);
  log_event ("left", "group=%s identity=%s sender-id=%u why=\"%s\"", g->name,
             c->identity, c->sender_id, why);
  c->group = NULL;
  tree_leave (g, c);
  if (ctl.stopping)
    return;
  if (g->tree) {
    if (g->members)
      group_batch (g, "leave");
    return;
  }
  /* forward secrecy: the departed member gets nothing new */
  if (g->rekey_on_leave && g->members)
    group_change (g, TRUE, "leave");
  else if (c->sender_id && g->members)
    group_change (g, FALSE, "sender-left");
}

static void
handle_join (Conn *c, const mcsec_mike_msg_t *msg)
{
  gchar *name = g_strndup ((const char *)msg->group, msg->group_len);
  Group *g = safe_token (name, strlen (name))
                 ? g_hash_table_lookup (ctl.groups, name)
                 : NULL;
  gboolean may_send, may_receive, wants_send;
  guint8 wbuf[2048];
  mcsec_mike_builder_t b;
  size_t len;
  gboolean rekey;

  if (g == NULL) {
    refuse (c, MCSEC_MIKE_REASON_UNKNOWN_GROUP, "no such group",
            safe_token (name, strlen (name)) ? name : "(not printable)");
    goto out;
  }
  may_send = g_hash_table_contains (g->senders, c->identity);
  may_receive = may_send || g_hash_table_contains (g->receivers, c->identity);
  wants_send = (msg->role & MCSEC_MIKE_ROLE_SENDER) != 0;
  if (g_hash_table_contains (g->evicted, c->identity)) {
    refuse (c, MCSEC_MIKE_REASON_NOT_AUTHORISED, "evicted by an administrator",
            name);
    goto out;
  }
  if (!may_receive) {
    refuse (c, MCSEC_MIKE_REASON_NOT_AUTHORISED,
            "identity not in the group's access lists", name);
    goto out;
  }
  if (wants_send && !may_send) {
    refuse (c, MCSEC_MIKE_REASON_ROLE_NOT_ALLOWED,
            "identity may receive but not send", name);
    goto out;
  }
  if (wants_send) {
    const guint8 *p = msg->signing_key;
    EVP_PKEY *k = p ? d2i_PUBKEY (NULL, &p, (long)msg->signing_key_len) : NULL;
    int id = k ? EVP_PKEY_get_base_id (k) : 0;
    int ok = k && p == msg->signing_key + msg->signing_key_len &&
             (id == EVP_PKEY_ED25519 ||
              (id == EVP_PKEY_EC && EVP_PKEY_get_bits (k) == 256));
    EVP_PKEY_free (k);
    if (!ok) {
      refuse (c, MCSEC_MIKE_REASON_BAD_REQUEST,
              "a sender needs an Ed25519 or ECDSA P-256 signing key", name);
      goto out;
    }
    memcpy (c->spki, msg->signing_key, msg->signing_key_len);
    c->spki_len = msg->signing_key_len;
  }
  /* one connection per identity: the newer one wins */
  for (GList *l = g->members; l; l = l->next) {
    Conn *o = l->data;
    if (g_strcmp0 (o->identity, c->identity) == 0) {
      g->members = g_list_remove (g->members, o);
      o->group = NULL;
      tree_leave (g, o); /* the newcomer's join rekeys the tree */
      log_event ("replaced", "group=%s identity=%s", g->name, c->identity);
      conn_goodbye (o, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_DUPLICATE,
                    "the same identity joined again");
      break;
    }
  }
  /* a new key when asked (backward secrecy), unless the newest SA is not in
   * use yet: nothing was protected with it, the newcomer may have it */
  rekey = !g->sa.valid || g->tree ||
          (g->rekey_on_join && g->sa.activate_ms <= mono_ms ());
  if (wants_send) {
    guint max =
        g->sender_id_bits == 32 ? G_MAXUINT : (1u << g->sender_id_bits) - 1;
    guint count = msg->sender_count ? msg->sender_count : 1;
    GHashTable *avoid;
    if (!rekey && g_hash_table_size (g->sa.ids) + count > max)
      rekey = TRUE; /* every Sender-ID of this key is used */
    /* under the current key: none it ever had; under a new one: none a
     * member holds (the new key starts with those) */
    avoid = rekey ? members_ids (g) : g_hash_table_ref (g->sa.ids);
    for (guint i = 0; i < count; i++)
      if (!new_sender_id (g, avoid, &c->sender_ids[i])) {
        g_hash_table_unref (avoid);
        refuse (c, MCSEC_MIKE_REASON_SENDER_IDS_EXHAUSTED, "no free Sender-ID",
                name);
        goto out;
      }
    g_hash_table_unref (avoid);
    c->n_sender_ids = count;
    c->sender_id = c->sender_ids[0];
  }
  c->role = msg->role;
  c->group = g;
  c->state = C_MEMBER;
  c->joined_real_us = g_get_real_time ();
  g->members = g_list_append (g->members, c);
  ctl.registrations++;

  mcsec_mike_begin (&b, wbuf, sizeof wbuf, MCSEC_MIKE_WELCOME);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, g->name);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_IDENTITY, c->identity);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)c->role);
  mcsec_mike_put (&b, MCSEC_MIKE_A_CONTROLLER_KEY, ctl.update_spki,
                  ctl.update_spki_len);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_ID_BITS,
                     (uint8_t)g->sender_id_bits);
  for (guint i = 0; i < c->n_sender_ids; i++)
    mcsec_mike_put_u32 (&b, MCSEC_MIKE_A_SENDER_ID, c->sender_ids[i]);
  if (g->address && *g->address)
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_ADDRESS, g->address);
  mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_PORT, g->port);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SAM, g->sam);
  if (g->tree) {
    mcsec_mike_put_string (&b, MCSEC_MIKE_A_CHANNEL_ADDRESS,
                           g->channel_address);
    mcsec_mike_put_u16 (&b, MCSEC_MIKE_A_CHANNEL_PORT, g->channel_port);
  }
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    conn_queue (c, wbuf, len);
  log_event ("joined",
             "group=%s identity=%s role=%s sender-id=%u sender-ids=%u peer=%s",
             g->name, c->identity,
             c->role == MCSEC_MIKE_ROLE_BOTH     ? "both"
             : c->role == MCSEC_MIKE_ROLE_SENDER ? "sender"
                                                 : "receiver",
             c->sender_id, c->n_sender_ids, c->peer);
  if (g->tree) {
    if (mcsec_lkh_join (g->tree, &c->leaf) != MCSEC_OK) {
      g->members = g_list_remove (g->members, c);
      c->group = NULL;
      refuse (c, MCSEC_MIKE_REASON_SHUTTING_DOWN, "key tree: out of memory",
              name);
      goto out;
    }
    c->in_tree = c->awaiting_path = TRUE;
    group_batch (g, "join");
  } else if (rekey)
    group_change (g, TRUE, "join");
  else if (c->sender_id)
    group_change (g, FALSE, "sender-joined"); /* everyone needs its key */
  else
    group_send_update (g, c);
out:
  g_free (name);
}

/* Returns FALSE when the connection was closed. */
static gboolean
handle_frame (Conn *c, const guint8 *frame, gsize len)
{
  mcsec_mike_msg_t *msg = g_malloc (sizeof *msg);
  mcsec_status_t st = mcsec_mike_parse (frame, len, msg);
  gboolean ok = TRUE;

  if (st) {
    ctl.rejected_messages++;
    if (c->state == C_AWAIT_JOIN) {
      /* refused: open until the goodbye is written */
      refuse (c, MCSEC_MIKE_REASON_BAD_REQUEST, "malformed message", NULL);
    } else {
      conn_close (c, "malformed message"); /* c is gone */
      ok = FALSE;
    }
    goto out;
  }
  switch (msg->type) {
  case MCSEC_MIKE_JOIN:
    if (c->state != C_AWAIT_JOIN) {
      conn_close (c, "JOIN twice");
      ok = FALSE;
      break;
    }
    handle_join (c, msg);
    break;
  case MCSEC_MIKE_ACK:
    if (c->state == C_MEMBER && msg->seq > c->acked_seq &&
        msg->seq <= c->group->seq) {
      c->acked_seq = msg->seq;
      ctl.acks++;
    }
    break;
  case MCSEC_MIKE_PING:
    conn_queue_simple (c, MCSEC_MIKE_PONG, 0, NULL);
    break;
  case MCSEC_MIKE_REPAIR:
    if (c->state != C_MEMBER || c->group->tree == NULL) {
      ctl.rejected_messages++;
      conn_close (c, "REPAIR outside a key tree group");
      ok = FALSE;
      break;
    }
    group_repair (c->group, c, msg->seq);
    break;
  case MCSEC_MIKE_PONG:
    break;
  case MCSEC_MIKE_LEAVE:
    ctl.leaves++;
    conn_close (c, "left");
    ok = FALSE;
    break;
  default:
    ctl.rejected_messages++;
    conn_close (c, "unexpected message");
    ok = FALSE;
  }
out:
  OPENSSL_cleanse (msg, sizeof *msg);
  g_free (msg);
  return ok;
}

static gchar *
peer_identity (SSL *ssl)
{
  X509 *cert = SSL_get1_peer_certificate (ssl);
  char cn[MCSEC_MIKE_MAX_STRING + 1];
  int n;

  if (cert == NULL)
    return NULL;
  n = X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName,
                                 cn, sizeof cn);
  X509_free (cert);
  if (n <= 0 || (size_t)n != strlen (cn) || !safe_token (cn, (gsize)n))
    return NULL;
  return g_strdup (cn);
}

static void
conn_free (Conn *c)
{
  if (c->watch)
    g_source_remove (c->watch);
  SSL_free (c->ssl);
  if (c->fd >= 0)
    close (c->fd);
  mcsec_mike_reader_clear (&c->reader);
  out_clear (&c->out);
  g_free (c->identity);
  g_free (c);
}

static void
conn_close (Conn *c, const char *why)
{
  if (c->group) {
    if (g_strcmp0 (why, "left") != 0)
      ctl.disconnects++;
    member_left (c, why);
  } else if (c->state == C_HANDSHAKE) {
    log_event ("handshake-failed", "peer=%s why=\"%s\"", c->peer, why);
  }
  ctl.conns = g_list_remove (ctl.conns, c);
  ctl.n_conns--;
  conn_free (c);
}

/* TRUE while the connection lives. */
static gboolean
conn_flush (Conn *c)
{
  while (c->out.len) {
    int n = SSL_write (c->ssl, c->out.data, (int)MIN (c->out.len, 16384));
    if (n <= 0) {
      int e = SSL_get_error (c->ssl, n);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        c->want_write = TRUE;
        return TRUE;
      }
      conn_close (c, "write failed");
      return FALSE;
    }
    out_consume (&c->out, (gsize)n);
  }
  c->want_write = FALSE;
  if (c->state == C_CLOSING) {
    SSL_shutdown (c->ssl);
    conn_close (c, "closed after goodbye");
    return FALSE;
  }
  return TRUE;
}

static gboolean conn_io (gint fd, GIOCondition cond, gpointer data);

/* Bytes a member sent: frames handled in order.  FALSE when the connection
 * was closed (and freed). */
static gboolean
conn_input (Conn *c, const guint8 *buf, gsize n)
{
  const guint8 *frame;
  gsize flen;

  if (c->state == C_CLOSING)
    return TRUE; /* nothing more is read from a refused member */
  if (mcsec_mike_reader_feed (&c->reader, buf, n) != MCSEC_OK) {
    ctl.rejected_messages++;
    conn_close (c, "bad framing");
    return FALSE;
  }
  while ((flen = mcsec_mike_reader_next (&c->reader, &frame)) > 0) {
    if (!handle_frame (c, frame, flen))
      return FALSE; /* closed: the source is gone with it */
    if (c->state == C_CLOSING)
      break;
  }
  return TRUE;
}

static void
conn_update_watch (Conn *c)
{
  GIOCondition want = G_IO_IN | ((c->out.len || c->want_write) ? G_IO_OUT : 0);
  if (c->fd < 0) { /* no socket: the fuzz target's connections */
    c->cond = want;
    return;
  }
  if (want != c->cond) {
    g_source_remove (c->watch);
    c->watch = g_unix_fd_add (c->fd, want, conn_io, c);
    c->cond = want;
  }
}

static gboolean
conn_handshake (Conn *c)
{
  int r = SSL_do_handshake (c->ssl);
  if (r == 1) {
    c->identity = peer_identity (c->ssl);
    if (c->identity == NULL) {
      ctl.handshake_failures++;
      conn_close (c, "certificate without a usable common name");
      return FALSE;
    }
    c->state = C_AWAIT_JOIN;
    return TRUE;
  }
  switch (SSL_get_error (c->ssl, r)) {
  case SSL_ERROR_WANT_READ:
    c->want_write = FALSE;
    return TRUE;
  case SSL_ERROR_WANT_WRITE:
    c->want_write = TRUE;
    return TRUE;
  default: {
    char why[256];
    long vr = SSL_get_verify_result (c->ssl);
    unsigned long e = ERR_peek_last_error ();
    if (vr != X509_V_OK)
      g_snprintf (why, sizeof why, "member certificate rejected: %s",
                  X509_verify_cert_error_string (vr));
    else
      g_snprintf (why, sizeof why, "TLS: %s",
                  e ? ERR_reason_error_string (e) : "connection closed");
    ERR_clear_error ();
    ctl.handshake_failures++;
    conn_close (c, why);
    return FALSE;
  }
  }
}

static gboolean
conn_io (gint fd, GIOCondition cond, gpointer data)
{
  Conn *c = data;
  guint8 buf[16384];

  (void)fd;
  (void)cond;
  if (c->state == C_HANDSHAKE) {
    if (!conn_handshake (c))
      return G_SOURCE_REMOVE;
    if (c->state == C_HANDSHAKE) {
      conn_update_watch (c);
      return G_SOURCE_CONTINUE;
    }
  }
  for (;;) {
    int n = SSL_read (c->ssl, buf, sizeof buf);
    if (n <= 0) {
      int e = SSL_get_error (c->ssl, n);
      ERR_clear_error ();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        break;
      c->watch = 0; /* removed by returning REMOVE */
      conn_close (c, e == SSL_ERROR_ZERO_RETURN ? "connection closed"
                                                : "connection lost");
      return G_SOURCE_REMOVE;
    }
    c->last_rx_ms = mono_ms ();
    if (!conn_input (c, buf, (gsize)n))
      return G_SOURCE_REMOVE; /* closed: c and its source are gone */
  }
  if (!conn_flush (c))
    return G_SOURCE_REMOVE;
  conn_update_watch (c);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_accept (gint fd, GIOCondition cond, gpointer data)
{
  (void)cond;
  (void)data;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    int one = 1;
    Conn *c;
    int cfd =
        accept4 (fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
      break;
    if (ctl.n_conns >= MAX_CONNECTIONS) {
      close (cfd);
      continue;
    }
    setsockopt (cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    getnameinfo ((struct sockaddr *)&ss, sl, host, sizeof host, port,
                 sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    c = g_new0 (Conn, 1);
    c->fd = cfd;
    c->ssl = SSL_new (ctl.ctx);
    SSL_set_fd (c->ssl, cfd);
    SSL_set_accept_state (c->ssl);
    g_snprintf (c->peer, sizeof c->peer, "%s:%s", host, port);
    c->started_ms = c->last_rx_ms = mono_ms ();
    c->cond = G_IO_IN;
    c->watch = g_unix_fd_add (cfd, G_IO_IN, conn_io, c);
    ctl.conns = g_list_prepend (ctl.conns, c);
    ctl.n_conns++;
    ctl.connections++;
  }
  return G_SOURCE_CONTINUE;
}

/* Once a second: handshakes that take too long, silent members, keys that
 * reach their lifetime. */
static gboolean
on_sweep (gpointer data)
{
  gint64 now = mono_ms ();
  GList *l = ctl.conns;
  GHashTableIter it;
  gpointer v;

  (void)data;
  while (l) {
    Conn *c = l->data;
    l = l->next;
    if ((c->state == C_HANDSHAKE || c->state == C_AWAIT_JOIN ||
         c->state == C_CLOSING) &&
        now - c->started_ms > HANDSHAKE_TIMEOUT_MS) {
      if (c->state == C_HANDSHAKE)
        ctl.handshake_failures++;
      conn_close (c, "too slow to join");
    } else if (c->state == C_MEMBER &&
               now - c->last_rx_ms > MCSEC_MIKE_DEAD_MS) {
      conn_close (c, "silent");
    }
  }
  g_hash_table_iter_init (&it, ctl.groups);
  while (g_hash_table_iter_next (&it, NULL, &v)) {
    Group *g = v;
    if (g->sa.valid && g->members &&
        now - g->sa.created_ms >= (gint64)g->key_lifetime_s * 1000)
      group_change (g, TRUE, "lifetime");
  }
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* Administration (Unix socket, one request line, one JSON answer)            */

static void
json_string (GString *s, const char *v)
{
  g_string_append_c (s, '"');
  for (const char *p = v ? v : ""; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (s, "\\%c", *p);
    else if ((unsigned char)*p < 0x20)
      g_string_append_printf (s, "\\u%04x", *p);
    else
      g_string_append_c (s, *p);
  }
  g_string_append_c (s, '"');
}

static const char *
role_name (guint role)
{
  return role == MCSEC_MIKE_ROLE_BOTH     ? "both"
         : role == MCSEC_MIKE_ROLE_SENDER ? "sender"
                                          : "receiver";
}

static void
json_group (GString *s, Group *g, gboolean with_members)
{
  gint64 now = mono_ms ();
  guint n = 0;

  g_string_append (s, "{\"name\":");
  json_string (s, g->name);
  g_string_append (s, ",\"address\":");
  json_string (s, g->address);
  g_string_append_printf (
      s,
      ",\"port\":%u,\"cipher\":\"%s\",\"sam\":\"%s\",\"spi\":%u,"
      "\"key-age-s\":%" G_GINT64_FORMAT ",\"seq\":%" G_GUINT64_FORMAT
      ",\"rekeys\":%" G_GUINT64_FORMAT ",\"updates-sent\":%" G_GUINT64_FORMAT
      ",\"last-rekey-reason\":",
      g->port, mcsec_suite_name (g->suite),
      g->sam == MCSEC_SAM_BLOCK        ? "block"
      : g->sam == MCSEC_SAM_PER_PACKET ? "per-packet"
                                       : "none",
      g->sa.valid ? g->sa.spi : 0,
      g->sa.valid ? (now - g->sa.created_ms) / 1000 : 0, g->seq, g->rekeys,
      g->updates_sent);
  json_string (s, g->last_rekey_reason);
  for (GList *l = g->members; l; l = l->next)
    n += ((Conn *)l->data)->acked_seq == g->seq;
  g_string_append_printf (s, ",\"members-count\":%u,\"members-current\":%u",
                          g_list_length (g->members), n);
  if (g->tree) {
    guint unreached = 0;
    for (GList *l = g->members; l; l = l->next)
      unreached += ((Conn *)l->data)->unreached_until_ms > now;
    g_string_append (s, ",\"rekey-channel\":");
    json_string (s, g->channel);
    g_string_append_printf (
        s,
        ",\"tree\":{\"degree\":%u,\"depth\":%u,\"members\":%zu,"
        "\"pending\":%zu,\"memory-bytes\":%zu,\"batch-interval-ms\":%u},"
        "\"channel\":{\"rekeys\":%" G_GUINT64_FORMAT
        ",\"datagrams\":%" G_GUINT64_FORMAT ",\"bytes\":%" G_GUINT64_FORMAT
        ",\"send-errors\":%" G_GUINT64_FORMAT ",\"repairs\":%" G_GUINT64_FORMAT
        ",\"resyncs\":%" G_GUINT64_FORMAT ",\"polls\":%" G_GUINT64_FORMAT
        ",\"direct\":%" G_GUINT64_FORMAT ",\"unreached-members\":%u"
        ",\"last-rekey-bytes\":%zu,\"last-rekey-datagrams\":%u,"
        "\"last-rekey-wrapped-keys\":%zu,\"next-seq\":%" G_GUINT64_FORMAT "}",
        g->tree_degree, mcsec_lkh_depth (g->tree), mcsec_lkh_members (g->tree),
        mcsec_lkh_pending (g->tree), mcsec_lkh_memory (g->tree), g->batch_ms,
        g->channel_rekeys, g->channel_datagrams, g->channel_bytes,
        g->channel_errors, g->repairs_served, g->resyncs_served,
        g->repair_polls, g->direct_rekeys, unreached, g->last_rekey_bytes,
        g->last_rekey_datagrams, g->last_rekey_entries,
        mcsec_rekey_tx_next_seq (g->tx));
  }
  if (with_members) {
    g_string_append (s, ",\"members\":[");
    for (GList *l = g->members; l; l = l->next) {
      Conn *c = l->data;
      GDateTime *dt =
          g_date_time_new_from_unix_utc (c->joined_real_us / G_USEC_PER_SEC);
      gchar *since = g_date_time_format_iso8601 (dt);
      g_string_append (s, "{\"identity\":");
      json_string (s, c->identity);
      g_string_append_printf (
          s,
          ",\"role\":\"%s\",\"sender-id\":%u,\"peer\":\"%s\","
          "\"connected-since\":\"%s\",\"acked-seq\":%" G_GUINT64_FORMAT "}%s",
          role_name (c->role), c->sender_id, c->peer, since, c->acked_seq,
          l->next ? "," : "");
      g_free (since);
      g_date_time_unref (dt);
    }
    g_string_append (s, "]");
  }
  g_string_append (s, "}");
}

/* Key tree groups: the SEQ of the last rekey on the channel; closes the
 * object. */
static void
json_rekey_seq (GString *s, Group *g)
{
  if (g->tree)
    g_string_append_printf (s, ",\"rekey-seq\":%" G_GUINT64_FORMAT,
                            mcsec_rekey_tx_next_seq (g->tx) - 1);
  g_string_append (s, "}");
}

static gchar *
admin_request (const char *line)
{
  GString *s = g_string_new (NULL);
  gchar **argv = g_strsplit_set (line, " \t\r\n", -1);
  gchar *words[4] = {0};
  int n = 0;

  for (int i = 0; argv[i] && n < 4; i++)
    if (*argv[i])
      words[n++] = argv[i];
  if (n >= 1 && strcmp (words[0], "list") == 0) {
    GHashTableIter it;
    gpointer v;
    gboolean first = TRUE;
    g_string_append (s, "{\"ok\":true,\"groups\":[");
    g_hash_table_iter_init (&it, ctl.groups);
    while (g_hash_table_iter_next (&it, NULL, &v)) {
      if (!first)
        g_string_append_c (s, ',');
      first = FALSE;
      json_group (s, v, TRUE);
    }
    g_string_append (s, "]}");
  } else if (n >= 1 && strcmp (words[0], "stats") == 0) {
    g_string_append_printf (
        s,
        "{\"ok\":true,\"uptime-s\":%" G_GINT64_FORMAT
        ",\"connections\":%" G_GUINT64_FORMAT ",\"open-connections\":%u,"
        "\"handshake-failures\":%" G_GUINT64_FORMAT
        ",\"registrations\":%" G_GUINT64_FORMAT
        ",\"refusals\":%" G_GUINT64_FORMAT ",\"refused-by\":{",
        (g_get_real_time () - ctl.started_real_us) / G_USEC_PER_SEC,
        ctl.connections, ctl.n_conns, ctl.handshake_failures, ctl.registrations,
        ctl.refusals);
    for (guint r = 1; r <= MCSEC_MIKE_REASON_SHUTTING_DOWN; r++)
      g_string_append_printf (s, "%s\"%s\":%" G_GUINT64_FORMAT,
                              r > 1 ? "," : "", mcsec_mike_reason_name (r),
                              ctl.refused_by[r]);
    g_string_append_printf (
        s,
        "},\"leaves\":%" G_GUINT64_FORMAT ",\"disconnects\":%" G_GUINT64_FORMAT
        ",\"evictions\":%" G_GUINT64_FORMAT
        ",\"updates-sent\":%" G_GUINT64_FORMAT ",\"acks\":%" G_GUINT64_FORMAT
        ",\"rejected-messages\":%" G_GUINT64_FORMAT ",\"groups\":[",
        ctl.leaves, ctl.disconnects, ctl.evictions, ctl.updates_sent, ctl.acks,
        ctl.rejected_messages);
    {
      GHashTableIter it;
      gpointer v;
      gboolean first = TRUE;
      g_hash_table_iter_init (&it, ctl.groups);
      while (g_hash_table_iter_next (&it, NULL, &v)) {
        if (!first)
          g_string_append_c (s, ',');
        first = FALSE;
        json_group (s, v, FALSE);
      }
    }
    g_string_append (s, "]}");
  } else if (n == 2 && strcmp (words[0], "export-keys") == 0) {
    Group *g = g_hash_table_lookup (ctl.groups, words[1]);
    if (g == NULL) {
      g_string_append (s, "{\"ok\":false,\"error\":\"no such group\"}");
    } else if (!ctl.allow_key_export) {
      log_event ("key-export-refused", "group=%s", g->name);
      g_string_append (s, "{\"ok\":false,\"error\":\"key export is off: "
                          "set allow-key-export = true in [controller]\"}");
    } else {
      /* sized once: appending the key never reallocates (no copy left) */
      g_string_free (s, TRUE);
      s = g_string_sized_new (512 + 2 * MCSEC_MIKE_MAX_KEY_LEN);
      g_string_append (s, "{\"ok\":true,\"sas\":[");
      if (g->sa.valid) {
        g_string_append_printf (s, "{\"spi\":%u,\"suite\":\"%s\",\"key\":\"",
                                g->sa.spi, mcsec_suite_name (g->sa.suite));
        for (gsize i = 0; i < g->sa.key_len; i++)
          g_string_append_printf (s, "%02x", g->sa.key[i]);
        g_string_append (s, "\"}");
      }
      g_string_append (s, "]}");
      log_event ("keys-exported", "group=%s spi=0x%08x", g->name,
                 g->sa.valid ? g->sa.spi : 0);
    }
  } else if (n == 2 && strcmp (words[0], "rekey") == 0) {
    Group *g = g_hash_table_lookup (ctl.groups, words[1]);
    if (g == NULL) {
      g_string_append (s, "{\"ok\":false,\"error\":\"no such group\"}");
    } else {
      group_change (g, TRUE, "admin");
      g_string_append_printf (
          s,
          "{\"ok\":true,\"spi\":%u,\"seq\":%" G_GUINT64_FORMAT
          ",\"members\":%u",
          g->sa.spi, g->seq, g_list_length (g->members));
      json_rekey_seq (s, g);
    }
  } else if (n == 3 && strcmp (words[0], "evict") == 0) {
    Group *g = g_hash_table_lookup (ctl.groups, words[1]);
    Conn *victim = NULL;
    if (g == NULL) {
      g_string_append (s, "{\"ok\":false,\"error\":\"no such group\"}");
    } else {
      for (GList *l = g->members; l; l = l->next)
        if (g_strcmp0 (((Conn *)l->data)->identity, words[2]) == 0)
          victim = l->data;
      /* refused from now on, connected or not */
      g_hash_table_add (g->evicted, g_strdup (words[2]));
      ctl.evictions++;
      log_event ("evicted", "group=%s identity=%s connected=%s", g->name,
                 words[2], victim ? "yes" : "no");
      if (victim) {
        /* out of the group first: the new key must not reach it */
        g->members = g_list_remove (g->members, victim);
        victim->group = NULL;
        tree_leave (g, victim);
        conn_goodbye (victim, MCSEC_MIKE_EVICTED, MCSEC_MIKE_REASON_EVICTED,
                      "evicted by an administrator");
      }
      if (g->members)
        group_change (g, TRUE, "evict");
      g_string_append_printf (s,
                              "{\"ok\":true,\"was-connected\":%s,\"spi\":%u,"
                              "\"seq\":%" G_GUINT64_FORMAT,
                              victim ? "true" : "false", g->sa.spi, g->seq);
      json_rekey_seq (s, g);
    }
  } else {
    g_string_append (s, "{\"ok\":false,\"error\":\"unknown request (list, "
                        "stats, rekey GROUP, evict GROUP IDENTITY, "
                        "export-keys GROUP)\"}");
  }
  g_strfreev (argv);
  g_string_append_c (s, '\n');
  return g_string_free (s, FALSE);
}

static gboolean
on_admin (gint fd, GIOCondition cond, gpointer data)
{
  int cfd = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
  char line[1024];
  ssize_t n;
  gchar *answer;
  struct timeval tv = {2, 0};

  (void)cond;
  (void)data;
  if (cfd < 0)
    return G_SOURCE_CONTINUE;
  setsockopt (cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  /* one line (the client may write it in pieces) */
  n = 0;
  while ((size_t)n < sizeof line - 1 &&
         memchr (line, '\n', (size_t)n) == NULL) {
    ssize_t r = read (cfd, line + n, sizeof line - 1 - (size_t)n);
    if (r <= 0)
      break;
    n += r;
  }
  if (n > 0) {
    line[n] = '\0';
    answer = admin_request (line);
    if (write (cfd, answer, strlen (answer)) < 0)
      log_event ("admin-error", "what=\"cannot answer: %s\"",
                 g_strerror (errno));
    OPENSSL_cleanse (answer, strlen (answer)); /* export-keys holds keys */
    g_free (answer);
  }
  close (cfd);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                      */

/* OpenSSL's reason for the last failure, or a plain one (a missing file
 * has no OpenSSL reason string). */
static const char *
tls_reason (unsigned long e)
{
  const char *r = e ? ERR_reason_error_string (e) : NULL;
  return r ? r : "unreadable, or not PEM";
}

static gboolean
setup_tls (GError **error)
{
  FILE *f;
  STACK_OF (X509_NAME) * cas;
  unsigned long e;

  ctl.ctx = SSL_CTX_new (TLS_server_method ());
  SSL_CTX_set_min_proto_version (ctl.ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version (ctl.ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (ctl.ctx,
                      SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  SSL_CTX_set_num_tickets (ctl.ctx, 0);
  SSL_CTX_set_session_cache_mode (ctl.ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode (ctl.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file (ctl.ctx, ctl.certificate) != 1) {
    e = ERR_get_error ();
    config_fail (error, "controller", "certificate", "cannot use %s: %s",
                 ctl.certificate, tls_reason (e));
    return FALSE;
  }
  if (SSL_CTX_use_PrivateKey_file (ctl.ctx, ctl.private_key,
                                   SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key (ctl.ctx) != 1) {
    e = ERR_get_error ();
    config_fail (error, "controller", "private-key",
                 "cannot use %s (or it does not match the certificate): %s",
                 ctl.private_key, tls_reason (e));
    return FALSE;
  }
  if (SSL_CTX_load_verify_locations (ctl.ctx, ctl.ca, NULL) != 1 ||
      (cas = SSL_load_client_CA_file (ctl.ca)) == NULL) {
    e = ERR_get_error ();
    config_fail (error, "controller", "ca", "cannot load %s: %s", ctl.ca,
                 tls_reason (e));
    return FALSE;
  }
  SSL_CTX_set_client_CA_list (ctl.ctx, cas);
  f = fopen (ctl.signing_key, "r");
  ctl.update_key = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose (f);
  if (ctl.update_key == NULL ||
      EVP_PKEY_get_base_id (ctl.update_key) != EVP_PKEY_ED25519 ||
      mcsec_mike_public_key_der (ctl.update_key, ctl.update_spki,
                                 sizeof ctl.update_spki,
                                 &ctl.update_spki_len) != MCSEC_OK) {
    config_fail (error, "controller", "signing-key",
                 "%s is not a PEM Ed25519 private key", ctl.signing_key);
    return FALSE;
  }
  ERR_clear_error ();
  return TRUE;
}

static gboolean
setup_listen (GError **error)
{
  struct addrinfo hints = {0}, *res = NULL;
  gchar *host = NULL, *port = NULL;
  const char *colon = strrchr (ctl.listen, ':');
  int one = 1, rc;

  if (colon == NULL || colon == ctl.listen) {
    config_fail (error, "controller", "listen", "'%s' is not HOST:PORT",
                 ctl.listen);
    return FALSE;
  }
  host = g_strndup (ctl.listen, (gsize)(colon - ctl.listen));
  if (host[0] == '[' && host[strlen (host) - 1] == ']') {
    gchar *h = g_strndup (host + 1, strlen (host) - 2);
    g_free (host);
    host = h;
  }
  port = g_strdup (colon + 1);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0) {
    config_fail (error, "controller", "listen", "'%s': %s", ctl.listen,
                 gai_strerror (rc));
    goto fail;
  }
  ctl.listen_fd =
      socket (res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt (ctl.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ctl.listen_fd < 0 ||
      bind (ctl.listen_fd, res->ai_addr, res->ai_addrlen) != 0 ||
      listen (ctl.listen_fd, 1024) != 0) {
    config_fail (error, "controller", "listen", "cannot listen on %s: %s",
                 ctl.listen, g_strerror (errno));
    freeaddrinfo (res);
    goto fail;
  }
  freeaddrinfo (res);
  g_free (host);
  g_free (port);
  return TRUE;
fail:
  g_free (host);
  g_free (port);
  return FALSE;
}

static gboolean
setup_admin (GError **error)
{
  struct sockaddr_un sa = {0};
  mode_t old;

  if (strlen (ctl.admin_socket) >= sizeof sa.sun_path) {
    config_fail (error, "controller", "admin-socket", "path too long");
    return FALSE;
  }
  sa.sun_family = AF_UNIX;
  strcpy (sa.sun_path, ctl.admin_socket);
  unlink (ctl.admin_socket);
  ctl.admin_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  old = umask (0077); /* only the controller's user may administer it */
  if (ctl.admin_fd < 0 ||
      bind (ctl.admin_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen (ctl.admin_fd, 16) != 0) {
    umask (old);
    config_fail (error, "controller", "admin-socket", "cannot listen on %s: %s",
                 ctl.admin_socket, g_strerror (errno));
    return FALSE;
  }
  umask (old);
  return TRUE;
}

static gboolean
on_signal (gpointer data)
{
  (void)data;
  g_main_loop_quit (ctl.loop);
  return G_SOURCE_REMOVE;
}

static void
usage (FILE *f)
{
  fprintf (f,
           "Usage: mcsec-controller [--check] CONFIG\n"
           "\n"
           "Run the mcsec group controller with the configuration CONFIG\n"
           "(docs/controller.md).  Logs go to standard error, one event per\n"
           "line.  SIGINT or SIGTERM stops it.\n"
           "\n"
           "  --check   load and check the configuration and credentials,\n"
           "            then exit (0: usable)\n"
           "  --help    show this text\n");
}

#ifndef MCSEC_CONTROLLER_NO_MAIN /* the fuzz targets have their own */
int
main (int argc, char **argv)
{
  GError *error = NULL;
  gboolean check = FALSE;
  const char *config = NULL;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0) {
      usage (stdout);
      return 0;
    } else if (strcmp (argv[i], "--check") == 0) {
      check = TRUE;
    } else if (argv[i][0] == '-' || config) {
      usage (stderr);
      return 2;
    } else {
      config = argv[i];
    }
  }
  if (config == NULL) {
    usage (stderr);
    return 2;
  }
  signal (SIGPIPE, SIG_IGN);
  ctl.config_path = g_strdup (config);
  ctl.listen_fd = ctl.admin_fd = -1;
  if (!load_config (&error) || !setup_tls (&error)) {
    fprintf (stderr, "mcsec-controller: %s\n", error->message);
    return 1;
  }
  if (check) {
    printf ("%s: OK (%u groups)\n", config, g_hash_table_size (ctl.groups));
    return 0;
  }
  if (!open_state (&error) || !setup_channels (&error) ||
      !setup_listen (&error) || !setup_admin (&error)) {
    fprintf (stderr, "mcsec-controller: %s\n", error->message);
    return 1;
  }
  ctl.started_real_us = g_get_real_time ();
  ctl.loop = g_main_loop_new (NULL, FALSE);
  g_unix_fd_add (ctl.listen_fd, G_IO_IN, on_accept, NULL);
  g_unix_fd_add (ctl.admin_fd, G_IO_IN, on_admin, NULL);
  g_timeout_add (1000, on_sweep, NULL);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);
  log_event ("started",
             "listen=%s groups=%u admin-socket=%s rejoin-window-ms=%u",
             ctl.listen, g_hash_table_size (ctl.groups), ctl.admin_socket,
             ctl.recovery_until_ms ? ctl.rejoin_window_ms : 0);
  g_main_loop_run (ctl.loop);

  /* members keep their keys and reconnect to the next controller: close
   * without a word (an EVICTED would end their membership), no rekey */
  ctl.stopping = TRUE;
  while (ctl.conns)
    conn_close (ctl.conns->data, "controller stops");
  log_event ("stopped", "registrations=%" G_GUINT64_FORMAT, ctl.registrations);
  unlink (ctl.admin_socket);
  g_hash_table_unref (ctl.groups);
  mcsec_counter_store_close (ctl.seq_store);
  mcsec_counter_store_close (ctl.sid_store);
  EVP_PKEY_free (ctl.update_key);
  SSL_CTX_free (ctl.ctx);
  g_main_loop_unref (ctl.loop);
  return 0;
}
#endif
