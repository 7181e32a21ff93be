"""Hardware detection: amd-smi / rocm-smi parsers, names, Ray's accelerator names, and detect()."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from aim_ray.errors import AimRayError
from aim_ray.recipes.hardware import (
    RAY_ACCELERATOR_TYPES,
    Hardware,
    HardwareError,
    cpu_hardware,
    detect,
    hardware_from_name,
    parse_amd_smi,
    parse_cpuinfo,
    parse_rocm_smi,
    resolve_hardware,
)

DATA = Path(__file__).parent / "data" / "hardware"


def load(name: str) -> object:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize(
    ("name", "kind", "count", "vram", "product"),
    [
        ("amd-smi-static_8x-mi300x.json", "MI300X", 8, 192.0, "AMD Instinct MI300X"),
        ("amd-smi-static_1x-mi325x.json", "MI325X", 1, 256.0, "AMD Instinct MI325X"),
        ("amd-smi-static_8x-mi355x.json", "MI355X", 8, 288.0, "AMD Instinct MI355X"),
    ],
)
def test_amd_smi_static(name: str, kind: str, count: int, vram: float, product: str) -> None:
    hardware = parse_amd_smi(load(name))
    assert hardware == Hardware(
        kind=kind, gpu_count=count, product_name=product, vram_gib=vram, source="amd-smi static"
    )


def test_amd_smi_list_counts_gpus_without_knowing_the_model() -> None:
    hardware = parse_amd_smi(load("amd-smi-list_8x-mi300x.json"))
    assert (hardware.kind, hardware.gpu_count, hardware.source) == ("unknown", 8, "amd-smi list")
    assert hardware.vram_gib is None


@pytest.mark.parametrize(
    ("name", "kind", "count", "vram"),
    [
        ("rocm-smi_8x-mi300x.json", "MI300X", 8, 192.0),
        ("rocm-smi_1x-mi325x.json", "MI325X", 1, 256.0),
        ("rocm-smi_8x-mi355x.json", "MI355X", 8, 288.0),
    ],
)
def test_rocm_smi(name: str, kind: str, count: int, vram: float) -> None:
    hardware = parse_rocm_smi(load(name))
    assert (hardware.kind, hardware.gpu_count, hardware.vram_gib) == (kind, count, vram)
    assert hardware.source == "rocm-smi"


def test_rocm_smi_old_spelling_falls_back_to_the_device_id() -> None:
    # Old rocm-smi spells "Card series" and may print a bare device id as the series.
    data = {"card0": {"Card series": "0x74a5", "Card model": "0x74a5"}, "system": {}}
    hardware = parse_rocm_smi(data)
    assert (hardware.kind, hardware.gpu_count, hardware.vram_gib) == ("MI325X", 1, None)


def test_amd_smi_human_size_and_not_available_fields() -> None:
    data = [
        {"gpu": 0, "asic": {"market_name": "N/A", "device_id": "0x74a1"}, "vram": {"size": "N/A"}},
        {"gpu": 1, "asic": {"market_name": "N/A", "device_id": "0x74a1"}},
    ]
    hardware = parse_amd_smi(data)
    assert (hardware.kind, hardware.product_name, hardware.vram_gib) == ("MI300X", None, None)
    text_size = [
        {"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X"}, "vram": {"size": "196592 MB"}}
    ]
    assert parse_amd_smi(text_size).vram_gib == 192.0


def test_unknown_product_keeps_its_name() -> None:
    data = [{"gpu": 0, "asic": {"market_name": "AMD Radeon PRO W7900", "device_id": "0x7448"}}]
    assert parse_amd_smi(data).kind == "AMD Radeon PRO W7900"


@pytest.mark.parametrize("data", [{}, {"gpu_data": []}, [], "text", [{"no": "gpu"}]])
def test_amd_smi_without_gpus_is_an_error(data: object) -> None:
    with pytest.raises(HardwareError):
        parse_amd_smi(data)


@pytest.mark.parametrize("data", [{}, {"system": {"Driver version": "6.10"}}, []])
def test_rocm_smi_without_gpus_is_an_error(data: object) -> None:
    with pytest.raises(HardwareError):
        parse_rocm_smi(data)


def test_accelerator_types_are_rays_names() -> None:
    from ray.util.accelerators import accelerators

    assert {
        "MI300X": (accelerators.AMD_INSTINCT_MI300x, accelerators.AMD_INSTINCT_MI300x_HF),
        "MI325X": (accelerators.AMD_INSTINCT_MI325x,),
        "MI355X": (accelerators.AMD_INSTINCT_MI355x,),
    } == RAY_ACCELERATOR_TYPES


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("MI300X", "MI300X"),
        ("mi325x", "MI325X"),
        ("AMD-Instinct-MI355X-OAM", "MI355X"),
        ("cpu", "CPU"),
    ],
)
def test_hardware_from_name(name: str, kind: str) -> None:
    hardware = hardware_from_name(name)
    assert (hardware.kind, hardware.gpu_count, hardware.source) == (kind, 0, "name")


def test_unknown_hardware_name_is_a_user_error() -> None:
    with pytest.raises(AimRayError, match="unknown hardware 'H100'"):
        hardware_from_name("H100")


def _install_tool(directory: Path, name: str, script: str) -> None:
    tool = directory / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def tool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fake tools a test installs, so a real amd-smi is never found."""
    for utility in ("cat", "sleep"):
        (tmp_path / utility).symlink_to(shutil.which(utility))
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_detect_falls_back_to_the_cpu_without_tools(tool_dir: Path) -> None:
    hardware = detect()
    assert (hardware.kind, hardware.gpu_count, hardware.source) == ("CPU", 0, "cpu")
    assert resolve_hardware("auto").kind == "CPU"


