#!/usr/bin/env python3
"""Computes the format version 4 to 7, 9, 10 and 11 vectors of docs/FORMAT.md §12, and the sharing example of
§17.4 (the grants included), from the document alone.

An independent implementation (no bucketsync code): BLAKE3 from the `blake3` package,
ChaCha20-Poly1305, ChaCha20 and Argon2id from `cryptography` (44 or later, for Argon2id; 46
or later for ML-KEM), Ed25519 and X25519 from `cryptography`, SHAKE256, SHA3 and HMAC-SHA256
from hashlib, HChaCha20 written out here (RFC draft-irtf-cfrg-xchacha), postcard written out
here, ML-KEM-768's encapsulation (FIPS 203) and HPKE's key schedule (RFC 9180) written out here.
`core/src/format_vectors.rs` pins the same bytes.

    python3 -m venv /tmp/fv && /tmp/fv/bin/pip install blake3 cryptography
    /tmp/fv/bin/python scripts/format_vectors.py
"""

import struct

from blake3 import blake3
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id


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


# ---- Further vectors: a segment object, a folder ETag, a wrapped key, a local state, a merge ----


def seeded_nonce(seed_byte: int) -> bytes:
    """The first 24 bytes of the ChaCha20 keystream (RFC 8439, block counter 0, all-zero
    12-byte nonce) under the key `seed_byte` x 32: what the reference's seeded test randomness
    draws first. Any nonce would do; this one lets the reference's writer reproduce the object."""
    counter_and_nonce = bytes(16)  # cryptography takes the 4-byte counter and the 12-byte nonce
    stream = Cipher(algorithms.ChaCha20(bytes([seed_byte]) * 32, counter_and_nonce), mode=None)
    return stream.encryptor().update(bytes(24))


def hlc(wall: int, counter: int) -> bytes:
    return varint(wall) + varint(counter)


def segment_plain(device: bytes, seq: int, changes) -> bytes:
    out = device + varint(seq) + varint(len(changes))
    for key, (wall, counter), value in changes:
        out += blob(key) + hlc(wall, counter) + (b"\0" if value is None else b"\1" + blob(value))
    return out


def folder_etag(content: bytes) -> str:
    return '"' + blake3(content).hexdigest()[:32] + '"'


SEGMENT_KEY = derive_key("bucketsync 2026-11 segment key v1", K)
STATE_KEY = derive_key("bucketsync 2026-11 local state key v1", K)
N3, N5 = seeded_nonce(0x03), seeded_nonce(0x05)
print("nonce of seed 03", N3.hex())
print("nonce of seed 05", N5.hex())

# 1. Segment 1 of D (the plaintext of the version 1 example), sealed by a version 4 writer.
seg_plain = segment_plain(D, 1, [(b"notes/a", (T, 0), b"hello"), (b"notes/b", (T, 1), None)])
seg_name = "s/" + D.hex() + "/" + f"{1:016x}"
segment = seal(4, 1, VAULT, seg_name, SEGMENT_KEY, N3, seg_plain)
print(f"segment plaintext ({len(seg_plain)} bytes)", seg_plain.hex())
print(f"segment object {seg_name} ({len(segment)} bytes)")
print(hexdump(segment))

# 2. The local-folder bucket's ETag of that object, and of an empty one.
print("folder etag of the segment object", folder_etag(segment))
print("folder etag of an empty object", folder_etag(b""))

# 3. K wrapped under a passphrase, with Argon2id parameters small enough for a test.
PASSPHRASE = "Grüße, vault!"
M_KIB, PASSES, LANES = 8, 1, 1
SALT = bytes(range(0x60, 0x70))
pw = PASSPHRASE.encode("utf-8")
kek = Argon2id(salt=SALT, length=32, iterations=PASSES, lanes=LANES, memory_cost=M_KIB).derive(pw)
wrapped = b"BKSW" + bytes([1]) + struct.pack(">III", M_KIB, PASSES, LANES) + SALT
wrapped += seal(1, 3, bytes(16), "wrapped-key", kek, NONCE, K)
print(f"passphrase ({len(pw)} bytes)", pw.hex())
print("kek", kek.hex())
print(f"wrapped key ({len(wrapped)} bytes)")
print(hexdump(wrapped))

