/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Known-answer tests of the ESP transforms against published ESP vectors:
 * draft-mcgrew-gcm-test-01 ("Test Cases for the use of GCM and GMAC in IPsec
 * ESP", the cases with a 32-bit sequence number and an AES-128/256 key) and
 * RFC 7634 Appendix A (ChaCha20-Poly1305 in ESP).  Each vector is a whole
 * ESP packet: SPI || SN || IV || ciphertext || ICV.  Both directions are
 * checked: open gives the published plaintext, seal gives the published
 * ciphertext and ICV byte for byte.
 */
#include "mcsec-private.h"
#include "mcsec-test.h"

typedef struct {
  const char *name;
  mcsec_suite_t suite;
  const char *key_salt;
  const char *spi_sn;
  const char *iv;
  const char *plaintext;  /* payload || padding || pad len || next header */
  const char *ciphertext; /* equal to plaintext for GMAC */
  const char *icv;
} kat_t;

static const kat_t kats[] = {
    {"gcm-test-01 p.7 (AES-128-GCM, 32-bit SN)", MCSEC_SUITE_AES_128_GCM,
     "feffe9928665731c6d6a8f9467308308"
     "cafebabe",
     "0000a5f8"
     "0000000a",
     "facedbaddecaf888",
     "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100"
     "0001000000000000037369700963796265726369747902646b00000100010001",
     "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c"
     "3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
     "83b70d3aa8bc6ee4c309e9d85a41ad4a"},
    {"gcm-test-01 p.8 (AES-256-GCM)", MCSEC_SUITE_AES_256_GCM,
     "abbccddef00112233445566778899aababbccddef00112233445566778899aab"
     "11223344",
     "4a2cbfe3"
     "00000002",
     "0102030405060708",
     "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
     "7002400020bf0000020405b40101040201020201",
     "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
     "748a637985771d347f0545659f14e99def842d8e",
     "b335f4eecfdbf831824b4c4915956c96"},
    {"gcm-test-01 p.16 (AES-128-GCM, empty payload)", MCSEC_SUITE_AES_128_GCM,
     "7d773d00c144c525ac619d18c84a3f47"
     "d9664267",
     "335467ae"
     "ffffffff",
     "43457e9182443bc6", "01020201", "437f866b",
     "cb3f699fe9b0822bac961c4504bef270"},
    {"gcm-test-01 p.18 (AES-128-GMAC, RFC 4543)", MCSEC_SUITE_AES_128_GMAC,
     "4c80cdefbb5d10da906ac73c3613a634"
     "22433c64",
     "00004321"
     "00000007",
     "0000000000000000",
     "45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364"
     "65666768696a6b6c6d6e6f707172737401020201",
     "45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364"
     "65666768696a6b6c6d6e6f707172737401020201",
     "f2a9a836e155106aa8dcd618e4099aaa"},
    {"RFC 7634 appendix A (ChaCha20-Poly1305)", MCSEC_SUITE_CHACHA20_POLY1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
     "a0a1a2a3",
     "01020304"
     "00000005",
     "1011121314151617",
     "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
     "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
     "2425262728292a2b2c2d2e2f303132333435363701020204",
     "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
     "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
     "cbec163fac469b502773f6fb94e664da9165b82829f641e0",
     "76aaa8266b7fb0f7b11b369907e1ad43"},
};

static void
run_kat (const kat_t *k)
{
  uint8_t key[64], pkt[512], expect_pkt[512], pt[512], out[512];
  size_t key_len, hdr, pt_len, ct_len, icv_len, total;
  mcsec_aead_t seal, open;

  key_len = test_unhex (k->key_salt, key, sizeof (key));
  hdr = test_unhex (k->spi_sn, expect_pkt, sizeof (expect_pkt));
  hdr += test_unhex (k->iv, expect_pkt + hdr, sizeof (expect_pkt) - hdr);
  REQUIRE (hdr == MCSEC_ESP_HEADER_LEN);
  ct_len =
      test_unhex (k->ciphertext, expect_pkt + hdr, sizeof (expect_pkt) - hdr);
  icv_len = test_unhex (k->icv, expect_pkt + hdr + ct_len,
                        sizeof (expect_pkt) - hdr - ct_len);
  REQUIRE (icv_len == MCSEC_ESP_ICV_LEN);
  total = hdr + ct_len + icv_len;
  pt_len = test_unhex (k->plaintext, pt, sizeof (pt));
  REQUIRE (pt_len == ct_len);

  CHECK_STATUS (mcsec_aead_init (&seal, k->suite, key, key_len, 1), MCSEC_OK);
  CHECK_STATUS (mcsec_aead_init (&open, k->suite, key, key_len, 0), MCSEC_OK);

  /* open: the published packet gives the published plaintext */
  memset (out, 0, sizeof (out));
  CHECK_STATUS (mcsec_aead_open (&open, expect_pkt, ct_len, out, NULL),
                MCSEC_OK);
  CHECK (memcmp (out, pt, pt_len) == 0);

  /* open in place */
  memcpy (pkt, expect_pkt, total);
  CHECK_STATUS (mcsec_aead_open (&open, pkt, ct_len, pkt + hdr, NULL),
                MCSEC_OK);
  CHECK (memcmp (pkt + hdr, pt, pt_len) == 0);

  /* seal: header + plaintext in, the published packet out */
  memcpy (pkt, expect_pkt, hdr);
  memcpy (pkt + hdr, pt, pt_len);
  CHECK_STATUS (mcsec_aead_seal (&seal, pkt, 0, pkt + hdr, pt_len, pt_len),
                MCSEC_OK);
  CHECK (memcmp (pkt, expect_pkt, total) == 0);

  /* a second packet through the same contexts: no state carried over */
  memcpy (pkt, expect_pkt, hdr);
  memcpy (pkt + hdr, pt, pt_len);
  CHECK_STATUS (mcsec_aead_seal (&seal, pkt, 0, pkt + hdr, pt_len, pt_len),
                MCSEC_OK);
  CHECK (memcmp (pkt, expect_pkt, total) == 0);

  /* seal from a separate buffer: payload read from pt, trailer in place */
  memset (pkt, 0, sizeof (pkt));
  memcpy (pkt, expect_pkt, hdr);
  memcpy (pkt + hdr + pt_len - 4, pt + pt_len - 4, 4);
  CHECK_STATUS (mcsec_aead_seal (&seal, pkt, 0, pt, pt_len - 4, pt_len),
                MCSEC_OK);
  CHECK (memcmp (pkt, expect_pkt, total) == 0);

  /* a wrong ICV is refused and no plaintext is left behind */
  memcpy (pkt, expect_pkt, total);
  pkt[total - 1] ^= 0x80;
  memset (out, 0xaa, sizeof (out));
  CHECK_STATUS (mcsec_aead_open (&open, pkt, ct_len, out, NULL),
                MCSEC_ERR_AUTH);
  if (mcsec_suite_encrypts (k->suite))
    CHECK (pt_len == 0 || memcmp (out, pt, pt_len) != 0);

  mcsec_aead_clear (&seal);
  mcsec_aead_clear (&open);
  printf ("  %s: done\n", k->name);
}

int
main (void)
{
  for (size_t i = 0; i < sizeof (kats) / sizeof (kats[0]); i++)
    run_kat (&kats[i]);
  return test_done ("test-esp-kat");
}
