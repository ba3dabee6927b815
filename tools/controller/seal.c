/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Sealing under the cluster key (seal.h).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "seal.h"

#define SEAL_VERSION 1
#define SEAL_NONCE 12
#define SEAL_TAG 16

/* AES-256-GCM over in[len] into out[len]; the tag is written (seal) or
 * checked (open). */
static gboolean
seal_crypt (gboolean seal, const guint8 *key, const guint8 *nonce,
            const char *aad, const guint8 *in, gsize len, guint8 *out,
            guint8 *tag)
{
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new ();
  int n = 0, ok = x != NULL && len <= G_MAXINT;

  ok = ok && EVP_CipherInit_ex (x, EVP_aes_256_gcm (), NULL, key, nonce,
                                seal ? 1 : 0) == 1;
  ok = ok && EVP_CipherUpdate (x, NULL, &n, (const guint8 *)aad,
                               (int)strlen (aad)) == 1;
  ok = ok && (len == 0 || EVP_CipherUpdate (x, out, &n, in, (int)len) == 1);
  if (!seal)
    ok =
        ok && EVP_CIPHER_CTX_ctrl (x, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) == 1;
  /* opening: the tag is checked here */
  ok = ok && EVP_CipherFinal_ex (x, out + (len ? n : 0), &n) == 1;
  if (seal)
    ok =
        ok && EVP_CIPHER_CTX_ctrl (x, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1;
  EVP_CIPHER_CTX_free (x);
  return ok;
}

GBytes *
ctl_seal (const guint8 key[CTL_SEAL_KEY_LEN], const char *aad, const guint8 *in,
          gsize len)
{
  gsize total = CTL_SEAL_OVERHEAD + len;
  guint8 *out = g_malloc (total);

  out[0] = SEAL_VERSION;
  if (RAND_bytes (out + 1, SEAL_NONCE) != 1 ||
      !seal_crypt (TRUE, key, out + 1, aad, in, len, out + 1 + SEAL_NONCE,
                   out + 1 + SEAL_NONCE + len)) {
    OPENSSL_cleanse (out, total);
    g_free (out);
    return NULL;
  }
  return g_bytes_new_take (out, total);
}

guint8 *
ctl_open (const guint8 key[CTL_SEAL_KEY_LEN], const char *aad,
          const guint8 *sealed, gsize len, gsize *out_len)
{
  gsize n;
  guint8 *out, tag[SEAL_TAG];

  if (len < CTL_SEAL_OVERHEAD || sealed[0] != SEAL_VERSION)
    return NULL;
  n = len - CTL_SEAL_OVERHEAD;
  out = g_malloc (n ? n : 1);
  memcpy (tag, sealed + 1 + SEAL_NONCE + n, SEAL_TAG);
  if (!seal_crypt (FALSE, key, sealed + 1, aad, sealed + 1 + SEAL_NONCE, n, out,
                   tag)) {
    OPENSSL_cleanse (out, n);
    g_free (out);
    return NULL;
  }
  *out_len = n;
  return out;
}
