/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef GST_MCSEC_KEYSRC_H
#define GST_MCSEC_KEYSRC_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_MCSEC_KEYSRC (gst_mcsec_keysrc_get_type ())
G_DECLARE_FINAL_TYPE (GstMcsecKeysrc, gst_mcsec_keysrc, GST, MCSEC_KEYSRC,
                      GstElement)

GST_ELEMENT_REGISTER_DECLARE (mcseckeysrc);

G_END_DECLS

#endif
