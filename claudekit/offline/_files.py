"""The Files API offline: upload, list, metadata, download, delete, and ``file`` sources in messages.

What the service does (https://platform.claude.com/docs/en/build-with-claude/files, the installed SDK's
``FileMetadata`` / ``FileListParams`` / ``FileNotDownloadableError`` / ``FileExpiredError``):

* The Files API is generally available: no beta header is needed (the installed SDK's ``client.files`` and
  ``client.beta.files`` send none). A list answers ``{data, next_page}``, paged by passing ``next_page``
  back as ``page`` (``page_…``) or by up to 100 ``ids``; every file object carries ``expires_at``.
* A request that still sends ``anthropic-beta: files-api-2025-04-14`` gets the beta shapes: a list
  ``{data, has_more, first_id, last_id}`` paged by ``before_id`` / ``after_id``, and file objects without
  ``expires_at``. Without that header ``before_id`` / ``after_id`` are a 400.
* Uploaded files are not downloadable (``downloadable: false``; ``/content`` is a 400 with
  ``error_code: file_not_downloadable``); files a tool created are (:meth:`FileStore.add_generated`).
* An unknown or deleted id is a 404; an expired file's content is a 404 with ``error_code: file_expired``.
* In a message, ``{"type": "file", "file_id": …}`` in a document takes a PDF or plain-text file and in
  an image an image file; the block is then validated, counted and cited like the same bytes inline.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from ._errors import ApiError
from ._paging import id_page, limit_of, page_view
from ._turns import image_type
from ._wire import Call, Reply, Route, b62, json_reply

__all__ = ["FILES_BETA", "MAX_FILE_BYTES", "FileSource", "FileStore", "StoredFile"]

FILES_BETA = "files-api-2025-04-14"
MAX_FILE_BYTES = 500 * 1024 * 1024  # the service's per-file limit
_EXPIRY = (3600, 7_776_000)  # expires_in_seconds: one hour to ninety days (the SDK's docstring)
_FORBIDDEN = set('<>:"|?*\\/') | {chr(c) for c in range(32)}
_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "image/png": ".png", "image/jpeg": ".jpg"}


class FileSource(dict[str, Any]):
    """An inline source made from a ``file`` source: a plain dict to the checks, remembering its file id
    (citations name it) without a key the request shape would refuse."""

    file_id: str | None = None


@dataclass
class StoredFile:
    id: str
    filename: str
    mime_type: str
    data: bytes
    created_at: float  # epoch seconds
    downloadable: bool
    expires_at: float | None = None

    def view(self, beta: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.data),
            "created_at": _rfc3339(self.created_at),
            "downloadable": self.downloadable,
        }
        if not beta:
            out["expires_at"] = None if self.expires_at is None else _rfc3339(self.expires_at)
        return out


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def sniff_mime(data: bytes, declared: str | None) -> str:
    """The stored ``mime_type``: from the bytes where they say (PDF, images), else the declared type."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    image = image_type(data)
    if image is not None:
        return image
    if declared and declared != "application/octet-stream":
        return declared.split(";")[0].strip()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def _form(call: Call) -> tuple[dict[str, str], tuple[str | None, str | None, bytes] | None]:
    """The fields of a ``multipart/form-data`` body, and its ``file`` part as (filename, type, bytes)."""
    ctype = call.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(400, "Content-Type must be multipart/form-data")
    # The standard library's MIME parser reads form data; no hand-written multipart parser.
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + call.body
    )
    fields: dict[str, str] = {}
    upload = None
    for part in msg.iter_parts() if msg.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        if name == "file":
            declared = part.get_content_type() if part.get("content-type") else None
            upload = (part.get_filename(), declared, raw)
        elif isinstance(name, str):
            fields[name] = raw.decode("utf-8", "replace")
    return fields, upload


def _clean_name(name: str | None, mime: str) -> str:
    # Only the final path component is kept; none at all becomes "unnamed" plus the type's extension.
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not base:
        return "unnamed" + _EXTENSIONS.get(mime, "")
    if len(base) > 255 or _FORBIDDEN & set(base):
        raise ApiError(400, 'filename: must be 1 to 255 characters, without <>:"|?*\\/ or control characters')
    return base


