"""Request shapes taken from the installed SDK's own request types.

``MessageCreateParams`` (and its beta twin, and the count-tokens params) are TypedDicts made for type
checkers: their lists are ``Iterable`` (which pydantic validates lazily), their unions carry response
models and file objects that never appear on the wire, and they accept unknown keys. :func:`adapter`
rebuilds them into pydantic ``TypeAdapter`` s that validate eagerly, refuse unknown keys (except where the
SDK marks a type ``extra="allow"``, i.e. JSON schemas), and tell union members apart the way the
service's error paths do: by ``type`` (``messages.0.content.1.text.text``), with the ``str``-or-list and
role unions invisible in the path. Which top-level fields exist is data (``service_rules.json``, read by
:mod:`._rules_data`), so another SDK version does not change what is accepted at the top level; the SDK
still shapes every field it knows, and a field only the data lists is any JSON value.

:func:`check_shape` raises :class:`ApiError` for the first error, as ``"<path>: <message>"``.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import os
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import typing_extensions as te
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, TypeAdapter, ValidationError

from ._errors import ApiError
from ._rules_data import request_fields

__all__ = ["adapter", "check_shape"]

# Hidden tags start with "@": they pick a union member without naming it in the error path.
_HIDDEN = "@"
_TAG_ERROR = "ck_tag"
_ROLE_ERROR = "ck_role"
_KIND_ERROR = "ck_kind"
_REQUIRED = (te.Required, typing.Required) if hasattr(typing, "Required") else (te.Required,)
_NOT_REQUIRED = (te.NotRequired, typing.NotRequired) if hasattr(typing, "NotRequired") else (te.NotRequired,)
_SEQUENCES = (cabc.Iterable, cabc.Sequence, list)
_KINDS: tuple[tuple[type, str, str], ...] = (
    (bool, "bool", "a valid boolean"),
    (str, "str", "a valid string"),
    (list, "list", "a valid list"),
    (dict, "dict", "a valid dictionary"),
    (int, "int", "a valid integer"),
    (float, "float", "a valid number"),
)
_WIRE_ONLY = frozenset({"betas"})  # SDK arguments that travel as headers, not in the body


class _Converter:
    """Rebuilds SDK TypedDicts into strict, eager, extra-forbidding TypedDicts (memoised per class)."""

    def __init__(self) -> None:
        self._done: dict[Any, Any] = {}

    def convert(self, tp: Any) -> Any:
        origin = get_origin(tp)
        if origin is Annotated or origin in _REQUIRED or origin in _NOT_REQUIRED:
            return self.convert(get_args(tp)[0])
        if te.is_typeddict(tp):
            return self.typed_dict(tp)
        if origin is Union or origin is types.UnionType:
            members = [m for m in get_args(tp) if _on_the_wire(m)]
            if len(members) == 1:
                return self.convert(members[0])
            return self.union(members)
        if origin in _SEQUENCES:
            (item,) = get_args(tp) or (Any,)
            return types.GenericAlias(list, (self.convert(item),))
        if origin in (dict, cabc.Mapping):
            key, value = get_args(tp)
            return types.GenericAlias(dict, (key, self.convert(value)))
        return tp

    def typed_dict(
        self, td: Any, extra: Mapping[str, Any] | None = None, *, only: frozenset[str] | None = None
    ) -> Any:
        """``td`` rebuilt; ``extra`` adds fields it lacks, ``only`` keeps just those names (the root)."""
        if td in self._done and extra is None and only is None:
            return self._done[td]
        hints = get_type_hints(td, include_extras=True)
        fields: dict[str, Any] = {}
        for name, hint in hints.items():
            if name in _WIRE_ONLY or (only is not None and name not in only):
                continue
            wrap = te.Required if _is_required(td, hint) else te.NotRequired
            fields[name] = wrap[self.convert(hint)]
        for name, hint in (extra or {}).items():
            fields.setdefault(name, te.NotRequired[hint])
        make: Any = te.TypedDict
        new: Any = make(td.__name__, fields)
        allow = (getattr(td, "__pydantic_config__", None) or {}).get("extra") == "allow"
        new.__pydantic_config__ = ConfigDict(strict=True, extra="allow" if allow else "forbid")
        if extra is None and only is None:
            self._done[td] = new
        return new

    def union(self, members: list[Any]) -> Any:
        present = [m for m in members if m is not type(None)]
        if len(present) < len(members):
            inner = self.convert(present[0]) if len(present) == 1 else self.union(present)
            return inner | None
        if all(te.is_typeddict(m) for m in members):
            tagged = self._by_key(members, "type", hidden=False) or self._by_key(members, "role", hidden=True)
            if tagged is not None:
                return tagged
        return self._by_kind(members)

    def _by_key(self, members: list[Any], key: str, *, hidden: bool) -> Any | None:
        """A union told apart by a literal ``key`` (``type`` for blocks and tools, ``role`` for messages)."""
        choices: list[Any] = []
        values: list[str] = []
        default: list[str] = []
        for member in members:
            hint = get_type_hints(member, include_extras=True).get(key)
            literals = _literals(hint) if hint is not None else None
            if not literals:
                return None
            if not _is_required(member, hint):
                default.append(literals[0])
            converted = self.convert(member)
            for value in literals:
                values.append(value)
                choices.append(Annotated[converted, Tag(_HIDDEN + value if hidden else value)])
        fallback = default[0] if len(default) == 1 else None
        expected = ", ".join(repr(v) for v in values)

        def tag(value: Any) -> str | None:
            if not isinstance(value, dict):
                return None
            found = value.get(key, fallback)
            if not isinstance(found, str) or found not in values:
                return None
            return _HIDDEN + found if hidden else found

        error = _ROLE_ERROR if hidden else _TAG_ERROR
        return Annotated[
            Union[tuple(choices)],  # noqa: UP007 - built at run time
            Discriminator(tag, custom_error_type=error, custom_error_message=f"{key}|{expected}"),
        ]

    def _by_kind(self, members: list[Any]) -> Any:
        """A union told apart by JSON kind (``str`` or list, string or object): invisible in the path."""
        kinds: dict[str, Any] = {}
        for member in members:
            converted = self.convert(member)
            origin = get_origin(converted) or converted
            kind = "dict" if te.is_typeddict(member) else next((k for t, k, _ in _KINDS if origin is t), None)
            if kind is None or kind in kinds:
                return Union[tuple(self.convert(m) for m in members)]  # noqa: UP007
            kinds[kind] = converted
        names = [text for _, k, text in _KINDS if k in kinds]

        def tag(value: Any) -> str | None:
            for py, kind, _ in _KINDS:
                if isinstance(value, py):
                    return _HIDDEN + kind if kind in kinds else None
            return None

        return Annotated[
            Union[tuple(Annotated[c, Tag(_HIDDEN + k)] for k, c in kinds.items())],  # noqa: UP007
            Discriminator(
                tag,
                custom_error_type=_KIND_ERROR,
                custom_error_message="Input should be " + " or ".join(names),
            ),
        ]


def _is_required(td: Any, hint: Any) -> bool:
    # With postponed annotations __required_keys__ cannot see Required[...]; the resolved hint can.
    origin = get_origin(hint)
    if origin in _REQUIRED:
        return True
    if origin in _NOT_REQUIRED:
        return False
    return bool(getattr(td, "__total__", True))


def _literals(hint: Any) -> list[str] | None:
    origin = get_origin(hint)
    if origin is Annotated or origin in _REQUIRED or origin in _NOT_REQUIRED:
        return _literals(get_args(hint)[0])
    if origin is Literal:
        return [str(v) for v in get_args(hint)]
    if origin is Union:
        out: list[str] = []
        for arg in get_args(hint):
            if arg is type(None):
                continue
            sub = _literals(arg)
            if sub is None:
                return None
            out.extend(sub)
        return out
    return None


def _on_the_wire(tp: Any) -> bool:
    """False for union members JSON cannot carry: response models, bytes, files and paths."""
    origin = get_origin(tp) or tp
    if origin is Annotated:
        return _on_the_wire(get_args(tp)[0])
    if origin is Union:
        return any(_on_the_wire(a) for a in get_args(tp))
    if origin is typing.IO or origin is os.PathLike:
        return False
    return not (isinstance(origin, type) and issubclass(origin, (BaseModel, bytes, os.PathLike)))


# Types of fields the service takes that the SDK's types do not list (anthropic 2.x dropped the sampling
# parameters; ``stream`` lives in the SDK's streaming/non-streaming subclasses; SDKs before output_config
# sent a top-level output_format under the structured-outputs beta). Which fields are taken at all is
# service_rules.json's; a field it lists that neither the SDK nor this table types is any JSON value.
_TYPES: dict[str, Any] = {"temperature": float, "top_p": float, "top_k": int, "stream": bool}


class _LegacyOutputFormat(te.TypedDict):
    type: Literal["json_schema"]
    schema: dict[str, object]


@functools.lru_cache(maxsize=4)
def adapter(surface: Literal["messages", "count_tokens"], beta: bool) -> TypeAdapter[Any]:
    """The validator for ``POST /v1/messages`` or ``/v1/messages/count_tokens``, plain or beta: exactly the
    top-level fields service_rules.json lists, each shaped by the installed SDK's type where it has one."""
    if beta:
        from anthropic.types.beta import message_count_tokens_params as count_mod
        from anthropic.types.beta import message_create_params as create_mod
    else:
        from anthropic.types import message_count_tokens_params as count_mod  # type: ignore[no-redef]
        from anthropic.types import message_create_params as create_mod  # type: ignore[no-redef]
    root: Any = create_mod.MessageCreateParamsBase
    if surface == "count_tokens":
        root = count_mod.MessageCountTokensParams
    converter = _Converter()
    typed = dict(_TYPES, output_format=converter.convert(_LegacyOutputFormat) | None)
    allowed = request_fields(surface, beta)
    extra = {name: typed.get(name, Any) for name in sorted(allowed)}
    return TypeAdapter(converter.typed_dict(root, extra, only=allowed))


