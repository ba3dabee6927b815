/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Secrets sealed under the cluster key (docs/cluster.md "State in etcd"):
 * AES-256-GCM, laid out as version (1 byte, 1), a 12-byte nonce from
 * RAND_bytes, the ciphertext and the 16-byte tag.  The additional data
 * names what is sealed and where (the etcd key), so a sealed value cannot
 * be moved to another key or group and still open.
 */
#ifndef MCSEC_CTL_SEAL_H
#define MCSEC_CTL_SEAL_H

#include <glib.h>

G_BEGIN_DECLS

#define CTL_SEAL_KEY_LEN 32
#define CTL_SEAL_OVERHEAD (1 + 12 + 16)

/* The sealed form of in[len]; NULL when no random nonce or no cipher. */
GBytes *ctl_seal (const guint8 key[CTL_SEAL_KEY_LEN], const char *aad,
                  const guint8 *in, gsize len);
/* The plaintext of a sealed value (out_len bytes, g_malloc'd: wipe it
 * before freeing), or NULL when it does not open (another key, another
 * place, a changed byte, an unknown version). */
guint8 *ctl_open (const guint8 key[CTL_SEAL_KEY_LEN], const char *aad,
                  const guint8 *sealed, gsize len, gsize *out_len);

G_END_DECLS

#endif
