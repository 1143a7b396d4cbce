"""通办 material files: the receiving city serves a handoff's files, the handling city fetches them.

A handoff's messages name its files by sha256 only; the bytes stay in the receiving
city's MaterialStore until the handling city asks for each one:

    GET <base URL>/federation/v1/handoffs/{handoff}/materials/{sha256}

signed as a message is (signing.py: method GET, the path as sent, an empty body, a
fresh UUID as the message id). 收件地 (`HandoffFiles`) checks the signature as the
inbox does, then gives the file only to the partner the handoff went to, and only if
the case has held that file since: the files it was handed off with, and those of
every supplement after. Anything else is one 404, whoever asks and whatever exists.
办理地 (`MaterialFetcher`) fetches what it lacks, checks each file's hash, and stores
it; any failure raises, so the message's handler fails and the applier retries it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import asyncpg
import httpx

from backend.federation.directory import PartnerDirectory
from backend.federation.receiving import TABLE as SENT_HANDOFFS
from backend.federation.refusals import FederationRefusal, MaterialNotServed
from backend.federation.signed_requests import authenticate, record_refused
from backend.federation.signing import SigningKey
from backend.materials import MaterialError, MaterialNotFoundError, MaterialStore
from backend.store.aggregates import AggregateStore
from domain.case import Case, MaterialSource, UploadedFile

log = logging.getLogger(__name__)

MATERIAL_PATH = "/federation/v1/handoffs/{handoff}/materials/{sha256}"
ERROR_SNIPPET = 200  # characters of a refusing partner's answer kept in the error


def material_url(base_url: str, handoff: uuid.UUID, sha256: str) -> str:
    """Where a partner serves one file of a handoff, from its base URL (which may carry a path prefix)."""
    return base_url.rstrip("/") + MATERIAL_PATH.format(handoff=handoff, sha256=sha256)


def uploaded(materials: Mapping[str, MaterialSource]) -> frozenset[str]:
    """The sha256 of each material that is a file (an e-licence reference has none)."""
    return frozenset(s.sha256 for s in materials.values() if isinstance(s, UploadedFile))


def files_since_handoff(handed_off: Case, later: Iterable[object]) -> frozenset[str]:
    """Every file the case held from its handoff on: its files then, and each later supplement's.

    Not only its files now: a file replaced by a later 补正 was named to the partner all
    the same, and the partner may still be fetching it.
    """
    files = set(uploaded(handed_off.materials))
    for event in later:
        if isinstance(event, Case.MaterialsSupplemented):
            files |= uploaded(event.materials)
    return frozenset(files)


@dataclass(frozen=True, slots=True)
class ServedFile:
    data: bytes
    sha256: str
    media_type: str


class HandoffFiles:
    """收件地: the adapter behind miniapp_api.federation_routes.HandoffMaterialFiles."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        aggregates: Callable[[], AggregateStore],
        directory: PartnerDirectory,
        files: MaterialStore,
        *,
        freshness_seconds: int,
        clock: Callable[[], datetime],
        wall_clock: Callable[[], float] = time.time,  # signatures carry real Unix time, whatever `clock` says
    ) -> None:
        self._pool, self._aggregates, self._directory, self._files = pool, aggregates, directory, files
        self._freshness, self._clock, self._wall = freshness_seconds, clock, wall_clock

    async def serve(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        handoff: uuid.UUID,
        sha256: str,
        remote: str | None,
    ) -> ServedFile:
        """The file, for the partner that signed; a FederationRefusal (recorded) otherwise."""
        try:
            signed = await authenticate(
                self._directory, method, path, headers, body, now=int(self._wall()), freshness=self._freshness
            )
            return await self._file(signed.region, handoff, sha256)
        except FederationRefusal as refusal:
            await record_refused(self._pool(), self._clock(), headers, refusal, remote)
            raise

    async def _file(self, partner: str, handoff: uuid.UUID, sha256: str) -> ServedFile:
        not_served = MaterialNotServed(f"no material {sha256} in a handoff {handoff} to {partner}")
        if not await self._handed(partner, handoff, sha256):
            raise not_served
        try:
            data, ref = self._files.read(sha256)
        except MaterialNotFoundError:
            log.error("通办: material %s of handoff %s is not in our material store", sha256, handoff)
            raise not_served from None
        return ServedFile(data, ref.sha256, ref.media_type)

    async def _handed(self, partner: str, handoff: uuid.UUID, sha256: str) -> bool:
        row = await self._pool().fetchrow(
            f"SELECT case_id, case_version FROM {SENT_HANDOFFS} WHERE handoff = $1 AND partner = $2",
            handoff,
            partner,
        )
        if row is None:  # never sent, or sent to another city
            return False
        store = self._aggregates()
        handed_off = await store.get(row["case_id"], version=row["case_version"])
        later = await store.recorder.select_events(row["case_id"], gt=row["case_version"])
        return sha256 in files_since_handoff(handed_off, (store.mapper.to_domain_event(e) for e in later))


