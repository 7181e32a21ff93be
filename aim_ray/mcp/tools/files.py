"""The ``file_reader`` tool: one UTF-8 text file from its allowed directories, read
through ``backends.files`` (root confinement, size cap, no binaries)."""

from __future__ import annotations

import asyncio

from aim_ray.config.mcp_tools import FileReaderToolConfig
from aim_ray.mcp.backends.files import PathRefusedError, read_text_file, resolve_under_roots
from aim_ray.mcp.protocol import ComponentHealth
from aim_ray.mcp.tools.base import FileReaderArguments, Tool, ToolError, ToolOutput


class FileReaderTool(Tool):
    arguments = FileReaderArguments
    default_description = "Read a UTF-8 text file from the allowed directories."

    def __init__(self, config: FileReaderToolConfig) -> None:
        super().__init__(config)
        self._settings = config.config

    def _read(self, requested: str) -> tuple[str, str]:
        real = resolve_under_roots(requested, self._settings.allowed_paths)
        return str(real), read_text_file(real, self._settings.max_bytes)

    async def run(self, args: FileReaderArguments) -> ToolOutput:
        try:
            path, text = await asyncio.to_thread(self._read, args.path)
        except PathRefusedError as error:
            raise ToolError(str(error)) from None
        return ToolOutput(text=text, structured={"path": path, "chars": len(text)})

    async def health(self) -> ComponentHealth:
        return ComponentHealth(
            status="up", detail=f"{len(self._settings.allowed_paths)} allowed path(s)"
        )
