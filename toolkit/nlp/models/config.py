"""Config objects for the text models (GluonNLP numpy-era style).

A model family keeps a :class:`ConfigRegistry` of functions that each return
a filled :class:`Config`; ``Model.get_cfg(name)`` returns one of them and
``Model.from_cfg(cfg)`` builds the model. Configs are plain nested dicts with
attribute access, so they dump to JSON (training scripts save them next to
the log) and load back unchanged.
"""
from __future__ import annotations

import copy
import difflib
import json
from typing import Any, Callable, Iterator

__all__ = ["Config", "ConfigRegistry"]


class Config(dict):
    """A dict whose keys are also attributes; :meth:`freeze` makes it read-only.

    Examples
    --------
    >>> cfg = Config(units=512, num_layers=6)
    >>> cfg.units
    512
    >>> cfg.clone(units=256).units
    256
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_frozen", False)
        for k, v in list(self.items()):
            if isinstance(v, dict) and not isinstance(v, Config):
                dict.__setitem__(self, k, Config(v))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}; keys: {sorted(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"config is frozen; use clone({key}=...) to change {key!r}")
        super().__setitem__(key, value)

    def freeze(self) -> "Config":
        object.__setattr__(self, "_frozen", True)
        for v in self.values():
            if isinstance(v, Config):
                v.freeze()
        return self

    def clone(self, **overrides: Any) -> "Config":
        """A frozen deep copy with ``overrides`` applied; unknown keys are an error."""
        unknown = [k for k in overrides if k not in self]
        if unknown:
            raise KeyError(f"unknown config keys {unknown}; keys are {sorted(self)}")
        data = copy.deepcopy(dict(self))
        data.update(overrides)
        return Config(data).freeze()

    def to_json(self) -> str:
        return json.dumps(self, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls(json.loads(text)).freeze()

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(dict(self), memo))

    def __reduce__(self):
        return (Config, (dict(self),))


class ConfigRegistry:
    """Named config builders of one model family."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._fns: dict[str, Callable[[], Config]] = {}

    def register(self, fn: Callable[[], Config] | None = None, *, name: str | None = None):
        def wrap(f: Callable[[], Config]) -> Callable[[], Config]:
            key = (name or f.__name__).lower()
            if key in self._fns:
                raise ValueError(f"{self.family} config {key!r} is registered twice")
            self._fns[key] = f
            return f

        return wrap(fn) if fn is not None else wrap

    def get(self, name: str) -> Config:
        key = str(name).lower()
        if key not in self._fns:
            close = difflib.get_close_matches(key, list(self._fns), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise ValueError(f"unknown {self.family} config {name!r}{hint}; known: {sorted(self._fns)}")
        return Config(self._fns[key]()).freeze()

    def __contains__(self, name: str) -> bool:
        return str(name).lower() in self._fns

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._fns))

    def list(self) -> list[str]:
        return sorted(self._fns)
