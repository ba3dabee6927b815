/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's configuration file (config.h, docs/controller.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mcsec/mcsec-lkh.h>

#include "config.h"

typedef struct {
  const char *path, *text;
} Src;

/* ------------------------------------------------------------------------ */
/* Every setting the file may hold                                            */

typedef enum { S_STR, S_STRV, S_UINT, S_SIZE, S_BOOL } SettingType;

/* [controller] and [cluster]: what a reload (SIGHUP) does with a change.
 * live: the running daemon takes the new value; otherwise it keeps the one
 * it started with until a restart, and says so (ctl_config_update). */
typedef struct {
  const char *section, *key;
  SettingType type;
  gsize offset; /* in CtlConfig */
  gboolean live;
} Setting;

#define SETTING(sec, key, type, field, live)                                   \
  {                                                                            \
    sec, key, type, G_STRUCT_OFFSET (CtlConfig, field), live                   \
  }

static const Setting settings[] = {
    SETTING ("controller", "listen", S_STR, listen, FALSE),
    SETTING ("controller", "certificate", S_STR, certificate, FALSE),
    SETTING ("controller", "private-key", S_STR, private_key, FALSE),
    SETTING ("controller", "ca", S_STR, ca, FALSE),
    SETTING ("controller", "update-signing-key", S_STR, update_signing_key,
             FALSE),
    SETTING ("controller", "state-dir", S_STR, state_dir, FALSE),
    SETTING ("controller", "admin-socket", S_STR, admin_socket, FALSE),
    SETTING ("controller", "workers", S_UINT, workers, FALSE),
    SETTING ("controller", "rejoin-window", S_UINT, rejoin_window_ms, TRUE),
    SETTING ("controller", "allow-key-export", S_BOOL, allow_key_export, TRUE),
    SETTING ("controller", "max-handshakes", S_UINT, max_handshakes, TRUE),
    SETTING ("controller", "max-handshakes-per-source", S_UINT,
             max_handshakes_per_source, TRUE),
    SETTING ("controller", "handshake-timeout", S_UINT, handshake_timeout_ms,
             TRUE),
    SETTING ("controller", "max-output", S_SIZE, max_output, TRUE),
    SETTING ("controller", "repair-rate", S_UINT, repair_per_s, TRUE),
    SETTING ("cluster", "etcd", S_STR, etcd, FALSE),
    SETTING ("cluster", "name", S_STR, cluster_name, FALSE),
    SETTING ("cluster", "advertise", S_STR, advertise, FALSE),
    SETTING ("cluster", "controllers", S_STRV, controllers, FALSE),
    SETTING ("cluster", "lease", S_UINT, lease_s, FALSE),
    SETTING ("cluster", "etcd-timeout", S_UINT, etcd_timeout_ms, FALSE),
    SETTING ("cluster", "prefix", S_STR, etcd_prefix, FALSE),
    SETTING ("cluster", "cluster-key", S_STR, cluster_key, FALSE),
    SETTING ("cluster", "relay", S_BOOL, relay, FALSE),
    SETTING ("cluster", "relay-queue", S_SIZE, relay_queue, FALSE),
    SETTING ("cluster", "etcd-ca", S_STR, etcd_ca, FALSE),
    SETTING ("cluster", "etcd-certificate", S_STR, etcd_certificate, FALSE),
    SETTING ("cluster", "etcd-private-key", S_STR, etcd_private_key, FALSE),
};

/* Older names still read, each with a warning that names the new one
 * (ctl_config_load's `warnings`); giving both is an error. */
typedef struct {
  const char *section, *old_key, *key, *why;
} Renamed;

static const Renamed renamed[] = {
    /* a member's signing key is its own packet-signing (SAM) key,
     * `signing-key-file`; the controller's signs the key updates */
    {"controller", "signing-key", "update-signing-key",
     "the key that signs key updates; a member's own signing key is "
     "signing-key-file"},
};

/* The current name of `key` in a section of kind `kind`, when `key` is an
 * older one; NULL otherwise. */
static const Renamed *
renamed_setting (const char *kind, const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (renamed); i++)
    if (strcmp (renamed[i].section, kind) == 0 &&
        strcmp (renamed[i].old_key, key) == 0)
      return &renamed[i];
  return NULL;
}

/* [group NAME]: the core compares them on a reload (mcsec_ctl_reload) */
static const char *const group_settings[] = {
    "senders",
    "receivers",
    "address",
    "port",
    "cipher",
    "sam",
    "sender-id-bits",
    "spi-per-sender",
    "key-lifetime",
    "activation-delay",
    "deactivation-delay",
    "rekey-on-join",
    "rekey-on-leave",
    "rekey-channel",
    "rekey-interface",
    "rekey-ttl",
    "key-tree-degree",
    "batch-interval",
    "rekey-redundancy",
};

/* Edits between a and b (optimal string alignment: a swap of two
 * neighbours is one), case-insensitive; for "did you mean". */
static guint
edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  guint *d, r;

  if (la > 64 || lb > 64)
    return G_MAXUINT;
  d = g_new (guint, (la + 1) * (lb + 1));
#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (gsize i = 0; i <= la; i++)
    D (i, 0) = (guint)i;
  for (gsize j = 0; j <= lb; j++)
    D (0, j) = (guint)j;
  for (gsize i = 1; i <= la; i++)
    for (gsize j = 1; j <= lb; j++) {
      char ai = g_ascii_tolower (a[i - 1]), bj = g_ascii_tolower (b[j - 1]);
      guint v = MIN (D (i - 1, j) + 1, D (i, j - 1) + 1);
      v = MIN (v, D (i - 1, j - 1) + (ai != bj));
      if (i > 1 && j > 1 && ai == g_ascii_tolower (b[j - 2]) &&
          g_ascii_tolower (a[i - 2]) == bj)
        v = MIN (v, D (i - 2, j - 2) + 1);
      D (i, j) = v;
    }
  r = D (la, lb);
