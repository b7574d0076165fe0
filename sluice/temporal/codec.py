"""AES-GCM payload encryption, so Temporal's history never holds document text in clear.

Every payload the SDK sends (workflow inputs, activity results, heartbeats, queries,
memos) is serialised, compressed with zlib (before encryption: ciphertext does not
compress) and sealed with AES-256-GCM under the *current* key. The key's ID travels in
the payload's metadata, so keys rotate: put a new key first in ``SLUICE_PAYLOAD_KEYS``
and keep the old ones after it; histories written under an old key still decrypt.

Payloads that are not encrypted (histories recorded before encryption was switched on,
the ``temporal`` CLI's ``--input`` JSON) pass through decode untouched. Search
attributes and headers are not payload-encoded by the SDK and stay readable: they hold
IDs, never content.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from sluice.payload_keys import PayloadKeyError

ENCODING = b"binary/encrypted"
CIPHER = b"AES256GCM+zlib"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class EncryptionCodec(PayloadCodec):
    """Compress, then AES-GCM encrypt under the first key; decrypt under any listed key."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise PayloadKeyError("no key given")
        self.current_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        plain = zlib.compress(payload.SerializeToString(), 6)
        key_id = self.current_id.encode()
        sealed = self._ciphers[self.current_id].encrypt(nonce, plain, key_id)
        return Payload(
            metadata={"encoding": ENCODING, "encryption-cipher": CIPHER, KEY_ID: key_id},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"payload encrypted with key {key_id!r}, which SLUICE_PAYLOAD_KEYS does not list"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        plain = cipher.decrypt(nonce, sealed, key_id.encode())
        return Payload.FromString(zlib.decompress(plain))
