/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
/**
 * SECTION:element-mcseckeysrc
 * @title: mcseckeysrc
 *
 * Joins an mcsec group at its controller (MIKE over TLS 1.3 with X.509
 * certificates on both sides) and keeps the group's keys for the mcsecenc
 * and mcsecdec elements of the same pipeline.  It is a source of keys, not
 * of buffers: it has no pads.  The keys reach the other elements through a
 * GstContext ("mcsec.membership") holding the membership object; they never
 * travel in buffers, events or debug logs.
 *
 * A sender pipeline waits for its keys before sending anything; a receiver
 * drops (and counts) packets until it has them.  Progress is posted on the
 * bus as element messages named "mcsec-membership" with the fields event
 * (joined, updated, rekeyed, refused, evicted, controller-lost,
 * controller-back, update-rejected), group, reason, text and seq.  A
 * refusal is also an error (the pipeline cannot work), an eviction a
 * warning.  The controller of a cluster that does not lead the group, or
 * cannot reach the cluster's store, refuses without finality (not-leader,
 * unavailable): that is no refusal here, only a debug line, and the
 * element tries the next controller of its list (`controller` takes
 * HOST:PORT,HOST:PORT,...).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 mcseckeysrc controller=127.0.0.1:7700 group=video \
 *     role=sender certificate=cam1.crt private-key=cam1.key ca=ca.crt \
 *     signing-key-file=cam1-sign.key \
 *   videotestsrc is-live=true ! vp8enc deadline=1 ! rtpvp8pay ! mcsecenc ! \
 *     udpsink host=239.1.1.1 port=5004
 * gst-launch-1.0 mcseckeysrc controller=127.0.0.1:7700 group=video \
 *     certificate=rx1.crt private-key=rx1.key ca=ca.crt \
 *   udpsrc address=239.1.1.1 port=5004 ! mcsecdec \
 *     caps="application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96"
 * ! \ rtpvp8depay ! vp8dec ! videoconvert ! autovideosink
 * ]|
 */
#include <stdlib.h>

#include "gstmcsecelement.h"
#include "gstmcseckeysrc.h"
#include "gstmcsecmembership.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

typedef enum {
  GST_MCSEC_ROLE_RECEIVER = MCSEC_MIKE_ROLE_RECEIVER,
  GST_MCSEC_ROLE_SENDER = MCSEC_MIKE_ROLE_SENDER,
  GST_MCSEC_ROLE_BOTH = MCSEC_MIKE_ROLE_BOTH,
  GST_MCSEC_ROLE_FEEDBACK = MCSEC_MIKE_ROLE_FEEDBACK,
} GstMcsecRole;

