"""Config and Section: read-mostly mappings with typed getters."""

from __future__ import annotations

from typing import Iterator, Mapping

from confini.errors import MissingKeyError, MissingSectionError
from confini.interpolation import interpolate

DEFAULT = "DEFAULT"

_MISSING = object()
_BOOLEANS = {
    "1": True, "yes": True, "true": True, "on": True,
    "0": False, "no": False, "false": False, "off": False,
}


class Section(Mapping[str, str]):
    """The keys of one section. Reading a key expands its ${...} references.

    A section also shows the keys of [DEFAULT] it does not set itself.
    """

    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self._config = config
        self._values: dict[str, str] = {}

    # -- mapping ----------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        key = key.lower()
        if key in self._values:
            return interpolate(self._config, self.name, self._values[key])
        defaults = self._config.defaults
        if self is not defaults and key in defaults._values:
            return interpolate(self._config, DEFAULT, defaults._values[key])
        raise MissingKeyError(self.name, key)

    def __iter__(self) -> Iterator[str]:
        yield from self._values
        if self is not self._config.defaults:
            yield from (k for k in self._config.defaults._values if k not in self._values)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in set(self)

    def __repr__(self) -> str:
        return f"<Section [{self.name}] {len(self._values)} keys>"

    # -- raw access ---------------------------------------------------------------

    def raw(self, key: str) -> str:
        """The value as written (no interpolation), not looking at [DEFAULT]."""
        try:
            return self._values[key.lower()]
        except KeyError:
            raise MissingKeyError(self.name, key.lower()) from None

    def own_keys(self) -> list[str]:
        """The keys set in this section itself, in file order."""
        return list(self._values)

    def set(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"values are strings, not {type(value).__name__}")
        self._values[key.strip().lower()] = value

    def remove(self, key: str) -> None:
        try:
            del self._values[key.lower()]
        except KeyError:
            raise MissingKeyError(self.name, key.lower()) from None

    # -- typed getters ---------------------------------------------------------------

    def _lookup(self, key: str, default: object) -> str | object:
        try:
            return self[key]
        except MissingKeyError:
            if default is _MISSING:
                raise
            return default

    def get_int(self, key: str, default: object = _MISSING) -> int:
        value = self._lookup(key, default)
        if not isinstance(value, str):
            return value  # the caller's default
        try:
            return int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"[{self.name}] {key}: expected an integer, got {value!r}") from None

    def get_float(self, key: str, default: object = _MISSING) -> float:
        value = self._lookup(key, default)
        if not isinstance(value, str):
            return value
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"[{self.name}] {key}: expected a number, got {value!r}") from None

    def get_bool(self, key: str, default: object = _MISSING) -> bool:
        value = self._lookup(key, default)
        if not isinstance(value, str):
            return value
        try:
            return _BOOLEANS[value.strip().lower()]
        except KeyError:
            raise ValueError(
                f"[{self.name}] {key}: expected a boolean (yes/no, true/false, on/off, 1/0), got {value!r}"
            ) from None

    def get_list(self, key: str, default: object = _MISSING, *, sep: str = ",") -> list[str]:
        """Items separated by `sep` or newlines, stripped, empty items dropped."""
        value = self._lookup(key, default)
        if not isinstance(value, str):
            return value
        items = []
        for line in value.splitlines():
            items.extend(item.strip() for item in line.split(sep))
        return [item for item in items if item]


class Config(Mapping[str, Section]):
    """Sections by name, in file order. [DEFAULT] is `config.defaults` and is
    not listed among the sections, but `config["DEFAULT"]` works."""

    def __init__(self) -> None:
        self.defaults = Section(DEFAULT, self)
        self._sections: dict[str, Section] = {}

    def __getitem__(self, name: str) -> Section:
        if name == DEFAULT:
            return self.defaults
        try:
            return self._sections[name]
        except KeyError:
            raise MissingSectionError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def __repr__(self) -> str:
        return f"<Config sections={list(self._sections)}>"

    def add_section(self, name: str, *, exist_ok: bool = False) -> Section:
        if name == DEFAULT:
            raise ValueError("[DEFAULT] always exists; use config.defaults")
        if name in self._sections:
            if exist_ok:
                return self._sections[name]
            raise ValueError(f"section [{name}] already exists")
        section = self._sections[name] = Section(name, self)
        return section

    def lookup_raw(self, section: str, key: str) -> str | None:
        """The raw value `key` has when read in `section` (its own, else the one
        from [DEFAULT]), or None when neither sets it."""
        key = key.lower()
        target = self.defaults if section == DEFAULT else self._sections.get(section)
        if target is None:
            return None
        if key in target._values:
            return target._values[key]
        return self.defaults._values.get(key)
