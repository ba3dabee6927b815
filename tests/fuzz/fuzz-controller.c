/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer targets: the controller's side of MIKE and its configuration
 * file, built from the controller's I/O-free core (tools/controller/core)
 * and its configuration parser; no daemon code, no sockets.
 *
 * FUZZ_CONTROLLER_MESSAGES: the input is what a member sends after its TLS
 * handshake.  Byte 0 picks the identity the certificate would have given
 * (a sender, two receivers, an unknown one) and the group (a unicast group
 * or a key tree group with per-sender SPIs); the rest is fed to a connection of
 * the core, in two pieces as TLS records may cut it, next to a member that
 * stays joined (JOIN, ACK, PING, REPAIR, LEAVE, anything).  Nothing may crash
 * or leak; time moves on so that every batch is committed; every connection is
 * freed at the end and every group is empty again.
 *
 * FUZZ_CONTROLLER_CONFIG: the input is a configuration file; it is parsed
 * and thrown away.
 *
 * FUZZ_CONTROLLER_TREE_LOG: the input is a key tree group's entries in
 * etcd as a new leader opens them (core/ctl-tree.c), [len (2, big-endian)
 * | bytes]...: a tree or nothing, every leaf named a member of it.
 *
 * FUZZ_CONTROLLER_SA_RECORD: the input is a sealed SA's record as a
 * cluster's store opens it (core/ctl-adopt.c): it parses whole or not at
 * all, and what it gives stays within its bounds.
 */
#include <string.h>

#include "config.h"
#include "core/ctl-core.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#ifdef FUZZ_CONTROLLER_TREE_LOG

#include <stdlib.h>

#include "core/ctl-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GPtrArray *values =
      g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  GHashTable *by_leaf = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  gsize pos = 0;
  guint64 seq = 0;
  mcsec_lkh_t *tree;

  while (pos + 2 <= size && values->len < 64) {
    gsize len = (gsize)data[pos] << 8 | data[pos + 1];
    pos += 2;
    if (len > size - pos)
      len = size - pos;
    g_ptr_array_add (values, g_bytes_new (data + pos, len));
    pos += len;
  }
  tree = tree_log_parse ((GBytes *const *)values->pdata, values->len, by_leaf,
                         &seq);
  if (tree) {
    GHashTableIter it;
    gpointer leaf;
    g_hash_table_iter_init (&it, by_leaf);
    while (g_hash_table_iter_next (&it, &leaf, NULL))
      if (!mcsec_lkh_is_member (tree, GPOINTER_TO_UINT (leaf)))
        abort (); /* a leaf named that is not one */
    if (mcsec_lkh_members (tree) != g_hash_table_size (by_leaf))
      abort ();
    mcsec_lkh_free (tree);
  }
  g_hash_table_unref (by_leaf);
  g_ptr_array_unref (values);
  return 0;
}

#elif defined(FUZZ_CONTROLLER_SA_RECORD)

#include <stdlib.h>

#include "core/ctl-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SaRecord r;

  if (!sa_record_parse (data, size, &r)) {
    if (r.ids || r.holders)
      abort (); /* a refusal keeps nothing */
    return 0;
  }
  if (r.key_len == 0 || r.key_len > sizeof r.key || r.ids == NULL ||
      r.holders == NULL)
    abort ();
  for (guint i = 0; i < r.holders->len; i++) {
    const Holder *h = r.holders->pdata[i];
    if (h->identity == NULL || *h->identity == '\0' ||
        h->n_ids > MCSEC_MIKE_MAX_SENDER_IDS || h->spki_len > sizeof h->spki)
      abort ();
  }
  sa_record_clear (&r);
  return 0;
}

#elif defined(FUZZ_CONTROLLER_CONFIG)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  gchar *text = g_strndup ((const gchar *)data, size);
  CtlConfig *cfg = ctl_config_load ("/fuzz/controller.conf", text, &error);

  if (cfg == NULL) {
    /* a failure names the file (or the setting) */
    if (error == NULL || error->message == NULL ||
        strstr (error->message, "controller.conf") == NULL)
      abort ();
    g_error_free (error);
  }
  ctl_config_free (cfg);
  g_free (text);
  return 0;
}

#else /* the member's messages */

static const char config[] =
    "[controller]\n"
    "certificate = unused.crt\nprivate-key = unused.key\nca = unused.crt\n"
    "signing-key = unused.key\nstate-dir = state\n"
    "[group video]\nsenders = cam1\nreceivers = rx1;rx2\n"
    "activation-delay = 0\n"
    "[group tv]\nsenders = cam1\nreceivers = rx1;rx2\n"
    "rekey-channel = 239.255.0.1:5100\nbatch-interval = 0\n"
    "spi-per-sender = true\n";
static const char *const identities[] = {"cam1", "rx1", "rx2", "eve"};

static mcsec_ctl_t *core;
static gint64 now = 1000000;

/* What the daemon would do with the actions: nothing leaves. */
static void
drain (void)
{
  mcsec_ctl_action_t a;
  while (mcsec_ctl_next_action (core, &a))
    mcsec_ctl_action_clear (&a);
}

/* A JOIN as a member would send it. */
static gsize
join_frame (const char *group, guint8 *buf, gsize cap)
{
  mcsec_mike_builder_t b;
  size_t len;
  mcsec_mike_begin (&b, buf, cap, MCSEC_MIKE_JOIN);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, group);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, MCSEC_MIKE_ROLE_RECEIVER);
  return mcsec_mike_finish (&b, &len) == MCSEC_OK ? len : 0;
}

static void
init (void)
{
  GError *error = NULL;
  CtlConfig *cfg = ctl_config_load ("/fuzz/controller.conf", config, &error);
  mcsec_ctl_config_t cc = {0};

  if (cfg == NULL)
    abort ();
  cc.update_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  core = mcsec_ctl_new (&cc, mcsec_ctl_memory_store_new (),
                        g_ptr_array_ref (cfg->groups), now, &error);
  if (core == NULL)
    abort ();
  EVP_PKEY_free (cc.update_key);
  g_ptr_array_set_size (cfg->groups, 0);
  ctl_config_free (cfg);
  drain ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  mcsec_ctl_conn_t *c, *stay;
  guint8 join[512];
  gsize jl;
  const char *group;

  if (core == NULL)
    init ();
  if (size < 1)
    return 0;
  now += 1000;
  /* a receiver that stays joined while the fuzzed member comes and goes */
  group = (data[0] & 4) ? "tv" : "video";
  stay = mcsec_ctl_conn_new (core, "fuzz:1", "rx2", now, 0);
  jl = join_frame (group, join, sizeof join);
  if (jl == 0)
    abort ();
  mcsec_ctl_conn_input (stay, join, jl, now);
  c = mcsec_ctl_conn_new (core, "fuzz:2", identities[data[0] & 3], now, 0);
  mcsec_ctl_conn_input (c, data + 1, (size - 1) / 2, now);
  mcsec_ctl_conn_input (c, data + 1 + (size - 1) / 2, size - 1 - (size - 1) / 2,
                        now + 1);
  /* what the batches hold is committed, then everyone goes */
  mcsec_ctl_tick (core, now + 5);
  drain ();
  mcsec_ctl_conn_free (c);
  mcsec_ctl_conn_free (stay);
  mcsec_ctl_tick (core, now + 10);
  drain ();
  for (guint i = 0; i < mcsec_ctl_n_groups (core); i++)
    if (mcsec_ctl_group_members (mcsec_ctl_group_nth (core, i)) != 0)
      abort (); /* every member left */
  return 0;
}

#endif
