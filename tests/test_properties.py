"""Property tests of plan/apply (issue 11 item 8), over random live organizations.

1. Convergence: from any live organization and any valid manifests, either the plan is
   refused at plan time with a message, or one apply succeeds completely and the next plan
   is empty — at parallelism 1 and 8, on the local backend, and for a smaller sample on the
   m3ter backend against the emulator over real sockets on 127.0.0.1.
2. Saved plans cannot lie: a saved plan plus any single live change to an object it touches
   makes ``apply --plan`` refuse, changing nothing.
3. Both again with a pricing catalog in the live organization and the manifests (issue 15):
   products, meters, aggregations, compound aggregations, plan templates, plans, plan groups
   and their links, pricings, account plans and bill grouping keys, moved, re-pointed,
   restarted at another date and pruned (``test_catalog_*``).

Run with the default ``ci`` profile, or ``--hypothesis-profile=deep`` for a long run. A
counterexample prints the live organization and the manifests as YAML; turn it into a named
test in ``tests/test_regressions.py``.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from reconciler import kinds
from reconciler.backends import BackendOptions
from reconciler.backends.base import Backend, BackendError
from reconciler.backends.local import LocalBackend
from reconciler.backends.m3ter import M3terBackend
from reconciler.backends.m3ter_auth import Credentials
from reconciler.backends.retry import RetryPolicy
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.kinds import READ_ONLY_FIELDS
from reconciler.manifest import load_manifests
from reconciler.plan import Change
from reconciler.services import plan_loaded, save_plan
from tests.conftest import run_cli
from tests.strategies import PICKLIST_KINDS, Scenario, check_convergence, scenarios, seed, snapshot

# -- 1. convergence ---------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 8])
@given(scenario=scenarios())
def test_one_apply_converges_or_the_plan_is_refused(parallelism: int, scenario: Scenario) -> None:
    note(repr(scenario))
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp) / "org.sqlite")
        try:
            seed(backend, scenario.live)
            outcome = check_convergence(backend, scenario.manifests, Path(tmp), parallelism=parallelism)
            note(f"outcome: {outcome}")
        finally:
            backend.close()


@given(scenario=scenarios(), data=st.data())
def test_any_order_that_depends_on_allows_converges(scenario: Scenario, data: st.DataObject) -> None:
    """At parallelism N, apply may run any change whose ``dependsOn`` have succeeded; whether
    two independent changes race is up to thread timing. Running them one by one in an order
    Hypothesis picks among those ``dependsOn`` allows makes a missing dependency (a currency
    deleted before the accounts that use it, a child moved under its old child before that
    child moved away) fail every time, not one run in a hundred."""
    note(repr(scenario))

    def choose(ready: list[int]) -> int:
        return data.draw(st.sampled_from(ready))

    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp) / "org.sqlite")
        try:
            seed(backend, scenario.live)
            note(f"outcome: {check_convergence(backend, scenario.manifests, Path(tmp), parallelism=1, choose=choose)}")
        finally:
            backend.close()


# The emulator is started once for the module and every example gets an organization of its
# own (the emulator serves the org ids it was started with), so examples never share state.
# A deep run (two emulator properties, both parallelisms, shrinking included) takes well over
# a thousand of them.
EMULATOR_ORGS = tuple(f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 2501))
_org_counter = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(rate_limit=None, org_ids=EMULATOR_ORGS)) as running:
        yield running


def _m3ter_backend(emu: RunningEmulator, org_id: str, parallelism: int) -> M3terBackend:
    return M3terBackend(
        org_id,
        Credentials(api_key=emu.api_key, api_secret=emu.api_secret),
        base_url=emu.base_url,
        options=BackendOptions(rate_limit=1000, parallelism=parallelism),
        retry_policy=RetryPolicy(max_attempts=5, base_delay=0.02, max_delay=0.2),
    )


@pytest.mark.parametrize("parallelism", [1, 8])
@settings(
    max_examples=max(8, settings().max_examples // 8),  # a smaller sample of the profile: HTTP is slower
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(max_accounts=4))
def test_converges_over_the_emulator(emulator: RunningEmulator, parallelism: int, scenario: Scenario) -> None:
    # function_scoped_fixture is suppressed on purpose: the only fixture is module-scoped
    # (the parametrized ``parallelism`` is a plain value), and each example takes a new org.
    _emulator_convergence(emulator, parallelism, scenario)


def _emulator_convergence(emulator: RunningEmulator, parallelism: int, scenario: Scenario) -> None:
    """Seed the scenario's live organization into a fresh emulator organization, then one
    apply over HTTP converges or is refused at plan time."""
    note(repr(scenario))
    org_id = EMULATOR_ORGS[next(_org_counter) % len(EMULATOR_ORGS)]
    # an org used before (deep runs wrap around the pool) is skipped
    assume(not emulator.store.count(org_id, "account") and not emulator.store.count(org_id, "product"))
    with tempfile.TemporaryDirectory() as tmp:
        backend = _m3ter_backend(emulator, org_id, parallelism)
        try:
            seed(backend, scenario.live)
            note(f"outcome: {check_convergence(backend, scenario.manifests, Path(tmp), parallelism=parallelism)}")
        finally:
            backend.close()


# -- 2. saved plans cannot lie ----------------------------------------------------------------

MUTATIONS = ("bump version", "delete", "delete and re-create with the same code", "create the absent code")


def _put_body(entity: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in entity.items() if k not in READ_ONLY_FIELDS}
    body["version"] = entity["version"]
    return body


def _create_body(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in READ_ONLY_FIELDS}


def mutate(backend: Backend, change: Change, how: str) -> str:
    """Make one live change to the object ``change`` touches, as someone in the Console
    would; returns what was done (a delete the organization refuses becomes a version bump)."""
    kind = kinds.get(change.kind)
    if kind.singleton:
        backend.put_singleton(kind, _put_body(backend.get_singleton(kind)))
        return "bump version"
    if change.action == "create":
        if kind.by_code and kind.name in ("account", *PICKLIST_KINDS):
            body: dict[str, Any] = {"code": change.key, "name": f"Made by hand {change.key}"}
            if kind.name == "account":
                body["emailAddress"] = "hand@example.com"
        else:
            # a catalog object: made by hand as the plan would make it (what it names must
            # already be live; the identity, code or plan + aggregation + startDate, is taken)
            assume(not _has_placeholder(change.body))
            body = {**change.body, **({"name": f"Made by hand {change.key}"} if "name" in change.body else {})}
        try:
            backend.create(kind, body)
        except BackendError:  # the organization refuses it as it is (e.g. a required field)
            assume(False)
        return "create the absent code"
    current = _find(backend, kind, change)
    assert current is not None, f"{change.kind} {change.key} should be live"
    if how in ("delete", "delete and re-create with the same code"):
        try:
            backend.delete(kind, str(current["id"]))
        except BackendError:  # has children, or a currency in use: the org refuses
            how = "bump version"
        else:
            if how == "delete":
                return how
            backend.create(kind, _create_body(current))
            return how
    backend.update(kind, str(current["id"]), _put_body(current))
    return "bump version"


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, dict):
        return "$ref" in value or any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def _find(backend: Backend, kind: kinds.Kind, change: Change) -> dict[str, Any] | None:
    """The live object a change touches: by its id (objects without a code have only that)."""
    if change.id is not None:
        live = backend.fetch_live({kind.name: None}).get(kind.name, [])
        return next((e for e in live if str(e.get("id")) == change.id), None)
    return backend.find_by_code(kind, change.key)


def _saved_plan_refuses_after_a_live_change(scenario: Scenario, data: st.DataObject) -> None:
    note(repr(scenario))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "org.sqlite"
        backend = LocalBackend(path)
        try:
            seed(backend, scenario.live)
            directory = scenario.manifests.write(Path(tmp) / "manifests")
            outcome = plan_loaded(load_manifests([str(directory)]), backend)
            assume(outcome.plan is not None and outcome.plan.changes)
            assert outcome.plan is not None
            plan_file = Path(tmp) / "plan.json"
            save_plan(outcome.plan, str(plan_file))

            change = data.draw(st.sampled_from(outcome.plan.changes), label="touched change")
            how = data.draw(st.sampled_from(MUTATIONS), label="live change")
            done = mutate(backend, change, how)
            note(f"live change: {done} on {change.action} {change.kind} {change.key}")
            before = snapshot(backend)

            result = run_cli(
                "apply", "--plan", str(plan_file), "--backend", f"local:{path}",
                "--auto-approve", "--allow-delete", "--force",
            )  # fmt: skip
            after = snapshot(backend)
            assert result.code == 1, f"apply --plan did not refuse ({done}):\n{result.output}"
            assert after == before, f"apply --plan refused but changed the organization ({done}):\n{result.output}"
        finally:
            backend.close()


@given(scenario=scenarios(max_accounts=5), data=st.data())
def test_a_saved_plan_refuses_after_any_live_change_to_what_it_touches(scenario: Scenario, data: st.DataObject) -> None:
    _saved_plan_refuses_after_a_live_change(scenario, data)


# -- 3. the same properties with a pricing catalog (issue 15) ---------------------------------
# Live organizations and manifests also hold products, meters, aggregations, compound
# aggregations, plan templates, plans, plan groups and their links, pricings, account plans
# and bill grouping keys (tests/strategies.py, "the pricing catalog"). Fewer accounts, so an
# example stays about as small as one without a catalog.

CATALOG = {"max_accounts": 4, "catalog": True}
# half the profile's examples: catalog examples seed and plan more objects, and the
# suite's budget allows them about 15 s in ``ci``
catalog_sample = settings(max_examples=max(10, settings().max_examples // 2))


def _local_convergence(scenario: Scenario, parallelism: int, choose: Any = None) -> None:
    note(repr(scenario))
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp) / "org.sqlite")
        try:
            seed(backend, scenario.live)
            outcome = check_convergence(backend, scenario.manifests, Path(tmp), parallelism=parallelism, choose=choose)
            note(f"outcome: {outcome}")
        finally:
            backend.close()


@pytest.mark.parametrize("parallelism", [1, 8])
@catalog_sample
@given(scenario=scenarios(**CATALOG))
def test_catalog_one_apply_converges_or_the_plan_is_refused(parallelism: int, scenario: Scenario) -> None:
    _local_convergence(scenario, parallelism)


@catalog_sample
@given(scenario=scenarios(**CATALOG), data=st.data())
def test_catalog_any_order_that_depends_on_allows_converges(scenario: Scenario, data: st.DataObject) -> None:
    _local_convergence(scenario, 1, choose=lambda ready: data.draw(st.sampled_from(ready)))


@pytest.mark.parametrize("parallelism", [1, 8])
@settings(
    max_examples=max(8, settings().max_examples // 8),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios(max_accounts=3, catalog=True))
def test_catalog_converges_over_the_emulator(emulator: RunningEmulator, parallelism: int, scenario: Scenario) -> None:
    _emulator_convergence(emulator, parallelism, scenario)


@catalog_sample
@given(scenario=scenarios(**CATALOG), data=st.data())
def test_catalog_a_saved_plan_refuses_after_any_live_change(scenario: Scenario, data: st.DataObject) -> None:
    _saved_plan_refuses_after_a_live_change(scenario, data)


@settings(max_examples=max(8, settings().max_examples // 4))
@given(scenario=scenarios(**CATALOG))
def test_catalog_export_round_trips(scenario: Scenario) -> None:
    """Whatever the live organization holds (catalog included, objects our apply never built),
    ``export`` writes manifests that validate and that plan as no change against it."""
    note(repr(scenario))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "org.sqlite"
        backend = LocalBackend(path)
        try:
            seed(backend, scenario.live)
        finally:
            backend.close()
        out = Path(tmp) / "export"
        result = run_cli("export", "--out", str(out), "--backend", f"local:{path}")
        assert result.code == 0, result.output
        loaded = load_manifests([str(out)])
        assert loaded.ok, "exported manifests must validate:\n" + "\n".join(d.format() for d in loaded.diagnostics)
        backend = LocalBackend(path)
        try:
            outcome = plan_loaded(loaded, backend)
            assert outcome.plan is not None, [d.format() for d in outcome.diagnostics]
            assert not outcome.plan.changes, [(c.action, c.kind, c.key, c.diff) for c in outcome.plan.changes]
        finally:
            backend.close()