class FileStore:
    """The files one backend holds, and the routes that serve them."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()
        self._counter = 0
        #: Successful uploads received (what a "re-run uploads nothing" test counts).
        self.uploads = 0

    def routes(self) -> list[Route]:
        one = "/v1/files/{file_id}"
        return [
            Route("POST", "/v1/files", self._upload_route),
            Route("GET", "/v1/files", self._list_route),
            Route("GET", one, lambda c: json_reply(200, self._get(c).view(_beta(c)), c.req_id)),
            Route("GET", one + "/content", self._content_route),
            Route("DELETE", one, self._delete_route),
        ]

    # -- storing --------------------------------------------------------------------------------
    def _add(self, name: str, mime: str, data: bytes, *, downloadable: bool, ttl: int | None) -> StoredFile:
        with self._lock:
            self._counter += 1
            digest = hashlib.sha256(data + self._counter.to_bytes(8, "big") + str(id(self)).encode()).digest()
            now = self._wall()
            stored = StoredFile(
                "file_011C" + b62(digest, 22),
                name,
                mime,
                data,
                now,
                downloadable,
                None if ttl is None else now + ttl,
            )
            self._files[stored.id] = stored
        return stored

    def add_generated(self, filename: str, data: bytes, mime_type: str | None = None) -> StoredFile:
        """A file a tool created (code execution, skills): listed like an upload, and downloadable."""
        return self._add(filename, sniff_mime(data, mime_type), data, downloadable=True, ttl=None)

    def lookup(self, file_id: str) -> StoredFile:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise _unknown(file_id)
        return stored

    # -- routes ---------------------------------------------------------------------------------
    def _get(self, call: Call) -> StoredFile:
        return self.lookup(call.params["file_id"])

    def _upload_route(self, call: Call) -> Reply:
        fields, upload = _form(call)
        if upload is None:
            raise ApiError(400, "file: Field required")
        name, declared, data = upload
        if len(data) > MAX_FILE_BYTES:
            raise ApiError(
                413, f"File exceeds the maximum size of {MAX_FILE_BYTES:,} bytes", "request_too_large"
            )
        ttl = None
        if "expires_in_seconds" in fields:
            try:
                ttl = int(fields["expires_in_seconds"])
            except ValueError:
                ttl = -1
            if not _EXPIRY[0] <= ttl <= _EXPIRY[1]:
                raise ApiError(400, f"expires_in_seconds: must be between {_EXPIRY[0]} and {_EXPIRY[1]}")
        mime = sniff_mime(data, declared)
        stored = self._add(_clean_name(name, mime), mime, data, downloadable=False, ttl=ttl)
        with self._lock:
            self.uploads += 1
        return json_reply(200, stored.view(_beta(call)), call.req_id)

    def _list_route(self, call: Call) -> Reply:
        query = parse_qs(call.query)
        with self._lock:
            ordered = sorted(self._files.values(), key=lambda f: (f.created_at, f.id), reverse=True)
        beta = _beta(call)
        if beta:
            return json_reply(200, _beta_page(ordered, query), call.req_id)
        return json_reply(200, _ga_page(ordered, query), call.req_id)

    def _content_route(self, call: Call) -> Reply:
        stored = self._get(call)
        if not stored.downloadable:
            raise ApiError(
                400,
                f"File {stored.id} is not downloadable: only files created by a tool can be downloaded",
                details={"error_code": "file_not_downloadable"},
            )
        if stored.expires_at is not None and self._wall() >= stored.expires_at:
            raise ApiError(404, f"File {stored.id} has expired", details={"error_code": "file_expired"})
        headers = [
            ("content-type", stored.mime_type),
            ("content-length", str(len(stored.data))),
            ("content-disposition", f'attachment; filename="{stored.filename}"'),
            ("request-id", call.req_id),
        ]
        return Reply(200, headers, [stored.data])

    def _delete_route(self, call: Call) -> Reply:
        stored = self._get(call)
        with self._lock:
            self._files.pop(stored.id, None)
        return json_reply(200, {"id": stored.id, "type": "file_deleted"}, call.req_id)

    # -- file sources in messages ---------------------------------------------------------------
    def resolve(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with each document's and image's ``file`` source replaced by the same bytes inline
        (a :class:`FileSource`); tool results keep theirs (the service refuses a file source there)."""
        out: list[dict[str, Any]] = []
        for i, msg in enumerate(messages):
            content = msg.get("content")
            if not isinstance(content, list):
                out.append(dict(msg))
                continue
            blocks = [self._inline(blk, f"messages.{i}.content.{j}") for j, blk in enumerate(content)]
            out.append({**msg, "content": blocks})
        return out

    def _inline(self, blk: Any, path: str) -> Any:
        if not isinstance(blk, Mapping) or blk.get("type") not in ("document", "image"):
            return blk
        source = blk.get("source")
        if not isinstance(source, Mapping) or source.get("type") != "file":
            return blk
        stored = self.lookup(str(source.get("file_id")))
        kind = blk["type"]
        if kind == "document" and stored.mime_type == "text/plain":
            new = FileSource(
                type="text", media_type="text/plain", data=stored.data.decode("utf-8", "replace")
            )
        elif (kind == "document" and stored.mime_type == "application/pdf") or (
            kind == "image" and stored.mime_type.startswith("image/")
        ):
            encoded = base64.b64encode(stored.data).decode("ascii")
            new = FileSource(type="base64", media_type=stored.mime_type, data=encoded)
        else:
            raise ApiError(
                400,
                f"{path}.{kind}.source.file: file {stored.id} has type {stored.mime_type}, "
                f"which {'an image' if kind == 'image' else 'a document'} block does not take",
            )
        new.file_id = stored.id
        return {**blk, "source": new}


