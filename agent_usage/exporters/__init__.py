"""Exporters that send `llm_usage` events beyond the local log (optional extras)."""
