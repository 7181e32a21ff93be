"""MCP tools: the built-in tools, remote MCP servers and the service that runs them.

* ``base``: the ``Tool`` base class, ``ToolOutput``, ``ToolError`` and the argument models.
* ``calculator``, ``files`` (file_reader), ``sql`` (sql_query), ``vector``
  (vector_search), ``web`` (web_fetch, web_search): one built-in tool each.
* ``remote``: ``RemoteMCPServer`` (a ``remote_mcp`` entry) and ``connect``, a one-off
  MCP client session.
* ``registry``: ``build_tool``, a local ``tools:`` entry to its tool.
* ``service``: ``ToolService`` (the Serve ``Tools`` deployment): routing, rate limits,
  timeouts, results and health.
"""
