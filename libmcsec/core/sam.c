/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * sam.c: source authentication above ESP (docs/source-authentication.md).
 *
 * Per-packet scheme: each packet carries a signature over (SPI, Sender-ID,
 * ESP counter, datagram).
 *
 * Block scheme: packet i of block b carries nothing about itself but its
 * position; its hash h_i = SHA-256(label, SPI, Sender-ID, counter, b, i,
 * datagram) truncated to 128 bits is what the block's signature covers.
 * When block b is complete, the sender signs (Sender-ID, b, n, h_0..h_n-1)
 * and encodes the n hashes and the 4 signature symbols with a systematic
 * Cauchy Reed-Solomon code over GF(2^8) (16-byte symbols, byte-sliced).
 * The 4 signature symbols and m parity symbols ride, a fraction of a symbol
 * per packet, on the packets of the following block.  A receiver knows the
 * hashes of the packets it received; any n + 4 symbols of the code (the
 * known hashes, the carried symbols) give back the lost hashes and the
 * signature, so a block verifies despite losses of both data and carried
 * symbols.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mcsec-private.h"

/* ---- GF(2^8), polynomial x^8 + x^4 + x^3 + x^2 + 1 ---- */

static uint8_t gf_exp[512];
static uint8_t gf_log[256];
/* the whole multiplication table (64 KiB): one look-up per byte, no
 * branches, on the encoding and decoding paths */
static uint8_t gf_mul_tab[256][256];
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;
static void gf_init_simd (void);
static void (*sym_addmul_impl) (uint8_t *, const uint8_t *, uint8_t);
static void (*sym_dot_impl) (uint8_t *, const uint8_t (*)[MCSEC_SAM_SYMBOL_LEN],
                             const uint8_t *, unsigned);

static void
gf_init (void)
{
  unsigned x = 1;
  for (int i = 0; i < 255; i++) {
    gf_exp[i] = (uint8_t)x;
    gf_log[x] = (uint8_t)i;
    x <<= 1;
    if (x & 0x100)
      x ^= 0x11d;
  }
  for (int i = 255; i < 512; i++)
    gf_exp[i] = gf_exp[i - 255];
  for (int a = 1; a < 256; a++)
    for (int b = 1; b < 256; b++)
      gf_mul_tab[a][b] = gf_exp[gf_log[a] + gf_log[b]];
  gf_init_simd ();
}

static inline uint8_t
gf_mul (uint8_t a, uint8_t b)
{
  return gf_mul_tab[a][b];
}

static inline uint8_t
gf_inv (uint8_t a)
{
  return gf_exp[255 - gf_log[a]]; /* a != 0 */
}

/* dst ^= c * src, over one 16-byte symbol (portable: one look-up a byte) */
static void
sym_addmul_table (uint8_t *dst, const uint8_t *src, uint8_t c)
{
  const uint8_t *row = gf_mul_tab[c];
  for (int k = 0; k < MCSEC_SAM_SYMBOL_LEN; k++)
    dst[k] ^= row[src[k]];
}

