"""Which customer (and, for an interaction, which contact) a row is about.

A row names its customer by the columns an export carries: ``customer.ref``
(:mod:`.references`), ``customer`` (the global ID), ``customer.email`` and
``customer.tax_id``. The e-mail and tax id are the party's own and mean the
same in any database; a global ID means something only in the database it
came from. So:

- a ``customer.ref`` the database knows (an earlier import made or found
  that customer, or it is this database's own) names the customer, and the
  other columns are not needed; an unknown one from elsewhere makes the
  row's global ID another database's, never used here;
- every e-mail and tax id the row gives must fit the customer (compared
  normalised, as the duplicate matcher compares them: case, dots and
  plus-addressing where the domain allows, a tax id's punctuation);
- the global ID picks the customer when it names one of those, or when the
  row gives neither; otherwise it is taken for an ID of another database and
  left aside (so an export imports into another database holding the same
  customers; drop the ``customer`` column, ``--map customer=-``, when
  customers there may lack both keys);
- a merged customer stands for its survivor, through any of the three (the
  global ID as ``customer(id:)`` follows it: :func:`crmgraph.db.writes.survivor`);
- a customer the caller may not see is one that does not exist (writes do
  not reveal what reads hide), and one that is deleted is refused as a write
  to it is (:func:`crmgraph.db.writes.check_live`).

A row is rejected when nothing fits (``NOT_FOUND``), when several customers
fit and the ID does not pick one (``AMBIGUOUS``: its message names the first
:data:`AMBIGUOUS_LISTED` by ID and counts the rest), or when the one found is
deleted (``DELETED``). Lookups cost a few statements per batch: e-mails and
tax ids through the match-key index (live customers), then the rows by id;
merged customers, which have no match keys, are read once per import.

Contacts (``contact.ref``, ``contact``, ``contact.email``) follow the same
rule among the contacts of the row's customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.db.normalize import normalize_email, normalize_tax_id
from crmgraph.dedupe import matching
from crmgraph.ids import InvalidId, decode_id, encode_id
from crmgraph.transfer.coerce import cell
from crmgraph.transfer.references import RefBook
from crmgraph.validation import Errors, Problem, UserInputError

CUSTOMER, CUSTOMER_EMAIL, CUSTOMER_TAX_ID = "customer", "customer.email", "customer.tax_id"
CUSTOMER_REF = "customer.ref"
CUSTOMER_FIELDS = (CUSTOMER, CUSTOMER_EMAIL, CUSTOMER_TAX_ID, CUSTOMER_REF)
CONTACT, CONTACT_EMAIL, CONTACT_REF = "contact", "contact.email", "contact.ref"
CONTACT_FIELDS = (CONTACT, CONTACT_EMAIL, CONTACT_REF)
IDS_PER_STATEMENT = 1000
# the records an AMBIGUOUS message names (an e-mail a thousand customers share
# made a message of a thousand IDs, in every rejected row and its report)
AMBIGUOUS_LISTED = 5

Row = dict[str, Any]
Key = tuple[str, str]  # (match key type, normal value)


def decoded(errors: Errors, path: str, text: str | None, type_name: str) -> int | None:
    if text is None:
        return None
    try:
        return decode_id(text, type_name)[1]
    except InvalidId as exc:
        errors.add(path, f"{path}: {exc}", "INVALID_ID")
        return None


def named_pk(
    errors: Errors,
    path: str,
    global_id: str | None,
    ref: str | None,
    known: Mapping[str, int],
    book: RefBook,
) -> int | None:
    """The pk a row names: the record of a ref the database knows, else its
    global ID (``path``), unless an unknown ref from elsewhere makes that ID
    another database's, never one of ours."""
    if ref is not None and ref in known:
        return known[ref]
    if ref is not None and book.foreign(ref):
        return None
    return decoded(errors, path, global_id, book.type_name)


