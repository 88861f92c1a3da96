"""The official m3ter Python SDK (0.9.0) against the emulator's catalog endpoints: products,
meters, aggregations, compound aggregations, plan templates, plans, plan groups and their
links, pricings, account plans and bill grouping keys.

Each kind: create, retrieve, list (auto-paging), update with the version, delete; references
by id checked (an unknown id is a 4xx the SDK raises); deletes refused while something uses
the object; and the SDK's response models parse the emulator's answers without losing a
field (no field outside the model lands in ``model_extra``, and every field the emulator
answers is one the model declares). Every exchange is also checked against the official
document (``full_document_mode_module``: plain and with ``--extra-fields``).

SDK 0.9.0 has no resource for bill grouping keys (``picklists/billgroupingkeys``); they are
driven through the SDK's generic ``client.get/post/put/delete`` with its auth and errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import m3ter
import pytest
from pydantic import BaseModel

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.config import EXTRA_FIELDS
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import FAIL_ENV
from tests.openapi_full import full_document_mode_module  # noqa: F401  (plain and --extra-fields, validated)

_serial = itertools.count(1)
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
ONE_FIELD: list[Any] = [{"category": "MEASURE", "code": "requests", "name": "Requests"}]


def code(prefix: str) -> str:
    return f"sdk_{prefix}_{next(_serial)}"


@pytest.fixture(scope="module")
def emu(full_document_mode_module: bool) -> Iterator[RunningEmulator]:  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FAIL_ENV, raising=False)
        with running_emulator(EmulatorConfig(rate_limit=None)) as running:
            yield running


@pytest.fixture(scope="module")
def client(emu: RunningEmulator) -> Iterator[m3ter.M3ter]:
    c = m3ter.M3ter(api_key=emu.api_key, api_secret=emu.api_secret, org_id=emu.org_id, base_url=emu.base_url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def strict(client: m3ter.M3ter) -> m3ter.M3ter:
    """The client without retries, for refusals."""
    return client.with_options(max_retries=0)


def lossless(model: BaseModel, raw: dict[str, Any]) -> None:
    """The SDK's model kept every field the emulator answered, typed: each raw field is a
    declared field of the model (by alias), except the ``--extra-fields`` ones, which the
    document does not declare and the model keeps as extras; and the model's own dump gives
    back the same values."""
    aliases = {(f.alias or name) for name, f in type(model).model_fields.items()}
    dumped = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    for key, value in raw.items():
        if key in EXTRA_FIELDS:
            assert key in (model.model_extra or {}), f"{type(model).__name__} lost {key!r}"
        else:
            assert key in aliases, f"{type(model).__name__} does not declare {key!r}"
        assert dumped.get(key) == value or _same_number(dumped.get(key), value), (key, dumped.get(key), value)


def _same_number(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float) and float(a) == float(b)


def raw_get(client: m3ter.M3ter, path: str) -> dict[str, Any]:
    got = client.get(f"/organizations/{client.org_id}/{path}", cast_to=object)
    assert isinstance(got, dict)
    return got


def product(client: m3ter.M3ter) -> Any:
    return client.products.create(code=code("prod"), name="Product")


def meter(client: m3ter.M3ter, product_id: str | None) -> Any:
    return client.meters.create(
        code=code("meter"),
        name="API requests",
        product_id=product_id,
        data_fields=[
            {"category": "MEASURE", "code": "requests", "name": "Requests", "unit": "{request}"},
            {"category": "WHERE", "code": "region", "name": "Region"},
        ],
        derived_fields=[
            {"category": "MEASURE", "code": "kreq", "name": "Thousands", "unit": "k{request}",
             "calculation": "requests / 1000"},
        ],
    )


def aggregation(client: m3ter.M3ter, meter_id: str) -> Any:
    return client.aggregations.create(
        code=code("agg"), name="Requests", meter_id=meter_id, target_field="requests", aggregation="SUM",
        unit="requests", rounding="UP", quantity_per_unit=1000,
    )


def template(client: m3ter.M3ter, product_id: str) -> Any:
    return client.plan_templates.create(
        code=code("tmpl"), name="Monthly", product_id=product_id, currency="USD", bill_frequency="MONTHLY",
        standing_charge=10,
    )


def plan(client: m3ter.M3ter, template_id: str) -> Any:
    return client.plans.create(code=code("plan"), name="Standard", plan_template_id=template_id)


# --------------------------------------------------------------------------- products


def test_product_crud_and_auto_paging(emu: RunningEmulator, client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    created = client.products.create(code=code("prod"), name="Analytics", custom_fields={"tier": "gold", "seats": 3})
    assert created.version == 1 and created.custom_fields == {"tier": "gold", "seats": 3}
    lossless(created, raw_get(client, f"products/{created.id}"))
    emu.store.create_many(emu.org_id, "product", [{"code": f"sdk_many_{i:03d}", "name": "n"} for i in range(250)])
    listed = [p.code for p in client.products.list(page_size=200)]  # 200: the endpoint's maximum
    assert len(listed) == len(set(listed)) >= 251 and created.code in listed
    first = client.products.list(page_size=200)
    assert len(first.data) == 200 and first.has_next_page()
    with pytest.raises(m3ter.BadRequestError):
        strict.products.list(page_size=201)
    assert [p.code for p in client.products.list(ids=[created.id])] == [created.code]
    updated = client.products.update(created.id, code=created.code, name="Analytics 2", version=created.version)
    assert updated.version == 2 and updated.name == "Analytics 2" and updated.custom_fields is None
    with pytest.raises(m3ter.BadRequestError, match="version"):
        strict.products.update(created.id, code=created.code, name="x", version=1)
    with pytest.raises(m3ter.BadRequestError, match="already exists"):
        strict.products.create(code=created.code, name="Duplicate")
    assert client.products.retrieve(created.id).name == "Analytics 2"
    assert client.products.delete(created.id).code == created.code
    with pytest.raises(m3ter.NotFoundError):
        strict.products.retrieve(created.id)


def test_product_in_use_by_a_meter_is_not_deleted(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    prod = product(client)
    used = meter(client, prod.id)
    with pytest.raises(m3ter.BadRequestError, match="meter"):
        strict.products.delete(prod.id)
    assert client.products.retrieve(prod.id).code == prod.code
    client.meters.delete(used.id)
    assert client.products.delete(prod.id).id == prod.id


# --------------------------------------------------------------------------- meters, aggregations


def test_meter_crud(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    prod = product(client)
    created = meter(client, prod.id)
    assert created.version == 1 and created.product_id == prod.id
    assert [f.code for f in created.data_fields or []] == ["requests", "region"]
    assert created.derived_fields and created.derived_fields[0].calculation == "requests / 1000"
    lossless(created, raw_get(client, f"meters/{created.id}"))
    assert client.meters.retrieve(created.id).code == created.code
    assert created.code in [m.code for m in client.meters.list(page_size=1)]  # auto-paging one by one
    assert [m.code for m in client.meters.list(codes=[created.code])] == [created.code]
    updated = client.meters.update(
        created.id, code=created.code, name="Renamed", product_id=prod.id, version=1,
        data_fields=[{"category": "MEASURE", "code": "requests", "name": "Requests"}], derived_fields=[],
    )
    assert updated.version == 2 and updated.name == "Renamed" and len(updated.data_fields or []) == 1
    with pytest.raises(m3ter.BadRequestError, match="version"):
        strict.meters.update(created.id, code=created.code, name="x", data_fields=ONE_FIELD, derived_fields=[],
                             version=1)
    with pytest.raises(m3ter.APIStatusError) as refused:
        strict.meters.create(code=code("meter"), name="Orphan", product_id=UNKNOWN_ID, data_fields=ONE_FIELD,
                             derived_fields=[])
    assert 400 <= refused.value.status_code < 500
    assert client.meters.delete(created.id).code == created.code
    with pytest.raises(m3ter.NotFoundError):
        strict.meters.retrieve(created.id)


def test_aggregation_crud_and_references(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    used = meter(client, product(client).id)
    with pytest.raises(m3ter.APIStatusError) as refused:
        strict.aggregations.create(
            code=code("agg"), name="Dangling", meter_id=UNKNOWN_ID, target_field="requests", aggregation="SUM",
            unit="requests", rounding="UP", quantity_per_unit=1,
        )
    assert 400 <= refused.value.status_code < 500 and "meter" in str(refused.value.message).lower()
    created = client.aggregations.create(
        code=code("agg"), name="Requests by region", meter_id=used.id, target_field="requests", aggregation="SUM",
        unit="requests", rounding="UP", quantity_per_unit=1000, segmented_fields=["region"],
        segments=[{"region": "eu"}, {"region": "us"}], default_value=0, custom_fields={"team": "platform"},
    )
    assert created.version == 1 and created.meter_id == used.id and created.segments == [{"region": "eu"},
                                                                                          {"region": "us"}]
    lossless(created, raw_get(client, f"aggregations/{created.id}"))
    assert [a.code for a in client.aggregations.list(codes=[created.code])] == [created.code]
    assert created.code in [a.code for a in client.aggregations.list(page_size=2)]
    with pytest.raises(m3ter.BadRequestError, match="aggregation"):
        strict.meters.delete(used.id)  # the aggregation still uses it
    updated = client.aggregations.update(
        created.id, code=created.code, name="Requests", meter_id=used.id, target_field="requests",
        aggregation="MAX", unit="requests", rounding="NONE", quantity_per_unit=1, version=created.version,
    )
    assert updated.version == 2 and updated.aggregation == "MAX" and updated.segments is None
    assert client.aggregations.retrieve(created.id).aggregation == "MAX"
    assert client.aggregations.delete(created.id).code == created.code
    assert client.meters.delete(used.id).id == used.id


def test_compound_aggregation_crud(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    prod = product(client)
    created = client.compound_aggregations.create(
        code=code("cagg"), name="Cost", product_id=prod.id, calculation="2 * 3", unit="units", rounding="NONE",
        quantity_per_unit=1, evaluate_null_aggregations=True,
    )
    # openapi-full.json (and so the SDK) types POST and PUT answers as AggregationResponse: the
    # compound fields arrive as the model's extras, and a retrieve reads them typed.
    assert created.version == 1 and (created.model_extra or {}).get("productId") == prod.id
    got = client.compound_aggregations.retrieve(created.id)
    assert got.product_id == prod.id and got.evaluate_null_aggregations is True and got.calculation == "2 * 3"
    lossless(got, raw_get(client, f"compoundaggregations/{created.id}"))
    assert [c.code for c in client.compound_aggregations.list(codes=[created.code])] == [created.code]
    assert created.code in [c.code for c in client.compound_aggregations.list(page_size=1)]
    updated = client.compound_aggregations.update(
        created.id, code=created.code, name="Cost", calculation="4 * 5", unit="units", rounding="UP",
        quantity_per_unit=2, version=1,
    )
    assert updated.version == 2 and (updated.model_extra or {}).get("calculation") == "4 * 5"
    assert client.compound_aggregations.retrieve(created.id).product_id is None  # global now
    with pytest.raises(m3ter.APIStatusError) as refused:
        strict.compound_aggregations.create(
            code=code("cagg"), name="Dangling", product_id=UNKNOWN_ID, calculation="1", unit="u", rounding="NONE",
            quantity_per_unit=1,
        )
    assert 400 <= refused.value.status_code < 500
    assert client.compound_aggregations.delete(created.id).code == created.code
    with pytest.raises(m3ter.NotFoundError):
        strict.compound_aggregations.retrieve(created.id)


# --------------------------------------------------------------------------- templates, plans, groups


def test_plan_template_and_plan_crud(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    prod = product(client)
    with pytest.raises(m3ter.APIStatusError) as refused:
        strict.plan_templates.create(code=code("tmpl"), name="No currency", product_id=prod.id, currency="XXX",
                                     bill_frequency="MONTHLY", standing_charge=0)
    assert 400 <= refused.value.status_code < 500
    tmpl = client.plan_templates.create(
        code=code("tmpl"), name="Monthly", product_id=prod.id, currency="USD", bill_frequency="MONTHLY",
        bill_frequency_interval=1, standing_charge=10, standing_charge_interval=1, standing_charge_offset=0,
        minimum_spend=0, custom_fields={"tier": "gold"},
    )
    assert tmpl.version == 1 and tmpl.product_id == prod.id and tmpl.currency == "USD"
    lossless(tmpl, raw_get(client, f"plantemplates/{tmpl.id}"))
    assert tmpl.code in [t.code for t in client.plan_templates.list(page_size=1)]
    assert [t.code for t in client.plan_templates.list(ids=[tmpl.id])] == [tmpl.code]
    created = client.plans.create(
        code=code("plan"), name="Standard", plan_template_id=tmpl.id, minimum_spend=100,
        standing_charge_bill_in_advance=True, custom_fields={"seats": 5},
    )
    assert created.version == 1 and created.plan_template_id == tmpl.id
    lossless(created, raw_get(client, f"plans/{created.id}"))
    assert created.code in [p.code for p in client.plans.list(page_size=1)]
    with pytest.raises(m3ter.BadRequestError, match="plan"):
        strict.plan_templates.delete(tmpl.id)  # the plan still uses it
    with pytest.raises(m3ter.APIStatusError) as dangling:
        strict.plans.create(code=code("plan"), name="Dangling", plan_template_id=UNKNOWN_ID)
    assert 400 <= dangling.value.status_code < 500
    updated = client.plans.update(created.id, code=created.code, name="Standard 2", plan_template_id=tmpl.id,
                                  version=1)
    assert updated.version == 2 and updated.name == "Standard 2" and updated.minimum_spend is None
    t2 = client.plan_templates.update(
        tmpl.id, code=tmpl.code, name="Monthly 2", product_id=prod.id, currency="USD", bill_frequency="ANNUALLY",
        standing_charge=0, version=tmpl.version,
    )
    assert t2.version == 2 and t2.bill_frequency == "ANNUALLY"
    assert client.plans.retrieve(created.id).name == "Standard 2"
    assert client.plans.delete(created.id).code == created.code
    assert client.plan_templates.delete(tmpl.id).code == tmpl.code
    with pytest.raises(m3ter.NotFoundError):
        strict.plans.retrieve(created.id)


def test_plan_group_and_links(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    member = plan(client, template(client, product(client).id).id)
    group = client.plan_groups.create(code=code("group"), name="Bundle", currency="USD", minimum_spend=50)
    assert group.version == 1 and group.currency == "USD"
    lossless(group, raw_get(client, f"plangroups/{group.id}"))
    assert group.code in [g.code for g in client.plan_groups.list(page_size=1)]
    link = client.plan_group_links.create(plan_group_id=group.id, plan_id=member.id)
    assert link.version == 1 and link.plan_group_id == group.id and link.plan_id == member.id
    lossless(link, raw_get(client, f"plangrouplinks/{link.id}"))
    assert link.id in [x.id for x in client.plan_group_links.list(page_size=1)]
    assert client.plan_group_links.retrieve(link.id).plan_id == member.id
    with pytest.raises(m3ter.APIStatusError) as dangling:
        strict.plan_group_links.create(plan_group_id=group.id, plan_id=UNKNOWN_ID)
    assert 400 <= dangling.value.status_code < 500
    with pytest.raises(m3ter.BadRequestError):
        strict.plans.delete(member.id)  # linked into the group
    other = plan(client, member.plan_template_id or "")
    moved = client.plan_group_links.update(link.id, plan_group_id=group.id, plan_id=other.id, version=1)
    assert moved.version == 2 and moved.plan_id == other.id
    updated = client.plan_groups.update(group.id, code=group.code, name="Bundle 2", currency="USD", version=1)
    assert updated.version == 2 and updated.minimum_spend is None
    assert client.plans.delete(member.id).id == member.id  # no longer linked
    assert client.plan_group_links.delete(link.id).id == link.id
    assert client.plan_groups.delete(group.id).code == group.code
    with pytest.raises(m3ter.NotFoundError):
        strict.plan_group_links.retrieve(link.id)


# --------------------------------------------------------------------------- pricings, account plans


def test_pricing_crud(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    prod = product(client)
    agg = aggregation(client, meter(client, prod.id).id)
    target = plan(client, template(client, prod.id).id)
    created = client.pricings.create(
        plan_id=target.id, aggregation_id=agg.id, start_date="2024-01-01T00:00:00Z", cumulative=True,
        description="API calls",
        pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": 0.01},
                       {"lower_limit": 1000, "fixed_price": 0, "unit_price": 0.005}],
    )
    assert created.version == 1 and created.plan_id == target.id and created.aggregation_id == agg.id
    assert [b.lower_limit for b in created.pricing_bands or []] == [0, 1000]
    lossless(created, raw_get(client, f"pricings/{created.id}"))
    assert created.id in [p.id for p in client.pricings.list(page_size=1)]
    with pytest.raises(m3ter.BadRequestError, match="pricing"):
        strict.aggregations.delete(agg.id)  # priced
    with pytest.raises(m3ter.APIStatusError) as dangling:
        strict.pricings.create(plan_id=target.id, aggregation_id=UNKNOWN_ID, start_date="2024-01-01T00:00:00Z",
                               pricing_bands=[{"lower_limit": 0, "fixed_price": 0, "unit_price": 1}])
    assert 400 <= dangling.value.status_code < 500
    updated = client.pricings.update(
        created.id, plan_id=target.id, aggregation_id=agg.id, start_date="2024-01-01T00:00:00Z",
        pricing_bands=[{"lower_limit": 0, "fixed_price": 5, "unit_price": 0.02}], version=1,
    )
    assert updated.version == 2 and [b.unit_price for b in updated.pricing_bands or []] == [0.02]
    with pytest.raises(m3ter.BadRequestError, match="version"):
        strict.pricings.update(created.id, plan_id=target.id, aggregation_id=agg.id,
                               start_date="2024-01-01T00:00:00Z", pricing_bands=[], version=1)
    assert client.pricings.retrieve(created.id).description is None
    assert client.pricings.delete(created.id).id == created.id
    assert client.aggregations.delete(agg.id).id == agg.id


def test_account_plan_crud(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    target = plan(client, template(client, product(client).id).id)
    account = client.accounts.create(code=code("acct"), name="Acme", email_address="billing@acme.example")
    created = client.account_plans.create(
        account_id=account.id, plan_id=target.id, start_date="2024-01-01T00:00:00Z",
        end_date="2025-01-01T00:00:00Z", child_billing_mode="PARENT_BREAKDOWN", code=code("ap"),
    )
    assert created.version == 1 and created.account_id == account.id and created.plan_id == target.id
    lossless(created, raw_get(client, f"accountplans/{created.id}"))
    listed = client.account_plans.list(account=account.id, includeall=True, page_size=1)
    assert [p.id for p in listed] == [created.id]
    assert created.id not in [p.id for p in client.account_plans.list(account=account.id)]  # ended: not today
    with pytest.raises(m3ter.BadRequestError):
        strict.plans.delete(target.id)  # an account is on it
    with pytest.raises(m3ter.BadRequestError):
        strict.accounts.delete(account.id)
    with pytest.raises(m3ter.APIStatusError) as dangling:
        strict.account_plans.create(account_id=account.id, plan_id=UNKNOWN_ID, start_date="2024-01-01T00:00:00Z")
    assert 400 <= dangling.value.status_code < 500
    updated = client.account_plans.update(
        created.id, account_id=account.id, plan_id=target.id, start_date="2024-02-01T00:00:00Z",
        code=created.code, version=1,
    )
    assert updated.version == 2 and updated.start_date is not None and updated.end_date is None
    assert client.account_plans.retrieve(created.id).version == 2
    assert client.account_plans.delete(created.id).id == created.id
    assert client.accounts.delete(account.id).id == account.id
    with pytest.raises(m3ter.NotFoundError):
        strict.account_plans.retrieve(created.id)


# --------------------------------------------------------------------------- bill grouping keys


def test_bill_grouping_keys_through_the_generic_client(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    base = f"/organizations/{client.org_id}/picklists/billgroupingkeys"
    key = code("bgk")
    created = client.post(base, body={"code": key, "name": "Region", "exclusive": True}, cast_to=object)
    assert isinstance(created, dict) and created["version"] == 1 and created["exclusive"] is True
    assert client.get(f"{base}/{created['id']}", cast_to=object) == created
    page = client.get_api_list(base, page=m3ter.pagination.SyncCursor[dict[str, Any]], model=dict[str, Any],
                               options={"params": {"codes": [key]}})
    assert [k["code"] for k in page] == [key]
    updated = client.put(f"{base}/{created['id']}",
                         body={"code": key, "name": "Region", "exclusive": False, "version": 1}, cast_to=object)
    assert isinstance(updated, dict) and updated["version"] == 2 and updated["exclusive"] is False
    with pytest.raises(m3ter.BadRequestError, match="version"):
        strict.put(f"{base}/{created['id']}", body={"code": key, "name": "x", "exclusive": True, "version": 1},
                   cast_to=object)
    deleted = client.delete(f"{base}/{created['id']}", cast_to=object)
    assert isinstance(deleted, dict) and deleted["code"] == key
    with pytest.raises(m3ter.NotFoundError):
        strict.get(f"{base}/{created['id']}", cast_to=object)


# --------------------------------------------------------------------------- list filters


def test_list_filters_the_document_defines(client: m3ter.M3ter) -> None:
    """The SDK's list filters by a referenced object (openapi-full.json: meters and compound
    aggregations by ``productId``, plan templates by ``productId``, plans and plan groups by
    ``accountId``, plan group links by ``planGroup`` and ``plan``, pricings by ``planId``,
    ``planTemplateId`` and ``aggregationId``) answer only the objects that hold it."""
    prod, other = product(client), product(client)
    mine, theirs = meter(client, prod.id), meter(client, other.id)
    assert [m.id for m in client.meters.list(product_id=[prod.id])] == [mine.id]
    assert {m.id for m in client.meters.list(product_id=[prod.id, other.id])} == {mine.id, theirs.id}
    cagg = client.compound_aggregations.create(code=code("cagg"), name="C", product_id=prod.id, calculation="1",
                                               unit="u", rounding="NONE", quantity_per_unit=1)
    assert [c.id for c in client.compound_aggregations.list(product_id=[prod.id])] == [cagg.id]
    tmpl, other_tmpl = template(client, prod.id), template(client, other.id)
    assert [t.id for t in client.plan_templates.list(product_id=prod.id)] == [tmpl.id]
    assert [t.id for t in client.plan_templates.list(product_id=other.id)] == [other_tmpl.id]
    account = client.accounts.create(code=code("acct"), name="Acme", email_address="billing@acme.example")
    general = plan(client, tmpl.id)
    bespoke = client.plans.create(code=code("plan"), name="Bespoke", plan_template_id=tmpl.id, account_id=account.id,
                                  bespoke=True)
    assert [p.id for p in client.plans.list(account_id=[account.id])] == [bespoke.id]
    group = client.plan_groups.create(code=code("group"), name="G", currency="USD", account_id=account.id)
    client.plan_groups.create(code=code("group"), name="Other", currency="USD")
    assert [g.id for g in client.plan_groups.list(account_id=[account.id])] == [group.id]
    link = client.plan_group_links.create(plan_group_id=group.id, plan_id=general.id)
    client.plan_group_links.create(plan_group_id=group.id, plan_id=bespoke.id)
    assert [x.id for x in client.plan_group_links.list(plan=general.id)] == [link.id]
    assert len(list(client.plan_group_links.list(plan_group=group.id))) == 2
    agg = aggregation(client, mine.id)
    bands = [{"lower_limit": 0, "fixed_price": 0, "unit_price": 1}]
    on_plan = client.pricings.create(plan_id=general.id, aggregation_id=agg.id, start_date="2024-01-01T00:00:00Z",
                                     pricing_bands=bands)
    on_template = client.pricings.create(plan_template_id=tmpl.id, aggregation_id=agg.id,
                                         start_date="2024-01-01T00:00:00Z", pricing_bands=bands)
    assert [p.id for p in client.pricings.list(plan_id=general.id)] == [on_plan.id]
    assert [p.id for p in client.pricings.list(plan_template_id=tmpl.id)] == [on_template.id]
    assert {p.id for p in client.pricings.list(aggregation_id=agg.id)} == {on_plan.id, on_template.id}


def test_calculation_references_through_the_sdk(client: m3ter.M3ter, strict: m3ter.M3ter) -> None:
    """A compound aggregation's calculation names aggregations as ``aggregation.<code>``: an
    unknown code is refused, and an aggregation a calculation names is not deleted."""
    agg = aggregation(client, meter(client, product(client).id).id)
    with pytest.raises(m3ter.BadRequestError, match="calculation: aggregation 'nosuch' does not exist"):
        strict.compound_aggregations.create(code=code("cagg"), name="C", calculation="aggregation.nosuch * 2",
                                            unit="u", rounding="NONE", quantity_per_unit=1)
    cagg = client.compound_aggregations.create(code=code("cagg"), name="C", calculation=f"aggregation.{agg.code} * 2",
                                               unit="u", rounding="NONE", quantity_per_unit=1)
    with pytest.raises(m3ter.BadRequestError, match="calculation"):
        strict.aggregations.delete(agg.id)
    client.compound_aggregations.delete(cagg.id)
    assert client.aggregations.delete(agg.id).id == agg.id