# 4. The state snapshot of a new replica of D after one local write, and its journal's header.
record_a = blob(b"notes/a") + b"\1" + blob(b"hello") + hlc(T, 0) + D  # key, value, stamp
own_log = varint(0) + b"\0" + varint(0) + varint(0) + b"\0" + varint(0)  # seq, etag, segments, named, republish, beyond
directory = varint(0) + varint(0) + varint(0) + b"\0" + varint(0) + b"\0"  # label .. previous checkpoint (state 3)
directory += varint(0) + varint(0) + varint(0) + varint(0) + varint(0)  # retired .. former ids (state 4)
directory += varint(0) + varint(0) + varint(0) + b"\0"  # pruned pairs .. oldest unnamed write (state 5)
directory += b"\0"  # no leap (state 7)
state_plain = varint(10) + D + hlc(T, 0) + varint(1) + record_a + varint(1) + blob(b"notes/a")
state_plain += own_log + varint(0) + b"\0" + varint(0) + varint(0)  # issued, pending, peers, quirks (never asked)
state_plain += directory + varint(0)  # history
state_plain += b"\0"  # no pack collection (state 8)
state_plain += varint(0)  # no packs in parts (state 9)
state_plain += varint(0) * 5  # sharing (state 10): no statements, signers, keys, grants written; last checkpoint under generation 0
state = seal(1, 3, VAULT, "local-state", STATE_KEY, N5, state_plain)
journal_header = b"BKSJ" + bytes([10]) + blake3(state).digest()[:16]
print(f"local state plaintext ({len(state_plain)} bytes)", state_plain.hex())
print(f"local state ({len(state)} bytes)")
print(hexdump(state))
print(f"journal header ({len(journal_header)} bytes)", journal_header[:5].hex(), journal_header[5:].hex())

# 5. Two devices' writes of the same keys, merged by last-write-wins (§7).
writes = {
    D: [(b"notes/x", (T, 2), b"from D"), (b"notes/y", (T, 3), b"from D"), (b"notes/z", (T, 5), b"from D")],
    F: [(b"notes/x", (T, 2), b"from F"), (b"notes/y", (T, 3), None), (b"notes/z", (T, 4), b"from F")],
}


def rank(record):
    """(stamp, value) in the order of §7: wall_ms, counter, device bytes; a tombstone below any value."""
    (wall, counter), device, value = record
    return (wall, counter, device, (0, b"") if value is None else (1, value))


merged = {}
for device in (D, F):
    print(f"merge input: segment 1 of {device.hex()}", segment_plain(device, 1, writes[device]).hex())
    for key, clock, value in writes[device]:
        record = (clock, device, value)
        if key not in merged or rank(record) > rank(merged[key]):
            merged[key] = record
print("merged:")
merged_records = varint(len(merged))
for key in sorted(merged):
    (wall, counter), device, value = merged[key]
    shown = "tombstone" if value is None else '"' + value.decode() + '"'
    print(f"{key.decode()}  {shown:<9}  (T, {counter})  {'D' if device == D else 'F'}")
    merged_records += blob(key) + (b"\0" if value is None else b"\1" + blob(value)) + hlc(wall, counter) + device
print(f"merged as checkpoint records ({len(merged_records)} bytes)", merged_records.hex())


# ---- Version 5: files (§14) ----

CHUNK_KEY = derive_key("bucketsync 2026-11 chunk key v1", K)
CHUNK_ID_KEY = derive_key("bucketsync 2026-11 chunk id v1", K)
CHUNKER_KEY = derive_key("bucketsync 2026-11 chunker gear v1", K)
FILE_HASH_KEY = derive_key("bucketsync 2026-11 file hash v1", K)
print("chunk key", CHUNK_KEY.hex())
print("chunk-id key", CHUNK_ID_KEY.hex())
print("chunker key", CHUNKER_KEY.hex())
print("file-hash key", FILE_HASH_KEY.hex())

# 6. The keyed gear table and one file cut by FastCDC 2020 (§14.1).
MASK = (1 << 64) - 1
MIN, AVG, MAX = 512 << 10, 1 << 20, 8 << 20
MASK_S, MASK_L = 0x0000D91767537000, 0x0000D91707537000
gear_bytes = blake3(b"", key=CHUNKER_KEY).digest(length=2048)
GEAR = [int.from_bytes(gear_bytes[8 * i:8 * i + 8], "little") for i in range(256)]
GEAR_LS = [(g << 1) & MASK for g in GEAR]
print("gear[0], gear[1], gear[255]", " ".join(f"{GEAR[i]:016x}" for i in (0, 1, 255)))
print("gear[0], gear[1], gear[255] as bytes", " ".join(gear_bytes[8 * i:8 * i + 8].hex() for i in (0, 1, 255)))


def cut(data: bytes) -> int:
    """The length of the first chunk of `data` (§14.1, one cut)."""
    r = len(data)
    if r <= MIN:
        return r
    end = min(r, MAX)
    center = min(AVG, end)
    h, i = 0, MIN
    for limit, m in ((center & ~1, MASK_S), (end & ~1, MASK_L)):
        m_ls = (m << 1) & MASK
        while i < limit:
            h = ((h << 2) + GEAR_LS[data[i]]) & MASK
            if h & m_ls == 0:
                return i
            h = (h + GEAR[data[i + 1]]) & MASK
            if h & m == 0:
                return i + 1
            i += 2
    return end