def choose(
    errors: Errors,
    what: str,
    by_id: tuple[str, int | None] | None,
    by_keys: Sequence[tuple[str, str, set[int]]],
    label: Callable[[int], str],
) -> int | None:
    """The one record the row names. ``by_id`` is (path, the pk it names or
    None); ``by_keys`` (path, the key as a message shows it, pks holding it) for each key
    given. Problems go on ``errors``."""
    for path, shown, holders in by_keys:
        if not holders:
            errors.add(path, f"no {what} has {shown}", "NOT_FOUND")
    if errors:
        return None
    if by_keys:
        fitting = set.intersection(*(holders for _, _, holders in by_keys))
        named = by_id[1] if by_id is not None else None
        if named in fitting:
            return named
        if len(fitting) == 1:
            return next(iter(fitting))
        shown = " and ".join(shown for _, shown, _ in by_keys)
        if not fitting:
            errors.add(by_keys[0][0], f"no {what} has {shown}", "NOT_FOUND")
        else:
            listed = ", ".join(label(pk) for pk in sorted(fitting)[:AMBIGUOUS_LISTED])
            if len(fitting) > AMBIGUOUS_LISTED:
                listed += f" and {len(fitting) - AMBIGUOUS_LISTED:,} more"
            errors.add(
                by_keys[0][0],
                f"{len(fitting):,} {what}s have {shown} ({listed}): give the {what}'s ID",
                "AMBIGUOUS",
            )
        return None
    if by_id is None:
        return None
    path, named = by_id
    if named is None:
        errors.add(path, f"{what} not found", "NOT_FOUND")
    return named


@dataclass(frozen=True)
class CustomerRef:
    """The customer columns of one row, as given."""

    global_id: str | None
    email: str | None
    tax_id: str | None
    ref: str | None = None

    @classmethod
    def of(cls, cells: Mapping[str, str]) -> CustomerRef:
        return cls(*(cell(cells.get(name)) for name in CUSTOMER_FIELDS))

    def match_keys(self) -> list[tuple[str, str, Key]]:
        """(path, how a message shows it, match key) for the e-mail and tax id given; a value
        that normalises to nothing keeps a key no customer holds."""
        found = []
        if self.email is not None:
            normal = normalize_email(self.email) or ""
            found.append((CUSTOMER_EMAIL, f"e-mail {self.email!r}", (matching.EMAIL, normal)))
        if self.tax_id is not None:
            normal = normalize_tax_id(self.tax_id) or ""
            found.append((CUSTOMER_TAX_ID, f"tax id {self.tax_id!r}", (matching.TAX_ID, normal)))
        return found


