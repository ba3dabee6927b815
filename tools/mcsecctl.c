/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsecctl: administer a running mcsec-controller over its Unix socket
 * (list, stats, rekey, evict; human output or --json), and create a test
 * PKI (CA, controller and member certificates, signing keys) so that
 * nobody needs hand-written openssl commands to try mcsec.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define DEFAULT_CONFIG "/etc/mcsec/controller.conf"
#define DEFAULT_SOCKET "/var/lib/mcsec/admin.sock"

static const char summary[] =
    "Commands for a running controller (over its admin socket):\n"
    "  list                      groups and their members\n"
    "  stats                     controller counters\n"
    "  cluster                   this controller in its cluster: lease,\n"
    "                            groups led, etcd (docs/cluster.md)\n"
    "  rekey GROUP               new key for GROUP now\n"
    "  evict GROUP IDENTITY      remove a member, then rekey; it is refused\n"
    "                            from then on, across restarts, until\n"
    "  unevict GROUP IDENTITY    lifts the eviction (it may join again)\n"
    "  wireshark-esp GROUP       the group's SAs in Wireshark's ESP SA table\n"
    "                            format (esp_sa), KEYS INCLUDED: for\n"
    "                            authorised debugging only; the controller\n"
    "                            must allow it (allow-key-export = true);\n"
    "                            --output FILE --follow keeps FILE up to\n"
    "                            date across rekeys (--help-wireshark-esp)\n"
    "\n"
    "Test credentials (for trials and tests, not for production):\n"
    "  pki DIR [MEMBER...]       creates in DIR (kept if present): ca.crt/\n"
    "                            ca.key, controller.crt/controller.key "
    "(names:\n"
    "                            localhost, 127.0.0.1, ::1 and each\n"
    "                            --controller-name), controller-sign.key\n"
    "                            (Ed25519, signs key updates), and for each\n"
    "                            MEMBER: MEMBER.crt/MEMBER.key (TLS, "
    "CN=MEMBER)\n"
    "                            and MEMBER-sign.key/MEMBER-sign.pub "
    "(Ed25519,\n"
    "                            source authentication)";

static const char description[] =
    "The controller's admin socket is, in this order: --socket; "
    "$MCSEC_ADMIN_SOCKET;\nthe admin-socket (or STATE-DIR/admin.sock) of the "
    "configuration named by --config,\nor of " DEFAULT_CONFIG
    " when it exists; " DEFAULT_SOCKET ".\n"
    "Options may come before or after the command.";

/* wireshark-esp --follow: how often the group's SPI is looked at (below
 * the default activation-delay, 500 ms: a new SA is seen before senders
 * use it) */
#define DEFAULT_FOLLOW_INTERVAL_MS 250

static struct {
  gchar *socket, *config;
  gboolean json, version, expired;
  gint timeout_s, days;
  gchar **names; /* pki --controller-name */
  gchar *output; /* wireshark-esp */
  gboolean follow;
  gint interval_ms;
} opt = {
    .timeout_s = 10, .days = 365, .interval_ms = DEFAULT_FOLLOW_INTERVAL_MS};

static const GOptionEntry entries[] = {
    {"socket", 's', 0, G_OPTION_ARG_FILENAME, &opt.socket,
     "The controller's admin socket (its admin-socket setting)", "PATH"},
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt.config,
     "Take the admin socket from this controller configuration", "FILE"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &opt.json,
     "Print the controller's JSON answer as it is", NULL},
    {"timeout", 't', 0, G_OPTION_ARG_INT, &opt.timeout_s,
     "Seconds to wait for the controller's answer (default: 10)", "S"},
    {"version", 0, 0, G_OPTION_ARG_NONE, &opt.version, "Print the version",
     NULL},
    G_OPTION_ENTRY_NULL};

static const GOptionEntry pki_entries[] = {
    {"days", 0, 0, G_OPTION_ARG_INT, &opt.days,
     "Validity of the certificates made (default: 365)", "N"},
    {"expired", 0, 0, G_OPTION_ARG_NONE, &opt.expired,
     "Make the member certificates already expired", NULL},
    {"controller-name", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt.names,
     "One more name (DNS or IP) in the controller's certificate; repeatable",
     "NAME"},
    G_OPTION_ENTRY_NULL};

static const GOptionEntry wireshark_entries[] = {
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &opt.output,
     "Write the SAs to FILE (mode 0600, its other rows kept)", "FILE"},
    {"follow", 'f', 0, G_OPTION_ARG_NONE, &opt.follow,
     "Keep FILE up to date: add each new SA until interrupted", NULL},
    {"interval", 0, 0, G_OPTION_ARG_INT, &opt.interval_ms,
     "--follow: look every MS milliseconds (default: 250)", "MS"},
    G_OPTION_ENTRY_NULL};

/* ------------------------------------------------------------------------ */
/* Admin client                                                               */

/* The controller's answer to one line (NULL and error set on failure);
 * every step waits at most timeout_s: a controller that is stuck, or
 * stopped, is an error, never a hang. */
static gchar *
request (const char *path, const char *origin, const char *line, int timeout_s,
         GError **error)
{
  struct sockaddr_un sa = {0};
  struct timeval tv = {timeout_s, 0};
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  GString *answer = g_string_new (NULL);
  char buf[4096];
  gchar *msg;
  gboolean ok;
  ssize_t n;

  if (strlen (path) >= sizeof sa.sun_path) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                 "admin socket path too long (%zu bytes, at most %zu): %s",
                 strlen (path), sizeof sa.sun_path - 1, path);
    if (fd >= 0)
      close (fd);
    return g_string_free (answer, TRUE);
  }
  sa.sun_family = AF_UNIX;
  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  /* (the send timeout also bounds connect on a Unix socket whose backlog
   * is full) */
  if (fd >= 0 && timeout_s > 0 &&
      (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
       setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)) {
    close (fd);
    fd = -1;
  }
  if (fd < 0 || connect (fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot reach the controller at %s (%s): %s (is it "
                 "running? give --socket or --config)",
                 path, origin,
                 e == EAGAIN ? "it accepts no connection" : g_strerror (e));
    if (fd >= 0)
      close (fd);
    return g_string_free (answer, TRUE);
  }
  /* one write: the controller answers and closes after one line */
  msg = g_strconcat (line, "\n", NULL);
  ok = write (fd, msg, strlen (msg)) == (ssize_t)strlen (msg);
  g_free (msg);
  if (!ok) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "cannot write to %s: %s", path, g_strerror (errno));
    close (fd);
    return g_string_free (answer, TRUE);
  }
  while ((n = read (fd, buf, sizeof buf)) > 0) {
    /* an export-keys answer holds keys: no copy left behind when the
     * string grows (a new buffer, the old one wiped) */
    if (answer->len + (gsize)n + 1 > answer->allocated_len) {
      GString *bigger = g_string_sized_new (2 * (answer->len + (gsize)n) + 1);
      g_string_append_len (bigger, answer->str, (gssize)answer->len);
      OPENSSL_cleanse (answer->str, answer->allocated_len);
      g_string_free (answer, TRUE);
      answer = bigger;
    }
    g_string_append_len (answer, buf, n);
  }
  OPENSSL_cleanse (buf, sizeof buf);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK)
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "the controller at %s did not answer within %d s (is it "
                   "stopped or overloaded? see --timeout)",
                   path, timeout_s);
    else
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                   "cannot read from %s: %s", path, g_strerror (e));
    close (fd);
    OPENSSL_cleanse (answer->str, answer->allocated_len);
    return g_string_free (answer, TRUE);
  }
  close (fd);
  return g_string_free (answer, FALSE);
}

