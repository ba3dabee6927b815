/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The kernel follower of mcsec-join --kernel (kernel-xfrm.h): XFRM states
 * and a policy over netlink (libmnl), the ESP-in-UDP socket.
 */
#include "kernel-xfrm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <libmnl/libmnl.h>
#include <linux/xfrm.h>
#include <openssl/crypto.h>

#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif
#ifndef UDP_ENCAP_ESPINUDP
#define UDP_ENCAP_ESPINUDP 2
#endif

struct mcsec_kx {
  struct mnl_socket *nl;
  uint32_t portid, seq;
  int encap_fd, lock_fd;
  char address[INET_ADDRSTRLEN];
  struct in_addr addr;
  uint16_t port, inner_port;
  uint32_t reqid, window;
  int policy;         /* installed */
  GArray *spis;       /* guint32: the states installed, by SPI */
  int warned_senders; /* one state, several senders: said once */
  void (*log) (const char *line, void *data);
  void *data;
};

static void G_GNUC_PRINTF (2, 3) say (mcsec_kx_t *kx, const char *fmt, ...)
{
  va_list ap;
  gchar *line;
  if (kx->log == NULL)
    return;
  va_start (ap, fmt);
  line = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  kx->log (line, kx->data);
  g_free (line);
}

/* The kernel's name of a suite's ESP transform (the key is the suite's key
 * material: key, then the 4-byte salt). */
static const char *
aead_name (mcsec_suite_t suite)
{
  switch (suite) {
  case MCSEC_SUITE_AES_128_GCM:
  case MCSEC_SUITE_AES_256_GCM:
    return "rfc4106(gcm(aes))";
  case MCSEC_SUITE_CHACHA20_POLY1305:
    return "rfc7539esp(chacha20,poly1305)";
  case MCSEC_SUITE_AES_128_GMAC:
  case MCSEC_SUITE_AES_256_GMAC:
    return "rfc4543(gcm(aes))";
  }
  return NULL;
}

static struct nlmsghdr *
begin (mcsec_kx_t *kx, char *buf, uint16_t type, uint16_t flags)
{
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = ++kx->seq;
  return nlh;
}

/* Sends a request and reads its answer through cb (NULL: an ACK only)
 * until the ACK, an error or a dump's end: a request that is not a dump
 * must ask for the ACK (NLM_F_ACK).  0, or -1 with errno. */
