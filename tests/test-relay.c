/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * test-relay: the relay links' codec (tools/controller/relay.h,
 * docs/cluster.md "Relaying"): frames and their bounds, the links' key
 * (HKDF, checked against OpenSSL's EVP_PKEY HKDF called here), the HELLO's
 * MAC (recomputed here from the layout the document gives: any byte
 * changed, another key, another TLS session or the other role, and it
 * does not prove), OPEN's strings, and the buffer that wipes what it
 * leaves.  The links themselves run in tests/cluster.sh (case relay).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "mcsec-test.h"
#include "relay.h"

static void
test_frames (void)
{
  guint8 buf[CTL_RELAY_HEADER_LEN + CTL_RELAY_MAX_BODY + 1];
  CtlRelayFrame f;

  memset (buf, 0x5a, sizeof buf);
  ctl_relay_frame_header (buf, CTL_RELAY_DATA, 7, 3);
  CHECK (ctl_relay_frame_parse (buf, 8, &f) == 0);
  CHECK (ctl_relay_frame_parse (buf, 11, &f) == 0); /* body cut */
  CHECK (ctl_relay_frame_parse (buf, 12, &f) == 12);
  CHECK (f.type == CTL_RELAY_DATA && f.stream == 7 && f.len == 3 &&
         f.body == buf + CTL_RELAY_HEADER_LEN);
  CHECK (ctl_relay_frame_parse (buf, sizeof buf, &f) == 12);
  /* the header's bytes, as the document lays them out */
  CHECK (buf[0] == 3 && buf[1] == 0 && buf[4] == 7 && buf[8] == 3);
  ctl_relay_frame_header (buf, CTL_RELAY_DATA, 7, CTL_RELAY_MAX_BODY);
  CHECK (ctl_relay_frame_parse (buf, sizeof buf, &f) ==
         CTL_RELAY_HEADER_LEN + CTL_RELAY_MAX_BODY);
  ctl_relay_frame_header (buf, CTL_RELAY_DATA, 7, CTL_RELAY_MAX_BODY + 1);
  CHECK (ctl_relay_frame_parse (buf, sizeof buf, &f) == -1);
  /* a length past any limit is refused before its body arrives */
  ctl_relay_frame_header (buf, CTL_RELAY_DATA, 7, 0xffffffffu);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) == -1);
  ctl_relay_frame_header (buf, 0, 7, 0);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) == -1);
  ctl_relay_frame_header (buf, CTL_RELAY_CLOSE + 1, 7, 0);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) == -1);
  /* HELLO on stream 0 only, and nothing else there */
  ctl_relay_frame_header (buf, CTL_RELAY_HELLO, 1, 0);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) == -1);
  ctl_relay_frame_header (buf, CTL_RELAY_OPEN, 0, 0);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) == -1);
  ctl_relay_frame_header (buf, CTL_RELAY_HELLO, 0, 0);
  CHECK (ctl_relay_frame_parse (buf, CTL_RELAY_HEADER_LEN, &f) ==
         CTL_RELAY_HEADER_LEN);
}

/* HKDF-SHA256 through EVP_PKEY_CTX, not the EVP_KDF API relay.c uses. */
static void
test_key (void)
{
  guint8 ck[32], key[CTL_RELAY_KEY_LEN], want[CTL_RELAY_KEY_LEN];
  size_t wl = sizeof want;
  EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id (EVP_PKEY_HKDF, NULL);
  static const char info[] = "mcsec relay link v1";

  for (guint i = 0; i < sizeof ck; i++)
    ck[i] = (guint8)(i * 7 + 1);
  CHECK (ctl_relay_key (ck, key));
  CHECK (pc && EVP_PKEY_derive_init (pc) == 1 &&
         EVP_PKEY_CTX_set_hkdf_md (pc, EVP_sha256 ()) == 1 &&
         EVP_PKEY_CTX_set1_hkdf_key (pc, ck, sizeof ck) == 1 &&
         EVP_PKEY_CTX_add1_hkdf_info (pc, (const guint8 *)info,
                                      strlen (info)) == 1 &&
         EVP_PKEY_derive (pc, want, &wl) == 1 && wl == sizeof want);
  EVP_PKEY_CTX_free (pc);
  CHECK (memcmp (key, want, sizeof key) == 0);
  CHECK (memcmp (key, ck, sizeof key) != 0); /* never the cluster key */
}

