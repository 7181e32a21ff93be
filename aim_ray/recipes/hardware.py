"""Hardware detection: which AMD Instinct GPUs (or only a CPU) a recipe will run on.

Owns the ``Hardware`` description, the parsers for ``amd-smi`` and ``rocm-smi`` JSON and for
``/proc/cpuinfo`` (which matrix ISA the CPU has), the mapping between GPU names and Ray
accelerator types, and ``detect()``, which asks amd-smi, then rocm-smi, and falls back to the
CPU. Import-light: no Ray.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aim_ray.errors import AimRayError

HardwareKind = Literal["MI300X", "MI325X", "MI355X", "CPU"]
KNOWN_KINDS: tuple[str, ...] = ("MI300X", "MI325X", "MI355X", "CPU")

# Ray's names for each GPU, as ray.util.accelerators.accelerators spells them (the list
# LLMConfig checks accelerator_type against; written out so that choosing a recipe needs no
# Ray, and tests/test_hardware.py holds them to Ray's). A recipe's accelerator_type must be
# one of its GPU's; the first is the default, the OAM module of AMD's 8-GPU platforms.
RAY_ACCELERATOR_TYPES: dict[str, tuple[str, ...]] = {
    "MI300X": ("AMD-Instinct-MI300X-OAM", "AMD-Instinct-MI300X-HF"),
    "MI325X": ("AMD-Instinct-MI325X-OAM",),
    "MI355X": ("AMD-Instinct-MI355X-OAM",),
}

# PCI device ids, as Ray's AMD accelerator manager maps them
# (ray/_private/accelerators/amd_gpu.py); used when the product name says nothing useful.
_DEVICE_ID_KINDS = {
    "0x74a1": "MI300X",
    "0x74a9": "MI300X",
    "0x74a5": "MI325X",
    "0x75a0": "MI350X",
    "0x75a3": "MI355X",
}

# The CPU's best matrix instruction set, best first, as /proc/cpuinfo spells the flags.
# vLLM's CPU build runs bf16 matmuls natively only with the first two; without them oneDNN
# falls back and batched bf16 decoding was 2.4x slower than fp32 (AVX2 box, SmolLM2-135M).
CPU_ISAS: tuple[str, ...] = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
NATIVE_BF16_ISAS = frozenset({"amx_bf16", "avx512_bf16"})
# vLLM 0.32's CPU kernels for AMX (its small-GEMM and AMX attention paths) answer wrongly in
# bf16: on a Xeon with amx_bf16, SmolLM2-135M said "L'Étoile, la Marseillaise, ..." where
# fp32, and transformers' own bf16 on the same box, said "Paris" (2026-12-02). There bf16
# is native but not chosen.
WRONG_BF16_ISAS = frozenset({"amx_bf16"})
BASELINE_ISA = "baseline"
CPUINFO = Path("/proc/cpuinfo")

_MI_NAME = re.compile(r"MI\d{3}[A-Z]?")
_MIB_PER_GIB = 1024
_AMD_SMI_STATIC = ("amd-smi", "static", "--asic", "--vram", "--json")
_AMD_SMI_LIST = ("amd-smi", "list", "--json")
_ROCM_SMI = ("rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json")


class HardwareError(AimRayError):
    """Hardware named wrongly, or tool output that describes no GPU."""


class Hardware(BaseModel):
    """What a recipe runs on: the GPU kind and how many, or the CPU."""

    model_config = ConfigDict(frozen=True)

    kind: HardwareKind | str = Field(
        description="MI300X, MI325X, MI355X or CPU; another name for GPUs without recipes."
    )
    gpu_count: int = Field(ge=0, description="GPUs seen; 0 for the CPU or when not known.")
    product_name: str | None = None
    vram_gib: float | None = Field(default=None, description="VRAM of one GPU, in GiB.")
    source: str = Field(description="Where this came from: amd-smi, rocm-smi, name, cpu.")
    cpu_isa: str | None = Field(
        default=None,
        description="For the CPU: its best matrix ISA (amx_bf16, avx512_bf16, avx512f, avx2 "
        "or baseline), from /proc/cpuinfo; None when not known.",
    )

    @property
    def is_gpu(self) -> bool:
        return self.kind != "CPU"

    @property
    def native_bf16(self) -> bool | None:
        """Whether the CPU computes bf16 natively; None for a GPU or an unknown CPU."""
        if self.is_gpu or self.cpu_isa is None:
            return None
        return self.cpu_isa in NATIVE_BF16_ISAS

    @property
    def bf16_fits(self) -> bool | None:
        """Whether a bf16 CPU recipe should run here: native bf16 that vLLM computes right."""
        if self.native_bf16 is None:
            return None
        return self.native_bf16 and self.cpu_isa not in WRONG_BF16_ISAS


def kind_from_name(name: str) -> str | None:
    """The GPU kind in a product, market or Ray accelerator name, e.g. MI300X; None if absent."""
    match = _MI_NAME.search(name.upper())
    return match.group(0) if match else None


def kind_from_device_id(device_id: str) -> str | None:
    """The GPU kind for a PCI device id such as ``0x74a1``."""
    return _DEVICE_ID_KINDS.get(device_id.strip().lower())


def hardware_from_name(name: str) -> Hardware:
    """Hardware given by name (``MI300X``, ``mi325x``, ``AMD-Instinct-MI355X-OAM``, ``CPU``).

    The GPU count is not known from a name, so it is 0.
    """
    if name.strip().upper() == "CPU":
        # The CPU named is the one this runs on: its flags decide the dtype.
        return cpu_hardware(source="name")
    kind = kind_from_name(name)
    if kind is None:
        raise HardwareError(
            f"unknown hardware {name!r}: expected one of {', '.join(KNOWN_KINDS)} or auto"
        )
    return Hardware(kind=kind, gpu_count=0, source="name")


def resolve_hardware(name: str) -> Hardware:
    """``auto`` detects the local hardware; anything else is a name (see ``hardware_from_name``)."""
    return detect() if name.strip().lower() == "auto" else hardware_from_name(name)


def cpu_hardware(source: str = "cpu", cpuinfo: Path | None = None) -> Hardware:
    """The machine's CPU (model name and ISA from ``cpuinfo``), for when there is no AMD GPU."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return Hardware(kind="CPU", gpu_count=0, source=source)
    model, isa = parse_cpuinfo(text)
    return Hardware(kind="CPU", gpu_count=0, product_name=model, cpu_isa=isa, source=source)