static int
request (mcsec_kx_t *kx, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  uint32_t seq = nlh->nlmsg_seq;
  ssize_t n;
  int rc = MNL_CB_ERROR, e;

  /* what an earlier request left unread (an answer after an error, the
   * rest of a dump) must not pass for this one's */
  while (recv (mnl_socket_get_fd (kx->nl), buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
  if (mnl_socket_sendto (kx->nl, nlh, nlh->nlmsg_len) < 0)
    return -1;
  do {
    n = mnl_socket_recvfrom (kx->nl, buf, sizeof buf);
    if (n < 0)
      break;
    rc = mnl_cb_run (buf, (size_t)n, seq, kx->portid, cb, data);
  } while (rc > MNL_CB_STOP);
  e = errno;
  /* an error's answer may quote the request, a key with it (the socket
   * asks for NETLINK_CAP_ACK, where the kernel has it) */
  OPENSSL_cleanse (buf, sizeof buf);
  errno = e;
  return n < 0 || rc < 0 ? -1 : 0;
}

static void fail (char **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
static void
fail (char **error, const char *fmt, ...)
{
  va_list ap;
  if (error == NULL || *error != NULL)
    return;
  va_start (ap, fmt);
  *error = g_strdup_vprintf (fmt, ap);
  va_end (ap);
}

static const char *
errno_text (int e)
{
  return e == EPERM ? "Operation not permitted (needs CAP_NET_ADMIN)"
                    : g_strerror (e);
}

static void
no_limits (struct xfrm_lifetime_cfg *lft)
{
  lft->soft_byte_limit = lft->hard_byte_limit = XFRM_INF;
  lft->soft_packet_limit = lft->hard_packet_limit = XFRM_INF;
}

/* What the policy covers, and what each state takes: UDP to the inner
 * port at the group address (the kernel checks a state's selector
 * against what it decrypted: nothing else comes through our states). */
static void
selector (mcsec_kx_t *kx, struct xfrm_selector *sel)
{
  sel->daddr.a4 = kx->addr.s_addr;
  sel->prefixlen_d = 32;
  sel->family = AF_INET;
  sel->proto = IPPROTO_UDP;
  sel->dport = htons (kx->inner_port);
  sel->dport_mask = 0xffff;
}

/* The reqid of a state (GETSA) or of a policy's first template
 * (GETPOLICY), in *data; left alone for anything else. */
static int
reqid_cb (const struct nlmsghdr *nlh, void *data)
{
  uint32_t *reqid = data;
  if (nlh->nlmsg_type == XFRM_MSG_NEWSA &&
      mnl_nlmsg_get_payload_len (nlh) >= sizeof (struct xfrm_usersa_info)) {
    const struct xfrm_usersa_info *p = mnl_nlmsg_get_payload (nlh);
    *reqid = p->reqid;
  } else if (nlh->nlmsg_type == XFRM_MSG_NEWPOLICY &&
             mnl_nlmsg_get_payload_len (nlh) >=
                 sizeof (struct xfrm_userpolicy_info)) {
    const struct nlattr *a;
    mnl_attr_for_each (a, nlh, sizeof (struct xfrm_userpolicy_info))
    {
      if (mnl_attr_get_type (a) == XFRMA_TMPL &&
          mnl_attr_get_payload_len (a) >= sizeof (struct xfrm_user_tmpl)) {
        const struct xfrm_user_tmpl *t = mnl_attr_get_payload (a);
        *reqid = t->reqid;
        break;
      }
    }
  }
  return MNL_CB_OK;
}

/* The reqid of our address's state for spi in *reqid: 0, or -1 with
 * errno (ESRCH: no such state). */
static int
state_reqid (mcsec_kx_t *kx, uint32_t spi, uint32_t *reqid)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  /* (with an ACK after the answer, which ends the request) */
  struct nlmsghdr *nlh = begin (kx, buf, XFRM_MSG_GETSA, NLM_F_ACK);
  struct xfrm_usersa_id *id = mnl_nlmsg_put_extra_header (nlh, sizeof *id);

  id->daddr.a4 = kx->addr.s_addr;
  id->spi = htonl (spi);
  id->family = AF_INET;
  id->proto = IPPROTO_ESP;
  *reqid = 0;
  /* (the answer holds the state's key: request() wipes what it read) */
  return request (kx, nlh, reqid_cb, reqid);
}

static int
state_add (mcsec_kx_t *kx, uint32_t spi, const mcsec_msa_sa_t *sa, char **error)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  /* the attributes end in flexible arrays: room for them behind */
  union {
    struct xfrm_algo_aead a;
    unsigned char room[sizeof (struct xfrm_algo_aead) + MCSEC_MIKE_MAX_KEY_LEN];
  } aead;
  union {
    struct xfrm_replay_state_esn r;
    unsigned char room[sizeof (struct xfrm_replay_state_esn) + 4096 / 8];
  } replay;
  struct xfrm_encap_tmpl encap;
  struct xfrm_usersa_info *p;
  struct nlmsghdr *nlh;
  const char *name = aead_name (sa->suite);
  int rc, e;

  if (name == NULL || sa->key_len > MCSEC_MIKE_MAX_KEY_LEN) {
    fail (error, "SPI 0x%08x: suite %d has no kernel transform", spi,
          (int)sa->suite);
    return -1;
  }
  nlh = begin (kx, buf, XFRM_MSG_NEWSA, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  p = mnl_nlmsg_put_extra_header (nlh, sizeof *p);
  selector (kx, &p->sel);
  p->id.daddr.a4 = kx->addr.s_addr;
  p->id.spi = htonl (spi);
  p->id.proto = IPPROTO_ESP;
  p->family = AF_INET;
  p->mode = XFRM_MODE_TRANSPORT;
  p->reqid = kx->reqid;
  /* the window is XFRMA_REPLAY_ESN_VAL's (a bitmap of any size); the
   * kernel wants this one 0 then */
  p->replay_window = 0;
  no_limits (&p->lft);

  memset (&aead, 0, sizeof aead);
  g_strlcpy (aead.a.alg_name, name, sizeof aead.a.alg_name);
  aead.a.alg_key_len = (unsigned)(sa->key_len * 8);
  aead.a.alg_icv_len = 128;
  memcpy (aead.a.alg_key, sa->key, sa->key_len);
  mnl_attr_put (nlh, XFRMA_ALG_AEAD, sizeof aead.a + sa->key_len, &aead);

  memset (&encap, 0, sizeof encap);
  encap.encap_type = UDP_ENCAP_ESPINUDP;
  encap.encap_dport = htons (kx->port);
  mnl_attr_put (nlh, XFRMA_ENCAP, sizeof encap, &encap);

  memset (&replay, 0, sizeof replay);
  replay.r.bmp_len = kx->window / 32;
  replay.r.replay_window = kx->window;
  mnl_attr_put (nlh, XFRMA_REPLAY_ESN_VAL,
                sizeof replay.r + replay.r.bmp_len * sizeof (uint32_t),
                &replay);

  rc = request (kx, nlh, NULL, NULL);
  e = errno;
  /* the key went into the message and its attribute */
  OPENSSL_cleanse (buf, sizeof buf);
  OPENSSL_cleanse (&aead, sizeof aead);
  if (rc < 0 && e == EEXIST) {
    /* ours already (an add whose answer was lost): taken as it is; not
     * ours: someone else's state holds the SPI */
    uint32_t reqid;
    if (state_reqid (kx, spi, &reqid) == 0 && reqid == kx->reqid)
      return 0;
    fail (error,
          "cannot add the XFRM state for SPI 0x%08x: a state that is "
          "not this follower's (reqid 0x%08x) holds it",
          spi, reqid);
    return -1;
  }
  if (rc < 0) {
    fail (error, "cannot add the XFRM state for SPI 0x%08x: %s", spi,
          errno_text (e));
    return -1;
  }
  return 0;
}

static int
state_del (mcsec_kx_t *kx, uint32_t spi)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = begin (kx, buf, XFRM_MSG_DELSA, NLM_F_ACK);
  struct xfrm_usersa_id *id = mnl_nlmsg_put_extra_header (nlh, sizeof *id);

  id->daddr.a4 = kx->addr.s_addr;
  id->spi = htonl (spi);
  id->family = AF_INET;
  id->proto = IPPROTO_ESP;
  return request (kx, nlh, NULL, NULL);
}

/* Inbound: UDP to the inner port at the group address is accepted only
 * when it came through ESP in transport mode with one of our states (the
 * template's reqid).  Not the outer ESP-in-UDP packet: it goes to the
 * group's port, never the inner one (docs/linux-ipsec.md, "Pitfalls"). */
static int
policy_set (mcsec_kx_t *kx, int add)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh;

  if (add) {
    struct xfrm_userpolicy_info *p;
    struct xfrm_user_tmpl t;
    /* never replaces one: a policy of someone else's for the same
     * traffic is refused (EEXIST), not taken over */
    nlh = begin (kx, buf, XFRM_MSG_NEWPOLICY,
                 NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    p = mnl_nlmsg_put_extra_header (nlh, sizeof *p);
    selector (kx, &p->sel);
    no_limits (&p->lft);
    p->dir = XFRM_POLICY_IN;
    p->action = XFRM_POLICY_ALLOW;
    p->share = XFRM_SHARE_ANY;
    memset (&t, 0, sizeof t);
    t.id.proto = IPPROTO_ESP;
    t.family = AF_INET;
    t.reqid = kx->reqid;
    t.mode = XFRM_MODE_TRANSPORT;
    t.share = XFRM_SHARE_ANY;
    t.aalgos = t.ealgos = t.calgos = ~0u;
    mnl_attr_put (nlh, XFRMA_TMPL, sizeof t, &t);
  } else {
    struct xfrm_userpolicy_id *id;
    nlh = begin (kx, buf, XFRM_MSG_DELPOLICY, NLM_F_ACK);
    id = mnl_nlmsg_put_extra_header (nlh, sizeof *id);
    selector (kx, &id->sel);
    id->dir = XFRM_POLICY_IN;
  }
  return request (kx, nlh, NULL, NULL);
}

/* The reqid of the first template of the inbound policy for our selector
 * in *reqid: 0, or -1 with errno (ENOENT: no such policy). */
static int
policy_reqid (mcsec_kx_t *kx, uint32_t *reqid)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = begin (kx, buf, XFRM_MSG_GETPOLICY, NLM_F_ACK);
  struct xfrm_userpolicy_id *id = mnl_nlmsg_put_extra_header (nlh, sizeof *id);

  selector (kx, &id->sel);
  id->dir = XFRM_POLICY_IN;
  *reqid = 0;
  return request (kx, nlh, reqid_cb, reqid);
}

