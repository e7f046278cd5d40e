#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run). On a fresh machine it:
#   1. installs Debian's chromium when missing (the HTML dashboard and the docs site are
#      checked in a real headless browser);
#   2. installs uv, pinned, into .tools/ (with the interpreter's own pip);
#   3. lint and types, pinned from uv.lock: ruff check, ruff format --check, mypy --strict;
#   4. the docs site: mkdocs build --strict;
#   5. the suite on the newest supported Python (3.13, .venv-test) and on the lowest (3.10,
#      .venv-py3.10), each installed exactly from uv.lock;
#   6. the suite once more at the lowest versions the library allows (requirements/
#      lowest-direct.txt, compiled by scripts/lock.sh with --resolution lowest-direct),
#      which proves the lower bounds in pyproject.toml are true.
# pytest's exit code 5 ("no tests ran") is a failure.
#
#   bash scripts/test.sh             everything above (CI)
#   bash scripts/test.sh --quick     lint + the suite on 3.13 only (while developing)
#   bash scripts/test.sh --latest    lint + the suite against the newest releases of every
#                                    dependency, ignoring the lock: run it before refreshing
#                                    the lock, and whenever LangChain/LangGraph ship a release,
#                                    to see an upstream break before users do
# Extra arguments after the mode go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/_tools.sh
mode=ci
case "${1:-}" in
  --quick) mode=quick; shift ;;
  --latest) mode=latest; shift ;;
esac

step() { printf '\n=== %s ===\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's chromium (browser tests)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

ensure_uv
export UV_NO_PROGRESS=1
# litellm fetches its model price map over the network at import unless told not to.
export LITELLM_LOCAL_MODEL_COST_MAP=True

PY313=$(find_python 3.13)

# sync VENV PYTHON: the venv holds exactly what uv.lock pins (dev group and every extra).
sync() {
  UV_PROJECT_ENVIRONMENT=$1 "$UV" sync -q --frozen --all-extras --python "$2"
}

run_pytest() {
  local venv=$1
  shift
  set +e
  "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests; that is a failure" >&2
    return 1
  fi
  return "$status"
}

lint() {
  local venv=$1
  step "lint and types ($("$venv/bin/ruff" --version), $("$venv/bin/mypy" --version | cut -d' ' -f1-2))"
  "$venv/bin/ruff" check agent_usage tests bench
  "$venv/bin/ruff" format --check agent_usage tests bench
  "$venv/bin/mypy"
}

if [ "$mode" = latest ]; then
  step "newest releases of everything (ignoring uv.lock), Python 3.13"
  rm -rf .venv-latest
  "$UV" venv -q --python "$PY313" .venv-latest
  "$UV" pip install -q --python .venv-latest/bin/python --upgrade --group dev \
    -e '.[otel,posthog,litellm,duckdb,parquet]'
  lint .venv-latest
  step "tests, newest releases"
  run_pytest .venv-latest -q "$@"
  exit
fi

sync .venv-test "$PY313"
lint .venv-test

if [ "$mode" = ci ] && [ -f mkdocs.yml ]; then
  step "docs: mkdocs build --strict"
  NO_MKDOCS_2_WARNING=1 .venv-test/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
fi

step "tests, Python 3.13, locked"
run_pytest .venv-test -q "$@"
[ "$mode" = quick ] && exit 0

PY310=$(find_python 3.10)
sync .venv-py3.10 "$PY310"
step "tests, Python 3.10, locked"
run_pytest .venv-py3.10 -q "$@"

step "tests, Python 3.10, lowest allowed versions (requirements/lowest-direct.txt)"
rm -rf .venv-lowest
"$UV" venv -q --python "$PY310" .venv-lowest
"$UV" pip sync -q --python .venv-lowest/bin/python requirements/lowest-direct.txt
"$UV" pip install -q --python .venv-lowest/bin/python --no-deps -e .
run_pytest .venv-lowest -q "$@"
