"""The Kafka bridge: consumes input topics and turns each event into a Celery canvas.

Import rule: ``bridges`` imports ``chimera`` (and task signatures from ``tasks``);
nothing imports ``bridges``.
"""