class MaterialTransferError(Exception):
    """A partner's file could not be fetched or stored here; the caller retries later."""


class MissingFiles(Protocol):
    """What a handler needs of MaterialFetcher: the files of a handoff we lack, fetched."""

    async def fetch_missing(self, partner: str, handoff: uuid.UUID, sha256s: Iterable[str]) -> list[str]: ...


class MaterialFetcher:
    """办理地: fetches a handoff's files from the receiving city into our MaterialStore."""

    def __init__(
        self,
        directory: PartnerDirectory,
        region: str,  # ours: the requester's region the partner verifies us by
        key: SigningKey,
        files: MaterialStore,
        *,
        timeout_seconds: float,  # per file, connecting to the last byte
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._directory, self._region, self._key, self._files = directory, region, key, files
        self._timeout, self._wall, self._transport = timeout_seconds, wall_clock, transport
        # One client for the process, made on first use (inside the applier's loop): its
        # connections to each partner are kept and reused across handoffs.
        self._client: httpx.AsyncClient | None = None

    async def fetch_missing(self, partner: str, handoff: uuid.UUID, sha256s: Iterable[str]) -> list[str]:
        """Fetch from `partner` each file of `handoff` we do not hold yet; those fetched now, in order.

        MaterialTransferError if one cannot be had (the partner unknown, down or refusing,
        or it sent other bytes); the files fetched before it stay, so a retry goes on from there.
        """
        missing = sorted({s for s in sha256s if not self._files.exists(s)})
        if not missing:
            return []
        found = await self._directory.find(partner)
        if found is None:
            raise MaterialTransferError(f"no partner city {partner} is configured to fetch materials from")
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, transport=self._transport)
        for sha256 in missing:
            await self._fetch(self._client, material_url(found.base_url, handoff, sha256), partner, sha256)
        log.info("通办: %d material files of handoff %s fetched from %s", len(missing), handoff, partner)
        return missing

    async def _fetch(self, client: httpx.AsyncClient, url: str, partner: str, sha256: str) -> None:
        what = f"material {sha256} from {partner}"
        headers = self._key.headers(
            self._region, "GET", urlsplit(url).path, b"", str(uuid.uuid4()), int(self._wall())
        )
        try:
            async with asyncio.timeout(self._timeout), client.stream("GET", url, headers=headers) as answer:
                if answer.status_code != 200:
                    said = (await answer.aread())[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
                    raise MaterialTransferError(f"{what}: HTTP {answer.status_code}: {said}")
                data = await self._read(answer, what)
        except TimeoutError:
            raise MaterialTransferError(f"{what}: no whole answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise MaterialTransferError(f"{what}: {type(exc).__name__}: {exc}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise MaterialTransferError(f"{what}: the bytes sent do not hash to it")
        try:
            ref = await asyncio.to_thread(self._files.put, data)
        except MaterialError as exc:
            raise MaterialTransferError(f"{what}: not stored here: {exc}") from None
        if ref.sha256 != sha256:
            raise MaterialTransferError(f"{what}: stored as {ref.sha256}")

    async def _read(self, answer: httpx.Response, what: str) -> bytes:
        """The body, cut off past our own upload limit: a file we could not store is not worth reading."""
        data = bytearray()
        async for chunk in answer.aiter_bytes():
            data += chunk
            if len(data) > self._files.max_bytes:
                raise MaterialTransferError(f"{what}: larger than our limit of {self._files.max_bytes} bytes")
        return bytes(data)
