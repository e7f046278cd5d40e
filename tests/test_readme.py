"""The README's example runs as written and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_example_prints_what_the_readme_says(tmp_path: Path) -> None:
    """The Example section's code, run in a fresh process, prints the line quoted under it."""
    code = re.search(r"## Example.*?```python\n(.*?)```", README, re.S)
    claimed = re.search(r"It prints `([^`]*)`", README)
    assert code and claimed
    out = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == claimed.group(1)


def test_readme_stays_short() -> None:
    """The README is a newcomer's few screens; the reference lives in docs/."""
    assert len(README) < 12_000
