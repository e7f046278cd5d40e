#!/usr/bin/env bash
# Regenerates docs/dashboard.png: the dashboard of a seeded 30-day log (bench/gen_log.py),
# rendered by headless Chromium at a laptop width. Run after changing the dashboard page.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv-test/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" bench/gen_log.py --lines 3000 --seed 7 "$work/events.jsonl" >/dev/null 2>&1
"$python" -m agent_usage dashboard "$work/events.jsonl" -o "$work/dashboard.html" \
    --session-usd 1.0 --day-usd 10 --title support-agent 2>/dev/null
timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1280,2240 --screenshot="$work/dashboard.png" "file://$work/dashboard.html" \
    >/dev/null 2>&1
cp "$work/dashboard.png" docs/dashboard.png
echo "wrote docs/dashboard.png ($(stat -c %s docs/dashboard.png) bytes)"