FILE_EXAMPLE = blake3(b"bucketsync chunking example").digest(length=3 << 20)
lengths, at = [], 0
while at < len(FILE_EXAMPLE):
    n = cut(FILE_EXAMPLE[at:at + MAX])
    lengths.append(n)
    at += n
print("chunk lengths of the 3 MiB example", lengths)
at = 0
for n in lengths:
    print("  chunk id", blake3(FILE_EXAMPLE[at:at + n], key=CHUNK_ID_KEY).hexdigest())
    at += n
print("  file hash", blake3(FILE_EXAMPLE, key=FILE_HASH_KEY).hexdigest())

# 7. Version 5 (still read): a pack of two (small) chunks of a 13-byte file, with the chunks as
#    whole envelopes, and the file's record value (layout 01). A writer would store a file this
#    small inline; a reader reads it either way.
PACK = bytes(range(0xA0, 0xB0))
pack_name = "p/" + D.hex() + "/" + PACK.hex()
pieces = [b"Hello, ", b"files!"]
pack, entries = b"", []
for piece, nonce in zip(pieces, (N3, N5)):
    cid = blake3(piece, key=CHUNK_ID_KEY).digest()
    envelope = seal(5, 6, VAULT, "k/" + cid.hex(), CHUNK_KEY, nonce, piece)
    entries.append((cid, len(pack), len(envelope), len(piece)))
    pack += envelope
index_plain = varint(len(entries)) + b"".join(c + varint(o) + varint(s) + varint(n) for c, o, s, n in entries)
index = seal(5, 7, VAULT, pack_name, CHUNK_KEY, NONCE, index_plain)
pack += index + struct.pack(">I", len(index))
whole = b"".join(pieces)
file_value = b"BKSF\x01" + varint(len(whole)) + blake3(whole, key=FILE_HASH_KEY).digest() + varint(1)
file_value += varint(1) + D + PACK  # packs
file_value += varint(len(entries)) + b"".join(c + varint(n) + varint(0) + varint(o) + varint(s) for c, o, s, n in entries)
inline_value = b"BKSF\x01" + varint(len(whole)) + blake3(whole, key=FILE_HASH_KEY).digest() + varint(0) + blob(whole)
print(f"pack index plaintext ({len(index_plain)} bytes)", index_plain.hex())
print(f"pack {pack_name} ({len(pack)} bytes)")
print(hexdump(pack))
print(f"file record value ({len(file_value)} bytes)", file_value.hex())
print(f"inline file record value ({len(inline_value)} bytes)", inline_value.hex())


# 8. Version 6: the same file in a pack whose chunks are sealed bare (§14.2): nonce ‖ ciphertext
#    ‖ tag, the associated data that of a version 06 envelope header, not written. The nonces are
#    the first 72 bytes of the seeded stream of seed 07, drawn in order: chunk 1, chunk 2, index.


def keystream(seed_byte: int, n: int) -> bytes:
    stream = Cipher(algorithms.ChaCha20(bytes([seed_byte]) * 32, bytes(16)), mode=None)
    return stream.encryptor().update(bytes(n))


def seal_bare(version: int, kind: int, vault: bytes, name: str, subkey: bytes, nonce: bytes, plain: bytes) -> bytes:
    n = name.encode()
    ad = b"BKSY" + bytes([version, kind]) + vault + struct.pack(">H", len(n)) + n
    return nonce + xchacha_seal(subkey, nonce, ad, plain)


def bare_pack(name: str, chunk_key: bytes, chunk_id_key: bytes, stream: bytes):
    """A version 6 pack `name` of `pieces`, sealed bare under `chunk_key` with the vault id of
    K, its nonces the stream's first 72 bytes: chunk 1, chunk 2, index. Returns the pack, its
    entries (id, offset, sealed length, length) and the index plaintext."""
    pack, entries = b"", []
    for piece, nonce in zip(pieces, (stream[0:24], stream[24:48])):
        cid = blake3(piece, key=chunk_id_key).digest()
        sealed = seal_bare(6, 6, VAULT, "k/" + cid.hex(), chunk_key, nonce, piece)
        entries.append((cid, len(pack), len(sealed), len(piece)))
        pack += sealed
    index_plain = varint(len(entries)) + b"".join(c + varint(o) + varint(s) + varint(n) for c, o, s, n in entries)
    index = seal(6, 7, VAULT, name, chunk_key, stream[48:72], index_plain)
    return pack + index + struct.pack(">I", len(index)), entries, index_plain