/* The controller's answer, wiped (export-keys answers hold keys). */
static void
answer_free (gchar *answer)
{
  if (answer) {
    OPENSSL_cleanse (answer, strlen (answer));
    g_free (answer);
  }
}

/* The admin socket a configuration names: admin-socket, or
 * STATE-DIR/admin.sock, relative paths taken from the file's folder (as
 * the controller does); NULL with error when it names none. */
static gchar *
socket_of_config (const char *path, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  gchar *v = NULL, *dir, *full = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error)) {
    g_prefix_error (error, "%s: ", path);
    g_key_file_free (kf);
    return NULL;
  }
  v = g_key_file_get_string (kf, "controller", "admin-socket", NULL);
  if (v == NULL || *g_strstrip (v) == '\0') {
    gchar *state = g_key_file_get_string (kf, "controller", "state-dir", NULL);
    g_free (v);
    v = state && *g_strstrip (state)
            ? g_build_filename (state, "admin.sock", NULL)
            : NULL;
    g_free (state);
  }
  g_key_file_free (kf);
  if (v == NULL) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                 "%s: [controller] has neither admin-socket nor state-dir",
                 path);
    return NULL;
  }
  if (g_path_is_absolute (v))
    return v;
  dir = g_path_get_dirname (path);
  full = g_build_filename (dir, v, NULL);
  g_free (dir);
  g_free (v);
  return full;
}

static const char *
str (JsonObject *o, const char *k)
{
  return json_object_has_member (o, k) ? json_object_get_string_member (o, k)
                                       : "";
}

static gint64
num (JsonObject *o, const char *k)
{
  return json_object_has_member (o, k) ? json_object_get_int_member (o, k) : 0;
}

static void
print_group (JsonObject *g)
{
  printf ("group %s  %s:%" G_GINT64_FORMAT
          "  %s  sam=%s  spi=0x%08" G_GINT64_MODIFIER
          "x  key age %" G_GINT64_FORMAT " s  update #%" G_GINT64_FORMAT
          "  %" G_GINT64_FORMAT " rekeys (last: %s)\n",
          str (g, "name"), *str (g, "address") ? str (g, "address") : "-",
          num (g, "port"), str (g, "cipher"), str (g, "sam"), num (g, "spi"),
          num (g, "key-age-s"), num (g, "seq"), num (g, "rekeys"),
          *str (g, "last-rekey-reason") ? str (g, "last-rekey-reason") : "-");
  if (json_object_has_member (g, "tree")) {
    JsonObject *t = json_object_get_object_member (g, "tree");
    JsonObject *c = json_object_get_object_member (g, "channel");
    printf ("  %" G_GINT64_FORMAT " members; key tree: degree %" G_GINT64_FORMAT
            ", depth %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
            " changes pending (batch %" G_GINT64_FORMAT " ms), %.1f KB\n",
            num (g, "members-count"), num (t, "degree"), num (t, "depth"),
            num (t, "pending"), num (t, "batch-interval-ms"),
            num (t, "memory-bytes") / 1024.0);
    printf ("  rekey channel %s: %" G_GINT64_FORMAT " rekeys, %" G_GINT64_FORMAT
            " datagrams, %" G_GINT64_FORMAT " bytes, %" G_GINT64_FORMAT
            " send errors; last rekey %" G_GINT64_FORMAT
            " bytes in %" G_GINT64_FORMAT " datagram(s), %" G_GINT64_FORMAT
            " wrapped keys\n",
            str (g, "rekey-channel"), num (c, "rekeys"), num (c, "datagrams"),
            num (c, "bytes"), num (c, "send-errors"),
            num (c, "last-rekey-bytes"), num (c, "last-rekey-datagrams"),
            num (c, "last-rekey-wrapped-keys"));
    printf ("  repairs %" G_GINT64_FORMAT ", resyncs %" G_GINT64_FORMAT
            ", polls of silent members %" G_GINT64_FORMAT "; %" G_GINT64_FORMAT
            " members the channel does not reach (%" G_GINT64_FORMAT
            " rekeys sent to them directly)\n",
            num (c, "repairs"), num (c, "resyncs"), num (c, "polls"),
            num (c, "unreached-members"), num (c, "direct"));
  } else {
    printf ("  %" G_GINT64_FORMAT " members, %" G_GINT64_FORMAT
            " on the current update\n",
            num (g, "members-count"), num (g, "members-current"));
  }
  if (json_object_has_member (g, "members")) {
    JsonArray *a = json_object_get_array_member (g, "members");
    guint n = json_array_get_length (a);
    if (n)
      printf ("  %-20s %-9s %9s  %-20s %s\n", "IDENTITY", "ROLE", "SENDER-ID",
              "CONNECTED SINCE", "PEER");
    for (guint i = 0; i < n; i++) {
      JsonObject *m = json_array_get_object_element (a, i);
      gchar sid[16] = "-";
      if (num (m, "sender-id"))
        g_snprintf (sid, sizeof sid, "%" G_GINT64_FORMAT, num (m, "sender-id"));
      printf ("  %-20s %-9s %9s  %-20s %s\n", str (m, "identity"),
              str (m, "role"), sid, str (m, "connected-since"),
              str (m, "peer"));
    }
  }
  if (json_object_has_member (g, "rotation-failed") &&
      json_object_get_boolean_member (g, "rotation-failed"))
    printf ("  KEY ROTATION FAILED (%s): the key is withheld from newcomers; "
            "retrying\n",
            str (g, "rotation-failed-reason"));
  if (json_object_has_member (g, "evicted-identities")) {
    JsonArray *a = json_object_get_array_member (g, "evicted-identities");
    guint n = json_array_get_length (a);
    if (n) {
      printf ("  evicted (until mcsecctl unevict):");
      for (guint i = 0; i < n; i++)
        printf ("%s %s", i ? "," : "", json_array_get_string_element (a, i));
      printf ("\n");
    }
  }
}

