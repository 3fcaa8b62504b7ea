"""Celery tasks: thin adapters (ids in, one chimera call, retry policy out).

Import rule: ``tasks`` imports ``chimera``; ``chimera`` never imports ``tasks``.
The app lives in ``tasks.app`` (factory) and ``tasks.worker`` (the module
``celery -A tasks.worker`` loads).  Never name a module ``celery.py``.
"""
