/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-ctl-config: the controller's configuration file
 * (tools/controller/config.c).  A setting the parser does not know is an
 * error naming the file, the line, the section and the key, with the
 * nearest setting as a hint; a reload sorts the [controller] changes into
 * those applied at once and those that wait for a restart; the credentials
 * a configuration names fail with the system's reason when a file cannot
 * be read and with what the file is not otherwise.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "mcsec-test.h"

static const char base[] = "[controller]\n"
                           "listen = 127.0.0.1:7700\n"
                           "certificate = /c.crt\n"
                           "private-key = /c.key\n"
                           "ca = /ca.crt\n"
                           "signing-key = /s.key\n"
                           "state-dir = /state\n"
                           "%s"
                           "\n[group video]\n"
                           "senders = cam1\n"
                           "receivers = rx1\n"
                           "%s"
                           "\n[group tv]\n"
                           "receivers = rx1\n"
                           "rekey-channel = 239.255.0.2:5100\n"
                           "rekey-interface = lo\n"
                           "%s";

/* The configuration with extra lines in [controller], [group video] and
 * [group tv]; NULL and the error's message in *msg when it is refused. */
static CtlConfig *
load (const char *controller, const char *video, const char *tv, gchar **msg)
{
  gchar *text = g_strdup_printf (base, controller, video, tv);
  GError *error = NULL;
  CtlConfig *c = ctl_config_load ("/etc/ctl.conf", text, &error);
  g_free (text);
  *msg = c ? NULL : g_strdup (error->message);
  g_clear_error (&error);
  return c;
}

/* The configuration is refused with exactly `want`. */
static gboolean
refused (const char *controller, const char *video, const char *tv,
         const char *want)
{
  gchar *msg = NULL;
  CtlConfig *c = load (controller, video, tv, &msg);
  gboolean ok = c == NULL && g_strcmp0 (msg, want) == 0;
  if (!ok)
    fprintf (stderr, "  wanted: %s\n  got:    %s\n", want,
             msg ? msg : "(loaded)");
  ctl_config_free (c);
  g_free (msg);
  return ok;
}

