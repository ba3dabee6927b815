/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * esp.c: the ESP AEAD transforms, exactly as the RFCs define them.
 *
 *   AES-GCM (RFC 4106)            nonce = salt || IV, AAD = SPI || SN
 *   ChaCha20-Poly1305 (RFC 7634)  nonce = salt || IV, AAD = SPI || SN
 *   AES-GMAC (RFC 4543)           nonce = salt || IV,
 *                                 AAD = SPI || SN || IV || body, no plaintext
 *
 * Each direction of an SA owns one EVP_CIPHER_CTX that is keyed once; per
 * packet only the nonce is set, so no key schedule runs on the hot path.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mcsec-private.h"

static const char *
suite_cipher_name (mcsec_suite_t suite)
{
  switch (suite) {
  case MCSEC_SUITE_AES_128_GCM:
  case MCSEC_SUITE_AES_128_GMAC:
    return "AES-128-GCM";
  case MCSEC_SUITE_AES_256_GCM:
  case MCSEC_SUITE_AES_256_GMAC:
    return "AES-256-GCM";
  case MCSEC_SUITE_CHACHA20_POLY1305:
    return "ChaCha20-Poly1305";
  }
  return NULL;
}

mcsec_status_t
mcsec_aead_init (mcsec_aead_t *aead, mcsec_suite_t suite,
                 const uint8_t *key_material, size_t len, int encrypt)
{
  const char *name = suite_cipher_name (suite);
  size_t want = mcsec_suite_key_material_len (suite);
  EVP_CIPHER *cipher = NULL;
  mcsec_status_t st = MCSEC_ERR_CRYPTO;

  memset (aead, 0, sizeof (*aead));
  if (name == NULL)
    return MCSEC_ERR_BAD_SUITE;
  if (key_material == NULL || len != want)
    return MCSEC_ERR_BAD_KEY_LENGTH;

  aead->suite = suite;
  aead->ctx = EVP_CIPHER_CTX_new ();
  cipher = EVP_CIPHER_fetch (NULL, name, NULL);
  if (aead->ctx == NULL || cipher == NULL)
    goto out;
  /* The IV length is 12 (salt || IV) for every suite: the default of both
   * GCM and ChaCha20-Poly1305 in OpenSSL. */
  if (EVP_CipherInit_ex (aead->ctx, cipher, NULL, key_material, NULL,
                         encrypt) != 1)
    goto out;
  if (EVP_CIPHER_CTX_get_iv_length (aead->ctx) != MCSEC_NONCE_LEN)
    goto out;
  memcpy (aead->salt, key_material + len - MCSEC_SALT_LEN, MCSEC_SALT_LEN);
  st = MCSEC_OK;

out:
  EVP_CIPHER_free (cipher);
  if (st != MCSEC_OK)
    mcsec_aead_clear (aead);
  return st;
}

void
mcsec_aead_clear (mcsec_aead_t *aead)
{
  /* EVP_CIPHER_CTX_free wipes the key schedule it holds. */
  EVP_CIPHER_CTX_free (aead->ctx);
  aead->ctx = NULL;
  OPENSSL_cleanse (aead->salt, sizeof (aead->salt));
}

static inline void
make_nonce (const mcsec_aead_t *aead, const uint8_t *iv, uint8_t *nonce)
{
  memcpy (nonce, aead->salt, MCSEC_SALT_LEN);
  memcpy (nonce + MCSEC_SALT_LEN, iv, MCSEC_ESP_IV_LEN);
}

static inline int
is_gmac (mcsec_suite_t suite)
{
  return suite == MCSEC_SUITE_AES_128_GMAC || suite == MCSEC_SUITE_AES_256_GMAC;
}

