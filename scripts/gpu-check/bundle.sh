#!/bin/bash
# Packs what a GPU machine without Node.js needs to run the CUDA checks (scripts/gpu-check/run.sh): this Node binary
# (xz), node_modules without typescript, and the built native addon, into .tmp/device (about 30 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .tmp/device
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .tmp/device/node.xz
tar czf .tmp/device/node_modules.tgz --exclude=node_modules/typescript node_modules
cp native/build/Release/pyisolate_native.node .tmp/device/ 2>/dev/null || echo "no native addon built: tensors will copy there" >&2
du -sh .tmp/device/*