/* ------------------------------------------------------------------------ */
/* wireshark-esp: the group's SAs as Wireshark's ESP SA table                */

/* One SA as the controller exported it; the key (hex: key then salt) is
 * wiped before it is freed. */
typedef struct {
  guint32 spi;
  gchar *suite, *key;
  gboolean warned; /* a suite Wireshark cannot decrypt, said once */
} EspSa;

static void
esp_sa_free (gpointer p)
{
  EspSa *sa = p;
  if (sa->key) {
    OPENSSL_cleanse (sa->key, strlen (sa->key));
    g_free (sa->key);
  }
  g_free (sa->suite);
  g_free (sa);
}

static gboolean
esp_sa_known (GPtrArray *sas, guint32 spi)
{
  for (guint i = 0; i < sas->len; i++)
    if (((EspSa *)sas->pdata[i])->spi == spi)
      return TRUE;
  return FALSE;
}

/* Wireshark 4.0's ESP dissector decrypts the AES-GCM suites (RFC 4106). */
static gboolean
esp_sa_decryptable (const EspSa *sa)
{
  return strcmp (sa->suite, "aes-128-gcm") == 0 ||
         strcmp (sa->suite, "aes-256-gcm") == 0;
}

#define ESP_SA_ROW_MAX 256 /* one row of the table, key included */
#define ESP_SA_HEADER "# mcsec group %s: SECRET KEYS."

/* The rows of Wireshark's ESP SA table (Preferences > Protocols > ESP >
 * ESP SAs, the file esp_sa of a profile) for sas: one per SA and IP
 * version, any source and destination, after a warning line.  Other
 * suites are named on standard error (once) and left out.  out has room
 * for it all (ESP_SA_ROW_MAX a row): it never reallocates, so no copy of a
 * key is left behind.  Returns the SAs written. */
static guint
esp_sa_rows (GString *out, const char *group, GPtrArray *sas)
{
  guint rows = 0;

  g_string_append_printf (out,
                          ESP_SA_HEADER " Whoever reads this file decrypts "
                                        "the group's\n# traffic under these "
                                        "SPIs: keep it private and delete it "
                                        "after debugging.\n",
                          group);
  for (guint i = 0; i < sas->len; i++) {
    EspSa *sa = sas->pdata[i];
    if (!esp_sa_decryptable (sa)) {
      if (!sa->warned)
        fprintf (stderr,
                 "mcsecctl: SA 0x%08x uses %s, which Wireshark's ESP "
                 "dissector does not decrypt; left out\n",
                 sa->spi, sa->suite);
      sa->warned = TRUE;
      continue;
    }
    for (int v6 = 0; v6 < 2; v6++) {
      /* the key appended, not formatted: printf's own buffers would keep
       * pieces of it */
      g_string_append_printf (out,
                              "\"%s\",\"*\",\"*\",\"0x%08x\",\"AES-GCM with 16 "
                              "octet ICV [RFC4106]\",\"0x",
                              v6 ? "IPv6" : "IPv4", sa->spi);
      g_string_append (out, sa->key);
      g_string_append (out, "\",\"NULL\",\"\"\n");
    }
    rows++;
  }
  return rows;
}

typedef enum {
  EXPORT_OK,
  EXPORT_UNREACHABLE, /* no answer now: --follow tries again */
  EXPORT_REFUSED,     /* the controller said no, or no such group */
} ExportResult;

/* The controller's answer to line as a JSON object (parser in *parser),
 * or NULL with the reason in *why. */
static JsonObject *
ask (const char *socket_path, const char *origin, const char *line,
     JsonParser **parser, gchar **answer, ExportResult *why, GError **error)
{
  JsonObject *o;

  *parser = NULL;
  *answer = request (socket_path, origin, line, opt.timeout_s, error);
  *why = EXPORT_UNREACHABLE;
  if (*answer == NULL)
    return NULL;
  *parser = json_parser_new ();
  if (**answer == '\0' ||
      !json_parser_load_from_data (*parser, *answer, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (*parser))) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 "the controller at %s gave no JSON answer (did it stop?)",
                 socket_path);
    return NULL;
  }
  o = json_node_get_object (json_parser_get_root (*parser));
  if (!json_object_get_boolean_member_with_default (o, "ok", FALSE)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "%s",
                 str (o, "error"));
    *why = EXPORT_REFUSED;
    return NULL;
  }
  *why = EXPORT_OK;
  return o;
}

static void
ask_done (JsonParser *parser, gchar *answer)
{
  if (parser)
    g_object_unref (parser);
  if (answer) {
    OPENSSL_cleanse (answer, strlen (answer));
    g_free (answer);
  }
}

/* export-keys GROUP: the SAs not in sas yet are added to it (*added: how
 * many); *current: the newest SPI of the answer (0: none); *rekeys: the
 * group's rekeys so far; the SPIs whose keys the controller no longer
 * holds are named on standard error when say_retired.  Every export is
 * logged by the controller. */
