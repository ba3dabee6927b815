/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GstMcsecMembership: one member of one group (a MIKE client running in
 * its own thread), shared by mcseckeysrc, which creates it, and any number
 * of mcsecenc / mcsecdec elements, which find it through a GstContext of
 * type GST_MCSEC_MEMBERSHIP_CONTEXT.  Keys never travel in buffers, events
 * or structures: elements copy the MSA from the object when it changes.
 */
#ifndef GST_MCSEC_MEMBERSHIP_H
#define GST_MCSEC_MEMBERSHIP_H

#include <gst/gst.h>
#include <mcsec/mcsec-mike.h>

G_BEGIN_DECLS

#define GST_MCSEC_MEMBERSHIP_CONTEXT "mcsec.membership"

#define GST_TYPE_MCSEC_MEMBERSHIP (gst_mcsec_membership_get_type ())
G_DECLARE_FINAL_TYPE (GstMcsecMembership, gst_mcsec_membership, GST,
                      MCSEC_MEMBERSHIP, GstObject)

/* A member of config->member.group (not started yet), with `slots`
 * Sender-IDs when it sends.  NULL with *error naming the setting. */
GstMcsecMembership *
gst_mcsec_membership_new (const mcsec_client_config_t *config, guint slots,
                          gchar **error);
gboolean gst_mcsec_membership_start (GstMcsecMembership *m);
void gst_mcsec_membership_stop (GstMcsecMembership *m);
const gchar *gst_mcsec_membership_group (GstMcsecMembership *m);

/* A copy of the MSA (free with mcsec_msa_free), NULL before the first. */
mcsec_msa_t *gst_mcsec_membership_get_msa (GstMcsecMembership *m);
/* The source authentication key (a new reference) or NULL. */
EVP_PKEY *gst_mcsec_membership_get_sam_key (GstMcsecMembership *m);
/* A slot among the member's Sender-IDs for one sending element, never
 * handed out twice (a second user of a Sender-ID would repeat counters);
 * -1 when all are taken. */
gint gst_mcsec_membership_claim_sender (GstMcsecMembership *m);
guint gst_mcsec_membership_sender_slots (GstMcsecMembership *m);
mcsec_member_state_t gst_mcsec_membership_state (GstMcsecMembership *m);
void gst_mcsec_membership_channel_stats (GstMcsecMembership *m,
                                         mcsec_member_channel_stats_t *out);

GstContext *gst_mcsec_membership_context_new (GstMcsecMembership *m);
/* The membership in a context (a new reference), or NULL. */
GstMcsecMembership *gst_mcsec_membership_from_context (GstContext *context);

/* For mcsecenc / mcsecdec: ask the pipeline for a membership (NEED_CONTEXT
 * message); set_context then brings it. */
void gst_mcsec_membership_request (GstElement *element);

/* What an element keeps of the membership it follows. */
typedef struct {
  GstMcsecMembership *membership;
  gulong changed_id;
} GstMcsecMembershipLink;

/* Called with the element's object lock: follow the membership of the
 * context, if it has one and the link has none yet; on_changed (membership,
 * data) then runs (from the membership's thread) on every change.  TRUE
 * when the link was made. */
gboolean gst_mcsec_membership_link (GstMcsecMembershipLink *link,
                                    GstContext *context, GCallback on_changed,
                                    gpointer data);
/* Not under the element's lock (the membership's thread may be waiting for
 * it): undo a link taken out of the element under the lock. */
void gst_mcsec_membership_unlink (GstMcsecMembershipLink *link);

G_END_DECLS

#endif
