"""The ``file_reader`` tool: one UTF-8 text file from its allowed directories, read
through ``backends.files`` (opened beneath a root's descriptor, size cap, no binaries)."""

from __future__ import annotations

import asyncio

from aim_ray.config.mcp_tools import FileReaderToolConfig
from aim_ray.mcp.backends.files import PathRefusedError, read_under_roots
from aim_ray.mcp.protocol import ComponentHealth
from aim_ray.mcp.tools.base import FileReaderArguments, Tool, ToolError, ToolOutput


class FileReaderTool(Tool):
    arguments = FileReaderArguments
    default_description = "Read a UTF-8 text file from the allowed directories."

    def __init__(self, config: FileReaderToolConfig) -> None:
        super().__init__(config)
        self._settings = config.config

    async def run(self, args: FileReaderArguments) -> ToolOutput:
        settings = self._settings
        try:
            file = await asyncio.to_thread(
                read_under_roots, args.path, settings.allowed_paths, settings.max_bytes
            )
        except PathRefusedError as error:
            raise ToolError(str(error)) from None
        # The path as the client may know it (root name + relative), not the host path.
        return ToolOutput(text=file.text, structured={"path": file.path, "chars": len(file.text)})

    async def health(self) -> ComponentHealth:
        return ComponentHealth(
            status="up", detail=f"{len(self._settings.allowed_paths)} allowed path(s)"
        )