/* A state dump's entry: ours (reqid, address, ESP) goes in the list. */
static int
leftover_cb (const struct nlmsghdr *nlh, void *data)
{
  mcsec_kx_t *kx = data;
  const struct xfrm_usersa_info *p;

  if (nlh->nlmsg_type != XFRM_MSG_NEWSA ||
      mnl_nlmsg_get_payload_len (nlh) < sizeof *p)
    return MNL_CB_OK;
  p = mnl_nlmsg_get_payload (nlh);
  if (p->reqid == kx->reqid && p->family == AF_INET &&
      p->id.proto == IPPROTO_ESP && p->id.daddr.a4 == kx->addr.s_addr) {
    guint32 spi = ntohl (p->id.spi);
    g_array_append_val (kx->spis, spi);
  }
  return MNL_CB_OK;
}

/* States with our reqid for our address that a killed follower left:
 * found with a dump, removed. */
static int
remove_leftovers (mcsec_kx_t *kx, char **error)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = begin (kx, buf, XFRM_MSG_GETSA, NLM_F_DUMP);
  struct xfrm_address_filter filter = {.family = AF_INET, .dplen = 32};
  uint32_t reqid;

  /* ESP states for our address only (the answers hold keys) */
  filter.daddr.a4 = kx->addr.s_addr;
  mnl_attr_put (nlh, XFRMA_ADDRESS_FILTER, sizeof filter, &filter);
  mnl_attr_put_u8 (nlh, XFRMA_PROTO, IPPROTO_ESP);
  if (request (kx, nlh, leftover_cb, kx) < 0) {
    fail (error, "cannot list the kernel's XFRM states: %s",
          errno_text (errno));
    return -1;
  }
  for (guint i = 0; i < kx->spis->len; i++) {
    guint32 spi = g_array_index (kx->spis, guint32, i);
    if (state_del (kx, spi) == 0)
      say (kx, "removed-leftover spi=0x%08x", spi);
  }
  g_array_set_size (kx->spis, 0);
  if (policy_reqid (kx, &reqid) < 0) {
    if (errno != ENOENT) {
      fail (error, "cannot read the kernel's XFRM policies: %s",
            errno_text (errno));
      return -1;
    }
  } else if (reqid == kx->reqid) {
    if (policy_set (kx, 0) == 0)
      say (kx, "removed-leftover policy");
  } else {
    fail (error,
          "an inbound XFRM policy for UDP to %s:%u exists and is not a "
          "follower's with reqid 0x%08x (its template's reqid: 0x%08x); "
          "remove it, or give another --inner-udp-port",
          kx->address, kx->inner_port, kx->reqid, reqid);
    return -1;
  }
  return 0;
}

