"""``aim-ray test-endpoint``: one chat against a live endpoint, printed for a person.

Owns the command's options and the rich rendering of a ``ChatCheck`` (answer, context used,
tool calls run on the server, timings); the chat itself is ``aim_ray.cli.chat_check``,
imported when the command runs because it loads the ``openai`` client. (Not named
``test_endpoint.py``: pytest would collect a ``test_*.py`` module's ``test_endpoint``.)
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from aim_ray.cli.mcp_options import ClientTimeoutOption
from aim_ray.cli.output import console, user_errors


def test_endpoint(
    url: Annotated[str, typer.Argument(help="The endpoint, e.g. http://127.0.0.1:8000.")],
    query: Annotated[str, typer.Option(help="The user message to send.")],
    context_providers: Annotated[
        str | None, typer.Option(help="Comma-separated context providers for mcp_context.")
    ] = None,
    context_query: Annotated[
        str | None, typer.Option(help="What to look up; the query itself by default.")
    ] = None,
    tools: Annotated[
        str | None, typer.Option(help="Comma-separated tools; registry tools run server-side.")
    ] = None,
    tool_choice: Annotated[
        str | None, typer.Option(help="auto, none, required, or a tool name to force.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model id; the endpoint's first model by default.")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Env var holding the API key, if the endpoint wants one.")
    ] = "AIM_RAY_API_KEY",
    stream: Annotated[bool, typer.Option(help="Stream the answer.")] = False,
    max_tokens: Annotated[int, typer.Option(min=1)] = 128,
    timeout: ClientTimeoutOption = 120.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
) -> None:
    """Run one chat against a live endpoint; print the answer, context, tool calls, timings."""
    from aim_ray.cli.chat_check import ChatCheckRequest, run_chat_check

    with user_errors():
        request = ChatCheckRequest(
            url=url,
            query=query,
            model=model,
            api_key=os.environ.get(api_key_env),
            context_providers=_names(context_providers),
            context_query=context_query,
            tools=_names(tools),
            tool_choice=tool_choice,
            stream=stream,
            max_tokens=max_tokens,
            timeout_s=timeout,
        )
        with console.status("waiting for the endpoint", spinner="dots"):
            check = run_chat_check(request)
    if as_json:
        typer.echo(check.model_dump_json(indent=2))
        return
    _print_chat_check(check)


def _names(csv: str | None) -> list[str]:
    return [name.strip() for name in (csv or "").split(",") if name.strip()]


def _print_chat_check(check: Any) -> None:
    console.rule(f"answer ({check.model}, finish: {check.finish_reason})")
    console.print(check.answer or "(empty)", highlight=False, markup=False)
    for call in check.client_tool_calls:
        function = call["function"]
        console.print(f"client tool call: {function['name']}({function['arguments']})")
    report = check.mcp or {}
    context = report.get("context")
    if context:
        console.rule(f"context ({context['tokens']} tokens, query {context['query']!r})")
        table = Table("provider", "status", "items", "cached", "ms", "error")
        for outcome in context["providers"]:
            table.add_row(
                outcome["provider"],
                outcome["status"],
                str(outcome["items"]),
                "yes" if outcome.get("cached") else "",
                f"{outcome.get('latency_ms') or 0:.1f}",
                outcome.get("error") or "",
            )
        console.print(table, highlight=False, markup=False)
        for item in context["items"]:
            snippet = " ".join(item["content"].split())[:100]
            console.print(f"  [{item['provider']}:{item['id']}] {snippet}", markup=False)
    if report.get("tool_calls"):
        console.rule(f"server-side tool calls ({report['iterations']} model rounds)")
        table = Table("tool", "arguments", "status", "ms", Column("result", overflow="fold"))
        for call in report["tool_calls"]:
            table.add_row(
                call["name"],
                json.dumps(call["arguments"], ensure_ascii=False),
                call["status"],
                f"{call['latency_ms']:.1f}",
                call["content"][:200],
            )
        console.print(table, highlight=False, markup=False)
    console.rule("timings")
    if check.seconds_to_first_token is not None:
        console.print(f"first token: {check.seconds_to_first_token:.3f}s")
    console.print(f"total: {check.seconds_total:.3f}s")
    if check.stream_events:
        console.print(f"stream events: {', '.join(check.stream_events)}")
