/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * member.c: the MIKE member's state machine and the member security
 * association (mcsec_member_*, mcsec_msa_*), without I/O
 * (docs/mike-protocol.md).  Above the codec (mike-codec.c) and the rekey
 * channel's receiver (rekey.c); mike-client.c (io/) drives it over TLS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "mcsec-private.h"
#include "mcsec/mcsec-mike.h"
#include "mcsec/mcsec-rekey.h"

#define MEMBER_MAX_SAS (MCSEC_MIKE_MAX_SAS * 2)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MEMBER_EVENTS 32
#define NEVER UINT64_MAX

typedef struct {
  uint32_t spi;
  mcsec_suite_t suite;
  uint8_t key[MCSEC_MIKE_MAX_KEY_LEN];
  size_t key_len;
  uint64_t activate_at, retire_at; /* ms, member's clock */
  int active;
} member_sa_t;

struct mcsec_member {
  char group[MCSEC_MIKE_MAX_STRING + 1];
  unsigned role;
  uint8_t spki[MCSEC_MIKE_MAX_SPKI];
  size_t spki_len;
  mcsec_member_state_t state;
  mcsec_mike_reader_t reader;
  mcsec_mike_msg_t *msg; /* parse scratch */
  uint8_t *out;
  size_t out_len, out_cap;
  uint64_t last_rx_ms, last_ping_ms, connected_ms;
  int welcomed, fresh; /* WELCOME seen; next update resets the SEQ baseline */
  EVP_PKEY *controller_key;
  char identity[MCSEC_MIKE_MAX_STRING + 1];
  unsigned sender_count;
  int may_send;
  size_t n_sender_ids;
  uint32_t sender_ids[MCSEC_MIKE_MAX_SENDER_IDS];
  uint8_t sender_id_bits, sam;
  /* the WELCOME's SPI_PER_SENDER (every SA a block of SPIs), ADDRESS and
   * PORT */
  int spi_per_sender;
  char address[MCSEC_MIKE_MAX_STRING + 1];
  uint16_t port;
  uint64_t last_seq, generation, rejected;
  size_t n_sas;
  member_sa_t sas[MEMBER_MAX_SAS];
  size_t n_senders;
  mcsec_msa_sender_t *senders;
  /* key tree groups: the rekey channel, the path keys, the channel's
   * receiver (remade at each path the controller sends) */
  int tree, want_resync;
  char channel_address[MCSEC_MIKE_MAX_STRING + 1];
  uint16_t channel_port;
  mcsec_lkh_keyring_t *keyring;
  mcsec_rekey_rx_t *rx;
  uint64_t channel_heard_ms, silence_asked_ms, resync_asked_ms;
  mcsec_member_channel_stats_t chan; /* of earlier receivers, and ours */
  mcsec_member_event_t events[MEMBER_EVENTS];
  unsigned ev_head, ev_count;
};

static void channel_drop (mcsec_member_t *m);

static const char *const event_names[] = {
    [MCSEC_MEMBER_EV_JOINED] = "joined",
    [MCSEC_MEMBER_EV_REFUSED] = "refused",
    [MCSEC_MEMBER_EV_UPDATED] = "updated",
    [MCSEC_MEMBER_EV_SA_CHANGED] = "sa-changed",
    [MCSEC_MEMBER_EV_EVICTED] = "evicted",
    [MCSEC_MEMBER_EV_REJECTED] = "rejected",
    [MCSEC_MEMBER_EV_CONNECTED] = "connected",
    [MCSEC_MEMBER_EV_CONNECTION_LOST] = "connection-lost",
    [MCSEC_MEMBER_EV_CHANNEL] = "channel",
    [MCSEC_MEMBER_EV_REDIRECTED] = "redirected",
};

const char *
mcsec_member_event_name (mcsec_member_event_type_t t)
{
  if ((unsigned)t < sizeof event_names / sizeof event_names[0] &&
      event_names[t])
    return event_names[t];
  return "unknown";
}

const char *
mcsec_member_state_name (mcsec_member_state_t s)
{
  static const char *const names[] = {"idle",         "joining", "joined",
                                      "disconnected", "refused", "evicted"};
  return (unsigned)s < 6 ? names[s] : "unknown";
}

static mcsec_member_event_t *
push_event (mcsec_member_t *m, mcsec_member_event_type_t type)
{
  mcsec_member_event_t *ev;
  if (m->ev_count == MEMBER_EVENTS) { /* full: the oldest goes */
    m->ev_head = (m->ev_head + 1) % MEMBER_EVENTS;
    m->ev_count--;
  }
  ev = &m->events[(m->ev_head + m->ev_count++) % MEMBER_EVENTS];
  memset (ev, 0, sizeof *ev);
  ev->type = type;
  return ev;
}

static void
copy_text (char *dst, const uint8_t *src, size_t len)
{
  if (src == NULL)
    len = 0;
  if (len > MCSEC_MIKE_MAX_STRING)
    len = MCSEC_MIKE_MAX_STRING;
  if (len)
    memcpy (dst, src, len);
  dst[len] = '\0';
}

