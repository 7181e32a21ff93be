"""The prompts of the ``mcp:`` section: named templates served as MCP prompts.

Shape::

    prompts:
      - name: summarize_doc
        description: Summarize one document for a reader
        arguments:
          - {name: path, description: A file under the docs}
          - {name: audience, required: false}
        template: "Summarize {path} for {audience}."     # one user message, or:
        # messages: [{role: user, content: "..."}, {role: assistant, content: "..."}]

Placeholders are ``{argument}`` (``{{`` and ``}}`` for literal braces); each must be a
declared argument, with no attribute, index or format spec, so a client's value is only
ever pasted in. A missing optional argument is an empty string.
"""

from __future__ import annotations

from string import Formatter
from typing import Literal

from pydantic import Field, model_validator

from aim_ray.config.mcp_base import MCPModel
from aim_ray.config.mcp_providers import IDENTIFIER_PATTERN, NAME_PATTERN
from aim_ray.errors import AimRayError


class PromptArgumentsError(AimRayError):
    """The arguments a client sent do not fit the prompt; the message says which."""


class PromptArgument(MCPModel):
    name: str = Field(pattern=IDENTIFIER_PATTERN)
    description: str | None = None
    required: bool = True


class PromptMessage(MCPModel):
    role: Literal["user", "assistant"] = "user"
    content: str = Field(min_length=1, max_length=100_000)


class PromptConfig(MCPModel):
    name: str = Field(pattern=NAME_PATTERN)
    title: str | None = None
    description: str | None = None
    arguments: list[PromptArgument] = Field(default_factory=list)
    template: str | None = Field(None, min_length=1, max_length=100_000)
    messages: list[PromptMessage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_body_with_known_placeholders(self) -> PromptConfig:
        if (self.template is None) == (not self.messages):
            raise ValueError("set `template` (one user message) or `messages`, not both")
        if self.template is not None:
            self.messages = [PromptMessage(content=self.template)]
            self.template = None
        names = [argument.name for argument in self.arguments]
        if len(set(names)) != len(names):
            raise ValueError("argument names must be unique")
        for index, message in enumerate(self.messages):
            for field in _placeholders(message.content, index):
                if field not in names:
                    raise ValueError(
                        f"messages[{index}] uses {{{field}}}, which is not a declared argument"
                    )
        return self

    def render(self, values: dict[str, str]) -> list[PromptMessage]:
        """The messages with the client's ``values`` filled in."""
        declared = {argument.name: argument for argument in self.arguments}
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise PromptArgumentsError(f"unknown argument(s) {', '.join(unknown)}")
        missing = [n for n, a in declared.items() if a.required and not values.get(n)]
        if missing:
            raise PromptArgumentsError(f"missing required argument(s) {', '.join(missing)}")
        filled = {name: str(values.get(name, "")) for name in declared}
        return [
            PromptMessage(role=m.role, content=m.content.format_map(filled)) for m in self.messages
        ]


def _placeholders(content: str, index: int) -> list[str]:
    try:
        parsed = list(Formatter().parse(content))
    except ValueError as error:  # a lone brace
        raise ValueError(f"messages[{index}]: {error}; write {{{{ and }}}} for braces") from None
    fields = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(
                f"messages[{index}]: placeholder {{{field}}} must be a plain argument name"
            )
        fields.append(field)
    return fields