class CustomerFinder:
    """Finds the customers of a batch of rows (see the module's rules)."""

    def __init__(self, db: Database, sees: Callable[[Row], bool] | None) -> None:
        self.db = db
        self.sees = sees or (lambda row: True)
        self.merged: dict[Key, set[int]] = defaultdict(set)
        self.book = RefBook(db, "Customer", None)

    async def prepare(self, book: RefBook) -> None:
        """Index the merged customers by e-mail and tax id (they have no match
        keys); merges are rare next to the customers kept."""
        self.book = book
        rows = await self.db.fetch(
            "SELECT id, email, attributes FROM customer WHERE merged_into IS NOT NULL"
        )
        for row in rows:
            probe = matching.Probe(
                name=None,
                email=row["email"],
                tax_id=queries.load_json(row["attributes"]).get("tax_id"),
            )
            for key_type, value in matching.match_keys(probe):
                if key_type in (matching.EMAIL, matching.TAX_ID):
                    self.merged[(key_type, value)].add(row["id"])

    async def find(self, refs: Sequence[CustomerRef]) -> list[Row | list[Problem]]:
        """For each ref, in order, the live customer row or the problems."""
        errors = [Errors() for _ in refs]
        known = await self.book.resolve(ref.ref for ref in refs if ref.ref is not None)
        named = [
            named_pk(e, CUSTOMER, ref.global_id, ref.ref, known, self.book)
            for e, ref in zip(errors, refs, strict=True)
        ]
        wanted = {key for ref in refs if ref.ref not in known for _, _, key in ref.match_keys()}
        # every holder, crowded blocks too: an e-mail many customers share
        # names none of them (AMBIGUOUS) unless the global ID picks one
        live = (
            await matching.customers_by_keys(self.db, wanted, (), crowded_too=True)
            if wanted
            else {}
        )
        holders = {
            key: {row["id"] for row in live.get(key, ())} | self.merged.get(key, set())
            for key in wanted
        }
        rows = await self._rows(
            {pk for pk in named if pk} | {pk for h in holders.values() for pk in h}
        )
        survivors: dict[int, Row | None] = {}

        async def load(pk: int) -> Row | None:
            if pk not in rows:
                rows.update(await self._rows({pk}))
                rows.setdefault(pk, None)  # type: ignore[arg-type]
            return rows[pk]

        async def standing_for(pk: int | None) -> int | None:
            """The visible survivor a pk stands for."""
            if pk is None:
                return None
            if pk not in survivors:
                survivors[pk] = await writes.survivor(rows.get(pk), load)
            found = survivors[pk]
            return found["id"] if found is not None and self.sees(found) else None

        results: list[Row | list[Problem]] = []
        for ref, pk, row_errors in zip(refs, named, errors, strict=True):
            if ref.ref is not None and ref.ref in known:
                results.append(self._by_ref(row_errors, await standing_for(pk), rows))
                continue
            by_id = None
            elsewhere = ref.ref is not None and self.book.foreign(ref.ref)
            if ref.global_id is not None and not row_errors and not elsewhere:
                by_id = (CUSTOMER, await standing_for(pk))
            by_keys = []
            for path, value, key in ref.match_keys():
                fits = {await standing_for(holder) for holder in sorted(holders[key])}
                by_keys.append((path, value, {found for found in fits if found is not None}))
            chosen = choose(row_errors, "customer", by_id, by_keys, _customer_label)
            if chosen is None and not row_errors and ref.ref is not None:
                row_errors.add(
                    CUSTOMER_REF,
                    f"no customer came with ref {ref.ref!r}, and no e-mail or tax id finds one",
                    "NOT_FOUND",
                )
            elif chosen is None and not row_errors:
                row_errors.add(
                    CUSTOMER, "the row names no customer (its ID, e-mail or tax id)", "REQUIRED"
                )
            if chosen is not None:
                try:
                    writes.check_live(rows[chosen], by_keys[0][0] if by_keys else CUSTOMER)
                except UserInputError as exc:
                    row_errors.problems.extend(exc.problems)
            results.append(row_errors.problems if row_errors else rows[chosen])  # type: ignore[index]
        return results

    @staticmethod
    def _by_ref(row_errors: Errors, found: int | None, rows: dict[int, Row]) -> Row | list[Problem]:
        """The customer a known ref names (its survivor), if it is there and live."""
        if found is None:
            row_errors.add(CUSTOMER_REF, "customer not found", "NOT_FOUND")
            return row_errors.problems
        try:
            writes.check_live(rows[found], CUSTOMER_REF)
        except UserInputError as exc:
            return exc.problems
        return rows[found]

    async def _rows(self, ids: Iterable[int]) -> dict[int, Row]:
        ordered = sorted(ids)
        rows: dict[int, Row] = {}
        for start in range(0, len(ordered), IDS_PER_STATEMENT):
            chunk = ordered[start : start + IDS_PER_STATEMENT]
            # the party lock first (crmgraph.db.writes.lock_parties): a merge of
            # one of these waits for the batch, or has finished and is followed
            await writes.lock_parties(self.db, chunk)
            rows |= {row["id"]: row for row in await queries.customers_by_ids(self.db, chunk)}
        return rows