S7 = keystream(0x07, 72)
pack6, entries6, index6_plain = bare_pack(pack_name, CHUNK_KEY, CHUNK_ID_KEY, S7)
value6 = b"BKSF\x02" + varint(len(whole)) + blake3(whole, key=FILE_HASH_KEY).digest() + varint(1)
value6 += varint(1) + D + PACK
value6 += varint(len(entries6)) + b"".join(c + varint(n) + varint(0) + varint(o) + varint(s) for c, o, s, n in entries6)
inline6 = b"BKSF\x02" + varint(len(whole)) + blake3(whole, key=FILE_HASH_KEY).digest() + varint(0) + blob(whole)
print("version 6 nonces (seed 07 stream)", S7[0:24].hex(), S7[24:48].hex(), S7[48:72].hex())
print(f"version 6 index plaintext ({len(index6_plain)} bytes)", index6_plain.hex())
print(f"version 6 pack {pack_name} ({len(pack6)} bytes)")
print(hexdump(pack6))
print(f"version 6 file record value ({len(value6)} bytes)", value6.hex())
print(f"version 6 inline file record value ({len(inline6)} bytes)", inline6.hex())


# 9. Version 7: the version 6 pack above repacked. Both chunks move, byte for byte, into the
#    pack `b0 b1 .. bf` of D, second chunk first, and that pack ends with its own index; the
#    redirect `r/<D>/<a0..af>` says where each went. Nonces: the seeded stream of seed 08,
#    drawn in order: the new pack's index, then the redirect.
S8 = keystream(0x08, 48)
NEW_PACK = bytes(range(0xB0, 0xC0))
new_pack_name = "p/" + D.hex() + "/" + NEW_PACK.hex()
new_pack, new_entries, moves = b"", [], []
for cid, o, s_len, n in reversed(entries6):
    new_entries.append((cid, len(new_pack), s_len, n))
    moves.append((o, len(new_pack)))
    new_pack += pack6[o:o + s_len]
new_index_plain = varint(len(new_entries)) + b"".join(c + varint(o) + varint(s) + varint(n) for c, o, s, n in new_entries)
new_index = seal(6, 7, VAULT, new_pack_name, CHUNK_KEY, S8[0:24], new_index_plain)
new_pack += new_index + struct.pack(">I", len(new_index))
moves.sort()
redirect_plain = NEW_PACK + varint(len(moves)) + b"".join(varint(a) + varint(b) for a, b in moves)
redirect_name = "r/" + D.hex() + "/" + PACK.hex()
redirect = seal(7, 8, VAULT, redirect_name, CHUNK_KEY, S8[24:48], redirect_plain)
print("version 7 nonces (seed 08 stream)", S8[0:24].hex(), S8[24:48].hex())
print(f"version 7 repacked pack {new_pack_name} ({len(new_pack)} bytes)")
print(hexdump(new_pack))
print(f"version 7 redirect plaintext ({len(redirect_plain)} bytes)", redirect_plain.hex())
print(f"version 7 redirect {redirect_name} ({len(redirect)} bytes)")
print(hexdump(redirect))


# 10. Sharing (FORMAT §17): identities, a grant's header, an invitation (the grants in 10b). Alice's home key is
#     the example key K; Bob's home key is 20 21 .. 3f; emma's key 40 41 .. 5f. X-Wing
#     (draft-connolly-cfrg-xwing-kem-06) and HPKE's DeriveKeyPair (draft-ietf-hpke-pq) are
#     written out here over ML-KEM-768 and X25519 from `cryptography`.
import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def xwing_public(home: bytes) -> bytes:
    ikm = derive_key("bucketsync 2026-11 identity kem v1", home)
    label = b"DeriveKeyPair"
    suite = b"KEM" + struct.pack(">H", 0x647A)
    sk = hashlib.shake_256(
        ikm + b"HPKE-v1" + suite + struct.pack(">H", len(label)) + label + struct.pack(">H", 32)
    ).digest(32)
    expanded = hashlib.shake_256(sk).digest(96)
    pk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes(*RAW)
    pk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes(*RAW)
    return pk_m + pk_x


def public_identity(home: bytes) -> bytes:
    signing = derive_key("bucketsync 2026-11 identity signing v1", home)
    ed = ed25519.Ed25519PrivateKey.from_private_bytes(signing).public_key().public_bytes(*RAW)
    return xwing_public(home) + ed


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def fingerprint(public: bytes) -> bytes:
    return derive_key("bucketsync 2026-11 identity fingerprint v1", public)[:10]


def shown(fp: bytes) -> str:
    bits = int.from_bytes(fp, "big")
    digits = [CROCKFORD[(bits >> (80 - 5 * (i + 1))) & 31] for i in range(16)]
    return "-".join("".join(digits[i:i + 4]) for i in range(0, 16, 4))


