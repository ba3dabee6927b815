/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Failover without a rekey (docs/cluster.md): the leader of a unicast
 * group records each new SA in the store under "sealed/sa/GROUP", in the
 * same write as its SPI, before anyone gets it; the store seals it under
 * the cluster key.  The next leader adopts it: the members that held it
 * rejoin and keep it, no new key is made and no stream changes SA.
 *
 * Nonces: a rejoining sender gets a new Sender-ID, never one used under the
 * adopted key.  Those are the members' Sender-IDs when the SA was made (in
 * the record) and whatever the durable Sender-ID counter handed out since:
 * values from the record's counter mark up to the limit the store holds
 * now (every controller reserves its blocks there first).  The adopter's
 * own counter moves past that limit, so what it hands out is in the next
 * adopter's range too.  When that range could cover every Sender-ID, the SA
 * is not adopted.
 *
 * Senders: a sender that kept running through the failover goes on with
 * the Sender-ID it had under the SA (mcsecenc changes Sender-ID only with
 * the SA), so each holder's Sender-IDs and signing key are recorded and
 * listed in the new leader's updates, until the SA changes: receivers go
 * on accepting and verifying its packets whichever leader they rejoined.
 *
 * Record (big-endian): version (1 byte: 2) | SPI (4) | suite (1) | Sender-ID
 * bits (1) | per-sender SPIs (1) | created (8, wall-clock us) | activation (8,
 * wall-clock us) | Sender-ID counter mark (8) | n (4) | n Sender-IDs (4
 * each: the members' when it was made) | m (4) | m holders: identity length
 * (2) | identity | role (1) | k (1) | k Sender-IDs (4 each) | signing key
 * length (2) | signing key (DER SPKI) | key length (1) | key.  The key
 * comes last, so that the buffer never moves once it holds it.
 *
 * Evictions: an eviction, at any controller, deletes the record in the
 * same etcd transaction (ctl-admin.c verb_evict): whoever it names or not
 * (a member that left without a rekey, one that joined since the last
 * write), the evicted identity may hold the SA, so no later leader adopts
 * it.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "ctl-private.h"

#define HOLDERS_MAX 65536        /* beyond: not recorded, their rejoins rekey */
#define RECORD_BATCH_MS 200      /* joins under the SA recorded together */
#define SID_RANGE_MAX (1u << 20) /* counter values walked at adoption */

gchar *
sa_record_key (const char *group)
{
  return group_key ("sealed/sa", group);
}

void
put_be (GByteArray *b, guint64 v, guint n)
{
  for (guint i = 0; i < n; i++) {
    guint8 byte = (guint8)(v >> (8 * (n - 1 - i)));
    g_byte_array_append (b, &byte, 1);
  }
}

gboolean
get_be (const guint8 **p, const guint8 *end, guint n, guint64 *v)
{
  if ((gsize)(end - *p) < n)
    return FALSE;
  *v = 0;
  for (guint i = 0; i < n; i++)
    *v = *v << 8 | (*p)[i];
  *p += n;
  return TRUE;
}

static void
put_holder (GByteArray *b, const char *identity, guint role, const guint32 *ids,
            guint n_ids, const guint32 *more, guint n_more, const guint8 *spki,
            gsize spki_len, guint *n)
{
  gsize len = strlen (identity);
  if (len == 0 || len > G_MAXUINT16 || *n >= HOLDERS_MAX)
    return; /* not recorded: its rejoin rekeys */
  put_be (b, len, 2);
  g_byte_array_append (b, (const guint8 *)identity, (guint)len);
  put_be (b, role, 1);
  /* first those it had before: a sender that kept running sends with them;
   * past the limit its current ones are kept, and the earliest before */
  n_ids = MIN (n_ids, MCSEC_MIKE_MAX_SENDER_IDS);
  n_more = MIN (n_more, MCSEC_MIKE_MAX_SENDER_IDS - n_ids);
  put_be (b, n_ids + n_more, 1);
  for (guint i = 0; i < n_more; i++)
    put_be (b, more[i], 4);
  for (guint i = 0; i < n_ids; i++)
    put_be (b, ids[i], 4);
  put_be (b, spki_len, 2);
  g_byte_array_append (b, spki, (guint)spki_len);
  (*n)++;
}

void
holder_free (gpointer p)
{
  Holder *h = p;
  if (h == NULL)
    return;
  g_free (h->identity);
  g_free (h);
}

/* The record of g's SA `sa`: a new one (its members hold it), or the
 * group's own (its members and the holders not back yet). */
GBytes *
sa_record_build (mcsec_ctl_group_t *g, const GroupSa *sa)
{
  mcsec_ctl_t *ctl = g->ctl;
  GByteArray *b = g_byte_array_sized_new (128 + 8 * g->members.length);
  GHashTable *ids =
      sa->made_ids ? g_hash_table_ref (sa->made_ids) : members_ids (g);
  GHashTableIter it;
  gpointer id;
  guint n_holders = 0;
  gsize n_at;
  GBytes *out;

  put_be (b, SA_RECORD_VERSION, 1);
  put_be (b, sa->spi, 4);
  put_be (b, sa->suite, 1);
  put_be (b, g->cfg->sender_id_bits, 1);
  put_be (b, g->cfg->spi_per_sender ? 1 : 0, 1);
  put_be (b, (guint64)(sa->created_ms * 1000 + ctl->wall_offset_us), 8);
  put_be (b, (guint64)(sa->activate_ms * 1000 + ctl->wall_offset_us), 8);
  put_be (b, sa->sid_base, 8);
  /* the members' Sender-IDs when it was made (those handed out since come
   * from the counter, from sid_base on) */
  put_be (b, g_hash_table_size (ids), 4);
  g_hash_table_iter_init (&it, ids);
  while (g_hash_table_iter_next (&it, &id, NULL))
    put_be (b, GPOINTER_TO_UINT (id), 4);
  g_hash_table_unref (ids);
  n_at = b->len;
  put_be (b, 0, 4);
  /* a new SA: its members will send with their current Sender-IDs; the
   * group's own: also with those they had before an adoption */
  /* a key tree group's receivers are in its tree's record (ctl-tree.c):
   * only the Sender-IDs and signing keys are the SA's, the members' that
   * send (only they have any: ctl-group.c members_add) */
  for (GList *l = g->tree ? g->sending.head : g->members.head; l; l = l->next) {
    mcsec_ctl_conn_t *m = l->data;
    put_holder (b, m->identity, m->role, m->sender_ids, m->n_sender_ids,
                m->old_ids, sa == &g->sa ? m->n_old_ids : 0, m->spki,
                m->spki_len, &n_holders);
  }
  if (sa == &g->sa && g->holders) {
    gpointer value;
    g_hash_table_iter_init (&it, g->holders);
    while (g_hash_table_iter_next (&it, &id, &value)) {
      const Holder *h = value;
      if (!g_hash_table_contains (g->by_identity, id))
        put_holder (b, h->identity, h->role, h->ids, h->n_ids, NULL, 0, h->spki,
                    h->spki_len, &n_holders);
    }
  }
  for (guint i = 0; i < 4; i++)
    b->data[n_at + i] = (guint8)(n_holders >> (8 * (3 - i)));
  /* the key last: room for it first, so the bytes never move after */
  g_byte_array_set_size (b, b->len + 1 + (guint)sa->key_len);
  b->data[b->len - 1 - sa->key_len] = (guint8)sa->key_len;
  memcpy (b->data + b->len - sa->key_len, sa->key, sa->key_len);
  out = g_bytes_new (b->data, b->len);
  OPENSSL_cleanse (b->data, b->len);
  g_byte_array_unref (b);
  return out;
}

void
sa_record_clear (SaRecord *r)
{
  if (r->ids)
    g_array_unref (r->ids);
  if (r->holders)
    g_ptr_array_unref (r->holders);
  OPENSSL_cleanse (r, sizeof *r);
}

/* Every length checked against what is left; FALSE (r cleared) on any
 * inconsistency. */
gboolean
sa_record_parse (const guint8 *data, gsize len, SaRecord *r)
{
  const guint8 *p = data, *end = data + len;
  guint64 v, n;

  memset (r, 0, sizeof *r);
  if (!get_be (&p, end, 1, &v) || v != SA_RECORD_VERSION)
    return FALSE;
  if (!get_be (&p, end, 4, &v))
    return FALSE;
  r->spi = (guint32)v;
  if (!get_be (&p, end, 1, &v))
    return FALSE;
  r->suite = (guint8)v;
  if (!get_be (&p, end, 1, &v) || v == 0 || v > 32)
    return FALSE;
  r->sender_id_bits = (guint8)v;
  if (!get_be (&p, end, 1, &v) || v > 1)
    return FALSE;
  r->spi_per_sender = (guint8)v;
  if (!get_be (&p, end, 8, &v))
    goto bad;
  r->created_us = (gint64)v;
  if (!get_be (&p, end, 8, &v))
    goto bad;
  r->activate_us = (gint64)v;
  if (!get_be (&p, end, 8, &r->sid_base) || !get_be (&p, end, 4, &n) ||
      (gsize)(end - p) / 4 < n)
    goto bad;
  r->ids = g_array_sized_new (FALSE, FALSE, sizeof (guint32), (guint)n);
  for (guint64 i = 0; i < n; i++) {
    guint32 id;
    get_be (&p, end, 4, &v);
    id = (guint32)v;
    g_array_append_val (r->ids, id);
  }
  if (!get_be (&p, end, 4, &n) || n > HOLDERS_MAX)
    goto bad;
  r->holders = g_ptr_array_new_with_free_func (holder_free);
  for (guint64 i = 0; i < n; i++) {
    Holder *h;
    if (!get_be (&p, end, 2, &v) || v == 0 || (gsize)(end - p) < v ||
        memchr (p, 0, (gsize)v) != NULL)
      goto bad;
    h = g_new0 (Holder, 1);
    g_ptr_array_add (r->holders, h);
    h->identity = g_strndup ((const char *)p, (gsize)v);
    p += v;
    if (!get_be (&p, end, 1, &v))
      goto bad;
    h->role = (guint)v;
    if (!get_be (&p, end, 1, &v) || v > MCSEC_MIKE_MAX_SENDER_IDS)
      goto bad;
    h->n_ids = (guint)v;
    for (guint k = 0; k < h->n_ids; k++) {
      if (!get_be (&p, end, 4, &v))
        goto bad;
      h->ids[k] = (guint32)v;
    }
    if (!get_be (&p, end, 2, &v) || v > sizeof h->spki || (gsize)(end - p) < v)
      goto bad;
    h->spki_len = (gsize)v;
    memcpy (h->spki, p, h->spki_len);
    p += h->spki_len;
  }
  if (!get_be (&p, end, 1, &v) || v == 0 || v > sizeof r->key ||
      (gsize)(end - p) != v)
    goto bad;
  r->key_len = (gsize)v;
  memcpy (r->key, p, r->key_len);
  return TRUE;
bad:
  sa_record_clear (r);
  return FALSE;
}

/* Why the record cannot be adopted, or NULL. */
static const char *
unadoptable (mcsec_ctl_group_t *g, const SaRecord *r, gint64 real_us,
             guint64 sid_limit)
{
  const mcsec_ctl_group_config_t *cfg = g->cfg;
  guint64 max = cfg->sender_id_bits == 32
                    ? G_GUINT64_CONSTANT (0xffffffff)
                    : (G_GUINT64_CONSTANT (1) << cfg->sender_id_bits) - 1;

  if (g->n_recent_spis == 0 || g->recent_spis[0] != r->spi)
    return "not the group's newest SA";
  if (r->suite != cfg->suite ||
      r->key_len != mcsec_suite_key_material_len (cfg->suite))
    return "the group's cipher changed";
  /* Sender-IDs of another width would repeat each other's nonces */
  if (r->sender_id_bits != cfg->sender_id_bits ||
      r->spi_per_sender != (cfg->spi_per_sender ? 1 : 0))
    return "the group's sender-id-bits or spi-per-sender changed";
  if (cfg->spi_per_sender &&
      (r->spi & ((UINT32_C (1) << cfg->sender_id_bits) - 1)) != 0)
    return "not an SPI block's base";
  if (real_us - r->created_us >= (gint64)cfg->key_lifetime_s * G_USEC_PER_SEC)
    return "past its lifetime";
  if (sid_limit < r->sid_base || sid_limit - r->sid_base + r->ids->len >= max)
    return "its Sender-IDs may all be used";
  if (sid_limit - r->sid_base > SID_RANGE_MAX)
    return "too many Sender-IDs handed out since";
  for (guint i = 0; i < r->holders->len; i++) {
    const char *id = ((const Holder *)r->holders->pdata[i])->identity;
    if (g_hash_table_contains (g->evicted, id))
      return "a member that held it is evicted";
    if (!g_hash_table_contains (g->senders, id) &&
        !g_hash_table_contains (g->receivers, id))
      return "a member that held it is no longer listed";
    if ((((const Holder *)r->holders->pdata[i])->role &
         MCSEC_MIKE_ROLE_SENDER) &&
        !g_hash_table_contains (g->senders, id))
      return "a sender that held it may no longer send";
  }
  return NULL;
}

static void
set_add (gpointer key, gpointer value, gpointer set)
{
  (void)value;
  g_hash_table_add (set, key);
}

/* The group's state is being read by a new leader: adopt the previous
 * leader's SA when the store holds one that is still good.  FALSE only
 * when the store cannot be read. */
gboolean
group_adopt_sa (mcsec_ctl_group_t *g, gint64 now, GError **error)
{
  mcsec_ctl_t *ctl = g->ctl;
  gchar *key = sa_record_key (g->cfg->name);
  GError *err = NULL;
  GBytes *v = ctl->store->get (ctl->store, key, &err);
  Counter sid = {0};
  SaRecord r;
  const char *why = NULL;
  gint64 real_us = now * 1000 + ctl->wall_offset_us;
  gsize len = 0;
  const guint8 *d;
  guint64 max;

  g_free (key);
  if (err) {
    if (err->domain == MCSEC_CTL_STORE_ERROR) {
      g_propagate_error (error, err);
      return FALSE;
    }
    /* a record that does not open is not adopted: a new SA is safe */
    ctl_log (ctl, "adopt-skipped", "group=%s why=\"%s\"", g->cfg->name,
             err->message);
    g_error_free (err);
    return TRUE;
  }
  if (v == NULL)
    return TRUE;
  d = g_bytes_get_data (v, &len);
  if (!sa_record_parse (d, len, &r)) {
    g_bytes_unref (v);
    ctl_log (ctl, "adopt-skipped", "group=%s why=\"malformed record\"",
             g->cfg->name);
    return TRUE;
  }
  g_bytes_unref (v); /* the store's copy wipes itself */
  /* every Sender-ID counter value any controller may have used is below
   * the limit the store holds now */
  if (!counter_open (ctl, &sid, ctl->sid_ctr.key, SENDER_ID_BLOCK, NULL,
                     error)) {
    g_free (sid.key);
    sa_record_clear (&r);
    return FALSE;
  }
  g_free (sid.key);
  why = unadoptable (g, &r, real_us, sid.limit);
  if (why) {
    ctl_log (ctl, "adopt-skipped", "group=%s spi=0x%08x why=\"%s\"",
             g->cfg->name, r.spi, why);
    sa_record_clear (&r);
    return TRUE;
  }
  max = g->cfg->sender_id_bits == 32
            ? G_GUINT64_CONSTANT (0xffffffff)
            : (G_GUINT64_CONSTANT (1) << g->cfg->sender_id_bits) - 1;
  g->sa.valid = 1;
  g->sa.spi = r.spi;
  g->sa.suite = (mcsec_suite_t)r.suite;
  memcpy (g->sa.key, r.key, r.key_len);
  g->sa.key_len = r.key_len;
  g->sa.created_ms = now - (real_us - r.created_us) / 1000;
  g->sa.activate_ms = now + (r.activate_us - real_us) / 1000;
  g->sa.sid_base = r.sid_base;
  g->sa.adopted = TRUE;
  g->sa.made_ids = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < r.ids->len; i++)
    g_hash_table_add (g->sa.made_ids,
                      GUINT_TO_POINTER (g_array_index (r.ids, guint32, i)));
  /* ours from past the limit: in the next adopter's range */
  if (ctl->sid_ctr.next < sid.limit)
    ctl->sid_ctr.next = sid.limit;
  /* every Sender-ID used under it: those made_ids holds, and the counter's
   * values since sid_base, mapped as new_sender_id maps them */
  g->sa.ids = g_hash_table_new (NULL, NULL);
  g_hash_table_foreach (g->sa.made_ids, set_add, g->sa.ids);
  for (guint64 n = MAX (r.sid_base, 1); n < sid.limit; n++)
    g_hash_table_add (g->sa.ids,
                      GUINT_TO_POINTER ((guint32)(1 + (n - 1) % max)));
  /* the holders' Sender-IDs are valid under the key (avoided, listed) */
  for (guint i = 0; i < r.holders->len; i++) {
    Holder *h = r.holders->pdata[i];
    for (guint k = 0; k < h->n_ids; k++)
      g_hash_table_add (g->sa.ids, GUINT_TO_POINTER (h->ids[k]));
    holders_put (&g->holders, h);
    r.holders->pdata[i] = NULL; /* now the group's */
  }
  /* a key tree group's adoption is said with its tree (ctl-tree.c) */
  if (!g->cfg->channel)
    ctl_log (ctl, "adopt",
             "group=%s spi=0x%08x holders=%u sender-ids-used=%u "
             "age-ms=%" G_GINT64_FORMAT,
             g->cfg->name, g->sa.spi, r.holders->len,
             g_hash_table_size (g->sa.ids), now - g->sa.created_ms);
  sa_record_clear (&r);
  return TRUE;
}

