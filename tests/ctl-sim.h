/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * ctl-sim.h: the simulation harness of the controller core's tests
 * (test-ctl-core, test-ctl-cluster): the I/O-free core (Sim) against real
 * member state machines (Peer, mcsec_member_t) in one process, with
 * simulated time and a lossy rekey channel.  No socket, no thread, no
 * sleep.  Each helper's comment is at its definition in ctl-sim.c.
 */
#ifndef MCSEC_CTL_SIM_H
#define MCSEC_CTL_SIM_H

#include "core/ctl-core.h"

typedef struct Sim Sim;

typedef struct {
  Sim *sim;
  gchar *identity, *group;
  gboolean sender;
  mcsec_member_t *m;
  mcsec_ctl_conn_t *c;
  gboolean reads;      /* FALSE: never reads what the controller sends */
  gboolean reconnect;  /* reconnects after a lost connection */
  double channel_loss; /* of this member's rekey channel datagrams */
  gint64 reconnect_at;
  guint closes;   /* connections the controller closed */
  guint welcomes; /* WELCOMEs received; the last one's SPI_PER_SENDER: */
  int welcome_spi_per_sender;
} Peer;

struct Sim {
  mcsec_ctl_store_t *store;
  mcsec_ctl_t *core;
  EVP_PKEY *update_key;
  gint64 now;
  GPtrArray *peers;
  GPtrArray *log; /* "event text" lines */
  GRand *rand;
  gsize max_queued; /* the most output the core held for one connection */
  gsize max_output;
  gboolean cluster;  /* one controller of a cluster (docs/cluster.md) */
  gboolean seals;    /* ... whose store seals: SAs are adopted */
  gboolean relay;    /* ... that relays JOINs for groups led elsewhere */
  GBytes *relayed;   /* the last RELAY action's bytes and leader; the */
  gchar *relayed_to; /* connection is freed, the member not told */
};

extern const char *const config_groups[];
/* make_groups: video (16-bit Sender-IDs) and tv (8-bit) with per-sender
 * SPIs; quiet never */
extern gboolean groups_spi_per_sender;

GPtrArray *make_groups (void);
void sim_start_core (Sim *s);
Sim *sim_new_on (mcsec_ctl_store_t *store, gboolean cluster, gsize max_output);
Sim *sim_new (gsize max_output);
gboolean logged (Sim *s, const char *needle);
Peer *peer_of (Sim *s, mcsec_ctl_conn_t *c);
void peer_connect (Peer *p);
Peer *peer_new (Sim *s, const char *identity, const char *group,
                gboolean sender);
void peer_gone (Peer *p);
void deliver (Peer *p);
void run_actions (Sim *s);
void pump (Sim *s);
void sim_run (Sim *s, gint64 ms);
void peer_leave (Peer *p);
void sim_drop_connections (Sim *s);
mcsec_ctl_group_config_t *config_of (GPtrArray *groups, const char *name);
void set_list (gchar ***list, const char *items);
void sim_reload (Sim *s, GPtrArray *groups);
void sim_restart (Sim *s);
void sim_free (Sim *s);
guint32 newest_spi (Peer *p);
gboolean holds_spi (Peer *p, guint32 spi);
gboolean lists_sender (Peer *p, guint32 id);
gchar *admin (Sim *s, const char *line);
gboolean admin_says (Sim *s, const char *line, const char *needle);
guint32 sender_id (Peer *p);
mcsec_ctl_group_t *group_named (Sim *s, const char *name);
void lead (Sim *s, const char *name);
guint64 updates_sent (Sim *s);

#endif
