#!/usr/bin/env bash
# Creates (once) the venv that runs PyPI pyisolate for the comparison benchmark.
# Idempotent: a stamp file records the pinned set; a matching stamp means nothing to do.
# Prints one line: where the venv is and how long this took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.work/pyisolate-venv"
# torch is pinned to the CPU wheel in /opt/wheels (pip's find-links); pyisolate's
# installer imports torch even when share_torch is off, so the host venv needs it.
# numpy: the tensor scenario passes numpy arrays from pyisolate's host too.
pins=(pyisolate==0.10.2 torch==2.13.0 numpy==2.2.6 uv)
stamp="$venv/.bench-pins"
log="$here/.work/setup-pyisolate.log"

start=$EPOCHREALTIME
mkdir -p "$here/.work"

if [[ -f "$stamp" && "$(cat "$stamp")" == "${pins[*]}" ]] && "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ['pyisolate', 'torch', 'numpy', 'uv'])))" 2>/dev/null; then
  state="cached"
else
  rm -rf "$venv"
  python3 -m venv "$venv" >"$log" 2>&1
  if ! "$venv/bin/python" -m pip install --quiet "${pins[@]}" >>"$log" 2>&1; then
    echo "setup-pyisolate: pip install failed, see $log" >&2
    exit 1
  fi
  echo "${pins[*]}" >"$stamp"
  state="created"
fi

end=$EPOCHREALTIME
awk -v s="$start" -v e="$end" -v st="$state" -v v="$venv" \
  'BEGIN { printf "setup-pyisolate: %s %s in %.1fs\n", st, v, e - s }'
