/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target: MIKE bytes from a controller.  The input is parsed as
 * one frame (parser and signature check), then fed as a TLS byte stream to
 * a member that has just sent JOIN, to a member that already holds a
 * WELCOME from the fixed controller key below (so that signed updates in
 * the seeds reach the update logic), and to one welcomed into a key tree
 * group (path keys, rekeys repaired over the connection).  An input whose
 * first frame lists an SA that is the base of a block of SPIs for 16-bit
 * Sender-IDs (its low 16 bits zero: the seeds made for it) goes to members
 * of such groups, with per-sender SPIs, instead (every other SA is then
 * refused); any other SPI means the same to a plain group.  Nothing may
 * crash or leak; every outcome is an error code or an event.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <mcsec/mcsec-mike.h>

#include "fuzz-mike.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
drain (mcsec_member_t *m)
{
  mcsec_member_event_t ev;
  const uint8_t *out;
  mcsec_msa_t *msa = NULL;
  int dead;

  while (mcsec_member_next_event (m, &ev))
    if (ev.text[sizeof ev.text - 1] != '\0')
      abort ();
  mcsec_member_written (m, mcsec_member_output (m, &out));
  mcsec_member_tick (m, 1000000, &dead);
  if (mcsec_member_msa (m, &msa) == MCSEC_OK && msa) {
    if (msa->n_sas > MCSEC_MIKE_MAX_SAS * 2 ||
        msa->n_senders > MCSEC_MIKE_MAX_SENDERS)
      abort ();
    /* a group with per-sender SPIs holds blocks' bases only */
    for (size_t i = 0; msa->spi_per_sender && i < msa->n_sas; i++)
      if ((msa->sas[i].spi & ((UINT32_C (1) << msa->sender_id_bits) - 1)) != 0)
        abort ();
    mcsec_msa_free (msa);
  }
}

/* The first frame of the input lists an SA (or DERIVED_SA) whose low 16
 * bits are zero. */
static int
per_sender_input (const uint8_t *data, size_t size)
{
  static mcsec_mike_msg_t first;
  size_t len;

  if (size < 4)
    return 0;
  len = ((size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 |
         data[3]) +
        4;
  if (len > size || mcsec_mike_parse (data, len, &first) != MCSEC_OK)
    return 0;
  if (first.n_sas)
    return (first.sas[0].spi & 0xffff) == 0;
  return first.has_derived_sa && (first.derived_sa.spi & 0xffff) == 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static EVP_PKEY *ctl, *sam;
  static mcsec_mike_msg_t msg;
  mcsec_member_config_t cfg = {FUZZ_MIKE_GROUP, MCSEC_MIKE_ROLE_BOTH, NULL, 2};
  uint8_t welcome[1024];
  size_t welcome_len;
  mcsec_member_t *m;
  int per_sender;

  if (ctl == NULL) {
    ctl = fuzz_mike_controller_key ();
    sam = fuzz_mike_controller_key ();
  }
  if (ctl == NULL)
    return 0;
  if (mcsec_mike_parse (data, size, &msg) == MCSEC_OK &&
      msg.type == MCSEC_MIKE_REKEY) {
    /* every WRAPPED_KEY the parser counted lies inside the frame */
    for (size_t i = 0; i < msg.n_wrapped; i++) {
      uint32_t node, wrapper;
      const uint8_t *w;
      mcsec_mike_wrapped_key (&msg, i, &node, &wrapper, &w);
      if (w < data || w + 24 > data + size)
        abort ();
    }
  }
  if (mcsec_mike_parse (data, size, &msg) == MCSEC_OK) {
    /* so does every PATH_KEY */
    for (size_t i = 0; i < msg.n_path; i++) {
      uint32_t node;
      const uint8_t *k;
      mcsec_mike_path_key (&msg, i, &node, &k);
      if (k < data || k + 16 > data + size)
        abort ();
    }
  }
  if (mcsec_mike_parse (data, size, &msg) == MCSEC_OK &&
      msg.type == MCSEC_MIKE_UPDATE &&
      mcsec_mike_verify (&msg, ctl) == MCSEC_OK && msg.n_sas == 0 &&
      msg.n_senders > MCSEC_MIKE_MAX_SENDERS)
    abort ();

  cfg.sam_key = sam;
  per_sender = per_sender_input (data, size);
  for (int welcomed = 0; welcomed < 3; welcomed++) {
    if (mcsec_member_new (&cfg, &m) != MCSEC_OK)
      return 0;
    mcsec_member_connected (m, 1000);
    if (welcomed) {
      welcome_len = fuzz_mike_welcome_ex (ctl, welcomed == 2, per_sender,
                                          welcome, sizeof welcome);
      if (welcome_len == 0 ||
          mcsec_member_receive (m, welcome, welcome_len, 1000) != MCSEC_OK)
        abort ();
    }
    /* in two pieces, the way TLS records may cut it */
    if (mcsec_member_receive (m, data, size / 2, 1001) == MCSEC_OK &&
        mcsec_member_receive (m, data + size / 2, size - size / 2, 1002) ==
            MCSEC_OK &&
        mcsec_member_state (m) == MCSEC_MEMBER_IDLE)
      abort (); /* a member that took bytes is past IDLE */
    drain (m);
    mcsec_member_free (m);
  }
  return 0;
}
