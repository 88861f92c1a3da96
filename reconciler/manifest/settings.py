"""``settings:`` — how a plan treats live objects no manifest lists, which fields it never
diffs, and its safety limit. ``prune`` and ``ignoreFields`` are built from the kind registry,
so a new kind gets its prune switch (with exactly the removals it supports) and its
ignore list without an edit here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr, create_model

from reconciler import kinds
from reconciler.kinds.fields import Number, Strict


def _prune_type(modes: tuple[str, ...]) -> Any:
    return Literal[(False, *modes)]


Prune: type[Strict] = create_model(  # type: ignore[call-overload]
    "Prune",
    __base__=Strict,
    **{k.manifest_key: (_prune_type(k.prune_modes), False) for k in kinds.KINDS if k.prune_modes},
)
IgnoreFields: type[Strict] = create_model(  # type: ignore[call-overload]
    "IgnoreFields",
    __base__=Strict,
    **{k.name: (list[StrictStr], Field(default_factory=list)) for k in kinds.KINDS},
)


class Safety(Strict):
    maxRemovePercent: Annotated[Number, Field(ge=0, le=100)] = 30


class Settings(Strict):
    """``settings:`` — how the plan treats live objects that no manifest lists."""

    prune: Prune = Field(default_factory=Prune)  # type: ignore[valid-type]
    ignoreFields: IgnoreFields = Field(default_factory=IgnoreFields)  # type: ignore[valid-type]
    safety: Safety = Field(default_factory=Safety)


def default_settings() -> Settings:
    """``Settings()`` without building its validators: manifests without a ``settings:`` block
    (most, and every benchmark's) would otherwise pay ~30 ms for validators of the registry's
    every prune switch and ignore list, a tenth of validating 10k accounts. Equal to
    ``Settings()`` (a test holds them to that)."""
    return Settings.model_construct(
        _fields_set=set(),
        prune=Prune.model_construct(_fields_set=set()),
        # every list given: resolving a ``default_factory=list`` inspects ``list``'s signature
        ignoreFields=IgnoreFields.model_construct(
            _fields_set=set(), **{name: [] for name in IgnoreFields.model_fields}
        ),
        safety=Safety.model_construct(_fields_set=set()),
    )
