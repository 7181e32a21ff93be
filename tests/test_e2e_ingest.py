"""``aim-ray mcp ingest`` into the running app's PostgreSQL table and Chroma server
collection: run twice, the document count stays; the new documents come back through a
chat's ``mcp_context`` at once, without a restart."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import mcp_section

pytestmark = pytest.mark.slow

COUNTS = re.compile(r"(\d+) -> (\d+) documents")


def run_ingest(provider: str, corpus: Path, config: Path) -> tuple[int, int]:
    aim_ray = Path(sys.executable).with_name("aim-ray")
    done = subprocess.run(
        [str(aim_ray), "mcp", "ingest", provider, str(corpus), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    before, after = COUNTS.search(done.stdout).groups()
    return int(before), int(after)


def test_ingested_documents_reach_chat_context(app, tmp_path: Path) -> None:
    corpus = tmp_path / "field-notes"
    corpus.mkdir()
    (corpus / "quokka.md").write_text(
        "# Quokka\n\nThe quokka is a small wallaby that lives on Rottnest Island.\n"
    )
    (corpus / "pangolin.txt").write_text("Pangolins are scaly mammals that eat ants.\n")
    config = tmp_path / "mcp.yaml"
    config.write_text(yaml.safe_dump({"mcp": mcp_section(app.services)}))

    for provider in ("ingested_db", "ingested_vectors"):
        first = run_ingest(provider, corpus, config)
        second = run_ingest(provider, corpus, config)
        assert first == (0, 2), provider  # two short files: one chunk each
        assert second == (2, 2), provider

    reply = app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "Where does the quokka live?"}],
        max_tokens=8,
        extra_body={
            "mcp_context": {
                "providers": ["ingested_db", "ingested_vectors"],
                "query": "quokka wallaby island",
            }
        },
    )
    context = reply.to_dict()["mcp"]["context"]
    assert [p["status"] for p in context["providers"]] == ["ok", "ok"]
    found = {(item["provider"], item["id"]) for item in context["items"]}
    assert ("ingested_db", "field-notes/quokka.md#0") in found
    assert ("ingested_vectors", "field-notes/quokka.md#0") in found
    assert all("Rottnest" in item["content"] for item in context["items"] if "quokka" in item["id"])
