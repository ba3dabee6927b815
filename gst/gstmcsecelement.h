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

/* An element's documentation link (GST_ELEMENT_METADATA_DOC_URI): its
 * section of the installed elements.md, under the meson option doc-url
 * (MCSEC_DOC_URL, gst/meson.build); anchor: the section's. */
#define GST_MCSEC_DOC_URI(anchor) MCSEC_DOC_URL "elements.md#" anchor

#define MCSEC_CAPS "application/x-mcsec"
#define GST_MCSEC_DEFAULT_CIPHER MCSEC_SUITE_AES_128_GCM
#define GST_MCSEC_DEFAULT_SPI 0x1000
/* SPIs 1-255 are reserved by IANA (RFC 4303 2.1), 0 means none */
#define GST_MCSEC_MIN_SPI 256

void gst_mcsec_element_init (GstPlugin *plugin);

/* TRUE when data is RTCP: a compound packet whose every packet has version
 * 2, a packet type of 192..223 (RFC 5761 section 4) and a length, and whose
 * lengths add up to len exactly.  What a feedback member (mcseckeysrc
 * role=feedback) may send, and all that receivers accept from it. */
gboolean gst_mcsec_is_rtcp (const guint8 *data, gsize len);

/* A private copy of key material held by an element: wiped on free. */
typedef struct {
  guint8 bytes[MCSEC_MAX_KEY_MATERIAL_LEN];
  gsize len;
  /* the cipher the key file named (0: none, or not from a file) and the
   * file, for the error when the element's cipher is another one */
  mcsec_suite_t file_suite;
  gchar file_path[256];
} GstMcsecKey;

void gst_mcsec_key_clear (GstMcsecKey *key);
/* Copy a GstBuffer's bytes (NULL clears).  FALSE when too long, and the
 * key is then unchanged. */
gboolean gst_mcsec_key_set_buffer (GstMcsecKey *key, GstBuffer *buf);
/* Read hex key material from a file (whitespace ignored, at most
 * GST_MCSEC_KEY_FILE_MAX bytes), after an optional "cipher=NAME" line
 * (docs/elements.md, "Key files"): the cipher is remembered with the key
 * (until it is cleared), and gst_mcsec_setting_error_check and
 * gst_mcsec_make_sa refuse an element whose cipher is another one.  On
 * error the key is unchanged and `error` says "key-file 'PATH': CAUSE" (the
 * errno text for a file that cannot be read: a GST_RESOURCE_ERROR;
 * GST_LIBRARY_ERROR_SETTINGS for what it holds, such as a length the named
 * cipher does not take), never a key byte. */
#define GST_MCSEC_KEY_FILE_MAX 4096
gboolean gst_mcsec_key_load_file (GstMcsecKey *key, const gchar *path,
                                  GError **error);

/* The `key` (a GstBuffer) and `key-file` (a path) properties, with the
 * object lock held.  FALSE when unusable: *error names the property (the
 * caller keeps it with gst_mcsec_setting_error_keep). */
gboolean gst_mcsec_key_set_property (GstMcsecKey *key, gboolean from_file,
                                     const GValue *value, GError **error);

/* Errors of property writes.  A write that fails is kept in *slot until a
 * valid value replaces it (NULL error: clears it), and posted as an ERROR
 * at once when the element is on a bus already; gst_mcsec_setting_error_check
 * posts it again each time the element starts, so that gst-launch-1.0
 * (which sets properties before the element has a bus) shows the cause.
 * *slot is under the element's object lock: call both without it.  keep
 * consumes error. */
void gst_mcsec_setting_error_keep (GstElement *element, GError **slot,
                                   GError *error);
/* FALSE (the error posted) when a property write failed and nothing
 * replaced it, or when the element's key came from a key file that names
 * another cipher than its `cipher` property ("key-file 'F' is for
 * aes-256-gcm but cipher=aes-128-gcm"). */
gboolean gst_mcsec_setting_error_check (GstElement *element, GError **slot,
                                        const GstMcsecKey *key,
                                        mcsec_suite_t cipher);
/* NULL when the key did not come from a key file that names a cipher, or
 * that cipher is `suite`; otherwise the error text, naming both. */
gchar *gst_mcsec_key_cipher_mismatch (const GstMcsecKey *key,
                                      mcsec_suite_t suite);

/* Build an SA; on failure NULL and *error says which setting is wrong
 * (callers post it with GST_ELEMENT_ERROR once they hold no lock). */
mcsec_sa_t *gst_mcsec_make_sa (guint32 spi, mcsec_suite_t suite,
                               const GstMcsecKey *key, guint sender_id_bits,
                               guint replay_window, guint64 soft, guint64 hard,
                               mcsec_sa_type_t type, gboolean esn,
                               gboolean spi_per_sender, gchar **error);

