/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A group's keys in the Linux kernel's IPsec (XFRM), over netlink with
 * libmnl: what `mcsec-join --kernel` does (docs/linux-ipsec.md, "MIKE
 * keys for the kernel").  Receive only: the kernel makes its IVs from its
 * own sequence numbers, never Sender-ID || counter, so a kernel sender
 * sharing a group key could repeat another's nonce.
 *
 * The follower opens an ESP-in-UDP encapsulation socket on the group's
 * port (joining the group when its address is multicast), installs one
 * inbound policy (UDP to the inner port at the group address must come
 * through ESP with one of our states) and keeps the kernel's inbound
 * states equal to the member's MSA: one state per SA, or with per-sender
 * SPIs one per SA and media sender (SPI | Sender-ID), each with its own
 * replay window.  States and the policy's template carry the follower's
 * reqid.  One follower per reqid and address (a lock): what it finds with
 * its reqid at start was left by a killed one and is removed.
 */
#ifndef MCSEC_KERNEL_XFRM_H
#define MCSEC_KERNEL_XFRM_H

#include <stdint.h>

#include <mcsec/mcsec-mike.h>

typedef struct mcsec_kx mcsec_kx_t;

typedef struct {
  const char *address;    /* where the group's ESP arrives: numeric IPv4 */
  uint16_t port;          /* its UDP port (ESP in UDP, RFC 3948) */
  uint16_t inner_port;    /* the datagrams' (Next Header 17) UDP port */
  const char *interface;  /* multicast: the interface to join on, or NULL */
  uint32_t reqid;         /* marks our states and policy (not 0) */
  uint32_t replay_window; /* packets, 32..4096 (multiple of 32) */
  /* a line per change, for the log (never a key) */
  void (*log) (const char *line, void *data);
  void *data;
} mcsec_kx_config_t;

#define MCSEC_KX_REQID_DEFAULT 0x6d637300u /* "mcs\0" */

/* Opens the netlink and encapsulation sockets, removes states a killed
 * follower with the same reqid left, installs the policy.  NULL and
 * *error (g_free) on failure. */
mcsec_kx_t *mcsec_kx_new (const mcsec_kx_config_t *cfg, char **error);
/* Makes the kernel's states the MSA's: installs what is new (an SA the
 * controller announced ahead of its activation included), removes what
 * left (an SA the member dropped after the deactivation delay, a sender
 * no longer listed).  0, or -1 and *error. */
int mcsec_kx_sync (mcsec_kx_t *kx, const mcsec_msa_t *msa, char **error);
/* 1 when the follower is for this address and port. */
int mcsec_kx_follows (const mcsec_kx_t *kx, const char *address, uint16_t port);
/* The policy and every state are still there and ours: 0; -1 and
 * *error when someone removed or replaced one (the follower must stop:
 * without the policy, plain datagrams reach the port). */
int mcsec_kx_check (mcsec_kx_t *kx, char **error);
/* Removes every state and the policy that are still ours (each said),
 * closes the sockets; how many could not be removed. */
unsigned mcsec_kx_free (mcsec_kx_t *kx);

#endif /* MCSEC_KERNEL_XFRM_H */
