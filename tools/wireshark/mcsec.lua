-- mcsec: secure IP multicast for media pipelines
-- Copyright (C) 2026 The mcsec authors
-- SPDX-License-Identifier: LGPL-2.1-or-later
--
-- Wireshark dissector for what mcsec carries inside ESP (docs/wire-format.md
-- section 5).  Wireshark's ESP dissector, once it has decrypted a packet
-- (an SA from `mcsecctl wireshark-esp`), hands the payload to the
-- "ip.proto" table under the packet's Next Header:
--
--   253  one application datagram, without its UDP header: dissected as
--        RTP (or RTCP), as MPEG-TS, or as data (preference "payload")
--   254  source-authentication (SAM) data, then the datagram (per-packet
--        signature, block member) or nothing (carrier):
--        docs/source-authentication.md "Wire format"
--
-- Fields: mcsec.* and mcsec.sam.*; Sender-ID and counter come from the ESP
-- IV (Sender-ID || counter, preference "sender_id_bits").  Malformed SAM
-- data is flagged with expert info, never a Lua error.
--
-- Install: meson installs it in <libdir>/wireshark/plugins (Wireshark's
-- global Lua plugin folder when the prefix is /usr); or copy it to
-- ~/.local/lib/wireshark/plugins/, or load it once with
-- `tshark -X lua_script:mcsec.lua` (docs/controller.md).

if set_plugin_info then
  set_plugin_info({
    version = "1.0.0",
    description = "mcsec: ESP Next Headers 253 (datagram) and 254 (SAM)",
    author = "The mcsec authors",
  })
end

local NH_DATAGRAM = 253
local NH_SAM = 254

local TS_PACKET = 188
local TS_SYNC = 0x47

local SAM_SIGNED, SAM_BLOCK, SAM_CARRIER = 1, 2, 3
local SAM_SIG_LEN = 64
local SAM_SIGNED_HEADER_LEN = 2 + SAM_SIG_LEN
local SAM_BLOCK_HEADER_LEN = 10
local SAM_SYMBOL_LEN = 16
local SAM_CARRIED_LEN = 1 + SAM_SYMBOL_LEN
local SAM_MAX_CARRIED = 4
local SAM_SIG_SYMBOLS = 4

-- ------------------------------------------------------------------------
-- Next Header 253: the application datagram

local mcsec = Proto("mcsec", "mcsec application datagram")

local KIND_DATA, KIND_RTP, KIND_RTCP, KIND_TS = 0, 1, 2, 3
local kind_names = {
  [KIND_DATA] = "data",
  [KIND_RTP] = "RTP",
  [KIND_RTCP] = "RTCP",
  [KIND_TS] = "MPEG-TS",
}

local f = {
  sender_id = ProtoField.uint32("mcsec.sender_id", "Sender-ID", base.DEC, nil,
    nil, "Sender-ID: the top bits of the ESP IV (preference sender_id_bits)"),
  counter = ProtoField.uint64("mcsec.counter", "Counter", base.DEC, nil, nil,
    "The sender's counter: the low bits of the ESP IV"),
  length = ProtoField.uint32("mcsec.length", "Datagram length", base.DEC),
  payload = ProtoField.uint8("mcsec.payload", "Payload", base.DEC,
    kind_names, nil, "What the datagram was dissected as"),
}
mcsec.fields = { f.sender_id, f.counter, f.length, f.payload }
-- a bug of this file, caught: said in the tree, never a Lua error
local dissector_error = ProtoExpert.new("mcsec.dissector_error",
  "mcsec dissector error", expert.group.MALFORMED, expert.severity.ERROR)
mcsec.experts = { dissector_error }

-- fn(tvb, pinfo, tree), its errors caught
local function guarded(fn)
  return function(tvb, pinfo, tree)
    local ok, err = pcall(fn, tvb, pinfo, tree)
    if not ok then
      tree:add_proto_expert_info(dissector_error,
        "mcsec dissector error: " .. tostring(err))
    end
    return tvb:len()
  end
end

local PAYLOAD_HEURISTIC, PAYLOAD_RTP, PAYLOAD_TS, PAYLOAD_DATA = 0, 1, 2, 3
mcsec.prefs.payload = Pref.enum("Datagram payload", PAYLOAD_HEURISTIC,
  "How to dissect the application datagram (next header 253, and the " ..
  "datagram behind SAM data): heuristic (MPEG-TS when it is 188-byte " ..
  "packets that start with 0x47, RTP or RTCP when it looks like RTP " ..
  "version 2, else data), or always RTP, MPEG-TS or data",
  {
    { "heuristic", "Heuristic: MPEG-TS, RTP/RTCP or data", PAYLOAD_HEURISTIC },
    { "rtp", "RTP", PAYLOAD_RTP },
    { "mpeg-ts", "MPEG-TS", PAYLOAD_TS },
    { "data", "Data", PAYLOAD_DATA },
  }, false)
