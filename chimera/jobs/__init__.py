"""Jobs: datasets of a chosen size (``chimera jobs``, ``/jobs``).

A job is a spec (topics, participants, turns, an optional target of accepted
conversations, budget and quality bar) fed to the one intake path, Kafka's
`conversation.new`, a batch at a time.  Its figures are derived from its
conversations and their LLM calls, never kept twice.
"""