def parse_cpuinfo(text: str) -> tuple[str | None, str]:
    """The CPU's model name and best matrix ISA (see ``CPU_ISAS``) from ``/proc/cpuinfo``."""
    fields = [line.split(":", 1) for line in text.splitlines() if ":" in line]
    model = next((value.strip() for key, value in fields if key.strip() == "model name"), None)
    flags = next((value.split() for key, value in fields if key.strip() == "flags"), [])
    isa = next((isa for isa in CPU_ISAS if isa in flags), BASELINE_ISA)
    return model, isa


def parse_amd_smi(data: object) -> Hardware:
    """Hardware from ``amd-smi static --json`` or ``amd-smi list --json`` output.

    amd-smi prints a bare list of per-GPU objects, or (newer releases) the list under a
    ``gpu_data`` key. ``list`` entries carry no ASIC block, so their kind is ``unknown``.
    """
    gpus = _amd_smi_gpus(data)
    first = gpus[0]
    asic = first.get("asic") if isinstance(first.get("asic"), dict) else {}
    name = _known(asic.get("market_name"))
    kind = _kind(name, _known(asic.get("device_id")))
    source = "amd-smi static" if asic else "amd-smi list"
    return Hardware(
        kind=kind,
        gpu_count=len(gpus),
        product_name=name,
        vram_gib=_amd_smi_vram_gib(first.get("vram")),
        source=source,
    )


def parse_rocm_smi(data: object) -> Hardware:
    """Hardware from ``rocm-smi --showproductname --showmeminfo vram --json`` output.

    rocm-smi keys each GPU as ``cardN``; key spelling changed between releases
    (``Card series`` → ``Card Series``), so keys are matched case-insensitively.
    """
    if not isinstance(data, dict):
        raise HardwareError("rocm-smi output is not a JSON object")
    cards = [
        {key.lower(): value for key, value in fields.items()}
        for card, fields in data.items()
        if card.startswith("card") and isinstance(fields, dict)
    ]
    if not cards:
        raise HardwareError("rocm-smi output lists no GPU")
    first = cards[0]
    name = _known(first.get("card series"))
    device_id = _known(first.get("card model") or first.get("device id"))
    total = _known(first.get("vram total memory (b)"))
    return Hardware(
        kind=_kind(name, device_id),
        gpu_count=len(cards),
        product_name=name,
        vram_gib=round(int(total) / 2**30, 1) if total else None,
        source="rocm-smi",
    )


def detect(timeout: float = 5.0) -> Hardware:
    """The local hardware: amd-smi, then rocm-smi, then the CPU when neither finds a GPU."""
    probes: tuple[tuple[tuple[str, ...], Callable[[object], Hardware]], ...] = (
        (_AMD_SMI_STATIC, parse_amd_smi),
        (_AMD_SMI_LIST, parse_amd_smi),
        (_ROCM_SMI, parse_rocm_smi),
    )
    for argv, parse in probes:
        data = _run_json(argv, timeout)
        if data is None:
            continue
        try:
            return parse(data)
        except HardwareError:
            continue
    return cpu_hardware()


def _run_json(argv: tuple[str, ...], timeout: float) -> object | None:
    """A tool's JSON output, or None when the tool is missing, fails, hangs or prints no JSON."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return _first_json(result.stdout)


def _first_json(text: str) -> object | None:
    # Both tools may print warnings (e.g. missing render group) before the JSON document.
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    try:
        return json.JSONDecoder().raw_decode(text[min(starts) :])[0]
    except ValueError:
        return None


def _amd_smi_gpus(data: object) -> list[dict]:
    if isinstance(data, dict):
        data = data.get("gpu_data")
    if not isinstance(data, list):
        raise HardwareError("amd-smi output is neither a GPU list nor an object with gpu_data")
    gpus = [entry for entry in data if isinstance(entry, dict) and "gpu" in entry]
    if not gpus:
        raise HardwareError("amd-smi output lists no GPU")
    return gpus


def _amd_smi_vram_gib(vram: object) -> float | None:
    """VRAM size from amd-smi's vram block: ``{"value": N, "unit": "MB"}`` or ``"N MB"``."""
    if not isinstance(vram, dict):
        return None
    size = vram.get("size")
    if isinstance(size, dict):
        value, unit = size.get("value"), str(size.get("unit", "MB"))
    elif isinstance(size, str) and len(size.split()) == 2:
        value, unit = size.split()
    else:
        return None
    if _known(value) is None or unit.upper() != "MB":
        return None
    # amd-smi's "MB" are MiB: an MI300X reports 196592 MB, i.e. 192 GiB less 16 MiB.
    return round(float(value) / _MIB_PER_GIB, 1)


def _kind(name: str | None, device_id: str | None) -> str:
    by_id = kind_from_device_id(device_id) if device_id else None
    return (name and kind_from_name(name)) or by_id or name or "unknown"


def _known(value: object) -> str | None:
    """A tool's field as text, or None where the tool wrote N/A or nothing."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "N/A") else text
