/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ctl-sim.c: the simulation harness of the controller core's tests
 * (ctl-sim.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-sim.h"

#include <mcsec/mcsec-rekey.h>

const char *const config_groups[] = {"video", "tv", "quiet"};
/* make_groups: video (16-bit Sender-IDs) and tv (8-bit) with per-sender
 * SPIs; quiet never */
gboolean groups_spi_per_sender;

GPtrArray *
make_groups (void)
{
  GPtrArray *a = g_ptr_array_new ();
  mcsec_ctl_group_config_t *g;
  gchar *rx[] = {"rx1", "rx2", "rx3", "rx4", "rx5", "rx6", "rx7", "rx8", NULL};
  gchar *tx[] = {"cam1", "cam2", NULL};

  for (guint i = 0; i < 3; i++) {
    g = g_new0 (mcsec_ctl_group_config_t, 1);
    g->name = g_strdup (config_groups[i]);
    g->address = g_strdup ("239.255.0.1");
    g->port = 5004;
    g->suite = MCSEC_SUITE_AES_128_GCM;
    g->sam = 0;
    g->sender_id_bits = 16;
    g->key_lifetime_s = 3600;
    g->activation_ms = 100;
    g->deactivation_ms = 1000;
    g->rekey_on_join = g->rekey_on_leave = TRUE;
    if (i == 2)
      g->rekey_on_join = FALSE; /* "quiet": newcomers share the key */
    if (i < 2 && groups_spi_per_sender) {
      g->spi_per_sender = TRUE;
      g->sender_id_bits = i == 0 ? 16 : 8;
    }
    g->senders = g_strdupv (tx);
    g->receivers = g_strdupv (rx);
    if (i == 1) {
      g->channel = g_strdup ("239.255.0.2:5100");
      g->channel_address = g_strdup ("239.255.0.2");
      g->channel_port = 5100;
      g->tree_degree = 4;
      g->batch_ms = 50;
      g->redundancy = 0;
    }
    g_ptr_array_add (a, g);
  }
  return a;
}

void
sim_start_core (Sim *s)
{
  mcsec_ctl_config_t cc = {0};
  GError *error = NULL;
  cc.update_key = s->update_key;
  cc.rejoin_window_ms = 500;
  cc.max_output = s->max_output;
  cc.cluster = s->cluster;
  cc.store_seals = s->seals;
  cc.relay = s->relay;
  s->core = mcsec_ctl_new (&cc, s->store, make_groups (), s->now, &error);
  if (s->core == NULL) {
    fprintf (stderr, "core: %s\n", error->message);
    abort ();
  }
  run_actions (s); /* its log lines */
}

Sim *
sim_new_on (mcsec_ctl_store_t *store, gboolean cluster, gsize max_output)
{
  Sim *s = g_new0 (Sim, 1);
  s->store = store;
  s->cluster = cluster;
  s->update_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  s->now = 1000000;
  s->peers = g_ptr_array_new ();
  s->log = g_ptr_array_new_with_free_func (g_free);
  s->rand = g_rand_new_with_seed (14);
  s->max_output = max_output;
  sim_start_core (s);
  return s;
}

Sim *
sim_new (gsize max_output)
{
  return sim_new_on (mcsec_ctl_memory_store_new (), FALSE, max_output);
}

gboolean
logged (Sim *s, const char *needle)
{
  for (guint i = 0; i < s->log->len; i++)
    if (strstr (s->log->pdata[i], needle))
      return TRUE;
  return FALSE;
}

Peer *
peer_of (Sim *s, mcsec_ctl_conn_t *c)
{
  for (guint i = 0; i < s->peers->len; i++)
    if (((Peer *)s->peers->pdata[i])->c == c)
      return s->peers->pdata[i];
  return NULL;
}

void
peer_connect (Peer *p)
{
  Sim *s = p->sim;
  p->c = mcsec_ctl_conn_new (s->core, "sim:1", p->identity, s->now, 0);
  mcsec_member_connected (p->m, (uint64_t)s->now);
}

Peer *
peer_new (Sim *s, const char *identity, const char *group, gboolean sender)
{
  Peer *p = g_new0 (Peer, 1);
  mcsec_member_config_t mc = {0};
  EVP_PKEY *k = NULL;

  p->sim = s;
  p->identity = g_strdup (identity);
  p->group = g_strdup (group);
  p->sender = sender;
  p->reads = TRUE;
  p->reconnect = TRUE;
  mc.group = group;
  mc.role = sender ? MCSEC_MIKE_ROLE_BOTH : MCSEC_MIKE_ROLE_RECEIVER;
  if (sender) {
    k = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    mc.sam_key = k;
  }
  if (mcsec_member_new (&mc, &p->m) != MCSEC_OK)
    abort ();
  EVP_PKEY_free (k);
  g_ptr_array_add (s->peers, p);
  peer_connect (p);
  return p;
}

/* The connection is gone (closed by the controller, or lost). */
void
peer_gone (Peer *p)
{
  Sim *s = p->sim;
  mcsec_ctl_conn_free (p->c);
  p->c = NULL;
  mcsec_member_disconnected (p->m, (uint64_t)s->now);
  p->reconnect_at = s->now + 300;
}

void
deliver (Peer *p)
{
  const guint8 *d;
  gsize n;
  Sim *s = p->sim;

  n = mcsec_ctl_conn_output (p->c, &d);
  s->max_queued = MAX (s->max_queued, n);
  if (!p->reads || n == 0)
    return;
  /* what the WELCOMEs say of per-sender SPIs (whole frames are queued) */
  for (gsize off = 0, flen; off + 4 <= n; off += flen) {
    static mcsec_mike_msg_t msg;
    flen = ((gsize)d[off] << 24 | (gsize)d[off + 1] << 16 |
            (gsize)d[off + 2] << 8 | d[off + 3]) +
           4;
    if (flen > n - off)
      break;
    if (mcsec_mike_parse (d + off, flen, &msg) == MCSEC_OK &&
        msg.type == MCSEC_MIKE_WELCOME) {
      p->welcomes++;
      p->welcome_spi_per_sender = msg.spi_per_sender;
    }
  }
  if (mcsec_member_receive (p->m, d, n, (uint64_t)s->now) != MCSEC_OK) {
    mcsec_ctl_conn_written (p->c, n, s->now);
    mcsec_ctl_conn_lost (p->c, "member closed", s->now);
    peer_gone (p);
    return;
  }
  mcsec_ctl_conn_written (p->c, n, s->now);
}

void
run_actions (Sim *s)
{
  mcsec_ctl_action_t a;

  while (mcsec_ctl_next_action (s->core, &a)) {
    Peer *p = a.conn ? peer_of (s, a.conn) : NULL;
    switch (a.type) {
    case MCSEC_CTL_ACTION_WRITE:
      if (p)
        deliver (p);
      break;
    case MCSEC_CTL_ACTION_CLOSE:
      if (p) {
        if (a.flush)
          deliver (p);
        p->closes++;
        if (p->c)
          peer_gone (p);
      }
      break;
    case MCSEC_CTL_ACTION_CHANNEL: {
      gsize len;
      const guint8 *d = g_bytes_get_data (a.data, &len);
      const char *g = mcsec_ctl_group_config (a.group)->name;
      mcsec_ctl_channel_sent (a.group, len, NULL);
      for (guint i = 0; i < s->peers->len; i++) {
        Peer *q = s->peers->pdata[i];
        if (strcmp (q->group, g) != 0 ||
            g_rand_double (s->rand) < q->channel_loss)
          continue;
        (void)mcsec_member_datagram (q->m, d, len, (uint64_t)s->now);
      }
      break;
    }
    case MCSEC_CTL_ACTION_LOG:
      g_ptr_array_add (s->log, g_strdup_printf ("%s %s", a.event, a.text));
      break;
    case MCSEC_CTL_ACTION_RELAY:
      /* the daemon's part: its socket goes to the leader, unbroken */
      g_clear_pointer (&s->relayed, g_bytes_unref);
      g_free (s->relayed_to);
      s->relayed = g_bytes_ref (a.data);
      s->relayed_to = g_strdup (a.text);
      if (p) {
        mcsec_ctl_conn_free (p->c);
        p->c = NULL;
      }
      break;
    }
    mcsec_ctl_action_clear (&a);
  }
}

/* Everything that is ready moves: members' bytes, the controller's. */
void
pump (Sim *s)
{
  for (int round = 0; round < 20; round++) {
    gboolean moved = FALSE;
    for (guint i = 0; i < s->peers->len; i++) {
      Peer *p = s->peers->pdata[i];
      const uint8_t *d;
      size_t n;
      mcsec_member_event_t ev;
      while (mcsec_member_next_event (p->m, &ev))
        ;
      if (p->c == NULL)
        continue;
      n = mcsec_member_output (p->m, &d);
      if (n) {
        guint8 *copy = g_memdup2 (d, n);
        mcsec_member_written (p->m, n);
        mcsec_ctl_conn_input (p->c, copy, n, s->now);
        g_free (copy);
        moved = TRUE;
      }
      run_actions (s);
    }
    run_actions (s);
    if (!moved)
      break;
  }
}

/* Time passes in steps of 10 ms. */
void
sim_run (Sim *s, gint64 ms)
{
  gint64 end = s->now + ms;
  while (s->now < end) {
    s->now += 10;
    mcsec_ctl_tick (s->core, s->now);
    run_actions (s);
    for (guint i = 0; i < s->peers->len; i++) {
      Peer *p = s->peers->pdata[i];
      int dead = 0;
      mcsec_member_state_t st = mcsec_member_state (p->m);
      mcsec_member_tick (p->m, (uint64_t)s->now, &dead);
      if (p->c && dead && p->reads) {
        mcsec_ctl_conn_lost (p->c, "silent controller", s->now);
        peer_gone (p);
      } else if (p->c == NULL && p->reconnect && s->now >= p->reconnect_at &&
                 st != MCSEC_MEMBER_REFUSED && st != MCSEC_MEMBER_EVICTED) {
        peer_connect (p);
      }
    }
    pump (s);
  }
}

void
peer_leave (Peer *p)
{
  mcsec_member_leave (p->m);
  p->reconnect = FALSE;
  pump (p->sim);
  if (p->c) {
    mcsec_ctl_conn_lost (p->c, "left", p->sim->now);
    peer_gone (p);
  }
}

/* The controller goes (the core frees the connections): every member
 * sees its connection drop and reconnects 300 ms later. */
void
sim_drop_connections (Sim *s)
{
  for (guint i = 0; i < s->peers->len; i++) {
    Peer *p = s->peers->pdata[i];
    if (p->c) {
      p->c = NULL;
      mcsec_member_disconnected (p->m, (uint64_t)s->now);
      p->reconnect_at = s->now + 300;
    }
  }
}

/* The controller restarts on the same store: every connection drops. */
void
sim_restart (Sim *s)
{
  sim_drop_connections (s);
  mcsec_ctl_stop (s->core);
  mcsec_ctl_free (s->core);
  s->now += 50;
  sim_start_core (s);
}

void
sim_free (Sim *s)
{
  for (guint i = 0; i < s->peers->len; i++) {
    Peer *p = s->peers->pdata[i];
    if (p->c)
      mcsec_ctl_conn_free (p->c);
    mcsec_member_free (p->m);
    g_free (p->identity);
    g_free (p->group);
    g_free (p);
  }
  mcsec_ctl_free (s->core);
  s->store->free (s->store);
  EVP_PKEY_free (s->update_key);
  g_ptr_array_unref (s->peers);
  g_ptr_array_unref (s->log);
  g_rand_free (s->rand);
  if (s->relayed)
    g_bytes_unref (s->relayed);
  g_free (s->relayed_to);
  g_free (s);
}

/* The SPI the member would send with, or receive the newest with. */
guint32
newest_spi (Peer *p)
{
  mcsec_msa_t *msa = NULL;
  guint32 spi = 0;
  if (mcsec_member_msa (p->m, &msa) != MCSEC_OK || msa == NULL)
    return 0;
  for (size_t i = 0; i < msa->n_sas; i++)
    if (msa->sas[i].listed)
      spi = msa->sas[i].spi;
  mcsec_msa_free (msa);
  return spi;
}

gboolean
holds_spi (Peer *p, guint32 spi)
{
  mcsec_msa_t *msa = NULL;
  gboolean found = FALSE;
  if (mcsec_member_msa (p->m, &msa) != MCSEC_OK || msa == NULL)
    return FALSE;
  for (size_t i = 0; i < msa->n_sas; i++)
    found |= msa->sas[i].spi == spi;
  mcsec_msa_free (msa);
  return found;
}

/* The member's latest update lists Sender-ID id. */
gboolean
lists_sender (Peer *p, guint32 id)
{
  mcsec_msa_t *msa = NULL;
  gboolean found = FALSE;
  if (mcsec_member_msa (p->m, &msa) != MCSEC_OK || msa == NULL)
    return FALSE;
  for (size_t i = 0; i < msa->n_senders; i++)
    found |= msa->senders[i].sender_id == id;
  mcsec_msa_free (msa);
  return found;
}

/* An admin request's answer, JSON as one string. */
gchar *
admin (Sim *s, const char *line)
{
  gchar *a = mcsec_ctl_admin (s->core, line, s->now, 0);
  run_actions (s);
  pump (s);
  return a;
}

gboolean
admin_says (Sim *s, const char *line, const char *needle)
{
  gchar *a = admin (s, line);
  gboolean ok = strstr (a, needle) != NULL;
  if (!ok)
    fprintf (stderr, "  '%s' answered %s", line, a);
  g_free (a);
  return ok;
}

guint32
sender_id (Peer *p)
{
  mcsec_msa_t *msa = NULL;
  guint32 id = 0;
  if (mcsec_member_msa (p->m, &msa) == MCSEC_OK && msa) {
    id = msa->sender_id;
    mcsec_msa_free (msa);
  }
  return id;
}

/* ------------------------------------------------------------------------ */
/* The cluster (docs/cluster.md)                                             */

mcsec_ctl_group_t *
group_named (Sim *s, const char *name)
{
  for (guint i = 0; i < mcsec_ctl_n_groups (s->core); i++) {
    mcsec_ctl_group_t *g = mcsec_ctl_group_nth (s->core, i);
    if (strcmp (mcsec_ctl_group_config (g)->name, name) == 0)
      return g;
  }
  abort ();
}

void
lead (Sim *s, const char *name)
{
  GError *error = NULL;
  if (!mcsec_ctl_group_lead (group_named (s, name), s->now, s->now * 1000,
                             &error)) {
    fprintf (stderr, "lead %s: %s\n", name, error->message);
    abort ();
  }
}

guint64
updates_sent (Sim *s)
{
  gchar *a = admin (s, "stats");
  const char *p = strstr (a, "\"updates-sent\":");
  guint64 n = p ? g_ascii_strtoull (p + 15, NULL, 10) : G_MAXUINT64;
  g_free (a);
  return n;
}

/* The configuration of group name in groups. */
mcsec_ctl_group_config_t *
config_of (GPtrArray *groups, const char *name)
{
  for (guint i = 0; i < groups->len; i++) {
    mcsec_ctl_group_config_t *g = groups->pdata[i];
    if (strcmp (g->name, name) == 0)
      return g;
  }
  abort ();
}

/* A list setting ("a;b;c"). */
void
set_list (gchar ***list, const char *items)
{
  g_strfreev (*list);
  *list = g_strsplit (items, ";", -1);
}

/* The daemon's reload: groups (taken) as the new file has them. */
void
sim_reload (Sim *s, GPtrArray *groups)
{
  mcsec_ctl_config_t cc = {0};
  GPtrArray *changed = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *restart = g_ptr_array_new_with_free_func (g_free);

  cc.rejoin_window_ms = 500;
  cc.max_output = s->max_output;
  g_ptr_array_add (restart, g_strdup ("[controller] listen"));
  mcsec_ctl_reload (s->core, &cc, groups, changed, restart, s->now);
  run_actions (s);
  pump (s);
  g_ptr_array_unref (changed);
  g_ptr_array_unref (restart);
}