static ExportResult
export_sas (const char *socket_path, const char *origin, const char *group,
            GPtrArray *sas, guint *added, guint32 *current, gint64 *rekeys,
            gboolean say_retired, GError **error)
{
  gchar *line = g_strconcat ("export-keys ", group, NULL), *answer;
  JsonParser *parser;
  ExportResult why;
  JsonObject *o =
      ask (socket_path, origin, line, &parser, &answer, &why, error);
  JsonArray *a;

  g_free (line);
  *added = 0;
  *current = 0;
  if (o == NULL) {
    ask_done (parser, answer);
    return why;
  }
  *rekeys = num (o, "rekeys");
  a = json_object_has_member (o, "sas")
          ? json_object_get_array_member (o, "sas")
          : NULL;
  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    JsonObject *s = json_array_get_object_element (a, i);
    const char *key = str (s, "key");
    guint32 spi = (guint32)num (s, "spi");
    if (spi != 0)
      *current = spi;
    if (spi != 0 && *key && !esp_sa_known (sas, spi)) {
      EspSa *sa = g_new0 (EspSa, 1);
      sa->spi = spi;
      sa->suite = g_strdup (str (s, "suite"));
      sa->key = g_strdup (key);
      g_ptr_array_add (sas, sa);
      (*added)++;
    }
    /* the parser's copy of the key goes with the parser: wiped first */
    if (*key)
      OPENSSL_cleanse ((char *)key, strlen (key));
  }
  if (say_retired && json_object_has_member (o, "retired-spis")) {
    JsonArray *r = json_object_get_array_member (o, "retired-spis");
    GString *list = g_string_new (NULL);
    for (guint i = 0; r && i < json_array_get_length (r); i++)
      g_string_append_printf (list, "%s0x%08x", i ? ", " : "",
                              (guint32)json_array_get_int_element (r, i));
    if (list->len)
      fprintf (stderr,
               "mcsecctl: group %s: the controller no longer holds the "
               "keys of its earlier SAs (SPI %s): their packets stay "
               "encrypted (wireshark-esp --follow collects each SA as it "
               "comes)\n",
               group, list->str);
    g_string_free (list, TRUE);
  }
  ask_done (parser, answer);
  return EXPORT_OK;
}

/* The group's current SPI (0: none yet) and rekeys so far, from stats:
 * no key, nothing logged, so it can be asked often. */
static ExportResult
group_state (const char *socket_path, const char *origin, const char *group,
             guint32 *spi, gint64 *rekeys, GError **error)
{
  JsonParser *parser;
  gchar *answer;
  ExportResult why;
  JsonObject *o =
      ask (socket_path, origin, "stats", &parser, &answer, &why, error);
  JsonArray *a = o && json_object_has_member (o, "groups")
                     ? json_object_get_array_member (o, "groups")
                     : NULL;

  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    JsonObject *g = json_array_get_object_element (a, i);
    if (strcmp (str (g, "name"), group) == 0) {
      *spi = (guint32)num (g, "spi");
      *rekeys = num (g, "rekeys");
      ask_done (parser, answer);
      return EXPORT_OK;
    }
  }
  if (o) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no such group");
    why = EXPORT_REFUSED;
  }
  ask_done (parser, answer);
  return why;
}

/* Writes data to path atomically: a new file (mode 0600) in the same
 * folder, synced, renamed over path; a reader sees the old file or the new
 * one, never a part. */
static gboolean
write_atomically (const char *path, const GString *data, GError **error)
{
  gchar *dir = g_path_get_dirname (path), *base = g_path_get_basename (path);
  gchar *tmp = g_strdup_printf ("%s/.%s.XXXXXX", dir, base);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  gsize done = 0;
  int e = 0;

  if (fd < 0)
    e = errno;
  else if (fchmod (fd, 0600) != 0)
    e = errno;
  while (fd >= 0 && e == 0 && done < data->len) {
    ssize_t n = write (fd, data->str + done, data->len - done);
    if (n < 0 && errno != EINTR)
      e = errno;
    else if (n > 0)
      done += (gsize)n;
  }
  if (fd >= 0 && e == 0 && fsync (fd) != 0)
    e = errno;
  if (fd >= 0 && close (fd) != 0 && e == 0)
    e = errno;
  if (fd >= 0 && e == 0 && rename (tmp, path) != 0)
    e = errno;
  if (e != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e),
                 "cannot write %s: %s", path, g_strerror (e));
    if (fd >= 0)
      unlink (tmp);
  }
  g_free (tmp);
  g_free (dir);
  g_free (base);
  return e == 0;
}

/* path's new content: what it holds now (the user's own rows, other
 * groups', earlier exports), less this group's warning lines and the rows
 * of the SPIs written now, then the group's rows; written atomically, mode
 * 0600.  *rows: the SAs written. */