mcsec_status_t
mcsec_member_new (const mcsec_member_config_t *config, mcsec_member_t **out)
{
  mcsec_member_t *m;
  size_t glen;

  if (config == NULL || out == NULL || config->group == NULL ||
      config->role < MCSEC_MIKE_ROLE_RECEIVER ||
      config->role > MCSEC_MIKE_ROLE_FEEDBACK)
    return MCSEC_ERR_INVALID_ARG;
  glen = strlen (config->group);
  if (glen < 1 || glen > MCSEC_MIKE_MAX_STRING)
    return MCSEC_ERR_INVALID_ARG;
  /* a feedback member signs too: receivers accept its RTCP, and nothing
   * else, because its signature names it */
  if (mcsec_mike_role_has_sender_ids (config->role) && config->sam_key == NULL)
    return MCSEC_ERR_BAD_SIGNING_KEY;
  m = calloc (1, sizeof *m);
  if (m == NULL)
    return MCSEC_ERR_NO_MEMORY;
  m->msg = malloc (sizeof *m->msg);
  m->senders = calloc (MCSEC_MIKE_MAX_SENDERS, sizeof *m->senders);
  if (m->msg == NULL || m->senders == NULL) {
    mcsec_member_free (m);
    return MCSEC_ERR_NO_MEMORY;
  }
  if (config->sender_count > MCSEC_MIKE_MAX_SENDER_IDS) {
    mcsec_member_free (m);
    return MCSEC_ERR_INVALID_ARG;
  }
  memcpy (m->group, config->group, glen + 1);
  m->role = config->role;
  m->sender_count = config->sender_count ? config->sender_count : 1;
  if (config->sam_key) {
    mcsec_status_t st = mcsec_mike_public_key_der (
        config->sam_key, m->spki, sizeof m->spki, &m->spki_len);
    if (st) {
      mcsec_member_free (m);
      return st;
    }
  }
  *out = m;
  return MCSEC_OK;
}

void
mcsec_member_free (mcsec_member_t *m)
{
  if (m == NULL)
    return;
  mcsec_mike_reader_clear (&m->reader);
  if (m->out) {
    OPENSSL_cleanse (m->out, m->out_cap);
    free (m->out);
  }
  free (m->senders);
  channel_drop (m);
  free (m->keyring);
  if (m->msg) {
    OPENSSL_cleanse (m->msg, sizeof *m->msg);
    free (m->msg);
  }
  EVP_PKEY_free (m->controller_key);
  OPENSSL_cleanse (m, sizeof *m);
  free (m);
}

mcsec_member_state_t
mcsec_member_state (const mcsec_member_t *m)
{
  return m->state;
}

uint64_t
mcsec_member_rejected_updates (const mcsec_member_t *m)
{
  return m->rejected;
}

uint64_t
mcsec_member_last_seq (const mcsec_member_t *m)
{
  return m->last_seq;
}

uint64_t
mcsec_member_generation (const mcsec_member_t *m)
{
  return m->generation;
}

/* Append a frame to the output (no attribute but what `fill` adds). */
static void
queue (mcsec_member_t *m, const uint8_t *frame, size_t len)
{
  if (m->out_cap - m->out_len < len) {
    size_t cap = m->out_cap ? m->out_cap * 2 : 1024;
    uint8_t *nb;
    while (cap - m->out_len < len)
      cap *= 2;
    nb = malloc (cap);
    if (nb == NULL)
      return; /* the peer times out and the connection is redone */
    if (m->out_len)
      memcpy (nb, m->out, m->out_len);
    free (m->out);
    m->out = nb;
    m->out_cap = cap;
  }
  memcpy (m->out + m->out_len, frame, len);
  m->out_len += len;
}

static void
queue_simple (mcsec_member_t *m, mcsec_mike_type_t type, uint64_t seq)
{
  uint8_t buf[64];
  mcsec_mike_builder_t b;
  size_t len;

  mcsec_mike_begin (&b, buf, sizeof buf, type);
  if (type == MCSEC_MIKE_ACK || type == MCSEC_MIKE_REPAIR)
    mcsec_mike_put_u64 (&b, MCSEC_MIKE_A_SEQ, seq);
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    queue (m, buf, len);
}