#undef D
  g_free (d);
  return r;
}

/* The settings of a section kind ("controller", "cluster", "group"). */
static guint
section_keys (const char *kind, const char **out, guint max)
{
  guint n = 0;
  if (strcmp (kind, "group") == 0) {
    for (guint i = 0; i < G_N_ELEMENTS (group_settings) && n < max; i++)
      out[n++] = group_settings[i];
    return n;
  }
  for (guint i = 0; i < G_N_ELEMENTS (settings) && n < max; i++)
    if (strcmp (settings[i].section, kind) == 0)
      out[n++] = settings[i].key;
  return n;
}

/* Why `key` is not a setting of [section], with a hint: the nearest
 * setting when one is close, or the section it belongs to. */
static gchar *
unknown_setting (const char *kind, const char *key)
{
  static const char *const kinds[] = {"controller", "cluster", "group"};
  const char *keys[64], *best = NULL;
  guint n = section_keys (kind, keys, G_N_ELEMENTS (keys));
  guint best_d = G_MAXUINT, near = strlen (key) >= 10 ? 3 : 2;

  for (guint i = 0; i < n; i++) {
    guint dist = edit_distance (key, keys[i]);
    if (dist < best_d) {
      best_d = dist;
      best = keys[i];
    }
  }
  if (best && best_d <= near)
    return g_strdup_printf ("unknown setting (did you mean '%s'?)", best);
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++) {
    if (strcmp (kinds[k], kind) == 0)
      continue;
    n = section_keys (kinds[k], keys, G_N_ELEMENTS (keys));
    for (guint i = 0; i < n; i++)
      if (strcmp (keys[i], key) == 0)
        return g_strdup_printf ("unknown setting (a setting of [%s%s])",
                                kinds[k], k == 2 ? " NAME" : "");
  }
  return g_strdup ("unknown setting (docs/controller.md lists them)");
}

/* The line of `key` in [section] of the text, for error messages; 0 if not
 * found. */
static int
config_line (const Src *src, const char *section, const char *key)
{
  gchar **lines;
  gboolean in_section = section == NULL;
  int found = 0;

  if (src->text == NULL)
    return 0;
  lines = g_strsplit (src->text, "\n", -1);
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
  return found;
}

/* The name the file gives `key` of [section] (a [controller] or [cluster]
 * setting): an older one, with a warning added to cfg->warnings, when that
 * is what it uses; otherwise `key`. */
static const char *
given_name (const Src *src, GKeyFile *kf, CtlConfig *cfg, const char *section,
            const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (renamed); i++) {
    const Renamed *r = &renamed[i];
    int line;
    if (strcmp (r->section, section) != 0 || strcmp (r->key, key) != 0 ||
        !g_key_file_has_key (kf, section, r->old_key, NULL))
      continue;
    line = config_line (src, section, r->old_key);
    g_ptr_array_add (
        cfg->warnings,
        line
            ? g_strdup_printf ("%s:%d: [%s] %s: deprecated name: write %s "
                               "(%s)",
                               src->path, line, section, r->old_key, r->key,
                               r->why)
            : g_strdup_printf ("%s: [%s] %s: deprecated name: write %s (%s)",
                               src->path, section, r->old_key, r->key, r->why));
    return r->old_key;
  }
  return key;
}

static void G_GNUC_PRINTF (5, 6)
    config_fail (const Src *src, GError **error, const char *section,
                 const char *key, const char *fmt, ...)
{
  gchar *msg;
  va_list ap;
  int line = config_line (src, section, key);

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (line)
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "%s:%d: [%s] %s: %s", src->path, line, section, key, msg);
  else
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                 "%s: [%s] %s: %s", src->path, section, key, msg);
  g_free (msg);
}

/* The kind of a section: "controller", "cluster", "group" or NULL. */
static const char *
section_kind (const char *section)
{
  if (strcmp (section, "controller") == 0 || strcmp (section, "cluster") == 0)
    return section;
  return g_str_has_prefix (section, "group ") ? "group" : NULL;
}

/* Every section is known and every key in it a setting: a misspelled one
 * is an error, not a default silently kept. */
static gboolean
check_settings (const Src *src, GKeyFile *kf, gchar **sections, GError **error)
{
  for (int i = 0; sections[i]; i++) {
    const char *kind = section_kind (sections[i]), *known[64];
    gchar **keys;
    guint n;

    if (kind == NULL) {
      config_fail (src, error, sections[i], "section",
                   "unknown section (expected [controller], [cluster] or "
                   "[group NAME])");
      return FALSE;
    }
    keys = g_key_file_get_keys (kf, sections[i], NULL, NULL);
    n = section_keys (kind, known, G_N_ELEMENTS (known));
    for (int k = 0; keys && keys[k]; k++) {
      gboolean ok = FALSE;
      for (guint j = 0; j < n && !ok; j++)
        ok = strcmp (keys[k], known[j]) == 0;
      if (!ok && renamed_setting (kind, keys[k]) != NULL) {
        const Renamed *r = renamed_setting (kind, keys[k]);
        if (g_key_file_has_key (kf, sections[i], r->key, NULL)) {
          config_fail (src, error, sections[i], keys[k],
                       "give %s only (%s is its older name)", r->key,
                       r->old_key);
          g_strfreev (keys);
          return FALSE;
        }
        ok = TRUE;
      }
      if (!ok) {
        gchar *why = unknown_setting (kind, keys[k]);
        config_fail (src, error, sections[i], keys[k], "%s", why);
        g_free (why);
        g_strfreev (keys);
        return FALSE;
      }
    }
    g_strfreev (keys);
  }
  return TRUE;
}

