/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * gstmcsecdec-sam.c: mcsecdec's source authentication (SAM,
 * docs/source-authentication.md): the verdicts of the verifier, the
 * datagrams held for them (sam-policy=required), the marks of
 * sam-policy=optional, and the senders' keys.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <openssl/x509.h>

#include "gstmcsecdec-private.h"

#define GST_CAT_DEFAULT gst_mcsec_debug

/* One datagram's SAM verdict in a set of counters. */
static void
count_outcome (SamStats *st, mcsec_sam_outcome_t outcome)
{
  switch (outcome) {
  case MCSEC_SAM_PENDING:
    st->pending++;
    break;
  case MCSEC_SAM_VERIFIED:
    st->verified++;
    break;
  case MCSEC_SAM_FAILED:
    st->failed++;
    break;
  default:
    st->unverifiable++;
    break;
  }
}

static SamStats *
sam_stats_for (GstMcsecDec *self, guint32 sender_id)
{
  SamStats *st =
      g_hash_table_lookup (self->sam_stats, GUINT_TO_POINTER (sender_id));
  if (st == NULL) {
    st = g_new0 (SamStats, 1);
    g_hash_table_insert (self->sam_stats, GUINT_TO_POINTER (sender_id), st);
  }
  return st;
}

static void
mark_source (GstBuffer *buf, guint32 sender_id, const gchar *state)
{
  GstCustomMeta *meta = gst_buffer_add_custom_meta (buf, GST_MCSEC_SOURCE_META);
  if (meta)
    gst_structure_set (gst_custom_meta_get_structure (meta), "sender-id",
                       G_TYPE_UINT, sender_id, "sam", G_TYPE_STRING, state,
                       NULL);
}

/* Called with the object lock: the verdict on a held datagram.  A verified
 * one is accepted by its SA's replay window now (the first copy wins); the
 * others are dropped, for `reason`. */
static void
judge_held (GstMcsecDec *self, HeldEntry *e, mcsec_sam_outcome_t outcome)
{
  e->state = outcome;
  if (outcome == MCSEC_SAM_VERIFIED) {
    mcsec_sa_t *sa = mcsec_sadb_lookup (self->db, e->spi);
    /* an SA removed meanwhile accepts nothing more: the datagram, checked
     * against its window on arrival, is the only copy */
    e->reason = sa ? mcsec_sa_accept (sa, e->sender_id, e->counter) : MCSEC_OK;
  } else {
    e->reason = outcome == MCSEC_SAM_FAILED ? MCSEC_ERR_SIGNATURE
                                            : MCSEC_ERR_UNVERIFIABLE;
  }
}

/* Called with the object lock, from inside mcsec_sam_verify or flush. */
void
gst_mcsec_dec_on_sam_event (const mcsec_sam_event_t *ev, void *data)
{
  GstMcsecDec *self = data;
  SamStats *st = sam_stats_for (self, ev->sender_id);
  HeldEntry *e = g_hash_table_lookup (self->held_by_tag, &ev->tag);

  /* in the required policy a datagram given up already has its verdict */
  if (self->sam_policy == GST_MCSEC_SAM_REQUIRED &&
      (e == NULL || e->state != 0))
    return;
  st->pending = st->pending ? st->pending - 1 : 0;
  self->sam_total.pending =
      self->sam_total.pending ? self->sam_total.pending - 1 : 0;
  count_outcome (st, ev->outcome);
  count_outcome (&self->sam_total, ev->outcome);
  if (e != NULL)
    judge_held (self, e, ev->outcome);
}

/* Called with the object lock: hand decided datagrams at the head of the
 * queue to `ready`, in arrival order; drop what failed.  Bounds: at most
 * sam_max_hold held, none older than sam_max_latency (against now). */
