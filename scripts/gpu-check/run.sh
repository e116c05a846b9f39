#!/bin/bash
# The CUDA checks on a GPU machine (run from the repo root after bundle.sh, with .tmp/device carried over): the Python
# CUDA tests between real processes, the Node CUDA tests with real extensions, then doctor. Logs go to $OUT.
D=.tmp/device
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/nodebin
export PATH=/tmp/nodebin:$PATH
python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$D/node.xz'),open('/tmp/nodebin/node','wb'))" && chmod +x /tmp/nodebin/node
[ -d node_modules ] || tar xzf $D/node_modules.tgz
mkdir -p native/build/Release && cp $D/pyisolate_native.node native/build/Release/
{
  node --version; nvidia-smi -L; uname -r; which bwrap uv pip python3
  python3 -c "import torch,sys;print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.device_count())"
  python3 -m pip --version
} 2>&1 | tee "$OUT/env.log"
echo "== python CUDA tests"
[ -n "$SKIP_PY" ] || (cd python && timeout 150 python3 -m unittest tests.test_tensors_cuda tests.test_tensors_cuda_ledger -v) 2>&1 | tee "$OUT/py.log" | tail -30
echo "== node CUDA tests (sandbox ${PYISOLATE_TEST_CUDA_SANDBOX:-preferred})"
# torch lives in a venv here: make the system Python see it (a .pth), so that systemSitePackages reaches it.
SYS_PY=$(python3 -c "import sys;print(sys._base_executable)")
TORCH_SITE=$(python3 -c "import os,torch;print(os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__))))")
SYS_SITE=$($SYS_PY -c "import site;print(site.getsitepackages()[0])")
mkdir -p "$SYS_SITE" && echo "$TORCH_SITE" > "$SYS_SITE/zz_device_torch.pth"
echo "system python $SYS_PY, site $SYS_SITE -> $TORCH_SITE"; $SYS_PY -c "import torch;print('system sees torch', torch.__version__)"
export PYISOLATE_TEST_CUDA_PYTHON=$SYS_PY
timeout 240 node --import tsx --test --test-reporter=spec test/tensor-cuda.test.ts 2>&1 | tee "$OUT/node.log" | grep -v "^\s*$" | tail -60
if grep -q "^not ok\|✖" "$OUT/node.log" && [ -z "$PYISOLATE_TEST_CUDA_SANDBOX" ]; then
  echo "== node CUDA tests again, sandbox disabled"
  PYISOLATE_TEST_CUDA_SANDBOX=disabled timeout 200 node --import tsx --test --test-reporter=spec test/tensor-cuda.test.ts 2>&1 | tee "$OUT/node-nosandbox.log" | tail -40
fi
echo "== doctor"
timeout 60 node --import tsx src/cli.ts doctor 2>&1 | tee "$OUT/doctor.log" | tail -40