static void
test_unknown_settings (void)
{
  gchar *msg = NULL;
  CtlConfig *c;

  /* every setting docs/controller.md lists is known */
  c = load ("admin-socket = /a.sock\nrejoin-window = 1\n"
            "allow-key-export = false\nworkers = 1\nmax-handshakes = 9\n"
            "max-handshakes-per-source = 9\nhandshake-timeout = 999\n"
            "max-output = 300000\nrepair-rate = 2\n",
            "address = 239.255.0.1\nport = 5004\ncipher = aes-256-gcm\n"
            "sam = none\nsender-id-bits = 8\nspi-per-sender = true\n"
            "key-lifetime = 9\n"
            "activation-delay = 9\ndeactivation-delay = 9\n"
            "rekey-on-join = false\nrekey-on-leave = false\n",
            "rekey-ttl = 2\nkey-tree-degree = 3\nbatch-interval = 9\n"
            "rekey-redundancy = 1\n",
            &msg);
  CHECK (c != NULL);
  if (c == NULL)
    fprintf (stderr, "  %s\n", msg);
  ctl_config_free (c);
  g_free (msg);
  c = load ("", "",
            "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c1\n"
            "advertise = 127.0.0.1:7700\ncontrollers = c1,c2\nlease = 3\n"
            "etcd-timeout = 900\nprefix = /x/\ncluster-key = /k\n",
            &msg);
  CHECK (c != NULL);
  CHECK (c && c->relay); /* relaying: on with a cluster key */
  CHECK (c && c->relay_queue == 4 * 1024 * 1024);
  ctl_config_free (c);
  g_free (msg);
  c = load ("", "",
            "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c1\n"
            "cluster-key = /k\nrelay-queue = 65536\n",
            &msg);
  CHECK (c && c->relay_queue == 65536);
  ctl_config_free (c);
  g_free (msg);
  CHECK (refused ("", "",
                  "\n[cluster]\netcd = http://e:1\nname = c\n"
                  "cluster-key = /k\nrelay-queue = 1000\n",
                  "/etc/ctl.conf:22: [cluster] relay-queue: '1000' is not a "
                  "number from 65536 to 16777216"));
  c = load ("", "",
            "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c1\n"
            "cluster-key = /k\nrelay = false\n",
            &msg);
  CHECK (c && !c->relay);
  ctl_config_free (c);
  g_free (msg);
  c = load ("", "", "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c1\n",
            &msg);
  CHECK (c && !c->relay); /* no cluster key, nothing to prove a link with */
  ctl_config_free (c);
  g_free (msg);
  /* a name a relay link's HELLO (and a log line) could not carry */
  CHECK (refused ("", "",
                  "\n[cluster]\netcd = http://e:1\nname = c;1\n"
                  "cluster-key = /k\n",
                  "/etc/ctl.conf:20: [cluster] name: 'c;1' cannot name a "
                  "relay link's end (no semicolon or control character, at "
                  "most 255 bytes; or relay = false)"));
  c = load ("", "",
            "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c;1\n"
            "cluster-key = /k\nrelay = false\n",
            &msg);
  CHECK (c != NULL); /* without relaying, as before */
  ctl_config_free (c);
  g_free (msg);
  CHECK (refused ("", "",
                  "\n[cluster]\netcd = http://e:1\nname = c\nrelay = true\n",
                  "/etc/ctl.conf:21: [cluster] relay: true without "
                  "cluster-key: a relay link proves the cluster key (set "
                  "cluster-key, or relay = false)"));

  /* a misspelling: the nearest setting (a swap, a letter, a case) */
  CHECK (refused ("", "rekey-on-joins = false\n", "",
                  "/etc/ctl.conf:12: [group video] rekey-on-joins: unknown "
                  "setting (did you mean 'rekey-on-join'?)"));
  CHECK (refused ("", "recievers = rx2\n", "",
                  "/etc/ctl.conf:12: [group video] recievers: unknown "
                  "setting (did you mean 'receivers'?)"));
  CHECK (refused ("Listen = 127.0.0.1:1\n", "", "",
                  "/etc/ctl.conf:8: [controller] Listen: unknown setting "
                  "(did you mean 'listen'?)"));
  CHECK (refused ("max-handshake-per-source = 3\n", "", "",
                  "/etc/ctl.conf:8: [controller] max-handshake-per-source: "
                  "unknown setting (did you mean "
                  "'max-handshakes-per-source'?)"));
  CHECK (refused ("", "", "batch-intervall = 100\n",
                  "/etc/ctl.conf:17: [group tv] batch-intervall: unknown "
                  "setting (did you mean 'batch-interval'?)"));
  /* a setting of another section */
  CHECK (refused ("senders = cam1\n", "", "",
                  "/etc/ctl.conf:8: [controller] senders: unknown setting "
                  "(a setting of [group NAME])"));
  CHECK (refused ("", "etcd = http://127.0.0.1:2379\n", "",
                  "/etc/ctl.conf:12: [group video] etcd: unknown setting (a "
                  "setting of [cluster])"));
  CHECK (refused ("", "",
                  "\n[cluster]\netcd = http://e:1\nname = c\nleese = 3\n",
                  "/etc/ctl.conf:21: [cluster] leese: unknown setting (did "
                  "you mean 'lease'?)"));
  /* nothing close */
  CHECK (refused ("", "colour = blue\n", "",
                  "/etc/ctl.conf:12: [group video] colour: unknown setting "
                  "(docs/controller.md lists them)"));
  /* a misspelled section (its line has no "section =": no line number) */
  c = load ("", "", "\n[grup radio]\nreceivers = rx1\n", &msg);
  CHECK (c == NULL && strstr (msg, "[grup radio] section: unknown section"));
  ctl_config_free (c);
  g_free (msg);
}

/* spi-per-sender: false unless set, in both kinds of group; with a
 * sender-id-bits above 24 an error that names it, wherever the two lines
 * are. */
