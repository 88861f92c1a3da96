"""What loading manifests produces: desired objects keyed by kind and code, plus settings.

Objects keep the mapping exactly as written (after ``${NAME}`` expansion): an absent field
is unmanaged and an explicit ``None`` means "must be empty", so no model output is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.diagnostics import Diagnostic, Location
from reconciler.manifest.settings import Settings

if TYPE_CHECKING:
    from reconciler.manifest.locate import LazyLocations, Locator

# Path of a node inside one YAML file: (document index, key or list index, ...).
NodePath = tuple[int | str, ...]


@dataclass(slots=True)
class DesiredObject:
    """One object as written. Its location is known at once when the event builder read the
    file; when the fast path read it (``fastyaml``), the file is re-read for positions only
    if a message asks for ``location`` (one scan per file, for all its objects)."""

    kind: str  # kind name from reconciler.kinds
    key: str  # code, or the kind name for singletons
    fields: dict[str, Any]
    _location: Location | None  # where the object's mapping starts (None: ask ``_lazy``)
    node_path: NodePath = ()  # where the object sits in its file, for locating fields
    _lazy: LazyLocations | None = field(default=None, repr=False, compare=False)

    @property
    def location(self) -> Location:
        if self._location is None:
            assert self._lazy is not None, "an object without a location must have a resolver"
            self._lazy.resolve()
            assert self._location is not None
        return self._location

    @location.setter
    def location(self, value: Location) -> None:
        self._location = value

    @property
    def file(self) -> str:
        """The file the object is in, without resolving its position."""
        if self._location is not None:
            return self._location.file
        assert self._lazy is not None
        return self._lazy.file


@dataclass(slots=True)
class Manifests:
    # kind name -> key -> object, every registered kind present (possibly empty)
    objects: dict[str, dict[str, DesiredObject]]
    settings: Settings = field(default_factory=Settings)
    # The ``settings`` block as written (its location is resolved only when asked for).
    settings_object: DesiredObject | None = None
    files: list[str] = field(default_factory=list)
    # Resolves the position of a field inside an object lazily (re-reading the file with
    # positions only when a message needs one); without it, the object's location.
    _locator: Locator | None = None

    @property
    def settings_location(self) -> Location | None:
        return self.settings_object.location if self.settings_object is not None else None

    def locate(self, obj: DesiredObject, *field_path: str | int) -> Location:
        if self._locator is None or not field_path:
            return obj.location
        return self._locator(obj, field_path)

    def locate_many(self, requests: list[tuple[DesiredObject, tuple[str | int, ...]]]) -> list[Location]:
        """Locations for several (object, field path) at once: one scan per file."""
        if self._locator is None:
            return [obj.location for obj, _ in requests]
        return self._locator.many(requests)

    def of_kind(self, kind: str) -> dict[str, DesiredObject]:
        return self.objects.get(kind, {})

    def __iter__(self) -> Iterator[DesiredObject]:
        for per_kind in self.objects.values():
            yield from per_kind.values()


@dataclass(slots=True)
class LoadResult:
    """Manifests plus every problem found; ``manifests`` is None only when nothing usable loaded."""

    manifests: Manifests | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return self.manifests is not None and not any(d.is_error for d in self.diagnostics)
