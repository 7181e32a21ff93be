"""MCP-aware chat completions: context injection and the server-side tool loop.

A chat request becomes MCP-aware when it carries ``mcp_context`` (retrieve from the named
providers, fit the items into the context budget with the model's own tokenizer, inject
them as a system message) or when its ``tools`` name tools of the registry (their schemas
are filled in, the calls the model makes run through the tool deployment, and the model is
called again until it answers or the iteration limit is reached). Tools the client defines
itself come back to the client as ordinary ``tool_calls``. What happened is reported beside
``choices`` as an ``mcp`` object, and in a stream as side-channel chunks whose ``choices``
list is empty (README, "MCP-aware chat completions").

``loop`` owns the request and the rounds, ``context`` the context, ``stream`` the event
stream, ``report`` the ``mcp`` object.
"""