/* One follower per reqid and address: an abstract Unix socket named
 * after them, held while the follower runs (the kernel frees the name
 * when the process ends, however it ends).  Only the holder may call
 * states with that reqid leftovers. */
static int
take_lock (mcsec_kx_t *kx, char **error)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  int n = snprintf (sun.sun_path + 1, sizeof sun.sun_path - 1,
                    "mcsec-kernel-follower/%08x/%s", kx->reqid, kx->address);
  socklen_t len =
      (socklen_t)(offsetof (struct sockaddr_un, sun_path) + 1 + (size_t)n);

  kx->lock_fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (kx->lock_fd < 0 || bind (kx->lock_fd, (struct sockaddr *)&sun, len) < 0) {
    if (errno == EADDRINUSE)
      fail (error,
            "another follower holds the kernel's states for %s with reqid "
            "0x%08x (two groups on one address need their own "
            "--kernel-reqid)",
            kx->address, kx->reqid);
    else
      fail (error, "cannot take the follower's lock: %s", g_strerror (errno));
    return -1;
  }
  return 0;
}

/* lo's default (and any interface's, when set): the inbound policy is not
 * checked there, so plain datagrams to the inner port come through */
static void
warn_disable_policy (mcsec_kx_t *kx, const char *interface)
{
  const char *ifs[] = {"all",
                       interface && *interface ? interface
                       : (ntohl (kx->addr.s_addr) >> 24) == 127 ? "lo"
                                                                : NULL};
  for (guint i = 0; i < G_N_ELEMENTS (ifs); i++) {
    gchar *path, *text = NULL;
    if (ifs[i] == NULL)
      continue;
    path =
        g_strdup_printf ("/proc/sys/net/ipv4/conf/%s/disable_policy", ifs[i]);
    if (g_file_get_contents (path, &text, NULL, NULL) && text[0] == '1')
      say (kx,
           "warning: %s is 1: the kernel does not check the inbound "
           "policy on %s, and plain datagrams to port %u are delivered",
           path, ifs[i], kx->inner_port);
    g_free (text);
    g_free (path);
  }
}

