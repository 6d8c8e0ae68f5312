#!/usr/bin/env python3
"""Computes the format version 4 vectors of docs/FORMAT.md §12 from the document alone.

An independent implementation (no bucketsync code): BLAKE3 from the `blake3` package,
ChaCha20-Poly1305 from `cryptography`, HChaCha20 written out here (RFC draft-irtf-cfrg-xchacha),
postcard written out here. `core/src/format_vectors.rs` pins the same bytes.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install blake3 cryptography
    /tmp/v/bin/python scripts/format_vectors.py
"""

import struct

from blake3 import blake3
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def derive_key(context: str, key: bytes) -> bytes:
    return blake3(key, derive_key_context=context).digest()


def rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        state[a] = (state[a] + state[b]) & 0xFFFFFFFF
        state[d] = rotl(state[d] ^ state[a], 16)
        state[c] = (state[c] + state[d]) & 0xFFFFFFFF
        state[b] = rotl(state[b] ^ state[c], 12)
        state[a] = (state[a] + state[b]) & 0xFFFFFFFF
        state[d] = rotl(state[d] ^ state[a], 8)
        state[c] = (state[c] + state[d]) & 0xFFFFFFFF
        state[b] = rotl(state[b] ^ state[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
        qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
    return struct.pack("<8I", *(state[0:4] + state[12:16]))


def xchacha_seal(key: bytes, nonce: bytes, ad: bytes, plain: bytes) -> bytes:
    sub = hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce[16:], plain, ad)


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def blob(b: bytes) -> bytes:
    return varint(len(b)) + b


def seal(version: int, kind: int, vault: bytes, name: str, subkey: bytes, nonce: bytes, plain: bytes) -> bytes:
    n = name.encode()
    ad = b"BKSY" + bytes([version, kind]) + vault + struct.pack(">H", len(n)) + n
    check = blake3(ad + nonce).digest()[:8]
    return ad + nonce + check + xchacha_seal(subkey, nonce, ad, plain)


def hexdump(b: bytes) -> str:
    return "\n".join(f"{i:04x}  " + " ".join(f"{x:02x}" for x in b[i:i + 16]) for i in range(0, len(b), 16))


K = bytes(range(32))
VAULT = derive_key("bucketsync 2026-11 vault id v1", K)[:16]
CHECKPOINT_KEY = derive_key("bucketsync 2026-11 checkpoint key v1", K)
MANIFEST_KEY = derive_key("bucketsync 2026-11 manifest key v1", K)
D = bytes.fromhex("00112233445566778899aabbccddeeff")
F = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
NONCE = bytes(range(0x40, 0x58))
T = 1767225600000
E = bytes.fromhex("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
HORIZON = T - 30 * 86400000

covers = [(D, 2), (F, 7)]
records = [
    (b"notes/a", b"hello", (T, 0), D),
    (b"notes/b", None, (T, 1), D),
    (b"notes/c", b"from F", (T - 100000, 3), F),
]
cp_plain = D + varint(4) + varint(len(covers)) + b"".join(d + varint(n) for d, n in covers)
cp_plain += varint(T) + varint(6) + varint(HORIZON) + varint(len(records))
for key, value, (wall, counter), device in records:
    cp_plain += blob(key) + (b"\0" if value is None else b"\1" + blob(value))
    cp_plain += varint(wall) + varint(counter) + device
cp_name = "c/" + D.hex() + "/" + f"{4:016x}"
checkpoint = seal(4, 5, VAULT, cp_name, CHECKPOINT_KEY, NONCE, cp_plain)

label = "laptop".encode()
m_plain = D + varint(4) + varint(2) + varint(T) + varint(7) + varint(1) + F + varint(7)
m_plain += blob(label) + b"\1" + varint(4) + varint(len(covers))
m_plain += b"".join(d + varint(n) for d, n in covers) + varint(len(checkpoint))
m_plain += varint(1) + E
m_plain += varint(2)  # pruned: segments 1..=2 may be deleted (the checkpoint covers them)
manifest = seal(4, 2, VAULT, "m/" + D.hex(), MANIFEST_KEY, NONCE, m_plain)

print("checkpoint key", CHECKPOINT_KEY.hex())
print(f"checkpoint plaintext ({len(cp_plain)} bytes)", cp_plain.hex())
print(f"checkpoint object {cp_name} ({len(checkpoint)} bytes)")
print(hexdump(checkpoint))
print(f"manifest plaintext ({len(m_plain)} bytes)", m_plain.hex())
print(f"manifest object ({len(manifest)} bytes)")
print(hexdump(manifest))
