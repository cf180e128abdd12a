"""How each value and JSON structure is written in PostgreSQL and SQLite so
that the database prints exactly what the resolver path prints: ISO
timestamps as Python's ``isoformat()``, amounts with two decimals, global IDs
and cursors in base64, booleans as JSON booleans.

Every value expression here gives, as a ``json_build_object``/``json_object``
argument, the JSON the resolver path would send for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmgraph.db.sqlite_connections import SQLITE_BASE64


class NotCompilable(Exception):
    """This request is answered by the resolver path instead (the reason says why)."""


class Dialect:
    name: str
    # the most key/value pairs one JSON object call takes (function argument limits)
    max_object_pairs: int
    # whether a page of flat objects may be aggregated as records (json_agg of
    # a row: its columns named as the keys), see Render.record_page
    record_pages: bool = False
    # ends a subquery in FROM that the planner must not pull up into the query
    # around it (pulled up, each reference to one of its columns becomes a copy
    # of the column's expression); None: parts every variant of an object has
    # are written in each variant (Render.computed_once)
    kept_apart: str | None = " OFFSET 0"

    def placeholder(self, index: int) -> str:
        raise NotImplementedError

    def literal(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def literals(self, values: Sequence[str]) -> str:
        return ", ".join(self.literal(v) for v in values)

    def case(self, column: str, mapping: Sequence[tuple[str, str]], default: str) -> str:
        """``column``'s value mapped through ``mapping`` (stored -> printed)."""
        if not mapping:
            return default
        whens = " ".join(f"WHEN {self.literal(k)} THEN {self.literal(v)}" for k, v in mapping)
        return f"CASE {column} {whens} ELSE {default} END"

    # -- JSON structure ---------------------------------------------------
    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        raise NotImplementedError

    def embed(self, subquery: str) -> str:
        """A scalar subquery returning JSON, as a value of an enclosing object."""
        raise NotImplementedError

    def embed_column(self, column: str) -> str:
        """A JSON value selected by a subquery, as a value of an object."""
        raise NotImplementedError

    def json_array(self, element: str, order: str, where: str | None = None) -> str:
        """Aggregate: the JSON array of ``element`` over the rows, in ``order``
        (rows already come in that order for SQLite), ``[]`` for none."""
        raise NotImplementedError

    def last_text(self, value: str, order: str, where: str) -> str:
        """Aggregate: ``value`` of the last row in ``order`` among those ``where``."""
        raise NotImplementedError

    def boolean(self, condition: str) -> str:
        raise NotImplementedError

    def empty_array(self) -> str:
        """``[]``, as a value of an object."""
        raise NotImplementedError

    # -- values ---------------------------------------------------------
    def timestamp(self, column: str) -> str:
        raise NotImplementedError

    def date(self, column: str) -> str:
        raise NotImplementedError

    def flag(self, column: str) -> str:
        """A boolean column."""
        return self.boolean(column)

    def money(self, column: str) -> str:
        """A NUMERIC(14, 2) column, as the resolver's Decimal quantized to cents."""
        raise NotImplementedError

    def floating(self, column: str) -> str:
        raise NotImplementedError

    def base64(self, prefix: str, dynamic: str, urlsafe: bool = False) -> str:
        """base64 of the UTF-8 of ``prefix || dynamic`` (any text)."""
        raise NotImplementedError

    def global_id(self, type_name: str, column: str) -> str:
        return self.base64(f"{type_name}:", column)

    def nullable_id(self, type_name: str, column: str) -> str:
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {self.global_id(type_name, column)} END"

    def cursor(self, scope: str, value_json: str | None, pk: str) -> str:
        """``encode_cursor(scope, value, pk)``: base64url of ``["scope",value,pk]``;
        ``value_json`` is SQL for the value's JSON text."""
        prefix = f'["{scope}",'
        value = "'null'" if value_json is None else value_json
        return self.base64(prefix, f"{value} || ',' || {pk} || ']'", urlsafe=True)

    def timestamp_json(self, column: str) -> str:
        return f"'\"' || {self.timestamp(column)} || '\"'"

    def text_json(self, column: str) -> str:
        """A text column as JSON text, as orjson prints it (for a cursor over names)."""
        raise NotImplementedError

    def row_value(self, column: str, name: str) -> str:
        """A customer row's column as JSON a Python reader turns back into the
        value the driver gives (timestamps as ISO text, ``attributes`` as text)."""
        return column

    # -- attributes (the customer's JSON column) --------------------------
    def attribute(self, column: str, name: str) -> str:
        """The stored JSON value, as it is (strings, numbers, booleans, dates)."""
        raise NotImplementedError

    def attribute_decimal(self, column: str, name: str) -> str:
        """A Decimal attribute: ``str(Decimal(str(raw)))``, a JSON string."""
        raise NotImplementedError


