"""The config layer: the application args, the gateway settings and the ``mcp:`` section as
pydantic models, loaded and checked with pydantic, PyYAML and the standard library only (no
Ray, no vLLM, no HTTP client), so that any tool can read a config cheaply."""
