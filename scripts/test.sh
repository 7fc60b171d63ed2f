#!/usr/bin/env bash
# The whole suite: C tests (decoder vectors, truncation, noise), then jest's unit and
# integration projects. Integration tests need root (namespaces, pidfds, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -C native test
npx jest --ci --runInBand "$@"
