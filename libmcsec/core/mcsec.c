/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec.c: statuses, cipher suites and key generation.
 */
#include <string.h>

#include <openssl/rand.h>

#include "mcsec-private.h"

static const struct {
  const char *name;
  const char *message;
} statuses[MCSEC_STATUS_COUNT_] = {
    [MCSEC_OK] = {"ok", "success"},
    [MCSEC_ERR_INVALID_ARG] = {"invalid-argument", "invalid argument"},
    [MCSEC_ERR_BAD_SUITE] =
        {"bad-suite",
         "setting 'suite': unknown cipher suite (aes-128-gcm, aes-256-gcm, "
         "chacha20-poly1305, aes-128-gmac, aes-256-gmac)"},
    [MCSEC_ERR_BAD_KEY_LENGTH] =
        {"bad-key-length",
         "setting 'key': wrong length for the cipher suite (key || 4-byte "
         "salt: 20 bytes for AES-128, 36 for AES-256 and ChaCha20)"},
    [MCSEC_ERR_BAD_SPI] = {"bad-spi",
                           "setting 'spi': values 0 to 255 are reserved"},
    [MCSEC_ERR_BAD_SENDER_ID_BITS] =
        {"bad-sender-id-bits", "setting 'sender-id-bits': must be 8 to 32"},
    [MCSEC_ERR_BAD_SENDER_ID] =
        {"bad-sender-id",
         "setting 'sender-id': does not fit in sender-id-bits"},
    [MCSEC_ERR_BAD_REPLAY_WINDOW] =
        {"bad-replay-window",
         "setting 'replay-window': must be a power of two from 64 to 65536"},
    [MCSEC_ERR_BAD_LIFETIME] =
        {"bad-lifetime",
         "settings 'soft-packets'/'hard-packets': soft limit above hard limit"},
    [MCSEC_ERR_NO_MEMORY] = {"no-memory", "out of memory"},
    [MCSEC_ERR_CRYPTO] = {"crypto", "the crypto library failed"},
    [MCSEC_ERR_SPI_EXISTS] = {"spi-exists", "an SA with this SPI exists"},
    [MCSEC_ERR_NOT_SENDER] = {"not-sender", "this SA has no local sender"},
    [MCSEC_ERR_BUFFER_TOO_SMALL] = {"buffer-too-small",
                                    "output buffer too small"},
    [MCSEC_ERR_PAYLOAD_TOO_LONG] = {"payload-too-long", "payload too long"},
    [MCSEC_ERR_HARD_LIMIT] = {"hard-limit",
                              "the SA's hard packet limit is reached: rekey"},
    [MCSEC_ERR_COUNTER_EXHAUSTED] =
        {"counter-exhausted", "the sender's counter space is used up: rekey"},
    [MCSEC_ERR_RESERVATION_EXHAUSTED] =
        {"reservation-exhausted",
         "no reserved counter is left: extend the counter reservation"},
    [MCSEC_ERR_TOO_SHORT] = {"too-short", "packet too short"},
    [MCSEC_ERR_TOO_LONG] = {"too-long", "packet too long"},
    [MCSEC_ERR_MALFORMED] = {"malformed", "malformed packet"},
    [MCSEC_ERR_UNKNOWN_SPI] = {"unknown-spi", "no SA for this SPI"},
    [MCSEC_ERR_AUTH] = {"auth", "integrity check failed"},
    [MCSEC_ERR_BAD_PADDING] = {"bad-padding", "invalid ESP trailer"},
    [MCSEC_ERR_REPLAY] = {"replay", "replayed packet"},
    [MCSEC_ERR_TOO_OLD] = {"too-old", "packet below the replay window"},
    [MCSEC_ERR_TOO_MANY_SENDERS] =
        {"too-many-senders", "the SA tracks its maximum number of senders"},
    [MCSEC_ERR_IO] = {"io", "counter store: read or write failed"},
    /* flock: a second open in the same process is refused too */
    [MCSEC_ERR_LOCKED] = {"locked",
                          "counter store: in use (by another encoder of this "
                          "process or by another process)"},
    [MCSEC_ERR_CORRUPT_STATE] =
        {"corrupt-state",
         "counter store: no valid record (refusing to guess a counter)"},
    [MCSEC_ERR_BAD_SIGNING_KEY] = {"bad-signing-key",
                                   "setting 'signing-key-file': must be an "
                                   "Ed25519 or ECDSA P-256 key"},
    [MCSEC_ERR_BAD_BLOCK_SIZE] = {"bad-block-size",
                                  "setting 'block-size': must be 8 to 256"},
    [MCSEC_ERR_NO_SENDER_KEY] = {"no-sender-key",
                                 "no trusted public key for this sender"},
    [MCSEC_ERR_SIGNATURE] = {"signature", "source signature did not verify"},
    [MCSEC_ERR_STALE_UPDATE] = {"stale-update",
                                "key update older than the last one applied"},
    [MCSEC_ERR_TLS] = {"tls", "the TLS connection failed"},
    [MCSEC_ERR_BAD_CREDENTIALS] =
        {"bad-credentials",
         "settings 'certificate'/'private-key'/'ca': unusable file"},
    [MCSEC_ERR_OUT_OF_SYNC] = {"out-of-sync",
                               "the member's key tree path cannot open the "
                               "rekey (it asks the controller for a new one)"},
    [MCSEC_ERR_UNVERIFIABLE] = {"unverifiable",
                                "the datagram's source could not be verified "
                                "within sam-max-latency / sam-max-hold"},
    [MCSEC_ERR_UNSIGNED] = {"unsigned",
                            "no source signature, or no key for its "
                            "Sender-ID"},
    [MCSEC_ERR_WRONG_STREAM] = {"wrong-stream",
                                "RTCP where RTP is taken, or the reverse "
                                "(a datagram sent to the other port)"},
};

