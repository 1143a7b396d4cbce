"""The one Mapper the store uses, between domain events and stored events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import Cipher, Mapper

from backend.store.transcoder import MsgspecTranscoder


def make_mapper(cipher: Cipher | None = None) -> Mapper[UUID]:
    """No compressor, so unencrypted state stays JSON that psql and auditors can read as is."""
    return Mapper(transcoder=MsgspecTranscoder(), cipher=cipher)