def _customer_label(pk: int) -> str:
    return encode_id("Customer", pk)


def _contact_label(pk: int) -> str:
    return encode_id("Contact", pk)


@dataclass(frozen=True)
class ContactRef:
    global_id: str | None
    email: str | None
    ref: str | None = None

    @classmethod
    def of(cls, cells: Mapping[str, str]) -> ContactRef:
        return cls(*(cell(cells.get(name)) for name in CONTACT_FIELDS))

    @property
    def given(self) -> bool:
        return self.global_id is not None or self.email is not None or self.ref is not None


async def find_contacts(
    db: Database, wanted: Sequence[tuple[int, ContactRef]], book: RefBook
) -> list[int | list[Problem]]:
    """For each (customer pk, ref) naming a contact, the contact's pk or the
    problems; one statement for the batch. A contact named by ID (or ref)
    alone must be the customer's, as ``logInteraction`` requires."""
    ids: set[int] = set()
    errors = [Errors() for _ in wanted]
    named = []
    known = await book.resolve(ref.ref for _, ref in wanted if ref.ref is not None)
    for (_, ref), row_errors in zip(wanted, errors, strict=True):
        pk = named_pk(row_errors, CONTACT, ref.global_id, ref.ref, known, book)
        named.append(pk)
        if pk is not None:
            ids.add(pk)
    customers = {customer for customer, _ in wanted}
    contacts: dict[int, Row] = {}
    if customers:
        where = queries.Where()
        where.add_in("customer", sorted(customers))
        by_id = queries.Where()
        if ids:
            by_id.add_in("id", sorted(ids))
        sql = f"SELECT id, customer, email FROM contact WHERE {where.sql()}"
        if ids:
            sql += f" OR {by_id.sql()}"
        contacts = {r["id"]: r for r in await db.fetch(sql, *where.args, *by_id.args)}
    by_email: dict[tuple[int, str], set[int]] = defaultdict(set)
    for row in contacts.values():
        normal = normalize_email(row["email"])
        if normal:
            by_email[(row["customer"], normal)].add(row["id"])
    results: list[int | list[Problem]] = []
    for (customer, ref), pk, row_errors in zip(wanted, named, errors, strict=True):
        if row_errors:
            results.append(row_errors.problems)
            continue
        if ref.ref is not None and ref.ref in known:
            results.append(_contact_by_ref(row_errors, contacts.get(pk), customer))  # type: ignore[arg-type]
            continue
        by_keys = []
        if ref.email is not None:
            holders = by_email.get((customer, normalize_email(ref.email) or ""), set())
            by_keys.append((CONTACT_EMAIL, f"e-mail {ref.email!r}", set(holders)))
        by_id = None
        elsewhere = ref.ref is not None and book.foreign(ref.ref)
        if ref.global_id is not None and not elsewhere:
            row = contacts.get(pk)  # type: ignore[arg-type]
            if row is not None and row["customer"] != customer and not by_keys:
                row_errors.add(CONTACT, "contact belongs to another customer", "INVALID")
                results.append(row_errors.problems)
                continue
            by_id = (CONTACT, pk if row is not None else None)
        chosen = choose(row_errors, "contact", by_id, by_keys, _contact_label)
        if chosen is None and not row_errors:
            row_errors.add(CONTACT_REF, f"no contact came with ref {ref.ref!r}", "NOT_FOUND")
        results.append(row_errors.problems if row_errors else chosen)  # type: ignore[arg-type]
    return results


def _contact_by_ref(errors: Errors, row: Row | None, customer: int) -> int | list[Problem]:
    """The contact a known ref names, if it is still there and the customer's."""
    if row is None:
        errors.add(CONTACT_REF, "contact not found", "NOT_FOUND")
    elif row["customer"] != customer:
        errors.add(CONTACT_REF, "contact belongs to another customer", "INVALID")
    return errors.problems if errors else int(row["id"])  # type: ignore[index]
