"""GraphQL for imports: ``importCustomers``, ``importContacts`` and
``importInteractions`` take a CSV file sent as a GraphQL multipart request
(the ``Upload`` scalar) and run the same importer as ``crmgraph import
customers|contacts|interactions`` (:mod:`crmgraph.transfer`), acting as the
caller: their row scope, their right to assign and to write guarded fields.
Contacts and interactions take ``OnDuplicateRecord`` (no ``MERGE``: see
:mod:`crmgraph.transfer.related`). Each needs the ``customer.import``
permission; the file's size is capped by ``CRMGRAPH_IMPORT_MAX_BYTES`` (the
whole request's body, see :mod:`crmgraph.body_limit`).

The payload carries the summary, the first :data:`REJECTED_SHOWN` rejected
rows with every reason, and ``userErrors`` for a request that cannot run at
all (a bad mapping, a file that is not CSV). A failure while importing (a
plugin that raises, a database error) is ``summary.failure``: with
``commit: ALL`` nothing was written; with ``BATCH`` the batches up to
``summary.committedThrough`` were kept.

Contributed by the built-in plugin :mod:`crmgraph.plugins.imports` through
``crmgraph_graphql``. No ``from __future__ import annotations``: the input's
``kind`` is the schema's own ``CustomerKind`` enum.
"""

import enum
from typing import Any

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload
from strawberry.types import Info

from crmgraph.access import CUSTOMER_IMPORT
from crmgraph.input_checks import forbidden_problem
from crmgraph.schema import core_types as core
from crmgraph.schema.mutations import user_errors
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.transfer.entities import entity_for
from crmgraph.transfer.importer import ImportContext, ImportOptions, run_import
from crmgraph.transfer.mapping import MappingError
from crmgraph.transfer.modes import DEFAULT_BATCH_SIZE
from crmgraph.transfer.report import ImportSummary as Summary
from crmgraph.transfer.report import Rejection
from crmgraph.transfer.source import CsvSource, SourceError, text_stream
from crmgraph.validation import Problem

REJECTED_SHOWN = 100
MAX_BATCH_SIZE = 10_000


@strawberry.enum(description="ALL: one transaction for the file; BATCH: one per batch.")
class ImportCommit(enum.Enum):
    ALL = strawberry.enum_value(
        "all", description="One transaction: any refused row and nothing is imported."
    )
    BATCH = strawberry.enum_value(
        "batch",
        description="One transaction per batch: batches before a failure stay imported (resume "
        "with `resumeAfter`).",
    )


@strawberry.enum(description="What to do with a row that repeats a known party.")
class OnDuplicate(enum.Enum):
    SKIP = strawberry.enum_value(
        "skip",
        description="Leave the existing customer as it is; the row is counted in "
        "`skippedDuplicates`.",
    )
    MERGE = strawberry.enum_value(
        "merge", description="Update the existing customer with the row's values."
    )
    CREATE = strawberry.enum_value("create", description="Create a new customer anyway.")


@strawberry.input(description="Feed `field` from the file's `column`; field `-` ignores it.")
class ColumnMappingInput:
    column: str = strawberry.field(description="The column's header in the file.")
    field: str = strawberry.field(
        description="The API field it feeds (e.g. `email`, `client.segment`), or `-` to ignore the"
        " column."
    )


@strawberry.type(description="One cell of a rejected row, as it was in the file.")
class ImportCell:
    column: str = strawberry.field(description="The column's header.")
    value: str = strawberry.field(description="The cell's text.")


@strawberry.type(description="A row that was not imported, with every reason.")
class RejectedRow:
    row: int = strawberry.field(description="Its row in the file; the header is row 1.")
    values: list[ImportCell] = strawberry.field(description="Its cells, as they were in the file.")
    reasons: list[core.UserError] = strawberry.field(
        description="Why it was refused, one error per problem."
    )

    @classmethod
    def of(cls, rejection: Rejection, header: list[str]) -> "RejectedRow":
        return cls(
            row=rejection.row,
            values=[ImportCell(column=h, value=rejection.values.get(h, "")) for h in header],
            reasons=user_errors(list(rejection.problems)),
        )