mcsec_status_t
mcsec_aead_seal (mcsec_aead_t *aead, uint8_t *pkt, size_t head_len,
                 const uint8_t *src, size_t src_len, size_t body_len)
{
  uint8_t nonce[MCSEC_NONCE_LEN];
  uint8_t *body = pkt + MCSEC_ESP_HEADER_LEN;
  uint8_t *dst;
  int outl = 0;
  int h, n, tail;

  if (body_len > (size_t)MCSEC_ESP_MAX_PACKET_LEN || src_len > body_len ||
      head_len > body_len - src_len)
    return MCSEC_ERR_PAYLOAD_TOO_LONG;
  h = (int)head_len;
  n = (int)src_len;
  tail = (int)(body_len - head_len - src_len);
  dst = body + h;
  make_nonce (aead, pkt + MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN, nonce);
  if (EVP_EncryptInit_ex (aead->ctx, NULL, NULL, NULL, nonce) != 1)
    return MCSEC_ERR_CRYPTO;

  if (is_gmac (aead->suite)) {
    /* RFC 4543 3.3: everything from the SPI to the Next Header is AAD. */
    if (EVP_EncryptUpdate (aead->ctx, NULL, &outl, pkt,
                           MCSEC_ESP_HEADER_LEN + h) != 1 ||
        EVP_EncryptUpdate (aead->ctx, NULL, &outl, src, n) != 1 ||
        EVP_EncryptUpdate (aead->ctx, NULL, &outl, dst + n, tail) != 1)
      return MCSEC_ERR_CRYPTO;
    if (src != dst)
      memcpy (dst, src, src_len);
  } else {
    /* Encrypt the head in place, then straight from where the payload is,
     * then the trailer that already sits after it: no copy of the
     * payload. */
    if (EVP_EncryptUpdate (aead->ctx, NULL, &outl, pkt,
                           MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN) != 1)
      return MCSEC_ERR_CRYPTO;
    if (h > 0 &&
        (EVP_EncryptUpdate (aead->ctx, body, &outl, body, h) != 1 || outl != h))
      return MCSEC_ERR_CRYPTO;
    if (EVP_EncryptUpdate (aead->ctx, dst, &outl, src, n) != 1 || outl != n)
      return MCSEC_ERR_CRYPTO;
    if (EVP_EncryptUpdate (aead->ctx, dst + n, &outl, dst + n, tail) != 1 ||
        outl != tail)
      return MCSEC_ERR_CRYPTO;
  }
  if (EVP_EncryptFinal_ex (aead->ctx, body + body_len, &outl) != 1)
    return MCSEC_ERR_CRYPTO;
  if (EVP_CIPHER_CTX_ctrl (aead->ctx, EVP_CTRL_AEAD_GET_TAG, MCSEC_ESP_ICV_LEN,
                           body + body_len) != 1)
    return MCSEC_ERR_CRYPTO;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_aead_open (mcsec_aead_t *aead, const uint8_t *hdr, size_t body_len,
                 uint8_t *out, const uint8_t *esn_hi)
{
  uint8_t nonce[MCSEC_NONCE_LEN];
  uint8_t tag[MCSEC_ESP_ICV_LEN];
  /* SPI || SN, or SPI || ESN high || SN with extended sequence numbers */
  uint8_t aad[MCSEC_ESP_SPI_LEN + 4 + MCSEC_ESP_SN_LEN];
  size_t aad_len = MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN;
  const uint8_t *body = hdr + MCSEC_ESP_HEADER_LEN;
  int outl = 0;
  int n;
  mcsec_status_t st = MCSEC_ERR_AUTH;

  if (body_len > (size_t)MCSEC_ESP_MAX_PACKET_LEN)
    return MCSEC_ERR_TOO_LONG;
  n = (int)body_len;
  make_nonce (aead, hdr + MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN, nonce);
  /* EVP wants a writable tag buffer. */
  memcpy (tag, body + n, MCSEC_ESP_ICV_LEN);
  memcpy (aad, hdr, MCSEC_ESP_SPI_LEN);
  if (esn_hi) {
    memcpy (aad + MCSEC_ESP_SPI_LEN, esn_hi, 4);
    aad_len += 4;
  }
  memcpy (aad + aad_len - MCSEC_ESP_SN_LEN, hdr + MCSEC_ESP_SPI_LEN,
          MCSEC_ESP_SN_LEN);

  if (EVP_DecryptInit_ex (aead->ctx, NULL, NULL, NULL, nonce) != 1 ||
      EVP_CIPHER_CTX_ctrl (aead->ctx, EVP_CTRL_AEAD_SET_TAG, MCSEC_ESP_ICV_LEN,
                           tag) != 1) {
    st = MCSEC_ERR_CRYPTO;
    goto out;
  }
  if (EVP_DecryptUpdate (aead->ctx, NULL, &outl, aad, (int)aad_len) != 1)
    goto out;
  if (is_gmac (aead->suite)) {
    /* RFC 4543 3.3: then the IV and the whole body, all AAD */
    if (EVP_DecryptUpdate (aead->ctx, NULL, &outl,
                           hdr + MCSEC_ESP_SPI_LEN + MCSEC_ESP_SN_LEN,
                           MCSEC_ESP_IV_LEN + n) != 1)
      goto out;
  } else {
    if (EVP_DecryptUpdate (aead->ctx, out, &outl, body, n) != 1 || outl != n)
      goto out;
  }
  /* The final call compares the ICV in constant time. */
  if (EVP_DecryptFinal_ex (aead->ctx, out + n, &outl) != 1)
    goto out;
  if (is_gmac (aead->suite) && out != body)
    memmove (out, body, body_len);
  st = MCSEC_OK;

out:
  if (st != MCSEC_OK && !is_gmac (aead->suite))
    OPENSSL_cleanse (out, body_len);
  return st;
}
