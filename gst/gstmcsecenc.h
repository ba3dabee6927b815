/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef GST_MCSEC_ENC_H
#define GST_MCSEC_ENC_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_MCSEC_ENC (gst_mcsec_enc_get_type ())
G_DECLARE_FINAL_TYPE (GstMcsecEnc, gst_mcsec_enc, GST, MCSEC_ENC, GstElement)

GST_ELEMENT_REGISTER_DECLARE (mcsecenc);

G_END_DECLS

#endif