static void
test_spi_per_sender (void)
{
  gchar *msg = NULL;
  CtlConfig *c = load ("", "", "", &msg);
  mcsec_ctl_group_config_t *video, *tv;

  REQUIRE (c != NULL);
  video = c->groups->pdata[0];
  tv = c->groups->pdata[1];
  CHECK (!video->spi_per_sender && !tv->spi_per_sender);
  ctl_config_free (c);
  c = load ("", "sender-id-bits = 24\nspi-per-sender = true\n",
            "spi-per-sender = 1\n", &msg);
  REQUIRE (c != NULL);
  video = c->groups->pdata[0];
  tv = c->groups->pdata[1];
  CHECK (video->spi_per_sender && video->sender_id_bits == 24);
  CHECK (tv->spi_per_sender && tv->sender_id_bits == 16);
  ctl_config_free (c);
  c = load ("", "sender-id-bits = 32\nspi-per-sender = false\n", "", &msg);
  CHECK (c != NULL &&
         !((mcsec_ctl_group_config_t *)c->groups->pdata[0])->spi_per_sender);
  ctl_config_free (c);
  CHECK (refused ("", "sender-id-bits = 32\nspi-per-sender = true\n", "",
                  "/etc/ctl.conf:13: [group video] spi-per-sender: needs "
                  "sender-id-bits of 24 or fewer (this group has 32): a "
                  "block of SPIs leaves the base 8 bits"));
  CHECK (refused ("", "", "spi-per-sender = true\nsender-id-bits = 25\n",
                  "/etc/ctl.conf:17: [group tv] spi-per-sender: needs "
                  "sender-id-bits of 24 or fewer (this group has 25): a "
                  "block of SPIs leaves the base 8 bits"));
  CHECK (refused ("", "spi-per-sender = maybe\n", "",
                  "/etc/ctl.conf:12: [group video] spi-per-sender: 'maybe' "
                  "is not true or false"));
  CHECK (refused ("", "spi-per-senders = true\n", "",
                  "/etc/ctl.conf:12: [group video] spi-per-senders: unknown "
                  "setting (did you mean 'spi-per-sender'?)"));
}

static gboolean
has (GPtrArray *a, const char *s)
{
  for (guint i = 0; i < a->len; i++)
    if (strcmp (a->pdata[i], s) == 0)
      return TRUE;
  return FALSE;
}

/* A reload's [controller] settings: limits at once, the rest named. */
static void
test_update (void)
{
  gchar *msg = NULL;
  CtlConfig *run = load ("", "", "", &msg);
  CtlConfig *next = load ("listen = 127.0.0.1:7701\nmax-output = 300000\n"
                          "allow-key-export = true\nworkers = 3\n"
                          "handshake-timeout = 700\n",
                          "", "rekey-ttl = 4\nrekey-interface = lo\n", &msg);
  CtlConfig *same = load ("", "", "", &msg);
  GPtrArray *changed = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *restart = g_ptr_array_new_with_free_func (g_free);

  REQUIRE (run && next && same);
  ctl_config_update (run, same, changed, restart);
  CHECK (changed->len == 0 && restart->len == 0);
  ctl_config_update (run, next, changed, restart);
  CHECK (has (changed, "[controller] max-output"));
  CHECK (has (changed, "[controller] allow-key-export"));
  CHECK (has (changed, "[controller] handshake-timeout"));
  CHECK (changed->len == 3);
  CHECK (has (restart, "[controller] listen"));
  CHECK (has (restart, "[controller] workers"));
  CHECK (has (restart, "[group tv] rekey-ttl"));
  CHECK (restart->len == 3);
  /* applied: the limits; kept: the rest */
  CHECK (run->max_output == 300000 && run->allow_key_export &&
         run->handshake_timeout_ms == 700);
  CHECK (strcmp (run->listen, "127.0.0.1:7700") == 0 && run->workers == 0);
  g_ptr_array_unref (changed);
  g_ptr_array_unref (restart);
  ctl_config_free (run);
  ctl_config_free (next);
  ctl_config_free (same);
}

/* ---- credentials ---- */

static gchar *dir;

static gchar *
path (const char *name)
{
  return g_build_filename (dir, name, NULL);
}

static void
write_key (EVP_PKEY *k, const char *name)
{
  gchar *p = path (name);
  FILE *f = fopen (p, "w");
  REQUIRE (f && PEM_write_PrivateKey (f, k, NULL, NULL, 0, NULL, NULL) == 1);
  fclose (f);
  g_free (p);
}