/* dst ^= sum over i of coef[i] * src[i], over count 16-byte symbols */
static void
sym_dot_table (uint8_t *dst, const uint8_t (*src)[MCSEC_SAM_SYMBOL_LEN],
               const uint8_t *coef, unsigned count)
{
  for (unsigned i = 0; i < count; i++)
    sym_addmul_table (dst, src[i], coef[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* c * x for the 16 values of a low nibble, and of a high nibble */
static uint8_t gf_nib_lo[256][16] __attribute__ ((aligned (16)));
static uint8_t gf_nib_hi[256][16] __attribute__ ((aligned (16)));

/* The same with SSSE3: the product of a byte is the XOR of the products
 * of its two nibbles, each a 16-entry table look-up done by PSHUFB for all
 * 16 bytes at once. */
__attribute__ ((target ("ssse3"))) static void
sym_addmul_ssse3 (uint8_t *dst, const uint8_t *src, uint8_t c)
{
  const __m128i mask = _mm_set1_epi8 (0x0f);
  __m128i v = _mm_loadu_si128 ((const __m128i *)src);
  __m128i lo = _mm_and_si128 (v, mask);
  __m128i hi = _mm_and_si128 (_mm_srli_epi64 (v, 4), mask);
  __m128i p = _mm_xor_si128 (
      _mm_shuffle_epi8 (_mm_load_si128 ((const __m128i *)gf_nib_lo[c]), lo),
      _mm_shuffle_epi8 (_mm_load_si128 ((const __m128i *)gf_nib_hi[c]), hi));
  _mm_storeu_si128 ((__m128i *)dst,
                    _mm_xor_si128 (_mm_loadu_si128 ((__m128i *)dst), p));
}

/* The dot product with AVX2: two symbols per step (each 128-bit lane has
 * its own coefficient's tables), the sum kept in a register. */
__attribute__ ((target ("avx2"))) static void
sym_dot_avx2 (uint8_t *dst, const uint8_t (*src)[MCSEC_SAM_SYMBOL_LEN],
              const uint8_t *coef, unsigned count)
{
  const __m256i mask = _mm256_set1_epi8 (0x0f);
  __m256i acc = _mm256_setzero_si256 ();
  __m128i sum;
  unsigned i = 0;

  for (; i + 2 <= count; i += 2) {
    __m256i v = _mm256_loadu_si256 ((const __m256i *)src[i]);
    __m256i tlo = _mm256_inserti128_si256 (
        _mm256_castsi128_si256 (
            _mm_load_si128 ((const __m128i *)gf_nib_lo[coef[i]])),
        _mm_load_si128 ((const __m128i *)gf_nib_lo[coef[i + 1]]), 1);
    __m256i thi = _mm256_inserti128_si256 (
        _mm256_castsi128_si256 (
            _mm_load_si128 ((const __m128i *)gf_nib_hi[coef[i]])),
        _mm_load_si128 ((const __m128i *)gf_nib_hi[coef[i + 1]]), 1);
    __m256i lo = _mm256_and_si256 (v, mask);
    __m256i hi = _mm256_and_si256 (_mm256_srli_epi64 (v, 4), mask);
    acc = _mm256_xor_si256 (acc,
                            _mm256_xor_si256 (_mm256_shuffle_epi8 (tlo, lo),
                                              _mm256_shuffle_epi8 (thi, hi)));
  }
  sum = _mm_xor_si128 (_mm256_castsi256_si128 (acc),
                       _mm256_extracti128_si256 (acc, 1));
  _mm_storeu_si128 ((__m128i *)dst,
                    _mm_xor_si128 (_mm_loadu_si128 ((__m128i *)dst), sum));
  for (; i < count; i++)
    sym_addmul_ssse3 (dst, src[i], coef[i]);
}

static void
gf_init_simd (void)
{
  for (int c = 0; c < 256; c++)
    for (int x = 0; x < 16; x++) {
      gf_nib_lo[c][x] = gf_mul_tab[c][x];
      gf_nib_hi[c][x] = gf_mul_tab[c][x << 4];
    }
  /* MCSEC_SAM_PORTABLE=1 keeps the portable code (tests run both) */
  if (getenv ("MCSEC_SAM_PORTABLE") != NULL)
    return;
  __builtin_cpu_init ();
  if (__builtin_cpu_supports ("ssse3"))
    sym_addmul_impl = sym_addmul_ssse3;
  if (__builtin_cpu_supports ("ssse3") && __builtin_cpu_supports ("avx2"))
    sym_dot_impl = sym_dot_avx2;
}

#else
static void
gf_init_simd (void)
{
}
#endif

/* The symbol arithmetic in use: portable unless gf_init_simd found better. */
static void (*sym_addmul_impl) (uint8_t *, const uint8_t *,
                                uint8_t) = sym_addmul_table;
static void (*sym_dot_impl) (uint8_t *, const uint8_t (*)[MCSEC_SAM_SYMBOL_LEN],
                             const uint8_t *, unsigned) = sym_dot_table;

static inline void
sym_addmul (uint8_t *dst, const uint8_t *src, uint8_t c)
{
  sym_addmul_impl (dst, src, c);
}

static inline void
sym_dot (uint8_t *dst, const uint8_t (*src)[MCSEC_SAM_SYMBOL_LEN],
         const uint8_t *coef, unsigned count)
{
  sym_dot_impl (dst, src, coef, count);
}

/* The SIMD code against the portable code on pseudo-random data: 1 when
 * they agree (or there is no SIMD code), 0 otherwise.  For the tests. */
int
mcsec_sam_gf_selftest (void)
{
  uint8_t src[40][MCSEC_SAM_SYMBOL_LEN], coef[40];
  uint8_t a[MCSEC_SAM_SYMBOL_LEN], b[MCSEC_SAM_SYMBOL_LEN];
  uint32_t x = 12345;

  pthread_once (&gf_once, gf_init);
  for (int round = 0; round < 200; round++) {
    unsigned count = 1 + (unsigned)round % 40;
    for (unsigned i = 0; i < count; i++) {
      for (int k = 0; k < MCSEC_SAM_SYMBOL_LEN; k++) {
        x = x * 1103515245u + 12345u;
        src[i][k] = (uint8_t)(x >> 16);
      }
      coef[i] = (uint8_t)(x >> 8);
    }
    memset (a, round, sizeof (a));
    memcpy (b, a, sizeof (b));
    sym_dot_table (a, (const uint8_t (*)[MCSEC_SAM_SYMBOL_LEN])src, coef,
                   count);
    sym_dot (b, (const uint8_t (*)[MCSEC_SAM_SYMBOL_LEN])src, coef, count);
    if (memcmp (a, b, sizeof (a)) != 0)
      return 0;
    sym_addmul_table (a, src[0], coef[0]);
    sym_addmul (b, src[0], coef[0]);
    if (memcmp (a, b, sizeof (a)) != 0)
      return 0;
  }
  return 1;
}

/* Cauchy coefficient of parity j on data symbol l of a code with d data
 * symbols: data symbols use the field elements 0..d-1, parity j uses d+j;
 * all distinct, so every square submatrix is invertible.  (d + j <= 255.) */
static inline uint8_t
cauchy (unsigned d, unsigned j, unsigned l)
{
  return gf_inv ((uint8_t)((d + j) ^ l));
}

/* How a block of n packets is coded: G codes (1, or 2 above
 * MCSEC_SAM_ONE_CODE_MAX packets).  Code g has the hashes of the positions
 * i with i % G == g, in order, and code 0 also the 4 signature symbols
 * (data index n + s).  Parity symbol id 4 + p belongs to code p % G, as its
 * parity p / G.  Fills the global data indices of code g into idx; returns
 * their count. */
static unsigned
codes_of (unsigned n)
{
  return n > MCSEC_SAM_ONE_CODE_MAX ? 2 : 1;
}

static unsigned
code_members (unsigned n, unsigned g, unsigned *idx)
{
  unsigned G = codes_of (n), d = 0;
  for (unsigned i = g; i < n; i += G)
    idx[d++] = i;
  if (g == 0)
    for (unsigned k = 0; k < MCSEC_SAM_SIG_SYMBOLS; k++)
      idx[d++] = n + k;
  return d;
}

/* ---- keys and signatures ---- */

static int
key_alg (EVP_PKEY *key)
{
  char group[32];
  size_t len = 0;

  if (key == NULL)
    return 0;
  if (EVP_PKEY_is_a (key, "ED25519"))
    return MCSEC_SAM_ALG_ED25519;
  if (EVP_PKEY_is_a (key, "EC") &&
      EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                      sizeof (group), &len) == 1 &&
      strcmp (group, "prime256v1") == 0)
    return MCSEC_SAM_ALG_ECDSA_P256;
  return 0;
}

/* Sign msg into a fixed 64-byte signature (ECDSA: r || s). */
static mcsec_status_t
sign_raw (EVP_PKEY *key, int alg, const uint8_t *msg, size_t len,
          uint8_t sig[MCSEC_SAM_SIG_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  uint8_t der[80];
  size_t der_len = sizeof (der);
  mcsec_status_t st = MCSEC_ERR_CRYPTO;

  if (ctx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  if (EVP_DigestSignInit (ctx, NULL,
                          alg == MCSEC_SAM_ALG_ED25519 ? NULL : EVP_sha256 (),
                          NULL, key) != 1)
    goto out;
  if (alg == MCSEC_SAM_ALG_ED25519) {
    size_t sl = MCSEC_SAM_SIG_LEN;
    if (EVP_DigestSign (ctx, sig, &sl, msg, len) == 1 &&
        sl == MCSEC_SAM_SIG_LEN)
      st = MCSEC_OK;
  } else if (EVP_DigestSign (ctx, der, &der_len, msg, len) == 1) {
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG (NULL, &p, (long)der_len);
    if (es != NULL && BN_bn2binpad (ECDSA_SIG_get0_r (es), sig, 32) == 32 &&
        BN_bn2binpad (ECDSA_SIG_get0_s (es), sig + 32, 32) == 32)
      st = MCSEC_OK;
    ECDSA_SIG_free (es);
  }
out:
  EVP_MD_CTX_free (ctx);
  return st;
}

static mcsec_status_t
verify_raw (EVP_PKEY *key, int alg, const uint8_t *msg, size_t len,
            const uint8_t sig[MCSEC_SAM_SIG_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  mcsec_status_t st = MCSEC_ERR_SIGNATURE;
  unsigned char *der = NULL;

  if (ctx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  if (EVP_DigestVerifyInit (ctx, NULL,
                            alg == MCSEC_SAM_ALG_ED25519 ? NULL : EVP_sha256 (),
                            NULL, key) != 1) {
    st = MCSEC_ERR_CRYPTO;
    goto out;
  }
  if (alg == MCSEC_SAM_ALG_ED25519) {
    if (EVP_DigestVerify (ctx, sig, MCSEC_SAM_SIG_LEN, msg, len) == 1)
      st = MCSEC_OK;
  } else {
    ECDSA_SIG *es = ECDSA_SIG_new ();
    BIGNUM *r = BN_bin2bn (sig, 32, NULL), *s = BN_bin2bn (sig + 32, 32, NULL);
    int der_len;
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0 (es, r, s)) {
      BN_free (r);
      BN_free (s);
      ECDSA_SIG_free (es);
      st = MCSEC_ERR_NO_MEMORY;
      goto out;
    }
    der_len = i2d_ECDSA_SIG (es, &der);
    if (der_len > 0 &&
        EVP_DigestVerify (ctx, der, (size_t)der_len, msg, len) == 1)
      st = MCSEC_OK;
    ECDSA_SIG_free (es);
  }
out:
  OPENSSL_free (der);
  EVP_MD_CTX_free (ctx);
  return st;
}

/* ---- what is hashed and signed ---- */

static const char label_packet[] = "mcsec-sam1 packet";
static const char label_member[] = "mcsec-sam1 member";
static const char label_block[] = "mcsec-sam1 block";

/* label || spi || sender || counter: the ESP binding */
static size_t
binding (uint8_t *buf, const char *label, uint32_t spi, uint32_t sender,
         uint64_t counter)
{
  size_t n = strlen (label) + 1;
  memcpy (buf, label, n);
  mcsec_store_be32 (buf + n, spi);
  mcsec_store_be32 (buf + n + 4, sender);
  mcsec_store_be64 (buf + n + 8, counter);
  return n + 16;
}

static mcsec_status_t
member_hash (EVP_MD_CTX *ctx, const EVP_MD *sha, uint32_t spi, uint32_t sender,
             uint64_t counter, uint32_t block, unsigned index,
             const uint8_t *data, size_t len, uint8_t out[MCSEC_SAM_HASH_LEN])
{
  uint8_t head[64], md[32];
  size_t n = binding (head, label_member, spi, sender, counter);
  unsigned md_len = 0;

  mcsec_store_be32 (head + n, block);
  head[n + 4] = (uint8_t)index;
  n += 5;
  if (EVP_DigestInit_ex (ctx, sha, NULL) != 1 ||
      EVP_DigestUpdate (ctx, head, n) != 1 ||
      (len && EVP_DigestUpdate (ctx, data, len) != 1) ||
      EVP_DigestFinal_ex (ctx, md, &md_len) != 1)
    return MCSEC_ERR_CRYPTO;
  memcpy (out, md, MCSEC_SAM_HASH_LEN);
  return MCSEC_OK;
}

/* Per-packet scheme: what is signed is SHA-256(binding || datagram). */
static mcsec_status_t
packet_digest (EVP_MD_CTX *ctx, const EVP_MD *sha, uint32_t spi,
               uint32_t sender, uint64_t counter, const uint8_t *data,
               size_t len, uint8_t out[32])
{
  uint8_t head[64];
  size_t n = binding (head, label_packet, spi, sender, counter);
  unsigned md_len = 0;

  if (EVP_DigestInit_ex (ctx, sha, NULL) != 1 ||
      EVP_DigestUpdate (ctx, head, n) != 1 ||
      (len && EVP_DigestUpdate (ctx, data, len) != 1) ||
      EVP_DigestFinal_ex (ctx, out, &md_len) != 1)
    return MCSEC_ERR_CRYPTO;
  return MCSEC_OK;
}

/* The message a block signature covers. */
static size_t
block_message (uint8_t *buf, uint32_t sender, uint32_t block, unsigned n,
               uint8_t (*hashes)[MCSEC_SAM_SYMBOL_LEN])
{
  size_t len = sizeof (label_block);
  memcpy (buf, label_block, len);
  mcsec_store_be32 (buf + len, sender);
  mcsec_store_be32 (buf + len + 4, block);
  buf[len + 8] = (uint8_t)n;
  len += 9;
  memcpy (buf + len, hashes, (size_t)n * MCSEC_SAM_HASH_LEN);
  return len + (size_t)n * MCSEC_SAM_HASH_LEN;
}

#define BLOCK_MESSAGE_MAX                                                      \
  (sizeof (label_block) + 9 + MCSEC_SAM_BLOCK_MAX * MCSEC_SAM_HASH_LEN)

/* ---- sender ---- */

/* One block's authenticator, waiting to be sent. */
typedef struct {
  int used;
  uint32_t block;
  uint32_t spi, sender_id; /* the SA and sender of the block's members */
  unsigned n;
  unsigned total; /* 4 signature symbols + parity */
  unsigned next;  /* next symbol to send */
  uint64_t due;   /* time budget: sent completely by then */
  uint8_t sym[MCSEC_SAM_MAX_SYMBOLS][MCSEC_SAM_SYMBOL_LEN];
} auth_t;

#define AUTH_QUEUE 4

struct mcsec_sam_signer {
  mcsec_sam_scheme_t scheme;
  int alg;
  EVP_PKEY *key;
  EVP_MD *sha;
  EVP_MD_CTX *md;
  unsigned n;
  unsigned carry_percent;
  unsigned carry_acc;
  uint32_t block;
  unsigned index;
  uint32_t spi, sender_id; /* of the current block's members */
  /* time-closed blocks (mcsec_sam_sign_at): 0 when off */
  uint64_t budget;
  uint64_t block_start; /* time of the current block's first member */
  uint64_t last_time;   /* time of the last datagram */
  int timed;            /* last_time came from mcsec_sam_sign_at */
  uint64_t gap;         /* expected time to the next datagram */
  uint8_t hashes[MCSEC_SAM_BLOCK_MAX + MCSEC_SAM_SIG_SYMBOLS]
                [MCSEC_SAM_SYMBOL_LEN];
  auth_t auth[AUTH_QUEUE]; /* FIFO: auth[head] first */
  unsigned head, count;
  uint8_t msg[BLOCK_MESSAGE_MAX]; /* scratch: the block message */
  uint8_t gather[MCSEC_SAM_ONE_CODE_MAX + MCSEC_SAM_SIG_SYMBOLS]
                [MCSEC_SAM_SYMBOL_LEN];
};

size_t
mcsec_sam_max_overhead (void)
{
  size_t block = MCSEC_SAM_BLOCK_HEADER_LEN +
                 MCSEC_SAM_MAX_CARRIED * MCSEC_SAM_CARRIED_LEN;
  return block > MCSEC_SAM_SIGNED_HEADER_LEN ? block
                                             : MCSEC_SAM_SIGNED_HEADER_LEN;
}

mcsec_status_t
mcsec_sam_signer_new (mcsec_sam_scheme_t scheme, EVP_PKEY *key,
                      unsigned block_size, unsigned carry_percent,
                      mcsec_sam_signer_t **out)
{
  mcsec_sam_signer_t *s;
  int alg = key_alg (key);

  if (out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  if (scheme != MCSEC_SAM_PER_PACKET && scheme != MCSEC_SAM_BLOCK)
    return MCSEC_ERR_INVALID_ARG;
  if (alg == 0)
    return MCSEC_ERR_BAD_SIGNING_KEY;
  if (block_size == 0)
    block_size = MCSEC_SAM_BLOCK_DEFAULT;
  if (block_size < MCSEC_SAM_BLOCK_MIN || block_size > MCSEC_SAM_BLOCK_MAX)
    return MCSEC_ERR_BAD_BLOCK_SIZE;
  if (carry_percent == 0)
    carry_percent = MCSEC_SAM_CARRY_PERCENT_DEFAULT;
  if (carry_percent > 100 * MCSEC_SAM_MAX_CARRIED)
    return MCSEC_ERR_INVALID_ARG;
  /* a block must at least carry its signature and one parity symbol */
  if (carry_percent * block_size < 100 * (MCSEC_SAM_SIG_SYMBOLS + 1))
    carry_percent =
        (100 * (MCSEC_SAM_SIG_SYMBOLS + 1) + block_size - 1) / block_size;
  pthread_once (&gf_once, gf_init);
  s = calloc (1, sizeof (*s));
  if (s == NULL)
    return MCSEC_ERR_NO_MEMORY;
  s->scheme = scheme;
  s->alg = alg;
  s->n = block_size;
  s->carry_percent = carry_percent;
  s->sha = EVP_MD_fetch (NULL, "SHA256", NULL);
  s->md = EVP_MD_CTX_new ();
  if (s->sha == NULL || s->md == NULL || EVP_PKEY_up_ref (key) != 1) {
    mcsec_sam_signer_free (s);
    return MCSEC_ERR_CRYPTO;
  }
  s->key = key;
  /* block numbers start at random, so that a restarted sender does not
   * collide with the blocks its receivers remember */
  if (RAND_bytes ((unsigned char *)&s->block, sizeof (s->block)) != 1) {
    mcsec_sam_signer_free (s);
    return MCSEC_ERR_CRYPTO;
  }
  s->block &= 0x7fffffffu;
  {
    /* a public key alone cannot sign: find out now, not at the first packet */
    uint8_t probe_sig[MCSEC_SAM_SIG_LEN];
    static const uint8_t probe[] = "mcsec-sam1 probe";
    if (sign_raw (key, alg, probe, sizeof (probe), probe_sig) != MCSEC_OK) {
      mcsec_sam_signer_free (s);
      return MCSEC_ERR_BAD_SIGNING_KEY;
    }
  }
  *out = s;
  return MCSEC_OK;
}

void
mcsec_sam_signer_free (mcsec_sam_signer_t *s)
{
  if (s == NULL)
    return;
  EVP_PKEY_free (s->key);
  EVP_MD_free (s->sha);
  EVP_MD_CTX_free (s->md);
  OPENSSL_cleanse (s, sizeof (*s));
  free (s);
}

/* Sign the block of s->index packets and queue its authenticator (to be
 * sent completely by `now` + the time budget). */
static mcsec_status_t
finish_block (mcsec_sam_signer_t *s, uint64_t now)
{
  uint8_t *msg = s->msg;
  unsigned n = s->index, want, m, G, d0;
  uint8_t (*data)[MCSEC_SAM_SYMBOL_LEN] = s->hashes;
  auth_t *a;
  mcsec_status_t st;
  size_t len;

  if (n == 0)
    return MCSEC_OK;
  if (s->count == AUTH_QUEUE) { /* never in normal use: drop the oldest */
    s->auth[s->head].used = 0;
    s->head = (s->head + 1) % AUTH_QUEUE;
    s->count--;
  }
  a = &s->auth[(s->head + s->count) % AUTH_QUEUE];
  len = block_message (msg, s->sender_id, s->block, n, data);
  /* the signature becomes data symbols n..n+3 */
  st = sign_raw (s->key, s->alg, msg, len, data[n]);
  if (st)
    return st;
  /* symbols to send: about carry_percent/100 per packet of the block, and
   * at least one parity symbol */
  want = (n * s->carry_percent + 99) / 100;
  if (want < MCSEC_SAM_SIG_SYMBOLS + 1)
    want = MCSEC_SAM_SIG_SYMBOLS + 1;
  m = want - MCSEC_SAM_SIG_SYMBOLS;
  G = codes_of (n);
  /* every code's field: data + parity <= 256; and ids fit in a byte */
  d0 = (n + G - 1) / G + MCSEC_SAM_SIG_SYMBOLS;
  if (m > G * (MCSEC_SAM_MAX_SYMBOLS - d0))
    m = G * (MCSEC_SAM_MAX_SYMBOLS - d0);
  if (m > MCSEC_SAM_MAX_SYMBOLS - MCSEC_SAM_SIG_SYMBOLS)
    m = MCSEC_SAM_MAX_SYMBOLS - MCSEC_SAM_SIG_SYMBOLS;
  memset (a, 0, sizeof (*a));
  a->used = 1;
  a->block = s->block;
  a->spi = s->spi;
  a->sender_id = s->sender_id;
  a->due = s->budget ? now + s->budget : UINT64_MAX;
  a->n = n;
  a->total = MCSEC_SAM_SIG_SYMBOLS + m;
  memcpy (a->sym, data[n], MCSEC_SAM_SIG_LEN);
  for (unsigned g = 0; g < G; g++) {
    unsigned idx[MCSEC_SAM_ONE_CODE_MAX + MCSEC_SAM_SIG_SYMBOLS];
    unsigned d = code_members (n, g, idx);
    /* the code's data symbols side by side, for the dot product */
    for (unsigned l = 0; l < d; l++)
      memcpy (s->gather[l], data[idx[l]], MCSEC_SAM_SYMBOL_LEN);
    for (unsigned p = g; p < m; p += G) {
      uint8_t coef[MCSEC_SAM_ONE_CODE_MAX + MCSEC_SAM_SIG_SYMBOLS];
      for (unsigned l = 0; l < d; l++)
        coef[l] = cauchy (d, p / G, l);
      sym_dot (a->sym[MCSEC_SAM_SIG_SYMBOLS + p],
               (const uint8_t (*)[MCSEC_SAM_SYMBOL_LEN])s->gather, coef, d);
    }
  }
  s->count++;
  s->block++;
  s->index = 0;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sam_end_block (mcsec_sam_signer_t *s)
{
  if (s == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (s->scheme != MCSEC_SAM_BLOCK)
    return MCSEC_OK;
  return finish_block (s, s->last_time);
}

size_t
mcsec_sam_pending_symbols (const mcsec_sam_signer_t *s)
{
  size_t total = 0;
  for (unsigned k = 0; s && k < s->count; k++) {
    const auth_t *a = &s->auth[(s->head + k) % AUTH_QUEUE];
    total += a->total - a->next;
  }
  return total;
}

/* Write the block header for packet (type, block, index) carrying up to
 * `quota` symbols of the oldest pending authenticator. */
static size_t
write_block_header (mcsec_sam_signer_t *s, uint8_t type, uint32_t block,
                    unsigned index, unsigned quota, uint8_t *out)
{
  auth_t *a = s->count ? &s->auth[s->head] : NULL;

  /* symbols travel only with packets of the SA and sender they belong to
   * (the receiver keeps blocks per SPI and Sender-ID) */
  if (a && (a->spi != s->spi || a->sender_id != s->sender_id))
    a = NULL;
  unsigned count = 0;
  uint8_t *p = out + MCSEC_SAM_BLOCK_HEADER_LEN;

  out[0] = type;
  out[1] = (uint8_t)s->alg;
  mcsec_store_be32 (out + 2, block);
  out[6] = (uint8_t)index;
  if (a && (block - a->block) >= 1 && (block - a->block) <= 255) {
    while (count < quota && a->next < a->total) {
      p[0] = (uint8_t)a->next;
      memcpy (p + 1, a->sym[a->next], MCSEC_SAM_SYMBOL_LEN);
      p += MCSEC_SAM_CARRIED_LEN;
      a->next++;
      count++;
    }
    out[7] = (uint8_t)(block - a->block);
    out[8] = (uint8_t)(a->n - 1);
    if (a->next == a->total) {
      a->used = 0;
      s->head = (s->head + 1) % AUTH_QUEUE;
      s->count--;
    }
  } else {
    out[7] = 0;
    out[8] = 0;
  }
  out[9] = (uint8_t)count;
  return MCSEC_SAM_BLOCK_HEADER_LEN + count * MCSEC_SAM_CARRIED_LEN;
}

/* Authenticators of another SA or sender can no longer be sent (a caller
 * that changes SA closes its block and sends carriers first): forget them. */
static void
drop_foreign_auths (mcsec_sam_signer_t *s, uint32_t spi, uint32_t sender_id)
{
  while (s->count > 0) {
    auth_t *a = &s->auth[s->head];
    if (a->spi == spi && a->sender_id == sender_id)
      break;
    a->used = 0;
    s->head = (s->head + 1) % AUTH_QUEUE;
    s->count--;
  }
}

static mcsec_status_t
sign_common (mcsec_sam_signer_t *s, int timed, uint64_t now, uint32_t spi,
             uint32_t sender_id, uint64_t counter, const uint8_t *datagram,
             size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
  size_t head;
  mcsec_status_t st;

  if (s == NULL || out == NULL || out_len == NULL ||
      (datagram == NULL && len != 0))
    return MCSEC_ERR_INVALID_ARG;
  if (len > MCSEC_ESP_MAX_PAYLOAD_LEN ||
      out_size < len + mcsec_sam_max_overhead ())
    return MCSEC_ERR_BUFFER_TOO_SMALL;

  if (s->scheme == MCSEC_SAM_PER_PACKET) {
    uint8_t digest[32];
    s->last_time = now;
    st = packet_digest (s->md, s->sha, spi, sender_id, counter, datagram, len,
                        digest);
    if (st == MCSEC_OK)
      st = sign_raw (s->key, s->alg, digest, sizeof (digest), out + 2);
    if (st)
      return st;
    memmove (out + MCSEC_SAM_SIGNED_HEADER_LEN, datagram, len);
    out[0] = MCSEC_SAM_TYPE_SIGNED;
    out[1] = (uint8_t)s->alg;
    *out_len = MCSEC_SAM_SIGNED_HEADER_LEN + len;
    return MCSEC_OK;
  }

  /* block member */
  if (timed && s->budget && s->timed) {
    /* the gap to the next datagram is expected to be about the longest of
     * the recent ones (it decays by 1/8 a datagram) */
    uint64_t gap = now > s->last_time ? now - s->last_time : 0;
    s->gap -= s->gap / 8;
    if (gap > s->gap)
      s->gap = gap;
  }
  s->last_time = now;
  s->timed = timed;
  if (s->index > 0 && (sender_id != s->sender_id || spi != s->spi)) {
    /* a block belongs to one SA and one Sender-ID, and its authenticator
     * could only travel under the old ones: a caller that changes either
     * closes the block first (mcsec_sam_end_block and carriers); one that
     * did not loses the open block, unsigned */
    s->index = 0;
    s->block++;
  }
  if (s->index == 0) {
    s->spi = spi;
    s->sender_id = sender_id;
    s->block_start = now;
  }
  drop_foreign_auths (s, spi, sender_id);
  st = member_hash (s->md, s->sha, spi, sender_id, counter, s->block, s->index,
                    datagram, len, s->hashes[s->index]);
  if (st)
    return st;
  s->carry_acc += s->carry_percent;
  head = write_block_header (s, MCSEC_SAM_TYPE_BLOCK, s->block, s->index,
                             s->carry_acc / 100, out);
  s->carry_acc %= 100;
  memmove (out + head, datagram, len);
  *out_len = head + len;
  s->index++;
  if (s->index == s->n)
    return finish_block (s, now);
  /* time budget: close the block now when the next datagram is expected
   * after the block's time is up */
  if (timed && s->budget && now + s->gap >= s->block_start + s->budget)
    return finish_block (s, now);
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sam_sign (mcsec_sam_signer_t *s, uint32_t spi, uint32_t sender_id,
                uint64_t counter, const uint8_t *datagram, size_t len,
                uint8_t *out, size_t out_size, size_t *out_len)
{
  return sign_common (s, 0, s ? s->last_time : 0, spi, sender_id, counter,
                      datagram, len, out, out_size, out_len);
}

mcsec_status_t
mcsec_sam_sign_at (mcsec_sam_signer_t *s, uint64_t now, uint32_t spi,
                   uint32_t sender_id, uint64_t counter,
                   const uint8_t *datagram, size_t len, uint8_t *out,
                   size_t out_size, size_t *out_len)
{
  return sign_common (s, 1, now, spi, sender_id, counter, datagram, len, out,
                      out_size, out_len);
}

mcsec_status_t
mcsec_sam_signer_set_time_budget (mcsec_sam_signer_t *s, uint64_t budget_ns)
{
  if (s == NULL)
    return MCSEC_ERR_INVALID_ARG;
  s->budget = budget_ns;
  /* until datagrams show otherwise, the next one is assumed late: a
   * stream's first datagram is not kept waiting for a second */
  s->gap = budget_ns;
  return MCSEC_OK;
}

int
mcsec_sam_carriers_due (const mcsec_sam_signer_t *s)
{
  if (s == NULL || s->count == 0 || s->budget == 0)
    return 0;
  /* the next datagram would carry the oldest authenticator's symbols too
   * late */
  return s->last_time + s->gap >= s->auth[s->head].due;
}

mcsec_status_t
mcsec_sam_carrier (mcsec_sam_signer_t *s, uint8_t *out, size_t out_size,
                   size_t *out_len)
{
  if (s == NULL || out == NULL || out_len == NULL)
    return MCSEC_ERR_INVALID_ARG;
  *out_len = 0;
  if (s->count == 0)
    return MCSEC_OK;
  if (out_size < mcsec_sam_max_overhead ())
    return MCSEC_ERR_BUFFER_TOO_SMALL;
  *out_len = write_block_header (s, MCSEC_SAM_TYPE_CARRIER, s->block, 0,
                                 MCSEC_SAM_MAX_CARRIED, out);
  return MCSEC_OK;
}

/* ---- receiver ---- */

typedef struct {
  int used;
  uint32_t block;
  /* once decided, the slot stays until the block ages out, so that late
   * (reordered) members are judged against the signed hashes */
  mcsec_sam_outcome_t decided;
  int n; /* the block's size, once an authenticator symbol told it; -1 */
  uint64_t arrival; /* when the slot was made (the sender's serial) */
  uint8_t have[MCSEC_SAM_BLOCK_MAX];
  /* what identifies each member for the caller: its ESP packet's SPI and
   * counter, and the caller's tag */
  uint32_t spi[MCSEC_SAM_BLOCK_MAX];
  uint64_t counter[MCSEC_SAM_BLOCK_MAX];
  uint64_t tag[MCSEC_SAM_BLOCK_MAX];
  uint8_t hash[MCSEC_SAM_BLOCK_MAX + MCSEC_SAM_SIG_SYMBOLS]
              [MCSEC_SAM_SYMBOL_LEN];
  uint8_t sym_have[MCSEC_SAM_MAX_SYMBOLS];
  uint8_t sym[MCSEC_SAM_MAX_SYMBOLS][MCSEC_SAM_SYMBOL_LEN];
} pending_t;

/* A trusted key: for Sender-ID sender_id under SPI spi (0: under any SA),
 * with the blocks of that sender under it. */
typedef struct {
  uint32_t sender_id;
  uint32_t spi;
  EVP_PKEY *key;
  int alg;
  /* the newest block whose signature verified: only the sender can move
   * it, so only it decides which blocks are too old (an insider claiming
   * this Sender-ID cannot make the receiver give the sender's blocks up) */
  int seen; /* anchor is valid */
  uint32_t anchor;
  uint64_t arrivals; /* serial of block slots, for eviction order */
  /* N_SLOTS blocks, made when the first block member arrives (a key bound
   * to an SA its sender no longer uses never needs them) */
  pending_t *pend;
} sender_t;

#define N_SLOTS (MCSEC_SAM_PENDING_BLOCKS + 1)

#define DECODE_MAX (MCSEC_SAM_ONE_CODE_MAX + MCSEC_SAM_SIG_SYMBOLS)

struct mcsec_sam_verifier {
  mcsec_sam_event_fn fn;
  void *data;
  /* decoding scratch: one verifier is used by one thread at a time */
  uint8_t msg[BLOCK_MESSAGE_MAX];
  uint8_t a[DECODE_MAX][DECODE_MAX];
  uint8_t rhs[DECODE_MAX][MCSEC_SAM_SYMBOL_LEN];
  EVP_MD *sha;
  EVP_MD_CTX *md;
  /* sorted by (Sender-ID, SPI); pointers, so that inserting and removing
   * moves 8 bytes an entry, not its blocks */
  sender_t **senders;
  size_t n_senders, cap_senders;
};

mcsec_status_t
mcsec_sam_verifier_new (mcsec_sam_event_fn fn, void *data,
                        mcsec_sam_verifier_t **out)
{
  mcsec_sam_verifier_t *v;

  if (out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  pthread_once (&gf_once, gf_init);
  v = calloc (1, sizeof (*v));
  if (v == NULL)
    return MCSEC_ERR_NO_MEMORY;
  v->fn = fn;
  v->data = data;
  v->sha = EVP_MD_fetch (NULL, "SHA256", NULL);
  v->md = EVP_MD_CTX_new ();
  if (v->sha == NULL || v->md == NULL) {
    mcsec_sam_verifier_free (v);
    return MCSEC_ERR_CRYPTO;
  }
  *out = v;
  return MCSEC_OK;
}

static void
sender_free (sender_t *s)
{
  EVP_PKEY_free (s->key);
  free (s->pend);
  free (s);
}

void
mcsec_sam_verifier_free (mcsec_sam_verifier_t *v)
{
  if (v == NULL)
    return;
  for (size_t i = 0; i < v->n_senders; i++)
    sender_free (v->senders[i]);
  free (v->senders);
  EVP_MD_free (v->sha);
  EVP_MD_CTX_free (v->md);
  free (v);
}

/* senders are sorted by (Sender-ID, SPI) */
static int
sender_before (const sender_t *s, uint32_t sender_id, uint32_t spi)
{
  return s->sender_id < sender_id ||
         (s->sender_id == sender_id && s->spi < spi);
}

/* The entry for exactly (spi, sender_id), or where it would go. */
static size_t
sender_pos (const mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id)
{
  /* senders are few (those a receiver trusts): binary search */
  size_t lo = 0, hi = v->n_senders;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (sender_before (v->senders[mid], sender_id, spi))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static sender_t *
find_exact (mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id)
{
  size_t pos = sender_pos (v, spi, sender_id);
  if (pos < v->n_senders && v->senders[pos]->sender_id == sender_id &&
      v->senders[pos]->spi == spi)
    return v->senders[pos];
  return NULL;
}

/* The key for a packet of sender_id under spi: the one bound to that SA,
 * else one trusted under any SA. */
static sender_t *
find_sender (mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id)
{
  sender_t *s = spi ? find_exact (v, spi, sender_id) : NULL;
  return s ? s : find_exact (v, 0, sender_id);
}

static void decide (mcsec_sam_verifier_t *v, sender_t *s, pending_t *p,
                    mcsec_sam_outcome_t outcome);
static void anchor_at (mcsec_sam_verifier_t *v, sender_t *s, uint32_t b);

/* Give up on every undecided block of s and forget its blocks. */
static void
give_up_blocks (mcsec_sam_verifier_t *v, sender_t *s)
{
  for (unsigned k = 0; s->pend != NULL && k < N_SLOTS; k++) {
    if (s->pend[k].used && !s->pend[k].decided)
      decide (v, s, &s->pend[k], MCSEC_SAM_UNVERIFIABLE);
    s->pend[k].used = 0;
  }
  s->seen = 0;
}

static void
remove_at (mcsec_sam_verifier_t *v, size_t pos)
{
  give_up_blocks (v, v->senders[pos]);
  sender_free (v->senders[pos]);
  memmove (&v->senders[pos], &v->senders[pos + 1],
           (v->n_senders - pos - 1) * sizeof (v->senders[0]));
  v->n_senders--;
}

mcsec_status_t
mcsec_sam_verifier_add_sender (mcsec_sam_verifier_t *v, uint32_t spi,
                               uint32_t sender_id, EVP_PKEY *key)
{
  sender_t *s;
  size_t pos;
  int alg = key_alg (key);

  if (v == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (alg == 0)
    return MCSEC_ERR_BAD_SIGNING_KEY;
  s = find_exact (v, spi, sender_id);
  if (s != NULL) {
    if (EVP_PKEY_eq (s->key, key) == 1)
      return MCSEC_OK; /* the same key again: nothing changes */
    /* another key (another member) for this Sender-ID: nothing it had
     * pending can be judged with the new key */
    if (EVP_PKEY_up_ref (key) != 1)
      return MCSEC_ERR_CRYPTO;
    give_up_blocks (v, s);
    EVP_PKEY_free (s->key);
    s->key = key;
    s->alg = alg;
    return MCSEC_OK;
  }
  if (v->n_senders == v->cap_senders) {
    size_t cap = v->cap_senders ? 2 * v->cap_senders : 8;
    sender_t **grown = realloc (v->senders, cap * sizeof (*grown));
    if (grown == NULL)
      return MCSEC_ERR_NO_MEMORY;
    v->senders = grown;
    v->cap_senders = cap;
  }
  s = calloc (1, sizeof (*s));
  if (s == NULL)
    return MCSEC_ERR_NO_MEMORY;
  if (EVP_PKEY_up_ref (key) != 1) {
    free (s);
    return MCSEC_ERR_CRYPTO;
  }
  s->sender_id = sender_id;
  s->spi = spi;
  s->key = key;
  s->alg = alg;
  pos = sender_pos (v, spi, sender_id);
  memmove (&v->senders[pos + 1], &v->senders[pos],
           (v->n_senders - pos) * sizeof (v->senders[0]));
  v->senders[pos] = s;
  v->n_senders++;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_sam_verifier_remove_sender (mcsec_sam_verifier_t *v, uint32_t spi,
                                  uint32_t sender_id)
{
  sender_t *s;

  if (v == NULL)
    return MCSEC_ERR_INVALID_ARG;
  s = find_exact (v, spi, sender_id);
  if (s == NULL)
    return MCSEC_ERR_NO_SENDER_KEY;
  remove_at (v, sender_pos (v, spi, sender_id));
  return MCSEC_OK;
}

void
mcsec_sam_verifier_retain (mcsec_sam_verifier_t *v, uint32_t spi,
                           const uint32_t *sender_ids, size_t n)
{
  size_t pos = 0;

  while (v != NULL && pos < v->n_senders) {
    int keep = v->senders[pos]->spi != spi;
    for (size_t i = 0; !keep && i < n; i++)
      keep = sender_ids[i] == v->senders[pos]->sender_id;
    if (keep)
      pos++;
    else
      remove_at (v, pos);
  }
}

static void
emit (mcsec_sam_verifier_t *v, sender_t *s, pending_t *p, unsigned i,
      mcsec_sam_outcome_t outcome)
{
  mcsec_sam_event_t ev;

  ev.sender_id = s->sender_id;
  ev.spi = p->spi[i];
  ev.counter = p->counter[i];
  ev.tag = p->tag[i];
  ev.block = p->block;
  ev.index = i;
  /* a member beyond the signed size cannot be one of the block's */
  ev.outcome = (p->n >= 0 && (int)i >= p->n && outcome == MCSEC_SAM_VERIFIED)
                   ? MCSEC_SAM_FAILED
                   : outcome;
  if (v->fn)
    v->fn (&ev, v->data);
}

static void
decide (mcsec_sam_verifier_t *v, sender_t *s, pending_t *p,
        mcsec_sam_outcome_t outcome)
{
  for (unsigned i = 0; i < MCSEC_SAM_BLOCK_MAX; i++)
    if (p->have[i])
      emit (v, s, p, i, outcome);
  p->decided = outcome;
}

/* Rebuild the unknown data symbols of code g of block p (n packets).
 * Returns 1 when all of them are known now, 0 when more symbols are
 * needed. */
static int
solve_code (mcsec_sam_verifier_t *v, pending_t *p, unsigned n, unsigned g)
{
  uint8_t (*a)[DECODE_MAX] = v->a;
  uint8_t (*rhs)[MCSEC_SAM_SYMBOL_LEN] = v->rhs;
  unsigned G = codes_of (n), idx[DECODE_MAX], d, k = 0;
  unsigned unknown[DECODE_MAX], known[DECODE_MAX], rows[DECODE_MAX];
  unsigned n_rows = 0;

  d = code_members (n, g, idx);
  for (unsigned l = 0; l < d; l++) {
    unsigned i = idx[l];
    known[l] = i < n ? p->have[i] : p->sym_have[i - n];
    if (!known[l])
      unknown[k++] = l;
  }
  if (k == 0)
    return 1;
  /* parity p of the whole block is parity p / G of code p % G */
  for (unsigned id = MCSEC_SAM_SIG_SYMBOLS;
       id < MCSEC_SAM_MAX_SYMBOLS && n_rows < k; id++) {
    unsigned par = id - MCSEC_SAM_SIG_SYMBOLS;
    if (p->sym_have[id] && par % G == g && d + par / G <= 255)
      rows[n_rows++] = par / G;
  }
  if (n_rows < k)
    return 0;
  /* rhs_r = parity_r - sum over known data of coef * data */
  for (unsigned r = 0; r < k; r++) {
    unsigned j = rows[r];
    memcpy (rhs[r], p->sym[MCSEC_SAM_SIG_SYMBOLS + j * G + g],
            MCSEC_SAM_SYMBOL_LEN);
    for (unsigned l = 0; l < d; l++)
      if (known[l])
        sym_addmul (rhs[r], p->hash[idx[l]], cauchy (d, j, l));
    for (unsigned c = 0; c < k; c++)
      a[r][c] = cauchy (d, j, unknown[c]);
  }
  /* Gauss-Jordan over GF(2^8); a Cauchy matrix is never singular */
  for (unsigned c = 0; c < k; c++) {
    unsigned piv = c;
    while (piv < k && a[piv][c] == 0)
      piv++;
    if (piv == k)
      return 0;
    if (piv != c) {
      uint8_t t[DECODE_MAX];
      uint8_t tr[MCSEC_SAM_SYMBOL_LEN];
      memcpy (t, a[c], k);
      memcpy (a[c], a[piv], k);
      memcpy (a[piv], t, k);
      memcpy (tr, rhs[c], sizeof (tr));
      memcpy (rhs[c], rhs[piv], sizeof (tr));
      memcpy (rhs[piv], tr, sizeof (tr));
    }
    {
      uint8_t inv = gf_inv (a[c][c]);
      for (unsigned x = 0; x < k; x++)
        a[c][x] = gf_mul (a[c][x], inv);
      for (unsigned b = 0; b < MCSEC_SAM_SYMBOL_LEN; b++)
        rhs[c][b] = gf_mul (rhs[c][b], inv);
    }
    for (unsigned r = 0; r < k; r++) {
      uint8_t f = a[r][c];
      if (r == c || f == 0)
        continue;
      for (unsigned x = 0; x < k; x++)
        a[r][x] ^= gf_mul (f, a[c][x]);
      sym_addmul (rhs[r], rhs[c], f);
    }
  }
  for (unsigned c = 0; c < k; c++)
    memcpy (p->hash[idx[unknown[c]]], rhs[c], MCSEC_SAM_SYMBOL_LEN);
  return 1;
}

/* Solve for the unknown data symbols of block p, then check the
 * signature.  Returns 1 when decided (verified or failed), 0 when more
 * symbols are needed. */
static int
try_decode (mcsec_sam_verifier_t *v, sender_t *s, pending_t *p)
{
  uint8_t *msg = v->msg;
  unsigned n, G;
  size_t len;

  if (p->decided)
    return 1;
  if (p->n < 0)
    return 0;
  n = (unsigned)p->n;
  G = codes_of (n);
  /* the signature symbols received directly are data of code 0 */
  for (unsigned k = 0; k < MCSEC_SAM_SIG_SYMBOLS; k++)
    if (p->sym_have[k])
      memcpy (p->hash[n + k], p->sym[k], MCSEC_SAM_SYMBOL_LEN);
  /* every code must be whole before the signature can be checked */
  for (unsigned g = 0; g < G; g++)
    if (!solve_code (v, p, n, g))
      return 0;
  len = block_message (msg, s->sender_id, p->block, n, p->hash);
  if (verify_raw (s->key, s->alg, msg, len, p->hash[n]) == MCSEC_OK) {
    decide (v, s, p, MCSEC_SAM_VERIFIED);
    anchor_at (v, s, p->block);
  } else {
    decide (v, s, p, MCSEC_SAM_FAILED);
  }
  return 1;
}

/* Block numbers further than this from the anchor belong to another run
 * of the sender (a restarted sender's blocks start at random), or to an
 * insider: they never count as newer or older than the anchor. */
#define RESTART_DISTANCE 1024

/* How far block b lies behind the anchor (negative: ahead); 0 without an
 * anchor, or when b is RESTART_DISTANCE or more away. */
static int32_t
behind_anchor (const sender_t *s, uint32_t b)
{
  int32_t d = (int32_t)(s->anchor - b);
  if (!s->seen || d >= RESTART_DISTANCE || d <= -RESTART_DISTANCE)
    return 0;
  return d;
}

/* The slot to reuse when all are taken.  Decided blocks go first (oldest
 * first); then the undecided block least likely to be the sender's next
 * ones: furthest from the anchor, or, without one, the oldest made. */
static pending_t *
slot_to_evict (sender_t *s)
{
  pending_t *best = NULL;
  int64_t best_score = INT64_MIN;

  for (unsigned k = 0; k < N_SLOTS; k++) {
    pending_t *p = &s->pend[k];
    int64_t score;
    if (p->decided) {
      score = ((int64_t)1 << 50) + behind_anchor (s, p->block);
    } else if (s->seen) {
      int32_t d = (int32_t)(s->anchor - p->block);
      int64_t dist = d < 0 ? -(int64_t)d : d;
      score = ((int64_t)1 << 40) + dist;
    } else {
      score = -(int64_t)p->arrival;
    }
    if (best == NULL || score > best_score) {
      best = p;
      best_score = score;
    }
  }
  return best;
}

/* The pending slot of block b, made when `create`; NULL if b is too old. */
static pending_t *
pending_for (mcsec_sam_verifier_t *v, sender_t *s, uint32_t b, int create)
{
  pending_t *free_slot = NULL;

  for (unsigned k = 0; s->pend != NULL && k < N_SLOTS; k++) {
    if (s->pend[k].used && s->pend[k].block == b)
      return &s->pend[k];
    if (!s->pend[k].used && free_slot == NULL)
      free_slot = &s->pend[k];
  }
  if (!create || s->pend == NULL)
    return NULL; /* (the caller makes the slots before creating) */
  if (behind_anchor (s, b) >= MCSEC_SAM_PENDING_BLOCKS)
    return NULL; /* too old: already given up on */
  if (free_slot == NULL) {
    free_slot = slot_to_evict (s);
    if (!free_slot->decided)
      decide (v, s, free_slot, MCSEC_SAM_UNVERIFIABLE);
  }
  memset (free_slot, 0, sizeof (*free_slot));
  free_slot->used = 1;
  free_slot->block = b;
  free_slot->n = -1;
  free_slot->arrival = ++s->arrivals;
  return free_slot;
}

/* Block b verified: it becomes the anchor when newer (or from another run
 * of the sender: a restart is followed once its first block verifies).
 * Blocks now too old, or of another run, are given up on. */
static void
anchor_at (mcsec_sam_verifier_t *v, sender_t *s, uint32_t b)
{
  int32_t d = (int32_t)(b - s->anchor);

  if (s->seen && d <= 0 && d > -RESTART_DISTANCE)
    return;
  s->anchor = b;
  s->seen = 1;
  for (unsigned k = 0; k < N_SLOTS; k++) {
    pending_t *p = &s->pend[k];
    int32_t age = (int32_t)(b - p->block);
    if (!p->used || p->block == b)
      continue;
    if (age >= MCSEC_SAM_PENDING_BLOCKS || age <= -RESTART_DISTANCE ||
        age >= RESTART_DISTANCE) {
      if (!p->decided)
        decide (v, s, p, MCSEC_SAM_UNVERIFIABLE);
      p->used = 0;
    }
  }
}

mcsec_status_t
mcsec_sam_verify (mcsec_sam_verifier_t *v, uint32_t spi, uint32_t sender_id,
                  uint64_t counter, uint64_t tag, const uint8_t *pkt,
                  size_t len, mcsec_sam_result_t *res)
{
  mcsec_sam_result_t local;
  sender_t *s;
  pending_t *p = NULL, *ap = NULL;
  uint32_t block, auth_block;
  unsigned index, count, delta, auth_n;
  mcsec_status_t st;

  if (res == NULL)
    res = &local;
  memset (res, 0, sizeof (*res));
  if (v == NULL || (pkt == NULL && len != 0))
    return MCSEC_ERR_INVALID_ARG;
  if (len < 2)
    return MCSEC_ERR_TOO_SHORT;
  s = find_sender (v, spi, sender_id);
  if (s == NULL)
    return MCSEC_ERR_NO_SENDER_KEY;
  if (pkt[1] != s->alg)
    return MCSEC_ERR_MALFORMED;

  if (pkt[0] == MCSEC_SAM_TYPE_SIGNED) {
    uint8_t digest[32];
    if (len < MCSEC_SAM_SIGNED_HEADER_LEN)
      return MCSEC_ERR_TOO_SHORT;
    st = packet_digest (v->md, v->sha, spi, sender_id, counter,
                        pkt + MCSEC_SAM_SIGNED_HEADER_LEN,
                        len - MCSEC_SAM_SIGNED_HEADER_LEN, digest);
    if (st)
      return st;
    st = verify_raw (s->key, s->alg, digest, sizeof (digest), pkt + 2);
    if (st)
      return st;
    res->outcome = MCSEC_SAM_VERIFIED;
    res->payload_offset = MCSEC_SAM_SIGNED_HEADER_LEN;
    res->payload_len = len - MCSEC_SAM_SIGNED_HEADER_LEN;
    return MCSEC_OK;
  }
  if (pkt[0] != MCSEC_SAM_TYPE_BLOCK && pkt[0] != MCSEC_SAM_TYPE_CARRIER)
    return MCSEC_ERR_MALFORMED;
  if (len < MCSEC_SAM_BLOCK_HEADER_LEN)
    return MCSEC_ERR_TOO_SHORT;
  block = mcsec_load_be32 (pkt + 2);
  index = pkt[6];
  delta = pkt[7];
  auth_n = (unsigned)pkt[8] + 1;
  count = pkt[9];
  if (count > MCSEC_SAM_MAX_CARRIED ||
      len < MCSEC_SAM_BLOCK_HEADER_LEN + (size_t)count * MCSEC_SAM_CARRIED_LEN)
    return MCSEC_ERR_MALFORMED;
  if (index >= MCSEC_SAM_BLOCK_MAX || (count > 0 && delta == 0))
    return MCSEC_ERR_MALFORMED;
  res->block = block;
  res->index = index;
  res->payload_offset =
      MCSEC_SAM_BLOCK_HEADER_LEN + (size_t)count * MCSEC_SAM_CARRIED_LEN;
  res->payload_len = len - res->payload_offset;

  /* this packet's own block */
  if (pkt[0] == MCSEC_SAM_TYPE_BLOCK) {
    if (s->pend == NULL &&
        (s->pend = calloc (N_SLOTS, sizeof (*s->pend))) == NULL)
      return MCSEC_ERR_NO_MEMORY;
    p = pending_for (v, s, block, 1);
    if (p != NULL && p->decided && !p->have[index]) {
      /* a late member of a decided block: judged on the spot */
      uint8_t h[MCSEC_SAM_HASH_LEN];
      st = member_hash (v->md, v->sha, spi, sender_id, counter, block, index,
                        pkt + res->payload_offset, res->payload_len, h);
      if (st)
        return st;
      res->outcome =
          p->decided == MCSEC_SAM_VERIFIED && p->n > (int)index &&
                  CRYPTO_memcmp (h, p->hash[index], sizeof (h)) == 0
              ? MCSEC_SAM_VERIFIED
              : (p->decided == MCSEC_SAM_UNVERIFIABLE ? MCSEC_SAM_UNVERIFIABLE
                                                      : MCSEC_SAM_FAILED);
      /* only the signed member takes the position: a forgery there does
       * not keep the genuine one out */
      if (res->outcome == MCSEC_SAM_VERIFIED) {
        p->have[index] = 1;
        p->spi[index] = spi;
        p->counter[index] = counter;
        p->tag[index] = tag;
      }
      /* the verdict is in the result: no event for this one */
      p = NULL;
    } else if (p != NULL && !p->have[index]) {
      st = member_hash (v->md, v->sha, spi, sender_id, counter, block, index,
                        pkt + res->payload_offset, res->payload_len,
                        p->hash[index]);
      if (st)
        return st;
      p->have[index] = 1;
      p->spi[index] = spi;
      p->counter[index] = counter;
      p->tag[index] = tag;
      res->outcome = MCSEC_SAM_PENDING;
    } else {
      /* a second packet at this position, or a block given up on */
      return p == NULL ? MCSEC_ERR_TOO_OLD : MCSEC_ERR_REPLAY;
    }
  } else {
    res->outcome = MCSEC_SAM_CARRIER;
    res->payload_len = 0;
  }

  /* the authenticator symbols of an earlier block */
  if (count > 0) {
    auth_block = block - delta;
    ap = pending_for (v, s, auth_block, 0);
    if (ap != NULL && ap->decided)
      ap = NULL;
    if (ap != NULL) {
      if (ap->n < 0)
        ap->n = (int)auth_n;
      if (ap->n == (int)auth_n) {
        for (unsigned c = 0; c < count; c++) {
          const uint8_t *e =
              pkt + MCSEC_SAM_BLOCK_HEADER_LEN + c * MCSEC_SAM_CARRIED_LEN;
          if (!ap->sym_have[e[0]]) {
            ap->sym_have[e[0]] = 1;
            memcpy (ap->sym[e[0]], e + 1, MCSEC_SAM_SYMBOL_LEN);
          }
        }
      }
    }
  }
  if (ap != NULL && ap->used)
    try_decode (v, s, ap);
  /* a block whose size is known may also complete by its own members */
  if (p != NULL && p != ap && p->used && p->n >= 0)
    try_decode (v, s, p);
  return MCSEC_OK;
}

void
mcsec_sam_verifier_flush (mcsec_sam_verifier_t *v)
{
  for (size_t i = 0; v && i < v->n_senders; i++) {
    sender_t *s = v->senders[i];
    for (unsigned k = 0; s->pend != NULL && k < N_SLOTS; k++)
      if (s->pend[k].used) {
        if (!try_decode (v, s, &s->pend[k]))
          decide (v, s, &s->pend[k], MCSEC_SAM_UNVERIFIABLE);
        s->pend[k].used = 0;
      }
  }
}

mcsec_status_t
mcsec_sam_locate (const uint8_t *pkt, size_t len, size_t *offset, size_t *dlen)
{
  size_t off;

  if (pkt == NULL || offset == NULL || dlen == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (len < 2)
    return MCSEC_ERR_TOO_SHORT;
  switch (pkt[0]) {
  case MCSEC_SAM_TYPE_SIGNED:
    off = MCSEC_SAM_SIGNED_HEADER_LEN;
    break;
  case MCSEC_SAM_TYPE_BLOCK:
  case MCSEC_SAM_TYPE_CARRIER:
    if (len < MCSEC_SAM_BLOCK_HEADER_LEN || pkt[9] > MCSEC_SAM_MAX_CARRIED)
      return MCSEC_ERR_MALFORMED;
    off = MCSEC_SAM_BLOCK_HEADER_LEN + (size_t)pkt[9] * MCSEC_SAM_CARRIED_LEN;
    break;
  default:
    return MCSEC_ERR_MALFORMED;
  }
  if (len < off)
    return MCSEC_ERR_TOO_SHORT;
  *offset = off;
  *dlen = pkt[0] == MCSEC_SAM_TYPE_CARRIER ? 0 : len - off;
  return MCSEC_OK;
}
