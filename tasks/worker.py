"""Entry module for ``celery -A tasks.worker worker|beat``."""

from tasks import logcontext as _logcontext  # noqa: F401  (connects the logging hooks)
from tasks import runtime as _runtime  # noqa: F401  (connects the lifecycle hooks)
from tasks.app import create_app

app = create_app()