/* The error of esn=true on a group SA (mcsecdec), naming both settings. */
#define GST_MCSEC_ESN_NEEDS_STANDARD                                           \
  "esn: extended sequence numbers are those of a standard SA: set "            \
  "sa-type=standard, or esn=false"

/* mcsecdec's sa-type: mcsec_sa_type_t as a GEnum */
GType gst_mcsec_sa_type_get_type (void);
#define GST_TYPE_MCSEC_SA_TYPE (gst_mcsec_sa_type_get_type ())

/* Output buffers of both elements come from a pool of buffers this large;
 * larger packets (rare: jumbo datagrams) get a buffer of their own. */
#define GST_MCSEC_POOL_BUFFER_SIZE 2048

/* An active pool of GST_MCSEC_POOL_BUFFER_SIZE buffers, or NULL. */
GstBufferPool *gst_mcsec_pool_new (void);
/* Deactivate and drop a pool (NULL is fine). */
void gst_mcsec_pool_free (GstBufferPool *pool);
/* A buffer of at least size bytes, from the pool when it fits. */
GstBuffer *gst_mcsec_buffer_new (GstBufferPool *pool, gsize size);

/* The hot paths' buffer access.  A buffer with one memory (what a socket,
 * a payloader or the pool makes) is mapped and resized through that
 * memory, without gst_buffer_map()'s merge, reference and bookkeeping;
 * other buffers take the generic route.  A WRITE map or a trim needs a
 * writable buffer (the caller checks). */
typedef struct {
  GstMapInfo info;
  gboolean whole; /* mapped with gst_buffer_map() */
} GstMcsecMap;
gboolean gst_mcsec_map (GstBuffer *buf, GstMcsecMap *m, GstMapFlags flags);
void gst_mcsec_unmap (GstBuffer *buf, GstMcsecMap *m);
/* gst_buffer_resize (buf, offset, size), offset >= 0 */
void gst_mcsec_buffer_trim (GstBuffer *buf, gsize offset, gsize size);
/* gst_buffer_copy_into (dest, src, FLAGS | TIMESTAMPS, 0, -1) */
void gst_mcsec_copy_stamps (GstBuffer *dest, const GstBuffer *src);

/* TRUE when pspec may be set in the element's current state; otherwise
 * warns (naming the property) and returns FALSE.  Called with the object
 * lock (GST_STATE is read under it). */
gboolean gst_mcsec_property_mutable (GstElement *element, GParamSpec *pspec);

/* Post a LIBRARY/SETTINGS error and free the text (no lock held). */
void gst_mcsec_post_settings_error (GstElement *element, gchar *text);

/* The element's clock time (the pipeline's), or the monotonic system time
 * before it has a clock.  Called with the object lock. */
GstClockTime gst_mcsec_element_now (GstElement *element);

/* ---- bus warnings about dropped packets, rate-limited per reason ---- */

#define GST_MCSEC_DEFAULT_WARNING_INTERVAL 5000 /* ms */

/* Under the element's object lock.  The hot path only sets a bit per drop
 * (gst_mcsec_drop_note); the element then calls
 * gst_mcsec_drop_warnings_collect, before it unlocks, only while a bit is
 * set, and posts what it collected once unlocked. */
typedef struct {
  GstClockTime interval; /* 0: no warnings */
  guint64 pending;       /* a bit per reason with drops not reported yet */
  GstClockTime last[MCSEC_STATUS_COUNT_]; /* NONE: none this run */
  guint64 reported[MCSEC_STATUS_COUNT_];  /* the reason's count then */
  guint64 has_ids;                        /* a bit per reason: spi, sender */
  guint32 spi[MCSEC_STATUS_COUNT_], sender_id[MCSEC_STATUS_COUNT_];
} GstMcsecDropWarnings;

/* One warning to post: `count` drops for `reason` since the last warning
 * about it, `total` in all; the SPI and Sender-ID of the last one. */
typedef struct {
  mcsec_status_t reason;
  guint64 count, total;
  gboolean has_ids;
  guint32 spi, sender_id;
} GstMcsecDropWarning;

typedef struct {
  guint n;
  GstMcsecDropWarning w[MCSEC_STATUS_COUNT_];
} GstMcsecDropWarningList;

static inline void
gst_mcsec_drop_note (GstMcsecDropWarnings *w, mcsec_status_t st)
{
  if (w->interval)
    w->pending |= G_GUINT64_CONSTANT (1) << st;
}

static inline void
gst_mcsec_drop_note_packet (GstMcsecDropWarnings *w, mcsec_status_t st,
                            guint32 spi, guint32 sender_id)
{
  if (w->interval) {
    w->pending |= G_GUINT64_CONSTANT (1) << st;
    w->has_ids |= G_GUINT64_CONSTANT (1) << st;
    w->spi[st] = spi;
    w->sender_id[st] = sender_id;
  }
}

