/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * mcsec-test.h: the few helpers the C tests share.
 */
#ifndef MCSEC_TEST_H
#define MCSEC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mcsec/mcsec.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                            \
  do {                                                                         \
    test_checks++;                                                             \
    if (!(cond)) {                                                             \
      test_failures++;                                                         \
      fprintf (stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,        \
               #cond);                                                         \
    }                                                                          \
  } while (0)

/* Compare two statuses and print both names when they differ. */
#define CHECK_STATUS(got, want)                                                \
  do {                                                                         \
    mcsec_status_t got_ = (got), want_ = (want);                               \
    test_checks++;                                                             \
    if (got_ != want_) {                                                       \
      test_failures++;                                                         \
      fprintf (stderr, "%s:%d: %s gave %s, wanted %s\n", __FILE__, __LINE__,   \
               #got, mcsec_status_name (got_), mcsec_status_name (want_));     \
    }                                                                          \
  } while (0)

/* Abort the whole test: used when going on makes no sense. */
#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf (stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__,      \
               #cond);                                                         \
      exit (1);                                                                \
    }                                                                          \
  } while (0)

static inline size_t
test_unhex (const char *hex, uint8_t *out, size_t max)
{
  size_t n = 0;

  while (*hex) {
    unsigned v;
    if (*hex == ' ' || *hex == '\n') {
      hex++;
      continue;
    }
    REQUIRE (n < max && sscanf (hex, "%2x", &v) == 1);
    out[n++] = (uint8_t)v;
    hex += 2;
  }
  return n;
}

static inline int
test_done (const char *name)
{
  printf ("%s: %d checks, %d failed\n", name, test_checks, test_failures);
  return test_failures ? 1 : 0;
}

/* A deterministic generator for test data (not for keys). */
static inline uint64_t
test_rand (uint64_t *state)
{
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

/* An SA with fresh random key material. */
static inline mcsec_sa_t *
test_sa_new (mcsec_suite_t suite, uint32_t spi, const uint8_t *key)
{
  mcsec_sa_config_t cfg = {0};
  mcsec_sa_t *sa = NULL;

  cfg.spi = spi;
  cfg.suite = suite;
  cfg.key = key;
  cfg.key_len = mcsec_suite_key_material_len (suite);
  REQUIRE (mcsec_sa_new (&cfg, &sa) == MCSEC_OK);
  return sa;
}

static const mcsec_suite_t test_all_suites[] = {
    MCSEC_SUITE_AES_128_GCM,       MCSEC_SUITE_AES_256_GCM,
    MCSEC_SUITE_CHACHA20_POLY1305, MCSEC_SUITE_AES_128_GMAC,
    MCSEC_SUITE_AES_256_GMAC,
};
#define TEST_N_SUITES (sizeof (test_all_suites) / sizeof (test_all_suites[0]))

#endif
