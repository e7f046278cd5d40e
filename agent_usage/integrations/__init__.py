"""Integrations with model gateways outside LangChain (optional extras).

- `agent_usage.integrations.litellm.UsageLogger` (extra ``litellm``): a LiteLLM
  callback that writes the same `llm_usage` events for LiteLLM calls.

Each integration imports its SDK when its module is imported, so importing this
package (or `agent_usage`) needs none of them.
"""

from __future__ import annotations

__all__: list[str] = []