void
mcsec_member_connected (mcsec_member_t *m, uint64_t now_ms)
{
  uint8_t buf[MCSEC_MIKE_MAX_SPKI + 512];
  mcsec_mike_builder_t b;
  size_t len;

  if (m->state == MCSEC_MEMBER_REFUSED || m->state == MCSEC_MEMBER_EVICTED)
    return;
  m->out_len = 0;
  /* a new stream: what the last one left (a frame with keys, when its
   * handling failed) is wiped, as at a disconnect */
  mcsec_mike_reader_clear (&m->reader);
  m->welcomed = 0;
  m->state = MCSEC_MEMBER_JOINING;
  m->connected_ms = m->last_rx_ms = m->last_ping_ms = now_ms;
  mcsec_mike_begin (&b, buf, sizeof buf, MCSEC_MIKE_JOIN);
  mcsec_mike_put_string (&b, MCSEC_MIKE_A_GROUP, m->group);
  mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_ROLE, (uint8_t)m->role);
  if (m->spki_len)
    mcsec_mike_put (&b, MCSEC_MIKE_A_SIGNING_KEY, m->spki, m->spki_len);
  if (mcsec_mike_role_has_sender_ids (m->role))
    mcsec_mike_put_u8 (&b, MCSEC_MIKE_A_SENDER_COUNT, (uint8_t)m->sender_count);
  if (mcsec_mike_finish (&b, &len) == MCSEC_OK)
    queue (m, buf, len);
}

void
mcsec_member_disconnected (mcsec_member_t *m, uint64_t now_ms)
{
  (void)now_ms;
  mcsec_mike_reader_clear (&m->reader); /* wiped */
  m->out_len = 0;
  m->welcomed = 0;
  if (m->state == MCSEC_MEMBER_JOINED)
    m->state = MCSEC_MEMBER_DISCONNECTED;
  else if (m->state == MCSEC_MEMBER_JOINING)
    m->state = m->generation ? MCSEC_MEMBER_DISCONNECTED : MCSEC_MEMBER_IDLE;
}

void
mcsec_member_leave (mcsec_member_t *m)
{
  if (m->state == MCSEC_MEMBER_JOINED || m->state == MCSEC_MEMBER_JOINING)
    queue_simple (m, MCSEC_MIKE_LEAVE, 0);
}

size_t
mcsec_member_output (mcsec_member_t *m, const uint8_t **data)
{
  *data = m->out;
  return m->out_len;
}

void
mcsec_member_written (mcsec_member_t *m, size_t n)
{
  if (n > m->out_len)
    n = m->out_len;
  memmove (m->out, m->out + n, m->out_len - n);
  m->out_len -= n;
}

/* Which SAs are in use, as of now; 1 if that changed. */
static int
refresh_sas (mcsec_member_t *m, uint64_t now)
{
  int changed = 0;
  size_t i = 0;

  while (i < m->n_sas) {
    member_sa_t *sa = &m->sas[i];
    if (sa->retire_at <= now) {
      OPENSSL_cleanse (sa, sizeof *sa);
      memmove (sa, sa + 1, (m->n_sas - i - 1) * sizeof *sa);
      m->n_sas--;
      changed = 1;
      continue;
    }
    if (!sa->active && sa->activate_at <= now) {
      sa->active = 1;
      changed = 1;
    }
    i++;
  }
  return changed;
}

static void
reject (mcsec_member_t *m, mcsec_status_t st, uint64_t seq)
{
  mcsec_member_event_t *ev = push_event (m, MCSEC_MEMBER_EV_REJECTED);
  ev->status = st;
  ev->seq = seq;
  snprintf (ev->text, sizeof ev->text, "%s", mcsec_status_message (st));
  m->rejected++;
}

/* Install the SAs an update or a rekey lists (for reception at once, for
 * sending after their activation) and schedule the retirement of those it
 * no longer lists; `fresh`: the first update after a (re)join. */
static void
install_sas (mcsec_member_t *m, const mcsec_mike_sa_t *sas, size_t n_sas,
             uint32_t deactivation_ms, int fresh, uint64_t now)
{
  uint64_t newest = now;
  size_t i, j;

  for (i = 0; i < n_sas; i++) {
    const mcsec_mike_sa_t *u = &sas[i];
    member_sa_t *sa = NULL;
    for (j = 0; j < m->n_sas; j++)
      if (m->sas[j].spi == u->spi)
        sa = &m->sas[j];
    if (sa == NULL) {
      if (m->n_sas == MEMBER_MAX_SAS) {
        /* full: the oldest goes (it was retiring) */
        OPENSSL_cleanse (&m->sas[0], sizeof m->sas[0]);
        memmove (&m->sas[0], &m->sas[1], (m->n_sas - 1) * sizeof m->sas[0]);
        m->n_sas--;
      }
      sa = &m->sas[m->n_sas++];
      memset (sa, 0, sizeof *sa);
      sa->spi = u->spi;
      sa->activate_at = now + u->activate_in_ms;
    }
    sa->suite = u->suite;
    memcpy (sa->key, u->key, u->key_len);
    sa->key_len = u->key_len;
    sa->retire_at = NEVER;
    if (sa->activate_at > newest)
      newest = sa->activate_at;
  }
  /* SAs no longer listed: see below */
  for (j = 0; j < m->n_sas; j++) {
    int listed = 0;
    uint64_t until;
    for (i = 0; i < n_sas; i++)
      listed |= sas[i].spi == m->sas[j].spi;
    if (listed)
      continue;
    if (!m->sas[j].active) {
      /* withdrawn before anyone used it (the controller replaced it, say
       * after another leave): it must never become the sending SA */
      m->sas[j].retire_at = now;
      continue;
    }
    /* in use: kept until the newest SA is, and the overlap after it; the
     * first update after a rejoin may come from a restarted controller
     * while other members (senders still on the old SA) reconnect */
    until = newest + deactivation_ms + (fresh ? MCSEC_MIKE_REJOIN_GRACE_MS : 0);
    if (m->sas[j].retire_at == NEVER || m->sas[j].retire_at < until)
      m->sas[j].retire_at = until;
  }
  refresh_sas (m, now);
}