/* interval in ms (0: off); a new run: the next drop of each reason is
 * reported at once. */
void gst_mcsec_drop_warnings_init (GstMcsecDropWarnings *w, guint interval_ms);
void gst_mcsec_drop_warnings_restart (GstMcsecDropWarnings *w);
/* With the object lock: add the reasons whose warning is due now (all
 * pending ones when `all`) to `out`; dropped_by is the element's drop
 * count per reason. */
void gst_mcsec_drop_warnings_collect (GstMcsecDropWarnings *w,
                                      GstElement *element,
                                      const guint64 *dropped_by, gboolean all,
                                      GstMcsecDropWarningList *out);
/* No lock held: post one warning (domain/code: STREAM DECRYPT or ENCRYPT).
 * `what`: "packet" or "buffer" (an s is added); `hint`: what to check. */
void gst_mcsec_post_drop_warning (GstElement *element, GQuark domain, gint code,
                                  const GstMcsecDropWarning *w,
                                  const gchar *what, const gchar *hint,
                                  guint interval_ms);

/* ---- periodic stats messages ---- */

/* The `stats` property posted as an element message every interval of the
 * element's clock while PLAYING (a clock callback, so that a stream that
 * stops still reports).  Under the object lock. */
typedef struct {
  guint interval_ms; /* 0: off */
  gboolean playing;
  GstClockID id;
} GstMcsecStatsTimer;

/* No lock held. */
void gst_mcsec_stats_timer_start (GstElement *element, GstMcsecStatsTimer *t);
void gst_mcsec_stats_timer_stop (GstElement *element, GstMcsecStatsTimer *t);
/* After stats-interval changed (no lock held). */
void gst_mcsec_stats_timer_reset (GstElement *element, GstMcsecStatsTimer *t);
/* Post the stats now (end of stream; no lock held). */
void gst_mcsec_post_stats (GstElement *element);

/* ---- mcsecrtpenc, mcsecrtpdec: bins of mcsecenc / mcsecdec ---- */

/* A bin's copies of its children's properties: the values written to the
 * bin, applied to every child it holds and to each it makes later.  Only
 * what was written is applied, so a child keeps its own defaults (and
 * knows which settings were given: mcsecdec's sam-policy). */
typedef struct {
  const gchar *const *names; /* the mirrored properties, NULL-terminated */
  guint first_id;            /* the bin's property id of names[0] */
  GValue *values;            /* one per name, unset until written */
  GstMcsecKey key;           /* "key" (write-only): a private copy, wiped */
  gboolean key_set;
} GstMcsecMirror;

/* In class_init: install a copy of each named property of child_type
 * (name, type, range, default, flags) with ids first_id, first_id + 1, ... */
void gst_mcsec_mirror_install (GObjectClass *klass, GType child_type,
                               const gchar *const *names, guint first_id);
void gst_mcsec_mirror_init (GstMcsecMirror *m, const gchar *const *names,
                            guint first_id);
/* wipes the key */
void gst_mcsec_mirror_clear (GstMcsecMirror *m);
/* set_property / get_property: FALSE when prop_id is not mirrored.  Called
 * with the bin's object lock; set returns in *apply the index to apply
 * (gst_mcsec_mirror_apply, once unlocked). */
gboolean gst_mcsec_mirror_set (GstMcsecMirror *m, guint prop_id,
                               const GValue *value, guint *apply);
/* With the bin's object lock: a set-key that every child took; the
 * streams made later take the same SA (key, spi, cipher; a key-file
 * written before no longer applies).  FALSE: unknown cipher or bad key. */
gboolean gst_mcsec_mirror_set_sa (GstMcsecMirror *m, guint spi,
                                  const gchar *cipher, GstBuffer *key);
gboolean gst_mcsec_mirror_get (GstMcsecMirror *m, guint prop_id, GValue *value,
                               GParamSpec *pspec);
/* Not under the bin's lock: give child the value of names[index], or
 * (index G_MAXUINT) every value written so far.  The bin's lock is taken
 * to read them. */
void gst_mcsec_mirror_apply (GstMcsecMirror *m, GstObject *bin, GObject *child,
                             guint index);

/* A ghost pad of templ for target that shows the template's caps outside,
 * whatever target's are: rtpbin links only pads whose caps say RTP or SRTP
 * (RTCP or SRTCP), and mcsec's ESP packets are application/x-mcsec to
 * mcsecenc and mcsecdec.  A caps event crossing the pad is rewritten:
 * outward (a source pad), to `outside`; inward (a sink pad), to `inside`.
 * Caps queries are answered with the template's caps. */
GstPad *gst_mcsec_ghost_pad_new (const gchar *name, GstPad *target,
                                 GstPadTemplate *templ, GstCaps *outside,
                                 GstCaps *inside);

G_END_DECLS

#endif
