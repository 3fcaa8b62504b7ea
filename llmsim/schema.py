"""JSON Schema for structured output: normalise the providers' dialects, resolve ``$ref``, validate.

Three dialects arrive on the wire and are normalised to plain JSON Schema before generation:

* **OpenAI** ``response_format.json_schema.schema`` and **Gemini** ``responseJsonSchema``: JSON
  Schema as pydantic emits it (``$defs``/``$ref``, ``anyOf`` with ``{"type": "null"}``).
* **Gemini** ``responseSchema`` (OpenAPI subset): upper-case types (``"OBJECT"``), ``nullable``,
  and — as google-genai 3.4 sends it — snake_case keywords (``min_items``, ``max_length``,
  ``property_ordering``).
* **Anthropic** ``output_config.format.schema`` / tool ``input_schema`` after the SDK's
  ``transform_schema``: constraints the API does not take are moved into the description as
  ``{maxLength: 200, minLength: 3}``.  They are read back, so the output still satisfies the
  caller's pydantic model.

The validator covers the same subset the generator produces: ``type`` (also lists), ``enum``,
``const``, ``properties``/``required``/``additionalProperties``,
``minProperties``/``maxProperties``, ``items``/``prefixItems``,
``minItems``/``maxItems``/``uniqueItems``, ``minLength``/``maxLength``, ``minimum``/``maximum``
(and the exclusive forms), ``multipleOf``, ``anyOf``/``oneOf``/``allOf``/``not`` and ``$ref``.
``pattern`` and ``format`` are not checked.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

Schema = dict[str, Any]

_CAMEL = {
    "min_items": "minItems",
    "max_items": "maxItems",
    "min_length": "minLength",
    "max_length": "maxLength",
    "min_properties": "minProperties",
    "max_properties": "maxProperties",
    "property_ordering": "propertyOrdering",
    "any_of": "anyOf",
    "one_of": "oneOf",
    "all_of": "allOf",
    "additional_properties": "additionalProperties",
    "prefix_items": "prefixItems",
    "multiple_of": "multipleOf",
    "unique_items": "uniqueItems",
    "exclusive_minimum": "exclusiveMinimum",
    "exclusive_maximum": "exclusiveMaximum",
}
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMA_VALUES = frozenset(
    {"items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems", "not"}
)
_NUMERIC_HINTS = frozenset(
    {
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
    }
)
_HINTS_RE = re.compile(r"\{([^{}]*)\}\s*$")
_HINT_RE = re.compile(r"\b([A-Za-z]+): ([-+\w.]+)")


class SchemaError(ValueError):
    """Raised when a schema cannot be used (a dangling ``$ref``, a ``$ref`` cycle)."""


def normalize(schema: Any) -> Any:
    """Plain JSON Schema from any of the three dialects (see the module docstring)."""
    if isinstance(schema, list):
        return [normalize(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: Schema = {}
    for raw_key, raw in schema.items():
        key = _CAMEL.get(str(raw_key), str(raw_key))
        value = raw
        if key in _SCHEMA_MAPS and isinstance(raw, Mapping):
            value = {name: normalize(sub) for name, sub in raw.items()}
        elif key in _SCHEMA_VALUES:
            value = normalize(raw)
        elif key == "type":
            value = _lower_type(raw)
            if value is None:
                continue
        out[key] = value
    if out.get("format") == "enum":
        del out["format"]
    _read_description_hints(out)
    if out.pop("nullable", False) is True:
        _allow_null(out)
    return out


def _lower_type(value: Any) -> Any:
    if isinstance(value, str):
        low = value.lower()
        return None if low == "type_unspecified" else low
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


def _allow_null(schema: Schema) -> None:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    if "anyOf" in schema:
        schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]


def _read_description_hints(schema: Schema) -> None:
    description = schema.get("description")
    if not isinstance(description, str):
        return
    match = _HINTS_RE.search(description)
    if not match:
        return
    for key, raw in _HINT_RE.findall(match.group(1)):
        if key in schema:
            continue
        if key in _NUMERIC_HINTS:
            try:
                number = float(raw)
            except ValueError:
                continue
            schema[key] = int(number) if number.is_integer() else number
        elif key == "uniqueItems" and raw in {"True", "true"}:
            schema[key] = True


class Resolver:
    """Follows ``$ref`` (``#``, ``#/$defs/X``, ``#/definitions/X``, any local JSON pointer)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def resolve(self, schema: Any) -> Any:
        """``schema`` with its ``$ref`` chain followed; sibling keywords override the target's."""
        seen: set[str] = set()
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in seen:
                raise SchemaError(f"$ref cycle through {ref!r}")
            seen.add(ref)
            target = self._lookup(ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if siblings and isinstance(target, Mapping) else target
        return schema

    def _lookup(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for raw in [p for p in ref[1:].split("/") if p]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve")
        return node


def validate(value: Any, schema: Any, root: Any = None) -> list[str]:
    """Every way ``value`` breaks ``schema`` (normalised JSON Schema), as ``path: problem``."""
    errors: list[str] = []
    _check(value, schema, Resolver(schema if root is None else root), "$", errors)
    return errors


def json_type(value: Any) -> str:
    """The JSON Schema type of a Python value built from JSON."""
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    for kind, types in _JSON_TYPES:
        if isinstance(value, types):
            return kind
    return type(value).__name__


_JSON_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("null", type(None)),
    ("boolean", bool),  # before integer: bool is an int subclass
    ("integer", int),
    ("string", str),
    ("array", list),
    ("object", Mapping),
)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it (``True`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or (
        isinstance(a, int | float) and isinstance(b, int | float) and a == b
    )


def _type_ok(value: Any, kind: str) -> bool:
    actual = json_type(value)
    return actual == kind or (kind == "number" and actual == "integer")


def _check(value: Any, schema: Any, resolver: Resolver, path: str, errors: list[str]) -> None:
    if schema is True or schema is None:
        return
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
        return
    schema = resolver.resolve(schema)
    if not isinstance(schema, Mapping):
        return
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            errors.append(f"{path}: expected {'/'.join(kinds)}, got {json_type(value)}")
            return
    if "enum" in schema and not any(json_equal(value, v) for v in schema["enum"]):
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and not json_equal(value, schema["const"]):
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, resolver, path, errors)
    elif isinstance(value, Mapping):
        _check_object(value, schema, resolver, path, errors)
    _check_combinators(value, schema, resolver, path, errors)


def _check_string(value: str, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']}")


def _check_number(value: float, schema: Mapping[str, Any], path: str, errors: list[str]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if xlow is True:  # draft-4 style: the boolean modifies minimum
        xlow, low = low, None
    if xhigh is True:
        xhigh, high = high, None
    if isinstance(low, int | float) and value < low:
        errors.append(f"{path}: {value} < minimum {low}")
    if isinstance(high, int | float) and value > high:
        errors.append(f"{path}: {value} > maximum {high}")
    if isinstance(xlow, int | float) and not isinstance(xlow, bool) and value <= xlow:
        errors.append(f"{path}: {value} <= exclusiveMinimum {xlow}")
    if isinstance(xhigh, int | float) and not isinstance(xhigh, bool) and value >= xhigh:
        errors.append(f"{path}: {value} >= exclusiveMaximum {xhigh}")
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        ratio = value / step
        if not math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-9):
            errors.append(f"{path}: {value} is not a multiple of {step}")


def _check_array(
    value: list[Any], schema: Mapping[str, Any], resolver: Resolver, path: str, errors: list[str]
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if schema.get("uniqueItems"):
        dumped = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(dumped)) != len(dumped):
            errors.append(f"{path}: items are not unique")
    prefix = schema.get("prefixItems") or []
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        _check(item, sub, resolver, f"{path}[{i}]", errors)


def _check_object(
    value: Mapping[str, Any],
    schema: Mapping[str, Any],
    resolver: Resolver,
    path: str,
    errors: list[str],
) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            errors.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], resolver, f"{path}.{name}", errors)
        else:
            _check(item, extra, resolver, f"{path}.{name}", errors)
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(f"{path}: fewer than {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(f"{path}: more than {schema['maxProperties']} properties")


def _check_combinators(
    value: Any, schema: Mapping[str, Any], resolver: Resolver, path: str, errors: list[str]
) -> None:
    def passes(sub: Any) -> bool:
        found: list[str] = []
        _check(value, sub, resolver, path, found)
        return not found

    if "anyOf" in schema and not any(passes(s) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        matched = sum(1 for s in schema["oneOf"] if passes(s))
        if matched != 1:
            errors.append(f"{path}: matches {matched} of oneOf, not exactly one")
    for sub in schema.get("allOf") or []:
        _check(value, sub, resolver, path, errors)
    if "not" in schema and passes(schema["not"]):
        errors.append(f"{path}: matches the 'not' schema")