alice = public_identity(K)
bob = public_identity(bytes(range(0x20, 0x40)))
print("alice kem seed", derive_key("bucketsync 2026-11 identity kem v1", K).hex())
print("alice signing seed", derive_key("bucketsync 2026-11 identity signing v1", K).hex())
print("alice ed25519 public", alice[1216:].hex())
print("alice public identity hash", blake3(alice).hexdigest())
print("alice fingerprint", shown(fingerprint(alice)), "bob fingerprint", shown(fingerprint(bob)))
EMMA = derive_key("bucketsync 2026-11 vault id v1", bytes(range(0x40, 0x60)))[:16]
print("emma vault id", EMMA.hex())
print("grant header", (b"BKSG" + bytes([1]) + struct.pack(">H", 0x647A) + EMMA + bytes([0x77] * 16)).hex())
store = b"s3://family/shared?region=eu-west-1&path_style=false"
invitation = varint(len(store)) + store + EMMA + bytes([0x77] * 16) + fingerprint(alice) + b"\x00"
print("invitation", "bsinv1" + base64.urlsafe_b64encode(invitation).rstrip(b"=").decode())

# 7. Version 8 (§17.6, §17.7): member statements, and a shared vault's signed manifest.
ALICE_SIGNING = ed25519.Ed25519PrivateKey.from_private_bytes(
    derive_key("bucketsync 2026-11 identity signing v1", K)
)


def statement(member: bytes, role: int, since: int, by: bytes) -> bytes:
    signed = blob(member) + bytes([role]) + varint(0) + varint(0) + varint(since) + by  # no pins, generation 0
    signature = ALICE_SIGNING.sign(b"bucketsync 2026-11 member statement v1" + EMMA + signed)
    return signed + blob(signature)


founding = statement(alice, 2, T, fingerprint(alice))
bobs = statement(bob, 1, T + 1000, fingerprint(alice))
print(f"founding statement ({len(founding)} bytes), from byte 1250:", founding[1250:].hex())
emma_key = bytes(range(0x40, 0x60))
manifest_plain = D + varint(1) + varint(0) + hlc(T + 2000, 0) + varint(0)  # device .. merged
manifest_plain += blob(b"laptop") + b"\0" + varint(0) + varint(0)  # label, no checkpoint, retired, pruned
manifest_plain += varint(2) + founding + bobs  # members, oldest first
name = "m/" + D.hex()
envelope = seal(
    8, 2, EMMA, name, derive_key("bucketsync 2026-11 manifest key v1", emma_key), seeded_nonce(0x55),
    manifest_plain,
)
message = b"bucketsync 2026-11 signed object v1" + EMMA + struct.pack(">H", len(name)) + name.encode()
message += struct.pack(">I", 0)  # key generation 0
signed = b"BKSS" + bytes([1]) + struct.pack(">I", 0) + alice[1216:] + ALICE_SIGNING.sign(message + envelope)
signed += envelope
print(f"signed manifest ({len(signed)} bytes), BLAKE3", blake3(signed).hexdigest())
print("key grant id of generation 1 for Bob in emma, salt 5a x 64",
      derive_key("bucketsync 2026-11 key grant id v2",
                 EMMA + struct.pack(">I", 1) + fingerprint(bob) + bytes([0x5A]) * 64)[:16].hex())


# 10b. The grants of §17.4, sealed to Bob as §17.2 writes X-Wing and HPKE out: ML-KEM-768's
#      Encaps_internal (FIPS 203) written out here (checked against `cryptography`'s
#      decapsulation), X25519 from `cryptography`, the X-Wing combiner with its label last, and
#      RFC 9180's key schedule over X-Wing's shared secret as it is. The 64 bytes of
#      encapsulation randomness are the ChaCha20 keystream under 99 x 32 (seed 99).
import hmac

MLKEM_Q = 3329


def bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


ZETAS = [pow(17, bitrev7(i), MLKEM_Q) for i in range(128)]
GAMMAS = [pow(17, 2 * bitrev7(i) + 1, MLKEM_Q) for i in range(128)]


def ntt(f):
    f, k, length = list(f), 1, 128
    while length >= 2:
        for start in range(0, 256, 2 * length):
            zeta, k = ZETAS[k], k + 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % MLKEM_Q
                f[j + length], f[j] = (f[j] - t) % MLKEM_Q, (f[j] + t) % MLKEM_Q
        length //= 2
    return f


def ntt_inverse(f):
    f, k, length = list(f), 127, 2
    while length <= 128:
        for start in range(0, 256, 2 * length):
            zeta, k = ZETAS[k], k - 1
            for j in range(start, start + length):
                t = f[j]
                f[j] = (t + f[j + length]) % MLKEM_Q
                f[j + length] = zeta * (f[j + length] - t) % MLKEM_Q
        length *= 2
    return [x * 3303 % MLKEM_Q for x in f]