#define GST_TYPE_MCSEC_ROLE (gst_mcsec_role_get_type ())
static GType
gst_mcsec_role_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_MCSEC_ROLE_RECEIVER, "Receive only", "receiver"},
      {GST_MCSEC_ROLE_SENDER,
       "Send and receive (every member receives): Sender-IDs and a signing "
       "key",
       "sender"},
      /* the same to the controller and the member (every member may
       * receive); its own wire value (3) is kept for older peers */
      {GST_MCSEC_ROLE_BOTH, "Deprecated: the older name of sender", "both"},
      {GST_MCSEC_ROLE_FEEDBACK,
       "Receive, and send feedback (RTCP) only: receivers accept nothing "
       "else from this member",
       "feedback"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecRole", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

struct _GstMcsecKeysrc {
  GstElement parent;

  /* settings, under the object lock */
  gchar *controller, *controller_name, *group, *rekey_interface;
  gchar *certificate, *private_key, *ca, *signing_key_file;
  GstMcsecRole role;
  guint sender_ids;

  /* state */
  GstMcsecMembership *membership;
  gulong event_id;
  gboolean lost;
  guint32 spis[16]; /* the SPIs seen last: a new one is a rekey */
  guint n_spis;
  guint64 updates, rekeys, rejected, losses;
};

enum {
  PROP_0,
  PROP_CONTROLLER,
  PROP_CONTROLLER_NAME,
  PROP_GROUP,
  PROP_CERTIFICATE,
  PROP_PRIVATE_KEY,
  PROP_CA,
  PROP_ROLE,
  PROP_SIGNING_KEY_FILE,
  PROP_SENDER_IDS,
  PROP_SENDERS, /* sender-ids' older name */
  PROP_REKEY_INTERFACE,
  PROP_STATE,
  PROP_STATS,
};

#define gst_mcsec_keysrc_parent_class parent_class
G_DEFINE_TYPE (GstMcsecKeysrc, gst_mcsec_keysrc, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (mcseckeysrc, "mcseckeysrc",
                                       GST_RANK_NONE, GST_TYPE_MCSEC_KEYSRC,
                                       gst_mcsec_element_init (plugin));

/* From the membership's thread: note what changed, post it on the bus. */
static void
on_member_event (GstMcsecMembership *m, const gchar *event, const gchar *reason,
                 const gchar *text, guint64 seq, gpointer data)
{
  GstMcsecKeysrc *self = data;
  const gchar *name = event;
  GstStructure *s;

  if (g_str_equal (event, "sa-changed"))
    return; /* timers inside the membership: not news for the application */
  if (g_str_equal (event, "redirected")) {
    /* a controller of a cluster that cannot take us in (not-leader,
     * unavailable): not final, the client tries the next one of the
     * list; the keys stay, and controller-lost/-back say the rest */
    GST_INFO_OBJECT (self, "membership of %s: %s sends us elsewhere (%s)",
                     gst_mcsec_membership_group (m), reason, text);
    return;
  }
  GST_OBJECT_LOCK (self);
  if (g_str_equal (event, "updated")) {
    /* a rekey when the update brought an SPI we had not seen */
    mcsec_msa_t *msa = gst_mcsec_membership_get_msa (m);
    gboolean fresh = FALSE;
    self->updates++;
    for (gsize i = 0; msa && i < msa->n_sas; i++) {
      gboolean seen = FALSE;
      for (guint j = 0; j < self->n_spis; j++)
        seen |= self->spis[j] == msa->sas[i].spi;
      fresh |= !seen;
    }
    self->n_spis = 0;
    for (gsize i = 0; msa && i < msa->n_sas && i < G_N_ELEMENTS (self->spis);
         i++)
      self->spis[self->n_spis++] = msa->sas[i].spi;
    mcsec_msa_free (msa);
    if (fresh) {
      self->rekeys++;
      name = "rekeyed";
    }
  } else if (g_str_equal (event, "joined")) {
    mcsec_msa_t *msa = gst_mcsec_membership_get_msa (m);
    self->n_spis = 0;
    for (gsize i = 0; msa && i < msa->n_sas && i < G_N_ELEMENTS (self->spis);
         i++)
      self->spis[self->n_spis++] = msa->sas[i].spi;
    mcsec_msa_free (msa);
  } else if (g_str_equal (event, "connection-lost")) {
    self->lost = TRUE;
    self->losses++;
    name = "controller-lost";
  } else if (g_str_equal (event, "connected")) {
    if (!self->lost) {
      GST_OBJECT_UNLOCK (self);
      return;
    }
    self->lost = FALSE;
    name = "controller-back";
  } else if (g_str_equal (event, "rejected")) {
    self->rejected++;
    name = "update-rejected";
  }
  GST_OBJECT_UNLOCK (self);

  GST_INFO_OBJECT (self,
                   "membership of %s: %s %s %s (update %" G_GUINT64_FORMAT ")",
                   gst_mcsec_membership_group (m), name, reason, text, seq);
  s = gst_structure_new ("mcsec-membership", "event", G_TYPE_STRING, name,
                         "group", G_TYPE_STRING, gst_mcsec_membership_group (m),
                         "reason", G_TYPE_STRING, reason, "text", G_TYPE_STRING,
                         text, "seq", G_TYPE_UINT64, seq, NULL);
  gst_element_post_message (GST_ELEMENT (self),
                            gst_message_new_element (GST_OBJECT (self), s));
  if (g_str_equal (name, "refused"))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
                       ("The controller refused to let us join group %s: %s",
                        gst_mcsec_membership_group (m), text),
                       ("reason %s", reason));
  else if (g_str_equal (name, "channel") && *reason)
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
                         ("Cannot receive the rekey channel of group %s",
                          gst_mcsec_membership_group (m)),
                         ("%s", text));
  else if (g_str_equal (name, "evicted"))
    GST_ELEMENT_WARNING (
        self, RESOURCE, NOT_AUTHORIZED,
        ("Evicted from group %s: %s", gst_mcsec_membership_group (m), text),
        ("reason %s", reason));
}