void
gst_mcsec_dec_release_held (GstMcsecDec *self, GstClockTime now, gboolean all)
{
  HeldEntry *e;

  while ((e = g_queue_peek_head (&self->held)) != NULL) {
    gboolean too_many = g_queue_get_length (&self->held) > self->sam_max_hold;
    gboolean too_old =
        GST_CLOCK_TIME_IS_VALID (now) && GST_CLOCK_TIME_IS_VALID (e->arrival) &&
        now > e->arrival && now - e->arrival > self->sam_max_latency;
    if (e->state == 0) {
      if (!(all || too_many || too_old))
        break;
      /* no verdict in time: it counts as unverifiable */
      judge_held (self, e, MCSEC_SAM_UNVERIFIABLE);
      {
        SamStats *ss = sam_stats_for (self, e->sender_id);
        ss->unverifiable++;
        ss->pending = ss->pending ? ss->pending - 1 : 0;
      }
      self->sam_total.unverifiable++;
      self->sam_total.pending =
          self->sam_total.pending ? self->sam_total.pending - 1 : 0;
    }
    g_queue_pop_head (&self->held);
    g_hash_table_remove (self->held_by_tag, &e->tag);
    gst_mcsec_dec_count_outcome_of (self, e->spi, e->sender_id, e->counter,
                                    e->reason, FALSE);
    if (e->reason == MCSEC_OK) {
      if (GST_CLOCK_TIME_IS_VALID (now) &&
          GST_CLOCK_TIME_IS_VALID (e->arrival) && now >= e->arrival) {
        guint64 held_ns = now - e->arrival;
        self->hold_sum_ns += held_ns;
        self->hold_count++;
        if (held_ns > self->hold_max_ns)
          self->hold_max_ns = held_ns;
      }
      mark_source (e->buf, e->sender_id, "verified");
      if (self->ready == NULL)
        self->ready = gst_buffer_list_new ();
      gst_buffer_list_add (self->ready, e->buf);
    } else {
      GST_DEBUG_OBJECT (self,
                        "dropping a datagram of sender %u (spi 0x%08x "
                        "counter %" G_GUINT64_FORMAT "): %s",
                        e->sender_id, e->spi, e->counter,
                        mcsec_status_name (e->reason));
      gst_buffer_unref (e->buf);
    }
    g_free (e);
  }
}

/* Buffer time of a datagram; NONE (no time bound, only the count bound)
 * for buffers without timestamps. */
static GstClockTime
arrival_time (GstBuffer *buf)
{
  if (GST_BUFFER_PTS_IS_VALID (buf))
    return GST_BUFFER_PTS (buf);
  return GST_BUFFER_DTS (buf);
}

/* Strip the source data off out and mark it; NULL (out dropped) when the
 * SAM data cannot even be parsed or carries no datagram. */
static GstBuffer *
strip_source (GstBuffer *out, guint32 sender_id, const gchar *mark)
{
  GstMapInfo map;
  size_t off = 0, dlen = 0;
  mcsec_status_t st = MCSEC_ERR_MALFORMED;

  if (gst_buffer_map (out, &map, GST_MAP_READ)) {
    st = mcsec_sam_locate (map.data, map.size, &off, &dlen);
    gst_buffer_unmap (out, &map);
  }
  if (st || dlen == 0) {
    gst_buffer_unref (out);
    return NULL;
  }
  gst_buffer_resize (out, (gssize)off, (gssize)dlen);
  if (mark)
    mark_source (out, sender_id, mark);
  return out;
}

/* Called with the object lock: apply the source policy to a datagram that
 * ESP accepted.  Returns what to push now (off and optional), or NULL
 * (held, or dropped). */
