"""Parsing ``SLUICE_PAYLOAD_KEYS`` without loading the cryptography or Temporal packages.

Settings validate the keys at start-up (one line naming the variable, never the key);
the codec itself (:mod:`sluice.temporal.codec`) is loaded only by processes that talk
to Temporal, so a CLI command that only reads Postgres stays light.
"""

from __future__ import annotations

import base64
import binascii
import os


class PayloadKeyError(ValueError):
    """A payload names a key this process does not have (or the keys are malformed)."""


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """``"k2:BASE64,k1:BASE64"`` → ``[("k2", key), ("k1", key)]``; the first is current.

    Keys are 32 bytes (AES-256), base64 (standard or URL-safe). Raises PayloadKeyError
    with a message naming the bad entry but never its value.
    """
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(e.strip() for e in spec.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
            raise PayloadKeyError(f"entry {position + 1}: expected KEY_ID:BASE64_KEY")
        try:
            key = base64.b64decode(
                encoded.strip().replace("-", "+").replace("_", "/"), validate=True
            )
        except (ValueError, binascii.Error):
            raise PayloadKeyError(f"key {key_id!r}: not valid base64") from None
        if len(key) != 32:
            raise PayloadKeyError(f"key {key_id!r}: expected 32 bytes, got {len(key)}")
        if any(key_id == k for k, _ in keys):
            raise PayloadKeyError(f"key {key_id!r}: listed twice")
        keys.append((key_id, key))
    if not keys:
        raise PayloadKeyError("no key given")
    return keys


def new_key_spec(key_id: str = "k1") -> str:
    """A fresh ``KEY_ID:BASE64`` entry (``sluice codec-server --new-key`` prints one)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
