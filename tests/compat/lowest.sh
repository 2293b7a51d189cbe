#!/usr/bin/env bash
# The quick tier on the lowest versions pyproject.toml admits, in a fresh venv; the result becomes
# the "lowest-direct" row of docs/compat.md (tests/compat/test_floors.py checks the floors
# against that table).
#
#   tests/compat/lowest.sh [VENV]            (default /tmp/fpq-lowest; about 10 minutes on 2 cores)
#
# uv resolves the direct requirements at their lowest (`--resolution lowest-direct`), the
# transitive ones at their highest; pip installs that list. torch and torchvision are pinned to
# TORCH / TORCHVISION (default: the lowest pair that installs on this project's CPU machines,
# from their disk): a pair is a build, and a lower one is tried where it installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-/tmp/fpq-lowest}
TORCH=${TORCH:-2.14.1}
TORCHVISION=${TORCHVISION:-0.29.1}
PY=$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

command -v uv >/dev/null || python -m pip install -q uv
rm -rf "$VENV" && python -m venv "$VENV"
printf 'torch==%s\ntorchvision==%s\n' "$TORCH" "$TORCHVISION" > "$VENV/pair.txt"
uv pip compile pyproject.toml --extra test --extra slurm --resolution lowest-direct --python-version "$PY" \
    --override "$VENV/pair.txt" --quiet -o "$VENV/lowest.txt"
export PATH="$VENV/bin:$PATH"  # the workflow tests start `fpq` and `snakemake` from PATH: this venv's
"$VENV/bin/python" -m pip install -q -r "$VENV/lowest.txt"
"$VENV/bin/python" -m pip install -q --no-deps -e .

set +e
# tests/compat checks docs/compat.md against pyproject.toml, not the versions: left out here, as the
# table would otherwise grade the row this run is about to write
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --ignore=tests/compat 2>&1 | tee "$VENV/pytest.log" | tail -15
status=${PIPESTATUS[0]}
set -e
"$VENV/bin/python" tests/compat/record.py lowest-direct "$VENV/pytest.log" docs/compat.md
exit "$status"
