"""The MCP server notebooks/08-tools-mcp.ipynb uses: two tools, written with the `mcp` SDK's MCPServer
(FastMCP's name in mcp 2.x). Run by the notebook as ``python notes_server.py`` over stdio."""

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("notes")
NOTES = {"shopping": "buy milk and bread", "work": "send the report on Friday"}


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_note(name: str) -> str:
    """Read the note called name."""
    return NOTES.get(name, f"there is no note called {name}")


@server.tool()
def delete_note(name: str) -> str:
    """Delete the note called name."""
    NOTES.pop(name, None)
    return f"deleted {name}"


if __name__ == "__main__":
    server.run()
