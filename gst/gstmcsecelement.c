/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "gstmcsecelement.h"

GST_DEBUG_CATEGORY (gst_mcsec_debug);

GType
gst_mcsec_cipher_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {MCSEC_SUITE_AES_128_GCM, "AES-128-GCM (RFC 4106)", "aes-128-gcm"},
      {MCSEC_SUITE_AES_256_GCM, "AES-256-GCM (RFC 4106)", "aes-256-gcm"},
      {MCSEC_SUITE_CHACHA20_POLY1305, "ChaCha20-Poly1305 (RFC 7634)",
       "chacha20-poly1305"},
      {MCSEC_SUITE_AES_128_GMAC, "AES-128-GMAC, authentication only (RFC 4543)",
       "aes-128-gmac"},
      {MCSEC_SUITE_AES_256_GMAC, "AES-256-GMAC, authentication only (RFC 4543)",
       "aes-256-gmac"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecCipher", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_mcsec_sam_scheme_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {MCSEC_SAM_PER_PACKET, "One signature per packet", "per-packet"},
      {MCSEC_SAM_BLOCK, "One signature per block, erasure-coded", "block"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecSamScheme", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_mcsec_sam_policy_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_MCSEC_SAM_OFF, "Do not check sources (strip source data)", "off"},
      {GST_MCSEC_SAM_OPTIONAL, "Pass every datagram, mark the verified ones",
       "optional"},
      {GST_MCSEC_SAM_REQUIRED,
       "Hold datagrams until their source verifies; drop the others",
       "required"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecSamPolicy", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static EVP_PKEY *
load_key (const gchar *path, gboolean private_key, GError **error)
{
  BIO *bio = BIO_new_file (path, "r");
  EVP_PKEY *key = NULL;

  if (bio == NULL) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: cannot open %s",
                 private_key ? "signing-key-file" : "sender-keys", path);
    return NULL;
  }
  key = private_key ? PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL)
                    : PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
  BIO_free (bio);
  if (key == NULL)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                 "%s: %s holds no PEM %s key",
                 private_key ? "signing-key-file" : "sender-keys", path,
                 private_key ? "private" : "public");
  return key;
}

EVP_PKEY *
gst_mcsec_load_private_key (const gchar *path, GError **error)
{
  return load_key (path, TRUE, error);
}

EVP_PKEY *
gst_mcsec_load_public_key (const gchar *path, GError **error)
{
  return load_key (path, FALSE, error);
}

void
gst_mcsec_element_init (GstPlugin *plugin)
{
  static gsize done = 0;

  (void)plugin;
  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (gst_mcsec_debug, "mcsec", 0, "mcsec elements");
    gst_type_mark_as_plugin_api (GST_TYPE_MCSEC_CIPHER, 0);
    gst_type_mark_as_plugin_api (GST_TYPE_MCSEC_SAM_SCHEME, 0);
    gst_type_mark_as_plugin_api (GST_TYPE_MCSEC_SAM_POLICY, 0);
    {
      static const gchar *tags[] = {NULL};
      gst_meta_register_custom (GST_MCSEC_SOURCE_META, tags, NULL, NULL, NULL);
    }
    g_once_init_leave (&done, 1);
  }
}

void
gst_mcsec_key_clear (GstMcsecKey *key)
{
  OPENSSL_cleanse (key->bytes, sizeof (key->bytes));
  key->len = 0;
}

gboolean
gst_mcsec_key_set_buffer (GstMcsecKey *key, GstBuffer *buf)
{
  gst_mcsec_key_clear (key);
  if (buf == NULL)
    return TRUE;
  if (gst_buffer_get_size (buf) > sizeof (key->bytes))
    return FALSE;
  key->len = gst_buffer_extract (buf, 0, key->bytes, sizeof (key->bytes));
  return TRUE;
}

gboolean
gst_mcsec_key_load_file (GstMcsecKey *key, const gchar *path, GError **error)
{
  gchar *text = NULL;
  gsize len = 0, n = 0;
  gboolean ok = FALSE;

  gst_mcsec_key_clear (key);
  if (!g_file_get_contents (path, &text, &len, error)) {
    g_prefix_error (error, "key-file: ");
    return FALSE;
  }
  for (gsize i = 0; i < len; i++) {
    int hi, lo;
    if (g_ascii_isspace (text[i]))
      continue;
    if (i + 1 >= len || (hi = g_ascii_xdigit_value (text[i])) < 0 ||
        (lo = g_ascii_xdigit_value (text[i + 1])) < 0) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "key-file %s: not hexadecimal key material", path);
      goto out;
    }
    if (n >= sizeof (key->bytes)) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "key-file %s: longer than any key material (%d bytes)", path,
                   MCSEC_MAX_KEY_MATERIAL_LEN);
      goto out;
    }
    key->bytes[n++] = (guint8)(hi << 4 | lo);
    i++;
  }
  key->len = n;
  ok = TRUE;

