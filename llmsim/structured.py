"""Schema-driven JSON: a value that validates against any supported JSON Schema, with content
drawn from the input text where a property's name says what it is for (see :mod:`roles`).

``summary`` is an extractive summary, ``key_points``/``claims`` are salient sentences,
``quote``/``span``/``text`` are exact substrings of the input, ``speaker`` a name from its
``Name:`` lines, ``sentiment``/``label`` a lexicon polarity mapped onto the enum, ``score`` the
polarity scaled into the allowed range.  Objects inside arrays each get a *focus* sentence, so an
item's ``quote`` and ``speaker`` agree.  Everything else is filled from keywords.  This module
builds the structure; what a string says is :mod:`llmsim.role_text`'s.

Optional properties are present four times in five; nullable ones are non-null about six times
in seven; arrays hold two to four items unless the schema says otherwise.  Recursion stops at
``slot.MAX_DEPTH`` (optional and nullable parts are then left out).  ``pattern`` is not honoured.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmsim.constraints import fit_number, fit_text, infer_type, number_bounds
from llmsim.role_text import RoleText
from llmsim.roles import Role, is_plural, name_words, role_of
from llmsim.schema import Resolver, Schema, validate
from llmsim.slot import Slot
from llmsim.source import SourceText


def generate(schema: Any, source: SourceText, rng: random.Random) -> Any:
    """A value for ``schema`` (normalised JSON Schema) built from ``source``."""
    return _Generator(schema, source, rng).value(schema, Slot())


def schema_from_prompt(text: str) -> Schema:
    """A schema for JSON mode without one: the keys the prompt spells out (``"summary": …``).

    Plural names become string arrays, scores and confidences numbers; with no keys in sight the
    answer has ``summary``, ``key_points`` and ``sentiment``.
    """
    names = list(dict.fromkeys(re.findall(r"[\"'`]([A-Za-z_][A-Za-z0-9_]{1,40})[\"'`]\s*:", text)))
    names = names or ["summary", "key_points", "sentiment"]
    properties: dict[str, Any] = {}
    for name in names:
        role = role_of(name)
        if role in {Role.SCORE, Role.CONFIDENCE}:
            properties[name] = {"type": "number"}
        elif role is Role.COUNT:
            properties[name] = {"type": "integer", "minimum": 0}
        elif is_plural(name):
            properties[name] = {"type": "array", "items": {"type": "string"}}
        else:
            properties[name] = {"type": "string"}
    return {"type": "object", "properties": properties, "required": names}


Maker = Callable[[Mapping[str, Any], Slot], Any]


class _Generator:
    def __init__(self, root: Any, source: SourceText, rng: random.Random) -> None:
        self.resolver = Resolver(root)
        self.source = source
        self.rng = rng
        self.by_type: dict[str, Maker] = {
            "object": self.object,
            "array": self.array,
            "integer": lambda schema, slot: self.number(schema, slot, integer=True),
            "number": lambda schema, slot: self.number(schema, slot, integer=False),
            "boolean": lambda schema, slot: self.rng.random() < 0.5,
            "null": lambda schema, slot: None,
            "string": self.string,
        }
        self.text = RoleText(source, rng)

    # --- dispatch -------------------------------------------------------------------------------

    def value(self, schema: Any, slot: Slot) -> Any:
        schema = self.resolver.resolve(schema)
        if not isinstance(schema, Mapping) or not schema:
            return self.string({}, slot)
        if "allOf" in schema:
            return self.value(self._merge(schema), slot)
        if "const" in schema or "enum" in schema:
            return self.enum([schema["const"]] if "const" in schema else schema["enum"], slot)
        if "anyOf" in schema or "oneOf" in schema:
            return self.union(schema, slot)
        kind = self._kind(schema, slot)
        make: Maker = self.by_type.get(kind or "null", self.string)
        return make(schema, slot)

    def _kind(self, schema: Mapping[str, Any], slot: Slot) -> str | None:
        """The type to produce; None when a nullable value comes out null."""
        kind = schema.get("type")
        if not isinstance(kind, list):
            return str(kind) if kind else infer_type(schema)
        real = [str(k) for k in kind if k != "null"]
        if not real or ("null" in kind and (slot.deep or self.rng.random() < 0.15)):
            return None
        return self.rng.choice(real)

    def union(self, schema: Mapping[str, Any], slot: Slot) -> Any:
        key = "anyOf" if "anyOf" in schema else "oneOf"
        branches = [self.resolver.resolve(b) for b in schema[key]]
        null = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
        real = [b for b in branches if b not in null]
        if not real or (null and (slot.deep or self.rng.random() < 0.15)):
            return None
        rest = {k: v for k, v in schema.items() if k != key}
        start = self.rng.randrange(len(real))
        candidate: Any = None
        for branch in real[start:] + real[:start]:
            merged = {**rest, **branch} if isinstance(branch, Mapping) else branch
            candidate = self.value(merged, slot)
            matches = sum(1 for b in branches if not validate(candidate, b, self.resolver.root))
            if matches == 1 or (key == "anyOf" and matches):
                break
        return candidate

    def _merge(self, schema: Mapping[str, Any]) -> Schema:
        merged: Schema = {k: v for k, v in schema.items() if k != "allOf"}
        for raw in schema["allOf"]:
            part = self.resolver.resolve(raw)
            if not isinstance(part, Mapping):
                continue
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
                else:
                    merged.setdefault(key, value)
        return merged

    # --- containers -----------------------------------------------------------------------------

    def object(self, schema: Mapping[str, Any], slot: Slot) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        order = [p for p in schema.get("propertyOrdering") or [] if p in properties]
        order += [p for p in properties if p not in order]
        focus = slot.focus or self.source.quote(slot.index)
        out: dict[str, Any] = {}
        optional_left: list[str] = []
        for key in order:
            if key not in required and (slot.deep or self.rng.random() < 0.2):
                optional_left.append(key)
                continue
            out[key] = self.value(properties[key], slot.child(key, slot.index, focus))
        wanted = int(schema.get("minProperties", 0))
        while len(out) < wanted and optional_left:
            key = optional_left.pop(0)
            out[key] = self.value(properties[key], slot.child(key, slot.index, focus))
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and not properties:
            wanted = max(wanted, min(2, int(schema.get("maxProperties", 3))))
            names = self.source.keywords or ["item"]
            for i in range(wanted - len(out)):
                key = names[i % len(names)] + (f"_{i}" if i >= len(names) else "")
                out[key] = self.value(extra, slot.child(key, i, None))
        return out

    def array(self, schema: Mapping[str, Any], slot: Slot) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        role = slot.role
        count = {Role.POINT: 3, Role.KEYWORD: 4, Role.INFERENCE: 3}.get(role, 2)
        count += self.rng.randint(0, 1)
        if role in {Role.POINT, Role.QUOTE, Role.SUMMARY} and self.source.ranked:
            count = min(count, len(self.source.ranked))
        count = low if slot.deep else max(low, count)
        if high is not None:
            count = min(count, int(high))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        out: list[Any] = []
        seen: set[str] = set()
        attempt = 0
        while len(out) < count and attempt < count * 4 + 4:
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            if sub is False:
                break
            item = self.value(sub, slot.child(slot.name, attempt, None))
            attempt += 1
            key = json.dumps(item, sort_keys=True)
            if schema.get("uniqueItems") and key in seen:
                item = self._distinct(item, sub, attempt)
                key = json.dumps(item, sort_keys=True)
                if key in seen:
                    continue
            seen.add(key)
            out.append(item)
        return out

    def _distinct(self, item: Any, schema: Any, n: int) -> Any:
        """A numbered variant of a repeated string, when the item schema allows it."""
        if not isinstance(item, str):
            return item
        suffix = f" ({n})"
        raw_max = (
            self.resolver.resolve(schema).get("maxLength") if isinstance(schema, Mapping) else None
        )
        base = item[: max(0, int(raw_max) - len(suffix))] if raw_max is not None else item
        variant = base + suffix
        return variant if not validate(variant, schema, self.resolver.root) else item

    # --- scalars --------------------------------------------------------------------------------

    def enum(self, values: Sequence[Any], slot: Slot) -> Any:
        real = [v for v in values if v is not None]
        if not real or (None in values and (slot.deep or self.rng.random() < 0.1)):
            return None
        texts = [v for v in real if isinstance(v, str)]
        polar = self.text.polarity_choice(texts, slot.role)
        if polar is not None:
            return polar
        known = {k.lower() for k in self.source.keywords}
        topical = [v for v in texts if set(name_words(v)) & known]
        return self.rng.choice(topical or real)

    def number(self, schema: Mapping[str, Any], slot: Slot, *, integer: bool) -> int | float:
        low, high, xlow, xhigh = number_bounds(schema)
        role = slot.role
        if role is Role.SCORE or role is Role.SENTIMENT:
            unit = (self.source.polarity + 1) / 2
            if low is None and high is None:
                low, high = -1.0, 1.0
        elif role is Role.CONFIDENCE:
            unit = 0.6 + 0.35 * self.rng.random()
            if low is None and high is None:
                low, high = 0.0, 1.0
        elif role is Role.COUNT:
            unit = self.rng.random() * 0.3
            if high is None:
                high = (low or 0) + max(3, len(self.source.ranked))
        else:
            unit = self.rng.random()
        if low is None:
            low = (high - (10 if integer else 1)) if high is not None else 0.0
        if high is None:
            high = low + (10 if integer else 1)
        return fit_number(
            low + unit * (high - low),
            low=low,
            high=high,
            xlow=xlow,
            xhigh=xhigh,
            step=schema.get("multipleOf"),
            integer=integer,
        )

    def string(self, schema: Mapping[str, Any], slot: Slot) -> str:
        min_len = int(schema.get("minLength", 0))
        raw_max = schema.get("maxLength")
        max_len = int(raw_max) if raw_max is not None else None
        formatted = self.text.formatted(schema.get("format"), slot)
        fits = formatted is not None and min_len <= len(formatted)
        if formatted is not None and fits and (max_len is None or len(formatted) <= max_len):
            return formatted
        if slot.role in {Role.QUOTE, Role.POINT}:
            own = slot.focus is not None and not is_plural(slot.name)
            span = slot.focus if own else self.source.quote(slot.index)
            if span is not None:
                quoted = self.source.span(span, min_len, max_len)
                if len(quoted) >= min_len:
                    return quoted
        return fit_text(self.text.for_slot(slot), min_len, max_len, self.source.keywords)