static void
write_file (const char *name, const char *text)
{
  gchar *p = path (name);
  REQUIRE (g_file_set_contents (p, text, -1, NULL));
  g_free (p);
}

/* A self-signed certificate for key, in name. */
static void
write_cert (EVP_PKEY *k, const char *name)
{
  X509 *x = X509_new ();
  X509_NAME *n = X509_get_subject_name (x);
  gchar *p = path (name);
  FILE *f;

  X509_set_version (x, 2);
  ASN1_INTEGER_set (X509_get_serialNumber (x), 1);
  X509_gmtime_adj (X509_getm_notBefore (x), 0);
  X509_gmtime_adj (X509_getm_notAfter (x), 3600);
  X509_NAME_add_entry_by_txt (n, "CN", MBSTRING_ASC,
                              (const unsigned char *)"controller", -1, -1, 0);
  X509_set_issuer_name (x, n);
  X509_set_pubkey (x, k);
  REQUIRE (X509_sign (x, k, EVP_sha256 ()) > 0);
  f = fopen (p, "w");
  REQUIRE (f && PEM_write_X509 (f, x) == 1);
  fclose (f);
  X509_free (x);
  g_free (p);
}

/* The credentials of a configuration whose `key` names file `name` (in
 * dir; the others are good); the error's message, or NULL. */
static gchar *
credentials (const char *key, const char *name)
{
  const char *keys[4] = {"certificate", "private-key", "ca",
                         "update-signing-key"};
  const char *files[4] = {"c.crt", "c.key", "c.crt", "s.key"};
  GString *text = g_string_new ("[controller]\n");
  GError *error = NULL;
  CtlConfig *c;
  SSL_CTX *ctx = NULL;
  EVP_PKEY *uk = NULL;
  gchar *msg = NULL;

  for (guint i = 0; i < 4; i++) {
    gchar *p = path (strcmp (keys[i], key) == 0 ? name : files[i]);
    g_string_append_printf (text, "%s = %s\n", keys[i], p);
    g_free (p);
  }
  g_string_append (text, "state-dir = /state\n[group g]\nreceivers = rx1\n");
  c = ctl_config_load ("/etc/ctl.conf", text->str, &error);
  REQUIRE (c != NULL);
  if (!ctl_config_credentials (c, &ctx, &uk, &error))
    msg = g_strdup (error->message);
  else
    CHECK (ctx && uk && EVP_PKEY_get_base_id (uk) == EVP_PKEY_ED25519);
  g_clear_error (&error);
  SSL_CTX_free (ctx);
  EVP_PKEY_free (uk);
  ctl_config_free (c);
  g_string_free (text, TRUE);
  return msg;
}

/* key naming file name fails with a message that holds want (%s: the
 * file's path) */
static gboolean
credentials_fail (const char *key, const char *name, const char *want)
{
  gchar *p = path (name);
  gchar **parts = g_strsplit (want, "%s", 2);
  gchar *w = g_strjoinv (p, parts);
  gchar *msg = credentials (key, name);
  gchar *prefix = g_strdup_printf ("/etc/ctl.conf:%d: [controller] %s: ",
                                   strcmp (key, "certificate") == 0   ? 2
                                   : strcmp (key, "private-key") == 0 ? 3
                                   : strcmp (key, "ca") == 0          ? 4
                                                                      : 5,
                                   key);
  gboolean ok = msg && g_str_has_prefix (msg, prefix) && strstr (msg, w);
  if (!ok)
    fprintf (stderr, "  %s = %s: wanted %s%s\n  got %s\n", key, name, prefix, w,
             msg ? msg : "(loaded)");
  g_strfreev (parts);
  g_free (p);
  g_free (w);
  g_free (msg);
  g_free (prefix);
  return ok;
}