def ntt_multiply(f, g):
    h = [0] * 256
    for i in range(128):
        a0, a1, b0, b1 = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * GAMMAS[i]) % MLKEM_Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % MLKEM_Q
    return h


def poly_add(f, g):
    return [(a + b) % MLKEM_Q for a, b in zip(f, g)]


def bits_of(b: bytes):
    return [(x >> i) & 1 for x in b for i in range(8)]


def byte_encode(f, d: int) -> bytes:
    bs = [(c >> i) & 1 for c in f for i in range(d)]
    return bytes(sum(bs[8 * i + j] << j for j in range(8)) for i in range(len(bs) // 8))


def byte_decode(b: bytes, d: int):
    bs = bits_of(b)
    return [sum(bs[d * i + j] << j for j in range(d)) for i in range(256)]


def compress(f, d: int):
    return [((x << d) + MLKEM_Q // 2) // MLKEM_Q % (1 << d) for x in f]


def sample_ntt(seed: bytes):
    stream, out, i = hashlib.shake_128(seed).digest(1344), [], 0
    while len(out) < 256:
        if i + 3 > len(stream):  # the XOF has no end: read on
            stream = hashlib.shake_128(seed).digest(2 * len(stream))
        c0, c1, c2 = stream[i:i + 3]
        i += 3
        for d in (c0 + 256 * (c1 % 16), c1 // 16 + 16 * c2):
            if d < MLKEM_Q and len(out) < 256:
                out.append(d)
    return out


def cbd2(b: bytes):
    bs = bits_of(b)
    return [(bs[4 * i] + bs[4 * i + 1] - bs[4 * i + 2] - bs[4 * i + 3]) % MLKEM_Q for i in range(256)]


def mlkem768_encaps_internal(ek: bytes, m: bytes):
    """FIPS 203 ML-KEM.Encaps_internal for ML-KEM-768 (k 3, eta 2 and 2, du 10, dv 4)."""
    g = hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()
    key, r = g[:32], g[32:]
    t = [byte_decode(ek[384 * i:384 * (i + 1)], 12) for i in range(3)]
    rho = ek[1152:]
    a = [[sample_ntt(rho + bytes([j, i])) for j in range(3)] for i in range(3)]
    prf = [cbd2(hashlib.shake_256(r + bytes([n])).digest(128)) for n in range(7)]
    y, e1, e2 = [ntt(p) for p in prf[0:3]], prf[3:6], prf[6]
    u = []
    for i in range(3):
        acc = [0] * 256
        for j in range(3):
            acc = poly_add(acc, ntt_multiply(a[j][i], y[j]))
        u.append(poly_add(ntt_inverse(acc), e1[i]))
    acc = [0] * 256
    for j in range(3):
        acc = poly_add(acc, ntt_multiply(t[j], y[j]))
    v = poly_add(poly_add(ntt_inverse(acc), e2), [1665 * bit for bit in byte_decode(m, 1)])
    return b"".join(byte_encode(compress(p, 10), 10) for p in u) + byte_encode(compress(v, 4), 4), key


def xwing_decapsulation_keys(home: bytes):
    ikm = derive_key("bucketsync 2026-11 identity kem v1", home)
    label = b"DeriveKeyPair"
    sk = hashlib.shake_256(
        ikm + b"HPKE-v1" + b"KEM" + struct.pack(">H", 0x647A) + struct.pack(">H", len(label)) + label
        + struct.pack(">H", 32)
    ).digest(32)
    expanded = hashlib.shake_256(sk).digest(96)
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]), x25519.X25519PrivateKey.from_private_bytes(expanded[64:])


XWING_LABEL = b"\\.//^\\"
assert XWING_LABEL.hex() == "5c2e2f2f5e5c"


def xwing_encapsulate(pk: bytes, eseed: bytes):
    pk_m, pk_x = pk[:1184], pk[1184:1216]
    ct_m, ss_m = mlkem768_encaps_internal(pk_m, eseed[:32])
    ek_x = x25519.X25519PrivateKey.from_private_bytes(eseed[32:64])
    ct_x = ek_x.public_key().public_bytes(*RAW)
    ss_x = ek_x.exchange(x25519.X25519PublicKey.from_public_bytes(pk_x))
    return ct_m + ct_x, hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def xwing_decapsulate(home: bytes, enc: bytes) -> bytes:
    dk_m, sk_x = xwing_decapsulation_keys(home)
    ct_x = enc[1088:]
    pk_x = sk_x.public_key().public_bytes(*RAW)
    ss_x = sk_x.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    return hashlib.sha3_256(dk_m.decapsulate(enc[:1088]) + ss_x + ct_x + pk_x + XWING_LABEL).digest()


HPKE_SUITE = b"HPKE" + struct.pack(">HHH", 0x647A, 0x0001, 0x0003)


def labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), b"HPKE-v1" + HPKE_SUITE + label + ikm, hashlib.sha256).digest()


def labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    info = struct.pack(">H", length) + b"HPKE-v1" + HPKE_SUITE + label + info
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


def hpke_seal_base(shared_secret: bytes, info: bytes, aad: bytes, plain: bytes) -> bytes:
    context = b"\x00" + labeled_extract(b"", b"psk_id_hash", b"") + labeled_extract(b"", b"info_hash", info)
    secret = labeled_extract(shared_secret, b"secret", b"")
    key = labeled_expand(secret, b"key", context, 32)
    base_nonce = labeled_expand(secret, b"base_nonce", context, 12)
    return ChaCha20Poly1305(key).encrypt(base_nonce, plain, aad)


eseed = keystream(0x99, 64)
grant_enc, grant_ss = xwing_encapsulate(bob, eseed)
assert xwing_decapsulate(bytes(range(0x20, 0x40)), grant_enc) == grant_ss, "X-Wing does not round-trip"
grant_keys = varint(1) + varint(0) + emma_key  # generation 0, the vault's own key
grant_body1 = blob(alice) + blob(b"emma") + blob(store) + bytes([1]) + grant_keys + varint(T)  # role write
for layout, grant_body in ((1, grant_body1), (2, grant_body1 + fingerprint(alice) + b"\x01" + bobs)):
    grant = b"BKSG" + bytes([layout]) + struct.pack(">H", 0x647A) + EMMA + bytes([0x77] * 16) + grant_enc
    grant += hpke_seal_base(grant_ss, b"bucketsync 2026-11 grant v1", grant[:39], grant_body)
    grant += ALICE_SIGNING.sign(b"bucketsync 2026-11 grant signature v1" + grant)
    print(f"grant of layout {layout:02x} ({len(grant)} bytes), starts {grant[:5].hex()}, BLAKE3", blake3(grant).hexdigest())


# 11. Version 9 (§14.4, §17.7): the same file under key generation 1 of the example vault,
#     K_1 = 60 61 .. 7f. Its file keys derive from K_1 as generation 0's derive from K; the
#     associated data keeps the vault id of K. The pack is `c0 c1 .. cf` of D; the nonces are the
#     seeded stream of seed 09, drawn in order: chunk 1, chunk 2, index. The record value has
#     layout 03: the generation (u32 big-endian) follows the layout byte.
K1 = bytes(range(0x60, 0x80))
G1_CHUNK_KEY = derive_key("bucketsync 2026-11 chunk key v1", K1)
G1_CHUNK_ID_KEY = derive_key("bucketsync 2026-11 chunk id v1", K1)
G1_CHUNKER_KEY = derive_key("bucketsync 2026-11 chunker gear v1", K1)
G1_FILE_HASH_KEY = derive_key("bucketsync 2026-11 file hash v1", K1)
print("generation 1 chunk key", G1_CHUNK_KEY.hex())
print("generation 1 chunk-id key", G1_CHUNK_ID_KEY.hex())
print("generation 1 chunker key", G1_CHUNKER_KEY.hex())
print("generation 1 file-hash key", G1_FILE_HASH_KEY.hex())
S9 = keystream(0x09, 72)
G1_PACK = bytes(range(0xC0, 0xD0))
g1_pack_name = "p/" + D.hex() + "/" + G1_PACK.hex()
pack9, entries9, _ = bare_pack(g1_pack_name, G1_CHUNK_KEY, G1_CHUNK_ID_KEY, S9)
layout3 = b"BKSF\x03" + struct.pack(">I", 1)
hash9 = blake3(whole, key=G1_FILE_HASH_KEY).digest()
value9 = layout3 + varint(len(whole)) + hash9 + varint(1)
value9 += varint(1) + D + G1_PACK
value9 += varint(len(entries9)) + b"".join(c + varint(n) + varint(0) + varint(o) + varint(s) for c, o, s, n in entries9)
inline9 = layout3 + varint(len(whole)) + hash9 + varint(0) + blob(whole)
print("generation 1 chunk ids", " ".join(c.hex() for c, _, _, _ in entries9))
print("generation 1 file hash", hash9.hex())
print(f"version 9 pack {g1_pack_name} ({len(pack9)} bytes)")
print(hexdump(pack9))
print(f"version 9 file record value ({len(value9)} bytes)", value9.hex())
print(f"version 9 inline file record value ({len(inline9)} bytes)", inline9.hex())


# 12. Version 10 (§14.2): a pack of two chunks whose plaintext starts with a codec byte, and its
#     record value of layout 04. Chunk 1 is `Hello, ` stored as it is (codec 00); chunk 2 is
#     `files! ` ten times (70 bytes) as raw deflate (codec 01). The deflate stream below is what
#     the reference's compressor (miniz, greedy parsing with 16 probes) wrote; any other stream that inflates to the
#     same bytes is as valid, so this script checks that it does rather than recomputing it, and
#     seals everything else itself. The pack is `d0 d1 .. df` of D, under K; the nonces are the
#     seeded stream of seed 0a, drawn in order: chunk 1, chunk 2, index.
import zlib

DEFLATED = bytes.fromhex("a5c5310900001002c02affe1140437fb83219c8e32f2c78d02")
chunk10 = [b"Hello, ", b"files! " * 10]
assert zlib.decompress(DEFLATED, wbits=-15) == chunk10[1], "the deflate stream does not inflate to chunk 2"
plain10 = [b"\x00" + chunk10[0], b"\x01" + DEFLATED]
S10 = keystream(0x0A, 72)
V10_PACK = bytes(range(0xD0, 0xE0))
v10_pack_name = "p/" + D.hex() + "/" + V10_PACK.hex()
pack10, entries10 = b"", []
for piece, plain, nonce in zip(chunk10, plain10, (S10[0:24], S10[24:48])):
    cid = blake3(piece, key=CHUNK_ID_KEY).digest()
    sealed = seal_bare(10, 6, VAULT, "k/" + cid.hex(), CHUNK_KEY, nonce, plain)
    # The entry's length is the chunk's own (uncompressed) length; sealed_len is what lies in the pack.
    entries10.append((cid, len(pack10), len(sealed), len(piece)))
    pack10 += sealed
index10_plain = varint(len(entries10)) + b"".join(c + varint(o) + varint(s) + varint(n) for c, o, s, n in entries10)
index10 = seal(10, 7, VAULT, v10_pack_name, CHUNK_KEY, S10[48:72], index10_plain)
pack10 += index10 + struct.pack(">I", len(index10))
whole10 = b"".join(chunk10)
layout4 = b"BKSF\x04" + struct.pack(">I", 0)
hash10 = blake3(whole10, key=FILE_HASH_KEY).digest()
value10 = layout4 + varint(len(whole10)) + hash10 + varint(1)
value10 += varint(1) + D + V10_PACK
value10 += varint(len(entries10)) + b"".join(c + varint(n) + varint(0) + varint(o) + varint(s) for c, o, s, n in entries10)
print("version 10 nonces (seed 0a stream)", S10[0:24].hex(), S10[24:48].hex(), S10[48:72].hex())
print("version 10 chunk ids", " ".join(c.hex() for c, _, _, _ in entries10))
print("version 10 entries (offset, sealed_len, len)", [(o, s, n) for _, o, s, n in entries10])
print("version 10 file hash", hash10.hex())
print(f"version 10 index plaintext ({len(index10_plain)} bytes)", index10_plain.hex())
print(f"version 10 pack {v10_pack_name} ({len(pack10)} bytes)")
print(hexdump(pack10))
print(f"version 10 file record value ({len(value10)} bytes)", value10.hex())

# ---- Version 11: compressed segments and checkpoints (§6, §12) ----

# 12. Segment 1 of D holding notes/a and notes/c ("hello, " eight times each) and a tombstone for
#     notes/b, sealed by a version 11 writer: codec 01 and the deflate stream the reference's
#     compressor wrote (inflated here by zlib, not recomputed: another compressor may write another
#     stream of the same bytes). The nonce is the first of seed 0b.
SEGMENT_V11_DEFLATED = bytes.fromhex(
    "9dcca10d80301040d13b106836206812440d03b002030029413454408245b2022b300008564074812e50d1155a"
    "d12ed0aa9f6f1ee42569bb693faffbfba53698660bdfe85af78750cf4b009b9932c6ab22381e1a1c84e07f749fc4c316"
)
hellos = b"hello, " * 8
seg11_plain = segment_plain(D, 1, [(b"notes/a", (T, 0), hellos), (b"notes/b", (T, 1), None), (b"notes/c", (T, 2), hellos)])
assert zlib.decompress(SEGMENT_V11_DEFLATED, wbits=-15) == seg11_plain, "the deflate stream does not inflate to the segment"
segment11 = seal(11, 1, VAULT, seg_name, SEGMENT_KEY, seeded_nonce(0x0B), b"\x01" + SEGMENT_V11_DEFLATED)
print("nonce of seed 0b", seeded_nonce(0x0B).hex())
print(f"version 11 segment plaintext ({len(seg11_plain)} bytes)", seg11_plain.hex())
print(f"version 11 segment object {seg_name} ({len(segment11)} bytes)")
print(hexdump(segment11))
