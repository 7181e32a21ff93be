"""Model sources and the preparation of the embedded model (cached, idempotent, atomic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aim_ray.engine import models
from aim_ray.engine.models import ModelSourceError, prepare_embedded, resolve_model_source


def make_hf_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "model.safetensors").write_bytes(b"weights")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AIM_RAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_local_hf_folder_resolves_to_its_absolute_path(tmp_path):
    folder = make_hf_folder(tmp_path / "m")
    assert resolve_model_source(str(folder)) == str(folder.resolve())


def test_hub_id_is_left_for_vllm():
    assert resolve_model_source("Qwen/Qwen3-32B") == "Qwen/Qwen3-32B"


def test_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match="not a Hugging Face model folder"):
        resolve_model_source(str(tmp_path))


def test_missing_local_path_is_refused():
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_model_source("./no/such/model")


def test_unknown_embedded_model_lists_known_ones():
    with pytest.raises(ModelSourceError, match="embedded:smollm2-135m-instruct"):
        resolve_model_source("embedded:gpt-17")


def test_prepare_is_a_no_op_when_cached(cache, monkeypatch):
    target = make_hf_folder(cache / "smollm2-135m-instruct")

    def must_not_convert(*_):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_gguf_to_hf_folder", must_not_convert)
    assert prepare_embedded(progress=lambda _: None) == target


def test_interrupted_prepare_leaves_nothing_behind(cache, monkeypatch):
    def half_write_then_fail(gguf: Path, out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_gguf_to_hf_folder", half_write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        prepare_embedded(progress=lambda _: None)
    assert not (cache / "smollm2-135m-instruct").exists()
    assert list(cache.iterdir()) == []


@pytest.mark.slow
def test_prepare_converts_the_packaged_gguf(cache):
    messages: list[str] = []
    folder = prepare_embedded(progress=messages.append)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (folder / "tokenizer.json").is_file()
    assert any("converting" in m for m in messages)
    assert resolve_model_source("embedded:smollm2-135m-instruct") == str(folder)
