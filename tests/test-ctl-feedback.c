/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-ctl-feedback: the controller's core and feedback members
 * (docs/mike-protocol.md, "Feedback members"), with real member state
 * machines, simulated time, no I/O.  A sender, a feedback member and a
 * receiver join a unicast group and a key tree group: the feedback member
 * gets a Sender-ID of its own and no right to send media, and the others
 * learn its key marked as a feedback member's (in an UPDATE, and on the
 * rekey channel); an identity in no access list is refused the role.
 */
#include <string.h>

#include "core/ctl-core.h"
#include "mcsec-test.h"

typedef struct {
  mcsec_ctl_t *core;
  mcsec_ctl_store_t *store;
  EVP_PKEY *update_key;
  gint64 now;
  GPtrArray *peers;
} Sim;

typedef struct {
  Sim *sim;
  gchar *group;
  mcsec_member_t *m;
  mcsec_ctl_conn_t *c;
} Peer;

static GPtrArray *
make_groups (void)
{
  GPtrArray *a = g_ptr_array_new ();
  /* fb1..fb17: feedback members enough to fill an update's sender list */
  gchar *rx[] = {"rx1",  "rx2",  "fb1",  "fb2",  "fb3",  "fb4",  "fb5",
                 "fb6",  "fb7",  "fb8",  "fb9",  "fb10", "fb11", "fb12",
                 "fb13", "fb14", "fb15", "fb16", "fb17", NULL};
  gchar *tx[] = {"cam1", NULL};

  for (guint i = 0; i < 2; i++) {
    mcsec_ctl_group_config_t *g = g_new0 (mcsec_ctl_group_config_t, 1);
    g->name = g_strdup (i ? "tv" : "video");
    g->address = g_strdup ("239.255.0.1");
    g->port = 5004;
    g->suite = MCSEC_SUITE_AES_128_GCM;
    g->sam = MCSEC_SAM_BLOCK;
    g->sender_id_bits = 16;
    g->key_lifetime_s = 3600;
    g->activation_ms = 100;
    g->deactivation_ms = 1000;
    g->rekey_on_join = g->rekey_on_leave = TRUE;
    g->senders = g_strdupv (tx);
    g->receivers = g_strdupv (rx);
    if (i == 1) { /* a key tree group: rekeys on its channel */
      g->channel = g_strdup ("239.255.0.2:5100");
      g->channel_address = g_strdup ("239.255.0.2");
      g->channel_port = 5100;
      g->tree_degree = 4;
      g->batch_ms = 50;
    }
    g_ptr_array_add (a, g);
  }
  return a;
}

static Peer *
peer_of (Sim *s, mcsec_ctl_conn_t *c)
{
  for (guint i = 0; i < s->peers->len; i++)
    if (((Peer *)s->peers->pdata[i])->c == c)
      return s->peers->pdata[i];
  return NULL;
}

static void
deliver (Peer *p)
{
  const guint8 *d;
  gsize n = mcsec_ctl_conn_output (p->c, &d);

  if (n == 0)
    return;
  if (mcsec_member_receive (p->m, d, n, (uint64_t)p->sim->now) != MCSEC_OK) {
    /* refused, or a protocol error: the member hangs up */
    mcsec_ctl_conn_written (p->c, n, p->sim->now);
    mcsec_ctl_conn_lost (p->c, "member closed", p->sim->now);
    mcsec_ctl_conn_free (p->c);
    p->c = NULL;
    mcsec_member_disconnected (p->m, (uint64_t)p->sim->now);
    return;
  }
  mcsec_ctl_conn_written (p->c, n, p->sim->now);
}

static void
run_actions (Sim *s)
{
  mcsec_ctl_action_t a;

  while (mcsec_ctl_next_action (s->core, &a)) {
    Peer *p = a.conn ? peer_of (s, a.conn) : NULL;
    if (a.type == MCSEC_CTL_ACTION_WRITE && p) {
      deliver (p);
    } else if (a.type == MCSEC_CTL_ACTION_CLOSE && p && p->c) {
      if (a.flush)
        deliver (p); /* a refusal: the member hangs up there */
      if (p->c) {
        mcsec_ctl_conn_free (p->c);
        p->c = NULL;
        mcsec_member_disconnected (p->m, (uint64_t)s->now);
      }
    } else if (a.type == MCSEC_CTL_ACTION_CHANNEL) {
      gsize len;
      const guint8 *d = g_bytes_get_data (a.data, &len);
      const char *g = mcsec_ctl_group_config (a.group)->name;
      mcsec_ctl_channel_sent (a.group, len, NULL);
      for (guint i = 0; i < s->peers->len; i++) {
        Peer *q = s->peers->pdata[i];
        if (strcmp (q->group, g) == 0)
          (void)mcsec_member_datagram (q->m, d, len, (uint64_t)s->now);
      }
    }
    mcsec_ctl_action_clear (&a);
  }
}

