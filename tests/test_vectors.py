#!/usr/bin/env python3
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cross-check mcsec's packets against an independent implementation.

This script builds mcsec packets from docs/wire-format.md alone, with
Python's `cryptography` (AES-GCM, ChaCha20-Poly1305, and GMAC as AES-GCM
with an empty plaintext), and compares them byte for byte with what
libmcsec produces through esp-vector-tool; then it feeds its own packets to
libmcsec to decrypt.  The Sender-ID IV layout (RFC 6054) is covered for
every Sender-ID width, and counters beyond 2^32 check that the SN carries
the counter's low 32 bits.

Usage: test_vectors.py PATH-TO-esp-vector-tool
"""
import os
import random
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

SUITES = {
    # name: (key length, AEAD class, encrypts)
    "aes-128-gcm": (16, AESGCM, True),
    "aes-256-gcm": (32, AESGCM, True),
    "chacha20-poly1305": (32, ChaCha20Poly1305, True),
    "aes-128-gmac": (16, AESGCM, False),
    "aes-256-gmac": (32, AESGCM, False),
}


def esp_packet(suite, key_material, spi, sid_bits, sender_id, counter, nh, payload):
    klen, aead_cls, encrypts = SUITES[suite]
    key, salt = key_material[:klen], key_material[klen:]
    assert len(salt) == 4
    iv = ((sender_id << (64 - sid_bits)) | counter).to_bytes(8, "big")
    header = spi.to_bytes(4, "big") + (counter & 0xFFFFFFFF).to_bytes(4, "big") + iv
    pad = (4 - (len(payload) + 2) % 4) % 4
    body = payload + bytes(range(1, pad + 1)) + bytes([pad, nh])
    nonce = salt + iv
    aead = aead_cls(key)
    if encrypts:
        sealed = aead.encrypt(nonce, body, header[:8])
        return header + sealed
    tag = aead.encrypt(nonce, b"", header + body)
    return header + body + tag


def standard_packet(suite, key_material, spi, seq, esn, nh, payload, iv=None):
    """An ESP packet as a standard stack makes it (RFC 4303, 4106, 7634,
    4543): any IV, the sequence number's low half in the header, its high
    half (ESN) in the AAD only."""
    klen, aead_cls, encrypts = SUITES[suite]
    key, salt = key_material[:klen], key_material[klen:]
    iv = iv if iv is not None else os.urandom(8)
    lo = (seq & 0xFFFFFFFF).to_bytes(4, "big")
    hi = (seq >> 32).to_bytes(4, "big") if esn else b""
    header = spi.to_bytes(4, "big") + lo + iv
    pad = (4 - (len(payload) + 2) % 4) % 4
    body = payload + bytes(range(1, pad + 1)) + bytes([pad, nh])
    aad = spi.to_bytes(4, "big") + hi + lo
    aead = aead_cls(key)
    if encrypts:
        return header + aead.encrypt(salt + iv, body, aad)
    tag = aead.encrypt(salt + iv, b"", aad + iv + body)
    return header + body + tag


def run_tool(tool, *args):
    out = subprocess.run([tool, *map(str, args)], check=False,
                         capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"tool failed: {args[:2]} rc={out.returncode} {out.stderr}")
    return out.stdout.split("\n")[:-1]


def main():
    tool = sys.argv[1]
    rng = random.Random(20261127)
    checks = failures = 0

    def check(cond, what):
        nonlocal checks, failures
        checks += 1
        if not cond:
            failures += 1
            print("FAIL:", what)

    for suite, (klen, _, _) in SUITES.items():
        for sid_bits in (8, 12, 16, 24, 32):
            for length in (0, 1, 2, 3, 5, 100, 1200, 1400):
                km = os.urandom(klen + 4)
                spi = rng.randrange(256, 2**32)
                sender = rng.randrange(0, 2**sid_bits)
                cmax = 2 ** (64 - sid_bits) - 2
                counter = rng.choice([1, 2**32 - 1, 2**32, 2**32 + 5, cmax,
                                      rng.randrange(1, cmax)])
                counter = min(counter, cmax)
                payload = os.urandom(length)
                expect = esp_packet(suite, km, spi, sid_bits, sender, counter, 253, payload)
                what = f"{suite} sid_bits={sid_bits} len={length} counter={counter}"
                got = run_tool(tool, "protect", suite, km.hex(), spi, sid_bits,
                               sender, counter, 253, payload.hex())
                check(got == [expect.hex()], "protect " + what)
                # our packet, their decryption; then a tampered copy, a copy
                # whose SN disagrees with the IV, and a replay
                tampered = bytearray(expect)
                tampered[-1] ^= 1
                bad_sn = bytearray(expect)
                bad_sn[7] ^= 1
                res = run_tool(tool, "unprotect", suite, km.hex(), spi, sid_bits,
                               bytes(tampered).hex(), bytes(bad_sn).hex(),
                               expect.hex(), expect.hex())
                check(res[0] == "auth", "tampered " + what + f" -> {res[0]}")
                check(res[1] == "malformed", "sn mismatch " + what + f" -> {res[1]}")
                check(res[2] == f"ok {sender} {counter} 253 {payload.hex()}",
                      "unprotect " + what + f" -> {res[2][:60]}")
                check(res[3] == "replay", "replay " + what + f" -> {res[3]}")
                # Next Header 17 (docs/wire-format.md 10.1): an 8-byte UDP
                # header before the datagram, in the same body
                udp = rng.randrange(1, 65536).to_bytes(2, "big") * 2 + \
                    (8 + length).to_bytes(2, "big") + b"\0\0"
                expect = esp_packet(suite, km, spi, sid_bits, sender, counter,
                                    17, udp + payload)
                got = run_tool(tool, "protect-prefixed", suite, km.hex(), spi,
                               sid_bits, sender, counter, 17, udp.hex(),
                               payload.hex())
                check(got == [expect.hex()], "protect-prefixed " + what)

    # standard SAs (docs/wire-format.md 10.2): packets with random IVs, as
    # the Linux kernel or strongSwan make them, replay-checked on the
    # sequence number; with ESN across the 2^32 boundary
    for suite, (klen, _, _) in SUITES.items():
        km = os.urandom(klen + 4)
        spi = rng.randrange(256, 2**32)
        payload = os.urandom(rng.randrange(0, 1400))

        def std(seq, esn, nh=17, iv=None):
            return standard_packet(suite, km, spi, seq, esn, nh, payload, iv).hex()

        tampered = bytearray.fromhex(std(4, False))
        tampered[20] ^= 0x80
        res = run_tool(tool, "unprotect-standard", suite, km.hex(), spi, 64,
                       std(1, False), std(2, False), std(5, False),
                       std(3, False), std(2, False), std(0, False),
                       bytes(tampered).hex(), std(4, False, iv=bytes(8)))
        want = [f"ok 0 1 17 {payload.hex()}", f"ok 0 2 17 {payload.hex()}",
                f"ok 0 5 17 {payload.hex()}", f"ok 0 3 17 {payload.hex()}",
                "replay", "malformed", "auth", f"ok 0 4 17 {payload.hex()}"]
        for i, (g, w) in enumerate(zip(res, want)):
            check(g == w, f"standard {suite} #{i}: {g[:40]} != {w[:40]}")

        b = 2**32
        seqs = [b - 3, b - 1, b, b + 1, b - 2, b + 1, b + 2]
        res = run_tool(tool, "unprotect-standard-esn", suite, km.hex(), spi, 64,
                       *(std(q, True) for q in seqs[:4]),
                       std(b - 2, True), std(b + 1, True),
                       # a sender a whole half ahead: the inferred high half
                       # is wrong, authentication fails, nothing moves
                       std(2 * b + 2, True),
                       std(b + 2, True),
                       # the same numbers without ESN in the AAD
                       std(b + 3, False))
        want = [f"ok 0 {q} 17 {payload.hex()}" for q in seqs[:4]] + [
            f"ok 0 {b - 2} 17 {payload.hex()}", "replay", "auth",
            f"ok 0 {b + 2} 17 {payload.hex()}", "auth"]
        for i, (g, w) in enumerate(zip(res, want)):
            check(g == w, f"standard esn {suite} #{i}: {g[:40]} != {w[:40]}")
        check(len(res) == len(want), f"standard esn {suite}: {len(res)} lines")

    # per-sender SPIs (docs/wire-format.md 10.3): the SPI on the wire is the
    # block's base | Sender-ID, in the header and the AAD; a packet whose
    # SPI's low bits are another sender's is malformed
    for suite, (klen, _, _) in SUITES.items():
        for sid_bits in (8, 16, 24):
            km = os.urandom(klen + 4)
            base = rng.randrange(1, 2 ** (32 - sid_bits)) << sid_bits
            sender = rng.randrange(0, 2 ** sid_bits)
            counter = rng.randrange(1, 2**40)
            payload = os.urandom(rng.randrange(0, 300))
            expect = esp_packet(suite, km, base | sender, sid_bits, sender,
                                counter, 253, payload)
            what = f"per-sender {suite} sid_bits={sid_bits}"
            got = run_tool(tool, "protect-per-sender", suite, km.hex(), base,
                           sid_bits, sender, counter, 253, payload.hex())
            check(got == [expect.hex()], "protect " + what)
            other = (sender + 1) % 2**sid_bits
            lie = esp_packet(suite, km, base | other, sid_bits, sender,
                             counter + 1, 253, payload)
            res = run_tool(tool, "unprotect-per-sender", suite, km.hex(), base,
                           sid_bits, expect.hex(), lie.hex())
            check(res[0] == f"ok {sender} {counter} 253 {payload.hex()}",
                  "unprotect " + what + f" -> {res[0][:40]}")
            check(res[1] == "malformed", "spi of another " + what + f" -> {res[1]}")

    print(f"test_vectors.py: {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
