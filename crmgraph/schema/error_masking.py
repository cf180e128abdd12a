"""Unexpected errors masked: a client sees "Internal server error" and a
request id; the log gets the exception under the same id."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from crmgraph.observability import request_facts

logger = logging.getLogger("crmgraph.errors")

INTERNAL_ERROR_MESSAGE = "Internal server error"


def is_unexpected(error: GraphQLError) -> bool:
    """A fault, not an answer: errors raised on purpose are GraphQLErrors
    (bad page size, PluginFailure naming the plugin) and stay visible."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Replaces unexpected errors by "Internal server error" and a request id
    that is also logged, with the real exception, for whoever operates the server."""

    # strawberry's own control flow (turned into HTTP errors by the view)
    PASS_THROUGH = (
        GraphQLError,
        MissingQueryError,
        CannotGetOperationTypeError,
        InvalidOperationTypeError,
    )

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_ERROR_MESSAGE)

    @functools.cached_property
    def request_id(self) -> str:
        """The HTTP request's id (its X-Request-Id header, its log lines), so
        the error a client reports leads to them (a WebSocket's, for a
        subscription); made when an error is masked outside both."""
        facts = request_facts.current()
        return facts.request_id if facts is not None else uuid.uuid4().hex

    def on_operation(self) -> Iterator[None]:
        try:
            yield from super().on_operation()
        except self.PASS_THROUGH:
            raise
        except Exception as exc:  # escaped from a hook: strawberry would show str(exc)
            self.log(exc)
            raise self.masked(None) from None

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        assert error.original_error is not None
        self.log(error.original_error)
        return self.masked(error)

    def log(self, exc: BaseException) -> None:
        logger.error("unexpected error, requestId=%s", self.request_id, exc_info=exc)

    def masked(self, error: GraphQLError | None) -> GraphQLError:
        extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": self.request_id}
        if error is None:
            return GraphQLError(self.error_message, extensions=extensions)
        return GraphQLError(
            self.error_message,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions=extensions,
        )
