/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstmcsecdec.h"
#include "gstmcsecenc.h"
#include "gstmcseckeysrc.h"
#include "gstmcsecrtpdec.h"
#include "gstmcsecrtpenc.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ok = FALSE;

  ok |= GST_ELEMENT_REGISTER (mcsecenc, plugin);
  ok |= GST_ELEMENT_REGISTER (mcsecdec, plugin);
  ok |= GST_ELEMENT_REGISTER (mcseckeysrc, plugin);
  ok |= GST_ELEMENT_REGISTER (mcsecrtpenc, plugin);
  ok |= GST_ELEMENT_REGISTER (mcsecrtpdec, plugin);
  return ok;
}

#define PACKAGE "mcsec"
/* origin: the installed documents' folder (meson option doc-url) */
GST_PLUGIN_DEFINE (
    GST_VERSION_MAJOR, GST_VERSION_MINOR, mcsec,
    "Secure IP multicast: ESP group encryption with many senders", plugin_init,
    MCSEC_VERSION, "LGPL", "mcsec", MCSEC_DOC_URL)
