"""The old home of `main`: kept until the console script names `agent_usage._cli:main`."""

from agent_usage._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