static void
set_senders (mcsec_member_t *m, const mcsec_mike_sender_t *senders, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    m->senders[i].sender_id = senders[i].sender_id;
    memcpy (m->senders[i].spki, senders[i].spki, senders[i].spki_len);
    m->senders[i].spki_len = senders[i].spki_len;
    m->senders[i].feedback = senders[i].feedback;
  }
  m->n_senders = n;
}

static void
add_rx_stats (mcsec_member_channel_stats_t *out, const mcsec_rekey_rx_t *rx)
{
  mcsec_rekey_rx_stats_t rs;
  mcsec_rekey_rx_stats (rx, &rs);
  out->datagrams += rs.datagrams;
  out->heartbeats += rs.heartbeats;
  out->duplicates += rs.duplicates;
  out->bad_signature += rs.bad_signature;
  out->malformed += rs.malformed;
  out->stale += rs.stale;
  out->too_far += rs.too_far;
}

static void
channel_drop (mcsec_member_t *m)
{
  if (m->rx) {
    add_rx_stats (&m->chan, m->rx);
    mcsec_rekey_rx_free (m->rx);
    m->rx = NULL;
  }
  if (m->keyring)
    mcsec_lkh_keyring_clear (m->keyring);
}

/* A key tree group's update: the member's path and the first rekey it
 * follows on the channel. */
static mcsec_status_t
take_path (mcsec_member_t *m, const mcsec_mike_msg_t *msg, uint64_t now)
{
  mcsec_lkh_key_t path[MCSEC_MIKE_MAX_PATH];
  mcsec_status_t st;

  if (!msg->has_next_rekey || msg->n_path == 0)
    return MCSEC_ERR_MALFORMED;
  if (m->keyring == NULL &&
      (m->keyring = calloc (1, sizeof *m->keyring)) == NULL)
    return MCSEC_ERR_NO_MEMORY;
  channel_drop (m);
  for (size_t i = 0; i < msg->n_path; i++) {
    const uint8_t *k;
    mcsec_mike_path_key (msg, i, &path[i].node, &k);
    memcpy (path[i].key, k, MCSEC_LKH_KEY_LEN);
  }
  mcsec_lkh_keyring_set (m->keyring, path, msg->n_path);
  OPENSSL_cleanse (path, sizeof path);
  st =
      mcsec_rekey_rx_new (m->group, m->controller_key, msg->next_rekey, &m->rx);
  if (st)
    return st;
  m->want_resync = 0;
  m->channel_heard_ms = m->silence_asked_ms = now;
  return MCSEC_OK;
}

/* In a group with per-sender SPIs every SA is a block whose base has the
 * Sender-ID's bits zero (docs/mike-protocol.md, "Per-sender SPIs"): 1 if
 * spi is not such a base. */
static int
spi_not_block_base (const mcsec_member_t *m, uint32_t spi)
{
  return m->spi_per_sender &&
         (spi & ((UINT32_C (1) << m->sender_id_bits) - 1)) != 0;
}

static mcsec_status_t
apply_update (mcsec_member_t *m, const mcsec_mike_msg_t *msg, uint64_t now)
{
  mcsec_status_t st;

  if (msg->group_len != strlen (m->group) ||
      memcmp (msg->group, m->group, msg->group_len) != 0) {
    reject (m, MCSEC_ERR_MALFORMED, msg->seq);
    return MCSEC_OK;
  }
  st = mcsec_mike_verify (msg, m->controller_key);
  if (st) {
    reject (m, st, msg->seq);
    return MCSEC_OK;
  }
  /* the first update on a new connection sets the baseline (TLS vouches
   * for its freshness); after that only newer ones */
  if (!m->fresh && msg->seq <= m->last_seq) {
    reject (m, MCSEC_ERR_STALE_UPDATE, msg->seq);
    return MCSEC_OK;
  }
  for (size_t i = 0; i < msg->n_sas; i++)
    if (spi_not_block_base (m, msg->sas[i].spi)) {
      reject (m, MCSEC_ERR_MALFORMED, msg->seq);
      return MCSEC_OK;
    }
  if (m->tree) {
    st = take_path (m, msg, now);
    if (st) {
      reject (m, st, msg->seq);
      return MCSEC_OK;
    }
  }
  install_sas (m, msg->sas, msg->n_sas, msg->deactivation_ms, m->fresh, now);
  set_senders (m, msg->senders, msg->n_senders);
  m->last_seq = msg->seq;
  m->fresh = 0;
  m->generation++;
  queue_simple (m, MCSEC_MIKE_ACK, msg->seq);
  if (m->state == MCSEC_MEMBER_JOINING) {
    m->state = MCSEC_MEMBER_JOINED;
    push_event (m, MCSEC_MEMBER_EV_JOINED)->seq = msg->seq;
  } else {
    push_event (m, MCSEC_MEMBER_EV_UPDATED)->seq = msg->seq;
  }
  return MCSEC_OK;
}