/* HMAC-SHA256 over "mcsec relay hello v1\0" | role | name length | name |
 * binding, computed here. */
static void
expected_mac (const guint8 *key, guint8 role, const char *name,
              const guint8 *binding, guint8 *mac)
{
  static const char label[] = "mcsec relay hello v1";
  guint8 in[512];
  gsize n = 0, ml = 0;
  memcpy (in, label, sizeof label);
  n = sizeof label;
  in[n++] = role;
  in[n++] = (guint8)strlen (name);
  memcpy (in + n, name, strlen (name));
  n += strlen (name);
  memcpy (in + n, binding, 32);
  n += 32;
  CHECK (EVP_Q_mac (NULL, "HMAC", NULL, "SHA256", NULL, key, 32, in, n, mac, 32,
                    &ml) != NULL &&
         ml == 32);
}

static void
test_hello (void)
{
  guint8 key[CTL_RELAY_KEY_LEN], other[CTL_RELAY_KEY_LEN], binding[32],
      binding2[32], body[3 + CTL_RELAY_MAX_NAME + CTL_RELAY_MAC_LEN], mac[32];
  gchar name[CTL_RELAY_MAX_NAME + 1], longname[300];
  gsize n;
  gboolean any_passed = FALSE;

  memset (key, 0x11, sizeof key);
  memset (other, 0x11, sizeof other);
  other[31] ^= 1;
  for (guint i = 0; i < 32; i++) {
    binding[i] = (guint8)i;
    binding2[i] = (guint8)(i + 1);
  }
  n = ctl_relay_hello_build (key, CTL_RELAY_ROLE_FOLLOWER, "c2", binding, body);
  CHECK (n == 3 + 2 + 32);
  CHECK (body[0] == 1 && body[1] == 1 && body[2] == 2 &&
         memcmp (body + 3, "c2", 2) == 0);
  expected_mac (key, 1, "c2", binding, mac);
  CHECK (memcmp (body + 5, mac, 32) == 0);
  CHECK (ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding, body, n,
                                name));
  CHECK (strcmp (name, "c2") == 0);
  /* another key, another session, the other role, a byte short or more */
  CHECK (!ctl_relay_hello_check (other, CTL_RELAY_ROLE_FOLLOWER, binding, body,
                                 n, name));
  CHECK (!ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding2, body,
                                 n, name));
  CHECK (!ctl_relay_hello_check (key, CTL_RELAY_ROLE_LEADER, binding, body, n,
                                 name));
  CHECK (!ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding, body,
                                 n - 1, name));
  CHECK (!ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding, body,
                                 n + 1, name));
  /* any byte changed */
  for (gsize i = 0; i < n; i++) {
    body[i] ^= 0x04;
    any_passed |= ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding,
                                         body, n, name);
    body[i] ^= 0x04;
  }
  CHECK (!any_passed);
  /* the leader's answer is bound to its role */
  n = ctl_relay_hello_build (key, CTL_RELAY_ROLE_LEADER, "c1", binding, body);
  CHECK (ctl_relay_hello_check (key, CTL_RELAY_ROLE_LEADER, binding, body, n,
                                name) &&
         strcmp (name, "c1") == 0);
  CHECK (!ctl_relay_hello_check (key, CTL_RELAY_ROLE_FOLLOWER, binding, body, n,
                                 name));
  /* names that would break a log line, or too long */
  CHECK (ctl_relay_hello_build (key, 1, "c 2", binding, body) == 0);
  CHECK (ctl_relay_hello_build (key, 1, "", binding, body) == 0);
  memset (longname, 'a', 256);
  longname[256] = '\0';
  CHECK (ctl_relay_hello_build (key, 1, longname, binding, body) == 0);
  longname[255] = '\0';
  CHECK (ctl_relay_hello_build (key, 1, longname, binding, body) ==
         3 + 255 + 32);
}

