/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
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
gst_mcsec_sa_type_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
      {MCSEC_SA_TYPE_GROUP,
       "mcsec's group SA: Sender-ID || counter in the IV (RFC 6054), a "
       "replay window per sender",
       "group"},
      {MCSEC_SA_TYPE_STANDARD,
       "A standard ESP SA (RFC 4303): opaque IV, one sender, replay on the "
       "sequence number; what the Linux kernel or strongSwan sends",
       "standard"},
      {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstMcsecSaType", values);
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

gchar *
gst_mcsec_key_cipher_mismatch (const GstMcsecKey *key, mcsec_suite_t suite)
{
  if (key->len == 0 || key->file_suite == 0 || key->file_suite == suite)
    return NULL;
  return g_strdup_printf ("key-file '%s' is for %s but cipher=%s",
                          key->file_path,
                          GST_STR_NULL (mcsec_suite_name (key->file_suite)),
                          GST_STR_NULL (mcsec_suite_name (suite)));
}

void
gst_mcsec_key_clear (GstMcsecKey *key)
{
  OPENSSL_cleanse (key->bytes, sizeof (key->bytes));
  key->len = 0;
  key->file_suite = 0;
  key->file_path[0] = '\0';
}

gboolean
gst_mcsec_key_set_buffer (GstMcsecKey *key, GstBuffer *buf)
{
  /* a value that cannot be a key leaves the key in use as it was */
  if (buf != NULL && gst_buffer_get_size (buf) > sizeof (key->bytes))
    return FALSE;
  gst_mcsec_key_clear (key);
  if (buf == NULL)
    return TRUE;
  key->len = gst_buffer_extract (buf, 0, key->bytes, sizeof (key->bytes));
  return TRUE;
}

/* A key-file error: "key-file 'PATH': TEXT". */
static void
key_file_error (GError **error, GQuark domain, gint code, const gchar *path,
                const gchar *text)
{
  g_set_error (error, domain, code, "key-file '%s': %s", path, text);
}

static gint
open_error_code (int err)
{
  switch (err) {
  case ENOENT:
  case ENOTDIR:
    return GST_RESOURCE_ERROR_NOT_FOUND;
  case EACCES:
  case EPERM:
    return GST_RESOURCE_ERROR_NOT_AUTHORIZED;
  default:
    return GST_RESOURCE_ERROR_OPEN_READ;
  }
}

/* Up to GST_MCSEC_KEY_FILE_MAX bytes of path into text; the size, or -1
 * with *error set (the errno text). */
static gssize
read_key_file (const gchar *path, gchar *text, GError **error)
{
  gsize len = 0;
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);

  if (fd < 0) {
    int err = errno;
    key_file_error (error, GST_RESOURCE_ERROR, open_error_code (err), path,
                    g_strerror (err));
    return -1;
  }
  /* one byte more than allowed tells a file that is too long */
  while (len <= GST_MCSEC_KEY_FILE_MAX) {
    gssize n = read (fd, text + len, GST_MCSEC_KEY_FILE_MAX + 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      close (fd);
      key_file_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, path,
                      g_strerror (err));
      return -1;
    }
    if (n == 0)
      break;
    len += (gsize)n;
  }
  close (fd);
  if (len > GST_MCSEC_KEY_FILE_MAX) {
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                 "key-file '%s': not a key file (longer than %d bytes)", path,
                 GST_MCSEC_KEY_FILE_MAX);
    return -1;
  }
  return (gssize)len;
}

/* The cipher of a key file's "cipher=NAME" line (line: its text, without
 * the newline, spaces stripped): 0 when it is no such line, -1 when it is
 * one with a name that is not a cipher. */
static gint
key_file_cipher_line (const gchar *line, gsize len)
{
  gchar name[32];
  gsize i = strlen ("cipher"), n;
  mcsec_suite_t suite;

  if (len < i || memcmp (line, "cipher", i) != 0)
    return 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i >= len || line[i] != '=')
    return 0;
  i++;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  n = len - i;
  if (n == 0 || n >= sizeof (name))
    return -1;
  memcpy (name, line + i, n);
  name[n] = '\0';
  suite = mcsec_suite_from_name (name);
  return suite ? (gint)suite : -1;
}

static gboolean load_key_file (GstMcsecKey *key, const gchar *path,
                               GError **error);