def check_shape(body: Any, *, surface: Literal["messages", "count_tokens"], beta: bool) -> None:
    """Raise :class:`ApiError` (400) for the first place ``body`` does not fit the SDK's request type."""
    try:
        adapter(surface, beta).validate_python(body)
    except ValidationError as exc:
        raise ApiError(400, _describe(exc.errors()[0], body)) from None


def _describe(error: Mapping[str, Any], body: Any) -> str:
    """``"<path>: <message>"`` in the service's convention: union tags by ``type`` only."""
    parts: list[str] = []
    node: Any = body
    tagged: set[int] = set()
    for elem in error["loc"]:
        if isinstance(elem, int):
            parts.append(str(elem))
            node = node[elem] if isinstance(node, list) and 0 <= elem < len(node) else None
        elif elem.startswith(_HIDDEN):
            continue
        elif isinstance(node, dict) and id(node) not in tagged and elem == node.get("type"):
            # A discriminator tag: named in the path, but the position stays on this block.
            tagged.add(id(node))
            parts.append(elem)
        elif isinstance(node, dict) and elem in node:
            parts.append(elem)
            node = node[elem]
        else:
            # A default tag (a tool without "type" is "custom") or the name of a missing field.
            parts.append(elem)
    path = ".".join(parts)
    message = _message(error, node)
    if error["type"] == _ROLE_ERROR and isinstance(node, dict):
        path = f"{path}.role" if path else "role"
    return f"{path}: {message}" if path else message


def _message(error: Mapping[str, Any], node: Any) -> str:
    kind = error["type"]
    if kind not in (_TAG_ERROR, _ROLE_ERROR):
        return str(error["msg"])
    key, _, expected = str(error["msg"]).partition("|")
    if not isinstance(node, dict):
        return "Input should be a valid dictionary or object to extract tag"
    if kind == _ROLE_ERROR:
        if "role" not in node:
            return "Field required"
        choices = expected.split(", ")
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else expected
        return f"Input should be {listed}"
    if key not in node:
        return f"Unable to extract tag using discriminator '{key}'"
    return f"Input tag '{node[key]}' found using '{key}' does not match any of the expected tags: {expected}"
