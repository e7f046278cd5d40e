#!/usr/bin/env bash
# Refresh the locks that scripts/test.sh installs from (run it on purpose, then run
# `bash scripts/test.sh` and commit the lock files with what changed and why):
#   uv.lock                          newest versions within pyproject.toml's ranges, for
#                                    every supported Python (3.10-3.13) at once
#   requirements/lowest-direct.txt   the lowest version each direct dependency allows, on
#                                    Python 3.10 (proves the lower bounds are true)
# Before refreshing, `bash scripts/test.sh --latest` shows what the newest releases break.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_tools.sh
ensure_uv
py310=$(find_python 3.10)
"$UV" lock --upgrade
"$UV" pip compile pyproject.toml --all-extras --group test --resolution lowest-direct \
  --python-version 3.10 --python "$py310" --quiet --custom-compile-command "bash scripts/lock.sh" \
  -o requirements/lowest-direct.txt
echo "scripts/lock.sh: uv.lock and requirements/lowest-direct.txt refreshed"
