"""The public surface: exactly what DESIGN.md and the issues name, nothing else."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import agent_usage

ROOT = Path(__file__).resolve().parent.parent


def test_all_is_exactly_the_public_api() -> None:
    """agent_usage.__all__ is the documented API and every name in it exists."""
    assert sorted(agent_usage.__all__) == sorted(
        [
            "Budget",
            "BudgetExceeded",
            "EventLog",
            "EventReader",
            "LlmUsageEvent",
            "ModelUsage",
            "TrackedRunnable",
            "Usage",
            "UsageCallbackHandler",
            "afollow",
            "follow",
            "normalize_usage",
            "read_events",
            "report",
            "track_usage",
            "tracking",
        ]
    )
    for name in agent_usage.__all__:
        assert getattr(agent_usage, name) is not None


def test_public_types_live_in_the_public_module() -> None:
    """Every public class, including the types in public signatures, says agent_usage."""
    for name in agent_usage.__all__:
        obj = getattr(agent_usage, name)
        if isinstance(obj, type):
            assert obj.__module__ == "agent_usage", name


def test_optional_extras_are_not_imported_by_the_package() -> None:
    """Importing agent_usage (and its CLI) pulls in no optional integration."""
    code = (
        "import sys, agent_usage, agent_usage._cli; agent_usage._cli._build_parser(); "
        "bad = [m for m in ('opentelemetry', 'posthog', 'duckdb') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_module_has_a_docstring() -> None:
    """Each module of the package says what it is for."""
    for path in sorted((ROOT / "agent_usage").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        module = importlib.import_module(".".join(rel.parts).removesuffix(".__init__"))
        assert module.__doc__, f"{rel} has no docstring"


def _imports(path: Path, module: str) -> set[str]:
    """The absolute names of the modules `path` (module `module`) imports, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_only_the_commands_import_command_code() -> None:
    """No library module imports agent_usage._cli, lazily or not: data flows into the CLI."""
    offenders = []
    for path in sorted((ROOT / "agent_usage").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        if module.startswith("agent_usage._cli") or module == "agent_usage.__main__":
            continue
        cli = [n for n in _imports(path, module) if n.split(".")[:2] == ["agent_usage", "_cli"]]
        if cli:
            offenders.append(f"{module}: {', '.join(sorted(cli))}")
    assert offenders == []