mcsec.prefs.sender_id_bits = Pref.uint("Sender-ID bits", 16,
  "Width S of the Sender-ID in the ESP IV (the group's sender-id-bits, " ..
  "8 to 32): the IV is Sender-ID (S bits) || counter (64 - S bits)")

-- dissectors found at the first packet (after every plugin registered)
local handles

local function handle(name)
  local ok, d = pcall(Dissector.get, name)
  if ok then
    return d
  end
  return nil
end

local function get_handles()
  if handles == nil then
    handles = {
      [KIND_RTP] = handle("rtp"),
      [KIND_RTCP] = handle("rtcp"),
      [KIND_TS] = handle("mp2t"),
      [KIND_DATA] = handle("data"),
    }
  end
  return handles
end

local function looks_like_ts(tvb, len)
  if len < TS_PACKET or len % TS_PACKET ~= 0 then
    return false
  end
  for off = 0, len - 1, TS_PACKET do
    if tvb(off, 1):uint() ~= TS_SYNC then
      return false
    end
  end
  return true
end

-- RTP version 2 (RFC 3550 5.1) whose header fits, or RTCP (RFC 5761 4:
-- packet types 200-211 in the second byte)
local function rtp_or_rtcp(tvb, len)
  if len < 4 then
    return nil
  end
  local b0 = tvb(0, 1):uint()
  local b1 = tvb(1, 1):uint()
  -- (arithmetic, not bit32: Lua 5.2 has it, 5.3 and later do not)
  if math.floor(b0 / 64) ~= 2 then
    return nil
  end
  if b1 >= 200 and b1 <= 211 then
    if (tvb(2, 2):uint() + 1) * 4 <= len then
      return KIND_RTCP
    end
    return nil
  end
  local hdr = 12 + 4 * (b0 % 16)
  if len < hdr then
    return nil
  end
  if math.floor(b0 / 16) % 2 == 1 then -- header extension
    if len < hdr + 4 then
      return nil
    end
    hdr = hdr + 4 + 4 * tvb(hdr + 2, 2):uint()
    if len < hdr then
      return nil
    end
  end
  if math.floor(b0 / 32) % 2 == 1 then -- padding: the last byte counts it
    local pad = tvb(len - 1, 1):uint()
    if pad == 0 or hdr + pad > len then
      return nil
    end
  end
  return KIND_RTP
end

local function classify(tvb, len)
  local choice = mcsec.prefs.payload
  if choice == PAYLOAD_RTP then
    return KIND_RTP
  elseif choice == PAYLOAD_TS then
    return KIND_TS
  elseif choice == PAYLOAD_DATA or len == 0 then
    return KIND_DATA
  end
  if looks_like_ts(tvb, len) then
    return KIND_TS
  end
  return rtp_or_rtcp(tvb, len) or KIND_DATA
end

-- Sender-ID and counter, from the IV of the ESP packet that carried this
local esp_iv_ok, esp_iv = pcall(Field.new, "esp.iv")