/* A string setting; paths relative to the config file's folder. */
#define CREDENTIALS_VAR "${CREDENTIALS_DIRECTORY}"

static gchar *
config_path_setting (const Src *src, GKeyFile *kf, const char *section,
                     const char *key, gboolean required, GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, key, NULL);
  gchar *dir, *abs;

  if (v == NULL || *g_strstrip (v) == '\0') {
    g_free (v);
    if (required)
      config_fail (src, error, section, key, "missing (required)");
    return NULL;
  }
  /* systemd's LoadCredential= copies: ${CREDENTIALS_DIRECTORY}/NAME */
  if (g_str_has_prefix (v, CREDENTIALS_VAR)) {
    const char *creds = g_getenv ("CREDENTIALS_DIRECTORY");
    const char *rest = v + strlen (CREDENTIALS_VAR);
    if (creds == NULL || !g_path_is_absolute (creds) ||
        (*rest != '/' && *rest != '\0')) {
      config_fail (src, error, section, key,
                   creds == NULL || !g_path_is_absolute (creds)
                       ? "${CREDENTIALS_DIRECTORY} is not set (systemd sets "
                         "it for a service with LoadCredential=; outside "
                         "one, give the file's path)"
                       : "${CREDENTIALS_DIRECTORY} must be followed by /NAME");
      g_free (v);
      /* (a setting that is not required still fails: it was given) */
      return NULL;
    }
    abs = g_strconcat (creds, rest, NULL);
    g_free (v);
    return abs;
  }
  if (g_path_is_absolute (v))
    return v;
  dir = g_path_get_dirname (src->path);
  abs = g_build_filename (dir, v, NULL);
  g_free (dir);
  g_free (v);
  return abs;
}

/* A path that may be left out (*out NULL); FALSE when it is given but
 * unusable (${CREDENTIALS_DIRECTORY} outside systemd). */
static gboolean
optional_path (const Src *src, GKeyFile *kf, const char *section,
               const char *key, gchar **out, GError **error)
{
  GError *e = NULL;
  *out = config_path_setting (src, kf, section, key, FALSE, &e);
  if (e == NULL)
    return TRUE;
  g_propagate_error (error, e);
  return FALSE;
}

static gboolean
config_uint (const Src *src, GKeyFile *kf, const char *section, const char *key,
             guint64 def, guint64 min, guint64 max, guint64 *out,
             GError **error)
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
    config_fail (src, error, section, key,
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

/* A controller's name goes into relay links' HELLOs and log lines: no
 * control character (relay.h's strings). */
static gboolean
cluster_name_printable (const char *name)
{
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static gboolean
config_bool (const Src *src, GKeyFile *kf, const char *section, const char *key,
             gboolean def, gboolean *out, GError **error)
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
    config_fail (src, error, section, key, "'%s' is not true or false", v);
    g_free (v);
    return FALSE;
  }
  g_free (v);
  return TRUE;
}

static gchar **
config_list (GKeyFile *kf, const char *section, const char *key)
{
  GPtrArray *out = g_ptr_array_new ();
  gchar **items = g_key_file_get_string_list (kf, section, key, NULL, NULL);
  for (int i = 0; items && items[i]; i++) {
    gchar *s = g_strstrip (items[i]);
    if (*s)
      g_ptr_array_add (out, g_strdup (s));
  }
  g_strfreev (items);
  g_ptr_array_add (out, NULL);
  return (gchar **)g_ptr_array_free (out, FALSE);
}

static void
channel_free (CtlChannelConfig *ch)
{
  if (ch) {
    g_free (ch->interface);
    g_free (ch);
  }
}

