"""What loading manifests produces: desired objects keyed by kind and code, plus settings.

Objects keep the mapping exactly as written (after ``${NAME}`` expansion): an absent field
is unmanaged and an explicit ``None`` means "must be empty", so no model output is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.diagnostics import Diagnostic, Location
from reconciler.manifest.models import Settings

if TYPE_CHECKING:
    from reconciler.manifest.locate import Locator

# Path of a node inside one YAML file: (document index, key or list index, ...).
NodePath = tuple[int | str, ...]


@dataclass(slots=True)
class DesiredObject:
    kind: str  # kind name from reconciler.kinds
    key: str  # code, or the kind name for singletons
    fields: dict[str, Any]
    location: Location  # where the object's mapping starts
    node_path: NodePath = ()  # where the object sits in its file, for locating fields


@dataclass(slots=True)
class Manifests:
    # kind name -> key -> object, every registered kind present (possibly empty)
    objects: dict[str, dict[str, DesiredObject]]
    settings: Settings = field(default_factory=Settings)
    settings_location: Location | None = None
    files: list[str] = field(default_factory=list)
    # Resolves the position of a field inside an object lazily (re-reading the file with
    # positions only when a message needs one); without it, the object's location.
    _locator: Locator | None = None

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
