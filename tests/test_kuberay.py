"""``aim-ray render rayservice``: every shipped recipe renders a RayService that the KubeRay
CRD accepts, whose ``serveConfigV2`` is the local application, and the committed
``kuberay/`` examples are exactly what the renderer writes now.

The CRD schema is KubeRay's own (``tests/data/kuberay/rayservice-v1.schema.json``, see
its ``$comment``), checked strictly: a field the schema does not know is an error here,
where the API server would silently drop it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from aim_ray.cli.main import app as cli
from aim_ray.config.app import AppArgs, ModelSpec
from aim_ray.config.mcp import MCPConfig, load_mcp_config
from aim_ray.deploy.examples import EXAMPLES, render_example
from aim_ray.deploy.manifests import network_policy
from aim_ray.deploy.options import RayServiceOptions
from aim_ray.deploy.rayservice import render_rayservice
from aim_ray.deploy.serve_config import pin_model, render_serve_config
from aim_ray.recipes.catalog import load_catalog

REPO = Path(__file__).resolve().parents[1]
KUBERAY = REPO / "kuberay"
SCHEMA = Path(__file__).parent / "data" / "kuberay" / "rayservice-v1.schema.json"
GENERAL_MODEL = "example-org/Example-Model-14B"
runner = CliRunner()


def strict(schema: dict) -> dict:
    """Unknown fields become errors wherever the schema lists the known ones."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(json.loads(SCHEMA.read_text())))


def shipped_cases() -> list[tuple[str, str, ModelSpec]]:
    cases = []
    for recipe in load_catalog().recipes:
        model = GENERAL_MODEL if recipe.is_general else recipe.model_id
        for gpus in recipe.gpu_counts:
            spec = ModelSpec(
                model_id=model,
                hardware=recipe.hardware,
                gpus=None if recipe.hardware == "CPU" else gpus,
                precision=recipe.precision,
                metric=recipe.metric,
            )
            cases.append((f"{recipe.id}@{gpus}", recipe.id, spec))
    return cases