GstBuffer *
gst_mcsec_dec_sam_filter (GstMcsecDec *self, GstBuffer *out,
                          const mcsec_rx_info_t *info)
{
  GstMapInfo map;
  mcsec_sam_result_t res;
  mcsec_status_t st;
  HeldEntry *e;
  SamStats *ss;

  if (info->next_header != MCSEC_NEXT_HEADER_SAM) {
    if (self->sam_policy == GST_MCSEC_SAM_OFF)
      return out;
    ss = sam_stats_for (self, info->sender_id);
    ss->unsigned_++;
    self->sam_total.unsigned_++;
    if (self->sam_policy == GST_MCSEC_SAM_OPTIONAL) {
      mark_source (out, info->sender_id, "unverified");
      return out;
    }
    /* required: no source data, no datagram */
    gst_mcsec_dec_count_outcome_of (self, info->spi, info->sender_id,
                                    info->counter, MCSEC_ERR_UNSIGNED, FALSE);
    gst_buffer_unref (out);
    return NULL;
  }
  if (self->sam_policy == GST_MCSEC_SAM_OFF)
    return strip_source (out, info->sender_id, NULL);

  if (self->sam_policy == GST_MCSEC_SAM_REQUIRED)
    /* what is already too old is given up before this packet's verdicts:
     * nothing is released after waiting longer than sam-max-latency */
    gst_mcsec_dec_release_held (self, arrival_time (out), FALSE);
  if (!gst_buffer_map (out, &map, GST_MAP_READ)) {
    gst_buffer_unref (out);
    return NULL;
  }
  st = mcsec_sam_verify (self->verifier, info->spi, info->sender_id,
                         info->counter, ++self->next_tag, map.data, map.size,
                         &res);
  gst_buffer_unmap (out, &map);
  ss = sam_stats_for (self, info->sender_id);
  if (st) {
    GST_DEBUG_OBJECT (self, "source check of sender %u: %s", info->sender_id,
                      mcsec_status_name (st));
    if (st == MCSEC_ERR_NO_SENDER_KEY) {
      ss->unsigned_++;
      self->sam_total.unsigned_++;
    } else {
      ss->failed++;
      self->sam_total.failed++;
    }
    if (self->sam_policy == GST_MCSEC_SAM_OPTIONAL)
      return strip_source (out, info->sender_id,
                           st == MCSEC_ERR_NO_SENDER_KEY ? "unverified"
                                                         : "failed");
    gst_mcsec_dec_count_outcome_of (
        self, info->spi, info->sender_id, info->counter,
        st == MCSEC_ERR_NO_SENDER_KEY ? MCSEC_ERR_UNSIGNED : st, FALSE);
    gst_buffer_unref (out);
    return NULL;
  }
  if (res.outcome == MCSEC_SAM_CARRIER) {
    ss->carriers++;
    self->sam_total.carriers++;
    gst_buffer_unref (out);
    /* its symbols may have decided held datagrams */
    if (self->sam_policy == GST_MCSEC_SAM_REQUIRED) {
      gst_mcsec_dec_count_outcome_of (self, info->spi, info->sender_id,
                                      info->counter, MCSEC_OK, FALSE);
      gst_mcsec_dec_release_held (self, GST_CLOCK_TIME_NONE, FALSE);
    }
    return NULL;
  }
  gst_buffer_resize (out, (gssize)res.payload_offset, (gssize)res.payload_len);
  /* pending datagrams are counted by their event; the others now */
  count_outcome (ss, res.outcome);
  count_outcome (&self->sam_total, res.outcome);
  if (self->sam_policy == GST_MCSEC_SAM_OPTIONAL) {
    mark_source (out, info->sender_id,
                 res.outcome == MCSEC_SAM_VERIFIED  ? "verified"
                 : res.outcome == MCSEC_SAM_PENDING ? "pending"
                 : res.outcome == MCSEC_SAM_FAILED  ? "failed"
                                                    : "unverifiable");
    return out;
  }
  /* required: everything waits, in arrival order */
  e = g_new0 (HeldEntry, 1);
  e->buf = out;
  e->spi = info->spi;
  e->sender_id = info->sender_id;
  e->counter = info->counter;
  e->tag = self->next_tag;
  e->arrival = arrival_time (out);
  if (res.outcome != MCSEC_SAM_PENDING)
    judge_held (self, e, res.outcome);
  g_queue_push_tail (&self->held, e);
  g_hash_table_insert (self->held_by_tag, &e->tag, e);
  gst_mcsec_dec_release_held (self, e->arrival, FALSE);
  return NULL;
}

/* Called with the object lock: add the keys of sender-keys ("ID=file;...")
 * to the verifier.  FALSE with *error naming the setting and the file. */
gboolean
gst_mcsec_dec_apply_sender_keys (GstMcsecDec *self, gchar **error)
{
  gchar **items;
  gboolean ok = TRUE;

  self->sender_keys_changed = FALSE;
  if (self->sender_keys == NULL)
    return TRUE;
  items = g_strsplit_set (self->sender_keys, ";,", -1);
  for (gchar **it = items; ok && *it; it++) {
    gchar *item = g_strstrip (*it), *eq = strchr (item, '='), *end = NULL;
    guint64 id = 0;
    EVP_PKEY *key;
    GError *err = NULL;
    if (*item == '\0')
      continue;
    if (eq != NULL)
      id = g_ascii_strtoull (item, &end, 0);
    if (eq == NULL || end != eq || id > G_MAXUINT32) {
      *error = g_strdup_printf ("sender-keys: '%s' is not ID=FILE", item);
      ok = FALSE;
      break;
    }
    key = gst_mcsec_load_public_key (g_strstrip (eq + 1), &err);
    if (key == NULL) {
      *error = g_strdup (err->message);
      g_error_free (err);
      ok = FALSE;
      break;
    }
    /* keys of the sender-keys setting hold under any SA */
    if (mcsec_sam_verifier_add_sender (self->verifier, 0, (guint32)id, key)) {
      *error = g_strdup_printf ("sender-keys: %s is not an Ed25519 or ECDSA "
                                "P-256 public key",
                                eq + 1);
      ok = FALSE;
    }
    EVP_PKEY_free (key);
  }
  g_strfreev (items);
  return ok;
}

gboolean
gst_mcsec_dec_add_sender_key (GstMcsecDec *self, guint sender_id,
                              const gchar *path)
{
  GError *err = NULL;
  EVP_PKEY *key = gst_mcsec_load_public_key (path ? path : "", &err);
  gboolean ok;

  if (key == NULL) {
    GST_WARNING_OBJECT (self, "add-sender-key: %s", err->message);
    g_error_free (err);
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  ok = mcsec_sam_verifier_add_sender (self->verifier, 0, sender_id, key) ==
       MCSEC_OK;
  GST_OBJECT_UNLOCK (self);
  EVP_PKEY_free (key);
  return ok;
}
