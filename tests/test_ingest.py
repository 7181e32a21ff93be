"""``aim-ray mcp ingest`` and ``providers``: files read as text, chunked with overlap under
stable ids, and upserted into a real Chroma store and a real PostgreSQL table, where the
providers' own searches find them; running it twice changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp_fixtures import postgres  # noqa: F401
from typer.testing import CliRunner

from aim_ray.cli.main import app
from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.context.chroma import ChromaProvider
from aim_ray.mcp.context.postgres import PostgresProvider
from aim_ray.mcp.ingest.chunks import chunk_document, split_text
from aim_ray.mcp.ingest.documents import DocumentError, find_files, read_document
from aim_ray.mcp.ingest.run import ingest, ingest_on_start
from aim_ray.mcp.ingest.stores import IngestTargetError

runner = CliRunner(env={"COLUMNS": "200"})
PROSE = " ".join(f"Sentence number {n} talks about topic {n % 7}." for n in range(200))


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text``, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "intro.md").write_text("# Getting started\n\n" + PROSE)
    (root / "notes.txt").write_text("The zebrafish regrows its fins within weeks.\n")
    (root / "page.html").write_text(
        "<html><head><title>Page</title><script>var x = 1;</script></head>"
        "<body><p>Axolotls regrow whole limbs.</p></body></html>"
    )
    (root / "paper.pdf").write_bytes(minimal_pdf("Planarians regrow from small fragments"))
    (root / ".hidden.md").write_text("never read")
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00")
    return root


# -- chunks -----------------------------------------------------------------------------


def test_chunks_respect_the_size_and_overlap() -> None:
    pieces = split_text(PROSE, 500, 100)
    assert len(pieces) > 5
    assert all(len(piece) <= 500 for piece in pieces)
    for before, after in zip(pieces, pieces[1:], strict=False):
        shared = after[:40]
        assert shared in before, "consecutive chunks overlap"
        assert after[0] != " " and before.endswith("."), "cut at sentence ends, start at a word"
    joined = " ".join(pieces)
    assert all(f"Sentence number {n} " in joined for n in range(200)), "nothing is lost"


def test_chunk_ids_are_stable_and_name_the_source() -> None:
    first = chunk_document("docs/a.md", "A", PROSE, 400, 50)
    again = chunk_document("docs/a.md", "A", PROSE, 400, 50)
    assert [c.id for c in first] == [c.id for c in again]
    assert first[2].id == "docs/a.md#2"
    assert first[2].metadata() == {"source": "docs/a.md", "chunk": 2, "title": "A"}


def test_no_overlap_and_short_text() -> None:
    assert split_text("Short.", 100, 0) == ["Short."]
    assert split_text("\n\n  \n", 100, 10) == []
    pieces = split_text("word " * 100, 100, 0)
    assert "".join(p + " " for p in pieces).split() == ["word"] * 100


# -- documents --------------------------------------------------------------------------


def test_files_are_found_and_named_without_host_paths(corpus: Path) -> None:
    files = find_files([corpus, corpus / "notes.txt"])
    sources = [f.source for f in files]
    assert sources == [
        "corpus/notes.txt",
        "corpus/page.html",
        "corpus/paper.pdf",
        "corpus/guide/intro.md",
        "notes.txt",
    ]
    assert not any(str(corpus.parent) in source for source in sources)


def test_a_symlink_in_a_folder_is_not_followed(corpus: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the corpus")
    os.symlink(outside, corpus / "link.txt")
    assert "corpus/link.txt" not in [f.source for f in find_files([corpus])]


def test_each_format_is_read_as_text(corpus: Path) -> None:
    documents = {f.source: read_document(f) for f in find_files([corpus])}
    assert documents["corpus/guide/intro.md"].title == "Getting started"
    page = documents["corpus/page.html"]
    assert (page.title, page.text) == ("Page", "Axolotls regrow whole limbs.")
    pdf = documents["corpus/paper.pdf"]
    assert "Planarians regrow from small fragments" in pdf.text and pdf.title == "paper"
    assert documents["corpus/notes.txt"].title == "notes"


def test_unreadable_inputs_are_clear_errors(corpus: Path) -> None:
    with pytest.raises(DocumentError, match="no such file or directory"):
        find_files([corpus / "missing"])
    (binary,) = find_files([corpus / "image.png"])
    with pytest.raises(DocumentError, match="image.png: binary file"):
        read_document(binary)
    (broken,) = find_files([_write(corpus / "broken.pdf", b"%PDF-1.4 not really")])
    with pytest.raises(DocumentError, match="broken.pdf: not a readable PDF"):
        read_document(broken)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- stores -----------------------------------------------------------------------------


def chroma_entry(path: Path, **ingest) -> dict:
    config = {"path": str(path), "collection": "ingested", "ingest": {"chunk_chars": 300, **ingest}}
    return {"name": "vectors", "type": "chroma", "timeout_s": 60, "config": config}


def pg_entry(pg, table: str) -> dict:
    config = {**pg.connection(), "table": table, "columns": ["title", "body"], "id_column": "id"}
    return {"name": "pgdocs", "type": "postgresql", "config": {**config, "ingest": {}}}


def provider(entry: dict):
    return MCPConfig.model_validate({"providers": [entry]}).providers[0]


async def test_chroma_ingest_twice_and_after_a_file_shrinks(corpus: Path, tmp_path: Path) -> None:
    entry = provider(chroma_entry(tmp_path / "chroma"))
    first = await ingest(entry, [corpus])
    assert (first.files, first.failed, first.documents_before) == (4, [], 0)
    assert first.documents_after == first.chunks > 4
    again = await ingest(entry, [corpus])
    assert (again.documents_before, again.documents_after) == (first.chunks, first.chunks)

    (corpus / "guide" / "intro.md").write_text("# Getting started\n\nNow one short line.")
    shrunk = await ingest(entry, [corpus])
    assert shrunk.removed == first.chunks - 4  # every intro chunk past the first
    assert shrunk.documents_after == 4

    search = ChromaProvider("vectors", entry.config, 60)
    items = await search.retrieve("Which animal regrows whole limbs?", 1)
    assert items[0].id == "corpus/page.html#0"
    assert items[0].metadata == {"source": "corpus/page.html", "chunk": 0, "title": "Page"}


async def test_a_file_that_cannot_be_read_is_skipped_and_reported(corpus, tmp_path) -> None:
    entry = provider(chroma_entry(tmp_path / "chroma"))
    report = await ingest(entry, [corpus, corpus / "image.png"])
    assert report.files == 4 and len(report.failed) == 1
    assert "image.png: binary file" in report.failed[0]


READ_IN_ANOTHER_PROCESS = """
import asyncio, sys
from aim_ray.config.mcp_providers import ChromaSettings
from aim_ray.mcp.context.chroma import ChromaProvider
settings = ChromaSettings(path=sys.argv[1], collection="ingested")
items = asyncio.run(ChromaProvider("other", settings, 60).retrieve("regrow limbs", 1))
print(items[0].id)
"""


async def test_ingest_on_start_fills_only_an_empty_store_for_every_process(
    corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "chroma"
    entry = provider(chroma_entry(folder, on_start=[str(corpus)]))
    assert await ingest_on_start(entry) is True
    assert await ingest_on_start(entry) is False  # filled: nothing to do
    # What the replicas do next: read it, here and in another process (the tool
    # deployment), neither of which wrote it. A reader in a process that opens the
    # collection while its writer still runs found no index on disk.
    here = await ChromaProvider("here", entry.config, 60).retrieve("regrow limbs", 1)
    other = subprocess.run(
        [sys.executable, "-c", READ_IN_ANOTHER_PROCESS, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert here[0].id == other.stdout.strip() == "corpus/page.html#0"


async def test_a_failed_ingest_on_start_is_an_error(tmp_path: Path) -> None:
    entry = provider(chroma_entry(tmp_path / "chroma", on_start=[str(tmp_path / "missing")]))
    with pytest.raises(IngestTargetError, match="on start failed"):
        await ingest_on_start(entry)


@pytest.mark.postgres
async def test_postgres_ingest_creates_a_searchable_indexed_table(corpus, postgres) -> None:  # noqa: F811
    table = f"{postgres.schema}.ingested_unit"
    entry = provider(pg_entry(postgres, table))
    first = await ingest(entry, [corpus])
    again = await ingest(entry, [corpus])
    assert first.documents_before == 0 and first.documents_after == first.chunks
    assert again.documents_before == again.documents_after == first.chunks

    search = PostgresProvider("pgdocs", entry.config, 10, None)
    try:
        items = await search.retrieve("zebrafish fins", 5)
    finally:
        await search.close()
    assert [item.id for item in items] == ["corpus/notes.txt#0"]
    assert "zebrafish" in items[0].content

    connection = await postgres.connect()
    try:
        index = await connection.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 "
            "AND indexdef LIKE '%gin%'",
            postgres.schema,
            "ingested_unit",
        )
    finally:
        await connection.close()
    assert index is not None and "to_tsvector" in index


@pytest.mark.postgres
def test_postgres_table_of_another_shape_is_refused(corpus, postgres, tmp_path) -> None:  # noqa: F811
    config = tmp_path / "mcp.yaml"
    config.write_text(
        _yaml({"mcp": {"providers": [pg_entry(postgres, f"{postgres.schema}.docs")]}})
    )
    result = runner.invoke(app, ["mcp", "ingest", "pgdocs", str(corpus), "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "has no column chunk, source" in result.stderr
    assert "Traceback" not in result.output


# -- the commands -----------------------------------------------------------------------


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data)


def test_ingest_and_providers_commands(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    files = {"name": "files", "type": "filesystem", "config": {"roots": [str(corpus)]}}
    config.write_text(_yaml({"mcp": {"providers": [chroma_entry(tmp_path / "db"), files]}}))

    listed = runner.invoke(app, ["mcp", "providers", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "not created" in listed.stdout

    args = ["mcp", "ingest", "vectors", str(corpus), "--config", str(config)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "vectors: 4 files" in first.stdout and "0 -> " in first.stdout
    count = first.stdout.split(" -> ")[1].split()[0]
    second = runner.invoke(app, args)
    assert f"{count} -> {count} documents" in second.stdout

    listed = runner.invoke(app, ["mcp", "providers", "--config", str(config)])
    row = next(line for line in listed.stdout.splitlines() if "vectors" in line)
    assert count in row
    assert "-" in next(line for line in listed.stdout.splitlines() if "files" in line)


@pytest.mark.parametrize(
    ("provider_name", "message"),
    [
        ("nope", "no provider 'nope' in the config (providers: vectors, files)"),
        ("files", "a filesystem provider; documents can be ingested into chroma and postgresql"),
    ],
)
def test_ingest_refusals_are_one_line(provider_name, message, corpus, tmp_path) -> None:
    config = tmp_path / "mcp.yaml"
    files = {"name": "files", "type": "filesystem", "config": {"roots": [str(corpus)]}}
    config.write_text(_yaml({"mcp": {"providers": [chroma_entry(tmp_path / "db"), files]}}))
    result = runner.invoke(
        app, ["mcp", "ingest", provider_name, str(corpus), "--config", str(config)]
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line


def test_a_missing_path_and_a_missing_config(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(_yaml({"mcp": {"providers": [chroma_entry(tmp_path / "db")]}}))
    missing = runner.invoke(
        app, ["mcp", "ingest", "vectors", str(tmp_path / "nowhere"), "--config", str(config)]
    )
    assert missing.exit_code == 2 and "nowhere: no such file or directory" in missing.stderr
    no_config = runner.invoke(
        app, ["mcp", "ingest", "vectors", str(corpus), "--config", str(tmp_path / "x.yaml")]
    )
    assert no_config.exit_code == 2 and "x.yaml: no such file" in no_config.stderr


def test_bad_chunking_is_refused(corpus: Path, tmp_path: Path) -> None:
    entry = provider(chroma_entry(tmp_path / "db"))
    with pytest.raises(DocumentError, match="overlap"):
        asyncio.run(ingest(entry, [corpus], chunk_chars=200, overlap_chars=200))
