"""The chat messages the gateway passes to the engine, checked before the engine sees them.

vLLM's request schema accepts messages its chat templating or media loading then fails on
(a ``tool`` message without ``tool_call_id``, a text part without text, an ``image_url``
naming a server file or an address vLLM would fetch): the engine answers 500 with its
traceback. These models state what a message may be, so such requests are a 400 naming
the message; media must come inline (``data:`` URLs), never fetched by the server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_Part):
    type: Literal["text"]
    text: str


class MediaURL(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str

    @field_validator("url")
    @classmethod
    def _inline_only(cls, url: str) -> str:
        if not url.startswith("data:"):
            raise ValueError("media must be sent inline as a data: URL")
        return url


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: MediaURL


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: dict[str, Any]


Part = Annotated[TextPart | ImagePart | AudioPart, Field(discriminator="type")]
TextParts = list[TextPart]


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: str


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None


class SystemMessage(_Message):
    role: Literal["system", "developer"]
    content: str | TextParts


class UserMessage(_Message):
    role: Literal["user"]
    content: str | list[Part]


class AssistantMessage(_Message):
    role: Literal["assistant"]
    content: str | TextParts | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Message):
    role: Literal["tool"]
    tool_call_id: str = Field(min_length=1)
    content: str | TextParts


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
_MESSAGES = TypeAdapter(list[Message])


def message_problems(messages: Any) -> str | None:
    """What is wrong with a request's ``messages``, in one line; None when nothing is."""
    try:
        _MESSAGES.validate_python(messages)
    except ValidationError as exc:
        return "; ".join(_one_problem_per_message(exc))
    return None


def _one_problem_per_message(exc: ValidationError) -> list[str]:
    # The content unions report a failure per branch; the deepest one is the real one.
    deepest: dict[Any, dict[str, Any]] = {}
    for error in exc.errors():
        index = error["loc"][0] if error["loc"] else None
        if index not in deepest or len(error["loc"]) > len(deepest[index]["loc"]):
            deepest[index] = error
    problems = []
    for index, error in deepest.items():
        fields = [p for p in error["loc"][1:] if isinstance(p, int) or _is_field(p)]
        # loc[1] is the role tag the union chose; a part's tag repeats its field's name.
        parts = ["messages", index, *fields[1:]]
        parts = [p for i, p in enumerate(parts) if p is not None and (i == 0 or p != parts[i - 1])]
        place = ".".join(str(p) for p in parts)
        message = error["msg"].removeprefix("Value error, ")
        last = error["loc"][-1] if error["loc"] else None
        if isinstance(last, str) and not _is_field(last):
            message = "must be a string or a list of content parts"
        problems.append(f"{place}: {message}")
    return problems


def _is_field(part: Any) -> bool:
    return isinstance(part, str) and "[" not in part and part != "str"
