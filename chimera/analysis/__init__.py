"""The four analyses of a text or stored conversation, and how they are aggregated.

``prompts`` addresses each analysis's prompt and output schema by id;
``inputs`` turns a request into the text sent (within a token budget);
``runner`` runs one analysis through the LLM layer; ``bundle`` merges four
results into one bundle and a status; ``service`` ties them together for the
Celery chord and the synchronous endpoint.
"""
