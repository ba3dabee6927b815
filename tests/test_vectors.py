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

    print(f"test_vectors.py: {checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
