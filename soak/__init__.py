"""The soak run: the local stack under a steady stream of events and periodic faults.

``python -m soak.run`` (``make soak``); see ``soak/run.py`` for the options.

| module | what |
|---|---|
| `run.py` | the command: set up, publish, inject faults, wait for quiescence, report |
| `environment.py` | the soak's own state dir, ports, database, key prefix, queue; its own Redis |
| `workload.py` | the event mix (conversations, analyses, duplicates, poison); the publisher |
| `faults.py` | the faults, injected in rotation |
| `monitor.py` | RSS samples, settled counts and the progress line |
| `report.py` | what happened to every event, from Postgres, Kafka, the simulator and Redis |
| `table.py` | the report as a table |

Imports run one way: ``soak`` uses ``chimera`` (the stack, settings, Kafka clients);
nothing imports ``soak``.
"""