gboolean
gst_mcsec_key_load_file (GstMcsecKey *key, const gchar *path, GError **error)
{
  /* read into a key of its own: a file that cannot be used leaves the key
   * in use as it was (the error says why) */
  GstMcsecKey *fresh = g_new0 (GstMcsecKey, 1);
  gboolean ok = load_key_file (fresh, path, error);

  if (ok) {
    gst_mcsec_key_clear (key);
    *key = *fresh;
  }
  gst_mcsec_key_clear (fresh);
  OPENSSL_cleanse (fresh, sizeof (*fresh));
  g_free (fresh);
  return ok;
}

static gboolean
load_key_file (GstMcsecKey *key, const gchar *path, GError **error)
{
  gchar text[GST_MCSEC_KEY_FILE_MAX + 1];
  gssize len;
  gsize n = 0, start = 0;
  gint suite = 0;
  gboolean ok = FALSE;

  gst_mcsec_key_clear (key);
  len = read_key_file (path, text, error);
  if (len < 0)
    goto out;
  /* line by line: at most one "cipher=NAME" line, before the key
   * material in hexadecimal (whitespace ignored; files without the line,
   * as mcsec-keygen wrote them before, hold the hexadecimal alone) */
  while (start < (gsize)len) {
    gsize end = start, a, b;
    gint c;
    while (end < (gsize)len && text[end] != '\n')
      end++;
    a = start;
    b = end;
    start = end + 1;
    while (a < b && g_ascii_isspace (text[a]))
      a++;
    while (b > a && g_ascii_isspace (text[b - 1]))
      b--;
    if (a == b)
      continue;
    c = key_file_cipher_line (text + a, b - a);
    if (c != 0 && (suite != 0 || n != 0)) {
      key_file_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                      path,
                      "not a key file (one cipher=NAME line, before the key "
                      "material, as mcsec-keygen writes it)");
      goto out;
    }
    if (c < 0) {
      /* the name is not repeated: it could be anything */
      key_file_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                      path,
                      "names an unknown cipher (aes-128-gcm, aes-256-gcm, "
                      "chacha20-poly1305, aes-128-gmac, aes-256-gmac)");
      goto out;
    }
    if (c > 0) {
      suite = c;
      continue;
    }
    for (gsize i = a; i < b; i++) {
      int hi, lo;
      if (g_ascii_isspace (text[i]))
        continue;
      if (i + 1 >= b || (hi = g_ascii_xdigit_value (text[i])) < 0 ||
          (lo = g_ascii_xdigit_value (text[i + 1])) < 0) {
        key_file_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                        path,
                        "not a key file (key material in hexadecimal, as "
                        "mcsec-keygen writes it)");
        goto out;
      }
      if (n >= sizeof (key->bytes)) {
        g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                     "key-file '%s': longer than any key material (%d bytes)",
                     path, MCSEC_MAX_KEY_MATERIAL_LEN);
        goto out;
      }
      key->bytes[n++] = (guint8)(hi << 4 | lo);
      i++;
    }
  }
  if (n == 0) {
    key_file_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS, path,
                    "empty (no key material)");
    goto out;
  }
  if (suite != 0 && n != mcsec_suite_key_material_len (suite)) {
    g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
                 "key-file '%s': %u bytes of key material, but %s takes %u",
                 path, (guint)n, mcsec_suite_name (suite),
                 (guint)mcsec_suite_key_material_len (suite));
    goto out;
  }
  key->len = n;
  if (suite != 0) {
    key->file_suite = (mcsec_suite_t)suite;
    g_strlcpy (key->file_path, path, sizeof (key->file_path));
  }
  ok = TRUE;

out:
  if (!ok)
    gst_mcsec_key_clear (key);
  OPENSSL_cleanse (text, sizeof (text));
  return ok;
}

mcsec_sa_t *
gst_mcsec_make_sa (guint32 spi, mcsec_suite_t suite, const GstMcsecKey *key,
                   guint sender_id_bits, guint replay_window, guint64 soft,
                   guint64 hard, mcsec_sa_type_t type, gboolean esn,
                   gboolean spi_per_sender, gchar **error)
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
  cfg.type = type;
  cfg.esn = esn;
  cfg.spi_per_sender = spi_per_sender;
  if (spi_per_sender &&
      (sender_id_bits > 24 || (spi & ((1u << sender_id_bits) - 1)) != 0)) {
    *error = g_strdup_printf (
        "spi-per-sender: spi 0x%08x must be the base of a block of "
        "2^sender-id-bits SPIs (its low %u bits zero, sender-id-bits at "
        "most 24)",
        spi, sender_id_bits);
    return NULL;
  }
  if (esn && type != MCSEC_SA_TYPE_STANDARD) {
    *error = g_strdup (GST_MCSEC_ESN_NEEDS_STANDARD);
    return NULL;
  }
  if (key->len == 0) {
    *error = g_strdup ("No key: set the 'key' or 'key-file' property.");
    return NULL;
  }
  if ((*error = gst_mcsec_key_cipher_mismatch (key, suite)) != NULL)
    return NULL;
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

