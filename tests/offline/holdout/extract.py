"""Extract recorded Messages-API requests from other projects' public test cassettes (not run in CI).

    python tests/offline/holdout/extract.py OUT.jsonl GITDIR [GITDIR ...]

Each GITDIR is a bare clone; every version of its cassettes in the history is read. Every VCR-style
cassette (YAML or JSON) is scanned for interactions with api.anthropic.com /v1/... (messages,
count_tokens, models, files); one JSON line per interaction: repo, path, commit, uri, method,
status, the anthropic-beta header if recorded, the request body, and for 4xx the recorded error
body. Keys and other headers are not kept.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CASSETTE_HINTS = ("cassette", "recording", "fixtures", "vcr")
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _git(gitdir: str, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], capture_output=True, check=False).stdout


def _wanted(name: str) -> bool:
    return any(h in name.lower() for h in CASSETTE_HINTS) and name.endswith(
        (".yaml", ".yml", ".json", ".yaml.gz")
    )


def _blobs(gitdir: str) -> list[tuple[str, str]]:
    """(blob id, path) of every version of every cassette in the history, so deleted ones count too."""
    seen: dict[str, str] = {}
    for line in _git(gitdir, "ls-tree", "-r", "HEAD").decode("utf-8", "replace").splitlines():
        meta, _, path = line.partition("\t")
        if _wanted(path):
            seen[meta.split()[2]] = path
    for line in (
        _git(gitdir, "rev-list", "--objects", "--all", "--missing=allow-any")
        .decode("utf-8", "replace")
        .splitlines()
    ):
        sha, _, path = line.partition(" ")
        if path and _wanted(path) and sha not in seen:
            seen[sha] = path
    return sorted(seen.items(), key=lambda kv: kv[1])


def _blob_commit(gitdir: str, path: str) -> str:
    """The newest commit that touched path (where a reader finds that version)."""
    return _git(gitdir, "log", "--all", "-1", "--format=%H", "--", path).decode().strip()


def _text(value: Any) -> str | None:
    """A recorded body as text (vcrpy stores str, bytes, or {'string': ...}); gzip is undone."""
    if isinstance(value, dict):
        value = value.get("string", value.get("text"))
    if isinstance(value, bytes):
        if value[:2] == b"\x1f\x8b":
            value = gzip.decompress(value)
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    for k, v in headers.items():
        if k.lower() == name:
            return ",".join(v) if isinstance(v, list) else str(v)
    return None


def _interactions(doc: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    if isinstance(doc, dict) and isinstance(doc.get("interactions"), list):  # vcrpy
        for i in doc["interactions"]:
            yield i.get("request") or {}, i.get("response") or {}
    elif isinstance(doc, dict) and isinstance(doc.get("log"), dict):  # HAR / Polly
        for e in doc["log"].get("entries", []):
            req, resp = e.get("request", {}), e.get("response", {})
            yield (
                {
                    "uri": req.get("url"),
                    "method": req.get("method"),
                    "body": (req.get("postData") or {}).get("text"),
                    "headers": {h["name"]: h["value"] for h in req.get("headers", [])},
                },
                {"status": {"code": resp.get("status")}, "body": (resp.get("content") or {}).get("text")},
            )
    elif isinstance(doc, list):  # nock-style recordings
        for e in doc:
            if isinstance(e, dict) and "scope" in e and "path" in e:
                body = e.get("body")
                yield (
                    {
                        "uri": f"{e['scope']}{e['path']}",
                        "method": e.get("method"),
                        "body": json.dumps(body) if isinstance(body, (dict, list)) else body,
                        "headers": e.get("reqheaders") or {},
                    },
                    {
                        "status": {"code": e.get("status")},
                        "body": json.dumps(e["response"])
                        if isinstance(e.get("response"), (dict, list))
                        else None,
                    },
                )


def _status(resp: dict[str, Any]) -> int | None:
    st = resp.get("status")
    if isinstance(st, dict):
        st = st.get("code")
    try:
        return int(st) if st is not None else None
    except (TypeError, ValueError):
        return None


def extract(gitdir: str) -> Iterator[dict[str, Any]]:
    repo = "/".join(Path(gitdir).parent.name.split("+", 1))
    for sha, path in _blobs(gitdir):
        raw = _git(gitdir, "cat-file", "blob", sha)
        if path.endswith(".gz"):
            try:
                raw = gzip.decompress(raw)
            except OSError:
                continue
        if b"anthropic" not in raw:
            continue
        try:
            doc = json.loads(raw) if path.endswith(".json") else yaml.load(raw, Loader=Loader)
        except Exception:
            continue
        commit = None
        for n, (req, resp) in enumerate(_interactions(doc)):
            uri = str(req.get("uri") or req.get("url") or "")
            if "anthropic.com" not in uri or "/v1/" not in uri:
                continue
            body = _text(req.get("body"))
            try:
                parsed = json.loads(body) if body else None
            except json.JSONDecodeError:
                parsed = None
            status = _status(resp)
            commit = commit or _blob_commit(gitdir, path)
            rec: dict[str, Any] = {
                "repo": repo,
                "path": path,
                "commit": commit,
                "blob": sha,
                "index": n,
                "uri": uri,
                "method": req.get("method"),
                "status": status,
                "beta": _header(req.get("headers"), "anthropic-beta"),
                "body": parsed,
            }
            if status is not None and status >= 400:
                rec["error"] = _text(resp.get("body"))
            yield rec


def main(out: str, gitdirs: list[str]) -> None:
    with open(out, "w") as f:
        for g in gitdirs:
            count = 0
            for rec in extract(g):
                f.write(json.dumps(rec) + "\n")
                count += 1
            print(g, count, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
