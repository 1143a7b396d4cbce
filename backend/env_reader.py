"""Reading CITYPASS_* settings: text, whole numbers, numbers and flags, each error naming its setting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

N = TypeVar("N", int, float)


class EnvReader:
    """Reads `CITYPASS_<name>` from one environment; a value it cannot use raises `error`."""

    def __init__(self, env: Mapping[str, str], error: type[ValueError]) -> None:
        self._env, self._error = env, error

    def text(self, name: str, default: str = "") -> str:
        return self._env.get(f"CITYPASS_{name}", default).strip() or default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self._ranged(name, default, low, high, int, "a whole number")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        return self._ranged(name, default, low, high, float, "a number")

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name, "1" if default else "0").lower()
        if raw not in ("0", "1", "true", "false", "yes", "no"):
            raise self._error(f"CITYPASS_{name} must be 1 or 0, not {raw!r}")
        return raw in ("1", "true", "yes")

    def _ranged(self, name: str, default: N, low: N, high: N, parse: Callable[[str], N], what: str) -> N:
        raw = self.text(name, str(default))
        try:
            value = parse(raw)
        except ValueError:
            raise self._error(f"CITYPASS_{name} must be {what}, not {raw!r}") from None
        if not low <= value <= high:
            raise self._error(f"CITYPASS_{name} must be between {low} and {high}, not {value}")
        return value