/* A key tree group's settings: rekey-channel and what goes with it. */
static gboolean
load_channel (const Src *src, GKeyFile *kf, const char *section,
              mcsec_ctl_group_config_t *g, CtlChannelConfig **out,
              GError **error)
{
  gchar *v = g_key_file_get_string (kf, section, "rekey-channel", NULL);
  gchar *host = NULL, *colon;
  CtlChannelConfig *ch;
  struct sockaddr_in *in4;
  struct sockaddr_in6 *in6;
  guint64 n;
  gboolean ok = FALSE;

  *out = NULL;
  if (v == NULL)
    return TRUE; /* unicast updates */
  ch = g_new0 (CtlChannelConfig, 1);
  in4 = (struct sockaddr_in *)&ch->to;
  in6 = (struct sockaddr_in6 *)&ch->to;
  g_strstrip (v);
  g->channel = g_strdup (v);
  colon = strrchr (v, ':');
  if (colon && v[0] == '[' && colon > v && colon[-1] == ']')
    host = g_strndup (v + 1, (gsize)(colon - v - 2));
  else if (colon)
    host = g_strndup (v, (gsize)(colon - v));
  n = colon ? g_ascii_strtoull (colon + 1, NULL, 10) : 0;
  if (host && inet_pton (AF_INET, host, &in4->sin_addr) == 1 &&
      IN_MULTICAST (ntohl (in4->sin_addr.s_addr))) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons ((guint16)n);
    ch->to_len = sizeof *in4;
  } else if (host && inet_pton (AF_INET6, host, &in6->sin6_addr) == 1 &&
             IN6_IS_ADDR_MULTICAST (&in6->sin6_addr)) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons ((guint16)n);
    ch->to_len = sizeof *in6;
  }
  if (ch->to_len == 0 || n < 1 || n > 65535 || !g_ascii_isdigit (colon[1])) {
    config_fail (src, error, section, "rekey-channel",
                 "'%s' is not a multicast ADDRESS:PORT (239.1.2.3:5100, "
                 "[ff15::1]:5100)",
                 v);
    goto out;
  }
  g->channel_address = g_strdup (host);
  g->channel_port = (guint16)n;
  if (g->address && g_strcmp0 (g->address, host) == 0 && g->port == n) {
    config_fail (src, error, section, "rekey-channel",
                 "the rekey channel cannot be the media's address and port");
    goto out;
  }
  if (!g->rekey_on_join || !g->rekey_on_leave) {
    config_fail (src, error, section,
                 g->rekey_on_join ? "rekey-on-leave" : "rekey-on-join",
                 "a key tree group (rekey-channel) rekeys on every membership "
                 "change; remove this setting or rekey-channel");
    goto out;
  }
  ch->interface = g_key_file_get_string (kf, section, "rekey-interface", NULL);
  if (ch->interface && if_nametoindex (g_strstrip (ch->interface)) == 0) {
    config_fail (src, error, section, "rekey-interface",
                 "no network interface '%s'", ch->interface);
    goto out;
  }
  if (!config_uint (src, kf, section, "key-tree-degree",
                    MCSEC_LKH_DEGREE_DEFAULT, 2, MCSEC_LKH_DEGREE_MAX, &n,
                    error))
    goto out;
  g->tree_degree = (guint)n;
  if (!config_uint (src, kf, section, "batch-interval", 200, 0, 60000, &n,
                    error))
    goto out;
  g->batch_ms = (guint)n;
  if (!config_uint (src, kf, section, "rekey-redundancy", 0, 0, 3, &n, error))
    goto out;
  g->redundancy = (guint)n;
  if (!config_uint (src, kf, section, "rekey-ttl", 1, 1, 255, &n, error))
    goto out;
  ch->ttl = (guint)n;
  ok = TRUE;
out:
  g_free (host);
  g_free (v);
  if (ok)
    *out = ch;
  else
    channel_free (ch);
  return ok;
}

