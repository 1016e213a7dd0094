"""A real MCP server (the SDK's MCPServer) for the tests: ``python notes_server.py [stdio|http PORT]``.

Every call is appended to the file named by NOTES_CALLS, so a test can tell what really ran.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time

from mcp.server import MCPServer
from mcp.types import (
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)

server = MCPServer("notes")
# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000105fe02fea70000000049454e44ae426082"
    )
).decode()


def record(what: str) -> None:
    with open(os.environ.get("NOTES_CALLS", os.devnull), "a") as f:
        f.write(f"{what} pid={os.getpid()} ppid={os.getppid()} t={time.time():.3f}\n")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_note(name: str) -> str:
    """Read the note called name."""
    record(f"read_note {name}")
    return f"note {name}: buy milk"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_note(name: str) -> str:
    """Delete the note called name."""
    record(f"delete_note {name}")
    return f"deleted {name}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def crash_now() -> str:
    """Crash the server."""
    record("crash_now")
    print("notes: disk on fire", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def slow_read(seconds: float) -> str:
    """Take a while."""
    record("slow_read start")
    try:
        await asyncio.sleep(seconds)
    except BaseException:
        record("slow_read cancelled")
        raise
    record("slow_read end")
    return "done slowly"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def big_note() -> str:
    """A very long note."""
    return "x" * 50_000


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def picture() -> list[TextContent | ImageContent]:
    """A picture."""
    dot = ImageContent(type="image", data=PNG, mime_type="image/png")
    return [TextContent(type="text", text="a dot"), dot]


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def attachments() -> list[EmbeddedResource | ImageContent]:
    """Embedded resources: a text file, a PDF blob, and an image type Claude cannot read."""
    text = TextResourceContents(uri="notes://a.txt", mime_type="text/plain", text="the text of a")
    blob = BlobResourceContents(uri="notes://b.pdf", mime_type="application/pdf", blob=PNG)
    return [
        EmbeddedResource(type="resource", resource=text),
        EmbeddedResource(type="resource", resource=blob),
        ImageContent(type="image", data=PNG, mime_type="image/tiff"),
    ]


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def failing() -> str:
    """Always fails."""
    raise ValueError("no such shelf")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
        # A stubborn server outlives the end of its stdin: only claudekit's shutdown (which ends the
        # process tree) stops it in time, so a test can tell that the shutdown happened.
        time.sleep(float(os.environ.get("NOTES_LINGER", "0")))
