"""What every built-in tool is: the ``Tool`` base class, its ``ToolOutput`` and
``ToolError``, and the argument models whose JSON schemas the tools advertise.

Arguments are validated against the tool's model before ``run``; a refusal comes back as
an error output worded by ``aim_ray.errors.validation_problems``, never an exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aim_ray.config.mcp_tools import ToolConfig
from aim_ray.errors import AimRayError, validation_problems
from aim_ray.mcp.protocol import ComponentHealth, ToolSpec

# A health check answers within this, so one hung backend cannot stall /mcp/health.
HEALTH_TIMEOUT_S = 5.0


class ToolError(AimRayError):
    """A tool could not do what was asked; the message goes back to the model."""


class ToolOutput(BaseModel):
    text: str
    structured: Any = None
    is_error: bool = False


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalculatorArguments(_Arguments):
    expression: str = Field(
        description="Arithmetic, e.g. (17 * 23) / 4 or sqrt(2) ** 3. Operators: + - * / // % **; "
        "functions: sqrt abs round floor ceil log log10 exp sin cos tan; constants pi e.",
        pattern=r"^[0-9a-z+*/() .,%-]{1,200}$",
    )


class FileReaderArguments(_Arguments):
    path: str = Field(
        description="Path of a text file, relative to an allowed directory.",
        min_length=1,
        max_length=1024,
        pattern=r"^[^\x00]+$",
    )


class SqlQueryArguments(_Arguments):
    query: str = Field(
        description="One read-only SQL statement (SELECT, WITH, VALUES, TABLE, EXPLAIN).",
        min_length=1,
        max_length=10_000,
    )


class VectorSearchArguments(_Arguments):
    query: str = Field(description="What to search for, in words.", min_length=1, max_length=2000)
    n_results: int = Field(5, description="How many results to return.", ge=1, le=100)


class WebFetchArguments(_Arguments):
    url: str = Field(description="http(s) URL of the page.", pattern=r"^https?://\S{1,2000}$")


class WebSearchArguments(_Arguments):
    query: str = Field(description="Search query.", min_length=1, max_length=400)
    max_results: int = Field(5, description="How many results to return.", ge=1, le=50)


def _strip_titles(schema: Any) -> Any:
    # Pydantic titles every object and field; they are noise in a small model's prompt.
    if isinstance(schema, list):
        return [_strip_titles(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    stripped = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in {"properties", "$defs"}:
            stripped[key] = {name: _strip_titles(sub) for name, sub in value.items()}
        else:
            stripped[key] = _strip_titles(value)
    return stripped


def arguments_schema(model: type[BaseModel]) -> dict[str, Any]:
    return _strip_titles(model.model_json_schema())


class Tool(ABC):
    """A built-in tool: a name, an argument model (its JSON schema) and ``run``."""

    arguments: ClassVar[type[BaseModel]]
    default_description: ClassVar[str]

    def __init__(self, config: ToolConfig) -> None:
        self.config = config
        self.name = config.name
        self.timeout_s = config.timeout_s

    @property
    def available(self) -> bool:
        """Whether the tool is listed; one that is not says why in its health."""
        return True

    def spec(self) -> ToolSpec:
        schema = arguments_schema(self.arguments)
        for arg, doc in self.config.parameters.items():
            if doc.description:
                schema["properties"][arg]["description"] = doc.description
        return ToolSpec(
            name=self.name,
            description=self.config.description or self.default_description,
            input_schema=self._tighten(schema),
        )

    def _tighten(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    async def call(self, arguments: dict[str, Any]) -> ToolOutput:
        try:
            parsed = self.arguments.model_validate(arguments)
        except ValidationError as error:
            problems = "; ".join(validation_problems(error))
            return ToolOutput(text=f"invalid arguments: {problems}", is_error=True)
        return await self.run(parsed)

    @abstractmethod
    async def run(self, args: Any) -> ToolOutput: ...

    async def health(self) -> ComponentHealth:
        return ComponentHealth(status="up", detail="no backend")

    async def close(self) -> None:
        return None