static mcsec_ctl_group_config_t *
load_group (const Src *src, GKeyFile *kf, const char *section,
            CtlChannelConfig **channel, GError **error)
{
  mcsec_ctl_group_config_t *g = g_new0 (mcsec_ctl_group_config_t, 1);
  gchar *cipher, *sam;
  guint64 v;

  g->name = g_strdup (section + strlen ("group "));
  g_strstrip (g->name);
  if (*g->name == '\0' || strlen (g->name) > MCSEC_MIKE_MAX_STRING) {
    config_fail (src, error, section, "name",
                 "a group needs a name of 1-255 bytes");
    goto fail;
  }
  g->senders = config_list (kf, section, "senders");
  g->receivers = config_list (kf, section, "receivers");
  g->address = g_key_file_get_string (kf, section, "address", NULL);
  if (g->address)
    g_strstrip (g->address);
  if (!config_uint (src, kf, section, "port", 5004, 1, 65535, &v, error))
    goto fail;
  g->port = (guint16)v;
  cipher = g_key_file_get_string (kf, section, "cipher", NULL);
  g->suite = cipher ? mcsec_suite_from_name (g_strstrip (cipher))
                    : MCSEC_SUITE_AES_128_GCM;
  if (g->suite == 0) {
    config_fail (src, error, section, "cipher",
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
    config_fail (src, error, section, "sam",
                 "'%s' is not block, per-packet or none", sam);
    g_free (sam);
    goto fail;
  }
  g_free (sam);
  if (!config_uint (src, kf, section, "sender-id-bits",
                    MCSEC_SENDER_ID_BITS_DEFAULT, MCSEC_SENDER_ID_BITS_MIN,
                    MCSEC_SENDER_ID_BITS_MAX, &v, error))
    goto fail;
  g->sender_id_bits = (guint)v;
  if (!config_bool (src, kf, section, "spi-per-sender", FALSE,
                    &g->spi_per_sender, error))
    goto fail;
  if (g->spi_per_sender && g->sender_id_bits > MCSEC_SPI_PER_SENDER_BITS_MAX) {
    config_fail (src, error, section, "spi-per-sender",
                 "needs sender-id-bits of %u or fewer (this group has %u): "
                 "a block of SPIs leaves the base 8 bits",
                 MCSEC_SPI_PER_SENDER_BITS_MAX, g->sender_id_bits);
    goto fail;
  }
  if (!config_uint (src, kf, section, "key-lifetime", 3600, 1, 7 * 86400, &v,
                    error))
    goto fail;
  g->key_lifetime_s = (guint)v;
  if (!config_uint (src, kf, section, "activation-delay", 500, 0, 60000, &v,
                    error))
    goto fail;
  g->activation_ms = (guint)v;
  if (!config_uint (src, kf, section, "deactivation-delay", 2000, 0, 600000, &v,
                    error))
    goto fail;
  g->deactivation_ms = (guint)v;
  if (!config_bool (src, kf, section, "rekey-on-join", TRUE, &g->rekey_on_join,
                    error) ||
      !config_bool (src, kf, section, "rekey-on-leave", TRUE,
                    &g->rekey_on_leave, error))
    goto fail;
  if (!load_channel (src, kf, section, g, channel, error))
    goto fail;
  if (g_strv_length (g->senders) + g_strv_length (g->receivers) == 0) {
    config_fail (src, error, section, "receivers",
                 "the group admits nobody: list identities in senders and/or "
                 "receivers");
    channel_free (*channel);
    *channel = NULL;
    goto fail;
  }
  return g;

fail:
  mcsec_ctl_group_config_free (g);
  return NULL;
}

/* [cluster]: etcd's endpoints, this controller's name and the address
 * members are sent to (docs/cluster.md "Configuration"). */
static gboolean
load_cluster (const Src *src, GKeyFile *kf, CtlConfig *cfg, GError **error)
{
  const char *s = "cluster";
  gchar **eps;
  guint64 v;

  cfg->etcd = g_key_file_get_string (kf, s, "etcd", NULL);
  if (cfg->etcd == NULL || *g_strstrip (cfg->etcd) == '\0') {
    config_fail (src, error, s, "etcd",
                 "missing (required: etcd's client URLs, "
                 "http://HOST:PORT,... or https://...)");
    return FALSE;
  }
  eps = g_strsplit (cfg->etcd, ",", -1);
  for (guint i = 0; eps[i]; i++) {
    gchar *e = g_strstrip (eps[i]);
    if (!((g_str_has_prefix (e, "http://") && strlen (e) > 7) ||
          (g_str_has_prefix (e, "https://") && strlen (e) > 8))) {
      config_fail (src, error, s, "etcd",
                   "'%s' is not an http:// or https://HOST:PORT client URL", e);
      g_strfreev (eps);
      return FALSE;
    }
  }
  g_strfreev (eps);
  cfg->cluster_name = g_key_file_get_string (kf, s, "name", NULL);
  if (cfg->cluster_name == NULL || *g_strstrip (cfg->cluster_name) == '\0' ||
      strpbrk (cfg->cluster_name, " \t/\"\\") != NULL) {
    config_fail (src, error, s, "name",
                 "missing or not a word (required: this controller's name, "
                 "unique in the cluster)");
    return FALSE;
  }
  cfg->advertise = g_key_file_get_string (kf, s, "advertise", NULL);
  if (cfg->advertise == NULL || *g_strstrip (cfg->advertise) == '\0') {
    g_free (cfg->advertise);
    cfg->advertise = g_strdup (cfg->listen);
  }
  cfg->etcd_prefix = g_key_file_get_string (kf, s, "prefix", NULL);
  if (cfg->etcd_prefix == NULL || *g_strstrip (cfg->etcd_prefix) == '\0') {
    g_free (cfg->etcd_prefix);
    cfg->etcd_prefix = g_strdup ("/mcsec/");
  } else if (!g_str_has_suffix (cfg->etcd_prefix, "/")) {
    gchar *p = g_strconcat (cfg->etcd_prefix, "/", NULL);
    g_free (cfg->etcd_prefix);
    cfg->etcd_prefix = p;
  }
  if (g_key_file_has_key (kf, s, "controllers", NULL)) {
    gboolean listed = FALSE;
    gchar *text = g_key_file_get_string (kf, s, "controllers", NULL);
    gchar **items = g_strsplit_set (text ? text : "", ",;", -1);
    GPtrArray *names = g_ptr_array_new ();
    for (guint i = 0; items[i]; i++)
      if (*g_strstrip (items[i]))
        g_ptr_array_add (names, g_strdup (items[i]));
    g_ptr_array_add (names, NULL);
    cfg->controllers = (gchar **)g_ptr_array_free (names, FALSE);
    g_strfreev (items);
    g_free (text);
    for (guint i = 0; cfg->controllers[i]; i++)
      listed |= strcmp (cfg->controllers[i], cfg->cluster_name) == 0;
    if (!listed) {
      config_fail (src, error, s, "controllers",
                   "does not list this controller's name '%s'",
                   cfg->cluster_name);
      return FALSE;
    }
  }
  if (!optional_path (src, kf, s, "cluster-key", &cfg->cluster_key, error) ||
      !optional_path (src, kf, s, "etcd-ca", &cfg->etcd_ca, error) ||
      !optional_path (src, kf, s, "etcd-certificate", &cfg->etcd_certificate,
                      error) ||
      !optional_path (src, kf, s, "etcd-private-key", &cfg->etcd_private_key,
                      error))
    return FALSE;
  if ((cfg->etcd_certificate == NULL) != (cfg->etcd_private_key == NULL)) {
    config_fail (src, error, s,
                 cfg->etcd_certificate ? "etcd-private-key"
                                       : "etcd-certificate",
                 "missing: etcd-certificate and etcd-private-key go "
                 "together (this controller's client certificate for etcd)");
    return FALSE;
  }
  /* TLS settings with a plain endpoint: the keys and leaders would cross
   * the network in the clear while the file says otherwise */
  if ((cfg->etcd_ca || cfg->etcd_certificate) &&
      strstr (cfg->etcd, "http://") != NULL) {
    config_fail (src, error, s, "etcd",
                 "an http:// endpoint with etcd-ca or etcd-certificate set: "
                 "use https:// for every endpoint");
    return FALSE;
  }
  /* relaying needs the cluster key: it proves a link's ends are
   * controllers of this cluster (docs/cluster.md "Relaying") */
  if (!config_bool (src, kf, s, "relay", cfg->cluster_key != NULL, &cfg->relay,
                    error))
    return FALSE;
  /* the name goes into the links' HELLOs */
  if (cfg->relay && (strchr (cfg->cluster_name, ';') != NULL ||
                     strlen (cfg->cluster_name) > 255 ||
                     !cluster_name_printable (cfg->cluster_name))) {
    config_fail (src, error, s, "name",
                 "'%s' cannot name a relay link's end (no semicolon or "
                 "control character, at most 255 bytes; or relay = false)",
                 cfg->cluster_name);
    return FALSE;
  }
  if (cfg->relay && cfg->cluster_key == NULL) {
    config_fail (src, error, s, "relay",
                 "true without cluster-key: a relay link proves the cluster "
                 "key (set cluster-key, or relay = false)");
    return FALSE;
  }
  if (!config_uint (src, kf, s, "relay-queue", CTL_RELAY_QUEUE_DEFAULT,
                    64 * 1024, 16 * 1024 * 1024, &v, error))
    return FALSE;
  cfg->relay_queue = (gsize)v;
  if (!config_uint (src, kf, s, "lease", 3, 1, 60, &v, error))
    return FALSE;
  cfg->lease_s = (guint)v;
  if (!config_uint (src, kf, s, "etcd-timeout", 1000, 50, 30000, &v, error))
    return FALSE;
  cfg->etcd_timeout_ms = (guint)v;
  return TRUE;
}

void
ctl_config_free (CtlConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->path);
  g_free (c->text);
  g_free (c->listen);
  g_free (c->certificate);
  g_free (c->private_key);
  g_free (c->ca);
  g_free (c->update_signing_key);
  if (c->warnings)
    g_ptr_array_unref (c->warnings);
  g_free (c->state_dir);
  g_free (c->admin_socket);
  g_free (c->etcd);
  g_free (c->cluster_name);
  g_free (c->advertise);
  g_free (c->etcd_prefix);
  g_free (c->cluster_key);
  g_free (c->etcd_ca);
  g_free (c->etcd_certificate);
  g_free (c->etcd_private_key);
  g_strfreev (c->controllers);
  g_strfreev (c->group_names);
  if (c->groups)
    g_ptr_array_unref (c->groups);
  if (c->channels)
    g_ptr_array_unref (c->channels);
  g_free (c);
}