/* Apply the rekeys the channel completed, in order.  A rekey this member
 * cannot follow (an entry under its keys does not unwrap, or it does not
 * reach the new group key) means its path is wrong: it asks for a new one. */
static void
apply_rekeys (mcsec_member_t *m, uint64_t now)
{
  uint64_t seq;
  mcsec_rekey_t r;

  while (m->rx && !m->want_resync && mcsec_rekey_rx_next (m->rx, &seq, &r)) {
    uint8_t before[MCSEC_LKH_KEY_LEN], key[MCSEC_MIKE_MAX_KEY_LEN];
    mcsec_member_event_t *ev;
    const uint8_t *gk = mcsec_lkh_keyring_group_key (m->keyring);
    mcsec_status_t st = MCSEC_OK;
    int had = gk != NULL;

    if (had)
      memcpy (before, gk, sizeof before);
    if (r.sa && spi_not_block_base (m, r.sa->spi))
      st = MCSEC_ERR_MALFORMED; /* nothing of it applied: the path again */
    else
      mcsec_lkh_keyring_apply (m->keyring, r.entries, r.n, &st);
    gk = mcsec_lkh_keyring_group_key (m->keyring);
    if (st == MCSEC_OK &&
        (gk == NULL || (had && CRYPTO_memcmp (before, gk, sizeof before) == 0)))
      st = MCSEC_ERR_OUT_OF_SYNC; /* the new group key is out of reach */
    OPENSSL_cleanse (before, sizeof before);
    if (st == MCSEC_OK && r.sa) {
      mcsec_mike_sa_t sa = *r.sa;
      sa.key_len = mcsec_suite_key_material_len (sa.suite);
      sa.key = key;
      st = mcsec_lkh_derive_sa_key (gk, m->group, sa.spi, sa.suite, key,
                                    sa.key_len);
      if (st == MCSEC_OK)
        install_sas (m, &sa, 1, r.deactivation_ms, 0, now);
      OPENSSL_cleanse (key, sizeof key);
    }
    if (st) {
      reject (m, st, seq);
      m->want_resync = 1;
      return;
    }
    set_senders (m, r.senders, r.n_senders);
    m->chan.rekeys++;
    m->generation++;
    ev = push_event (m, MCSEC_MEMBER_EV_UPDATED);
    ev->seq = seq;
    snprintf (ev->text, sizeof ev->text, "rekey channel");
  }
}

int
mcsec_member_channel (const mcsec_member_t *m, char *address, size_t size,
                      uint16_t *port)
{
  if (!m->tree || m->state == MCSEC_MEMBER_EVICTED ||
      m->state == MCSEC_MEMBER_REFUSED)
    return 0;
  if (address && size)
    snprintf (address, size, "%s", m->channel_address);
  if (port)
    *port = m->channel_port;
  return 1;
}

mcsec_status_t
mcsec_member_datagram (mcsec_member_t *m, const uint8_t *data, size_t len,
                       uint64_t now_ms)
{
  mcsec_status_t st;

  if (m->rx == NULL || m->state == MCSEC_MEMBER_EVICTED)
    return MCSEC_ERR_INVALID_ARG;
  st = mcsec_rekey_rx_datagram (m->rx, data, len, now_ms);
  if (st == MCSEC_OK || st == MCSEC_ERR_STALE_UPDATE)
    m->channel_heard_ms = now_ms; /* the controller's, and it gets through */
  apply_rekeys (m, now_ms);
  return st;
}

void
mcsec_member_channel_stats (const mcsec_member_t *m,
                            mcsec_member_channel_stats_t *out)
{
  *out = m->chan;
  if (m->rx)
    add_rx_stats (out, m->rx);
}