static int
open_encap (mcsec_kx_t *kx, const char *interface, char **error)
{
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons (kx->port),
                            .sin_addr = kx->addr};
  int one = 1, type = UDP_ENCAP_ESPINUDP;

  kx->encap_fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (kx->encap_fd < 0 ||
      setsockopt (kx->encap_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) <
          0 ||
      bind (kx->encap_fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    fail (error, "cannot bind the ESP-in-UDP socket to %s:%u: %s", kx->address,
          kx->port, g_strerror (errno));
    return -1;
  }
  if (setsockopt (kx->encap_fd, IPPROTO_UDP, UDP_ENCAP, &type, sizeof type) <
      0) {
    fail (error, "cannot make %s:%u an ESP-in-UDP socket: %s", kx->address,
          kx->port, g_strerror (errno));
    return -1;
  }
  if (IN_MULTICAST (ntohl (kx->addr.s_addr))) {
    struct ip_mreqn mr = {.imr_multiaddr = kx->addr};
    if (interface && *interface) {
      mr.imr_ifindex = (int)if_nametoindex (interface);
      if (mr.imr_ifindex == 0) {
        fail (error, "--kernel-interface %s: %s", interface,
              g_strerror (errno));
        return -1;
      }
    }
    if (setsockopt (kx->encap_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
                    sizeof mr) < 0) {
      fail (error, "cannot join %s: %s", kx->address, g_strerror (errno));
      return -1;
    }
  }
  return 0;
}

