"""Real servers and processes that fault-injection tests may stop, pause, kill or wipe.

Each module is one concept: private servers (``servers``), the Kafka broker behind a
proxy (``kafka_proxy``), Chimera's own processes (``procs``), the stack they form
(``stack``), the invariants every fault is followed by (``invariants``) and the
figures a test records (``results``).
"""