out:
  if (!ok)
    gst_mcsec_key_clear (key);
  OPENSSL_cleanse (text, len);
  g_free (text);
  return ok;
}

mcsec_sa_t *
gst_mcsec_make_sa (guint32 spi, mcsec_suite_t suite, const GstMcsecKey *key,
                   guint sender_id_bits, guint replay_window, guint64 soft,
                   guint64 hard, gchar **error)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;
  mcsec_status_t st;

  cfg.spi = spi;
  cfg.suite = suite;
  cfg.key = key->bytes;
  cfg.key_len = key->len;
  cfg.sender_id_bits = (uint8_t)sender_id_bits;
  cfg.replay_window = replay_window;
  cfg.soft_packets = soft;
  cfg.hard_packets = hard;
  if (key->len == 0) {
    *error = g_strdup ("No key: set the 'key' or 'key-file' property.");
    return NULL;
  }
  st = mcsec_sa_new (&cfg, &sa);
  if (st) {
    *error = g_strdup_printf ("Invalid SA settings (spi 0x%08x, cipher %s, "
                              "key of %u bytes): %s.",
                              spi, GST_STR_NULL (mcsec_suite_name (suite)),
                              (guint)key->len, mcsec_status_message (st));
    return NULL;
  }
  return sa;
}

void
gst_mcsec_post_settings_error (GstElement *element, gchar *text)
{
  GST_ELEMENT_ERROR (element, LIBRARY, SETTINGS, ("%s", text), (NULL));
  g_free (text);
}

GstBufferPool *
gst_mcsec_pool_new (void)
{
  GstBufferPool *pool = gst_buffer_pool_new ();
  GstStructure *config = gst_buffer_pool_get_config (pool);

  gst_buffer_pool_config_set_params (config, NULL, GST_MCSEC_POOL_BUFFER_SIZE,
                                     16, 0);
  if (!gst_buffer_pool_set_config (pool, config) ||
      !gst_buffer_pool_set_active (pool, TRUE)) {
    gst_object_unref (pool);
    return NULL;
  }
  return pool;
}

void
gst_mcsec_pool_free (GstBufferPool *pool)
{
  if (pool == NULL)
    return;
  gst_buffer_pool_set_active (pool, FALSE);
  gst_object_unref (pool);
}

GstBuffer *
gst_mcsec_buffer_new (GstBufferPool *pool, gsize size)
{
  GstBuffer *buf = NULL;

  if (pool && size <= GST_MCSEC_POOL_BUFFER_SIZE &&
      gst_buffer_pool_acquire_buffer (pool, &buf, NULL) == GST_FLOW_OK)
    return buf;
  return gst_buffer_new_allocate (NULL, MAX (size, 1), NULL);
}

gboolean
gst_mcsec_property_mutable (GstElement *element, GParamSpec *pspec)
{
  GstState state = GST_STATE (element);

  if ((pspec->flags & GST_PARAM_MUTABLE_READY) && state > GST_STATE_READY) {
    GST_WARNING_OBJECT (element,
                        "property '%s' can only be changed in the "
                        "NULL or READY state: ignored",
                        g_param_spec_get_name (pspec));
    return FALSE;
  }
  return TRUE;
}

gboolean
gst_mcsec_key_set_property (GstMcsecKey *key, gboolean from_file,
                            const GValue *value, gchar **error)
{
  GError *err = NULL;

  if (from_file) {
    const gchar *path = g_value_get_string (value);
    if (path == NULL || gst_mcsec_key_load_file (key, path, &err))
      return TRUE;
    *error = g_strdup (err->message);
    g_error_free (err);
    return FALSE;
  }
  if (gst_mcsec_key_set_buffer (key, g_value_get_boxed (value)))
    return TRUE;
  *error = g_strdup_printf ("key: longer than any key material (%d bytes)",
                            MCSEC_MAX_KEY_MATERIAL_LEN);
  return FALSE;
}