static gboolean
write_sa_file (const char *path, const char *group, GPtrArray *sas, guint *rows,
               GError **error)
{
  gchar *old = NULL, *header = g_strdup_printf (ESP_SA_HEADER, group);
  gsize old_len = 0;
  GString *out;
  gboolean ok, skip_warning = FALSE;

  if (!g_file_get_contents (path, &old, &old_len, error)) {
    if (!g_error_matches (*error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_free (header);
      return FALSE;
    }
    g_clear_error (error);
  }
  /* sized once: no reallocation leaves a copy of a key behind */
  out = g_string_sized_new (old_len + 512 + 2 * ESP_SA_ROW_MAX * sas->len);
  for (gchar *l = old, *next; l && *l; l = next) {
    gboolean keep = TRUE;
    gchar **fields;
    gsize len;
    next = strchr (l, '\n');
    len = next ? (gsize)(next - l) : strlen (l);
    next = next ? next + 1 : l + len;
    if (g_str_has_prefix (l, header)) {
      keep = FALSE;
      skip_warning = TRUE;
    } else if (skip_warning && g_str_has_prefix (l, "# traffic under these")) {
      keep = skip_warning = FALSE;
    } else if (*l == '"') {
      /* "IPv4","*","*","0x12345678",...: the SPI is the fourth field */
      gchar *row = g_strndup (l, len);
      fields = g_strsplit (row, ",", 5);
      if (g_strv_length (fields) >= 4) {
        guint32 spi = (guint32)g_ascii_strtoull (
            fields[3] + (fields[3][0] == '"'), NULL, 0);
        keep = !esp_sa_known (sas, spi);
      }
      for (guint i = 0; fields[i]; i++)
        OPENSSL_cleanse (fields[i], strlen (fields[i]));
      g_strfreev (fields);
      OPENSSL_cleanse (row, len);
      g_free (row);
      skip_warning = FALSE;
    } else {
      skip_warning = FALSE;
    }
    if (keep) {
      g_string_append_len (out, l, (gssize)len);
      g_string_append_c (out, '\n');
    }
  }
  *rows = esp_sa_rows (out, group, sas);
  ok = write_atomically (path, out, error);
  OPENSSL_cleanse (out->str, out->allocated_len);
  g_string_free (out, TRUE);
  if (old) {
    OPENSSL_cleanse (old, old_len);
    g_free (old);
  }
  g_free (header);
  return ok;
}

static volatile sig_atomic_t follow_stop;

static void
on_follow_signal (int sig)
{
  (void)sig;
  follow_stop = 1;
}

/* --follow: the group's SPI every --interval (stats: no key, nothing
 * logged); a new one is exported and the file rewritten with every SA
 * seen since the start, until SIGINT, SIGTERM or SIGHUP.  An SA the
 * controller makes and replaces within one interval is never seen: said
 * on standard error (the group's rekeys counted more SAs than were
 * collected). */
static int
follow (const char *socket_path, const char *origin, const char *group,
        GPtrArray *sas)
{
  struct sigaction sa_stop = {.sa_handler = on_follow_signal};
  gint64 last_rekeys = -1;
  guint32 last_spi = 0;
  gboolean down = FALSE, first = TRUE;
  int rc = 0;

  sigemptyset (&sa_stop.sa_mask);
  /* no SA_RESTART: the signal cuts the sleep short */
  sigaction (SIGINT, &sa_stop, NULL);
  sigaction (SIGTERM, &sa_stop, NULL);
  sigaction (SIGHUP, &sa_stop, NULL);
  while (!follow_stop) {
    struct timespec ts = {opt.interval_ms / 1000,
                          (opt.interval_ms % 1000) * 1000000L};
    GError *error = NULL;
    guint32 spi = 0, current = 0;
    gint64 rekeys = 0;
    guint added = 0, rows = 0;
    ExportResult r =
        group_state (socket_path, origin, group, &spi, &rekeys, &error);

    if (r == EXPORT_OK && (first || (spi != 0 && spi != last_spi))) {
      /* a new SA: its key (one export, logged by the controller); the
       * first look exports in any case, so a controller that refuses
       * exports says so at once */
      r = export_sas (socket_path, origin, group, sas, &added, &current,
                      &rekeys, first, &error);
      if (r == EXPORT_OK) {
        /* (the answer may hold a newer SA than stats named) */
        last_spi = current ? current : spi;
        first = FALSE;
      }
      if (r == EXPORT_OK && added > 0 &&
          !write_sa_file (opt.output, group, sas, &rows, &error)) {
        fprintf (stderr, "mcsecctl: %s\n", error->message);
        g_clear_error (&error);
        rc = 1;
        break;
      }
      if (r == EXPORT_OK && added > 0)
        fprintf (stderr,
                 "mcsecctl: %s: %u SA(s) of group %s Wireshark can "
                 "decrypt (new: SPI 0x%08x)\n",
                 opt.output, rows, group,
                 ((EspSa *)sas->pdata[sas->len - 1])->spi);
    }
    if (r == EXPORT_REFUSED) {
      fprintf (stderr, "mcsecctl: group %s: %s\n", group, error->message);
      g_error_free (error);
      rc = 1;
      break;
    }
    if (r == EXPORT_UNREACHABLE) {
      /* (a signal that cut a request short is no news) */
      if (!down && !follow_stop)
        fprintf (stderr, "mcsecctl: %s (trying again every %d ms)\n",
                 error->message, opt.interval_ms);
      down = TRUE;
      g_clear_error (&error);
    } else {
      if (down)
        fprintf (stderr, "mcsecctl: the controller at %s answers again\n",
                 socket_path);
      down = FALSE;
      /* (a restarted controller counts from 0 again) */
      if (last_rekeys >= 0 && rekeys > last_rekeys + (gint64)added)
        fprintf (stderr,
                 "mcsecctl: group %s: %" G_GINT64_FORMAT
                 " SA(s) came and went between two looks: their packets "
                 "stay encrypted (a shorter --interval)\n",
                 group, rekeys - last_rekeys - (gint64)added);
      last_rekeys = rekeys;
    }
    nanosleep (&ts, NULL);
  }
  return rc;
}

/* wireshark-esp GROUP [--output FILE [--follow]] */
static int
wireshark_esp (const char *socket_path, const char *origin, const char *group)
{
  GPtrArray *sas = g_ptr_array_new_with_free_func (esp_sa_free);
  GError *error = NULL;
  guint added = 0, rows = 0;
  guint32 current = 0;
  gint64 rekeys = 0;
  int rc = 0;

  if (opt.follow) {
    rc = follow (socket_path, origin, group, sas);
  } else if (export_sas (socket_path, origin, group, sas, &added, &current,
                         &rekeys, TRUE, &error) != EXPORT_OK) {
    fprintf (stderr, "mcsecctl: %s\n", error->message);
    g_error_free (error);
    rc = 1;
  } else if (opt.output) {
    if (!write_sa_file (opt.output, group, sas, &rows, &error)) {
      fprintf (stderr, "mcsecctl: %s\n", error->message);
      g_error_free (error);
      rc = 1;
    }
  } else {
    GString *out = g_string_sized_new (512 + 2 * ESP_SA_ROW_MAX * sas->len);
    rows = esp_sa_rows (out, group, sas);
    fputs (out->str, stdout);
    OPENSSL_cleanse (out->str, out->allocated_len);
    g_string_free (out, TRUE);
  }
  if (rc == 0 && !opt.follow && rows == 0) {
    fprintf (stderr, "mcsecctl: group %s has no SA Wireshark can decrypt\n",
             group);
    rc = 1;
  }
  g_ptr_array_unref (sas);
  return rc;
}

static int
admin (const char *socket_path, const char *origin, gboolean json, int argc,
       char **argv)
{
  GError *error = NULL;
  /* wireshark-esp --json: the keys themselves, as the controller answers */
  gchar *line = strcmp (argv[0], "wireshark-esp") == 0
                    ? g_strconcat ("export-keys ", argv[1], NULL)
                    : g_strjoinv (" ", argv);
  gchar *answer = request (socket_path, origin, line, opt.timeout_s, &error);
  JsonParser *parser;
  JsonObject *o;
  int rc = 0;

  (void)argc;
  g_free (line);
  if (answer == NULL) {
    fprintf (stderr, "mcsecctl: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  if (*answer == '\0') {
    fprintf (stderr,
             "mcsecctl: the controller at %s closed the connection "
             "without an answer (did it stop?)\n",
             socket_path);
    answer_free (answer);
    return 1;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, answer, -1, &error) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    fprintf (stderr, "mcsecctl: the controller's answer is not JSON: %s\n",
             error ? error->message : "not an object");
    g_clear_error (&error);
    g_object_unref (parser);
    answer_free (answer);
    return 1;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_get_boolean_member_with_default (o, "ok", FALSE)) {
    fprintf (stderr, "mcsecctl: %s\n", str (o, "error"));
    rc = 1;
  }
  if (json)
    fputs (answer, stdout);
  else if (rc == 0 && strcmp (argv[0], "list") == 0) {
    JsonArray *a = json_object_get_array_member (o, "groups");
    for (guint i = 0; i < json_array_get_length (a); i++)
      print_group (json_array_get_object_element (a, i));
  } else if (rc == 0 && strcmp (argv[0], "cluster") == 0) {
    JsonObject *c = json_object_get_object_member (o, "cluster");
    printf ("controller %s: %s, lease %" G_GINT64_FORMAT
            " ms left, leads %" G_GINT64_FORMAT
            " group(s); campaigns %" G_GINT64_FORMAT ", won %" G_GINT64_FORMAT
            ", lost leases %" G_GINT64_FORMAT ", etcd writes %" G_GINT64_FORMAT
            " (via %s)\n",
            str (c, "name"),
            json_object_get_boolean_member_with_default (c, "available", FALSE)
                ? "available"
                : "UNAVAILABLE (no etcd lease)",
            num (c, "lease-ms-left"), num (c, "groups-led"),
            num (c, "campaigns"), num (c, "won"), num (c, "lost-leases"),
            num (c, "etcd-writes"), str (c, "etcd-endpoint"));
  } else if (rc == 0 && strcmp (argv[0], "stats") == 0) {
    JsonObject *r = json_object_get_object_member (o, "refused-by");
    JsonArray *a = json_object_get_array_member (o, "groups");
    GList *keys = json_object_get_members (r);
    printf (
        "uptime %" G_GINT64_FORMAT " s, %" G_GINT64_FORMAT " connections open\n"
        "connections %" G_GINT64_FORMAT ", handshake failures %" G_GINT64_FORMAT
        ", registrations %" G_GINT64_FORMAT ", refusals %" G_GINT64_FORMAT "\n",
        num (o, "uptime-s"), num (o, "open-connections"),
        num (o, "connections"), num (o, "handshake-failures"),
        num (o, "registrations"), num (o, "refusals"));
    for (GList *l = keys; l; l = l->next)
      if (num (r, l->data))
        printf ("  refused %s: %" G_GINT64_FORMAT "\n", (char *)l->data,
                num (r, l->data));
    g_list_free (keys);
    printf (
        "leaves %" G_GINT64_FORMAT ", disconnects %" G_GINT64_FORMAT
        ", evictions %" G_GINT64_FORMAT ", updates sent %" G_GINT64_FORMAT
        ", acks %" G_GINT64_FORMAT ", rejected messages %" G_GINT64_FORMAT "\n",
        num (o, "leaves"), num (o, "disconnects"), num (o, "evictions"),
        num (o, "updates-sent"), num (o, "acks"), num (o, "rejected-messages"));
    for (guint i = 0; i < json_array_get_length (a); i++)
      print_group (json_array_get_object_element (a, i));
  } else if (rc == 0 && strcmp (argv[0], "rekey") == 0) {
    if (json_object_has_member (o, "rekey-seq"))
      printf ("group %s rekeyed: spi 0x%08" G_GINT64_MODIFIER
              "x, rekey #%" G_GINT64_FORMAT
              " on the rekey channel for %" G_GINT64_FORMAT " members\n",
              argv[1], num (o, "spi"), num (o, "rekey-seq"),
              num (o, "members"));
    else
      printf ("group %s rekeyed: spi 0x%08" G_GINT64_MODIFIER
              "x, update #%" G_GINT64_FORMAT " sent to %" G_GINT64_FORMAT
              " members\n",
              argv[1], num (o, "spi"), num (o, "seq"), num (o, "members"));
  } else if (rc == 0 && strcmp (argv[0], "evict") == 0 &&
             json_object_has_member (o, "leading")) {
    const char *leader = json_object_get_string_member (o, "leader");
    if (g_strcmp0 (leader, "unknown") == 0)
      printf ("%s evicted from %s; no controller leads the group now: the "
              "next leader makes a new SA\n",
              argv[2], argv[1]);
    else
      printf ("%s evicted from %s; the group's leader (%s) rekeys\n", argv[2],
              argv[1], leader);
  } else if (rc == 0 && strcmp (argv[0], "evict") == 0) {
    printf ("%s evicted from %s (%s); new key spi 0x%08" G_GINT64_MODIFIER
            "x, %s #%" G_GINT64_FORMAT "\n",
            argv[2], argv[1],
            json_object_get_boolean_member (o, "was-connected")
                ? "was connected"
                : "was not connected",
            num (o, "spi"),
            json_object_has_member (o, "rekey-seq") ? "rekey" : "update",
            json_object_has_member (o, "rekey-seq") ? num (o, "rekey-seq")
                                                    : num (o, "seq"));
  } else if (rc == 0 && strcmp (argv[0], "unevict") == 0) {
    printf ("%s %s\n", argv[2],
            json_object_get_boolean_member (o, "was-evicted")
                ? "may join again"
                : "was not evicted");
  }
  g_object_unref (parser);
  OPENSSL_cleanse (answer, strlen (answer));
  answer_free (answer);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Test PKI                                                                   */

static gboolean
write_key (const char *path, EVP_PKEY *key, gboolean private_)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                 private_ ? 0600 : 0644);
  FILE *f = fd >= 0 ? fdopen (fd, "w") : NULL;
  gboolean ok;

  if (f == NULL) {
    fprintf (stderr, "mcsecctl: cannot write %s: %s\n", path,
             g_strerror (errno));
    if (fd >= 0)
      close (fd);
    return FALSE;
  }
  ok = private_ ? PEM_write_PrivateKey (f, key, NULL, NULL, 0, NULL, NULL)
                : PEM_write_PUBKEY (f, key);
  return fclose (f) == 0 && ok;
}

