"""The Files API from claudekit: ``await claudekit.upload(path)`` -> :class:`File`, remembered by content.

An upload is remembered (in the store, by SHA-256 of the bytes and the service's base URL), so running
the cell again, even in a new kernel, uploads nothing: the remembered file is checked with one metadata
request and used. Calls go through the installed SDK's ``client.files`` (the GA Files API).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic

from .. import _seams
from .._base._errors import ConfigError
from .._request._content import sniff_image
from ._client import ClientHandle, resolve_client

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["File", "files", "upload"]

_memory: dict[tuple[str, str], dict[str, Any]] = {}  # when the store is not loaded


@dataclass(frozen=True)
class File:
    """A file uploaded with the Files API: use it in a prompt (or ``Document(file)``) by its id."""

    id: str
    filename: str
    size: int
    media_type: str
    sha256: str
    base_url: str
    # Where it lives, to delete it: the offline backend it was uploaded to (never the API key).
    _offline: Any = field(default=None, repr=False, compare=False)

    def to_block(self) -> dict[str, Any]:
        """A document block (PDF, text) or an image block whose source is this file."""
        kind = "image" if self.media_type.startswith("image/") else "document"
        block: dict[str, Any] = {"type": kind, "source": {"type": "file", "file_id": self.id}}
        if kind == "document":
            # Citations on, as a Document's are by default (the API takes them on all documents or none).
            block["title"] = self.filename
            block["citations"] = {"enabled": True}
        return block

    async def delete(self, *, client: anthropic.AsyncAnthropic | None = None) -> None:
        """Delete the file from the service and forget it (a file already gone is not an error)."""
        handle = _handle(client, self._offline, self.base_url)
        try:
            await handle.client.files.delete(self.id)
        except anthropic.NotFoundError:
            pass
        finally:
            await handle.aclose()
        _hook("upload_forget", _forget)(self.id, self.base_url)


def _hook(name: str, fallback: Any) -> Any:
    return _seams.store_hooks.get(name, fallback)


def _recall(sha: str, base: str) -> dict[str, Any] | None:
    return _memory.get((sha, base))


def _remember(row: dict[str, Any]) -> None:
    _memory[(row["sha256"], row["base_url"])] = {"uploaded": time.time_ns() // 1000, **row}


def _forget(file_id: str, base: str) -> None:
    for key in [k for k, v in _memory.items() if v["file_id"] == file_id and k[1] == base]:
        del _memory[key]


def _handle(client: Any, offline: Any, base_url: str | None) -> ClientHandle:
    if offline is not None or (base_url or "").startswith("offline:"):
        base_url = None
    return resolve_client(
        client=client,
        backend=None,
        api_key=None,
        base_url=base_url,
        max_retries=2,
        timeout=600.0,
        connect_timeout=10.0,
        offline=offline,
    )


def _where(handle: ClientHandle) -> str:
    """The key an upload is remembered under: the base URL, or this process's in-process backend."""
    if handle.offline is not None:
        # An in-process backend lives as long as the process: remember its files for this process only.
        return f"offline:{os.getpid()}:{id(handle.offline)}"
    return str(handle.client.base_url).rstrip("/")


def _read(source: str | os.PathLike[str] | bytes, filename: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), filename or "upload"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.read_bytes(), filename or path.name
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
    raise ConfigError(f"cannot upload a {type(source).__name__}", hint="pass a file path or bytes")


def _media_type(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    image = sniff_image(data)
    if image is not None:
        return image
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


async def upload(
    source: str | os.PathLike[str] | bytes,
    *,
    filename: str | None = None,
    chat: Any = None,
    client: anthropic.AsyncAnthropic | None = None,
    offline: Any = None,
    base_url: str | None = None,
) -> File:
    """Upload a file (path or bytes) with the Files API, once: the same bytes to the same service are
    remembered (content hash + base URL) and not uploaded again. ``chat=`` uploads where that chat talks."""
    data, name = _read(source, filename)
    sha = hashlib.sha256(data).hexdigest()
    # A chat's own connection is used as it is (and left open); otherwise one is made and closed.
    handle: ClientHandle = chat._handle if chat is not None else _handle(client, offline, base_url)
    where = _where(handle)
    try:
        known = _hook("upload_recall", _recall)(sha, where)
        if known is not None and await _still_there(handle, known["file_id"], len(data)):
            return _file(known, handle)
        media = _media_type(data)
        meta = await handle.client.files.upload(file=(name, data, media))
    finally:
        if chat is None:
            await handle.aclose()
    row = {
        "sha256": sha,
        "base_url": where,
        "file_id": meta.id,
        "filename": meta.filename,
        "media_type": meta.mime_type,
        "size": meta.size_bytes,
    }
    _hook("upload_remember", _remember)(row)
    return _file(row, handle)


async def _still_there(handle: ClientHandle, file_id: str, size: int) -> bool:
    try:
        meta = await handle.client.files.retrieve_metadata(file_id)
    except anthropic.NotFoundError:
        return False
    return bool(meta.size_bytes == size)


def _file(row: dict[str, Any], handle: ClientHandle) -> File:
    return File(
        id=row["file_id"],
        filename=row["filename"],
        size=int(row["size"]),
        media_type=row["media_type"],
        sha256=row["sha256"],
        base_url=row["base_url"],
        _offline=handle.offline,
    )


def files() -> pd.DataFrame:
    """The uploads claudekit remembers (newest first): id, filename, size, media type, sha256, where."""
    import pandas as pd  # on first use: `import claudekit` stays light

    rows = _hook("upload_list", lambda: sorted(_memory.values(), key=lambda r: r["uploaded"], reverse=True))()
    frame: pd.DataFrame = pd.DataFrame(
        rows, columns=["file_id", "filename", "size", "media_type", "sha256", "base_url", "uploaded"]
    )
    frame["uploaded"] = pd.to_datetime(frame["uploaded"].astype("int64"), unit="us", utc=True)
    return frame