static mcsec_status_t
handle_welcome (mcsec_member_t *m, const mcsec_mike_msg_t *msg)
{
  const uint8_t *p = msg->controller_key;
  EVP_PKEY *key;

  if (m->state != MCSEC_MEMBER_JOINING || m->welcomed ||
      msg->group_len != strlen (m->group) ||
      memcmp (msg->group, m->group, msg->group_len) != 0)
    return MCSEC_ERR_MALFORMED;
  if (mcsec_mike_role_has_sender_ids (m->role) &&
      msg->n_sender_ids != m->sender_count)
    return MCSEC_ERR_MALFORMED;
  for (size_t i = 0; i < msg->n_sender_ids; i++)
    if (msg->sender_id_bits < 32 &&
        msg->sender_ids[i] >> msg->sender_id_bits != 0)
      return MCSEC_ERR_MALFORMED;
  /* a block of SPIs leaves the base 8 bits at least */
  if (msg->spi_per_sender &&
      msg->sender_id_bits > MCSEC_SPI_PER_SENDER_BITS_MAX)
    return MCSEC_ERR_MALFORMED;
  key = d2i_PUBKEY (NULL, &p, (long)msg->controller_key_len);
  if (key == NULL || EVP_PKEY_get_base_id (key) != EVP_PKEY_ED25519 ||
      p != msg->controller_key + msg->controller_key_len) {
    EVP_PKEY_free (key);
    return MCSEC_ERR_MALFORMED;
  }
  EVP_PKEY_free (m->controller_key);
  m->controller_key = key;
  copy_text (m->identity, msg->identity, msg->identity_len);
  /* new Sender-IDs are a change even before any SA changes */
  m->generation++;
  m->may_send = (m->role & MCSEC_MIKE_ROLE_SENDER) != 0;
  m->n_sender_ids =
      mcsec_mike_role_has_sender_ids (m->role) ? msg->n_sender_ids : 0;
  memcpy (m->sender_ids, msg->sender_ids,
          m->n_sender_ids * sizeof m->sender_ids[0]);
  /* the group's SPIs changed meaning (a controller restarted with the
   * other setting, or other blocks): the SAs held are not what the MSA
   * would say of them */
  if (m->n_sas &&
      (m->spi_per_sender != msg->spi_per_sender ||
       (msg->spi_per_sender && m->sender_id_bits != msg->sender_id_bits))) {
    OPENSSL_cleanse (m->sas, sizeof m->sas);
    m->n_sas = 0;
  }
  m->sender_id_bits = msg->sender_id_bits;
  m->sam = msg->has_sam ? msg->sam : 0;
  m->spi_per_sender = msg->spi_per_sender;
  copy_text (m->address, msg->address, msg->address_len);
  m->port = msg->has_port ? msg->port : 0;
  /* a key tree group: rekeys come on this channel */
  m->tree = msg->channel_address != NULL && msg->has_channel_port;
  copy_text (m->channel_address, msg->channel_address,
             msg->channel_address_len);
  m->channel_port = msg->channel_port;
  m->welcomed = 1;
  m->fresh = 1;
  return MCSEC_OK;
}

/* REFUSE reasons after which another controller (of a cluster) may take
 * the member in: not the end of the membership. */
static int
refusal_not_final (unsigned reason)
{
  return reason == MCSEC_MIKE_REASON_NOT_LEADER ||
         reason == MCSEC_MIKE_REASON_UNAVAILABLE;
}

static mcsec_status_t
handle_frame (mcsec_member_t *m, const uint8_t *frame, size_t len, uint64_t now)
{
  mcsec_mike_msg_t *msg = m->msg;
  mcsec_member_event_t *ev;
  mcsec_status_t st = mcsec_mike_parse (frame, len, msg);

  if (st) {
    /* a damaged update is counted like any rejected one; the connection
     * is redone since the stream can no longer be trusted */
    reject (m, st, 0);
    return MCSEC_ERR_MALFORMED;
  }
  switch (msg->type) {
  case MCSEC_MIKE_WELCOME:
    return handle_welcome (m, msg);
  case MCSEC_MIKE_UPDATE:
    if (!m->welcomed)
      return MCSEC_ERR_MALFORMED;
    return apply_update (m, msg, now);
  case MCSEC_MIKE_REFUSE:
  case MCSEC_MIKE_EVICTED:
    if (msg->type == MCSEC_MIKE_REFUSE && m->state != MCSEC_MEMBER_JOINING)
      return MCSEC_ERR_MALFORMED;
    if (msg->type == MCSEC_MIKE_REFUSE && msg->has_reason &&
        refusal_not_final (msg->reason)) {
      /* this controller cannot take us in, another may: keep every key,
       * wait for the transport to go (the client tries elsewhere) */
      ev = push_event (m, MCSEC_MEMBER_EV_REDIRECTED);
      ev->reason = msg->reason;
      copy_text (ev->text, msg->text, msg->text_len);
      m->state = m->generation ? MCSEC_MEMBER_DISCONNECTED : MCSEC_MEMBER_IDLE;
      m->welcomed = 0;
      return MCSEC_OK;
    }
    ev = push_event (m, msg->type == MCSEC_MIKE_REFUSE
                            ? MCSEC_MEMBER_EV_REFUSED
                            : MCSEC_MEMBER_EV_EVICTED);
    ev->reason = msg->has_reason ? msg->reason : 0;
    copy_text (ev->text, msg->text, msg->text_len);
    m->state = msg->type == MCSEC_MIKE_REFUSE ? MCSEC_MEMBER_REFUSED
                                              : MCSEC_MEMBER_EVICTED;
    channel_drop (m);
    return MCSEC_OK;
  case MCSEC_MIKE_PING:
    queue_simple (m, MCSEC_MIKE_PONG, 0);
    return MCSEC_OK;
  case MCSEC_MIKE_PONG:
    return MCSEC_OK;
  case MCSEC_MIKE_REKEY:
  case MCSEC_MIKE_HEARTBEAT:
    /* a repair: the channel's datagrams, resent over the connection */
    if (m->rx == NULL)
      return MCSEC_ERR_MALFORMED;
    (void)mcsec_rekey_rx_datagram (m->rx, frame, len, now);
    apply_rekeys (m, now);
    return MCSEC_OK;
  default: /* JOIN, ACK, LEAVE, REPAIR are not for members */
    return MCSEC_ERR_MALFORMED;
  }
}

