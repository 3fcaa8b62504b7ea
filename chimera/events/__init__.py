"""The event lifecycle: every input event ends done or dead-lettered, once.

- ``ids``: every id derived from an event (conversations, runs, tasks, output events);
- ``inbox``: the recorded events and ``EventStatus``; the one place a status changes;
- ``intake``: how an event enters (the bridge, the topic queue, analyses of conversations);
- ``deadletters`` / ``letters`` / ``replay`` (+ ``replay_plan``): writing, reading and
  replaying dead letters;
- ``sink``: where output events and workers' dead letters are published;
- ``reconcile``: the loop that re-drives events stuck in flight.

Below ``chimera.conversation`` and ``chimera.analysis`` (which supply their
judgement of a stuck event), above ``chimera.kafka`` and ``chimera.db``.
"""