/* Hand the membership to every element of the pipeline: the context
 * message (bins keep it for later NEED_CONTEXT) and, for elements already
 * past their own request, straight to the top-level bin. */
static void
share_membership (GstMcsecKeysrc *self)
{
  GstContext *ctx = gst_mcsec_membership_context_new (self->membership);
  GstObject *top = gst_object_ref (GST_OBJECT (self)), *parent;

  while ((parent = gst_object_get_parent (top)) != NULL) {
    gst_object_unref (top);
    top = parent;
  }
  gst_element_post_message (
      GST_ELEMENT (self),
      gst_message_new_have_context (GST_OBJECT (self), gst_context_ref (ctx)));
  if (top != GST_OBJECT (self))
    gst_element_set_context (GST_ELEMENT (top), ctx);
  gst_object_unref (top);
  gst_context_unref (ctx);
}

static gboolean
start_membership (GstMcsecKeysrc *self)
{
  mcsec_client_config_t cfg = {0};
  GError *err = NULL;
  gchar *error = NULL;
  EVP_PKEY *sam_key = NULL;
  GstMcsecMembership *m = NULL;
  const gchar *missing = NULL;

  GST_OBJECT_LOCK (self);
  if (self->controller == NULL)
    missing = "controller";
  else if (self->group == NULL)
    missing = "group";
  else if (self->certificate == NULL)
    missing = "certificate";
  else if (self->private_key == NULL)
    missing = "private-key";
  else if (self->ca == NULL)
    missing = "ca";
  else if (mcsec_mike_role_has_sender_ids (self->role) &&
           self->signing_key_file == NULL)
    missing = "signing-key-file";
  if (missing) {
    GST_OBJECT_UNLOCK (self);
    gst_mcsec_post_settings_error (
        GST_ELEMENT (self),
        g_strdup_printf ("mcseckeysrc needs the property %s%s", missing,
                         g_str_equal (missing, "signing-key-file")
                             ? " (a sender, or a feedback member, signs its "
                               "packets: source authentication key, PEM)"
                             : ""));
    return FALSE;
  }
  if (mcsec_mike_role_has_sender_ids (self->role)) {
    sam_key = gst_mcsec_load_private_key (self->signing_key_file, &err);
    if (sam_key == NULL) {
      GST_OBJECT_UNLOCK (self);
      gst_mcsec_post_settings_error (
          GST_ELEMENT (self),
          g_strdup_printf ("signing-key-file: %s", err->message));
      g_error_free (err);
      return FALSE;
    }
  }
  cfg.controller = self->controller;
  cfg.controller_name = self->controller_name;
  cfg.certificate = self->certificate;
  cfg.private_key = self->private_key;
  cfg.ca = self->ca;
  cfg.rekey_interface = self->rekey_interface;
  cfg.member.group = self->group;
  cfg.member.role = self->role;
  cfg.member.sam_key = sam_key;
  cfg.member.sender_count =
      mcsec_mike_role_has_sender_ids (self->role) ? self->sender_ids : 0;
  m = gst_mcsec_membership_new (&cfg, cfg.member.sender_count, &error);
  GST_OBJECT_UNLOCK (self);
  EVP_PKEY_free (sam_key);
  if (m == NULL) {
    gst_mcsec_post_settings_error (GST_ELEMENT (self), error);
    return FALSE;
  }
  self->membership = m;
  self->lost = FALSE;
  self->n_spis = 0;
  self->event_id =
      g_signal_connect (m, "member-event", G_CALLBACK (on_member_event), self);
  share_membership (self);
  if (!gst_mcsec_membership_start (m)) {
    gst_mcsec_post_settings_error (
        GST_ELEMENT (self), g_strdup ("cannot start the membership thread"));
    return FALSE;
  }
  return TRUE;
}

