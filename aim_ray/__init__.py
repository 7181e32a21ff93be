"""aim-ray: LLM inference for AMD Instinct GPUs as a Ray Serve application, with MCP built in."""

__version__ = "0.1.0"
