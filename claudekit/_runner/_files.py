"""The Files API from claudekit: ``await claudekit.upload(path)`` -> :class:`File`, remembered by content.

An upload is remembered (in the store, by SHA-256 of the bytes and the service's base URL), so running
the cell again, even in a new kernel, uploads nothing: the remembered file is checked with one metadata
request and used. Calls go through the installed SDK's ``client.files`` (the GA Files API).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic

from .. import _seams
from .._base._errors import ConfigError, from_sdk_error, is_transport_error
from .._request._content import sniff_image
from ._client import ClientHandle, resolve_client

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "UPLOAD_ABOVE",
    "File",
    "files",
    "share_documents",
    "upload",
    "upload_large",
    "upload_with",
    "where_of",
]

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
        except Exception as err:
            if not is_transport_error(err):
                raise
            raise from_sdk_error(err) from err
        finally:
            await handle.aclose()
        _forget(self.id, self.base_url)
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


def where_of(handle: ClientHandle) -> str:
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
    # A chat's own connection is used as it is (and left open); otherwise one is made and closed.
    handle: ClientHandle = chat._handle if chat is not None else _handle(client, offline, base_url)
    try:
        return await upload_with(handle.client, data, name, where_of(handle), handle.offline)
    finally:
        if chat is None:
            await handle.aclose()


async def upload_with(
    client: anthropic.AsyncAnthropic, data: bytes, name: str, where: str, offline: Any = None
) -> File:
    """Upload ``data`` through ``client``, unless these bytes are remembered for ``where`` and still there."""
    sha = hashlib.sha256(data).hexdigest()
    # An in-process backend's files live as long as the process: never worth a row in the store.
    local = where.startswith("offline:")
    known = _recall(sha, where) if local else _hook("upload_recall", _recall)(sha, where)
    if known is not None and await _still_there(client, known["file_id"], len(data)):
        return _file(known, offline)
    try:
        meta = await client.files.upload(file=(name, data, _media_type(data)))
    except Exception as err:
        if not is_transport_error(err):
            raise
        raise from_sdk_error(err) from err
    row = {
        "sha256": sha,
        "base_url": where,
        "file_id": meta.id,
        "filename": meta.filename,
        "media_type": meta.mime_type,
        "size": meta.size_bytes,
    }
    (_remember if local else _hook("upload_remember", _remember))(row)
    return _file(row, offline)


async def _still_there(client: anthropic.AsyncAnthropic, file_id: str, size: int) -> bool:
    try:
        meta = await client.files.retrieve_metadata(file_id)
    except anthropic.NotFoundError:
        return False
    except Exception as err:
        if not is_transport_error(err):
            raise
        raise from_sdk_error(err) from err
    return bool(meta.size_bytes == size)


def _file(row: dict[str, Any], offline: Any) -> File:
    return File(
        id=row["file_id"],
        filename=row["filename"],
        size=int(row["size"]),
        media_type=row["media_type"],
        sha256=row["sha256"],
        base_url=row["base_url"],
        _offline=offline,
    )


# -- documents that go by file id -------------------------------------------------------------------------

#: A document block whose bytes are above this size is uploaded and sent by file id (a chat's prompt).
UPLOAD_ABOVE = 4 * 1024 * 1024


def _inline_pdf(block: Any) -> str | None:
    """The base64 data of an inline PDF document block, else None."""
    if not isinstance(block, dict) or block.get("type") != "document":
        return None
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def _by_id(block: dict[str, Any], file: File) -> dict[str, Any]:
    return {**block, "source": {"type": "file", "file_id": file.id}}


async def upload_large(handle: ClientHandle, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` with each document over :data:`UPLOAD_ABOVE` bytes uploaded and referred to by id."""
    out = []
    for block in blocks:
        data = _inline_pdf(block)
        if data is not None and len(data) * 3 // 4 > UPLOAD_ABOVE:
            raw = base64.b64decode(data)
            name = str(block.get("title") or "document.pdf")
            block = _by_id(
                block, await upload_with(handle.client, raw, name, where_of(handle), handle.offline)
            )
        out.append(block)
    return out


async def share_documents(
    client: anthropic.AsyncAnthropic, where: str, requests: list[dict[str, Any]]
) -> int:
    """Upload each inline document that several of ``requests`` (Messages params) carry, once, and refer
    to it by id in all of them (edited in place). Returns how many documents went by id."""
    seen: dict[str, int] = {}
    for params in requests:
        found = {_inline_pdf(b) for m in params.get("messages", []) for b in _content(m)}
        for data in (d for d in found if d is not None):
            seen[data] = seen.get(data, 0) + 1
    shared: dict[str, File] = {}
    for params in requests:
        for msg in params.get("messages", []):
            content = _content(msg)
            for i, block in enumerate(content):
                inline = _inline_pdf(block)
                if inline is None or seen.get(inline, 0) < 2:
                    continue
                if inline not in shared:
                    name = str(block.get("title") or "document.pdf")
                    shared[inline] = await upload_with(client, base64.b64decode(inline), name, where)
                content[i] = _by_id(block, shared[inline])
    return len(shared)


def _content(msg: Any) -> list[Any]:
    content = msg.get("content") if isinstance(msg, dict) else None
    return content if isinstance(content, list) else []


def files() -> pd.DataFrame:
    """The uploads claudekit remembers (newest first): id, filename, size, media type, sha256, where."""
    import pandas as pd  # on first use: `import claudekit` stays light

    stored = _hook("upload_list", lambda: [])()
    rows = sorted([*stored, *_memory.values()], key=lambda r: r["uploaded"], reverse=True)
    frame: pd.DataFrame = pd.DataFrame(
        rows, columns=["file_id", "filename", "size", "media_type", "sha256", "base_url", "uploaded"]
    )
    frame["uploaded"] = pd.to_datetime(frame["uploaded"].astype("int64"), unit="us", utc=True)
    return frame