static void
test_credentials (void)
{
  EVP_PKEY *tls = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  EVP_PKEY *other = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  EVP_PKEY *sign = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  gchar *msg, *sub;

  dir = g_dir_make_tmp ("ctl-config-XXXXXX", NULL);
  REQUIRE (dir && tls && other && sign);
  write_key (tls, "c.key");
  write_cert (tls, "c.crt");
  write_key (other, "other.key");
  write_key (sign, "s.key");
  write_file ("garbage", "this is not PEM\n");
  write_file ("empty", "");
  sub = path ("folder");
  REQUIRE (g_mkdir (sub, 0700) == 0);

  msg = credentials ("", "");
  CHECK (msg == NULL);
  if (msg)
    fprintf (stderr, "  good credentials: %s\n", msg);
  g_free (msg);
  /* cannot be read: the system's reason */
  CHECK (credentials_fail ("private-key", "none.key",
                           "cannot read %s: No such file or directory"));
  CHECK (credentials_fail ("private-key", "folder",
                           "cannot read %s: Is a directory"));
  CHECK (credentials_fail ("private-key", "empty",
                           "cannot read %s: the file is empty"));
  CHECK (credentials_fail ("certificate", "none.crt",
                           "cannot read %s: No such file or directory"));
  CHECK (credentials_fail ("ca", "folder", "cannot read %s: Is a directory"));
  CHECK (credentials_fail ("update-signing-key", "none.key",
                           "cannot read %s: No such file or directory"));
  if (geteuid () != 0) { /* root reads a file of mode 000 all the same */
    gchar *p = path ("c.key");
    REQUIRE (chmod (p, 0) == 0);
    CHECK (credentials_fail ("private-key", "c.key",
                             "cannot read %s: Permission denied"));
    REQUIRE (chmod (p, 0600) == 0);
    g_free (p);
  }
  /* read, but not what the setting needs */
  CHECK (credentials_fail ("private-key", "garbage",
                           "%s is not a PEM private key"));
  CHECK (credentials_fail ("private-key", "other.key",
                           "does not match the certificate"));
  CHECK (credentials_fail ("certificate", "garbage",
                           "%s is not a PEM certificate (chain) (OpenSSL: no "
                           "start line)"));
  CHECK (credentials_fail ("ca", "garbage", "%s holds no PEM CA certificate"));
  CHECK (credentials_fail ("update-signing-key", "c.key",
                           "%s is not a PEM Ed25519 private key"));
  CHECK (credentials_fail ("update-signing-key", "garbage",
                           "%s is not a PEM Ed25519 private key"));

  {
    const char *names[] = {"c.key",   "c.crt", "other.key", "s.key",
                           "garbage", "empty", "folder"};
    for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
      gchar *p = path (names[i]);
      (void)g_remove (p);
      g_free (p);
    }
  }
  g_rmdir (dir);
  g_free (sub);
  g_free (dir);
  EVP_PKEY_free (tls);
  EVP_PKEY_free (other);
  EVP_PKEY_free (sign);
}

/* ${CREDENTIALS_DIRECTORY}/NAME: systemd's LoadCredential= folder; outside
 * systemd a clear error, never a path taken as relative. */
static void
test_credentials_directory (void)
{
  gchar *msg = NULL;
  CtlConfig *c;

  g_unsetenv ("CREDENTIALS_DIRECTORY");
  CHECK (refused ("admin-socket = ${CREDENTIALS_DIRECTORY}/a.sock\n", "", "",
                  "/etc/ctl.conf:8: [controller] admin-socket: "
                  "${CREDENTIALS_DIRECTORY} is not set (systemd sets it for "
                  "a service with LoadCredential=; outside one, give the "
                  "file's path)"));
  g_setenv ("CREDENTIALS_DIRECTORY", "/run/credentials/mcsec.service", TRUE);
  c = load ("admin-socket = ${CREDENTIALS_DIRECTORY}/a.sock\n", "",
            "\n[cluster]\netcd = http://127.0.0.1:2379\nname = c1\n"
            "cluster-key = ${CREDENTIALS_DIRECTORY}/cluster.key\n",
            &msg);
  CHECK (c != NULL);
  if (c) {
    CHECK (g_strcmp0 (c->admin_socket, "/run/credentials/mcsec.service/"
                                       "a.sock") == 0);
    CHECK (g_strcmp0 (c->cluster_key, "/run/credentials/mcsec.service/"
                                      "cluster.key") == 0);
  }
  ctl_config_free (c);
  g_free (msg);
  CHECK (refused ("admin-socket = ${CREDENTIALS_DIRECTORY}a.sock\n", "", "",
                  "/etc/ctl.conf:8: [controller] admin-socket: "
                  "${CREDENTIALS_DIRECTORY} must be followed by /NAME"));
  g_setenv ("CREDENTIALS_DIRECTORY", "relative", TRUE);
  CHECK (refused ("admin-socket = ${CREDENTIALS_DIRECTORY}/a.sock\n", "", "",
                  "/etc/ctl.conf:8: [controller] admin-socket: "
                  "${CREDENTIALS_DIRECTORY} is not set (systemd sets it for "
                  "a service with LoadCredential=; outside one, give the "
                  "file's path)"));
  g_unsetenv ("CREDENTIALS_DIRECTORY");
}

