/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The controller's configuration file (docs/controller.md): [controller]
 * and [group NAME] sections, checked with errors that name the file, line,
 * section and setting.
 */
#ifndef MCSEC_CTL_CONFIG_H
#define MCSEC_CTL_CONFIG_H

#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/ctl-core.h"

/* [cluster] relay-queue: bytes queued to a relay link before its members
 * wait (docs/cluster.md "Relaying") */
#define CTL_RELAY_QUEUE_DEFAULT (4u * 1024 * 1024)

typedef struct {
  gchar *path, *text;
  gchar *listen, *certificate, *private_key, *ca, *update_signing_key,
      *state_dir, *admin_socket;
  /* the name the file gives update-signing-key ("signing-key" before it
   * was renamed), for errors that name the setting as written */
  const char *update_signing_key_setting;
  /* what loads but should change (an older setting's name): one line
   * each, "FILE:LINE: [SECTION] KEY: ...", for --check and the log */
  GPtrArray *warnings;
  guint rejoin_window_ms;
  gboolean allow_key_export;
  /* against outsiders: TLS handshakes in flight, in total and per source
   * address; how long one may take; worker threads for them */
  guint max_handshakes, max_handshakes_per_source, handshake_timeout_ms,
      workers;
  gsize max_output;
  guint repair_per_s;
  /* [cluster] (docs/cluster.md): NULL etcd: one controller, state in
   * files */
  gchar *etcd, *cluster_name, *advertise, *etcd_prefix;
  gchar *etcd_ca, *etcd_certificate, *etcd_private_key; /* files: TLS
                                                          towards etcd */
  gchar *cluster_key;  /* file: 64 hex digits, the key that seals the
                          update-signing key in etcd (NULL: not shared) */
  gchar **controllers; /* names of the cluster's controllers, or NULL */
  gboolean relay;      /* JOINs for groups led elsewhere are relayed to
                          their leader (default: with cluster_key) */
  gsize relay_queue;   /* bytes queued to one relay link before its
                          members wait (CTL_RELAY_QUEUE_DEFAULT) */
  guint lease_s, etcd_timeout_ms;
  GPtrArray *groups;   /* mcsec_ctl_group_config_t */
  gchar **group_names; /* the groups' names, in the same order */
  /* per group, in the same order: the rekey channel's socket settings */
  GPtrArray *channels; /* CtlChannelConfig, NULL for unicast groups */
} CtlConfig;

typedef struct {
  struct sockaddr_storage to;
  socklen_t to_len;
  gchar *interface;
  guint ttl;
} CtlChannelConfig;

/* text: the file's contents (NULL: read path). */
CtlConfig *ctl_config_load (const char *path, const char *text, GError **error);
void ctl_config_free (CtlConfig *c);
/* An error about a setting, with the file's line when it is there:
 * "FILE:LINE: [SECTION] KEY: what". */
void ctl_config_error (const CtlConfig *c, GError **error, const char *section,
                       const char *key, const char *fmt, ...)
    G_GNUC_PRINTF (5, 6);

/* A file the daemon is about to read (a certificate, a key): it opens as a
 * regular, non-empty file, or an error names the setting and the system's
 * reason ("cannot read PATH: Permission denied", "No such file or
 * directory", "Is a directory"), which a PEM parser's would hide. */
gboolean ctl_config_check_file (const CtlConfig *c, const char *section,
                                const char *key, const char *path,
                                GError **error);

/* The credentials the configuration names: a TLS 1.3 server context with
 * the certificate, its private key and the CA member certificates must
 * chain to, and the update-signing key (*update_key NULL when [controller]
 * names none: a cluster's, from etcd).  An error names the setting and
 * says why: the system's reason when a file cannot be read, or what the
 * file is not ("... is not a PEM private key (no start line)"). */
gboolean ctl_config_credentials (const CtlConfig *c, SSL_CTX **ctx,
                                 EVP_PKEY **update_key, GError **error);

/* A reload (SIGHUP, docs/controller.md "Reloading"): the [controller]
 * settings of `next` the running daemon applies at once (limits, timeouts,
 * key export) are copied into `running` and named in `changed`
 * ("[controller] max-output"); those it cannot apply live (addresses,
 * credentials, the state, workers, the cluster, the rekey channels'
 * sockets) stay as they are and are named in `restart`.  The groups are
 * the core's to compare (mcsec_ctl_reload). */
void ctl_config_update (CtlConfig *running, const CtlConfig *next,
                        GPtrArray *changed, GPtrArray *restart);

#endif
