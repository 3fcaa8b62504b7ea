"""The Flask app: health, metrics, read APIs and synchronous analysis.

Import rule: ``web`` imports ``chimera`` (and may enqueue through ``tasks``);
``chimera`` never imports ``web``.  Views raise ``ChimeraError``s; the one
mapping to HTTP lives in ``web.errors``.
"""

from web.app import create_app

__all__ = ["create_app"]