@strawberry.type(description="What an import did.")
class ImportSummary:
    read: int = strawberry.field(description="Data rows read (the header aside).")
    created: int = strawberry.field(description="Records created.")
    merged: int = strawberry.field(description="Existing customers updated (on duplicate: MERGE).")
    skipped_duplicates: int = strawberry.field(
        description="Rows left out as repeats of existing records."
    )
    roles_added: int = strawberry.field(
        description="Further roles added to existing parties (`addRoles`)."
    )
    rejected: int = strawberry.field(description="Rows refused (see `rejectedRows`).")
    seconds: float = strawberry.field(description="How long the import took.")
    rows_per_second: float = strawberry.field(description="Rows read per second.")
    ignored_columns: list[str] = strawberry.field(description="Columns no field was read from.")
    committed_through: int | None = strawberry.field(
        description="BATCH: the last row of the last committed batch; send it back as "
        "`resumeAfter` to carry on after a failure."
    )
    failure: str | None = strawberry.field(
        description="Why the import stopped, if it did (a plugin's error names the plugin)."
    )

    @classmethod
    def of(cls, summary: Summary) -> "ImportSummary":
        return cls(
            read=summary.read,
            created=summary.created,
            merged=summary.merged,
            skipped_duplicates=summary.skipped_duplicates,
            roles_added=summary.roles_added,
            rejected=summary.rejected,
            seconds=round(summary.seconds, 3),
            rows_per_second=round(summary.rows_per_second, 1),
            ignored_columns=summary.ignored_columns,
            committed_through=summary.committed_through,
            failure=summary.failure,
        )