/* Time passes in steps of 10 ms; bytes move both ways. */
static void
sim_run (Sim *s, gint64 ms)
{
  gint64 end = s->now + ms;

  while (s->now < end) {
    s->now += 10;
    mcsec_ctl_tick (s->core, s->now);
    run_actions (s);
    for (guint i = 0; i < s->peers->len; i++) {
      Peer *p = s->peers->pdata[i];
      const uint8_t *d;
      size_t n;
      mcsec_member_event_t ev;
      int dead = 0;
      mcsec_member_tick (p->m, (uint64_t)s->now, &dead);
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
      }
      run_actions (s);
    }
  }
}

/* A member asking for n_ids Sender-IDs (0: the default) with an Ed25519
 * key, or with a P-256 one (the longer key) when p256. */
static Peer *
peer_new_with (Sim *s, const char *identity, const char *group, unsigned role,
               unsigned n_ids, gboolean p256)
{
  Peer *p = g_new0 (Peer, 1);
  mcsec_member_config_t mc = {0};
  EVP_PKEY *k = NULL;

  p->sim = s;
  p->group = g_strdup (group);
  mc.group = group;
  mc.role = role;
  mc.sender_count = n_ids;
  if (mcsec_mike_role_has_sender_ids (role)) {
    k = p256 ? EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256")
             : EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
    mc.sam_key = k;
  }
  REQUIRE (mcsec_member_new (&mc, &p->m) == MCSEC_OK);
  EVP_PKEY_free (k);
  g_ptr_array_add (s->peers, p);
  p->c = mcsec_ctl_conn_new (s->core, "sim:1", identity, s->now, 0);
  mcsec_member_connected (p->m, (uint64_t)s->now);
  return p;
}

static Peer *
peer_new (Sim *s, const char *identity, const char *group, unsigned role)
{
  return peer_new_with (s, identity, group, role, 0, FALSE);
}

static Sim *
sim_new (void)
{
  Sim *s = g_new0 (Sim, 1);
  mcsec_ctl_config_t cc = {0};
  GError *error = NULL;

  s->store = mcsec_ctl_memory_store_new ();
  s->update_key = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  s->now = 1000000;
  s->peers = g_ptr_array_new ();
  cc.update_key = s->update_key;
  s->core = mcsec_ctl_new (&cc, s->store, make_groups (), s->now, &error);
  REQUIRE (s->core != NULL);
  run_actions (s);
  return s;
}

static void
sim_free (Sim *s)
{
  for (guint i = 0; i < s->peers->len; i++) {
    Peer *p = s->peers->pdata[i];
    if (p->c)
      mcsec_ctl_conn_free (p->c);
    mcsec_member_free (p->m);
    g_free (p->group);
    g_free (p);
  }
  g_ptr_array_unref (s->peers);
  mcsec_ctl_free (s->core);
  s->store->free (s->store);
  EVP_PKEY_free (s->update_key);
  g_free (s);
}

static mcsec_msa_t *
msa_of (Peer *p)
{
  mcsec_msa_t *msa = NULL;
  REQUIRE (mcsec_member_msa (p->m, &msa) == MCSEC_OK && msa != NULL);
  return msa;
}

/* -1: the MSA lists no such sender; else its feedback mark. */
static int
listed_as_feedback (const mcsec_msa_t *msa, guint32 sender_id)
{
  for (size_t i = 0; i < msa->n_senders; i++)
    if (msa->senders[i].sender_id == sender_id)
      return msa->senders[i].feedback;
  return -1;
}

