"""Context providers against real services, and ContextService's merging, cache and health."""

from __future__ import annotations

import json
import os
import time

import pytest
from mcp_fixtures import (  # noqa: F401
    DOCUMENTS,
    REST_TOKEN,
    chroma_server,
    free_port,
    http_server,
    postgres,
)
from swap_race import directory_swapped_for_symlink

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_providers import ChromaSettings
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.files import PathRefusedError, read_under_roots
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.context.chroma import ChromaProvider
from aim_ray.mcp.context.service import ContextService, ResourceNotFoundError

SECRET = "pg-password-7c1d2e3f4a5b"


def service(providers: list[dict], **context) -> ContextService:
    return ContextService(MCPConfig.model_validate({"providers": providers, "context": context}))


def files_provider(root) -> dict:
    return {"name": "files", "type": "filesystem", "config": {"roots": [str(root)]}}


@pytest.fixture
def docs_dir(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for _, title, body in DOCUMENTS:
        (root / f"{title.lower()}.md").write_text(f"# {title}\n\n{body}\n")
    (root / "sub" / "notes.txt").write_text("Kitten care: feed the kitten twice a day.")
    (root / "image.md").write_bytes(b"kitten\x00\x01binary")
    (root / "ignored.py").write_text("kitten = 1")
    outside = tmp_path / "outside.md"
    outside.write_text("kitten secrets outside the root")
    (root / "escape.md").symlink_to(outside)
    return root


@pytest.fixture
def down_postgres(monkeypatch) -> dict:
    """A postgresql provider on a closed port, with a password from a secret."""
    monkeypatch.setenv("AIM_RAY_SECRET_DOWN_DB_PASSWORD", SECRET)
    return {
        "name": "down",
        "type": "postgresql",
        "timeout_s": 3,
        "config": {
            "host": "127.0.0.1",
            "port": free_port(),
            "database": "test",
            "credentials": {"secret_name": "down-db"},
            "table": "docs",
            "columns": ["body"],
        },
    }


def pg_provider(pg, **config) -> dict:
    return {"name": "db", "type": "postgresql", "config": {**pg.connection(), **config}}


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_full_text_search(postgres):  # noqa: F811
    ctx = service(
        [
            pg_provider(
                postgres, table=f"{postgres.schema}.docs", columns=["title", "body"], id_column="id"
            )
        ],
        retrieval_strategy="round_robin",
    )
    result = await ctx.retrieve(["db"], "young kitten", 3)
    assert [item.id for item in result.items] == ["1"]
    item = result.items[0]
    assert item.content.startswith("Cats\n") and "kitten" in item.content
    assert item.score > 0 and item.provider == "db"
    assert result.providers[0].status == "ok"
    await ctx.close()


@pytest.mark.postgres
async def test_postgres_parameterised_query(postgres):  # noqa: F811
    sql = (
        f"SELECT id, body AS content, title FROM {postgres.schema}.docs "
        "WHERE body ILIKE '%' || $1 || '%' ORDER BY id LIMIT $2"
    )
    ctx = service([pg_provider(postgres, query=sql)], retrieval_strategy="round_robin")
    result = await ctx.retrieve(["db"], "young", 1)
    assert [(i.id, i.metadata) for i in result.items] == [("1", {"title": "Cats"})]
    # The query text is a parameter, never SQL.
    result = await ctx.retrieve(["db"], "'; DROP TABLE docs; --", 5)
    assert result.items == [] and result.providers[0].status == "ok"
    await ctx.close()


@pytest.mark.postgres
async def test_postgres_query_without_content_column(postgres):  # noqa: F811
    ctx = service([pg_provider(postgres, query="SELECT $1::text AS body")])
    result = await ctx.retrieve(["db"], "x", 1)
    assert result.providers[0].status == "error"
    assert "must return a `content` column" in result.providers[0].error
    await ctx.close()


@pytest.mark.postgres
async def test_slow_provider_times_out_without_failing_the_request(postgres, docs_dir):  # noqa: F811
    slow = pg_provider(postgres, query="SELECT $1::text AS content FROM pg_sleep(3)")
    slow["timeout_s"] = 0.5
    ctx = service([slow, files_provider(docs_dir)], retrieval_strategy="keyword")
    result = await ctx.retrieve(None, "kitten", 5)
    states = {o.provider: o.status for o in result.providers}
    assert states == {"db": "timeout", "files": "ok"}
    assert result.items and all(i.provider == "files" for i in result.items)
    await ctx.close()


async def test_down_postgres_degrades_health_and_never_shows_the_secret(down_postgres, docs_dir):
    ctx = service([down_postgres, files_provider(docs_dir)], retrieval_strategy="keyword")
    result = await ctx.retrieve(None, "kitten", 3)
    down, files = result.providers
    # The DSN is named without its user.
    assert down.status == "error" and "cannot connect to postgresql://127.0.0.1:" in down.error
    assert files.status == "ok" and result.items
    health = (await ctx.health()).model_dump()
    assert health["status"] == "degraded"
    assert health["providers"]["down"]["status"] == "down"
    assert health["providers"]["files"]["status"] == "up"
    everything = json.dumps(health) + result.model_dump_json()
    assert SECRET not in everything
    assert "postgres@" not in everything
    await ctx.close()


async def test_missing_secret_is_named_not_guessed(docs_dir, monkeypatch):
    monkeypatch.delenv("AIM_RAY_SECRET_NOPE_PASSWORD", raising=False)
    provider = {
        "name": "db",
        "type": "postgresql",
        "config": {"database": "test", "credentials": {"secret_name": "nope"}, "query": "$1"},
    }
    ctx = service([provider])
    result = await ctx.retrieve(["db"], "q", 1)
    assert "secret 'nope' (key 'password') not found" in result.providers[0].error
    assert "AIM_RAY_SECRET_NOPE_PASSWORD" in result.providers[0].error


async def test_all_providers_down_is_unhealthy(down_postgres):
    ctx = service([down_postgres])
    assert (await ctx.health()).status == "unhealthy"


# -- Chroma ---------------------------------------------------------------------------------


async def seeded_chroma(settings: ChromaSettings) -> ChromaProvider:
    provider = ChromaProvider("vectors", settings, timeout_s=30)
    await provider.add_documents(
        [d[0] for d in DOCUMENTS], [d[2] for d in DOCUMENTS], [{"title": d[1]} for d in DOCUMENTS]
    )
    return provider


async def test_chroma_embedded_semantic_search(tmp_path):
    settings = ChromaSettings(path=str(tmp_path / "chroma"), collection="docs")
    await seeded_chroma(settings)
    ctx = service(
        [
            {
                "name": "vectors",
                "type": "chroma",
                "timeout_s": 30,
                "config": settings.model_dump(exclude_none=True),
            }
        ]
    )
    result = await ctx.retrieve(["vectors"], "small furry pets that purr", 2)
    assert result.items[0].id == "1" and result.items[0].metadata == {"title": "Cats"}
    assert 0 < result.items[0].score <= 1
    health = (await ctx.health()).model_dump()
    assert health["providers"]["vectors"]["status"] == "up"
    assert "4 documents" in health["providers"]["vectors"]["detail"]


async def test_chroma_missing_collection_is_an_error(tmp_path):
    ctx = service(
        [{"name": "v", "type": "chroma", "config": {"path": str(tmp_path), "collection": "nope"}}]
    )
    result = await ctx.retrieve(["v"], "x", 1)
    assert result.providers[0].error == "Chroma collection 'nope' does not exist"
    assert (await ctx.health()).status == "unhealthy"


async def test_chroma_server_over_http(chroma_server):  # noqa: F811
    host, port = chroma_server
    settings = ChromaSettings(host=host, port=port, collection="served")
    await seeded_chroma(settings)
    ctx = service(
        [
            {
                "name": "vectors",
                "type": "chroma",
                "timeout_s": 30,
                "config": {"host": host, "port": port, "collection": "served"},
            }
        ]
    )
    result = await ctx.retrieve(["vectors"], "GPU memory for LLMs", 1)
    assert result.items[0].id == "3"
    assert (await ctx.health()).status == "healthy"


# -- REST ---------------------------------------------------------------------------------


def rest_provider(server, **config) -> dict:
    return {
        "name": "api",
        "type": "rest",
        "config": {
            "base_url": server.url,
            "path": "/api/search",
            "results_field": "data.results",
            "auth": {"type": "bearer", "secret_name": "test-rest"},
            **config,
        },
    }


async def test_rest_provider_with_bearer_secret(http_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AIM_RAY_SECRET_TEST_REST_TOKEN", REST_TOKEN)
    ctx = service(
        [rest_provider(http_server, allow_private=True)], retrieval_strategy="round_robin"
    )
    result = await ctx.retrieve(["api"], "puppy", 5)
    assert [(i.id, i.metadata) for i in result.items] == [("4", {"source": "test-api"})]
    assert result.items[0].content.startswith("Dogs\n")


async def test_rest_provider_refuses_loopback_by_default(http_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AIM_RAY_SECRET_TEST_REST_TOKEN", REST_TOKEN)
    ctx = service([rest_provider(http_server)])
    result = await ctx.retrieve(["api"], "puppy", 5)
    assert "127.0.0.1 is not public" in result.providers[0].error
    assert REST_TOKEN not in result.model_dump_json()


async def test_rest_provider_wrong_token(http_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AIM_RAY_SECRET_TEST_REST_TOKEN", "wrong-token-abcdef")
    ctx = service([rest_provider(http_server, allow_private=True)])
    result = await ctx.retrieve(["api"], "puppy", 5)
    assert result.providers[0].error == "'api' answered HTTP 401"
    assert (await ctx.health()).providers["api"].status == "up"  # reachable, just 404


# -- files --------------------------------------------------------------------------------


async def test_filesystem_keyword_search_skips_escapes_and_binaries(docs_dir):
    ctx = service([files_provider(docs_dir)], retrieval_strategy="round_robin")
    result = await ctx.retrieve(["files"], "kitten", 10)
    # Named by the root's own name and the path inside it, never by host path.
    assert sorted(i.id for i in result.items) == ["docs/cats.md", "docs/sub/notes.txt"]
    assert result.items[0].id == "docs/sub/notes.txt"  # two mentions rank above one
    assert str(docs_dir) not in result.model_dump_json()


async def test_filesystem_skips_a_symlinked_directory(docs_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "leak.md").write_text("kitten secrets in a linked directory")
    (docs_dir / "linked").symlink_to(outside, target_is_directory=True)
    ctx = service([files_provider(docs_dir)], retrieval_strategy="round_robin")
    result = await ctx.retrieve(["files"], "secrets", 10)
    assert result.items == []


async def test_filesystem_health_names_no_host_path(tmp_path):
    ctx = service([files_provider(tmp_path / "gone")])
    health = (await ctx.health()).providers["files"]
    assert health.status == "down"
    assert health.detail == "1 of 1 root(s) not readable: gone"
    assert str(tmp_path) not in health.detail


def test_read_under_roots(docs_dir, tmp_path):
    roots = [str(docs_dir)]
    assert read_under_roots("cats.md", roots, 1000).path == "docs/cats.md"
    assert read_under_roots(str(docs_dir / "sub/notes.txt"), roots, 1000).text.startswith(
        "Kitten care"
    )
    (docs_dir / "sub" / "inner.md").symlink_to(docs_dir / "cats.md")
    for bad, message in [
        ("../outside.md", "'..' is not allowed"),
        ("sub/../../outside.md", "'..' is not allowed"),
        (str(tmp_path / "outside.md"), "outside the allowed directories"),
        ("/etc/passwd", "outside the allowed directories"),
        ("escape.md", "symlinks are not followed"),
        ("sub/inner.md", "symlinks are not followed"),  # inside, but still a symlink
        ("missing.md", "not found"),
        ("cats.md/x", "not found"),
        ("sub", "not a regular file"),
        ("", "empty or invalid path"),
    ]:
        with pytest.raises(PathRefusedError, match=message) as refused:
            read_under_roots(bad, roots, 1000)
        assert str(docs_dir) not in str(refused.value) or bad.startswith(str(docs_dir))


def test_read_under_roots_limits(docs_dir):
    roots = [str(docs_dir)]
    with pytest.raises(PathRefusedError, match="binary"):
        read_under_roots("image.md", roots, 1000)
    with pytest.raises(PathRefusedError, match="over the 10 limit"):
        read_under_roots("cats.md", roots, 10)
    (docs_dir / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(PathRefusedError, match="not UTF-8"):
        read_under_roots("latin1.txt", roots, 1000)
    os.mkfifo(docs_dir / "pipe.md")
    with pytest.raises(PathRefusedError, match="not a regular file"):
        read_under_roots("pipe.md", roots, 1000)


def test_a_directory_swapped_for_a_symlink_never_leaks(tmp_path):
    """The attack run's race: ``a`` flips between a real directory and a symlink to a
    directory outside the root while files under ``a/`` are read. Checking the path and
    then opening it by name leaked the outside file; opening beneath the root's descriptor
    never can."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "f.txt").write_text("inside")
    (outside / "f.txt").write_text("OUTSIDE-SECRET")
    outcomes: list[str] = []
    # At least 300 reads, and on until one has hit the real directory (a busy 2-core box
    # can go 300 reads without): bounded by a deadline, so a real miss still fails.
    deadline = time.monotonic() + 20
    with directory_swapped_for_symlink(root / "a", outside):
        while len(outcomes) < 300 or ("inside" not in outcomes and time.monotonic() < deadline):
            try:
                outcomes.append(read_under_roots("a/f.txt", [str(root)], 1000).text)
            except PathRefusedError as refused:
                outcomes.append(str(refused))
    assert not any("OUTSIDE-SECRET" in outcome for outcome in outcomes)
    assert "inside" in outcomes  # the directory was there between swaps


def test_a_swap_at_the_moment_of_opening_is_refused(tmp_path, monkeypatch):
    """The race made deterministic: the directory becomes a symlink to outside the root
    right when the first open is made, i.e. after any check on the path string."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "f.txt").write_text("inside")
    (outside / "f.txt").write_text("OUTSIDE-SECRET")
    real_open = os.open
    swapped: list[bool] = []

    def open_after_a_swap(*args, **kwargs):
        if not swapped:
            (root / "a").rename(root / "parked")
            (root / "a").symlink_to(outside, target_is_directory=True)
            swapped.append(True)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_a_swap)
    with pytest.raises(PathRefusedError, match="symlinks are not followed"):
        read_under_roots("a/f.txt", [str(root)], 1000)
    assert swapped


async def test_filesystem_provider_race_never_leaks(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "f.md").write_text("kitten inside")
    (outside / "f.md").write_text("kitten OUTSIDE-SECRET")
    ctx = service([files_provider(root)], cache={"enabled": False})
    with directory_swapped_for_symlink(root / "a", outside):
        results = [await ctx.retrieve(["files"], "kitten", 5) for _ in range(100)]
    assert not any("OUTSIDE-SECRET" in result.model_dump_json() for result in results)


# -- the service --------------------------------------------------------------------------


async def test_cache_hits_are_reported(docs_dir):
    ctx = service([files_provider(docs_dir)], retrieval_strategy="round_robin")
    first = await ctx.retrieve(["files"], "kitten", 3)
    second = await ctx.retrieve(["files"], "kitten", 3)
    assert (first.cache_hits, second.cache_hits) == (0, 1)
    assert second.providers[0].cached and second.items == first.items
    assert (await ctx.retrieve(["files"], "kitten", 2)).cache_hits == 0  # other limit


async def test_cache_can_be_disabled(docs_dir):
    ctx = service([files_provider(docs_dir)], cache={"enabled": False})
    await ctx.retrieve(["files"], "kitten", 3)
    assert (await ctx.retrieve(["files"], "kitten", 3)).cache_hits == 0


async def test_unknown_provider_is_reported_not_raised(docs_dir):
    ctx = service([files_provider(docs_dir)])
    result = await ctx.retrieve(["nope"], "kitten", 3)
    assert result.providers[0].model_dump(include={"status", "error"}) == {
        "status": "error",
        "error": "unknown provider",
    }


async def test_semantic_strategy_reranks_across_providers(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "money.md").write_text("Cats cost money: revenue from pet food grew.")
    (second / "pets.md").write_text("Cats are felines; a kitten is a young cat.")
    ctx = service(
        [
            {"name": "a", "type": "filesystem", "config": {"roots": [str(first)]}},
            {"name": "b", "type": "filesystem", "config": {"roots": [str(second)]}},
        ]
    )
    result = await ctx.retrieve(["a", "b"], "kitten cat felines", 5)
    assert [i.provider for i in result.items] == ["b", "a"]


async def test_token_budget_trims_items(tmp_path):
    for n in range(3):
        (tmp_path / f"{n}.txt").write_text(f"kitten {n} " + "x" * 400)
    ctx = service(
        [{"name": "f", "type": "filesystem", "config": {"roots": [str(tmp_path)]}}],
        max_length=150,
        retrieval_strategy="round_robin",
    )
    result = await ctx.retrieve(["f"], "kitten", 3)
    assert result.truncated and result.token_estimate <= 150
    assert len(result.items) == 2 and len(result.items[1].content) < 400


async def test_resources(docs_dir):
    ctx = service([files_provider(docs_dir)])
    (resource,) = await ctx.list_resources()
    assert resource.uri == "context://files"
    (template,) = await ctx.list_resource_templates()
    assert template.uri == "context://{provider}{?q,limit}"
    described = json.loads((await ctx.read_resource("context://files")).text)
    assert described["type"] == "filesystem" and described["health"]["status"] == "up"
    found = json.loads((await ctx.read_resource("context://files?q=puppy&limit=1")).text)
    assert len(found["items"]) == 1 and "puppy" in found["items"][0]["content"]
    with pytest.raises(ResourceNotFoundError):
        await ctx.read_resource("context://nope?q=x")
    with pytest.raises(ResourceNotFoundError):
        await ctx.read_resource("file:///etc/passwd")


async def test_no_providers_is_healthy():
    assert (await service([]).health()).model_dump() == {"status": "healthy", "providers": {}}


# -- error and health wording ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            AimRayError("cannot connect to postgresql://admin:pw@db:5432/app: refused"),
            "cannot connect to postgresql://db:5432/app: refused",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "/srv/data/docs/a.md"),
            "FileNotFoundError: No such file or directory",
        ),
        (ValueError("cannot read '/srv/data/docs' now"), "ValueError: cannot read '<path>' now"),
        (AimRayError("GET http://h:8/api/search failed"), "GET http://h:8/api/search failed"),
    ],
)
def test_describe_error_drops_dsn_users_and_host_paths(error, expected):
    assert describe_error(error) == expected


async def test_postgres_health_detail_names_no_user(postgres):  # noqa: F811
    ctx = service(
        [
            {
                "name": "db",
                "type": "postgresql",
                "config": {**postgres.connection(), "table": "docs", "columns": ["body"]},
            }
        ]
    )
    health = (await ctx.health()).providers["db"]
    assert health.status == "up"
    assert health.detail == f"database {postgres.database!r} at {postgres.host}:{postgres.port}"
    assert "@" not in health.detail
    await ctx.close()