local function add_sender(tree)
  if not esp_iv_ok then
    return
  end
  local ivs = { esp_iv() }
  local iv = ivs[#ivs]
  local bits = mcsec.prefs.sender_id_bits
  if iv == nil or iv.len ~= 8 or bits < 8 or bits > 32 then
    return
  end
  local r = iv.range
  tree:add(f.sender_id, r, r:bitfield(0, bits)):set_generated()
  tree:add(f.counter, r, r:bitfield(bits, 64 - bits)):set_generated()
end

-- The datagram in tvb: an mcsec item (with the sender when with_sender),
-- then RTP, RTCP, MPEG-TS or data at the top of the tree, as Wireshark
-- shows what ESP decrypted.  The Info column says what it is, and keeps
-- `note` (the SAM summary) when the datagram's dissector rewrites it.
local function dissect_datagram(tvb, pinfo, tree, with_sender, note)
  local len = tvb:len()
  local kind = classify(tvb, len)
  local d = get_handles()[kind]
  if d == nil then
    kind = KIND_DATA
    d = get_handles()[KIND_DATA]
  end
  local item = tree:add(mcsec, tvb(), "mcsec datagram, " .. len ..
    " bytes, " .. kind_names[kind])
  if with_sender then
    add_sender(item)
  end
  item:add(f.length, len):set_generated()
  item:add(f.payload, kind):set_generated()
  local summary = (note and note .. ": " or "mcsec ") .. kind_names[kind] ..
    ", " .. len .. " bytes"
  pinfo.cols.info = summary
  if d ~= nil then
    -- a sub-dissector that throws (a malformed RTP header) has marked the
    -- packet malformed already; its error must not become a Lua error
    pcall(d.call, d, tvb, pinfo, tree)
  end
  if note and tostring(pinfo.cols.info) ~= summary then
    pinfo.cols.info:append(" [" .. note .. "]")
  end
end

mcsec.dissector = guarded(function(tvb, pinfo, tree)
  pinfo.cols.protocol = "MCSEC"
  dissect_datagram(tvb, pinfo, tree, true, nil)
end)

-- ------------------------------------------------------------------------
-- Next Header 254: source authentication (SAM)

local sam = Proto("mcsec.sam", "mcsec source authentication (SAM)")

local sam_types = {
  [SAM_SIGNED] = "per-packet signature",
  [SAM_BLOCK] = "block member",
  [SAM_CARRIER] = "carrier",
}
local sam_algs = { [1] = "Ed25519", [2] = "ECDSA P-256" }

local sf = {
  type = ProtoField.uint8("mcsec.sam.type", "Type", base.DEC, sam_types),
  alg = ProtoField.uint8("mcsec.sam.alg", "Signature algorithm", base.DEC,
    sam_algs),
  signature = ProtoField.bytes("mcsec.sam.signature", "Signature"),
  block = ProtoField.uint32("mcsec.sam.block", "Block", base.DEC, nil, nil,
    "The sender's block number: this packet's (member) or its current " ..
    "one (carrier)"),
  index = ProtoField.uint8("mcsec.sam.index", "Index", base.DEC, nil, nil,
    "Position in the block"),
  delta = ProtoField.uint8("mcsec.sam.delta", "Delta", base.DEC, nil, nil,
    "The symbols carried belong to block (block - delta)"),
  auth_block = ProtoField.uint32("mcsec.sam.auth_block",
    "Authenticator of block", base.DEC),
  auth_n = ProtoField.uint16("mcsec.sam.auth_n", "Packets in that block",
    base.DEC, nil, nil, "auth_n - 1 on the wire"),
  count = ProtoField.uint8("mcsec.sam.count", "Symbols carried", base.DEC),
  symbol = ProtoField.none("mcsec.sam.symbol", "Symbol"),
  symbol_id = ProtoField.uint8("mcsec.sam.symbol.id", "Symbol id", base.DEC,
    nil, nil, "0-3: quarters of the block signature; 4 + j: parity j"),
  symbol_value = ProtoField.bytes("mcsec.sam.symbol.value", "Symbol value"),
  datagram_len = ProtoField.uint32("mcsec.sam.datagram_length",
    "Datagram length", base.DEC),
}
sam.fields = {
  sf.type, sf.alg, sf.signature, sf.block, sf.index, sf.delta,
  sf.auth_block, sf.auth_n, sf.count, sf.symbol, sf.symbol_id,
  sf.symbol_value, sf.datagram_len,
}

local ef = {
  short = ProtoExpert.new("mcsec.sam.too_short", "SAM data too short",
    expert.group.MALFORMED, expert.severity.ERROR),
  bad_type = ProtoExpert.new("mcsec.sam.unknown_type", "Unknown SAM type",
    expert.group.MALFORMED, expert.severity.ERROR),
  bad_alg = ProtoExpert.new("mcsec.sam.unknown_alg",
    "Unknown signature algorithm", expert.group.PROTOCOL,
    expert.severity.WARN),
  bad_count = ProtoExpert.new("mcsec.sam.too_many_symbols",
    "More symbols than a packet carries (4)", expert.group.MALFORMED,
    expert.severity.ERROR),
  bad_delta = ProtoExpert.new("mcsec.sam.zero_delta",
    "Symbols carried with delta 0", expert.group.MALFORMED,
    expert.severity.ERROR),
  carrier_data = ProtoExpert.new("mcsec.sam.carrier_trailing",
    "Bytes after a carrier's symbols", expert.group.PROTOCOL,
    expert.severity.WARN),
}
sam.experts = {
  ef.short, ef.bad_type, ef.bad_alg, ef.bad_count, ef.bad_delta,
  ef.carrier_data,
}

local function symbol_name(id)
  if id < SAM_SIG_SYMBOLS then
    return "signature quarter " .. id
  end
  return "parity " .. (id - SAM_SIG_SYMBOLS)
end

-- The block header of types 2 and 3; the offset after it and the info text,
-- or nil when the data cannot be followed further.
local function dissect_block_header(tvb, len, typ, tree)
  if len < SAM_BLOCK_HEADER_LEN then
    tree:add_proto_expert_info(ef.short, "SAM block header: " .. len ..
      " bytes, needs " .. SAM_BLOCK_HEADER_LEN)
    return nil
  end
  local block = tvb(2, 4):uint()
  local index = tvb(6, 1):uint()
  local delta = tvb(7, 1):uint()
  local count = tvb(9, 1):uint()
  tree:add(sf.block, tvb(2, 4))
  if typ == SAM_BLOCK then
    tree:add(sf.index, tvb(6, 1))
  end
  tree:add(sf.delta, tvb(7, 1))
  if count > 0 or delta > 0 then
    tree:add(sf.auth_block, tvb(7, 1), (block - delta) % 4294967296)
      :set_generated()
    tree:add(sf.auth_n, tvb(8, 1), tvb(8, 1):uint() + 1)
  end
  local count_item = tree:add(sf.count, tvb(9, 1))
  if count > SAM_MAX_CARRIED then
    count_item:add_proto_expert_info(ef.bad_count, "SAM: " .. count ..
      " symbols carried, at most " .. SAM_MAX_CARRIED)
  end
  if count > 0 and delta == 0 then
    tree:add_proto_expert_info(ef.bad_delta)
  end
  local off = SAM_BLOCK_HEADER_LEN
  local n = 0
  while n < count and off + SAM_CARRIED_LEN <= len do
    local st = tree:add(sf.symbol, tvb(off, SAM_CARRIED_LEN))
    local id = tvb(off, 1):uint()
    st:append_text(": " .. symbol_name(id))
    st:add(sf.symbol_id, tvb(off, 1)):append_text(" (" ..
      symbol_name(id) .. ")")
    st:add(sf.symbol_value, tvb(off + 1, SAM_SYMBOL_LEN))
    off = off + SAM_CARRIED_LEN
    n = n + 1
  end
  if n < count then
    count_item:add_proto_expert_info(ef.short, "SAM: " .. count ..
      " symbols announced, " .. (len - SAM_BLOCK_HEADER_LEN) ..
      " bytes hold " .. n)
    return nil
  end
  if count > SAM_MAX_CARRIED then
    return nil -- receivers refuse it: what follows is no datagram
  end
  local info
  if typ == SAM_BLOCK then
    info = "SAM block " .. block .. " #" .. index
  else
    info = "SAM carrier, block " .. block
  end
  if count > 0 then
    info = info .. ", " .. count .. " symbol" .. (count == 1 and "" or "s") ..
      " of block " .. (block - delta) % 4294967296
  end
  return off, info
end

sam.dissector = guarded(function(tvb, pinfo, tree)
  local len = tvb:len()
  pinfo.cols.protocol = "MCSEC-SAM"
  local item = tree:add(sam, tvb())
  add_sender(item)
  if len < 2 then
    item:add_proto_expert_info(ef.short, "SAM data: " .. len ..
      " bytes, needs 2 (type, algorithm)")
    pinfo.cols.info = "SAM data, malformed"
    return len
  end
  local typ = tvb(0, 1):uint()
  local alg = tvb(1, 1):uint()
  local type_item = item:add(sf.type, tvb(0, 1))
  local alg_item = item:add(sf.alg, tvb(1, 1))
  if sam_algs[alg] == nil then
    alg_item:add_proto_expert_info(ef.bad_alg)
  end
  local off, info
  if typ == SAM_SIGNED then
    if len < SAM_SIGNED_HEADER_LEN then
      item:add_proto_expert_info(ef.short, "SAM signature: " .. len ..
        " bytes, needs " .. SAM_SIGNED_HEADER_LEN)
    else
      item:add(sf.signature, tvb(2, SAM_SIG_LEN))
      off, info = SAM_SIGNED_HEADER_LEN, "SAM signed"
    end
  elseif typ == SAM_BLOCK or typ == SAM_CARRIER then
    off, info = dissect_block_header(tvb, len, typ, item)
  else
    type_item:add_proto_expert_info(ef.bad_type, "Unknown SAM type " .. typ)
  end
  if off == nil then
    pinfo.cols.info = "SAM data, malformed"
    if len > 2 then
      pcall(Dissector.call, get_handles()[KIND_DATA], tvb(2):tvb(), pinfo,
        tree)
    end
    return len
  end
  item:set_len(off)
  item:append_text(", " .. sam_types[typ])
  if typ == SAM_CARRIER then
    if off < len then
      item:add_proto_expert_info(ef.carrier_data, "Carrier: " .. (len - off)
        .. " bytes after its symbols")
    end
    pinfo.cols.info = info
    return len
  end
  item:add(sf.datagram_len, len - off):set_generated()
  if off < len then
    dissect_datagram(tvb(off):tvb(), pinfo, tree, false, info)
  else
    pinfo.cols.info = info .. ", empty datagram"
  end
end)

-- ------------------------------------------------------------------------

local ip_proto = DissectorTable.get("ip.proto")
ip_proto:add(NH_DATAGRAM, mcsec)
ip_proto:add(NH_SAM, sam)
