"""The local stack: the LLM simulator, the Kafka broker, Celery worker(s), Flower,
beat, the bridge and the web app as OS processes.

``up`` starts what is missing in dependency order and waits for each to be
ready; ``status`` reports one line per component; ``down`` stops everything it
started.  Redis and Postgres are the machine's own services: the stack checks
them and says how to start them, it does not run them.
"""

from chimera.stack.control import ComponentStatus, down, status, up

__all__ = ["ComponentStatus", "down", "status", "up"]