def _beta(call: Call) -> bool:
    values = (call.headers.get("anthropic-beta") or "").split(",")
    return FILES_BETA in {v.strip() for v in values}


def _unknown(file_id: str) -> ApiError:
    return ApiError(404, f"File not found: {file_id}", "not_found_error")


def _beta_page(ordered: list[StoredFile], query: Mapping[str, list[str]]) -> dict[str, Any]:
    start, stop, more = id_page([f.id for f in ordered], query, _unknown)
    return page_view([f.view(True) for f in ordered[start:stop]], more)


def _ga_page(ordered: list[StoredFile], query: Mapping[str, list[str]]) -> dict[str, Any]:
    if "before_id" in query or "after_id" in query:
        raise ApiError(
            400,
            "before_id and after_id page the files beta; without the files-api-2025-04-14 header, "
            "pass a previous response's next_page as page",
        )
    ids = query.get("ids") or query.get("ids[]")
    if ids:
        if "page" in query or "limit" in query:
            raise ApiError(400, "ids: cannot be combined with page or limit")
        wanted = list(dict.fromkeys(ids))
        if len(wanted) > 100:
            raise ApiError(400, "ids: at most 100 entries")
        return {"data": [f.view(False) for f in ordered if f.id in wanted], "next_page": None}
    limit = limit_of(query)
    start = 0
    if query.get("page"):
        start = _cursor(query["page"][0], [f.id for f in ordered])
    page = ordered[start : start + limit]
    more = start + len(page) < len(ordered)
    token = "page_" + base64.urlsafe_b64encode(page[-1].id.encode()).decode().rstrip("=") if more else None
    return {"data": [f.view(False) for f in page], "next_page": token}


def _cursor(token: str, ids: list[str]) -> int:
    """Where the page after ``token`` starts (the cursor names the last file of the page before)."""
    raw = token.removeprefix("page_")
    try:
        last = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "page: not a page cursor from a previous response") from None
    if not token.startswith("page_") or last not in ids:
        raise ApiError(400, "page: not a page cursor from a previous response")
    return ids.index(last) + 1