/* The elements' pool: GstBufferPool with a cheaper reset.  The default
 * reset resizes through gst_buffer_resize() and walks the metadata even
 * when a buffer has none; a pool buffer here has one memory, which only
 * its size changed, so restoring it is one gst_memory_resize(). */
typedef struct {
  GstBufferPool parent;
} GstMcsecPool;
typedef struct {
  GstBufferPoolClass parent_class;
} GstMcsecPoolClass;

static GType gst_mcsec_pool_get_type (void);
G_DEFINE_TYPE (GstMcsecPool, gst_mcsec_pool, GST_TYPE_BUFFER_POOL)

static gboolean
remove_unpooled_meta (GstBuffer *buf, GstMeta **meta, gpointer data)
{
  (void)buf;
  (void)data;
  if (!GST_META_FLAG_IS_SET (*meta, GST_META_FLAG_POOLED)) {
    GST_META_FLAG_UNSET (*meta, GST_META_FLAG_LOCKED);
    *meta = NULL;
  }
  return TRUE;
}

static void
gst_mcsec_pool_reset_buffer (GstBufferPool *pool, GstBuffer *buf)
{
  GstMemory *mem;
  gpointer state = NULL;

  if (G_UNLIKELY (gst_buffer_n_memory (buf) != 1 ||
                  GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_TAG_MEMORY))) {
    /* not ours any more: the default reset, and the pool drops it */
    GST_BUFFER_POOL_CLASS (gst_mcsec_pool_parent_class)
        ->reset_buffer (pool, buf);
    return;
  }
  GST_BUFFER_FLAGS (buf) = 0;
  GST_BUFFER_PTS (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buf) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_OFFSET (buf) = GST_BUFFER_OFFSET_NONE;
  GST_BUFFER_OFFSET_END (buf) = GST_BUFFER_OFFSET_NONE;
  mem = gst_buffer_peek_memory (buf, 0);
  if (mem->offset != 0 || mem->size != GST_MCSEC_POOL_BUFFER_SIZE) {
    /* what gst_memory_resize() does to a writable memory of the pool
     * (sysmem, no zero-padding flags), without checking twice */
    if (gst_memory_is_writable (mem) &&
        mem->maxsize >= GST_MCSEC_POOL_BUFFER_SIZE) {
      mem->offset = 0;
      mem->size = GST_MCSEC_POOL_BUFFER_SIZE;
    } else {
      GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_TAG_MEMORY); /* dropped */
    }
  }
  if (G_UNLIKELY (gst_buffer_iterate_meta (buf, &state) != NULL))
    gst_buffer_foreach_meta (buf, remove_unpooled_meta, NULL);
}

static void
gst_mcsec_pool_class_init (GstMcsecPoolClass *klass)
{
  GST_BUFFER_POOL_CLASS (klass)->reset_buffer = gst_mcsec_pool_reset_buffer;
}

static void
gst_mcsec_pool_init (GstMcsecPool *pool)
{
  (void)pool;
}