/* A member that held the adopted SA is joining: it keeps the SA (no
 * rekey on its join). */
gboolean
holder_returns (mcsec_ctl_group_t *g, const char *identity)
{
  return g->holders && g_hash_table_contains (g->holders, identity);
}

/* The rejoin window ended: holders that did not come back left (while no
 * controller saw them go), and leaving rekeys as rekey-on-leave says. */
void
group_holders_due (mcsec_ctl_group_t *g, gint64 now)
{
  guint missing;

  if (g->holders == NULL || now < g->recovery_until_ms)
    return;
  missing = g_hash_table_size (g->holders);
  /* no longer listed; as departed members, listed again if they come back
   * under the SA (holder_back) */
  {
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init (&it, g->holders);
    while (g_hash_table_iter_next (&it, NULL, &value)) {
      g_hash_table_iter_steal (&it);
      holders_put (&g->departed, value);
    }
  }
  g_clear_pointer (&g->holders, g_hash_table_unref);
  if (missing == 0)
    return;
  ctl_log (g->ctl, "holders-missing", "group=%s missing=%u rekey=%s",
           g->cfg->name, missing, g->cfg->rekey_on_leave ? "yes" : "no");
  if (g->members.length == 0) {
    if (g->cfg->rekey_on_leave)
      g->sa_stale = TRUE; /* whoever joins next gets a new SA */
    return;
  }
  if (g->failed)
    return; /* its retry makes a new SA anyway (group_rotate) */
  if (g->tree) {
    /* their leaves left at the adoption (ctl-tree.c senders_out), or with
     * the commit of the missing leaves (tree_leaves_due): that commit */
    group_batch (g, "left-during-failover", now);
    return;
  }
  /* as departures: a new key, or at least the list without them */
  group_change (g, g->cfg->rekey_on_leave, "left-during-failover", now);
  if (!g->failed)
    group_record_later (g, now);
}