mcsec_kx_t *
mcsec_kx_new (const mcsec_kx_config_t *cfg, char **error)
{
  mcsec_kx_t *kx = g_new0 (mcsec_kx_t, 1);

  kx->encap_fd = kx->lock_fd = -1;
  kx->spis = g_array_new (FALSE, FALSE, sizeof (guint32));
  kx->port = cfg->port;
  kx->inner_port = cfg->inner_port;
  kx->reqid = cfg->reqid ? cfg->reqid : MCSEC_KX_REQID_DEFAULT;
  kx->window = cfg->replay_window ? cfg->replay_window : 128;
  kx->log = cfg->log;
  kx->data = cfg->data;
  kx->seq = (uint32_t)time (NULL);
  if (cfg->address == NULL ||
      inet_pton (AF_INET, cfg->address, &kx->addr) != 1) {
    fail (error,
          "the group's address '%s' is not a numeric IPv4 address "
          "(the kernel follower takes IPv4 groups only)",
          cfg->address ? cfg->address : "");
    goto fail;
  }
  inet_ntop (AF_INET, &kx->addr, kx->address, sizeof kx->address);
  if (kx->port == 0 || kx->inner_port == 0 || kx->inner_port == kx->port) {
    fail (error,
          "the group's port (%u) and the inner UDP port (%u) must "
          "be set and differ",
          kx->port, kx->inner_port);
    goto fail;
  }
  if (kx->window < 32 || kx->window > 4096 || kx->window % 32) {
    fail (error, "replay window %u: 32..4096, a multiple of 32", kx->window);
    goto fail;
  }
  if (take_lock (kx, error) < 0)
    goto fail;
  kx->nl = mnl_socket_open (NETLINK_XFRM);
  if (kx->nl == NULL || mnl_socket_bind (kx->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    fail (error, "cannot open the kernel's XFRM netlink socket: %s",
          errno_text (errno));
    goto fail;
  }
  kx->portid = mnl_socket_get_portid (kx->nl);
  {
    /* errors answered without a copy of the request (its key); an
     * answer that never comes is an error after 5 s, not a hang */
    int one = 1;
    struct timeval tv = {.tv_sec = 5};
    mnl_socket_setsockopt (kx->nl, NETLINK_CAP_ACK, &one, sizeof one);
    setsockopt (mnl_socket_get_fd (kx->nl), SOL_SOCKET, SO_RCVTIMEO, &tv,
                sizeof tv);
  }
  if (remove_leftovers (kx, error) < 0 ||
      open_encap (kx, cfg->interface, error) < 0)
    goto fail;
  if (policy_set (kx, 1) < 0) {
    fail (error, "cannot add the inbound XFRM policy: %s", errno_text (errno));
    goto fail;
  }
  kx->policy = 1;
  say (kx,
       "policy dst=%s proto=udp dport=%u dir=in tmpl=esp/transport "
       "reqid=0x%08x",
       kx->address, kx->inner_port, kx->reqid);
  warn_disable_policy (kx, cfg->interface);
  return kx;
fail:
  mcsec_kx_free (kx);
  return NULL;
}

static gboolean
has_spi (GArray *a, guint32 spi)
{
  for (guint i = 0; i < a->len; i++)
    if (g_array_index (a, guint32, i) == spi)
      return TRUE;
  return FALSE;
}

int
mcsec_kx_sync (mcsec_kx_t *kx, const mcsec_msa_t *msa, char **error)
{
  GArray *want = g_array_new (FALSE, FALSE, sizeof (guint32));
  size_t n_media = 0;
  int rc = 0;

  for (size_t k = 0; k < msa->n_senders; k++)
    n_media += !msa->senders[k].feedback;
  if (!msa->spi_per_sender && n_media > 1 && !kx->warned_senders) {
    say (kx,
         "warning: %zu senders share each state's replay window: the "
         "kernel drops all but one sender's packets as replays (the "
         "group needs spi-per-sender = true)",
         n_media);
    kx->warned_senders = 1;
  }
  /* install first, remove after: a rekey never leaves a gap */
  for (size_t i = 0; i < msa->n_sas; i++) {
    const mcsec_msa_sa_t *sa = &msa->sas[i];
    for (size_t k = 0; k < (msa->spi_per_sender ? msa->n_senders : 1); k++) {
      /* feedback members send RTCP only, a rule the kernel cannot keep:
       * their datagrams are not let in */
      guint32 sid = msa->spi_per_sender ? msa->senders[k].sender_id : 0;
      guint32 spi = sa->spi | sid;
      if (msa->spi_per_sender && (msa->senders[k].feedback || sid == 0 ||
                                  sid >> msa->sender_id_bits != 0))
        continue;
      if (has_spi (want, spi))
        continue;
      g_array_append_val (want, spi);
      if (has_spi (kx->spis, spi))
        continue;
      if (state_add (kx, spi, sa, error) < 0) {
        rc = -1;
        continue;
      }
      g_array_append_val (kx->spis, spi);
      if (msa->spi_per_sender)
        say (kx, "installed spi=0x%08x sa=0x%08x sender-id=%u%s", spi, sa->spi,
             msa->senders[k].sender_id,
             sa->active ? "" : " (before its activation)");
      else
        say (kx, "installed spi=0x%08x%s", spi,
             sa->active ? "" : " (before its activation)");
    }
  }
  for (guint i = 0; i < kx->spis->len;) {
    guint32 spi = g_array_index (kx->spis, guint32, i);
    if (has_spi (want, spi)) {
      i++;
      continue;
    }
    if (state_del (kx, spi) < 0 && errno != ESRCH) {
      fail (error, "cannot remove the XFRM state for SPI 0x%08x: %s", spi,
            errno_text (errno));
      rc = -1;
      i++;
      continue;
    }
    say (kx, "removed spi=0x%08x", spi);
    g_array_remove_index_fast (kx->spis, i);
  }
  g_array_free (want, TRUE);
  return rc;
}

int
mcsec_kx_follows (const mcsec_kx_t *kx, const char *address, uint16_t port)
{
  return strcmp (kx->address, address) == 0 && kx->port == port;
}

int
mcsec_kx_check (mcsec_kx_t *kx, char **error)
{
  uint32_t reqid;

  if (policy_reqid (kx, &reqid) < 0 || reqid != kx->reqid) {
    int e = errno;
    fail (error,
          "the inbound XFRM policy for UDP to %s:%u is %s (ip xfrm policy "
          "flush? another IPsec daemon?): stopping, since plain datagrams "
          "would reach the port",
          kx->address, kx->inner_port,
          reqid != 0 && reqid != kx->reqid ? "someone else's now"
          : e == ENOENT                    ? "gone"
                                           : errno_text (e));
    if (reqid != kx->reqid)
      kx->policy = 0; /* not ours to remove */
    return -1;
  }
  for (guint i = 0; i < kx->spis->len; i++) {
    guint32 spi = g_array_index (kx->spis, guint32, i);
    if (state_reqid (kx, spi, &reqid) < 0 || reqid != kx->reqid) {
      fail (error,
            "the XFRM state for SPI 0x%08x is %s (ip xfrm state flush?): "
            "stopping",
            spi, reqid != 0 ? "someone else's now" : "gone");
      return -1;
    }
  }
  return 0;
}

unsigned
mcsec_kx_free (mcsec_kx_t *kx)
{
  unsigned failed = 0;

  if (kx == NULL)
    return 0;
  if (kx->nl) {
    for (guint i = 0; i < kx->spis->len; i++) {
      guint32 spi = g_array_index (kx->spis, guint32, i);
      uint32_t reqid;
      /* only what is still ours */
      if (state_reqid (kx, spi, &reqid) < 0 || reqid != kx->reqid)
        continue;
      if (state_del (kx, spi) == 0) {
        say (kx, "removed spi=0x%08x", spi);
      } else {
        say (kx, "error: cannot remove the XFRM state for SPI 0x%08x: %s", spi,
             errno_text (errno));
        failed++;
      }
    }
    if (kx->policy) {
      uint32_t reqid;
      if (policy_reqid (kx, &reqid) == 0 && reqid == kx->reqid) {
        if (policy_set (kx, 0) == 0) {
          say (kx, "policy removed");
        } else {
          say (kx, "error: cannot remove the inbound XFRM policy: %s",
               errno_text (errno));
          failed++;
        }
      }
    }
    mnl_socket_close (kx->nl);
  }
  if (kx->encap_fd >= 0)
    close (kx->encap_fd);
  if (kx->lock_fd >= 0)
    close (kx->lock_fd);
  g_array_free (kx->spis, TRUE);
  g_free (kx);
  return failed;
}
