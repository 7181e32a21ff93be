"""MCP tools: the built-in tools, remote MCP servers, and ``ToolService``.

``ToolService`` is the plain async class the Serve ``Tools`` deployment wraps. Every call
comes back as a ``ToolResult`` (``ok``/``error``/``rate_limited``/``timeout``): arguments
are validated against the tool's schema, the tool runs under its ``timeout_s``, and errors
become a short message with known secret values redacted, never an exception or a trace.

Rate limits are a sliding window of ``requests`` per ``window`` seconds, kept in memory
**per ToolService replica**: with N replicas the cluster admits up to N x ``requests`` per
window. Calls with malformed arguments still count, so a model looping on a bad call is
throttled too. A ``remote_mcp`` entry has one limit shared by all of its tools.

Remote MCP servers (``remote_mcp``) are reached with the MCP SDK's client over Streamable
HTTP; their tools are listed and called as ``<prefix>__<tool>``. One session per server is
held open by a background task (so calls reuse it) and reopened after a failure.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import operator
import re
import time
from abc import ABC, abstractmethod
from collections import deque
from html.parser import HTMLParser
from typing import Any, ClassVar

import asyncpg
import httpx
import httpx2
import mcp_types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import (
    REMOTE_SEPARATOR,
    CalculatorToolConfig,
    FileReaderToolConfig,
    RemoteMCPToolConfig,
    SqlQueryToolConfig,
    ToolConfig,
    VectorSearchToolConfig,
    WebFetchToolConfig,
    WebSearchToolConfig,
)
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.netguard import (
    URLPolicy,
    check_address,
    check_url,
    fetch,
    guarded_client,
    system_resolver,
)
from aim_ray.mcp.backends.secrets import redact, resolve_secret
from aim_ray.mcp.context import (
    ChromaProvider,
    PathRefusedError,
    PostgresPool,
    auth_headers,
    describe_error,
    jsonable,
    pg_errors,
    read_text_file,
    resolve_under_roots,
    url_policy,
)
from aim_ray.mcp.protocol import ToolResult, ToolSpec, elapsed_ms
from aim_ray.metrics import record_tool_call

logger = logging.getLogger(__name__)

_HEALTH_TIMEOUT_S = 5.0
_REMOTE_LIST_PAGES = 20
_RETRY_AFTER_FAILURE_S = 5.0


class ToolError(AimRayError):
    """A tool could not do what was asked; the message goes back to the model."""


class ToolOutput(BaseModel):
    text: str
    structured: Any = None
    is_error: bool = False


class SlidingWindowLimiter:
    """At most ``requests`` acquisitions in any ``window_s`` seconds (this process only)."""

    def __init__(self, requests: int, window_s: float) -> None:
        self._requests = requests
        self._window_s = window_s
        self._times: deque[float] = deque()

    def try_acquire(self) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        now = time.monotonic()
        while self._times and self._times[0] <= now - self._window_s:
            self._times.popleft()
        if len(self._times) >= self._requests:
            return self._times[0] + self._window_s - now
        self._times.append(now)
        return None


# -- argument schemas ---------------------------------------------------------------------


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
        description="One read-only SQL statement (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN).",
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


def _validation_message(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        problems.append(f"{where}: {item['msg']}")
    return "invalid arguments: " + "; ".join(problems)


# -- local tools --------------------------------------------------------------------------


class Tool(ABC):
    """A built-in tool: a name, an argument model (its JSON schema) and ``run``."""

    arguments: ClassVar[type[_Arguments]]
    default_description: ClassVar[str]

    def __init__(self, config: ToolConfig) -> None:
        self.config = config
        self.name = config.name
        self.timeout_s = config.timeout_s

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
            return ToolOutput(text=_validation_message(error), is_error=True)
        return await self.run(parsed)

    @abstractmethod
    async def run(self, args: Any) -> ToolOutput: ...

    async def health(self) -> dict[str, Any]:
        return {"status": "up", "detail": "no backend"}

    async def close(self) -> None:
        return None


_BINARY_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_MAGNITUDE = 1e308


class Calculator:
    """Evaluates arithmetic by walking the ``ast``: numbers, + - * / // % **, unary +/-,
    a few math functions and constants. Anything else is refused; nothing is ``eval``-ed."""

    def __init__(self, max_exponent: int) -> None:
        self._max_exponent = max_exponent

    def evaluate(self, expression: str) -> int | float:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError:
            raise ToolError("not a valid arithmetic expression") from None
        try:
            return self._checked(self._eval(tree.body))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("result too large") from None
        except ValueError as error:
            raise ToolError(f"math error: {error}") from None

    def _checked(self, value: int | float) -> int | float:
        if isinstance(value, float) and math.isnan(value):
            raise ToolError("result is not a number")
        if abs(value) > _MAX_MAGNITUDE:
            raise ToolError("result too large")
        return value

    def _eval(self, node: ast.AST) -> int | float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](self._eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Pow):
                self._check_power(left, right)
            return self._checked(_BINARY_OPS[type(node.op)](left, right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and 1 <= len(node.args) <= 2
        ):
            args = [self._eval(arg) for arg in node.args]
            if len(args) == 2 and node.func.id != "round":
                raise ToolError(f"{node.func.id}() takes one argument")
            return self._checked(_FUNCTIONS[node.func.id](*args))
        raise ToolError("only numbers, arithmetic operators and math functions are allowed")

    def _check_power(self, base: int | float, exponent: int | float) -> None:
        if abs(exponent) > self._max_exponent:
            raise ToolError(f"exponent larger than {self._max_exponent}")
        if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 308:
            raise ToolError("result too large")


def _format_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else format(value, ".15g")


class CalculatorTool(Tool):
    arguments = CalculatorArguments
    default_description = "Evaluate an arithmetic expression exactly; use it for any math."

    def __init__(self, config: CalculatorToolConfig) -> None:
        super().__init__(config)
        self._calculator = Calculator(config.config.max_exponent)

    async def run(self, args: CalculatorArguments) -> ToolOutput:
        value = self._calculator.evaluate(args.expression)
        return ToolOutput(text=_format_number(value), structured={"result": value})


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

    async def health(self) -> dict[str, Any]:
        return {"status": "up", "detail": f"{len(self._settings.allowed_paths)} allowed path(s)"}


_READ_ONLY_START = re.compile(r"^\(*\s*(select|with|values|table|show|explain)\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


class SqlQueryTool(Tool):
    """One statement in a READ ONLY transaction with ``SET LOCAL statement_timeout``.

    PostgreSQL itself refuses writes in the read-only transaction, and the statement is
    prepared (extended protocol), which cannot hold several statements. The keyword check
    on the first word only gives a clearer message early. Rows are fetched through a
    cursor, so no more than ``max_rows + 1`` ever leave the server.
    """

    arguments = SqlQueryArguments
    default_description = "Run one read-only SQL query on PostgreSQL and return the rows as JSON."

    def __init__(self, config: SqlQueryToolConfig, mcp: MCPConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        connection = self._settings.connection or mcp.provider(self._settings.provider).config
        self._pool = PostgresPool(connection)

    async def run(self, args: SqlQueryArguments) -> ToolOutput:
        sql = _LEADING_COMMENTS.sub("", args.query, count=1)
        if not _READ_ONLY_START.match(sql):
            raise ToolError(
                "only read-only queries are allowed (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN)"
            )
        limit = self._settings.max_rows
        async with self._pool.connection() as conn:
            try:
                async with conn.transaction(readonly=True):
                    await conn.execute(
                        "SELECT set_config('statement_timeout', $1, true)",
                        str(self._settings.statement_timeout_ms),
                    )
                    statement = await conn.prepare(sql)
                    cursor = await statement.cursor()
                    rows = await cursor.fetch(limit + 1)
                    columns = [attribute.name for attribute in statement.get_attributes()]
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                raise ToolError(describe_error(error)) from None
        truncated = len(rows) > limit
        body = {
            "columns": columns,
            "rows": [jsonable(list(row.values())) for row in rows[:limit]],
            "row_count": min(len(rows), limit),
            "truncated": truncated,
        }
        return ToolOutput(text=json.dumps(body), structured=body)

    async def health(self) -> dict[str, Any]:
        async with self._pool.connection() as conn, pg_errors("health query failed"):
            await conn.fetchval("SELECT 1", timeout=_HEALTH_TIMEOUT_S)
        return {"status": "up", "detail": self._pool.where}

    async def close(self) -> None:
        await self._pool.close()


class VectorSearchTool(Tool):
    arguments = VectorSearchArguments
    default_description = (
        "Semantic search over a document collection; returns the closest passages."
    )

    def __init__(self, config: VectorSearchToolConfig, mcp: MCPConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        chroma = self._settings.chroma or mcp.provider(self._settings.provider).config
        # The tool's own n_results is the cap, whatever the provider's default.
        chroma = chroma.model_copy(update={"n_results": self._settings.n_results})
        self._provider = ChromaProvider(self.name, chroma, config.timeout_s)

    def _tighten(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema["properties"]["n_results"]["maximum"] = self._settings.n_results
        schema["properties"]["n_results"]["default"] = min(5, self._settings.n_results)
        return schema

    async def run(self, args: VectorSearchArguments) -> ToolOutput:
        items = await self._provider.retrieve(
            args.query, min(args.n_results, self._settings.n_results)
        )
        results = [
            {"id": i.id, "score": i.score, "content": i.content, "metadata": i.metadata}
            for i in items
        ]
        text = "\n\n".join(f"[{r['id']}] (score {r['score']})\n{r['content']}" for r in results)
        return ToolOutput(text=text or "no results", structured={"results": results})

    async def health(self) -> dict[str, Any]:
        health = await self._provider.health()
        return {"status": health.status, "detail": health.detail}


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, readable text) of an HTML page: scripts and styles dropped, blocks on lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (
        re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in "".join(parser.parts).split("\n")
    )
    return parser.title.strip(), "\n".join(line for line in lines if line)


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


class _HttpTool(Tool):
    """A tool making guarded outbound requests through one lazily built client."""

    def __init__(self, config: WebFetchToolConfig | WebSearchToolConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        self.policy: URLPolicy = url_policy(self._settings)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = guarded_client(self.policy, self.timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class WebFetchTool(_HttpTool):
    arguments = WebFetchArguments
    default_description = "Fetch a web page and return its readable text."

    async def run(self, args: WebFetchArguments) -> ToolOutput:
        try:
            response = await fetch(self._http(), args.url, self.policy, truncate=True)
        except httpx.HTTPError as error:
            raise ToolError(f"fetch failed: {describe_error(error)}") from None
        if response.status_code >= 400:
            raise ToolError(f"HTTP {response.status_code} from {response.url}")
        content_type = response.content_type
        if not content_type.startswith(_TEXT_TYPES):
            raise ToolError(f"unsupported content type {content_type or 'unknown'!r} (not text)")
        title, text = "", response.text()
        if "html" in content_type:
            title, text = html_to_text(text)
        cut = len(text) > self._settings.max_chars or response.truncated
        text = text[: self._settings.max_chars]
        if cut:
            text += "\n[truncated]"
        meta = {
            "url": response.url,
            "status": response.status_code,
            "title": title,
            "truncated": cut,
        }
        return ToolOutput(text=f"{title}\n\n{text}" if title else text, structured=meta)


class WebSearchTool(_HttpTool):
    arguments = WebSearchArguments
    default_description = "Search the web; returns titles, URLs and snippets of the top results."

    def _tighten(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema["properties"]["max_results"]["maximum"] = self._settings.max_results
        schema["properties"]["max_results"]["default"] = self._settings.max_results
        return schema

    async def run(self, args: WebSearchArguments) -> ToolOutput:
        s = self._settings
        params = {"q": args.query, "format": "json"}
        params |= {
            k: v for k, v in {"categories": s.categories, "language": s.language}.items() if v
        }
        headers = auth_headers(s.auth)
        try:
            response = await fetch(
                self._http(),
                s.endpoint.rstrip("/") + "/search",
                self.policy,
                params=params,
                headers=headers,
                sensitive_headers=[*headers, "authorization"],
            )
        except httpx.HTTPError as error:
            raise ToolError(f"search failed: {describe_error(error)}") from None
        if response.status_code >= 400:
            raise ToolError(f"search endpoint answered HTTP {response.status_code}")
        try:
            results = json.loads(response.body).get("results")
        except (ValueError, AttributeError):
            results = None
        if not isinstance(results, list):
            raise ToolError("search endpoint did not answer SearxNG JSON (no results list)")
        top = [
            {"title": r.get("title", ""), "url": r.get("url", ""), "content": r.get("content", "")}
            for r in results[: min(args.max_results, s.max_results)]
            if isinstance(r, dict)
        ]
        text = "\n".join(
            f"{n}. {r['title']}\n   {r['url']}\n   {r['content']}" for n, r in enumerate(top, 1)
        )
        return ToolOutput(text=text or "no results", structured={"results": top})


# -- remote MCP servers -------------------------------------------------------------------


def _root_cause(error: BaseException) -> BaseException:
    # The SDK runs inside anyio task groups, which wrap failures in ExceptionGroups.
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class RemoteMCPServer:
    """A session with one remote MCP server, owned by a background task.

    The SDK client is an async context manager whose task group must be entered and left by
    the same task, while calls come from many request tasks; so one task holds the session
    open until ``close`` (or a failure), and calls use it from their own tasks.
    """

    def __init__(self, config: RemoteMCPToolConfig) -> None:
        self.config = config
        self.name = config.name
        self.prefix = config.prefix
        self._settings = config.config
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tools: list[mcp_types.Tool] = []
        self._tools_expire = 0.0
        self._down_until = 0.0
        self._failure = ""
        self.last_error: str | None = None

    async def _check_url(self) -> None:
        policy = URLPolicy(
            allow_private=self._settings.allow_private,
            allow_networks=tuple(self._settings.allow_networks),
        )
        url = check_url(self._settings.url, policy)
        try:
            addresses = await system_resolver(url.host, url.port or 0)
        except OSError as error:
            raise ToolError(f"cannot resolve {url.host!r}: {error}") from None
        for address in addresses:
            check_address(address, policy)

    def _headers(self) -> dict[str, str]:
        headers = dict(self._settings.headers)
        for header, ref in self._settings.secret_headers.items():
            headers[header] = (
                ref.prefix + resolve_secret(ref.secret_name, ref.key).get_secret_value()
            )
        return headers

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        timeout = httpx2.Timeout(self._settings.connect_timeout_s, read=300.0)
        try:
            async with (
                httpx2.AsyncClient(headers=self._headers(), timeout=timeout) as http,
                Client(streamable_http_client(self._settings.url, http_client=http)) as client,
            ):
                ready.set_result(client)
                await self._stop.wait()
        except Exception as error:  # reported to the waiting caller, or on the next call
            if not ready.done():
                ready.set_exception(error)
            else:
                self.last_error = describe_error(_root_cause(error))

    async def _session(self) -> Client:
        async with self._lock:
            if self._client is not None and self._task is not None and not self._task.done():
                return self._client
            await self._shutdown(graceful=False)
            await self._check_url()
            self._stop = asyncio.Event()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(ready), name=f"mcp-remote-{self.name}")
            try:
                async with asyncio.timeout(self._settings.connect_timeout_s):
                    self._client = await ready
            except Exception as error:  # any connect failure becomes a tool error
                await self._shutdown(graceful=False)
                self.last_error = describe_error(_root_cause(error))
                raise ToolError(
                    f"cannot connect to remote MCP server {self.name!r}: {self.last_error}"
                ) from None
            self.last_error = None
            return self._client

    async def _shutdown(self, graceful: bool) -> None:
        """End the owner task: let it leave the session cleanly, or cancel it."""
        task, self._task, self._client = self._task, None, None
        if task is None:
            return
        self._stop.set()
        if not graceful:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    async def _guard(self, what: str, coro_fn: Any) -> Any:
        client = await self._session()
        try:
            return await coro_fn(client)
        except MCPError as error:
            if error.code != mcp_types.CONNECTION_CLOSED:
                raise ToolError(f"{what}: {describe_error(error)}") from None
            await self._reset(client, error)
            raise ToolError(f"{what}: {self.last_error}") from None
        except Exception as error:  # the transport broke: reconnect on the next call
            await self._reset(client, error)
            raise ToolError(f"{what}: {self.last_error}") from None

    async def _reset(self, client: Client, error: BaseException) -> None:
        self.last_error = describe_error(_root_cause(error))
        async with self._lock:
            # Another call may already have replaced the broken session.
            if self._client is client:
                await self._shutdown(graceful=False)

    async def tools(self) -> list[mcp_types.Tool]:
        """The remote tool list, cached for ``list_ttl_s``. After a failure the server is
        not retried for a few seconds, so a dead server cannot slow every listing down."""
        now = time.monotonic()
        if now < self._tools_expire:
            return self._tools
        if now < self._down_until:
            raise ToolError(self._failure)

        async def list_all(client: Client) -> list[mcp_types.Tool]:
            tools, cursor = [], None
            for _ in range(_REMOTE_LIST_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        try:
            tools = await self._guard(f"listing tools of {self.name!r} failed", list_all)
        except ToolError as error:
            self._failure = str(error)
            self._down_until = time.monotonic() + min(
                _RETRY_AFTER_FAILURE_S, self._settings.list_ttl_s
            )
            raise
        include = self._settings.include
        self._tools = [t for t in tools if include is None or t.name in include]
        self._tools_expire = time.monotonic() + self._settings.list_ttl_s
        return self._tools

    async def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name=f"{self.prefix}{REMOTE_SEPARATOR}{tool.name}",
                description=tool.description or tool.title or tool.name,
                input_schema=tool.input_schema,
                source=f"remote_mcp:{self.name}",
            )
            for tool in await self.tools()
        ]

    async def call(self, tool_name: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        if tool_name not in {tool.name for tool in await self.tools()}:
            raise ToolError(f"unknown tool {self.prefix}{REMOTE_SEPARATOR}{tool_name}")

        async def call_tool(client: Client) -> mcp_types.CallToolResult:
            return await client.call_tool(tool_name, arguments, read_timeout_seconds=timeout_s)

        result = await self._guard(f"remote call to {self.name!r} failed", call_tool)
        text = "\n".join(
            block.text if isinstance(block, mcp_types.TextContent) else f"[{block.type} content]"
            for block in result.content
        )
        return ToolOutput(text=text, structured=result.structured_content, is_error=result.is_error)

    async def health(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT_S):
                tools = await self.tools()
        except (ToolError, TimeoutError) as error:
            return {"status": "down", "detail": redact(str(error) or "timed out"), "tools": 0}
        return {"status": "up", "detail": f"{len(tools)} tools", "tools": len(tools)}

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown(graceful=True)


# -- the service --------------------------------------------------------------------------


def build_tool(config: ToolConfig, mcp: MCPConfig) -> Tool:
    if isinstance(config, CalculatorToolConfig):
        return CalculatorTool(config)
    if isinstance(config, FileReaderToolConfig):
        return FileReaderTool(config)
    if isinstance(config, SqlQueryToolConfig):
        return SqlQueryTool(config, mcp)
    if isinstance(config, VectorSearchToolConfig):
        return VectorSearchTool(config, mcp)
    if isinstance(config, WebFetchToolConfig):
        return WebFetchTool(config)
    if isinstance(config, WebSearchToolConfig):
        return WebSearchTool(config)
    raise TypeError(f"no local tool for {type(config).__name__}")


class ToolService:
    """Tool registry and execution; the Serve ``Tools`` deployment."""

    def __init__(self, config: MCPConfig) -> None:
        self._config = config
        enabled = [t for t in config.tools if t.enabled]
        self._remotes = {
            t.prefix: RemoteMCPServer(t) for t in enabled if isinstance(t, RemoteMCPToolConfig)
        }
        self._tools = {
            t.name: build_tool(t, config) for t in enabled if not isinstance(t, RemoteMCPToolConfig)
        }
        self._limiters = {
            t.name: SlidingWindowLimiter(t.rate_limit.requests, t.rate_limit.window)
            for t in enabled
            if t.rate_limit is not None
        }

    async def list_tools(self) -> list[ToolSpec]:
        """Local tools, then each reachable remote server's tools (an unreachable server's
        tools are left out; ``health`` says why)."""
        specs = [tool.spec() for tool in self._tools.values()]
        for remote in self._remotes.values():
            try:
                specs += await remote.specs()
            except ToolError as error:
                logger.warning("remote MCP server %s left out: %s", remote.name, error)
        return specs

    def _route(self, name: str) -> tuple[str, float, Any]:
        if name in self._tools:
            tool = self._tools[name]
            return tool.name, tool.timeout_s, tool.call
        prefix, separator, remote_name = name.partition(REMOTE_SEPARATOR)
        remote = self._remotes.get(prefix) if separator else None
        if remote is None or not remote_name:
            raise ToolError(f"unknown tool {name!r}")
        timeout_s = remote.config.timeout_s

        async def call(arguments: dict[str, Any]) -> ToolOutput:
            return await remote.call(remote_name, arguments, timeout_s)

        return remote.name, timeout_s, call

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Run a tool; every outcome, including failures, is a ``ToolResult``."""
        start = time.perf_counter()
        # Unknown names share one metrics label, so callers cannot grow the label set.
        label = "unknown"

        def result(status: str, text: str, structured: Any = None) -> ToolResult:
            record_tool_call(label, status, time.perf_counter() - start)
            return ToolResult(
                tool=name,
                status=status,
                content=redact(text),
                is_error=status != "ok",
                latency_ms=elapsed_ms(start),
                structured=structured,
            )

        try:
            config_name, timeout_s, run = self._route(name)
        except ToolError as error:
            return result("error", str(error))
        label = name
        limiter = self._limiters.get(config_name)
        if limiter is not None and (retry_after := limiter.try_acquire()) is not None:
            return result("rate_limited", f"rate limit exceeded; retry in {retry_after:.1f}s")
        if not isinstance(arguments, dict | None):
            return result("error", "arguments must be a JSON object")
        try:
            async with asyncio.timeout(timeout_s):
                output = await run(arguments or {})
        except TimeoutError:
            return result("timeout", f"{name} did not finish within {timeout_s:g}s")
        except AimRayError as error:
            return result("error", str(error))
        except Exception as error:  # a bug or an unexpected library error: report, don't raise
            logger.warning("tool %s failed unexpectedly: %s", name, describe_error(error))
            return result("error", f"{name} failed: {describe_error(error)}")
        return result("error" if output.is_error else "ok", output.text, output.structured)

    async def _health_of(self, check: Any) -> dict[str, Any]:
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT_S):
                return await check()
        except TimeoutError:
            return {"status": "down", "detail": "timed out"}
        except Exception as error:  # health reports any failure as "down", with its reason
            return {"status": "down", "detail": describe_error(error)}

    async def health(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "tools": {...}, "remote_servers": {...}}``."""
        tool_names = list(self._tools)
        remote_names = list(self._remotes)
        checks = await asyncio.gather(
            *(self._health_of(self._tools[n].health) for n in tool_names),
            *(self._health_of(self._remotes[p].health) for p in remote_names),
        )
        tools = dict(zip(tool_names, checks[: len(tool_names)], strict=True))
        remotes = {
            self._remotes[p].name: state
            for p, state in zip(remote_names, checks[len(tool_names) :], strict=True)
        }
        down = sum(state["status"] == "down" for state in checks)
        status = "healthy" if down == 0 else "unhealthy" if down == len(checks) else "degraded"
        return {"status": status, "tools": tools, "remote_servers": remotes}

    async def close(self) -> None:
        for tool in self._tools.values():
            await tool.close()
        for remote in self._remotes.values():
            await remote.close()
