/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef GST_MCSEC_RTP_ENC_H
#define GST_MCSEC_RTP_ENC_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_MCSEC_RTP_ENC (gst_mcsec_rtp_enc_get_type ())
G_DECLARE_FINAL_TYPE (GstMcsecRtpEnc, gst_mcsec_rtp_enc, GST, MCSEC_RTP_ENC,
                      GstBin)

GST_ELEMENT_REGISTER_DECLARE (mcsecrtpenc);

G_END_DECLS

#endif
