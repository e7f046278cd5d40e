# Sourced by scripts/test.sh and scripts/lock.sh: the pinned uv, and Pythons from pyenv.
UV_VERSION=0.13.8
UV=.tools/bin/uv
export UV_PYTHON_DOWNLOADS=never

# uv, pinned, in .tools/ (installed with the interpreter's own pip when missing or other).
ensure_uv() {
  if [ ! -x "$UV" ] || [ "$("$UV" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    printf '\n=== %s ===\n' "installing uv $UV_VERSION into .tools/"
    python3 -m venv .tools
    .tools/bin/python -m pip install -q "uv==$UV_VERSION"
  fi
}

# A Python of the given minor version from pyenv or PATH; uv never downloads one.
find_python() {
  local want=$1 cand
  for cand in "$(pyenv root 2>/dev/null)"/versions/"$want".*/bin/python"$want" \
              "$HOME"/.pyenv/versions/"$want".*/bin/python"$want" \
              "$(command -v "python$want" 2>/dev/null)"; do
    if [ -n "$cand" ] && [ -x "$cand" ] && "$cand" -c 'import sys' 2>/dev/null; then
      echo "$cand"
      return 0
    fi
  done
  echo "scripts: no Python $want found (pyenv or python$want on PATH)" >&2
  return 1
}
