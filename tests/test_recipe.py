"""Recipes: the shipped files, loading and validation, selection, LLMConfig, and the CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import vllm.envs
import yaml
from ray.serve.llm import LLMConfig
from typer.testing import CliRunner
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.launchers.cli_args import FrontendArgs

from aim_ray.cli.main import app
from aim_ray.recipes import catalog as catalog_module
from aim_ray.recipes import hardware as hardware_module
from aim_ray.recipes.catalog import (
    RECIPES_PATH_ENV,
    Catalog,
    load_catalog,
    load_recipe_file,
    packaged_recipes_dir,
)
from aim_ray.recipes.hardware import Hardware
from aim_ray.recipes.schema import RecipeError
from aim_ray.recipes.selection import NoRecipeError, select_recipe

SHIPPED = load_catalog(custom_dirs=[])
SHIPPED_PROFILES = [(r.id, count) for r in SHIPPED.recipes for count in r.gpu_counts]
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct/vllm-cpu-bf16-latency"
SMOLLM_FP32 = "HuggingFaceTB/SmolLM2-135M-Instruct/vllm-cpu-fp32-latency"
CPUINFO = Path(__file__).parent / "data" / "cpuinfo"
QWEN_MI300X = "Qwen/Qwen3-32B/vllm-mi300x-bf16-latency"
LLAMA8B_FP8 = "meta-llama/Llama-3.1-8B-Instruct/vllm-mi300x-fp8-latency"
LLAMA8B_BF16 = "meta-llama/Llama-3.1-8B-Instruct/vllm-mi300x-bf16-latency"
LLAMA70B = "meta-llama/Llama-3.3-70B-Instruct/vllm-mi300x-fp8-latency"

BASE: dict[str, Any] = {
    "model_id": "Qwen/Qwen3-32B",
    "hardware": "MI300X",
    "precision": "bf16",
    "metric": "latency",
    "maturity": "optimized",
    "profiles": {
        1: {"engine_args": {"tensor_parallel_size": 1, "max_num_seqs": 64}},
        2: {"engine_args": {"tensor_parallel_size": 2, "max_num_seqs": 64}},
    },
}


def mi300x(count: int) -> Hardware:
    return Hardware(kind="MI300X", gpu_count=count, source="test")


def write_recipe(root: Path, model_dir: str = "Qwen/Qwen3-32B", **changes: Any) -> Path:
    """Write a recipe from BASE with ``changes``, under the name its content calls for."""
    data = {**copy.deepcopy(BASE), **changes}
    data = {key: value for key, value in data.items() if value is not None}
    stem = f"vllm-{data['hardware'].lower()}-{data['precision']}"
    stem += f"-{data['metric']}" if data.get("metric") else ""
    path = root / model_dir / f"{stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def custom_catalog(root: Path) -> Catalog:
    return load_catalog(custom_dirs=[root])


# --------------------------------------------------------------------------- shipped recipes


def test_the_required_recipes_ship() -> None:
    ids = {r.id for r in SHIPPED.recipes}
    assert {SMOLLM, QWEN_MI300X, LLAMA8B_BF16, LLAMA70B, "general/vllm-mi300x-bf16"} <= ids
    assert any(r.hardware in ("MI325X", "MI355X") and not r.is_general for r in SHIPPED.recipes)
    assert SHIPPED.get(QWEN_MI300X).gpu_counts == [1, 2, 4, 8]
    assert 8 in SHIPPED.get(LLAMA70B).gpu_counts


@pytest.mark.parametrize(("recipe_id", "count"), SHIPPED_PROFILES)
def test_every_shipped_profile_is_a_valid_llm_config(recipe_id: str, count: int) -> None:
    recipe = SHIPPED.get(recipe_id).for_model("org/some-model")
    config = LLMConfig.model_validate(recipe.llm_config(count))
    assert config.engine_kwargs.get("tensor_parallel_size", 1) == count
    if recipe.hardware == "CPU":
        assert config.accelerator_type is None
        assert config.accelerator_config.kind == "cpu"
    else:
        assert config.accelerator_type.startswith(f"AMD-Instinct-{recipe.hardware}")
        assert config.engine_kwargs["max_num_seqs"] > 0


@pytest.mark.parametrize("recipe_id", [r.id for r in SHIPPED.recipes])
def test_shipped_recipes_use_only_args_and_env_vllm_knows(recipe_id: str) -> None:
    known_args = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    known_args |= {f.name for f in dataclasses.fields(FrontendArgs)}
    recipe = SHIPPED.get(recipe_id)
    for profile in recipe.profiles.values():
        assert set(profile.engine_args.engine_kwargs()) <= known_args
        vllm_vars = {k for k in {**recipe.env, **profile.env} if k.startswith("VLLM_")}
        assert vllm_vars <= set(vllm.envs.environment_variables)


def test_cpu_default_recipe_is_exactly_the_measured_one() -> None:
    config = SHIPPED.get(SMOLLM).llm_config(1)
    assert config["model_loading_config"] == {
        "model_id": "smollm2-135m-instruct",
        "model_source": "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
    assert config["engine_kwargs"] == {
        "dtype": "bfloat16",
        "max_model_len": 2048,
        "max_num_seqs": 16,
        "max_num_batched_tokens": 2048,
        "enforce_eager": True,
        "kv_cache_memory_bytes": 268435456,
        "enable_auto_tool_choice": True,
        "tool_call_parser": "hermes",
        # vLLM 0.32 takes disable_any_whitespace only with an explicit backend; xgrammar aborts.
        "structured_outputs_config": {"backend": "guidance", "disable_any_whitespace": True},
    }
    assert config["runtime_env"]["env_vars"] == {"VLLM_HOST_IP": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    # The replica holds no CPU of its own: the engine bundle does (fits a 2-core `serve run`).
    assert config["deployment_config"]["ray_actor_options"] == {"num_cpus": 0}
    autoscaling = config["deployment_config"]["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (1, 1)
    assert config["accelerator_config"] == {"kind": "cpu"}
    assert "accelerator_type" not in config


def test_gpu_profile_carries_accelerator_placement_and_env() -> None:
    config = SHIPPED.get(QWEN_MI300X).llm_config(8)
    assert config["accelerator_type"] == "AMD-Instinct-MI300X-OAM"
    assert config["placement_group_config"] == {
        "bundle_per_worker": {"GPU": 1, "CPU": 2},
        "strategy": "STRICT_PACK",
    }
    env = config["runtime_env"]["env_vars"]
    assert env["VLLM_ROCM_USE_AITER"] == "1" and env["NCCL_MIN_NCHANNELS"] == "112"
    one_gpu_env = SHIPPED.get(QWEN_MI300X).llm_config(1)["runtime_env"]["env_vars"]
    assert "NCCL_MIN_NCHANNELS" not in one_gpu_env


def test_fp8_recipe_loads_the_amd_checkpoint_under_the_meta_name() -> None:
    config = SHIPPED.get(LLAMA70B).llm_config(8)
    assert config["model_loading_config"] == {
        "model_id": "meta-llama/Llama-3.3-70B-Instruct",
        "model_source": "amd/Llama-3.3-70B-Instruct-FP8-KV",
    }
    assert config["engine_kwargs"]["kv_cache_dtype"] == "fp8"


# --------------------------------------------------------------------------- llm_config


def test_llm_config_overrides_merge_key_by_key() -> None:
    recipe = SHIPPED.get(SMOLLM)
    config = recipe.llm_config(
        1,
        model_source="/models/smollm2",
        model_id="tiny",
        overrides={"engine_kwargs": {"max_model_len": 512}, "deployment_config": {"name": "x"}},
    )
    assert config["model_loading_config"] == {"model_id": "tiny", "model_source": "/models/smollm2"}
    assert config["engine_kwargs"]["max_model_len"] == 512
    assert config["engine_kwargs"]["max_num_seqs"] == 16
    assert config["deployment_config"]["name"] == "x"
    assert config["deployment_config"]["max_ongoing_requests"] == 32
    assert recipe.llm_config(1)["engine_kwargs"]["max_model_len"] == 2048  # not mutated


def test_general_recipe_needs_a_model() -> None:
    general = SHIPPED.get("general/vllm-mi300x-bf16")
    with pytest.raises(RecipeError, match="general recipe"):
        general.llm_config(1)
    config = general.llm_config(1, model_id="org/model")
    assert config["model_loading_config"] == {"model_id": "org/model", "model_source": "org/model"}


def test_unknown_gpu_count_is_a_recipe_error() -> None:
    with pytest.raises(RecipeError, match=r"no profile for 4 GPUs \(it has 2/8\)"):
        SHIPPED.get(LLAMA70B).llm_config(4)


# --------------------------------------------------------------------------- selection


def test_exact_model_on_a_detected_node_takes_the_largest_profile() -> None:
    selection = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=SHIPPED)
    assert (selection.recipe.id, selection.gpu_count) == (QWEN_MI300X, 8)
    assert any("largest profile that fits 8" in reason for reason in selection.reasons)


@pytest.mark.parametrize(("detected", "expected"), [(4, 4), (3, 2), (1, 1)])
def test_gpu_count_defaults_to_the_largest_profile_that_fits(detected: int, expected: int) -> None:
    selection = select_recipe("qwen/qwen3-32b", mi300x(detected), catalog=SHIPPED)
    assert selection.gpu_count == expected


def test_gpu_count_given_must_match_a_profile_exactly() -> None:
    selection = select_recipe(
        "meta-llama/Llama-3.3-70B-Instruct", mi300x(8), gpu_count=2, catalog=SHIPPED
    )
    assert selection.gpu_count == 2
    assert "GPU count: 2, as asked" in selection.reasons


def test_hardware_by_name_takes_the_smallest_profile() -> None:
    selection = select_recipe("meta-llama/Llama-3.3-70B-Instruct", "MI300X", catalog=SHIPPED)
    assert selection.gpu_count == 2


def test_precision_auto_prefers_fp8_over_bf16_as_aim_does() -> None:
    selection = select_recipe("meta-llama/Llama-3.1-8B-Instruct", mi300x(8), catalog=SHIPPED)
    assert selection.recipe.id == LLAMA8B_FP8
    assert f"ranked above {LLAMA8B_BF16}: lower precision (fp8) is preferred on auto" in (
        selection.reasons
    )


def test_explicit_precision_filters() -> None:
    selection = select_recipe(
        "meta-llama/Llama-3.1-8B-Instruct", mi300x(8), precision="BF16", catalog=SHIPPED
    )
    assert selection.recipe.id == LLAMA8B_BF16
    assert f"rejected {LLAMA8B_FP8}: precision fp8, not bf16" in selection.reasons


def test_unknown_model_falls_back_to_the_general_recipe() -> None:
    selection = select_recipe("mistralai/Mistral-7B-Instruct-v0.3", mi300x(2), catalog=SHIPPED)
    assert selection.recipe.id == "general/vllm-mi300x-bf16"
    assert selection.recipe.tier == "general"
    config = LLMConfig.model_validate(selection.llm_config())
    assert config.model_id == "mistralai/Mistral-7B-Instruct-v0.3"
    assert config.engine_kwargs["tensor_parallel_size"] == 2


@pytest.mark.parametrize(
    ("isa", "precision", "chosen"),
    [
        ("amx_bf16", "auto", SMOLLM_FP32),  # native, but vLLM 0.32 gets it wrong there
        ("avx512_bf16", "auto", SMOLLM),
        ("avx512f", "auto", SMOLLM_FP32),
        ("avx2", "auto", SMOLLM_FP32),
        ("baseline", "auto", SMOLLM_FP32),
        (None, "auto", SMOLLM),  # nothing known: AIM's rule, the lower precision
        ("avx2", "bf16", SMOLLM),  # asked for by name: slower, but what was asked
    ],
)
def test_cpu_precision_follows_bf16_fit(isa: str | None, precision: str, chosen: str) -> None:
    cpu = Hardware(kind="CPU", gpu_count=0, source="test", cpu_isa=isa)
    selection = select_recipe(
        "HuggingFaceTB/SmolLM2-135M-Instruct", cpu, precision=precision, catalog=SHIPPED
    )
    assert selection.recipe.id == chosen


def test_served_name_matches_case_insensitively_on_the_cpu() -> None:
    cpu = Hardware(kind="CPU", gpu_count=0, source="test")
    selection = select_recipe("SmolLM2-135M-Instruct".lower(), cpu, catalog=SHIPPED)
    assert selection.recipe.id == SMOLLM
    assert selection.gpu_count == 1


def test_custom_dir_from_the_env_overrides_a_shipped_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_recipe(tmp_path, maturity="unoptimized")  # same id as the shipped Qwen recipe
    monkeypatch.setenv(RECIPES_PATH_ENV, str(tmp_path))
    catalog = load_catalog()
    selection = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=catalog)
    assert selection.recipe.tier == "custom"
    assert selection.recipe.path == str(tmp_path / "Qwen/Qwen3-32B/vllm-mi300x-bf16-latency.yaml")
    assert selection.gpu_count == 2  # the custom file has profiles 1 and 2 only
    assert any(reason.startswith(f"custom {QWEN_MI300X} overrides") for reason in selection.reasons)


def test_custom_tier_beats_model_specific_even_at_lower_maturity(tmp_path: Path) -> None:
    write_recipe(tmp_path, model_dir="mine", precision="fp16", maturity="unoptimized")
    selection = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=custom_catalog(tmp_path))
    assert selection.recipe.id == "mine/vllm-mi300x-fp16-latency"
    assert f"ranked above {QWEN_MI300X}: its tier (custom) comes first in the search order" in (
        selection.reasons
    )


def test_priority_beats_precision_within_a_tier(tmp_path: Path) -> None:
    write_recipe(tmp_path, precision="fp8", priority=0)
    write_recipe(tmp_path, precision="bf16", priority=5)
    selection = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=custom_catalog(tmp_path))
    assert selection.recipe.precision == "bf16"


def test_maturity_breaks_ties(tmp_path: Path) -> None:
    write_recipe(tmp_path, model_dir="a", maturity="preview")
    write_recipe(tmp_path, model_dir="b", maturity="optimized")
    selection = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=custom_catalog(tmp_path))
    assert selection.recipe.id == "b/vllm-mi300x-bf16-latency"


def test_metric_filters_and_defaults_to_latency(tmp_path: Path) -> None:
    write_recipe(tmp_path, metric="throughput", priority=9)
    write_recipe(tmp_path, metric="latency")
    catalog = custom_catalog(tmp_path)
    chosen = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=catalog).recipe
    assert chosen.metric == "latency"
    chosen = select_recipe("Qwen/Qwen3-32B", mi300x(8), metric="throughput", catalog=catalog)
    assert chosen.recipe.id == "Qwen/Qwen3-32B/vllm-mi300x-bf16-throughput"


def test_no_recipe_lists_what_would_fit() -> None:
    with pytest.raises(NoRecipeError) as caught:
        select_recipe(
            "meta-llama/Llama-3.3-70B-Instruct",
            mi300x(8),
            gpu_count=4,
            precision="fp8",  # rules out the BF16 general fallback, which has 4 GPUs
            catalog=SHIPPED,
        )
    message = str(caught.value)
    assert "no recipe for meta-llama/Llama-3.3-70B-Instruct on MI300X (GPUs: exactly 4" in message
    assert f"{LLAMA70B} (meta-llama/Llama-3.3-70B-Instruct on MI300X, fp8, latency, 2/8 GPUs)" in (
        message
    )
    assert "general/vllm-mi355x-bf16 (any model on MI355X" in message
    assert "\n" not in message


def test_no_recipe_for_a_model_on_hardware_without_recipes() -> None:
    unknown = Hardware(kind="MI250X", gpu_count=4, source="test")
    with pytest.raises(NoRecipeError, match=f"would fit: {QWEN_MI300X}"):
        select_recipe("Qwen/Qwen3-32B", unknown, catalog=SHIPPED)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"precision": "fp9"}, "unknown precision 'fp9'"), ({"metric": "speed"}, "unknown metric")],
)
def test_bad_choices_are_recipe_errors(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=SHIPPED, **kwargs)


# --------------------------------------------------------------------------- validation


def profile(**engine_args: Any) -> dict[str, Any]:
    return {"engine_args": {"tensor_parallel_size": 1, "max_num_seqs": 64, **engine_args}}


@pytest.mark.parametrize(
    ("changes", "located"),
    [
        (
            {"profiles": {1: profile(max_num_seq=64)}},
            "profiles.1.engine_args.max_num_seq: Extra inputs are not permitted",
        ),
        ({"maturtiy": "optimized"}, "maturtiy: Extra inputs are not permitted"),
        (
            {"profiles": {2: profile()}},
            "profile 2: tensor_parallel_size is 1 but the profile is for 2 GPUs",
        ),
        ({"env": {"ROCR_VISIBLE_DEVICES": "0"}}, "env: ROCR_VISIBLE_DEVICES must not be set"),
        (
            {"profiles": {1: {**profile(), "env": {"VLLM_USE_TRITON_FLASH_ATTN": "0"}}}},
            "profiles.1.env: VLLM_USE_TRITON_FLASH_ATTN must not be set: a deprecated vLLM V0",
        ),
        (
            {"profiles": {1: {"engine_args": {"tensor_parallel_size": 1}}}},
            "profile 1: set engine_args.max_num_seqs explicitly",
        ),
        ({"profiles": {1: profile(gpu_memory_utilization=1.5)}}, "gpu_memory_utilization"),
        ({"profiles": {1: profile(**{"max-model-len": 8})}}, "max-model-len → max_model_len"),
        (
            {"profiles": {1: profile(extra={"max_num_seqs": 8})}},
            "set max_num_seqs as named engine_args, not under extra",
        ),
        (
            {
                "profiles": {
                    1: {**profile(), "ray": {"accelerator_type": "AMD-Instinct-MI325X-OAM"}}
                }
            },
            "accelerator_type AMD-Instinct-MI325X-OAM is not a MI300X",
        ),
        ({"env": {"HSA_NO_SCRATCH_RECLAIM": True}}, "quote the value"),
        ({"profiles": {}}, "profiles: Dictionary should have at least 1 item"),
    ],
)
def test_invalid_recipes_give_located_errors(
    tmp_path: Path, changes: dict[str, Any], located: str
) -> None:
    path = write_recipe(tmp_path, **changes)
    with pytest.raises(RecipeError) as caught:
        load_recipe_file(path, root=tmp_path)
    assert str(caught.value).startswith(f"{path}: ")
    assert located in str(caught.value)


def test_cpu_recipes_take_no_gpu_options(tmp_path: Path) -> None:
    bad_profile = {**profile(), "ray": {"placement_group": {"bundle_per_worker": {"GPU": 1}}}}
    path = write_recipe(tmp_path, hardware="CPU", profiles={1: bad_profile})
    with pytest.raises(RecipeError, match="must not ask for GPUs"):
        load_recipe_file(path, root=tmp_path)


def test_file_name_must_say_what_the_file_is(tmp_path: Path) -> None:
    path = write_recipe(tmp_path)
    renamed = path.with_name("vllm-mi300x-fp8-latency.yaml")
    path.rename(renamed)
    with pytest.raises(RecipeError, match="should be named vllm-mi300x-bf16-latency.yaml"):
        load_recipe_file(renamed, root=tmp_path)


def test_the_id_comes_from_the_path_not_the_file(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, id="mine")
    with pytest.raises(RecipeError, match="come from the file's place"):
        load_recipe_file(path, root=tmp_path)
    path.write_text(path.read_text().replace("id: mine\n", ""))
    assert load_recipe_file(path, root=tmp_path).id == "Qwen/Qwen3-32B/vllm-mi300x-bf16-latency"


def test_env_numbers_become_strings(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, env={"NCCL_MIN_NCHANNELS": 112})
    assert load_recipe_file(path, root=tmp_path).env == {"NCCL_MIN_NCHANNELS": "112"}


def test_a_missing_custom_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not a directory"):
        load_catalog(custom_dirs=[tmp_path / "nope"])


def test_shipped_recipes_are_found_in_the_source_tree() -> None:
    assert packaged_recipes_dir() == Path(catalog_module.__file__).resolve().parents[2] / "recipes"


def test_installed_recipes_are_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "_recipes").mkdir()
    monkeypatch.setattr(catalog_module.importlib.resources, "files", lambda package: tmp_path)
    assert packaged_recipes_dir() == tmp_path / "_recipes"


# --------------------------------------------------------------------------- CLI

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture
def no_gpu_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--hardware auto`` must find the CPU whatever the machine has: one with native bf16."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(RECIPES_PATH_ENV, raising=False)
    monkeypatch.setattr(hardware_module, "CPUINFO", CPUINFO / "avx512-bf16_epyc.txt")


@pytest.mark.parametrize(
    ("cpuinfo", "recipe", "dtype", "why"),
    [
        (
            "avx512-bf16_epyc.txt",
            SMOLLM,
            "bfloat16",
            "hardware: CPU with avx512_bf16, native bf16",
        ),
        (
            "avx2_epyc.txt",
            SMOLLM_FP32,
            "float32",
            f"ranked above {SMOLLM}: this CPU (avx2) has no native bf16",
        ),
        (
            "amx-bf16_xeon.txt",
            SMOLLM_FP32,
            "float32",
            f"ranked above {SMOLLM}: on this CPU (amx_bf16) vLLM's AMX bf16 kernels answer wrongly",
        ),
    ],
)
def test_cli_select_chooses_the_cpu_dtype_from_its_flags(
    no_gpu_tools: None,
    monkeypatch: pytest.MonkeyPatch,
    cpuinfo: str,
    recipe: str,
    dtype: str,
    why: str,
) -> None:
    monkeypatch.setattr(hardware_module, "CPUINFO", CPUINFO / cpuinfo)
    args = ["recipes", "select", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct"]
    result = runner.invoke(app, [*args, "--hardware", "CPU"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{recipe} on the CPU")
    assert why in result.output
    assert f"dtype: {dtype}" in result.output


def test_cli_list_filters_by_model_and_hardware(no_gpu_tools: None) -> None:
    result = runner.invoke(app, ["recipes", "list", "--model", "meta-llama/Llama-3.1-8B-Instruct"])
    assert result.exit_code == 0, result.output
    assert LLAMA8B_FP8 in result.output and "general/vllm-mi325x-bf16" in result.output
    assert QWEN_MI300X not in result.output
    result = runner.invoke(app, ["recipes", "list", "--hardware", "cpu"])
    assert SMOLLM in result.output and "general/" not in result.output


def test_cli_show_prints_the_file_and_its_llm_configs(no_gpu_tools: None) -> None:
    result = runner.invoke(app, ["recipes", "show", LLAMA70B, "--gpus", "8"])
    assert result.exit_code == 0, result.output
    assert "model_source: amd/Llama-3.3-70B-Instruct-FP8-KV" in result.output
    assert "LLMConfig for 8 x MI300X:" in result.output
    assert "LLMConfig for 2 x MI300X:" not in result.output
    assert "tensor_parallel_size: 8" in result.output


def test_cli_select_explains_its_choice(no_gpu_tools: None) -> None:
    args = ["recipes", "select", "--model", "Qwen/Qwen3-32B", "--hardware", "MI300X", "--gpus", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{QWEN_MI300X} on 4 x MI300X" in result.output
    assert "rejected Qwen/Qwen3-32B/vllm-mi355x-bf16-latency: built for MI355X" in result.output


def test_cli_select_json_on_the_detected_cpu(no_gpu_tools: None) -> None:
    args = ["recipes", "select", "--model", "smollm2-135m-instruct", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["recipe"], data["gpu_count"], data["hardware"]["kind"]) == (SMOLLM, 1, "CPU")
    assert LLMConfig.model_validate(data["llm_config"]).model_id == "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["select", "--model", "Qwen/Qwen3-32B"], "error: no recipe for Qwen/Qwen3-32B on CPU"),
        (["show", "no/such/recipe"], "error: no recipe 'no/such/recipe'"),
        (["list", "--hardware", "H100"], "error: unknown hardware 'H100'"),
        (
            ["select", "--model", "x", "--hardware", "MI300X", "--metric", "fast"],
            "error: unknown metric 'fast'",
        ),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(
    no_gpu_tools: None, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["recipes", *args])
    assert result.exit_code == 2
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_mcp_prefers_a_recipe_whose_model_calls_tools(tmp_path: Path) -> None:
    write_recipe(tmp_path, model_dir="mine")  # custom tier, but no tool-call parser
    catalog = custom_catalog(tmp_path)
    plain = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=catalog)
    assert plain.recipe.id == "mine/vllm-mi300x-bf16-latency"

    chosen = select_recipe("Qwen/Qwen3-32B", mi300x(8), catalog=catalog, mcp=True)
    assert chosen.recipe.id == QWEN_MI300X
    assert chosen.recipe.tool_call_parser(chosen.gpu_count) == "hermes"
    assert "ranked above mine/vllm-mi300x-bf16-latency: its model calls tools (MCP asked for)" in (
        chosen.reasons
    )
    assert any(r.startswith("MCP: it calls tools (vLLM's hermes parser)") for r in chosen.reasons)


def test_mcp_says_when_no_recipe_calls_tools(tmp_path: Path) -> None:
    write_recipe(tmp_path, model_dir="acme/plain-model", model_id="acme/plain-model")
    selection = select_recipe(
        "acme/plain-model", mi300x(8), catalog=custom_catalog(tmp_path), mcp=True
    )
    assert any(r.startswith("MCP: no recipe for this model calls tools") for r in selection.reasons)