/* [controller] update-signing-key (the key that signs key updates) was
 * signing-key, a name too close to a member's signing-key-file: the older
 * name still loads, with a warning that names the new one; errors name the
 * setting as the file writes it; both at once are refused. */
static void
test_renamed (void)
{
  const char *rest = "state-dir = /state\n[group g]\nreceivers = rx1\n";
  const char *head = "[controller]\ncertificate = /c.crt\n"
                     "private-key = /c.key\nca = /ca.crt\n";
  GError *error = NULL;
  gchar *text;
  CtlConfig *c;

  text = g_strconcat (head, "update-signing-key = /u.key\n", rest, NULL);
  c = ctl_config_load ("/etc/ctl.conf", text, &error);
  REQUIRE (c != NULL);
  CHECK (g_strcmp0 (c->update_signing_key, "/u.key") == 0);
  CHECK (g_strcmp0 (c->update_signing_key_setting, "update-signing-key") == 0);
  CHECK (c->warnings->len == 0);
  ctl_config_free (c);
  g_free (text);

  /* the older name: the same setting, a warning */
  text = g_strconcat (head, "signing-key = s.key\n", rest, NULL);
  c = ctl_config_load ("/etc/ctl.conf", text, &error);
  REQUIRE (c != NULL);
  CHECK (g_strcmp0 (c->update_signing_key, "/etc/s.key") == 0);
  CHECK (g_strcmp0 (c->update_signing_key_setting, "signing-key") == 0);
  CHECK (c->warnings->len == 1);
  if (c->warnings->len == 1) {
    const char *w = c->warnings->pdata[0];
    CHECK (g_str_has_prefix (w, "/etc/ctl.conf:5: [controller] signing-key: "
                                "deprecated name: write update-signing-key "
                                "(the key that signs key updates; a member's "
                                "own signing key is signing-key-file)"));
  }
  ctl_config_free (c);
  g_free (text);

  /* both names */
  text = g_strconcat (head, "signing-key = /s.key\nupdate-signing-key = /u\n",
                      rest, NULL);
  c = ctl_config_load ("/etc/ctl.conf", text, &error);
  CHECK (c == NULL && error &&
         strcmp (error->message,
                 "/etc/ctl.conf:5: [controller] signing-key: give "
                 "update-signing-key only (signing-key is its older name)") ==
             0);
  g_clear_error (&error);
  ctl_config_free (c);
  g_free (text);

  /* neither: the new name is the one asked for */
  text = g_strconcat (head, rest, NULL);
  c = ctl_config_load ("/etc/ctl.conf", text, &error);
  CHECK (c == NULL && error &&
         g_str_has_prefix (error->message,
                           "/etc/ctl.conf: [controller] update-signing-key: "
                           "missing (required"));
  g_clear_error (&error);
  ctl_config_free (c);
  g_free (text);

  /* a near miss is pointed at the new name */
  text = g_strconcat (head, "update-signing-kei = /u\n", rest, NULL);
  c = ctl_config_load ("/etc/ctl.conf", text, &error);
  CHECK (c == NULL && error &&
         strstr (error->message, "(did you mean 'update-signing-key'?)"));
  g_clear_error (&error);
  ctl_config_free (c);
  g_free (text);
}

int
main (void)
{
  test_unknown_settings ();
  test_spi_per_sender ();
  test_credentials_directory ();
  test_update ();
  test_credentials ();
  test_renamed ();
  return test_done ("test-ctl-config");
}
