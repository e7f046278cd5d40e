"""`UsageBudgetMiddleware`: a `Budget` for `langchain.agents.create_agent` agents.

The middleware checks the budget before each of the agent's model calls and
counts each call's exact, cache-aware cost when it returns. Session and day
totals live in the same per-log ledger `track_usage(..., budget=...)` uses, so
the two compose: a call counted by a tracked scope's budget is not counted again
here, and both see each other's spend at once.

Imports langchain (v1) when loaded: `from agent_usage.middleware import
UsageBudgetMiddleware`, never from `agent_usage` itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command
from typing_extensions import NotRequired

from ._budget import Budget, BudgetExceeded
from ._budget_guard import BudgetGuard, recording_calls
from ._ledger import ledger_for
from ._pricing import Pricer, PricesArg, pricer_for
from ._scope import active_scopes
from ._usage import normalize_usage

__all__ = ["UsageBudgetMiddleware"]

# Config metadata LangGraph and LangSmith add to every node: not the user's keys.
_INTERNAL_PREFIXES = ("langgraph_", "ls_", "checkpoint_", "lc_")


class UsageBudgetState(AgentState[Any]):
    """The agent state with what the current run has spent (not checkpointed)."""

    budget_run_usd: NotRequired[Annotated[float, UntrackedValue, PrivateStateAttr]]
    budget_run_tokens: NotRequired[Annotated[int, UntrackedValue, PrivateStateAttr]]


def _limit_message(exc: BudgetExceeded) -> str:
    if exc.unit == "usd":
        shown = f"${exc.spent:.6g} spent of a ${exc.limit:.6g} limit"
    else:
        shown = f"{exc.spent:,.0f} tokens spent of a {exc.limit:,.0f}-token limit"
    return f"Usage budget reached: {exc.scope} limit ({shown}). The agent stopped here."


def _session_and_metadata(runtime: Runtime[Any] | None) -> tuple[str | None, dict[str, Any]]:
    """The session id (metadata session_id, else thread_id) and the user's metadata.

    From the run's config; on Python 3.10 an async node has no config in its
    context (no context for asyncio tasks there), so only the runtime's thread_id.
    """
    try:
        config: Mapping[str, Any] = get_config()
    except RuntimeError:
        info = getattr(runtime, "execution_info", None)
        thread = getattr(info, "thread_id", None)
        return (str(thread) if thread is not None else None), {}
    metadata = config.get("metadata") or {}
    session = metadata.get("session_id")
    if not isinstance(session, str):
        thread = (config.get("configurable") or {}).get("thread_id")
        session = str(thread) if thread is not None else None
    user = {
        k: v
        for k, v in metadata.items()
        if isinstance(k, str) and not k.startswith(_INTERNAL_PREFIXES)
    }
    return session, user


class UsageBudgetMiddleware(AgentMiddleware[UsageBudgetState, Any, Any]):
    """Stops a `create_agent` agent when a `Budget` limit is reached.

    Before each model call of the agent, the budget's invoke limits are checked
    against what this run has spent, and its session and day limits against the
    log's ledger (the session is the config's `metadata["session_id"]`, else its
    `thread_id`; `day_key` values come from the config's metadata). After each
    call its usage is priced and counted. The call in flight when a limit is
    crossed completes and is counted (see `Budget` for the over-spend bound).

    The middleware sees the agent's own model calls; for calls made inside tools
    or sub-agents, use `track_usage(..., budget=...)`, which composes with it.
    On Python 3.10, LangGraph gives an async node no config, so async invokes
    there take the session from the thread_id and see no metadata for `day_key`.

    Args:
        budget: the limits.
        log: the `EventLog` (or its path) whose events hold earlier spend; the
            same log as `track_usage`'s, so that both share one ledger. None:
            only this process's calls count toward session and day limits.
        exit_behavior: "end": the agent stops with a final `AIMessage` that says
            which limit was reached and what was spent; "error": the invoke
            raises `BudgetExceeded`.
        prices: price overrides, as for `track_usage`.

    Raises:
        TypeError: `budget` is not a `Budget`.
        ValueError: `exit_behavior` is not "end" or "error".
    """

    state_schema = UsageBudgetState

    def __init__(
        self,
        budget: Budget,
        *,
        log: object = None,
        exit_behavior: Literal["end", "error"] = "end",
        prices: PricesArg | Pricer = None,
    ) -> None:
        super().__init__()
        if not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget, got {budget!r}")
        if exit_behavior not in ("end", "error"):
            raise ValueError(f"exit_behavior must be 'end' or 'error', got {exit_behavior!r}")
        self.budget = budget
        self.exit_behavior = exit_behavior
        self._guard: BudgetGuard = budget._guard(log=log, pricer=pricer_for(prices))

    # ------------------------------------------------------------ before the call

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: UsageBudgetState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Refuse the next model call when a limit is reached (end or raise)."""
        session, metadata = _session_and_metadata(runtime)
        try:
            self._guard.check(
                session_id=session,
                metadata=metadata,
                model=None,
                invoke_usd=state.get("budget_run_usd", 0.0),
                invoke_tokens=state.get("budget_run_tokens", 0),
            )
        except BudgetExceeded as exc:
            if self.exit_behavior == "error":
                raise
            return {"jump_to": "end", "messages": [AIMessage(content=_limit_message(exc))]}
        return None

    @hook_config(can_jump_to=["end"])
    async def abefore_model(
        self, state: UsageBudgetState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async `before_model`."""
        return self.before_model(state, runtime)

    # ------------------------------------------------------------ around the call

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Make the call (unless its model cannot be priced), then count what it spent."""
        refused = self._refuse_unpriced(request)
        if refused is not None:
            return refused
        with recording_calls() as recorded:
            response = handler(request)
        return self._count(request, response, recorded)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Async `wrap_model_call`."""
        refused = self._refuse_unpriced(request)
        if refused is not None:
            return refused
        with recording_calls() as recorded:
            response = await handler(request)
        return self._count(request, response, recorded)

    def _refuse_unpriced(self, request: ModelRequest[Any]) -> ExtendedModelResponse[Any] | None:
        """A final answer instead of a call whose model has no price (or raise)."""
        model = request.model._get_ls_params().get("ls_model_name")
        session, _ = _session_and_metadata(request.runtime)
        try:
            self._guard.check_model(model if isinstance(model, str) else None, session)
        except BudgetExceeded as exc:
            if self.exit_behavior == "error":
                raise
            answer = AIMessage(content=f"Usage budget: {exc} The agent stopped here.")
            return ExtendedModelResponse(model_response=ModelResponse(result=[answer]))
        return None

    def _count(
        self, request: ModelRequest[Any], response: ModelResponse[Any], recorded: list[object]
    ) -> ExtendedModelResponse[Any]:
        message = next((m for m in response.result if isinstance(m, AIMessage)), None)
        usd, tokens = self._spend(request, message)
        if tokens and self._guard.ledger not in recorded:
            # No tracked scope's budget counted this call in our ledger: count it here.
            session, metadata = _session_and_metadata(request.runtime)
            self._guard.record(
                call_id=None,
                invoke_ids=self._tracked_here(),
                session_id=session,
                metadata=metadata,
                usd=usd,
                tokens=tokens,
            )
        state: Mapping[str, Any] = request.state
        update = {
            "budget_run_usd": state.get("budget_run_usd", 0.0) + (usd or 0.0),
            "budget_run_tokens": state.get("budget_run_tokens", 0) + tokens,
        }
        return ExtendedModelResponse(model_response=response, command=Command(update=update))

    def _tracked_here(self) -> tuple[str, ...]:
        """The tracked invokes running here whose events go to our log.

        Their events will hold this call: the ledger skips them when it reads
        them back, since the call is counted here already.
        """
        ledger = self._guard.ledger
        return tuple(
            scope.invoke_id
            for scope in active_scopes().scopes
            if scope.tracker.sink is not None and ledger_for(scope.tracker.sink) is ledger
        )

    def _spend(
        self, request: ModelRequest[Any], message: BaseMessage | None
    ) -> tuple[float | None, int]:
        """(usd or None when unpriced, tokens) of one model answer."""
        usage = normalize_usage(message) if message is not None else None
        if usage is None:
            return 0.0, 0
        meta = getattr(message, "response_metadata", None) or {}
        params = request.model._get_ls_params()
        model = meta.get("model_name") or meta.get("model") or params.get("ls_model_name")
        provider = params.get("ls_provider")
        tokens = usage.total_tokens or 0
        if not isinstance(model, str):
            return None, tokens
        usd = self._guard.pricer.cost(model, provider, usage)
        if usd is None and self.budget._has_usd:
            self._guard.unpriced_after_call(model)
        return usd, tokens