class Postgres(Dialect):
    name = "postgres"
    max_object_pairs = 50  # json_build_object: at most 100 arguments
    record_pages = True

    def placeholder(self, index: int) -> str:
        return f"${index}"

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        return f"json_build_object({', '.join(f'{self.literal(k)}, {v}' for k, v in pairs)})"

    def embed(self, subquery: str) -> str:
        return f"({subquery})"

    def embed_column(self, column: str) -> str:
        return column

    def json_array(self, element: str, order: str, where: str | None = None) -> str:
        where_sql = f" FILTER (WHERE {where})" if where else ""
        return f"COALESCE(json_agg({element} ORDER BY {order}){where_sql}, '[]'::json)"

    def last_text(self, value: str, order: str, where: str) -> str:
        return f"(array_agg({value} ORDER BY {order} DESC) FILTER (WHERE {where}))[1]"

    def boolean(self, condition: str) -> str:
        return f"({condition})"

    def empty_array(self) -> str:
        return "'[]'::json"

    def timestamp(self, column: str) -> str:
        # to_json drops trailing zeros of the fraction; isoformat prints six
        # digits, or none for a whole second
        return (
            f"replace(to_char({column} AT TIME ZONE 'UTC', "
            f"'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00'"
        )

    def date(self, column: str) -> str:
        return f"to_char({column}, 'YYYY-MM-DD')"

    def money(self, column: str) -> str:
        return f"({column})::text"

    def floating(self, column: str) -> str:
        # REAL columns come back to Python widened to a double; a whole number
        # prints as 21.0 there, as 21 in PostgreSQL
        wide = f"({column})::float8"
        return (
            f"CASE WHEN {wide} = trunc({wide}) AND abs({wide}) < 1e16 "
            f"THEN ({wide}::text || '.0')::json ELSE to_json({wide}) END"
        )

    def base64(self, prefix: str, dynamic: str, urlsafe: bool = False) -> str:
        encoded = f"encode(convert_to({self.literal(prefix)} || {dynamic}, 'UTF8'), 'base64')"
        # base64 output breaks lines every 76 characters
        if urlsafe:
            return f"translate({encoded}, E'+/\\n', '-_')"
        return f"translate({encoded}, E'\\n', '')"

    def text_json(self, column: str) -> str:
        return f"to_json({column})::text"

    def row_value(self, column: str, name: str) -> str:
        return f"{column}::text" if name == "attributes" else column

    def attribute(self, column: str, name: str) -> str:
        return f"({column} -> {self.literal(name)})"

    def attribute_decimal(self, column: str, name: str) -> str:
        raw = self.attribute(column, name)
        return (
            f"CASE json_typeof({raw}) WHEN 'string' THEN {raw} "
            f"WHEN 'number' THEN to_json({raw}::text) ELSE NULL END"
        )


class SQLite(Dialect):
    name = "sqlite"
    # a copy per variant: SQLite's parser has a fixed stack (100 levels), and the
    # row of its own is one level more per object, which a customer of every
    # type with its roles overflowed under nodes(ids:) ("parser stack overflow")
    kept_apart = None
    max_object_pairs = 60  # json_object: at most 127 arguments

    def placeholder(self, index: int) -> str:
        return "{}"  # piccolo's QueryString, through Database.fetch

    def literal(self, text: str) -> str:
        # QueryString reads {} as a placeholder: double literal braces
        return super().literal(text).replace("{", "{{").replace("}", "}}")

    def json_object(self, pairs: Sequence[tuple[str, str]]) -> str:
        return f"json_object({', '.join(f'{self.literal(k)}, {v}' for k, v in pairs)})"

    def embed(self, subquery: str) -> str:
        # a subquery's value loses its JSON subtype: json() gives it back
        return f"json(({subquery}))"

    def embed_column(self, column: str) -> str:
        return f"json({column})"

    def json_array(self, element: str, order: str, where: str | None = None) -> str:
        where_sql = f" FILTER (WHERE {where})" if where else ""
        return f"json_group_array(json({element})){where_sql}"

    def last_text(self, value: str, order: str, where: str) -> str:
        return f"(json_group_array({value}) FILTER (WHERE {where}) ->> '$[#-1]')"

    def boolean(self, condition: str) -> str:
        return f"json(CASE WHEN {condition} THEN 'true' ELSE 'false' END)"

    def empty_array(self) -> str:
        return "json('[]')"

    def timestamp(self, column: str) -> str:
        # piccolo stores str(datetime in UTC): "2024-01-02 03:04:05.123456+00:00"
        return (
            f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} LIKE '%+00:00' "
            f"THEN replace({column}, ' ', 'T') ELSE replace({column}, ' ', 'T') || '+00:00' END"
        )

    def date(self, column: str) -> str:
        return column

    def money(self, column: str) -> str:
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE printf('%.2f', {column}) END"

    def floating(self, column: str) -> str:
        # Python prints the shortest text that reads back as the same double
        tries = [f"printf('%!.{digits}g', {column})" for digits in (15, 16, 17)]
        return (
            f"CASE WHEN {column} IS NULL THEN NULL "
            f"WHEN CAST({tries[0]} AS REAL) = {column} THEN json({tries[0]}) "
            f"WHEN CAST({tries[1]} AS REAL) = {column} THEN json({tries[1]}) "
            f"ELSE json({tries[2]}) END"
        )

    def base64(self, prefix: str, dynamic: str, urlsafe: bool = False) -> str:
        # SQLite has none: the engine registers one on each connection. Measured
        # on 200,000 IDs: ~1 us per call, where base64 written in SQL (substr,
        # unicode and CASE per 3-byte group) took ~7 us, was ASCII-only, and nested
        # deep enough to overflow SQLite's parser stack in a list inside a list
        return f"{SQLITE_BASE64}({self.literal(prefix)} || {dynamic}, {int(urlsafe)})"

    def text_json(self, column: str) -> str:
        # json_quote escapes as orjson does (quotes, backslashes, control
        # characters as \b \f \n \r \t or \u00xx; the rest as it is)
        return f"json_quote({column})"

    def attribute(self, column: str, name: str) -> str:
        return f"json({column} -> {self.literal('$.' + name)})"

    def attribute_decimal(self, column: str, name: str) -> str:
        return f"CAST({column} ->> {self.literal('$.' + name)} AS TEXT)"


def dialect_for(engine_type: str) -> Dialect:
    return Postgres() if engine_type == "postgres" else SQLite()