CtlConfig *
ctl_config_load (const char *path, const char *text, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  gchar **sections = NULL, *owned = NULL;
  gboolean ok = FALSE;
  const char *c = "controller";
  CtlConfig *cfg = g_new0 (CtlConfig, 1);
  Src src = {path, text};
  guint64 v;

  cfg->path = g_strdup (path);
  cfg->warnings = g_ptr_array_new_with_free_func (g_free);
  cfg->groups = g_ptr_array_new_with_free_func (
      (GDestroyNotify)mcsec_ctl_group_config_free);
  cfg->channels = g_ptr_array_new_with_free_func ((GDestroyNotify)channel_free);
  if (text == NULL) {
    if (!g_file_get_contents (path, &owned, NULL, error)) {
      g_prefix_error (error, "%s: ", path);
      goto out;
    }
    src.text = owned;
  }
  cfg->text = g_strdup (src.text);
  if (!g_key_file_load_from_data (kf, src.text, (gsize)-1, G_KEY_FILE_NONE,
                                  error)) {
    g_prefix_error (error, "%s: ", path);
    goto out;
  }
  sections = g_key_file_get_groups (kf, NULL);
  if (!check_settings (&src, kf, sections, error))
    goto out;
  cfg->listen = g_key_file_get_string (kf, c, "listen", NULL);
  if (cfg->listen == NULL)
    cfg->listen = g_strdup ("127.0.0.1:7700");
  g_strstrip (cfg->listen);
  if (!(cfg->certificate =
            config_path_setting (&src, kf, c, "certificate", TRUE, error)) ||
      !(cfg->private_key =
            config_path_setting (&src, kf, c, "private-key", TRUE, error)) ||
      !(cfg->ca = config_path_setting (&src, kf, c, "ca", TRUE, error)) ||
      !(cfg->state_dir =
            config_path_setting (&src, kf, c, "state-dir", TRUE, error)))
    goto out;
  /* required, but for a cluster whose etcd holds it (under cluster-key) */
  cfg->update_signing_key_setting =
      given_name (&src, kf, cfg, c, "update-signing-key");
  if (!optional_path (&src, kf, c, cfg->update_signing_key_setting,
                      &cfg->update_signing_key, error) ||
      !optional_path (&src, kf, c, "admin-socket", &cfg->admin_socket, error))
    goto out;
  if (!config_uint (&src, kf, c, "rejoin-window", 7000, 0, 600000, &v, error))
    goto out;
  cfg->rejoin_window_ms = (guint)v;
  if (!config_bool (&src, kf, c, "allow-key-export", FALSE,
                    &cfg->allow_key_export, error))
    goto out;
  if (!config_uint (&src, kf, c, "max-handshakes", 1024, 1, 1000000, &v, error))
    goto out;
  cfg->max_handshakes = (guint)v;
  if (!config_uint (&src, kf, c, "max-handshakes-per-source", 64, 1, 1000000,
                    &v, error))
    goto out;
  cfg->max_handshakes_per_source = (guint)v;
  if (!config_uint (&src, kf, c, "handshake-timeout", 5000, 100, 60000, &v,
                    error))
    goto out;
  cfg->handshake_timeout_ms = (guint)v;
  if (!config_uint (&src, kf, c, "workers", 0, 0, 256, &v, error))
    goto out;
  cfg->workers = (guint)v; /* 0: one per core */
  if (!config_uint (&src, kf, c, "max-output", MCSEC_CTL_MAX_OUTPUT_DEFAULT,
                    256 * 1024, G_GUINT64_CONSTANT (1) << 30, &v, error))
    goto out;
  cfg->max_output = (gsize)v;
  if (!config_uint (&src, kf, c, "repair-rate", MCSEC_CTL_REPAIR_PER_S_DEFAULT,
                    1, 1000, &v, error))
    goto out;
  cfg->repair_per_s = (guint)v;
  if (cfg->admin_socket == NULL)
    cfg->admin_socket = g_build_filename (cfg->state_dir, "admin.sock", NULL);

  if (g_key_file_has_group (kf, "cluster") &&
      !load_cluster (&src, kf, cfg, error))
    goto out;
  if (cfg->update_signing_key == NULL && cfg->cluster_key == NULL) {
    config_fail (&src, error, c, cfg->update_signing_key_setting,
                 "missing (required; a cluster's controllers may take it "
                 "from etcd instead, with [cluster] cluster-key)");
    goto out;
  }

  for (int i = 0; sections[i]; i++) {
    mcsec_ctl_group_config_t *g;
    CtlChannelConfig *ch = NULL;
    if (g_strcmp0 (section_kind (sections[i]), "group") != 0)
      continue;
    g = load_group (&src, kf, sections[i], &ch, error);
    if (g == NULL)
      goto out;
    for (guint k = 0; k < cfg->groups->len; k++)
      if (strcmp (((mcsec_ctl_group_config_t *)cfg->groups->pdata[k])->name,
                  g->name) == 0) {
        config_fail (&src, error, sections[i], "name",
                     "group %s is defined twice", g->name);
        mcsec_ctl_group_config_free (g);
        channel_free (ch);
        goto out;
      }
    g_ptr_array_add (cfg->groups, g);
    g_ptr_array_add (cfg->channels, ch);
  }
  if (cfg->groups->len == 0) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                 "%s: no [group NAME] section: nothing to control", path);
    goto out;
  }
  cfg->group_names = g_new0 (gchar *, cfg->groups->len + 1);
  for (guint i = 0; i < cfg->groups->len; i++)
    cfg->group_names[i] =
        g_strdup (((mcsec_ctl_group_config_t *)cfg->groups->pdata[i])->name);
  ok = TRUE;
