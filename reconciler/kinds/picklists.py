"""``creditReasons:``, ``debitReasons:``, ``transactionTypes:`` — picklists with nothing but
code, name and the ``archived`` flag (openapi-full.json, CreditReasonRequest,
DebitReasonRequest, TransactionTypeRequest)."""

from __future__ import annotations

from reconciler.kinds.base import Kind
from reconciler.kinds.fields import PICKLIST_FIELDS, Picklist


class CreditReason(Picklist):
    """``creditReasons:`` — a credit reason picklist entry."""


class DebitReason(Picklist):
    """``debitReasons:`` — a debit reason picklist entry."""


class TransactionType(Picklist):
    """``transactionTypes:`` — a transaction type picklist entry."""


def _plain_picklist(name: str, key: str, path: str, model: type[Picklist]) -> Kind:
    return Kind(name=name, manifest_key=key, api_path=f"picklists/{path}", model=model,
                archivable=True, deletable=True, request_spec=PICKLIST_FIELDS)


CREDIT_REASON = _plain_picklist("creditReason", "creditReasons", "creditreasons", CreditReason)
DEBIT_REASON = _plain_picklist("debitReason", "debitReasons", "debitreasons", DebitReason)
TRANSACTION_TYPE = _plain_picklist("transactionType", "transactionTypes", "transactiontypes", TransactionType)
