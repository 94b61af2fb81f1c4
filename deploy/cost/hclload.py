"""Load Terraform files with python-hcl2 into one plain shape, whichever hcl2 API is installed.

Two libraries install the same top-level ``hcl2`` package: python-hcl2 (>= 8 serializes with
``SerializationOptions``) and bc-python-hcl2, a fork checkov depends on (older API: every
attribute value wrapped in a one-element list). Whichever of them is importable, the functions
here return:

* attributes as plain Python values (strings unquoted, expressions as ``"${...}"``);
* nested blocks as lists of bodies (``{"taint": [{"key": ..., "value": ...}]}``);
* labelled top-level blocks as nested dicts (``variable[name]``, ``resource[type][name]``).

Limitation of the old API only: a map attribute whose values are all lists (``x = { a = [1] }``),
or an empty map other than a variable's ``default = {}``, cannot be told apart from a nested
block; no file in deploy/ uses one where it matters.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import hcl2

_META_KEYS = ("__start_line__", "__end_line__", "__is_block__", "__comments__", "__inline_comments__")
_NEW_API = "serialization_options" in inspect.signature(hcl2.loads).parameters


def _raw_loads(text: str) -> dict[str, Any]:
    loads: Any = hcl2.loads  # signature differs between the two libraries
    if _NEW_API:
        utils = importlib.import_module("hcl2.utils")  # only in python-hcl2 >= 8
        options = utils.SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=True)
        return loads(text, serialization_options=options)
    return loads(text)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): _value(v) for k, v in value.items() if k not in _META_KEYS}
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, str):
        return _unquote(value) if _NEW_API else value
    return value


def _is_body(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if _NEW_API:
        return bool(value.get("__is_block__"))
    return all(isinstance(v, list) for k, v in value.items() if k not in _META_KEYS)


def _body(raw: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _META_KEYS:
            continue
        key = _unquote(key)
        if not _NEW_API and key == "default" and value == [{}]:
            body[key] = {}  # `default = {}`, not an empty block
        elif isinstance(value, list) and value and all(_is_body(v) for v in value):
            body[key] = [_body(v) for v in value]
        elif not _NEW_API and isinstance(value, list) and len(value) == 1:
            body[key] = _value(value[0])
        else:
            body[key] = _value(value)
    return body


def _labelled(blocks: list[dict[str, Any]], depth: int) -> dict[str, Any]:
    """Turn ``[{label: body}, ...]`` into ``{label: body}`` (depth 2: ``{type: {name: body}}``)."""
    out: dict[str, Any] = {}
    for block in blocks:
        for label, inner in block.items():
            if label in _META_KEYS:
                continue
            label = _unquote(label)
            if depth == 1:
                out[label] = _body(inner)
            else:
                out.setdefault(label, {}).update(_labelled([inner], depth - 1))
    return out


def loads_tf(text: str) -> dict[str, Any]:
    """Parse a .tf file: {"variable": {...}, "resource": {...}, "locals": {...}, ...}."""
    raw = _raw_loads(text)
    doc: dict[str, Any] = {}
    for kind, blocks in raw.items():
        if kind in ("variable", "output", "module"):
            doc[kind] = _labelled(blocks, 1)
        elif kind in ("resource", "data"):
            doc[kind] = _labelled(blocks, 2)
        elif kind == "provider":
            providers: dict[str, list[dict[str, Any]]] = {}
            for block in blocks:
                for name, inner in block.items():
                    if name not in _META_KEYS:
                        providers.setdefault(_unquote(name), []).append(_body(inner))
            doc[kind] = providers
        elif kind == "locals":
            merged: dict[str, Any] = {}
            for block in blocks:
                merged.update(_body(block))
            doc[kind] = merged
        else:  # terraform and any other unlabelled block
            doc[kind] = [_body(b) for b in blocks]
    return doc


def loads_tfvars(text: str) -> dict[str, Any]:
    """Parse a .tfvars file into {name: value}."""
    return _body(_raw_loads(text))


def load_dir(path: Path) -> dict[str, Any]:
    """Merge every .tf file of one Terraform directory (one module or one root)."""
    merged: dict[str, Any] = {}
    for tf in sorted(Path(path).glob("*.tf")):
        doc = loads_tf(tf.read_text())
        for kind, content in doc.items():
            if isinstance(content, dict):
                target = merged.setdefault(kind, {})
                for key, value in content.items():
                    if kind in ("resource", "data"):
                        target.setdefault(key, {}).update(value)
                    elif kind == "provider":
                        target.setdefault(key, []).extend(value)
                    else:
                        target[key] = value
            else:
                merged.setdefault(kind, []).extend(content)
    return merged


def env_variables(env_dir: Path) -> dict[str, Any]:
    """Values of a root module's variables: defaults from variables.tf, overridden by terraform.tfvars."""
    doc = load_dir(env_dir)
    values = {name: body.get("default") for name, body in doc.get("variable", {}).items()}
    tfvars = Path(env_dir) / "terraform.tfvars"
    if tfvars.exists():
        values.update(loads_tfvars(tfvars.read_text()))
    return values