mcsec_status_t
mcsec_member_receive (mcsec_member_t *m, const uint8_t *data, size_t len,
                      uint64_t now_ms)
{
  const uint8_t *frame;
  size_t flen;
  mcsec_status_t st;

  if (m->state != MCSEC_MEMBER_JOINING && m->state != MCSEC_MEMBER_JOINED)
    return MCSEC_ERR_INVALID_ARG;
  st = mcsec_mike_reader_feed (&m->reader, data, len);
  if (st)
    return st;
  m->last_rx_ms = now_ms;
  while ((flen = mcsec_mike_reader_next (&m->reader, &frame)) > 0) {
    st = handle_frame (m, frame, flen, now_ms);
    if (st)
      return st;
    if (m->state != MCSEC_MEMBER_JOINING && m->state != MCSEC_MEMBER_JOINED)
      return MCSEC_OK; /* nothing after the last word counts (refused,
                          evicted, or sent elsewhere) */
  }
  return MCSEC_OK;
}

/* The rekey channel's repairs, over the connection: a gap (REPAIR from the
 * first missing SEQ), a path that no longer works (REPAIR 0: resync), a
 * silent channel (REPAIR from the next SEQ: anything newer, if any).
 * Returns the next deadline. */
static uint64_t
channel_tick (mcsec_member_t *m, uint64_t now, uint64_t next)
{
  uint64_t from;

  if (m->want_resync) {
    if (m->resync_asked_ms == 0 ||
        now - m->resync_asked_ms >= MCSEC_REKEY_REPAIR_RETRY_MS) {
      queue_simple (m, MCSEC_MIKE_REPAIR, 0);
      m->resync_asked_ms = now;
      m->chan.resyncs++;
    }
    return MIN (next, m->resync_asked_ms + MCSEC_REKEY_REPAIR_RETRY_MS);
  }
  m->resync_asked_ms = 0;
  if (mcsec_rekey_rx_repair (m->rx, now, &from)) {
    queue_simple (m, MCSEC_MIKE_REPAIR, from);
    m->chan.repairs++;
  }
  if (mcsec_rekey_rx_latest (m->rx) >= mcsec_rekey_rx_expected (m->rx))
    next = MIN (next, now + MCSEC_REKEY_REPAIR_DELAY_MS);
  if (now - m->channel_heard_ms >= MCSEC_MIKE_CHANNEL_SILENT_MS &&
      now - m->silence_asked_ms >= MCSEC_MIKE_CHANNEL_SILENT_MS) {
    queue_simple (m, MCSEC_MIKE_REPAIR, mcsec_rekey_rx_expected (m->rx));
    m->silence_asked_ms = now;
    m->chan.repairs++;
  }
  return MIN (next, MAX (m->channel_heard_ms, m->silence_asked_ms) +
                        MCSEC_MIKE_CHANNEL_SILENT_MS);
}

uint64_t
mcsec_member_tick (mcsec_member_t *m, uint64_t now_ms, int *dead)
{
  uint64_t next = now_ms + MCSEC_MIKE_PING_MS;
  size_t i;

  *dead = 0;
  if (refresh_sas (m, now_ms)) {
    m->generation++;
    push_event (m, MCSEC_MEMBER_EV_SA_CHANGED);
  }
  for (i = 0; i < m->n_sas; i++) {
    if (!m->sas[i].active && m->sas[i].activate_at < next)
      next = m->sas[i].activate_at;
    if (m->sas[i].retire_at < next)
      next = m->sas[i].retire_at;
  }
  if (m->state == MCSEC_MEMBER_JOINING &&
      now_ms - m->connected_ms >= MCSEC_MIKE_JOIN_TIMEOUT_MS)
    *dead = 1;
  if (m->state == MCSEC_MEMBER_JOINED && m->rx)
    next = channel_tick (m, now_ms, next);
  if (m->state == MCSEC_MEMBER_JOINED) {
    if (now_ms - m->last_rx_ms >= MCSEC_MIKE_DEAD_MS)
      *dead = 1;
    if (now_ms - m->last_ping_ms >= MCSEC_MIKE_PING_MS) {
      queue_simple (m, MCSEC_MIKE_PING, 0);
      m->last_ping_ms = now_ms;
    }
    if (m->last_ping_ms + MCSEC_MIKE_PING_MS < next)
      next = m->last_ping_ms + MCSEC_MIKE_PING_MS;
  }
  return next;
}

