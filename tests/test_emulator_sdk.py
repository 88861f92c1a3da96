"""The official m3ter Python SDK (0.9.0) against the emulator: auth, auto-paging, CRUD."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import m3ter
import pytest

from reconciler.emulator import EmulatorConfig
from reconciler.emulator.testing import RunningEmulator, running_emulator
from reconciler.store import FAIL_ENV
from tests.openapi_full import full_document_mode_module  # noqa: F401  (plain and --extra-fields, validated)


@pytest.fixture(scope="module")
def emu(full_document_mode_module: bool) -> Iterator[RunningEmulator]:  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FAIL_ENV, raising=False)
        # The SDK asks /oauth/token before every call; those never count against the limit.
        with running_emulator(EmulatorConfig(rate_limit=None)) as running:
            yield running


@pytest.fixture(scope="module")
def client(emu: RunningEmulator) -> Iterator[m3ter.M3ter]:
    c = m3ter.M3ter(api_key=emu.api_key, api_secret=emu.api_secret, org_id=emu.org_id, base_url=emu.base_url)
    yield c
    c.close()


def test_wrong_credentials_are_refused(emu: RunningEmulator) -> None:
    bad = m3ter.M3ter(api_key=emu.api_key, api_secret="wrong", org_id=emu.org_id, base_url=emu.base_url, max_retries=0)
    with pytest.raises(m3ter.PermissionDeniedError):
        bad.organization_config.retrieve()
    other = m3ter.M3ter(
        api_key=emu.api_key, api_secret=emu.api_secret, org_id="someone-else", base_url=emu.base_url, max_retries=0
    )
    with pytest.raises(m3ter.PermissionDeniedError):
        other.accounts.list().data  # noqa: B018


def test_auto_paging_over_many_accounts(emu: RunningEmulator, client: m3ter.M3ter) -> None:
    emu.store.create_many(
        emu.org_id, "account", [{"code": f"SDK{i:03d}", "name": "n", "emailAddress": "a@b.example"} for i in range(230)]
    )
    tokens_before = emu.stats().get("tokens", 0)
    codes = [a.code for a in client.accounts.list(page_size=100)]
    assert len(codes) == 230 and len(set(codes)) == 230
    assert codes[0] == "SDK229" and codes[-1] == "SDK000"  # newest first
    assert emu.stats()["tokens"] - tokens_before == 3  # SDK 0.9.0: one token per call, 3 pages
    some = client.accounts.list(codes=["SDK001", "SDK002", "SDK003"])
    assert sorted(a.code for a in some.data) == ["SDK001", "SDK002", "SDK003"]
    first = client.accounts.list(page_size=10)
    assert len(first.data) == 10 and first.next_token
    assert first.has_next_page()


def test_account_crud(client: m3ter.M3ter) -> None:
    created = client.accounts.create(
        code="SDK_ACME",
        name="Acme",
        email_address="billing@acme.example",
        address={"address_line1": "1 Road", "country": "UK"},
        custom_fields={"tier": "gold", "seats": 5},
        credit_application_order=["BALANCE"],
    )
    assert created.version == 1 and created.address is not None and created.address.country == "UK"
    child = client.accounts.create(
        code="SDK_ACME_CHILD", name="Child", email_address="c@acme.example", parent_account_id=created.id
    )
    kids = client.accounts.list_children(created.id, page_size=200)
    assert [k.code for k in kids.data] == ["SDK_ACME_CHILD"]
    with pytest.raises(m3ter.BadRequestError, match="child account"):
        client.accounts.delete(created.id)
    updated = client.accounts.update(
        created.id, code="SDK_ACME", name="Acme Ltd", email_address="billing@acme.example", version=created.version
    )
    assert updated.version == 2 and updated.name == "Acme Ltd"
    assert updated.address is None and updated.custom_fields is None  # PUT replaced the entity
    with pytest.raises(m3ter.BadRequestError, match="version mismatch"):
        client.with_options(max_retries=0).accounts.update(
            created.id, code="SDK_ACME", name="x", email_address="billing@acme.example", version=1
        )
    with pytest.raises(m3ter.BadRequestError, match="code already exists"):
        client.with_options(max_retries=0).accounts.create(code="SDK_ACME", name="Dup", email_address="d@x.example")
    found = client.accounts.search(search_query="code:SDK_ACME")
    assert [a.code for a in found.data or []] == ["SDK_ACME"]
    assert client.accounts.retrieve(created.id).name == "Acme Ltd"
    assert client.accounts.delete(child.id).code == "SDK_ACME_CHILD"
    assert client.accounts.delete(created.id).code == "SDK_ACME"
    with pytest.raises(m3ter.NotFoundError):
        client.with_options(max_retries=0).accounts.retrieve(created.id)


PICKLISTS = [
    ("currency", "currencies"),
    ("creditReason", "credit_reasons"),
    ("debitReason", "debit_reasons"),
    ("transactionType", "transaction_types"),
]


@pytest.mark.parametrize(("name", "attribute"), PICKLISTS)
def test_picklist_crud(client: m3ter.M3ter, name: str, attribute: str) -> None:
    resource = getattr(client, attribute)
    code = f"SDK_{name.upper()}"
    extra: dict[str, Any] = {"max_decimal_places": 3, "rounding_mode": "HALF_EVEN"} if name == "currency" else {}
    created = resource.create(name="Thing", code=code, **extra)
    assert created.version == 1 and created.archived is False
    archived = resource.update(created.id, name="Thing", code=code, archived=True, version=1, **extra)
    assert archived.archived is True and archived.version == 2
    # archived entries are hidden unless asked for (see reconciler/emulator/app.py)
    assert code not in [e.code for e in resource.list(page_size=100)]
    assert code in [e.code for e in resource.list(archived=True, page_size=100)]
    assert resource.retrieve(created.id).archived is True
    assert resource.delete(created.id).code == code
    with pytest.raises(m3ter.NotFoundError):
        getattr(client.with_options(max_retries=0), attribute).retrieve(created.id)


def test_currency_list_has_usd(client: m3ter.M3ter) -> None:
    usd = [c for c in client.currencies.list() if c.code == "USD"]
    assert len(usd) == 1 and usd[0].max_decimal_places == 2 and usd[0].rounding_mode == "HALF_UP"


def test_organization_config(client: m3ter.M3ter) -> None:
    config = client.organization_config.retrieve()
    assert config.currency == "USD" and config.timezone == "UTC"
    client.currencies.create(name="Pound", code="GBP")
    updated = client.organization_config.update(
        currency="USD",
        timezone="Europe/London",
        year_epoch=config.year_epoch or "2022-01-01",
        month_epoch=config.month_epoch or "2022-01-01",
        week_epoch=config.week_epoch or "2022-01-04",
        day_epoch=config.day_epoch or "2022-01-01",
        days_before_bill_due=3,
        currency_conversions=[{"from": "GBP", "to": "USD", "multiplier": 1.27}],
        scheduled_bill_interval=24,
        scheduled_bill_offset=5,
        version=config.version,
    )
    assert updated.version == (config.version or 0) + 1
    assert updated.timezone == "Europe/London" and updated.days_before_bill_due == 3
    assert updated.currency_conversions is not None and updated.currency_conversions[0].multiplier == 1.27
    with pytest.raises(m3ter.BadRequestError, match="version mismatch"):
        client.with_options(max_retries=0).organization_config.update(
            currency="USD",
            timezone="UTC",
            year_epoch="2022-01-01",
            month_epoch="2022-01-01",
            week_epoch="2022-01-04",
            day_epoch="2022-01-01",
            days_before_bill_due=1,
            version=config.version,
        )


def test_custom_fields(client: m3ter.M3ter) -> None:
    current = client.custom_fields.retrieve()
    updated = client.custom_fields.update(account={"tier": "silver", "seats": 1}, version=current.version)
    assert updated.account == {"tier": "silver", "seats": 1}
    assert updated.version == (current.version or 0) + 1
    assert client.custom_fields.retrieve().account == {"tier": "silver", "seats": 1}