@strawberry.type(description="The result of an import.")
class ImportPayload:
    summary: ImportSummary | None = strawberry.field(
        description="What the import did; null when the file was refused as a whole."
    )
    rejected_rows: list[RejectedRow] = strawberry.field(
        description=f"The first {REJECTED_SHOWN} rejected rows (`summary.rejected` counts all)."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


def refused(problem: Problem) -> ImportPayload:
    return ImportPayload(summary=None, rejected_rows=[], user_errors=user_errors([problem]))


@strawberry.enum(
    description="What to do with a contact or interaction that repeats one already recorded."
)
class OnDuplicateRecord(enum.Enum):
    SKIP = strawberry.enum_value(
        "skip", description="Leave the existing record; the row is counted in `skippedDuplicates`."
    )
    CREATE = strawberry.enum_value("create", description="Record it again.")


MAPPING = (
    "Which column feeds which field; a column left out is read by its header "
    "(the field's name), and reported in `ignoredColumns` if it names none."
)
COMMIT = "One transaction for the whole file (ALL), or one per batch (BATCH)."
BATCH_SIZE = "Rows per batch (with commit: BATCH)."
ENCODING = "The file's text encoding, e.g. `utf-8`, `latin-1`."


def related_input(name: str, what: str) -> type:
    """The input of importContacts / importInteractions (the same fields)."""
    namespace: dict[str, Any] = {
        "__annotations__": {
            "file": Upload,
            "mapping": list[ColumnMappingInput],
            "on_duplicate": OnDuplicateRecord,
            "commit": ImportCommit,
            "batch_size": int,
            "resume_after": int,
            "delimiter": str | None,
            "encoding": str,
        },
        "file": strawberry.field(description="The CSV file (UTF-8 unless `encoding`)."),
        "mapping": strawberry.field(default_factory=list, description=MAPPING),
        "on_duplicate": strawberry.field(
            default=OnDuplicateRecord.SKIP,
            description="What to do with a row that repeats a record already there.",
        ),
        "commit": strawberry.field(default=ImportCommit.ALL, description=COMMIT),
        "batch_size": strawberry.field(default=DEFAULT_BATCH_SIZE, description=BATCH_SIZE),
        "resume_after": strawberry.field(
            default=1, description="Skip rows up to this one (the header is row 1)."
        ),
        "delimiter": strawberry.field(
            default=None, description="Default: sniffed among , ; tab |."
        ),
        "encoding": strawberry.field(default="utf-8", description=ENCODING),
    }
    cls = type(name, (), namespace)
    return strawberry.input(cls, description=f"A CSV file of {what} and how to read it.")


ImportContactsInput = related_input("ImportContactsInput", "contacts")
ImportInteractionsInput = related_input("ImportInteractionsInput", "interactions")


async def run_upload(info: Info, entity: str, input: Any) -> ImportPayload:
    """Check the request, then import ``input.file`` as ``entity`` for the caller."""
    access = info.context.access
    if not access.can(CUSTOMER_IMPORT):
        return refused(forbidden_problem(None, f"import {entity}", CUSTOMER_IMPORT))
    if not isinstance(input.file, UploadFile):  # a JSON request sent a value instead
        return refused(Problem("file", "send the file as a GraphQL multipart request", "INVALID"))
    if not 1 <= input.batch_size <= MAX_BATCH_SIZE:
        return refused(Problem("batchSize", f"batchSize is 1 to {MAX_BATCH_SIZE}", "OUT_OF_RANGE"))
    if input.delimiter is not None and len(input.delimiter) != 1:
        return refused(Problem("delimiter", "delimiter is one character", "INVALID"))
    kind = getattr(input, "kind", None)
    options = ImportOptions(
        commit=input.commit.value,
        batch_size=input.batch_size,
        on_duplicate=input.on_duplicate.value,
        kind=kind.value if kind is not None else None,
        resume_after=input.resume_after,
        mapping={m.column.strip(): m.field.strip() for m in input.mapping},
        add_roles=getattr(input, "add_roles", False),
    )
    ctx = ImportContext(
        db=info.context.db,
        catalog=info.context.catalog,
        plugin_manager=info.context.plugin_manager,
        phone_region=info.context.settings.default_phone_region,
        actor=info.context.principal.user_id,
        access=access,
    )
    try:
        source = CsvSource(text_stream(input.file.file, input.encoding), input.delimiter)
        summary, rejections = await run_import(
            info.context.db,
            entity_for(entity, ctx, options),
            source,
            options,
            keep_rejections=REJECTED_SHOWN,
        )
    except (MappingError, SourceError, LookupError) as exc:
        return refused(Problem("file", str(exc), "INVALID"))
    if summary.written:
        info.context.events.wake()
    return ImportPayload(
        summary=ImportSummary.of(summary),
        rejected_rows=[RejectedRow.of(r, rejections.header) for r in rejections.first],
        user_errors=[],
    )


UPLOAD_NOTE = (
    "The file is sent as a GraphQL multipart request (send a non-empty `Apollo-Require-Preflight` "
    "header, or an Authorization header). Needs the customer.import permission."
)


def upload_mutation(entity: str, input_type: type, description: str) -> Any:
    """The mutation ``import<Entity>``: ``input_type`` carries a CSV file of
    ``entity`` that :func:`run_upload` imports for the caller."""

    async def resolve(self: Any, info: Info, input: input_type) -> ImportPayload:  # type: ignore[valid-type]
        return await run_upload(info, entity, input)

    resolve.__name__ = f"import_{entity}"
    return strawberry.mutation(resolve, description=f"{description} {UPLOAD_NOTE}")


def build_import_mutation(kind_enum: Any) -> type:
    @strawberry.input(description="A customers CSV file and how to read it.")
    class ImportCustomersInput:
        file: Upload = strawberry.field(description="The CSV file (UTF-8 unless `encoding`).")
        mapping: list[ColumnMappingInput] = strawberry.field(
            default_factory=list, description=MAPPING
        )
        kind: kind_enum | None = strawberry.field(  # type: ignore[valid-type]
            default=None, description="The kind of rows whose kind cell is empty."
        )
        on_duplicate: OnDuplicate = strawberry.field(
            default=OnDuplicate.SKIP,
            description="What to do with a row that is likely an existing customer.",
        )
        add_roles: bool = strawberry.field(
            default=False,
            description="A row that repeats an existing party of another kind adds its kind "
            "to that party as a further role (as `addRole`: its first stage, the row's "
            "attributes of that kind), counted in `rolesAdded`; without it the row is "
            "handled by `onDuplicate` as any repeat.",
        )
        commit: ImportCommit = strawberry.field(default=ImportCommit.ALL, description=COMMIT)
        batch_size: int = strawberry.field(default=DEFAULT_BATCH_SIZE, description=BATCH_SIZE)
        resume_after: int = strawberry.field(
            default=1, description="Skip rows up to this one (the header is row 1)."
        )
        delimiter: str | None = strawberry.field(
            default=None, description="Default: sniffed among , ; tab |."
        )
        encoding: str = strawberry.field(default="utf-8", description=ENCODING)

    @strawberry.type
    class ImportMutation:
        import_customers = upload_mutation(
            "customers", ImportCustomersInput, "Import customers from a CSV file."
        )
        import_contacts = upload_mutation(
            "contacts",
            ImportContactsInput,
            "Import contacts from a CSV file; each row names its customer by "
            "`customer` (ID), `customer.email` or `customer.tax_id`.",
        )
        import_interactions = upload_mutation(
            "interactions",
            ImportInteractionsInput,
            "Import interactions from a CSV file; each row names its customer as "
            "contacts do, and may name a contact (`contact`, `contact.email`).",
        )

    return ImportMutation
