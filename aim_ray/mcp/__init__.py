"""The MCP layer: the wire contract (``protocol``), context providers, tools, the shared
backends they stand on, the ``/mcp`` server and the MCP-aware chat loop."""