static void
stop_membership (GstMcsecKeysrc *self)
{
  if (self->membership == NULL)
    return;
  gst_mcsec_membership_stop (self->membership); /* says LEAVE */
  g_signal_handler_disconnect (self->membership, self->event_id);
  gst_clear_object (&self->membership);
}

static GstStateChangeReturn
gst_mcsec_keysrc_change_state (GstElement *element, GstStateChange transition)
{
  GstMcsecKeysrc *self = GST_MCSEC_KEYSRC (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY &&
      !start_membership (self)) {
    stop_membership (self);
    return GST_STATE_CHANGE_FAILURE;
  }
  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL)
    stop_membership (self);
  return ret;
}

static void
set_string (gchar **field, const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
gst_mcsec_keysrc_set_property (GObject *object, guint prop_id,
                               const GValue *value, GParamSpec *pspec)
{
  GstMcsecKeysrc *self = GST_MCSEC_KEYSRC (object);

  GST_OBJECT_LOCK (self);
  if (!gst_mcsec_property_mutable (GST_ELEMENT (self), pspec)) {
    GST_OBJECT_UNLOCK (self);
    return;
  }
  switch (prop_id) {
  case PROP_CONTROLLER:
    set_string (&self->controller, value);
    break;
  case PROP_CONTROLLER_NAME:
    set_string (&self->controller_name, value);
    break;
  case PROP_REKEY_INTERFACE:
    set_string (&self->rekey_interface, value);
    break;
  case PROP_GROUP:
    set_string (&self->group, value);
    break;
  case PROP_CERTIFICATE:
    set_string (&self->certificate, value);
    break;
  case PROP_PRIVATE_KEY:
    set_string (&self->private_key, value);
    break;
  case PROP_CA:
    set_string (&self->ca, value);
    break;
  case PROP_SIGNING_KEY_FILE:
    set_string (&self->signing_key_file, value);
    break;
  case PROP_ROLE:
    self->role = g_value_get_enum (value);
    break;
  case PROP_SENDERS:
    GST_WARNING_OBJECT (self, "property 'senders' is deprecated: it is "
                              "'sender-ids' (a count; a controller's senders "
                              "are identities)");
    /* fall through */
  case PROP_SENDER_IDS:
    self->sender_ids = g_value_get_uint (value);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static GstStructure *
make_stats (GstMcsecKeysrc *self)
{
  GstMcsecMembership *m;
  mcsec_msa_t *msa = NULL;
  GstStructure *s;
  GValue spis = G_VALUE_INIT, ids = G_VALUE_INIT;

  GST_OBJECT_LOCK (self);
  m = self->membership ? gst_object_ref (self->membership) : NULL;
  s = gst_structure_new (
      "application/x-mcsec-membership-stats", "group", G_TYPE_STRING,
      self->group, "updates", G_TYPE_UINT64, self->updates, "rekeys",
      G_TYPE_UINT64, self->rekeys, "rejected-updates", G_TYPE_UINT64,
      self->rejected, "controller-losses", G_TYPE_UINT64, self->losses, NULL);
  GST_OBJECT_UNLOCK (self);
  gst_structure_set (
      s, "state", G_TYPE_STRING,
      m ? mcsec_member_state_name (gst_mcsec_membership_state (m)) : "stopped",
      NULL);
  if (m) {
    mcsec_member_channel_stats_t cs;
    gst_mcsec_membership_channel_stats (m, &cs);
    gst_structure_set (
        s, "channel-rekeys", G_TYPE_UINT64, cs.rekeys, "channel-repairs",
        G_TYPE_UINT64, cs.repairs, "channel-resyncs", G_TYPE_UINT64, cs.resyncs,
        "channel-datagrams", G_TYPE_UINT64, cs.datagrams, "channel-heartbeats",
        G_TYPE_UINT64, cs.heartbeats, "channel-dropped", G_TYPE_UINT64,
        cs.bad_signature + cs.malformed + cs.too_far, NULL);
    msa = gst_mcsec_membership_get_msa (m);
  }
  /* what the member holds, never the keys themselves */
  g_value_init (&spis, GST_TYPE_ARRAY);
  g_value_init (&ids, GST_TYPE_ARRAY);
  for (gsize i = 0; msa && i < msa->n_sas; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_UINT);
    g_value_set_uint (&v, msa->sas[i].spi);
    gst_value_array_append_and_take_value (&spis, &v);
  }
  for (gsize i = 0; msa && i < msa->n_sender_ids; i++) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_UINT);
    g_value_set_uint (&v, msa->sender_ids[i]);
    gst_value_array_append_and_take_value (&ids, &v);
  }
  gst_structure_take_value (s, "spis", &spis);
  gst_structure_take_value (s, "sender-ids", &ids);
  gst_structure_set (s, "identity", G_TYPE_STRING, msa ? msa->identity : "",
                     "senders-known", G_TYPE_UINT,
                     msa ? (guint)msa->n_senders : 0u, NULL);
  mcsec_msa_free (msa);
  if (m)
    gst_object_unref (m);
  return s;
}