def test_detect_reads_amd_smi_and_skips_its_warnings(tool_dir: Path) -> None:
    fixture = DATA / "amd-smi-static_8x-mi300x.json"
    _install_tool(tool_dir, "amd-smi", f"echo 'WARNING: missing render group'; cat {fixture}")
    hardware = detect()
    assert (hardware.kind, hardware.gpu_count, hardware.source) == ("MI300X", 8, "amd-smi static")


def test_detect_uses_rocm_smi_when_amd_smi_fails(tool_dir: Path) -> None:
    _install_tool(tool_dir, "amd-smi", "echo 'amdsmi init failed' >&2; exit 1")
    _install_tool(tool_dir, "rocm-smi", f"cat {DATA / 'rocm-smi_1x-mi325x.json'}")
    hardware = detect()
    assert (hardware.kind, hardware.gpu_count, hardware.source) == ("MI325X", 1, "rocm-smi")


def test_detect_gives_up_on_a_hanging_tool(tool_dir: Path) -> None:
    _install_tool(tool_dir, "amd-smi", "exec sleep 10")
    assert detect(timeout=0.3).kind == "CPU"


CPUINFO = Path(__file__).parent / "data" / "cpuinfo"


@pytest.mark.parametrize(
    ("file", "isa", "native_bf16", "bf16_fits", "vendor"),
    [
        ("avx512-bf16_epyc.txt", "avx512_bf16", True, True, "AMD EPYC"),
        ("avx2_epyc.txt", "avx2", False, False, "AMD EPYC"),
        ("amx-bf16_xeon.txt", "amx_bf16", True, False, "Intel(R) Xeon(R)"),
    ],
)
def test_cpu_hardware_reads_the_isa_from_cpuinfo(
    file: str, isa: str, native_bf16: bool, bf16_fits: bool, vendor: str
) -> None:
    hardware = cpu_hardware(source="name", cpuinfo=CPUINFO / file)
    assert (hardware.kind, hardware.cpu_isa) == ("CPU", isa)
    assert (hardware.native_bf16, hardware.bf16_fits) == (native_bf16, bf16_fits)
    assert hardware.product_name and hardware.product_name.startswith(vendor)


def test_parse_cpuinfo_prefers_amx_and_falls_back_to_baseline() -> None:
    assert parse_cpuinfo("model name : X\nflags : avx2 avx512f amx_bf16\n") == ("X", "amx_bf16")
    assert parse_cpuinfo("flags : sse2 sse4_2\n") == (None, "baseline")


def test_cpu_isa_is_unknown_without_cpuinfo(tmp_path: Path) -> None:
    hardware = cpu_hardware(cpuinfo=tmp_path / "missing")
    assert (hardware.cpu_isa, hardware.native_bf16, hardware.bf16_fits) == (None, None, None)
    assert Hardware(kind="MI300X", gpu_count=8, source="test").native_bf16 is None
