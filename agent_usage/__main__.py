"""`python -m agent_usage`: the same as the `agent-usage` command."""

from agent_usage._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