static gboolean
write_cert (const char *path, X509 *cert)
{
  FILE *f = fopen (path, "w");
  gboolean ok = f && PEM_write_X509 (f, cert);
  if (f == NULL || fclose (f) != 0 || !ok) {
    fprintf (stderr, "mcsecctl: cannot write %s\n", path);
    return FALSE;
  }
  return TRUE;
}

static void
add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX v3;
  X509_EXTENSION *ext;

  X509V3_set_ctx (&v3, issuer ? issuer : cert, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &v3, nid, value);
  if (ext) {
    X509_add_ext (cert, ext, -1);
    X509_EXTENSION_free (ext);
  }
}

/* A certificate for key, signed by ca_key (self-signed when ca is NULL). */
static X509 *
make_cert (const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
           long from_days, long to_days, gboolean is_ca, const char *san,
           const char *eku)
{
  X509 *cert = X509_new ();
  X509_NAME *name = X509_NAME_new ();
  unsigned char serial[16];
  BIGNUM *bn;

  X509_set_version (cert, 2);
  RAND_bytes (serial, sizeof serial);
  serial[0] &= 0x7f;
  bn = BN_bin2bn (serial, sizeof serial, NULL);
  BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert));
  BN_free (bn);
  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_ASC,
                              (const unsigned char *)"mcsec test PKI", -1, -1,
                              0);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                              (const unsigned char *)cn, -1, -1, 0);
  X509_set_subject_name (cert, name);
  X509_set_issuer_name (cert, ca ? X509_get_subject_name (ca) : name);
  X509_NAME_free (name);
  X509_gmtime_adj (X509_getm_notBefore (cert), from_days * 86400);
  X509_gmtime_adj (X509_getm_notAfter (cert), to_days * 86400);
  X509_set_pubkey (cert, key);
  if (is_ca) {
    add_ext (cert, ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext (cert, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext (cert, ca, NID_basic_constraints, "critical,CA:FALSE");
    add_ext (cert, ca, NID_key_usage, "critical,digitalSignature");
    add_ext (cert, ca, NID_ext_key_usage, eku);
  }
  add_ext (cert, ca, NID_subject_key_identifier, "hash");
  if (ca)
    add_ext (cert, ca, NID_authority_key_identifier, "keyid");
  if (san)
    add_ext (cert, ca, NID_subject_alt_name, san);
  if (X509_sign (cert, ca_key, EVP_sha256 ()) <= 0) {
    X509_free (cert);
    return NULL;
  }
  return cert;
}

static EVP_PKEY *
read_key (const char *path)
{
  FILE *f = fopen (path, "r");
  EVP_PKEY *k = f ? PEM_read_PrivateKey (f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose (f);
  return k;
}

static X509 *
read_cert (const char *path)
{
  FILE *f = fopen (path, "r");
  X509 *c = f ? PEM_read_X509 (f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose (f);
  return c;
}

static gboolean
valid_name (const char *n)
{
  if (*n == '\0' || strlen (n) > 64)
    return FALSE;
  for (const char *p = n; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

static int
pki (int argc, char **argv)
{
  const char *dir = NULL;
  const long days = opt.days;
  const gboolean expired = opt.expired;
  GPtrArray *members = g_ptr_array_new ();
  GString *san = g_string_new ("DNS:localhost,IP:127.0.0.1,IP:::1");
  gchar *ca_crt, *ca_key_path;
  EVP_PKEY *ca_key = NULL;
  X509 *ca = NULL;
  int rc = 1;

  if (opt.days < 1) {
    fprintf (stderr, "mcsecctl pki: --days must be at least 1\n");
    goto out;
  }
  for (guint i = 0; opt.names && opt.names[i]; i++) {
    const char *n = opt.names[i];
    struct in6_addr a;
    g_string_append_printf (san, ",%s:%s",
                            inet_pton (AF_INET, n, &a) == 1 ||
                                    inet_pton (AF_INET6, n, &a) == 1
                                ? "IP"
                                : "DNS",
                            n);
  }
  for (int i = 1; i < argc; i++) {
    if (dir == NULL) {
      dir = argv[i];
    } else if (!valid_name (argv[i])) {
      fprintf (stderr,
               "mcsecctl pki: member name '%s': use letters, digits, '-', "
               "'_' and '.' (at most 64)\n",
               argv[i]);
      goto out;
    } else {
      g_ptr_array_add (members, argv[i]);
    }
  }
  if (dir == NULL) {
    fprintf (stderr, "mcsecctl pki: which folder? mcsecctl pki DIR "
                     "[MEMBER...] (see mcsecctl --help)\n");
    goto out;
  }
  if (g_mkdir_with_parents (dir, 0700) != 0) {
    fprintf (stderr, "mcsecctl pki: cannot create %s: %s\n", dir,
             g_strerror (errno));
    goto out;
  }
  ca_crt = g_build_filename (dir, "ca.crt", NULL);
  ca_key_path = g_build_filename (dir, "ca.key", NULL);
  ca_key = read_key (ca_key_path);
  ca = read_cert (ca_crt);
  if (ca_key == NULL || ca == NULL) {
    /* a new CA, and the controller's credentials with it */
    EVP_PKEY *ck = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
    EVP_PKEY *sk = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    X509 *cc;
    gchar *p;
    EVP_PKEY_free (ca_key);
    X509_free (ca);
    ca_key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
    ca = make_cert ("mcsec test CA", ca_key, NULL, ca_key, -1, 3650, TRUE, NULL,
                    NULL);
    cc = make_cert ("controller", ck, ca, ca_key, -1, days, FALSE, san->str,
                    "serverAuth");
    if (ca == NULL || cc == NULL || sk == NULL ||
        !write_key (ca_key_path, ca_key, TRUE) || !write_cert (ca_crt, ca)) {
      X509_free (cc);
      EVP_PKEY_free (ck);
      EVP_PKEY_free (sk);
      goto out_paths;
    }
    p = g_build_filename (dir, "controller.crt", NULL);
    rc = !write_cert (p, cc);
    g_free (p);
    p = g_build_filename (dir, "controller.key", NULL);
    rc |= !write_key (p, ck, TRUE);
    g_free (p);
    p = g_build_filename (dir, "controller-sign.key", NULL);
    rc |= !write_key (p, sk, TRUE);
    g_free (p);
    X509_free (cc);
    EVP_PKEY_free (ck);
    EVP_PKEY_free (sk);
    if (rc)
      goto out_paths;
    printf ("%s: new CA and controller credentials\n", dir);
  }
  rc = 0;
  for (guint i = 0; i < members->len && rc == 0; i++) {
    const char *n = members->pdata[i];
    EVP_PKEY *k = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
    EVP_PKEY *sk = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    X509 *c = make_cert (n, k, ca, ca_key, expired ? -3 : -1,
                         expired ? -1 : days, FALSE, NULL, "clientAuth");
    gchar *base = g_build_filename (dir, n, NULL);
    gchar *p1 = g_strconcat (base, ".crt", NULL),
          *p2 = g_strconcat (base, ".key", NULL),
          *p3 = g_strconcat (base, "-sign.key", NULL),
          *p4 = g_strconcat (base, "-sign.pub", NULL);
    if (c == NULL || !write_cert (p1, c) || !write_key (p2, k, TRUE) ||
        !write_key (p3, sk, TRUE) || !write_key (p4, sk, FALSE))
      rc = 1;
    else
      printf ("%s: member %s%s\n", dir, n, expired ? " (expired)" : "");
    g_free (p1);
    g_free (p2);
    g_free (p3);
    g_free (p4);
    g_free (base);
    X509_free (c);
    EVP_PKEY_free (k);
    EVP_PKEY_free (sk);
  }
out_paths:
  g_free (ca_crt);
  g_free (ca_key_path);
out:
  if (rc)
    ERR_print_errors_fp (stderr);
  EVP_PKEY_free (ca_key);
  X509_free (ca);
  g_ptr_array_unref (members);
  g_string_free (san, TRUE);
  return rc;
}

/* The admin socket (the order --help states) and where it came from. */
static gchar *
find_socket (const char **origin, GError **error)
{
  const char *env = g_getenv ("MCSEC_ADMIN_SOCKET");

  if (opt.socket) {
    *origin = "--socket";
    return g_strdup (opt.socket);
  }
  if (env && *env) {
    *origin = "$MCSEC_ADMIN_SOCKET";
    return g_strdup (env);
  }
  if (opt.config) {
    *origin = "--config";
    return socket_of_config (opt.config, error);
  }
  if (g_file_test (DEFAULT_CONFIG, G_FILE_TEST_EXISTS)) {
    *origin = DEFAULT_CONFIG;
    return socket_of_config (DEFAULT_CONFIG, error);
  }
  *origin = "the default";
  return g_strdup (DEFAULT_SOCKET);
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *name;
    int operands;
  } commands[] = {{"list", 0},         {"stats", 0}, {"cluster", 0},
                  {"rekey", 1},        {"evict", 2}, {"unevict", 2},
                  {"wireshark-esp", 1}};
  GOptionContext *ctx = g_option_context_new ("COMMAND [ARGUMENT...]");
  GOptionGroup *pki_group = g_option_group_new (
      "pki", "Options of pki:", "Show the pki options", NULL, NULL);
  GOptionGroup *ws_group =
      g_option_group_new ("wireshark-esp", "Options of wireshark-esp:",
                          "Show the wireshark-esp options", NULL, NULL);
  GError *error = NULL;
  const char *origin = NULL;
  gchar *socket_path;
  int rc;

  signal (SIGPIPE, SIG_IGN);
  g_option_context_set_summary (ctx, summary);
  g_option_context_set_description (ctx, description);
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_group_add_entries (pki_group, pki_entries);
  g_option_context_add_group (ctx, pki_group);
  g_option_group_add_entries (ws_group, wireshark_entries);
  g_option_context_add_group (ctx, ws_group);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "mcsecctl: %s (see mcsecctl --help)\n", error->message);
    g_error_free (error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);
  if (opt.version) {
    printf ("mcsecctl %s\n", MCSEC_VERSION);
    return 0;
  }
  if (argc < 2) {
    fprintf (stderr, "mcsecctl: which command? (see mcsecctl --help)\n");
    return 2;
  }
  if (opt.timeout_s < 1) {
    fprintf (stderr, "mcsecctl: --timeout must be at least 1 s\n");
    return 2;
  }
  if ((opt.output || opt.follow ||
       opt.interval_ms != DEFAULT_FOLLOW_INTERVAL_MS) &&
      strcmp (argv[1], "wireshark-esp") != 0) {
    fprintf (stderr, "mcsecctl: --output, --follow and --interval are "
                     "options of wireshark-esp (see mcsecctl --help)\n");
    return 2;
  }
  if (opt.json && (opt.output || opt.follow)) {
    fprintf (stderr, "mcsecctl wireshark-esp: --json prints the "
                     "controller's answer; --output and --follow write the "
                     "esp_sa file: one or the other\n");
    return 2;
  }
  if (opt.follow && opt.output == NULL) {
    fprintf (stderr, "mcsecctl wireshark-esp: --follow needs --output FILE "
                     "(the esp_sa file Wireshark reads)\n");
    return 2;
  }
  if (opt.interval_ms < 10 || opt.interval_ms > 60000) {
    fprintf (stderr, "mcsecctl wireshark-esp: --interval must be 10 to "
                     "60000 ms\n");
    return 2;
  }
  if (strcmp (argv[1], "pki") == 0) {
    rc = pki (argc - 1, argv + 1);
    g_strfreev (opt.names);
    return rc;
  }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++) {
    if (strcmp (argv[1], commands[i].name) != 0)
      continue;
    if (argc - 2 != commands[i].operands) {
      fprintf (stderr,
               "mcsecctl %s: takes %d argument%s, not %d (see mcsecctl "
               "--help)\n",
               argv[1], commands[i].operands,
               commands[i].operands == 1 ? "" : "s", argc - 2);
      return 2;
    }
    socket_path = find_socket (&origin, &error);
    if (socket_path == NULL) {
      fprintf (stderr, "mcsecctl: %s\n", error->message);
      g_error_free (error);
      return 2;
    }
    if (strcmp (argv[1], "wireshark-esp") == 0 && !opt.json)
      rc = wireshark_esp (socket_path, origin, argv[2]);
    else
      rc = admin (socket_path, origin, opt.json, argc - 1, argv + 1);
    g_free (socket_path);
    g_free (opt.output);
    return rc;
  }
  fprintf (stderr, "mcsecctl: unknown command '%s' (see mcsecctl --help)\n",
           argv[1]);
  return 2;
}
