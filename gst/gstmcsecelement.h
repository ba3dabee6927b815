/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What mcsecenc and mcsecdec share: the cipher enum, key loading, one-time
 * initialisation.
 */
#ifndef GST_MCSEC_ELEMENT_H
#define GST_MCSEC_ELEMENT_H

#include <gst/gst.h>
#include <mcsec/mcsec.h>

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (gst_mcsec_debug);

#define GST_TYPE_MCSEC_CIPHER (gst_mcsec_cipher_get_type ())
GType gst_mcsec_cipher_get_type (void);

#define GST_TYPE_MCSEC_SAM_SCHEME (gst_mcsec_sam_scheme_get_type ())
GType gst_mcsec_sam_scheme_get_type (void);

typedef enum {
  GST_MCSEC_SAM_OFF = 0,      /* source data, if any, is stripped unchecked */
  GST_MCSEC_SAM_OPTIONAL = 1, /* pass everything, mark what verified */
  GST_MCSEC_SAM_REQUIRED = 2, /* hold until verified; drop the rest */
} GstMcsecSamPolicy;

#define GST_TYPE_MCSEC_SAM_POLICY (gst_mcsec_sam_policy_get_type ())
GType gst_mcsec_sam_policy_get_type (void);

/* The custom meta mcsecdec puts on datagrams in the optional and required
 * policies: a structure with sender-id (uint) and sam (string: "verified",
 * "pending", "unverified", "failed", "unverifiable"). */
#define GST_MCSEC_SOURCE_META "GstMcsecSourceMeta"

/* PEM keys for source authentication; errors name the file. */
EVP_PKEY *gst_mcsec_load_private_key (const gchar *path, GError **error);
EVP_PKEY *gst_mcsec_load_public_key (const gchar *path, GError **error);

#define MCSEC_CAPS "application/x-mcsec"
#define GST_MCSEC_DEFAULT_CIPHER MCSEC_SUITE_AES_128_GCM
#define GST_MCSEC_DEFAULT_SPI 0x1000

void gst_mcsec_element_init (GstPlugin *plugin);

/* A private copy of key material held by an element: wiped on free. */
typedef struct {
  guint8 bytes[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize len;
} GstMcsecKey;

void gst_mcsec_key_clear (GstMcsecKey *key);
/* Copy a GstBuffer's bytes (NULL clears).  FALSE when too long. */
gboolean gst_mcsec_key_set_buffer (GstMcsecKey *key, GstBuffer *buf);
/* Read hex key material from a file (whitespace ignored).  On error,
 * `error` names the file and the problem, never a key byte. */
gboolean gst_mcsec_key_load_file (GstMcsecKey *key, const gchar *path,
                                  GError **error);

/* The `key` (a GstBuffer) and `key-file` (a path) properties, with the
 * object lock held.  FALSE when unusable: *error names the property (the
 * caller posts it with gst_mcsec_post_settings_error once unlocked). */
gboolean gst_mcsec_key_set_property (GstMcsecKey *key, gboolean from_file,
                                     const GValue *value, gchar **error);

/* Build an SA; on failure NULL and *error says which setting is wrong
 * (callers post it with GST_ELEMENT_ERROR once they hold no lock). */
mcsec_sa_t *gst_mcsec_make_sa (guint32 spi, mcsec_suite_t suite,
                               const GstMcsecKey *key, guint sender_id_bits,
                               guint replay_window, guint64 soft, guint64 hard,
                               gchar **error);

/* Output buffers of both elements come from a pool of buffers this large;
 * larger packets (rare: jumbo datagrams) get a buffer of their own. */
#define GST_MCSEC_POOL_BUFFER_SIZE 2048

/* An active pool of GST_MCSEC_POOL_BUFFER_SIZE buffers, or NULL. */
GstBufferPool *gst_mcsec_pool_new (void);
/* Deactivate and drop a pool (NULL is fine). */
void gst_mcsec_pool_free (GstBufferPool *pool);
/* A buffer of at least size bytes, from the pool when it fits. */
GstBuffer *gst_mcsec_buffer_new (GstBufferPool *pool, gsize size);

/* TRUE when pspec may be set in the element's current state; otherwise
 * warns (naming the property) and returns FALSE.  Called with the object
 * lock (GST_STATE is read under it). */
gboolean gst_mcsec_property_mutable (GstElement *element, GParamSpec *pspec);

/* Post a LIBRARY/SETTINGS error and free the text (no lock held). */
void gst_mcsec_post_settings_error (GstElement *element, gchar *text);

G_END_DECLS

#endif
