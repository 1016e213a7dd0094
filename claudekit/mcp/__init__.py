"""MCP servers as tools: ``claudekit.mcp.stdio(command, args)`` and ``claudekit.mcp.http(url)``.

Importing this package does not import the ``mcp`` SDK; a server imports it when it starts.
Uses :mod:`claudekit._tooling` and :mod:`claudekit._base`; the notebook layer may use it.
"""

from ._server import MCPServer, MCPServerError, http, stdio

__all__ = ["MCPServer", "MCPServerError", "http", "stdio"]