/* A member got the group's SA without a new one being made: the record's
 * holders are written again soon (one write for a burst of joins).  Until
 * then a failover makes that member's rejoin rekey: never less safe. */
void
group_record_later (mcsec_ctl_group_t *g, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  if (ctl->cfg.cluster && ctl->cfg.store_seals && !g->tree && g->sa.valid &&
      !g->failed && g->record_due == 0)
    g->record_due = now + RECORD_BATCH_MS;
}

void
group_record_due (mcsec_ctl_group_t *g, gint64 now)
{
  gchar *key;
  GBytes *v;
  GError *err = NULL;

  if (g->record_due == 0 || now < g->record_due)
    return;
  g->record_due = 0;
  /* a stale SA's record is deleted (group_record_stale); a group whose
   * rotation failed owes a new key: its members now may include one whose
   * rekey failed, or lack one that left (the retry records a new SA) */
  if (!g->sa.valid || g->sa_stale || g->failed)
    return;
  key = sa_record_key (g->cfg->name);
  v = sa_record_build (g, &g->sa);
  if (!store_put1 (g->ctl, key, v, &err)) {
    ctl_log (g->ctl, "error",
             "group=%s what=\"cannot record the SA's holders: %s\" "
             "retry-ms=%u",
             g->cfg->name, err->message, RETRY_MS);
    g_error_free (err);
    g->record_due = now + RETRY_MS;
  }
  wipe_bytes (v);
  g_free (key);
}