static void
gst_mcsec_keysrc_get_property (GObject *object, guint prop_id, GValue *value,
                               GParamSpec *pspec)
{
  GstMcsecKeysrc *self = GST_MCSEC_KEYSRC (object);

  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (self));
    return;
  }
  if (prop_id == PROP_STATE) {
    GstMcsecMembership *m;
    GST_OBJECT_LOCK (self);
    m = self->membership ? gst_object_ref (self->membership) : NULL;
    GST_OBJECT_UNLOCK (self);
    g_value_set_string (
        value, m ? mcsec_member_state_name (gst_mcsec_membership_state (m))
                 : "stopped");
    if (m)
      gst_object_unref (m);
    return;
  }
  GST_OBJECT_LOCK (self);
  switch (prop_id) {
  case PROP_CONTROLLER:
    g_value_set_string (value, self->controller);
    break;
  case PROP_CONTROLLER_NAME:
    g_value_set_string (value, self->controller_name);
    break;
  case PROP_REKEY_INTERFACE:
    g_value_set_string (value, self->rekey_interface);
    break;
  case PROP_GROUP:
    g_value_set_string (value, self->group);
    break;
  case PROP_CERTIFICATE:
    g_value_set_string (value, self->certificate);
    break;
  case PROP_PRIVATE_KEY:
    g_value_set_string (value, self->private_key);
    break;
  case PROP_CA:
    g_value_set_string (value, self->ca);
    break;
  case PROP_SIGNING_KEY_FILE:
    g_value_set_string (value, self->signing_key_file);
    break;
  case PROP_ROLE:
    g_value_set_enum (value, self->role);
    break;
  case PROP_SENDER_IDS:
  case PROP_SENDERS:
    g_value_set_uint (value, self->sender_ids);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_mcsec_keysrc_finalize (GObject *object)
{
  GstMcsecKeysrc *self = GST_MCSEC_KEYSRC (object);

  stop_membership (self);
  g_free (self->controller);
  g_free (self->controller_name);
  g_free (self->rekey_interface);
  g_free (self->group);
  g_free (self->certificate);
  g_free (self->private_key);
  g_free (self->ca);
  g_free (self->signing_key_file);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_mcsec_keysrc_class_init (GstMcsecKeysrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

  gobject_class->set_property = gst_mcsec_keysrc_set_property;
  gobject_class->get_property = gst_mcsec_keysrc_get_property;
  gobject_class->finalize = gst_mcsec_keysrc_finalize;
  element_class->change_state = gst_mcsec_keysrc_change_state;

  g_object_class_install_property (
      gobject_class, PROP_CONTROLLER,
      g_param_spec_string (
          "controller", "Controller",
          "The group controller, HOST:PORT, or a cluster's controllers as a "
          "comma-separated list HOST:PORT,HOST:PORT,... (tried in turn)",
          NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_CONTROLLER_NAME,
      g_param_spec_string (
          "controller-name", "Controller name",
          "The name (DNS or IP) the controller's certificate must carry, "
          "every controller's of a list (default: the host of each)",
          NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_GROUP,
      g_param_spec_string ("group", "Group", "The group to join", NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_CERTIFICATE,
      g_param_spec_string ("certificate", "Certificate",
                           "PEM file: this member's X.509 certificate (its "
                           "common name is the member's identity)",
                           NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_PRIVATE_KEY,
      g_param_spec_string ("private-key", "Private key",
                           "PEM file: the certificate's private key", NULL,
                           rw));
  g_object_class_install_property (
      gobject_class, PROP_CA,
      g_param_spec_string ("ca", "CA",
                           "PEM file: the CA that signed the controller's "
                           "certificate",
                           NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_ROLE,
      g_param_spec_enum ("role", "Role", "What this member asks to do",
                         GST_TYPE_MCSEC_ROLE, GST_MCSEC_ROLE_RECEIVER, rw));
  g_object_class_install_property (
      gobject_class, PROP_SIGNING_KEY_FILE,
      g_param_spec_string (
          "signing-key-file", "Signing key file",
          "Senders and feedback members: PEM Ed25519 or ECDSA P-256 private "
          "key for source authentication; its public key is registered with "
          "the controller under this member's identity",
          NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_SENDER_IDS,
      g_param_spec_uint ("sender-ids", "Sender-IDs",
                         "Senders and feedback members: how many Sender-IDs "
                         "to ask for, one per mcsecenc that sends under this "
                         "membership (mcsecrtpenc has one per stream, RTP "
                         "and RTCP of each session)",
                         1, MCSEC_MIKE_MAX_SENDER_IDS, 2, rw));
  /* its older name (a controller's `senders` lists identities) */
  g_object_class_install_property (
      gobject_class, PROP_SENDERS,
      g_param_spec_uint (
          "senders", "Senders", "Deprecated: the older name of sender-ids", 1,
          MCSEC_MIKE_MAX_SENDER_IDS, 2, rw | G_PARAM_DEPRECATED));
  g_object_class_install_property (
      gobject_class, PROP_REKEY_INTERFACE,
      g_param_spec_string (
          "rekey-interface", "Rekey interface",
          "Groups with a rekey channel: the network interface to receive it "
          "on (a name such as eth0; default: the kernel's choice)",
          NULL, rw));
  g_object_class_install_property (
      gobject_class, PROP_STATE,
      g_param_spec_string ("state", "State",
                           "idle, joining, joined, disconnected, refused, "
                           "evicted or stopped",
                           NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (
      gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
                          "Membership state, SPIs and Sender-IDs held (never "
                          "keys), updates, rekeys, rejected updates",
                          GST_TYPE_STRUCTURE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (
      element_class, "mcsec key source", "Source/Network",
      "Joins an mcsec group at its controller and feeds its keys to mcsecenc "
      "and mcsecdec",
      "The mcsec authors");
  gst_element_class_add_static_metadata (element_class,
                                         GST_ELEMENT_METADATA_DOC_URI,
                                         GST_MCSEC_DOC_URI ("mcseckeysrc"));
}

static void
gst_mcsec_keysrc_init (GstMcsecKeysrc *self)
{
  self->role = GST_MCSEC_ROLE_RECEIVER;
  self->sender_ids = 2;
}