const char *
mcsec_status_name (mcsec_status_t status)
{
  if ((unsigned)status >= MCSEC_STATUS_COUNT_)
    return "unknown";
  return statuses[status].name;
}

const char *
mcsec_status_message (mcsec_status_t status)
{
  if ((unsigned)status >= MCSEC_STATUS_COUNT_)
    return "unknown status";
  return statuses[status].message;
}

static const struct {
  mcsec_suite_t suite;
  const char *name;
  size_t key_len;
  int encrypts;
} suites[] = {
    {MCSEC_SUITE_AES_128_GCM, "aes-128-gcm", MCSEC_AES128_KEY_LEN, 1},
    {MCSEC_SUITE_AES_256_GCM, "aes-256-gcm", MCSEC_AES256_KEY_LEN, 1},
    {MCSEC_SUITE_CHACHA20_POLY1305, "chacha20-poly1305", MCSEC_CHACHA20_KEY_LEN,
     1},
    {MCSEC_SUITE_AES_128_GMAC, "aes-128-gmac", MCSEC_AES128_KEY_LEN, 0},
    {MCSEC_SUITE_AES_256_GMAC, "aes-256-gmac", MCSEC_AES256_KEY_LEN, 0},
};

#define N_SUITES (sizeof (suites) / sizeof (suites[0]))

const char *
mcsec_suite_name (mcsec_suite_t suite)
{
  for (size_t i = 0; i < N_SUITES; i++)
    if (suites[i].suite == suite)
      return suites[i].name;
  return NULL;
}

mcsec_suite_t
mcsec_suite_from_name (const char *name)
{
  if (name == NULL)
    return 0;
  for (size_t i = 0; i < N_SUITES; i++)
    if (strcmp (suites[i].name, name) == 0)
      return suites[i].suite;
  return 0;
}

size_t
mcsec_suite_key_material_len (mcsec_suite_t suite)
{
  for (size_t i = 0; i < N_SUITES; i++)
    if (suites[i].suite == suite)
      return suites[i].key_len + MCSEC_SALT_LEN;
  return 0;
}

int
mcsec_suite_encrypts (mcsec_suite_t suite)
{
  for (size_t i = 0; i < N_SUITES; i++)
    if (suites[i].suite == suite)
      return suites[i].encrypts;
  return 0;
}

mcsec_status_t
mcsec_generate_key_material (mcsec_suite_t suite, uint8_t *buf, size_t buf_len)
{
  size_t len = mcsec_suite_key_material_len (suite);

  if (len == 0)
    return MCSEC_ERR_BAD_SUITE;
  if (buf == NULL || buf_len < len)
    return MCSEC_ERR_BAD_KEY_LENGTH;
  if (RAND_bytes (buf, (int)len) != 1)
    return MCSEC_ERR_CRYPTO;
  return MCSEC_OK;
}