out:
  g_strfreev (sections);
  g_key_file_free (kf);
  g_free (owned);
  if (!ok) {
    ctl_config_free (cfg);
    return NULL;
  }
  return cfg;
}

void
ctl_config_error (const CtlConfig *c, GError **error, const char *section,
                  const char *key, const char *fmt, ...)
{
  Src src = {c->path, c->text};
  gchar *msg;
  va_list ap;
  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  config_fail (&src, error, section, key, "%s", msg);
  g_free (msg);
}

gboolean
ctl_config_check_file (const CtlConfig *c, const char *section, const char *key,
                       const char *path, GError **error)
{
  struct stat st;
  const char *reason = NULL;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

  if (fd < 0) {
    ctl_config_error (c, error, section, key, "cannot read %s: %s", path,
                      g_strerror (errno));
    return FALSE;
  }
  if (fstat (fd, &st) != 0)
    reason = g_strerror (errno);
  else if (S_ISDIR (st.st_mode))
    reason = g_strerror (EISDIR);
  else if (S_ISREG (st.st_mode) && st.st_size == 0)
    reason = "the file is empty";
  close (fd);
  if (reason)
    ctl_config_error (c, error, section, key, "cannot read %s: %s", path,
                      reason);
  return reason == NULL;
}

static gboolean
setting_differs (const Setting *s, const CtlConfig *a, const CtlConfig *b)
{
  const guint8 *pa = (const guint8 *)a + s->offset;
  const guint8 *pb = (const guint8 *)b + s->offset;

  switch (s->type) {
  case S_STR:
    return g_strcmp0 (*(gchar *const *)pa, *(gchar *const *)pb) != 0;
  case S_STRV: {
    gchar *const *va = *(gchar * *const *)pa, *const *vb =
                                                  *(gchar * *const *)pb;
    if (va == NULL || vb == NULL)
      return va != vb;
    return !g_strv_equal ((const gchar *const *)va, (const gchar *const *)vb);
  }
  case S_UINT:
  case S_BOOL: /* gboolean is an int */
    return memcmp (pa, pb, sizeof (guint)) != 0;
  case S_SIZE:
    return memcmp (pa, pb, sizeof (gsize)) != 0;
  }
  return FALSE;
}

static const CtlChannelConfig *
channel_of (const CtlConfig *c, const char *group)
{
  for (guint i = 0; c->group_names && c->group_names[i]; i++)
    if (strcmp (c->group_names[i], group) == 0)
      return c->channels->pdata[i];
  return NULL;
}