static void
test_open (void)
{
  guint8 body[2 + 2 * CTL_RELAY_MAX_NAME + 1];
  gchar source[CTL_RELAY_MAX_NAME + 1], identity[CTL_RELAY_MAX_NAME + 1];
  gsize n = ctl_relay_open_build ("10.0.0.7:5000", "rx1", body);

  CHECK (n == 2 + 13 + 3);
  CHECK (ctl_relay_open_parse (body, n, source, identity));
  CHECK (strcmp (source, "10.0.0.7:5000") == 0 &&
         strcmp (identity, "rx1") == 0);
  CHECK (!ctl_relay_open_parse (body, n - 1, source, identity));
  body[n] = 'x';
  CHECK (!ctl_relay_open_parse (body, n + 1, source, identity));
  CHECK (!ctl_relay_open_parse (body, 0, source, identity));
  body[0] = 200; /* the source's length runs past the end */
  CHECK (!ctl_relay_open_parse (body, n, source, identity));
  n = ctl_relay_open_build ("10.0.0.7:5000", "rx1", body);
  body[n - 1] = '"'; /* an identity that would end a quoted log value */
  CHECK (!ctl_relay_open_parse (body, n, source, identity));
  body[n - 1] = ' ';
  CHECK (!ctl_relay_open_parse (body, n, source, identity));
  CHECK (ctl_relay_open_build ("", "rx1", body) == 0);
  CHECK (ctl_relay_open_build ("a", "", body) == 0);
}

/* Stream numbers: from 1, never 0 (the HELLO's), and after 2^32 past
 * those still open rather than onto them. */
static void
test_streams (void)
{
  GHashTable *open = g_hash_table_new (NULL, NULL);
  guint32 last = 0;

  CHECK (ctl_relay_stream_next (&last, open) == 1);
  CHECK (ctl_relay_stream_next (&last, open) == 2 && last == 2);
  g_hash_table_add (open, GUINT_TO_POINTER (G_MAXUINT32));
  g_hash_table_add (open, GUINT_TO_POINTER (1));
  g_hash_table_add (open, GUINT_TO_POINTER (2));
  last = G_MAXUINT32 - 2;
  CHECK (ctl_relay_stream_next (&last, open) == G_MAXUINT32 - 1);
  /* G_MAXUINT32, 1 and 2 are open, 0 is not a stream */
  CHECK (ctl_relay_stream_next (&last, open) == 3);
  g_hash_table_unref (open);
}

static gboolean
wiped (const guint8 *p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (p[i])
      return FALSE;
  return TRUE;
}

/* Bytes outside [off, len) are zero: consumed ones, and those a move down
 * left behind. */
static void
test_buf (void)
{
  CtlRelayBuf b = {0};
  guint8 secret[3000];

  memset (secret, 0xa5, sizeof secret);
  ctl_relay_buf_append (&b, secret, sizeof secret);
  CHECK (ctl_relay_buf_len (&b) == 3000 && b.cap >= 3000);
  ctl_relay_buf_consume (&b, 2900);
  CHECK (ctl_relay_buf_len (&b) == 100 && wiped (b.data, b.off));
  ctl_relay_buf_append (&b, secret, 1500); /* moves down: room at the front */
  CHECK (b.off == 0 && ctl_relay_buf_len (&b) == 1600);
  CHECK (wiped (b.data + b.len, b.cap - b.len));
  CHECK (memcmp (ctl_relay_buf_data (&b), secret, 1600) == 0);
  ctl_relay_buf_consume (&b, 5000); /* more than it holds: all of it */
  CHECK (ctl_relay_buf_len (&b) == 0 && wiped (b.data, b.cap));
  ctl_relay_buf_clear (&b);
  CHECK (b.data == NULL && b.cap == 0);
}

int
main (void)
{
  test_frames ();
  test_key ();
  test_hello ();
  test_open ();
  test_streams ();
  test_buf ();
  return test_done ("test-relay");
}
