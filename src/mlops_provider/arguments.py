"""Rendered operator arguments -> the types operators work with, in one place.

Airflow hands an operator its template fields after rendering: a native object when the DAG renders
templates as native objects (``render_template_as_native_obj=True``, as the reference DAGs do) or when the
value is a literal or an ``XComArg``; text when it renders templates to strings. These functions accept both
and return one type, or raise ``ConfigurationError`` naming the argument and the fix.

Only ``None`` and blank text mean "not given". Words such as ``"none"``, ``"null"`` or ``"true"`` inside a
value are data, never markers: a column called ``nullable_rate`` or a feature reference ``view:None_seen``
passes through unchanged. A list given as text is read as JSON (what ``| tojson`` writes) or as a Python
literal (what a list renders to without ``tojson``); any other text is split on commas, so a name that
itself holds a comma must come as a list.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from mlops_provider.core.errors import ConfigurationError

TRUE_TEXT = frozenset({"true", "1", "yes", "on"})
FALSE_TEXT = frozenset({"false", "0", "no", "off"})


def is_unset(value: Any) -> bool:
    """True for ``None`` and for text that is empty or only white space."""
    return value is None or (isinstance(value, str) and not value.strip())


def is_literal(value: Any) -> bool:
    """True for a value written in the DAG file; False for a template or an XComArg (known only at run time)."""
    return not (isinstance(value, str) and "{{" in value) and not hasattr(value, "resolve")


def model_name(value: Any, name: str = "model_name") -> str:
    """A registered model name (required), checked against the provider's naming rule."""
    from mlops_provider.core.registry.names import check_model_name

    return check_model_name(required_text(value, name))


def has_value(value: Any) -> bool:
    """True unless unset or an empty list/tuple/dict: "there is something here to use"."""
    return not is_unset(value) and not (isinstance(value, (list, tuple, dict)) and not value)


def optional_text(value: Any, name: str) -> str | None:
    """Stripped text, or None when unset. Numbers are accepted as their text (a native-rendered ``"7"``)."""
    if is_unset(value):
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()
    raise ConfigurationError(f"{name}={value!r} is a {type(value).__name__}; give text.")


def required_text(value: Any, name: str) -> str:
    """Like ``optional_text``, but an unset value is an error."""
    text = optional_text(value, name)
    if text is None:
        raise ConfigurationError(f"{name} is empty; give it a value.")
    return text


def _literal(text: str, name: str, kind: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ConfigurationError(
            f"{name}={text!r} is neither JSON nor a Python literal; give a {kind} or its JSON text."
        ) from None


def optional_list(value: Any, name: str) -> list[str] | None:
    """A list of names from a list/tuple, a JSON or Python list text, or comma-separated text; None when unset.

    An empty list is returned as an empty list: "given, and empty" differs from "not given".
    """
    if is_unset(value):
        return None
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            items = _literal(text, name, "list")
            if not isinstance(items, list):
                raise ConfigurationError(f"{name}={text!r} is not a list; give a list of names.")
        else:
            items = [part.strip() for part in text.split(",") if part.strip()]
    else:
        raise ConfigurationError(f"{name}={value!r} is a {type(value).__name__}; give a list of names.")
    bad = [item for item in items if not isinstance(item, (str, int)) or isinstance(item, bool) or str(item) == ""]
    if bad:
        raise ConfigurationError(f"{name} holds {bad[:3]!r}, which are not names; give a list of non-empty names.")
    return [str(item) for item in items]


def optional_dict(value: Any, name: str) -> dict[str, Any] | None:
    """A dict from a mapping or its JSON / Python literal text; None when unset."""
    if is_unset(value):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        parsed = _literal(value.strip(), name, "dict")
        if isinstance(parsed, dict):
            return parsed
    raise ConfigurationError(f"{name}={value!r} is not a dict; give a dict (or its JSON text).")


def as_bool(value: Any, name: str, *, default: bool = False) -> bool:
    """A bool from a bool or the text a bool renders to (``True``/``true``/``1``/``yes``/``on`` and opposites)."""
    if is_unset(value):
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXT:
            return True
        if text in FALSE_TEXT:
            return False
    raise ConfigurationError(f"{name}={value!r} is not a yes/no value; give True or False.")


def optional_int(value: Any, name: str, *, minimum: int | None = None) -> int | None:
    """A whole number from an int or its text; None when unset."""
    if is_unset(value):
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ConfigurationError(f"{name}={value!r} is not a whole number.")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{name}={number} must be at least {minimum}.")
    return number


def optional_float(value: Any, name: str) -> float | None:
    """A number from an int/float or its text; None when unset."""
    if is_unset(value):
        return None
    if isinstance(value, bool):
        raise ConfigurationError(f"{name}={value!r} is not a number.")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}={value!r} is not a number.") from None


def user_name(value: Any) -> str | None:
    """Who responded, from an approval's ``responded_by_user`` (``{"id": ..., "name": ...}``) or plain text."""
    if isinstance(value, Mapping):
        value = value.get("name") or value.get("id")
    return optional_text(value, "approved_by")
