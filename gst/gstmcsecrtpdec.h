/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef GST_MCSEC_RTP_DEC_H
#define GST_MCSEC_RTP_DEC_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_MCSEC_RTP_DEC (gst_mcsec_rtp_dec_get_type ())
G_DECLARE_FINAL_TYPE (GstMcsecRtpDec, gst_mcsec_rtp_dec, GST, MCSEC_RTP_DEC,
                      GstBin)

GST_ELEMENT_REGISTER_DECLARE (mcsecrtpdec);

G_END_DECLS

#endif