GstBufferPool *
gst_mcsec_pool_new (void)
{
  GstBufferPool *pool = g_object_new (gst_mcsec_pool_get_type (), NULL);
  GstStructure *config;

  gst_object_ref_sink (pool);
  config = gst_buffer_pool_get_config (pool);
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
gst_mcsec_map (GstBuffer *buf, GstMcsecMap *m, GstMapFlags flags)
{
  if (G_LIKELY (gst_buffer_n_memory (buf) == 1)) {
    m->whole = FALSE;
    return gst_memory_map (gst_buffer_peek_memory (buf, 0), &m->info, flags);
  }
  m->whole = TRUE;
  return gst_buffer_map (buf, &m->info, flags);
}

void
gst_mcsec_unmap (GstBuffer *buf, GstMcsecMap *m)
{
  if (m->whole)
    gst_buffer_unmap (buf, &m->info);
  else
    gst_memory_unmap (m->info.memory, &m->info);
}

void
gst_mcsec_buffer_trim (GstBuffer *buf, gsize offset, gsize size)
{
  GstMemory *mem;

  if (G_LIKELY (gst_buffer_n_memory (buf) == 1) &&
      gst_memory_is_writable (mem = gst_buffer_peek_memory (buf, 0))) {
    gst_memory_resize (mem, (gssize)offset, size);
    return;
  }
  gst_buffer_resize (buf, (gssize)offset, (gssize)size);
}

void
gst_mcsec_copy_stamps (GstBuffer *dest, const GstBuffer *src)
{
  /* what gst_buffer_copy_into (FLAGS | TIMESTAMPS) copies for a whole
   * buffer, without its generic bookkeeping */
  GST_MINI_OBJECT_FLAGS (dest) =
      (GST_MINI_OBJECT_FLAGS (src) & ~GST_BUFFER_FLAG_TAG_MEMORY) |
      (GST_MINI_OBJECT_FLAGS (dest) & GST_BUFFER_FLAG_TAG_MEMORY);
  GST_BUFFER_PTS (dest) = GST_BUFFER_PTS (src);
  GST_BUFFER_DTS (dest) = GST_BUFFER_DTS (src);
  GST_BUFFER_DURATION (dest) = GST_BUFFER_DURATION (src);
  GST_BUFFER_OFFSET (dest) = GST_BUFFER_OFFSET (src);
  GST_BUFFER_OFFSET_END (dest) = GST_BUFFER_OFFSET_END (src);
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
                            const GValue *value, GError **error)
{
  if (from_file) {
    const gchar *path = g_value_get_string (value);
    if (path == NULL) {
      gst_mcsec_key_clear (key);
      return TRUE;
    }
    return gst_mcsec_key_load_file (key, path, error);
  }
  if (gst_mcsec_key_set_buffer (key, g_value_get_boxed (value)))
    return TRUE;
  g_set_error (error, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS,
               "key: longer than any key material (%d bytes)",
               MCSEC_MAX_KEY_MATERIAL_LEN);
  return FALSE;
}

/* Post error (consumed) as an ERROR message of element. */
static void
post_gerror (GstElement *element, GError *error, const gchar *debug)
{
  gst_element_message_full (element, GST_MESSAGE_ERROR, error->domain,
                            error->code, g_strdup (error->message),
                            g_strdup (debug), __FILE__, GST_FUNCTION, __LINE__);
  g_error_free (error);
}

void
gst_mcsec_setting_error_keep (GstElement *element, GError **slot, GError *error)
{
  GstBus *bus;

  GST_OBJECT_LOCK (element);
  g_clear_error (slot);
  *slot = error ? g_error_copy (error) : NULL;
  GST_OBJECT_UNLOCK (element);
  if (error == NULL)
    return;
  GST_WARNING_OBJECT (element, "%s", error->message);
  /* someone may be listening already (an application, a running pipeline) */
  bus = gst_element_get_bus (element);
  if (bus != NULL) {
    post_gerror (element, error,
                 "the property write failed; reported again when the "
                 "element starts, until a valid value replaces it");
    gst_object_unref (bus);
  } else {
    g_error_free (error);
  }
}

gboolean
gst_mcsec_setting_error_check (GstElement *element, GError **slot,
                               const GstMcsecKey *key, mcsec_suite_t cipher)
{
  GError *error;
  gchar *text;

  GST_OBJECT_LOCK (element);
  error = *slot ? g_error_copy (*slot) : NULL;
  /* a key file that names another cipher than the element's */
  text = error ? NULL : gst_mcsec_key_cipher_mismatch (key, cipher);
  GST_OBJECT_UNLOCK (element);
  if (text) {
    gst_mcsec_post_settings_error (element, text);
    return FALSE;
  }
  if (error == NULL)
    return TRUE;
  post_gerror (element, error,
               "a property write failed before the element started; "
               "set a valid value");
  return FALSE;
}

GstClockTime
gst_mcsec_element_now (GstElement *element)
{
  GstClock *clock = GST_ELEMENT_CLOCK (element);

  if (clock != NULL)
    return gst_clock_get_time (clock);
  return (GstClockTime)g_get_monotonic_time () * GST_USECOND;
}

/* ---- bus warnings about dropped packets ---- */

G_STATIC_ASSERT (MCSEC_STATUS_COUNT_ <= 64);

void
gst_mcsec_drop_warnings_init (GstMcsecDropWarnings *w, guint interval_ms)
{
  w->interval = (GstClockTime)interval_ms * GST_MSECOND;
  if (w->interval == 0)
    w->pending = 0;
}

void
gst_mcsec_drop_warnings_restart (GstMcsecDropWarnings *w)
{
  for (guint i = 0; i < MCSEC_STATUS_COUNT_; i++)
    w->last[i] = GST_CLOCK_TIME_NONE;
}

void
gst_mcsec_drop_warnings_collect (GstMcsecDropWarnings *w, GstElement *element,
                                 const guint64 *dropped_by, gboolean all,
                                 GstMcsecDropWarningList *out)
{
  GstClockTime now =
      all ? GST_CLOCK_TIME_NONE : gst_mcsec_element_now (element);
  guint64 due = 0;

  for (guint st = 0; st < MCSEC_STATUS_COUNT_; st++) {
    guint64 bit = G_GUINT64_CONSTANT (1) << st;
    GstMcsecDropWarning *wr = NULL;
    if (!(w->pending & bit))
      continue;
    /* a clock that went back (another pipeline clock) counts as due */
    if (!all && GST_CLOCK_TIME_IS_VALID (w->last[st]) && now >= w->last[st] &&
        now - w->last[st] < w->interval)
      continue;
    due |= bit;
    for (guint i = 0; i < out->n; i++)
      if (out->w[i].reason == (mcsec_status_t)st)
        wr = &out->w[i];
    if (wr == NULL) {
      wr = &out->w[out->n++];
      wr->reason = st;
      wr->count = 0;
    }
    wr->count += dropped_by[st] - w->reported[st];
    wr->total = dropped_by[st];
    wr->has_ids = (w->has_ids & bit) != 0;
    wr->spi = w->spi[st];
    wr->sender_id = w->sender_id[st];
    w->reported[st] = dropped_by[st];
    w->last[st] = all ? GST_CLOCK_TIME_NONE : now;
  }
  w->pending &= ~due;
  w->has_ids &= ~due;
}

void
gst_mcsec_post_drop_warning (GstElement *element, GQuark domain, gint code,
                             const GstMcsecDropWarning *w, const gchar *what,
                             const gchar *hint, guint interval_ms)
{
  const gchar *name = mcsec_status_name (w->reason);
  gchar *text, *debug, *ids = NULL;
  GstStructure *details;

  if (w->count == 0)
    return;
  text = g_strdup_printf ("Dropped %" G_GUINT64_FORMAT " %s%s (dropped-%s: "
                          "%" G_GUINT64_FORMAT " in all): %s. %s.",
                          w->count, what, w->count == 1 ? "" : "s", name,
                          w->total, mcsec_status_message (w->reason), hint);
  if (w->has_ids)
    ids = g_strdup_printf ("; the last one: spi 0x%08x sender-id %u", w->spi,
                           w->sender_id);
  debug =
      g_strdup_printf ("%" G_GUINT64_FORMAT " since the last warning about "
                       "%s, %" G_GUINT64_FORMAT " in all%s; at most one "
                       "warning per reason every %u ms (warning-interval)",
                       w->count, name, w->total, ids ? ids : "", interval_ms);
  details = gst_structure_new (
      "application/x-mcsec-drops", "reason", G_TYPE_STRING, name, "count",
      G_TYPE_UINT64, w->count, "total", G_TYPE_UINT64, w->total, NULL);
  if (w->has_ids)
    gst_structure_set (details, "spi", G_TYPE_UINT, w->spi, "sender-id",
                       G_TYPE_UINT, w->sender_id, NULL);
  g_free (ids);
  gst_element_message_full_with_details (element, GST_MESSAGE_WARNING, domain,
                                         code, text, debug, __FILE__,
                                         GST_FUNCTION, __LINE__, details);
}

/* ---- periodic stats messages ---- */

void
gst_mcsec_post_stats (GstElement *element)
{
  GstStructure *s = NULL;

  g_object_get (element, "stats", &s, NULL);
  if (s != NULL)
    gst_element_post_message (
        element, gst_message_new_element (GST_OBJECT (element), s));
}

/* On the clock's thread: the element is referenced by the clock entry. */
static gboolean
on_stats_tick (GstClock *clock, GstClockTime time, GstClockID id,
               gpointer user_data)
{
  (void)clock;
  (void)time;
  (void)id;
  gst_mcsec_post_stats (GST_ELEMENT (user_data));
  return TRUE;
}

static void
cancel_tick (GstClockID id)
{
  if (id != NULL) {
    gst_clock_id_unschedule (id);
    gst_clock_id_unref (id);
  }
}

/* Schedule the periodic callback if playing with an interval (no lock). */
static void
schedule_ticks (GstElement *element, GstMcsecStatsTimer *t)
{
  GstClock *clock;
  GstClockTime interval;
  GstClockID id, old = NULL;

  GST_OBJECT_LOCK (element);
  interval = (GstClockTime)t->interval_ms * GST_MSECOND;
  clock = GST_ELEMENT_CLOCK (element)
              ? gst_object_ref (GST_ELEMENT_CLOCK (element))
              : NULL;
  if (!t->playing || interval == 0) {
    GST_OBJECT_UNLOCK (element);
    if (clock)
      gst_object_unref (clock);
    return;
  }
  GST_OBJECT_UNLOCK (element);
  if (clock == NULL)
    clock = gst_system_clock_obtain ();
  id = gst_clock_new_periodic_id (clock, gst_clock_get_time (clock) + interval,
                                  interval);
  gst_object_unref (clock);
  if (gst_clock_id_wait_async (id, on_stats_tick, gst_object_ref (element),
                               gst_object_unref) != GST_CLOCK_OK) {
    GST_WARNING_OBJECT (element, "cannot schedule stats messages");
    gst_clock_id_unref (id);
    return;
  }
  GST_OBJECT_LOCK (element);
  if (t->playing && t->id == NULL) {
    t->id = id;
    id = NULL;
  } else {
    /* stopped or rescheduled meanwhile */
    old = id;
  }
  GST_OBJECT_UNLOCK (element);
  cancel_tick (old);
}

void
gst_mcsec_stats_timer_start (GstElement *element, GstMcsecStatsTimer *t)
{
  GST_OBJECT_LOCK (element);
  t->playing = TRUE;
  GST_OBJECT_UNLOCK (element);
  schedule_ticks (element, t);
}

void
gst_mcsec_stats_timer_stop (GstElement *element, GstMcsecStatsTimer *t)
{
  GstClockID id;

  GST_OBJECT_LOCK (element);
  t->playing = FALSE;
  id = t->id;
  t->id = NULL;
  GST_OBJECT_UNLOCK (element);
  cancel_tick (id);
}

void
gst_mcsec_stats_timer_reset (GstElement *element, GstMcsecStatsTimer *t)
{
  GstClockID id;

  GST_OBJECT_LOCK (element);
  id = t->id;
  t->id = NULL;
  GST_OBJECT_UNLOCK (element);
  cancel_tick (id);
  schedule_ticks (element, t);
}

gboolean
gst_mcsec_is_rtcp (const guint8 *data, gsize len)
{
  gsize off = 0;

  if (len < 4)
    return FALSE;
  while (off < len) {
    gsize plen;
    if (len - off < 4 || (data[off] >> 6) != 2 || data[off + 1] < 192 ||
        data[off + 1] > 223)
      return FALSE;
    plen = 4 * ((gsize)((data[off + 2] << 8) | data[off + 3]) + 1);
    if (plen > len - off)
      return FALSE;
    off += plen;
  }
  return TRUE;
}

/* ---- mirrored properties (mcsecrtpenc, mcsecrtpdec) ---- */

/* A property like p, for another class.  The strings are the child
 * class's, which lives as long as the plugin. */
static GParamSpec *
mirror_pspec (GParamSpec *p)
{
  const gchar *name = g_param_spec_get_name (p);
  const gchar *nick = g_param_spec_get_nick (p);
  const gchar *blurb = g_param_spec_get_blurb (p);
  GParamFlags flags =
      (p->flags & (G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY |
                   GST_PARAM_MUTABLE_PAUSED | GST_PARAM_MUTABLE_PLAYING)) |
      G_PARAM_STATIC_STRINGS;

  if (G_IS_PARAM_SPEC_UINT (p)) {
    GParamSpecUInt *u = G_PARAM_SPEC_UINT (p);
    return g_param_spec_uint (name, nick, blurb, u->minimum, u->maximum,
                              u->default_value, flags);
  }
  if (G_IS_PARAM_SPEC_UINT64 (p)) {
    GParamSpecUInt64 *u = G_PARAM_SPEC_UINT64 (p);
    return g_param_spec_uint64 (name, nick, blurb, u->minimum, u->maximum,
                                u->default_value, flags);
  }
  if (G_IS_PARAM_SPEC_ENUM (p))
    return g_param_spec_enum (name, nick, blurb, p->value_type,
                              G_PARAM_SPEC_ENUM (p)->default_value, flags);
  if (G_IS_PARAM_SPEC_STRING (p))
    return g_param_spec_string (name, nick, blurb,
                                G_PARAM_SPEC_STRING (p)->default_value, flags);
  if (G_IS_PARAM_SPEC_BOXED (p))
    return g_param_spec_boxed (name, nick, blurb, p->value_type, flags);
  g_assert_not_reached ();
  return NULL;
}

void
gst_mcsec_mirror_install (GObjectClass *klass, GType child_type,
                          const gchar *const *names, guint first_id)
{
  GObjectClass *child = g_type_class_ref (child_type);

  for (guint i = 0; names[i]; i++) {
    GParamSpec *p = g_object_class_find_property (child, names[i]);
    g_assert (p != NULL);
    g_object_class_install_property (klass, first_id + i, mirror_pspec (p));
  }
  /* kept: the copies use its strings */
}

void
gst_mcsec_mirror_init (GstMcsecMirror *m, const gchar *const *names,
                       guint first_id)
{
  m->names = names;
  m->first_id = first_id;
  m->values = g_new0 (GValue, g_strv_length ((gchar **)names));
  m->key_set = FALSE;
  m->key.len = 0;
}

void
gst_mcsec_mirror_clear (GstMcsecMirror *m)
{
  for (guint i = 0; m->values && m->names[i]; i++)
    if (G_IS_VALUE (&m->values[i]))
      g_value_unset (&m->values[i]);
  g_clear_pointer (&m->values, g_free);
  gst_mcsec_key_clear (&m->key);
  m->key_set = FALSE;
}

static guint
mirror_index (GstMcsecMirror *m, guint prop_id)
{
  guint n = g_strv_length ((gchar **)m->names);
  return prop_id >= m->first_id && prop_id - m->first_id < n
             ? prop_id - m->first_id
             : G_MAXUINT;
}

gboolean
gst_mcsec_mirror_set (GstMcsecMirror *m, guint prop_id, const GValue *value,
                      guint *apply)
{
  guint i = mirror_index (m, prop_id);

  if (i == G_MAXUINT)
    return FALSE;
  *apply = i;
  if (g_str_equal (m->names[i], "key")) {
    /* our own copy (wiped), not a reference to the caller's buffer */
    GstBuffer *buf = g_value_get_boxed (value);
    m->key_set = TRUE;
    if (buf == NULL || !gst_mcsec_key_set_buffer (&m->key, buf))
      gst_mcsec_key_clear (&m->key);
    return TRUE;
  }
  if (G_IS_VALUE (&m->values[i]))
    g_value_unset (&m->values[i]);
  g_value_init (&m->values[i], G_VALUE_TYPE (value));
  g_value_copy (value, &m->values[i]);
  return TRUE;
}

gboolean
gst_mcsec_mirror_set_sa (GstMcsecMirror *m, guint spi, const gchar *cipher,
                         GstBuffer *key)
{
  mcsec_suite_t suite = mcsec_suite_from_name (cipher);

  if (suite == 0 || key == NULL || !gst_mcsec_key_set_buffer (&m->key, key))
    return FALSE;
  m->key_set = TRUE;
  for (guint i = 0; m->names[i]; i++) {
    GValue *v = &m->values[i];
    if (g_str_equal (m->names[i], "key-file")) {
      /* applied after `key`: it would bring the old key back */
      if (G_IS_VALUE (v))
        g_value_unset (v);
    } else if (g_str_equal (m->names[i], "spi")) {
      if (G_IS_VALUE (v))
        g_value_unset (v);
      g_value_init (v, G_TYPE_UINT);
      g_value_set_uint (v, spi);
    } else if (g_str_equal (m->names[i], "cipher")) {
      if (G_IS_VALUE (v))
        g_value_unset (v);
      g_value_init (v, GST_TYPE_MCSEC_CIPHER);
      g_value_set_enum (v, suite);
    }
  }
  return TRUE;
}

gboolean
gst_mcsec_mirror_get (GstMcsecMirror *m, guint prop_id, GValue *value,
                      GParamSpec *pspec)
{
  guint i = mirror_index (m, prop_id);

  if (i == G_MAXUINT)
    return FALSE;
  if (G_IS_VALUE (&m->values[i]))
    g_value_copy (&m->values[i], value);
  else
    g_param_value_set_default (pspec, value);
  return TRUE;
}

/* Give the child a copy of the key, wiped once the child took its own. */
static void
apply_key (GObject *child, const GstMcsecKey *key)
{
  GstBuffer *buf =
      key->len ? gst_buffer_new_memdup (key->bytes, key->len) : NULL;
  GstMapInfo map;

  g_object_set (child, "key", buf, NULL);
  if (buf == NULL)
    return;
  if (gst_buffer_is_writable (buf) &&
      gst_buffer_map (buf, &map, GST_MAP_WRITE)) {
    OPENSSL_cleanse (map.data, map.size);
    gst_buffer_unmap (buf, &map);
  }
  gst_buffer_unref (buf);
}

void
gst_mcsec_mirror_apply (GstMcsecMirror *m, GstObject *bin, GObject *child,
                        guint index)
{
  for (guint i = 0; m->names[i]; i++) {
    GValue v = G_VALUE_INIT;
    GstMcsecKey key;
    gboolean is_key = g_str_equal (m->names[i], "key"), have;

    if (index != G_MAXUINT && i != index)
      continue;
    GST_OBJECT_LOCK (bin);
    if (is_key) {
      have = m->key_set;
      key = m->key;
    } else {
      have = G_IS_VALUE (&m->values[i]);
      if (have) {
        g_value_init (&v, G_VALUE_TYPE (&m->values[i]));
        g_value_copy (&m->values[i], &v);
      }
    }
    GST_OBJECT_UNLOCK (bin);
    if (!have)
      continue;
    if (is_key) {
      apply_key (child, &key);
      gst_mcsec_key_clear (&key);
    } else {
      g_object_set_property (child, m->names[i], &v);
      g_value_unset (&v);
    }
  }
}

/* ---- ghost pads with the caps rtpbin links ---- */

#define GHOST_CAPS "mcsec-ghost-caps"   /* what a crossing caps event says */
#define GHOST_EVENT "mcsec-ghost-event" /* the pad's own event function */

static gboolean
ghost_caps_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstPadEventFunction func = g_object_get_data (G_OBJECT (pad), GHOST_EVENT);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
    GstCaps *caps = g_object_get_data (G_OBJECT (pad), GHOST_CAPS);
    gst_event_unref (event);
    event = gst_event_new_caps (caps);
  }
  return func (pad, parent, event);
}

