"""``type: python`` tools: a typed Python function as a registry tool.

The function (``import_path: package.module:function``) is imported when the tool
deployment starts. Its signature becomes the argument model, so the JSON schema clients
see, the validation of every call and the error a bad call gets all come from the
annotations (plain types, ``Annotated[..., Field(description=...)]``, pydantic models,
defaults); its docstring's first paragraph is the default description. It runs like a
built-in tool: same rate limit, timeout and metrics (``ToolService``). An ``async``
function runs on the replica's loop; a plain one in a worker thread, where a timeout stops
the wait but cannot stop the thread. A ``ToolError`` it raises is the message the model
sees; any other exception is reported by type only.

A function that cannot be imported, or whose signature cannot be a schema, leaves the tool
out of the listing; its health and every call say why.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

from aim_ray.config.mcp_tools import PythonToolConfig
from aim_ray.mcp.protocol import ComponentHealth, ToolSpec
from aim_ray.mcp.tools.base import Tool, ToolError, ToolOutput

logger = logging.getLogger(__name__)


class ToolDefinitionError(Exception):
    """The function cannot be a tool; the message says why, without a traceback."""


def load_function(import_path: str) -> Callable[..., Any]:
    module_name, _, attribute = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or whatever the module raises on import
        raise ToolDefinitionError(
            f"cannot import {module_name!r}: {type(error).__name__}: {error}"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ToolDefinitionError(f"{import_path!r} is not a function")
    return function


def arguments_model(function: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model of the function's parameters (extra arguments refused)."""
    try:
        hints = get_type_hints(function, include_extras=True)
    except Exception as error:  # a forward reference that does not resolve
        raise ToolDefinitionError(f"cannot read the annotations: {error}") from None
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolDefinitionError(f"*{parameter.name} has no schema; name every argument")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"{parameter.name} is positional-only; tools take names")
        if parameter.name not in hints:
            raise ToolDefinitionError(f"argument {parameter.name!r} has no type annotation")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    config = ConfigDict(extra="forbid")
    try:
        return create_model(f"{name}_arguments", __config__=config, **fields)
    except Exception as error:  # a type pydantic cannot build a schema for
        raise ToolDefinitionError(f"the arguments cannot be a JSON schema: {error}") from None


def _description(function: Callable[..., Any], import_path: str) -> str:
    doc = inspect.getdoc(function)
    return doc.split("\n\n")[0].replace("\n", " ") if doc else f"Runs {import_path}."


def _output(value: Any) -> ToolOutput:
    if isinstance(value, str):
        return ToolOutput(text=value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        text = json.dumps(value, ensure_ascii=False)
    except TypeError:
        raise ToolError(f"the function returned a {type(value).__name__}, not JSON") from None
    return ToolOutput(text=text, structured=value)


class PythonTool(Tool):
    def __init__(self, config: PythonToolConfig) -> None:
        super().__init__(config)
        self._import_path = config.config.import_path
        self._function: Callable[..., Any] | None = None
        self._problem: str | None = None
        try:
            self._function = load_function(self._import_path)
            self.arguments = arguments_model(self._function, self.name)
            self.default_description = _description(self._function, self._import_path)
        except ToolDefinitionError as error:
            self._problem = f"{self._import_path}: {error}"

    @property
    def available(self) -> bool:
        return self._problem is None

    def spec(self) -> ToolSpec:
        if self._problem is not None:
            raise ToolError(f"tool {self.name!r} is unavailable: {self._problem}")
        return super().spec()

    async def call(self, arguments: dict[str, Any]) -> ToolOutput:
        if self._problem is not None:
            raise ToolError(f"tool {self.name!r} is unavailable: {self._problem}")
        return await super().call(arguments)

    async def run(self, args: BaseModel) -> ToolOutput:
        assert self._function is not None  # call() refuses an unavailable tool
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        try:
            if inspect.iscoroutinefunction(self._function):
                value = await self._function(**kwargs)
            else:
                value = await asyncio.to_thread(self._function, **kwargs)
        except ToolError:
            raise
        except Exception as error:  # the user's code: its own message may hold anything
            logger.warning("python tool %s raised", self.name, exc_info=error)
            raise ToolError(f"{self.name} raised {type(error).__name__}") from error
        return _output(value)

    async def health(self) -> ComponentHealth:
        if self._problem is not None:
            return ComponentHealth(status="down", detail=self._problem)
        return ComponentHealth(status="up", detail=self._import_path)
