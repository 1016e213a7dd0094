"""Running a conversation: the client and its attempts (SDK middleware), the stream accumulator, one turn, the
chat, and the reply it returns. Sits above :mod:`claudekit._tooling` and :mod:`claudekit._request`.
A turn gets what it needs of its chat as a ``TurnContext``; it never reads the Chat itself.
"""