gboolean
mcsec_ctl_group_save (mcsec_ctl_group_t *g, gint64 now_ms)
{
  if (g->failed)
    return FALSE; /* its retry makes a new SA: not one to hand over */
  if (g->record_due && group_may_issue (g, now_ms)) {
    g->record_due = now_ms;
    group_record_due (g, now_ms);
  }
  /* an adopted tree whose rejoin window is open: its waiting leaves would
   * be handed on, and a new window started for them */
  if (g->tree_leaves && g_hash_table_size (g->tree_leaves))
    return FALSE;
  /* a key tree group: its queued joins and leaves committed (a leave not
   * committed would be lost to the next leader), its tree recorded */
  if (g->tree && mcsec_lkh_pending (g->tree) && group_may_issue (g, now_ms)) {
    group_commit (g, "handoff", now_ms);
    if (g->failed)
      return FALSE;
  }
  if (g->tree && (g->tree_retry_due || g->tree_drop_pending)) {
    g->tree_retry_due = now_ms;
    if (!tree_record_due (g, now_ms))
      return FALSE;
  }
  return TRUE;
}

/* The group's SA went stale (its last member left or was evicted, with
 * nobody to rekey): a departed member holds it, so no later leader may
 * adopt it; its record is deleted (again, at most every RETRY_MS, until
 * that works). */
void
group_record_stale (mcsec_ctl_group_t *g, gint64 now)
{
  mcsec_ctl_t *ctl = g->ctl;
  gchar *key;
  GError *err = NULL;

  if (!g->sa_stale || g->record_dropped || !g->leading || !ctl->cfg.cluster ||
      !ctl->cfg.store_seals || g->tree || now < g->record_retry_due)
    return;
  key = sa_record_key (g->cfg->name);
  if (store_put1 (ctl, key, NULL, &err)) {
    g->record_dropped = TRUE;
  } else {
    g->record_retry_due = now + RETRY_MS; /* not at every operation */
    ctl_log (ctl, "error",
             "group=%s what=\"cannot delete the stale SA's record: %s\"",
             g->cfg->name, err->message);
    g_error_free (err);
  }
  g_free (key);
}
