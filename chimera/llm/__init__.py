"""The LLM layer: provider adapters, fleet-wide governance, accounting.

Build it with ``chimera.llm.registry.build_client(settings, ...)`` and call
``LLMClient.complete`` / ``complete_structured``.  Modules here import nothing
from this package's ``__init__`` (kept empty so ``chimera.settings`` can be
imported by every adapter without cycles).
"""
