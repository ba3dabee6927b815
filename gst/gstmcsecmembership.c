/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include "gstmcsecmembership.h"
#include "gstmcsecelement.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

struct _GstMcsecMembership {
  GstObject parent;
  mcsec_client_t *client;
  EVP_PKEY *sam_key;
  gchar *group;
  guint slots, next_slot; /* under the object lock */
  gboolean started;
};

enum { SIGNAL_CHANGED, SIGNAL_MEMBER_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (GstMcsecMembership, gst_mcsec_membership, GST_TYPE_OBJECT);

static void
gst_mcsec_membership_finalize (GObject *object)
{
  GstMcsecMembership *m = GST_MCSEC_MEMBERSHIP (object);

  mcsec_client_free (m->client); /* stops its thread; wipes the keys */
  EVP_PKEY_free (m->sam_key);
  g_free (m->group);
  G_OBJECT_CLASS (gst_mcsec_membership_parent_class)->finalize (object);
}

static void
gst_mcsec_membership_class_init (GstMcsecMembershipClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);

  gobject_class->finalize = gst_mcsec_membership_finalize;
  /* the MSA changed (keys, activation, Sender-IDs, sender keys); emitted
   * from the membership's thread */
  signals[SIGNAL_CHANGED] =
      g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* event name, reason, text, update number */
  signals[SIGNAL_MEMBER_EVENT] =
      g_signal_new ("member-event", G_TYPE_FROM_CLASS (klass),
                    G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                    G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT64);
}

static void
gst_mcsec_membership_init (GstMcsecMembership *m)
{
  (void)m;
}

/* From the client's thread. */
static void
on_client_event (const mcsec_member_event_t *ev, void *data)
{
  GstMcsecMembership *m = data;
  const char *reason = "";

  if (ev->type == MCSEC_MEMBER_EV_REFUSED ||
      ev->type == MCSEC_MEMBER_EV_EVICTED ||
      ev->type == MCSEC_MEMBER_EV_REDIRECTED)
    reason = mcsec_mike_reason_name (ev->reason);
  else if (ev->type == MCSEC_MEMBER_EV_REJECTED ||
           (ev->type == MCSEC_MEMBER_EV_CHANNEL && ev->status))
    reason = mcsec_status_name (ev->status);
  g_signal_emit (m, signals[SIGNAL_MEMBER_EVENT], 0,
                 mcsec_member_event_name (ev->type), reason, ev->text, ev->seq);
  switch (ev->type) {
  case MCSEC_MEMBER_EV_JOINED:
  case MCSEC_MEMBER_EV_UPDATED:
  case MCSEC_MEMBER_EV_SA_CHANGED:
    g_signal_emit (m, signals[SIGNAL_CHANGED], 0);
    break;
  default:
    break;
  }
}

GstMcsecMembership *
gst_mcsec_membership_new (const mcsec_client_config_t *config, guint slots,
                          gchar **error)
{
  GstMcsecMembership *m = g_object_new (GST_TYPE_MCSEC_MEMBERSHIP, NULL);
  mcsec_client_config_t cfg = *config;
  char *err = NULL;

  gst_object_ref_sink (m);
  cfg.on_event = on_client_event;
  cfg.data = m;
  if (mcsec_client_new (&cfg, &m->client, &err) != MCSEC_OK) {
    *error = g_strdup (err ? err : "cannot create the MIKE client");
    free (err);
    gst_object_unref (m);
    return NULL;
  }
  if (config->member.sam_key && EVP_PKEY_up_ref (config->member.sam_key) == 1)
    m->sam_key = config->member.sam_key;
  m->group = g_strdup (config->member.group);
  m->slots = slots;
  return m;
}

gboolean
gst_mcsec_membership_start (GstMcsecMembership *m)
{
  if (m->started)
    return TRUE;
  m->started = mcsec_client_start (m->client) == MCSEC_OK;
  return m->started;
}

void
gst_mcsec_membership_stop (GstMcsecMembership *m)
{
  mcsec_client_stop (m->client);
  m->started = FALSE;
}

const gchar *
gst_mcsec_membership_group (GstMcsecMembership *m)
{
  return m->group;
}

mcsec_msa_t *
gst_mcsec_membership_get_msa (GstMcsecMembership *m)
{
  mcsec_msa_t *msa = NULL;
  if (mcsec_client_msa (m->client, &msa) != MCSEC_OK)
    return NULL;
  return msa;
}

EVP_PKEY *
gst_mcsec_membership_get_sam_key (GstMcsecMembership *m)
{
  if (m->sam_key && EVP_PKEY_up_ref (m->sam_key) == 1)
    return m->sam_key;
  return NULL;
}

gint
gst_mcsec_membership_claim_sender (GstMcsecMembership *m)
{
  gint slot = -1;

  GST_OBJECT_LOCK (m);
  if (m->next_slot < m->slots)
    slot = (gint)m->next_slot++;
  GST_OBJECT_UNLOCK (m);
  return slot;
}

guint
gst_mcsec_membership_sender_slots (GstMcsecMembership *m)
{
  return m->slots;
}

mcsec_member_state_t
gst_mcsec_membership_state (GstMcsecMembership *m)
{
  return mcsec_client_state (m->client);
}

void
gst_mcsec_membership_channel_stats (GstMcsecMembership *m,
                                    mcsec_member_channel_stats_t *out)
{
  mcsec_client_channel_stats (m->client, out);
}

GstContext *
gst_mcsec_membership_context_new (GstMcsecMembership *m)
{
  GstContext *ctx = gst_context_new (GST_MCSEC_MEMBERSHIP_CONTEXT, TRUE);
  GstStructure *s = gst_context_writable_structure (ctx);
  gst_structure_set (s, "membership", GST_TYPE_MCSEC_MEMBERSHIP, m, "group",
                     G_TYPE_STRING, m->group, NULL);
  return ctx;
}

GstMcsecMembership *
gst_mcsec_membership_from_context (GstContext *context)
{
  GstMcsecMembership *m = NULL;

  if (context == NULL || g_strcmp0 (gst_context_get_context_type (context),
                                    GST_MCSEC_MEMBERSHIP_CONTEXT) != 0)
    return NULL;
  gst_structure_get (gst_context_get_structure (context), "membership",
                     GST_TYPE_MCSEC_MEMBERSHIP, &m, NULL);
  return m;
}

void
gst_mcsec_membership_request (GstElement *element)
{
  GstMessage *msg = gst_message_new_need_context (GST_OBJECT (element),
                                                  GST_MCSEC_MEMBERSHIP_CONTEXT);
  gst_element_post_message (element, msg);
}

gboolean
gst_mcsec_membership_link (GstMcsecMembershipLink *link, GstContext *context,
                           GCallback on_changed, gpointer data)
{
  GstMcsecMembership *m;

  if (link->membership != NULL)
    return FALSE;
  m = gst_mcsec_membership_from_context (context);
  if (m == NULL)
    return FALSE;
  link->membership = m; /* the reference from the context */
  link->changed_id = g_signal_connect (m, "changed", on_changed, data);
  return TRUE;
}

void
gst_mcsec_membership_unlink (GstMcsecMembershipLink *link)
{
  if (link->membership) {
    g_signal_handler_disconnect (link->membership, link->changed_id);
    gst_object_unref (link->membership);
  }
  link->membership = NULL;
  link->changed_id = 0;
}
