"""The one Mapper the store uses, between domain events and stored events."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import Cipher, Mapper, Transcoder

from backend.store.personal_cipher import PersonalCipher, ProtectingTranscoder
from backend.store.transcoder import MsgspecTranscoder


def make_mapper(cipher: Cipher | None = None, personal: PersonalCipher | None = None) -> Mapper[UUID]:
    """No compressor, so state stays JSON that psql and auditors can read; personal fields sealed."""
    transcoder: Transcoder = MsgspecTranscoder()
    if personal is not None:
        transcoder = ProtectingTranscoder(transcoder, personal)
    return Mapper(transcoder=transcoder, cipher=cipher)
