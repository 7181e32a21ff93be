"""MCP context: the providers and the service that queries them.

* ``base``: the ``ContextProvider`` base class and ``ProviderError``.
* ``postgres``, ``chroma``, ``rest``, ``filesystem``: one provider type each.
* ``registry``: ``build_provider``, a ``providers:`` entry to its provider.
* ``service``: ``ContextService`` (the Serve ``Context`` deployment): parallel lookups,
  the TTL cache, ranking, the token budget and the ``context://`` MCP resources.

Backends shared with the tools (files, PostgreSQL, outbound HTTP) are in ``mcp.backends``.
"""