static void
check_group (const char *group)
{
  Sim *s = sim_new ();
  Peer *cam = peer_new (s, "cam1", group, MCSEC_MIKE_ROLE_SENDER);
  Peer *fb, *rx, *stranger;
  mcsec_msa_t *fb_msa, *rx_msa, *cam_msa;
  guint32 fb_id;

  sim_run (s, 300);
  fb = peer_new (s, "rx1", group, MCSEC_MIKE_ROLE_FEEDBACK);
  sim_run (s, 300);
  rx = peer_new (s, "rx2", group, MCSEC_MIKE_ROLE_RECEIVER);
  stranger = peer_new (s, "eve", group, MCSEC_MIKE_ROLE_FEEDBACK);
  sim_run (s, 1000);

  CHECK (mcsec_member_state (fb->m) == MCSEC_MEMBER_JOINED);
  CHECK (mcsec_member_state (rx->m) == MCSEC_MEMBER_JOINED);
  /* the role is not a way in */
  CHECK (mcsec_member_state (stranger->m) == MCSEC_MEMBER_REFUSED);
  fb_msa = msa_of (fb);
  rx_msa = msa_of (rx);
  cam_msa = msa_of (cam);
  /* the feedback member: a Sender-ID of its own, no media */
  CHECK (fb_msa->role == MCSEC_MIKE_ROLE_FEEDBACK && !fb_msa->may_send);
  REQUIRE (fb_msa->n_sender_ids == 1 && cam_msa->n_sender_ids == 1);
  fb_id = fb_msa->sender_ids[0];
  CHECK (fb_id != 0 && fb_id != cam_msa->sender_ids[0]);
  /* everyone knows the sender as a sender and rx1 as a feedback member */
  CHECK (listed_as_feedback (rx_msa, cam_msa->sender_ids[0]) == 0);
  CHECK (listed_as_feedback (rx_msa, fb_id) == 1);
  CHECK (listed_as_feedback (cam_msa, fb_id) == 1);
  CHECK (listed_as_feedback (fb_msa, cam_msa->sender_ids[0]) == 0);
  /* a receiver has no Sender-ID, and nobody lists it */
  CHECK (rx_msa->n_sender_ids == 0 && rx_msa->n_senders == 2);
  mcsec_msa_free (fb_msa);
  mcsec_msa_free (rx_msa);
  mcsec_msa_free (cam_msa);
  sim_free (s);
}

/* Feedback members with 16 Sender-IDs and P-256 keys each, 272 IDs in
 * all, more than an update lists (256): a media sender that joins after
 * them is still listed (senders first), and the updates are not cut short
 * by a buffer sized per member instead of per Sender-ID (a sender list
 * that did not fit failed every rotation, and so every join). */
static void
check_many_feedback (const char *group)
{
  Sim *s = sim_new ();
  Peer *fb[17], *cam, *rx;
  mcsec_msa_t *rx_msa, *cam_msa;
  guint joined = 0;

  for (guint i = 0; i < G_N_ELEMENTS (fb); i++) {
    gchar *id = g_strdup_printf ("fb%u", i + 1);
    fb[i] = peer_new_with (s, id, group, MCSEC_MIKE_ROLE_FEEDBACK, 16, TRUE);
    g_free (id);
    sim_run (s, 200);
  }
  cam = peer_new (s, "cam1", group, MCSEC_MIKE_ROLE_SENDER);
  rx = peer_new (s, "rx1", group, MCSEC_MIKE_ROLE_RECEIVER);
  sim_run (s, 1000);
  for (guint i = 0; i < G_N_ELEMENTS (fb); i++)
    joined += mcsec_member_state (fb[i]->m) == MCSEC_MEMBER_JOINED;
  CHECK (joined == G_N_ELEMENTS (fb));
  REQUIRE (mcsec_member_state (cam->m) == MCSEC_MEMBER_JOINED);
  REQUIRE (mcsec_member_state (rx->m) == MCSEC_MEMBER_JOINED);
  cam_msa = msa_of (cam);
  rx_msa = msa_of (rx);
  REQUIRE (cam_msa->n_sender_ids >= 1);
  CHECK (rx_msa->n_senders == MCSEC_MIKE_MAX_SENDERS);
  CHECK (listed_as_feedback (rx_msa, cam_msa->sender_ids[0]) == 0);
  mcsec_msa_free (rx_msa);
  mcsec_msa_free (cam_msa);
  sim_free (s);
}

int
main (void)
{
  check_group ("video"); /* updates over each member's connection */
  check_group ("tv");    /* a key tree group: the rekey channel */
  check_many_feedback ("video");
  check_many_feedback ("tv");
  return test_done ("test-ctl-feedback");
}
