"""Where a value goes in the generated JSON: its property name, its index in an array, the
sentence its object is about, and how deep it is.  The property name decides the value's
:class:`~llmsim.roles.Role`, so the structure (:mod:`llmsim.structured`) and the text
(:mod:`llmsim.role_text`) agree on what a place is for.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmsim.roles import Role, role_of
from llmsim.textstats import Sentence

#: Recursion stops here: optional and nullable parts are left out below it.
MAX_DEPTH = 8


@dataclass(frozen=True)
class Slot:
    """Where a value goes (see the module docstring)."""

    name: str = ""
    index: int = 0
    focus: Sentence | None = None
    depth: int = 0

    def child(self, name: str, index: int, focus: Sentence | None) -> Slot:
        return Slot(name, index, focus, self.depth + 1)

    @property
    def role(self) -> Role:
        return role_of(self.name)

    @property
    def deep(self) -> bool:
        return self.depth >= MAX_DEPTH
