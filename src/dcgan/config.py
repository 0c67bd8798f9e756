"""Checks a composed config against the constructors it names, so mistakes stop before any work.

The constructors' typed signatures are the schema: a key that is not a parameter of its
``_target_`` or a value of the wrong type gets one line naming the key and what it accepts.
The entry scripts' helper: the one module besides them that sees a whole config or instantiates.
"""

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from dcgan.errors import UsageError


def check_config(cfg: DictConfig, top_level: Mapping[str, Any]) -> None:
    """Raise UsageError for a missing value, an unknown key or a value of the wrong type.

    top_level maps the config's own keys (seed, ckpt_path, ...) to their types.
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UsageError(f"{missing[0]} is required: add {missing[0]}=<value> to the command line")
    values = OmegaConf.to_container(cfg, resolve=True)
    for key, hint in top_level.items():
        _check_value(key, values.get(key), hint)
    for key, node in values.items():
        if isinstance(node, dict) and key != "hydra":
            _check_node(key, node)


def instantiate_node(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """hydra's instantiate, with a constructor's UsageError reported under its config key."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, UsageError):  # named by its parameter: prefix the group, once
            message = str(error.__cause__)
            raise UsageError(message if message.startswith(f"{key}.") else f"{key}.{message}") from None
        raise


def _check_node(key: str, node: dict) -> None:
    if "_target_" in node:
        _check_call(key, node)
    for name, child in node.items():
        if isinstance(child, dict) and not name.startswith("_"):
            _check_node(f"{key}.{name}", child)


def _check_call(key: str, node: dict) -> None:
    parameters, hints, takes_any = _schema(get_object(node["_target_"]))
    for name, value in node.items():
        if name.startswith("_"):
            continue
        if name not in parameters and not takes_any:
            valid = ", ".join(p for p in parameters if p != "self")
            raise UsageError(f"{key}.{name} is not an option of {node['_target_']}; valid: {valid}")
        if name in hints:
            _check_value(f"{key}.{name}", value, hints[name])


def _schema(target: Any) -> tuple[list[str], dict[str, Any], bool]:
    """A constructor's parameter names, their type hints, and whether it takes any keyword. A
    class whose __init__ passes **options on to its base's takes the base's parameters too."""
    names: list[str] = []
    hints: dict[str, Any] = {}
    functions = [vars(c)["__init__"] for c in target.__mro__ if "__init__" in vars(c)] if inspect.isclass(target) \
        else [target]
    for function in functions:
        parameters = inspect.signature(function).parameters
        names += [n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n not in names]
        try:
            hints = typing.get_type_hints(function) | hints
        except Exception:  # annotations naming types only imported for type checkers: check keys only
            pass
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return names, hints, False
    return names, hints, True


def _check_value(key: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise UsageError(f"{key}={value!r} has the wrong type: expected {_describe(hint)}")


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (str, Path):
        return isinstance(value, str)
    container = origin if inspect.isclass(origin) else hint if inspect.isclass(hint) else None
    if container is not None and issubclass(container, Mapping):
        return isinstance(value, dict)
    if container is not None and issubclass(container, Sequence):
        return isinstance(value, list)
    return True  # objects a config cannot spell (modules, callables, ...): instantiate decides


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))