int
mcsec_member_next_event (mcsec_member_t *m, mcsec_member_event_t *ev)
{
  if (m->ev_count == 0)
    return 0;
  *ev = m->events[m->ev_head];
  m->ev_head = (m->ev_head + 1) % MEMBER_EVENTS;
  m->ev_count--;
  return 1;
}

mcsec_status_t
mcsec_member_msa (const mcsec_member_t *m, mcsec_msa_t **out)
{
  mcsec_msa_t *msa;
  const member_sa_t *sending = NULL;
  size_t i;

  if (m == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  if (m->n_sas == 0)
    return MCSEC_OK;
  msa = calloc (1, sizeof *msa);
  if (msa == NULL)
    return MCSEC_ERR_NO_MEMORY;
  msa->generation = m->generation;
  msa->may_send = m->may_send;
  msa->role = m->role;
  msa->n_sender_ids = m->n_sender_ids;
  memcpy (msa->sender_ids, m->sender_ids, sizeof msa->sender_ids);
  msa->sender_id = m->n_sender_ids ? m->sender_ids[0] : 0;
  msa->sender_id_bits = m->sender_id_bits;
  msa->sam = m->sam;
  memcpy (msa->identity, m->identity, sizeof msa->identity);
  msa->spi_per_sender = m->spi_per_sender;
  memcpy (msa->address, m->address, sizeof msa->address);
  msa->port = m->port;
  /* send with the SA activated last */
  for (i = 0; i < m->n_sas; i++)
    if (m->sas[i].active &&
        (sending == NULL || m->sas[i].activate_at >= sending->activate_at))
      sending = &m->sas[i];
  for (i = 0; i < m->n_sas; i++) {
    mcsec_msa_sa_t *d = &msa->sas[msa->n_sas++];
    d->spi = m->sas[i].spi;
    d->suite = m->sas[i].suite;
    memcpy (d->key, m->sas[i].key, m->sas[i].key_len);
    d->key_len = m->sas[i].key_len;
    d->active = m->sas[i].active;
    d->sending = &m->sas[i] == sending;
    d->listed = m->sas[i].retire_at == NEVER;
  }
  msa->n_senders = m->n_senders;
  memcpy (msa->senders, m->senders, m->n_senders * sizeof m->senders[0]);
  *out = msa;
  return MCSEC_OK;
}

static mcsec_status_t
bind_senders (const mcsec_msa_t *msa, mcsec_sam_verifier_t *v,
              int with_feedback)
{
  uint32_t ids[MCSEC_MIKE_MAX_SENDERS];
  EVP_PKEY *keys[MCSEC_MIKE_MAX_SENDERS];
  size_t n = 0;
  mcsec_status_t st = MCSEC_OK;

  if (msa == NULL || v == NULL)
    return MCSEC_ERR_INVALID_ARG;
  for (size_t i = 0; i < msa->n_senders && i < MCSEC_MIKE_MAX_SENDERS; i++) {
    const uint8_t *p = msa->senders[i].spki;
    EVP_PKEY *k;
    if (msa->senders[i].feedback && !with_feedback)
      continue;
    k = d2i_PUBKEY (NULL, &p, (long)msa->senders[i].spki_len);
    if (k == NULL) {
      st = MCSEC_ERR_BAD_SIGNING_KEY;
      continue;
    }
    ids[n] = msa->senders[i].sender_id;
    keys[n++] = k;
  }
  for (size_t s = 0; s < msa->n_sas; s++) {
    uint32_t spi = msa->sas[s].spi;
    if (!msa->sas[s].listed)
      continue;
    mcsec_sam_verifier_retain (v, spi, ids, n);
    for (size_t i = 0; i < n; i++) {
      mcsec_status_t e =
          mcsec_sam_verifier_add_sender (v, spi, ids[i], keys[i]);
      if (e && st == MCSEC_OK)
        st = e; /* the first failure; the other senders are bound */
    }
  }
  for (size_t i = 0; i < n; i++)
    EVP_PKEY_free (keys[i]);
  return st;
}

mcsec_status_t
mcsec_msa_bind_senders (const mcsec_msa_t *msa, mcsec_sam_verifier_t *v)
{
  return bind_senders (msa, v, 0);
}

mcsec_status_t
mcsec_msa_bind_all_senders (const mcsec_msa_t *msa, mcsec_sam_verifier_t *v)
{
  return bind_senders (msa, v, 1);
}

void
mcsec_msa_free (mcsec_msa_t *msa)
{
  if (msa == NULL)
    return;
  OPENSSL_cleanse (msa, sizeof *msa);
  free (msa);
}