static gboolean
ghost_caps_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  GstCaps *templ, *filter, *caps;
  gboolean ok;

  switch (GST_QUERY_TYPE (query)) {
  case GST_QUERY_CAPS:
    templ = gst_pad_get_pad_template_caps (pad);
    gst_query_parse_caps (query, &filter);
    caps = filter ? gst_caps_intersect_full (filter, templ,
                                             GST_CAPS_INTERSECT_FIRST)
                  : gst_caps_ref (templ);
    gst_query_set_caps_result (query, caps);
    gst_caps_unref (caps);
    gst_caps_unref (templ);
    return TRUE;
  case GST_QUERY_ACCEPT_CAPS:
    templ = gst_pad_get_pad_template_caps (pad);
    gst_query_parse_accept_caps (query, &caps);
    ok = gst_caps_can_intersect (caps, templ);
    gst_query_set_accept_caps_result (query, ok);
    gst_caps_unref (templ);
    return TRUE;
  default:
    return gst_pad_query_default (pad, parent, query);
  }
}

/* pad's caps events become caps (a reference is taken) */
static void
rewrite_caps_events (GstPad *pad, GstCaps *caps)
{
  g_object_set_data (G_OBJECT (pad), GHOST_EVENT, GST_PAD_EVENTFUNC (pad));
  g_object_set_data_full (G_OBJECT (pad), GHOST_CAPS, gst_caps_ref (caps),
                          (GDestroyNotify)gst_caps_unref);
  gst_pad_set_event_function (pad, ghost_caps_event);
}

GstPad *
gst_mcsec_ghost_pad_new (const gchar *name, GstPad *target,
                         GstPadTemplate *templ, GstCaps *outside,
                         GstCaps *inside)
{
  GstPad *ghost = gst_ghost_pad_new_from_template (name, target, templ);

  gst_pad_set_query_function (ghost, ghost_caps_query);
  if (GST_PAD_IS_SRC (ghost)) {
    /* the target's events reach the ghost's internal pad first */
    GstProxyPad *internal = gst_proxy_pad_get_internal (GST_PROXY_PAD (ghost));
    rewrite_caps_events (GST_PAD (internal), outside);
    gst_object_unref (internal);
  } else {
    rewrite_caps_events (ghost, inside);
  }
  return ghost;
}
