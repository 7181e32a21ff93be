"""The config layer: the application args, the gateway settings and the ``mcp:`` section as
pydantic models, loaded and checked with pydantic, PyYAML and the standard library only (no
Ray, no vLLM, no HTTP client), so that any tool can read a config cheaply."""

# What every aim-ray application in a Serve config names as its ``import_path``: written by
# the renderers, looked for by the validators and the YAML editor.
SERVE_IMPORT_PATH = "aim_ray.app:build_app"

# Where the serve config being deployed lives, for an app's relative `mcp_config_file`:
# set by `aim-ray serve run` in its cluster's environment, read by `build_app`.
SERVE_CONFIG_DIR_ENV = "AIM_RAY_SERVE_CONFIG_DIR"