void
ctl_config_update (CtlConfig *running, const CtlConfig *next,
                   GPtrArray *changed, GPtrArray *restart)
{
  for (guint i = 0; i < G_N_ELEMENTS (settings); i++) {
    const Setting *s = &settings[i];
    if (!setting_differs (s, running, next))
      continue;
    g_ptr_array_add (s->live ? changed : restart,
                     g_strdup_printf ("[%s] %s", s->section, s->key));
    if (s->live) /* numbers and booleans only: nothing to free */
      memcpy ((guint8 *)running + s->offset, (const guint8 *)next + s->offset,
              s->type == S_SIZE ? sizeof (gsize) : sizeof (guint));
  }
  /* the rekey channels' sockets (the channel itself is the core's) */
  for (guint i = 0; running->group_names && running->group_names[i]; i++) {
    const char *name = running->group_names[i];
    const CtlChannelConfig *a = running->channels->pdata[i];
    const CtlChannelConfig *b = channel_of (next, name);
    if (a == NULL || b == NULL)
      continue;
    if (g_strcmp0 (a->interface, b->interface) != 0)
      g_ptr_array_add (restart,
                       g_strdup_printf ("[group %s] rekey-interface", name));
    if (a->ttl != b->ttl)
      g_ptr_array_add (restart, g_strdup_printf ("[group %s] rekey-ttl", name));
  }
}

/* OpenSSL's first reason for the failure it just had (the cause, where
 * the last one is "PEM lib"), as " (OpenSSL: REASON)". */
static const char *
tls_reason (char *buf, gsize size)
{
  unsigned long e = ERR_peek_error ();
  const char *r = e ? ERR_reason_error_string (e) : NULL;
  if (r)
    g_snprintf (buf, size, " (OpenSSL: %s)", r);
  else
    buf[0] = '\0';
  ERR_clear_error ();
  return buf;
}

/* The update-signing key: an Ed25519 private key in PEM. */
static EVP_PKEY *
read_signing_key (const CtlConfig *c, GError **error)
{
  const char *k = c->update_signing_key_setting;
  char why[256];
  guint8 spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len;
  EVP_PKEY *key;
  FILE *f;

  if (!ctl_config_check_file (c, "controller", k, c->update_signing_key, error))
    return NULL;
  f = fopen (c->update_signing_key, "r");
  if (f == NULL) {
    ctl_config_error (c, error, "controller", k, "cannot read %s: %s",
                      c->update_signing_key, g_strerror (errno));
    return NULL;
  }
  key = PEM_read_PrivateKey (f, NULL, NULL, NULL);
  fclose (f);
  if (key == NULL || EVP_PKEY_get_base_id (key) != EVP_PKEY_ED25519 ||
      mcsec_mike_public_key_der (key, spki, sizeof spki, &spki_len) !=
          MCSEC_OK) {
    ctl_config_error (
        c, error, "controller", k, "%s is not a PEM Ed25519 private key%s",
        c->update_signing_key,
        key ? " (another kind of key)" : tls_reason (why, sizeof why));
    EVP_PKEY_free (key);
    return NULL;
  }
  ERR_clear_error ();
  return key;
}

gboolean
ctl_config_credentials (const CtlConfig *c, SSL_CTX **ctx_out,
                        EVP_PKEY **update_key, GError **error)
{
  SSL_CTX *ctx = SSL_CTX_new (TLS_server_method ());
  STACK_OF (X509_NAME) * cas;
  EVP_PKEY *key = NULL;
  char why[256];
  gboolean ok = FALSE;

  if (ctx == NULL) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                 "cannot make a TLS context%s", tls_reason (why, sizeof why));
    return FALSE;
  }
  SSL_CTX_set_min_proto_version (ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version (ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                      NULL);
  SSL_CTX_set_num_tickets (ctx, 0);
  SSL_CTX_set_session_cache_mode (ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
  if (!ctl_config_check_file (c, "controller", "certificate", c->certificate,
                              error))
    goto out;
  if (SSL_CTX_use_certificate_chain_file (ctx, c->certificate) != 1) {
    ctl_config_error (c, error, "controller", "certificate",
                      "%s is not a PEM certificate (chain)%s", c->certificate,
                      tls_reason (why, sizeof why));
    goto out;
  }
  if (!ctl_config_check_file (c, "controller", "private-key", c->private_key,
                              error))
    goto out;
  /* a key that does not match the certificate fails here already */
  if (SSL_CTX_use_PrivateKey_file (ctx, c->private_key, SSL_FILETYPE_PEM) !=
          1 &&
      !(ERR_GET_LIB (ERR_peek_last_error ()) == ERR_LIB_X509 &&
        ERR_GET_REASON (ERR_peek_last_error ()) ==
            X509_R_KEY_VALUES_MISMATCH)) {
    ctl_config_error (c, error, "controller", "private-key",
                      "%s is not a PEM private key%s", c->private_key,
                      tls_reason (why, sizeof why));
    goto out;
  }
  if (SSL_CTX_check_private_key (ctx) != 1) {
    ERR_clear_error ();
    ctl_config_error (c, error, "controller", "private-key",
                      "%s does not match the certificate %s", c->private_key,
                      c->certificate);
    goto out;
  }
  if (!ctl_config_check_file (c, "controller", "ca", c->ca, error))
    goto out;
  if (SSL_CTX_load_verify_locations (ctx, c->ca, NULL) != 1 ||
      (cas = SSL_load_client_CA_file (c->ca)) == NULL) {
    ctl_config_error (c, error, "controller", "ca",
                      "%s holds no PEM CA certificate%s", c->ca,
                      tls_reason (why, sizeof why));
    goto out;
  }
  SSL_CTX_set_client_CA_list (ctx, cas);
  ERR_clear_error ();
  /* none: the cluster's, from etcd (ctl_cluster_signing_key) */
  if (c->update_signing_key && (key = read_signing_key (c, error)) == NULL)
    goto out;
  ok = TRUE;
out:
  if (!ok) {
    SSL_CTX_free (ctx);
    return FALSE;
  }
  *ctx_out = ctx;
  *update_key = key;
  return TRUE;
}