def assert_valid(validator, service: dict) -> None:
    errors = sorted(validator.iter_errors(service), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize(
    ("recipe_id", "spec"), [c[1:] for c in shipped_cases()], ids=[c[0] for c in shipped_cases()]
)
def test_every_shipped_recipe_renders_a_valid_rayservice(validator, recipe_id, spec):
    documents, selection = render_rayservice(spec, RayServiceOptions())
    assert selection.recipe.id == recipe_id
    service = documents[0]
    assert_valid(validator, service)
    ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    groups = {g["groupName"]: g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert groups["services"]["labels"] == {"aim-ray.io/role": "services"}
    if spec.hardware != "CPU":
        engine = groups[spec.hardware.lower()]
        limits = engine["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["amd.com/gpu"] == str(selection.gpu_count)
        assert engine["resources"] == {
            f"accelerator_type:{selection.llm_config()['accelerator_type']}": "1"
        }
        env = {e["name"] for e in engine["template"]["spec"]["containers"][0]["env"]}
        assert set(selection.llm_config()["runtime_env"]["env_vars"]) <= env


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.file for e in EXAMPLES])
def test_committed_examples_are_what_the_renderer_writes(example, validator):
    mcp = load_mcp_config(KUBERAY / example.mcp_config) if example.mcp_config else None
    written = (KUBERAY / example.file).read_text()
    assert written == render_example(example, mcp), "run `aim-ray render examples`"
    assert_valid(validator, next(yaml.safe_load_all(written)))


def cluster_and_local(spec: ModelSpec, mcp) -> tuple[dict, dict]:
    """The rendered serveConfigV2's application and the local serve config's, same input."""
    documents, _ = render_rayservice(spec, RayServiceOptions(), mcp=mcp)
    cluster = yaml.safe_load(documents[0]["spec"]["serveConfigV2"])["applications"][0]
    pinned, _ = pin_model(spec)
    local = render_serve_config(AppArgs(models=[pinned], mcp=mcp))["applications"][0]
    return cluster, local


def built_options(args: dict) -> dict[str, dict]:
    """Each deployment's options as Serve gets them from ``build_app(args)``."""
    from ray.serve._private.build_app import build_app as build_graph

    from aim_ray.serving.app import build_app

    built = build_graph(build_app(args), name="aim-ray")
    return {
        d.name: {
            "ray_actor_options": d.ray_actor_options or {},
            "autoscaling_config": d._deployment_config.autoscaling_config,
            "num_replicas": d.num_replicas,
        }
        for d in built.deployments
    }


def test_serve_config_v2_is_the_local_application_plus_placement():
    spec = ModelSpec(model_id="Qwen/Qwen3-32B", hardware="MI300X", gpus=2)
    mcp = load_mcp_config(KUBERAY / "mcp-providers.yaml")
    cluster, local = cluster_and_local(spec, mcp)
    assert cluster["import_path"] == local["import_path"]
    assert cluster["args"]["models"] == local["args"]["models"]
    cluster_mcp, local_mcp = cluster["args"]["mcp"], local["args"]["mcp"]
    assert cluster_mcp.pop("deployments") != local_mcp.pop("deployments", None)
    assert cluster_mcp == local_mcp
    selector = {"aim-ray.io/role": "services"}
    gateway_actor = cluster["args"]["gateway"]["deployment_config"]["ray_actor_options"]
    assert gateway_actor == {"num_cpus": 0.1, "label_selector": selector}


def test_serve_config_v2_builds_the_same_deployments_as_the_local_config():
    spec = ModelSpec(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        hardware="CPU",
        source="embedded:smollm2-135m-instruct",
    )
    mcp = load_mcp_config(KUBERAY / "mcp-providers.yaml")
    # The example's 4096-token budget is for Qwen3's window; SmolLM2's holds 1536 at most.
    mcp = mcp.model_copy(update={"context": mcp.context.model_copy(update={"max_length": 1024})})
    cluster, local = cluster_and_local(spec, mcp)
    in_cluster, on_laptop = built_options(cluster["args"]), built_options(local["args"])
    assert set(in_cluster) == set(on_laptop)
    assert {"Gateway", "ToolService", "ContextService"} <= set(in_cluster)
    selector = {"aim-ray.io/role": "services"}
    for name in ("Gateway", "ToolService", "ContextService"):
        pinned = in_cluster[name]["ray_actor_options"].pop("label_selector")
        assert pinned == selector
        assert in_cluster[name] == on_laptop[name], name
    # The service defaults (SERVICE_DEFAULTS) still hold under the pin.
    tools = in_cluster["ToolService"]
    assert tools["ray_actor_options"] == {"num_cpus": 0.1}
    assert tools["autoscaling_config"].max_replicas == 4


def test_services_with_fixed_replicas_render_a_buildable_app():
    # num_replicas and the default autoscaling_config must not both reach Serve.
    spec = ModelSpec(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        hardware="CPU",
        source="embedded:smollm2-135m-instruct",
    )
    mcp = MCPConfig.model_validate(
        {"tools": [{"name": "calculator"}], "deployments": {"tools": {"num_replicas": 2}}}
    )
    cluster, _ = cluster_and_local(spec, mcp)
    tools = built_options(cluster["args"])["ToolService"]
    assert tools["num_replicas"] == 2 and tools["autoscaling_config"] is None
    assert tools["ray_actor_options"]["label_selector"] == {"aim-ray.io/role": "services"}


def test_secrets_are_referenced_never_inlined(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_DOCS_DB_PASSWORD", "pg-password-must-not-leak")
    monkeypatch.setenv("AIM_RAY_SECRET_SEARCH_API_TOKEN", "search-token-must-not-leak")
    example = next(e for e in EXAMPLES if e.mcp_config)
    text = render_example(example, load_mcp_config(KUBERAY / example.mcp_config))
    assert "must-not-leak" not in text
    service = next(yaml.safe_load_all(text))
    groups = {g["groupName"]: g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    mounted = {
        v["secret"]["secretName"]
        for v in groups["services"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert mounted == {"docs-db", "chroma-token", "search-api", "aim-ray-api-keys"}
    engine_volumes = groups["mi300x"]["template"]["spec"]["volumes"]
    assert [v["name"] for v in engine_volumes] == ["dshm"]
    container = groups["mi300x"]["template"]["spec"]["containers"][0]
    [hf] = [e for e in container["env"] if e["name"] == "HF_TOKEN"]
    assert hf["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token", "optional": True}


def test_network_policy_opens_the_serve_port_and_the_providers_only():
    mcp = load_mcp_config(KUBERAY / "mcp-providers.yaml")
    policy = network_policy(RayServiceOptions(name="x"), mcp)
    open_ingress = [r for r in policy["spec"]["ingress"] if "from" not in r]
    assert open_ingress == [{"ports": [{"protocol": "TCP", "port": 8000}]}]
    egress_ports = {p["port"] for r in policy["spec"]["egress"] for p in r.get("ports", [])}
    assert egress_ports == {53, 443, 5432, 8000}


def test_cli_writes_the_manifests(tmp_path):
    out = tmp_path / "rs.yaml"
    result = runner.invoke(
        cli,
        [
            "render",
            "rayservice",
            "--model",
            "Qwen/Qwen3-32B",
            "--hardware",
            "MI300X",
            "--gpus",
            "4",
            "--toleration",
            "dedicated=llm:NoSchedule",
            "--node-selector",
            "amd.com/gpu.product-name=MI300X",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Qwen/Qwen3-32B/vllm-mi300x-bf16-latency" in result.output
    kinds = [d["kind"] for d in yaml.safe_load_all(out.read_text())]
    assert kinds == ["RayService", "NetworkPolicy", "PodMonitor"]
    engine = next(yaml.safe_load_all(out.read_text()))["spec"]["rayClusterConfig"][
        "workerGroupSpecs"
    ][1]["template"]["spec"]
    assert engine["nodeSelector"] == {"amd.com/gpu.product-name": "MI300X"}
    assert {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"} in (
        engine["tolerations"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "Qwen/Qwen3-32B", "--hardware", "CPU"], "Qwen/Qwen3-32B"),
        (
            ["--model", "Qwen/Qwen3-32B", "--hardware", "MI300X", "--toleration", "x"],
            "--toleration takes key[=value]:Effect",
        ),
        (
            ["--model", "Qwen/Qwen3-32B", "--hardware", "MI300X", "--min-engine-workers", "3"],
            "min_replicas must not exceed max_replicas",
        ),
        (["--model", "Qwen/Qwen3-32B", "--hardware", "MI300X", "--name", "Bad_Name"], "name"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    result = runner.invoke(cli, ["render", "rayservice", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_engine_group_is_sized_with_the_model_entrys_overrides():
    # The app runs the recipe with the entry's overrides merged in; the pods must fit that.
    base = ModelSpec(model_id="Qwen/Qwen3-32B", hardware="MI300X", gpus=1)
    override = {"ray_actor_options": {"num_cpus": 10}}
    bigger = base.model_copy(update={"deployment_config": override})

    def engine_cpus(spec: ModelSpec) -> int:
        documents, _ = render_rayservice(spec, RayServiceOptions())
        groups = documents[0]["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        engine = next(g for g in groups if g["groupName"] == "mi300x")
        return int(engine["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])

    _, selection = pin_model(base)
    recipe_actor = selection.llm_config()["deployment_config"]["ray_actor_options"]["num_cpus"]
    assert recipe_actor != 10
    assert engine_cpus(bigger) == engine_cpus(base) - recipe_actor + 10


def test_the_gateway_accepts_its_service_names_and_the_hosts_asked_for():
    # Loopback alone (the laptop default) would refuse every in-cluster client with 421.
    spec = ModelSpec(model_id="Qwen/Qwen3-32B", hardware="MI300X", gpus=1)
    options = RayServiceOptions(name="llm", namespace="ai", allowed_hosts=["chat.example.com"])
    documents, _ = render_rayservice(spec, options)
    args = yaml.safe_load(documents[0]["spec"]["serveConfigV2"])["applications"][0]["args"]
    gateway = AppArgs.model_validate(args).gateway
    assert {
        "127.0.0.1:*",
        "llm-serve-svc:*",
        "llm-serve-svc.ai.svc:*",
        "llm-serve-svc.ai.svc.cluster.local:*",
        "chat.example.com",
    } <= set(gateway.allowed_hosts)
    assert gateway.transport_guard().allowed_hosts == gateway.allowed_hosts


# -- from a whole serve config ------------------------------------------------------------


def two_model_config(tmp_path: Path) -> Path:
    """The default serve config with a second model, auth, a foreign host and its mcp:
    section in a file of its own."""
    config = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    args = config["applications"][0]["args"]
    (tmp_path / "mcp.yaml").write_text(yaml.safe_dump({"mcp": args.pop("mcp")}))
    args["mcp_config_file"] = "mcp.yaml"
    args["models"].append(
        {"model_id": "Qwen/Qwen3-32B", "hardware": "MI300X", "gpus": 2, "served_name": "qwen"}
    )
    args["gateway"] = {
        "auth": {"enabled": True, "api_keys_env": "AIM_RAY_API_KEYS"},
        "allowed_hosts": ["llm.example.com"],
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_render_from_a_serve_config_keeps_the_whole_application(
    tmp_path: Path, validator: jsonschema.Draft7Validator
) -> None:
    out = tmp_path / "rayservice.yaml"
    result = runner.invoke(
        cli,
        ["render", "rayservice", "--from", str(two_model_config(tmp_path)), "-o", str(out)]
        + ["--engine-cpu", "12", "--engine-memory", "96Gi", "--services-memory", "12Gi"]
        + ["--service-type", "LoadBalancer", "--ingress-namespace", "apps"],
    )
    assert result.exit_code == 0, result.output
    service, policy, _ = yaml.safe_load_all(out.read_text())
    validator.validate(service)
    app = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]
    assert [m["model_id"] for m in app["models"]] == [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "Qwen/Qwen3-32B",
    ]
    assert "mcp_config_file" not in app  # read in: the pods need no file
    assert [t["name"] for t in app["mcp"]["tools"]] == [
        "calculator",
        "file_reader",
        "vector_search",
    ]
    assert app["gateway"]["auth"]["enabled"] is True
    assert "llm.example.com" in app["gateway"]["allowed_hosts"]

    groups = {g["groupName"]: g for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert set(groups) == {"services", "engine-0", "mi300x-1"}
    engine = groups["mi300x-1"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert engine == {"cpu": "12", "memory": "96Gi", "amd.com/gpu": "2"}
    services = groups["services"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert services == {"cpu": "4", "memory": "12Gi"}
    assert service["spec"]["serveService"]["spec"] == {"type": "LoadBalancer"}
    serve_rule = policy["spec"]["ingress"][0]
    assert serve_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}
    ]
    assert "root docs is a path in the pods" in result.stderr
    assert "API keys are on but no --api-keys-secret" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "Qwen/Qwen3-32B"], "leave out --model, --hardware and --mcp-config"),
        ([], None),
    ],
)
def test_render_from_refusals(tmp_path: Path, args: list[str], message: str | None) -> None:
    config = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    config["applications"][0]["args"]["models"][0]["hardware"] = "auto"
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(cli, ["render", "rayservice", "--from", str(path), *args])
    assert result.exit_code == 2, result.output
    assert (message or "hardware is auto; name the cluster's") in result.stderr


def test_render_needs_a_source() -> None:
    result = runner.invoke(cli, ["render", "rayservice", "--model", "Qwen/Qwen3-32B"])
    assert result.exit_code == 2
    assert "give --from SERVE_CONFIG, or --model and --hardware" in result.stderr
