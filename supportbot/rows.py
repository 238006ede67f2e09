"""Model instances from our own SQL, as `Model.objects.raw()` makes them, without its per-query
work.

A turn runs four such reads (its conversation, its history, the catalog's products and their
variants). For every query `RawQuerySet` works out again which column goes to which field and
which converters apply (`resolve_model_init_order`, `get_converters`), reads the cursor's
description and fetches row by row. The same SQL always has the same columns, so here that plan
is made once per statement and connection, and the rows are fetched at once: a turn's store and
catalog lookup took 0.4 ms less CPU (2.57 -> 2.16 ms, bench/turn_steps.py; docs/benchmarks.md,
ninth round).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import FieldDoesNotExist
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.base import DEFERRED

M = TypeVar("M", bound=Model)

# A converter as Django's compiler calls it: (value, expression, connection) -> value.
Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]

# Statements whose plan is kept, per connection: ours are a handful of fixed strings (the catalog's
# vary with the number of ids); this only bounds a caller that builds SQL with values inside.
MAX_PLANS = 256


@dataclass(frozen=True)
class _Plan:
    positions: tuple[int, ...]  # per concrete field of the model: its column, or -1 (deferred)
    extras: tuple[tuple[str, int], ...]  # columns that are no field: set as attributes
    converters: tuple[tuple[int, tuple[Converter, ...], Any], ...]  # column, converters, expression
    complete: bool  # every concrete field read, in the model's own order
    width: int  # columns of the statement when the plan was made


# Per connection (each thread has its own), as the backend's converters are bound to it.
_plans: weakref.WeakKeyDictionary[BaseDatabaseWrapper, dict[tuple[type[Model], str], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def models_from_sql(model: type[M], sql: str, params: Sequence[Any], *, using: str = DEFAULT_DB_ALIAS) -> list[M]:
    """The rows of `sql` (a SELECT) as instances of `model`, as `model.objects.raw(sql, params)`
    would give them: columns named like a field's column fill that field, fields not selected are
    deferred, other columns become attributes. The primary key must be selected.

    Raises what the database raises, and FieldDoesNotExist when the primary key is missing.
    """
    connection = connections[using]
    adapt = connection.ops.adapt_unknown_value
    with connection.cursor() as cursor:
        cursor.execute(sql, tuple(adapt(value) for value in params))
        rows = cursor.fetchall()
        if not rows:
            return []
        plan = _plan_get(connection, model, sql, cursor, width=len(rows[0]))
    if plan.converters:
        rows = [_converted(row, plan.converters, connection) for row in rows]
    instances: list[M] = []
    for row in rows:
        values = row if plan.complete else [row[i] if i >= 0 else DEFERRED for i in plan.positions]
        instance = model(*values)  # what Model.from_db does, with the columns already placed
        instance._state.adding = False
        instance._state.db = using
        for name, position in plan.extras:
            setattr(instance, name, row[position])
        instances.append(instance)
    return instances


def _converted(row: Sequence[Any], converters: Any, connection: BaseDatabaseWrapper) -> list[Any]:
    values = list(row)
    for position, functions, expression in converters:
        value = values[position]
        for function in functions:
            value = function(value, expression, connection)
        values[position] = value
    return values


def _plan_get(connection: BaseDatabaseWrapper, model: type[Model], sql: str, cursor: Any, *, width: int) -> _Plan:
    plans = _plans.setdefault(connection, {})
    plan = plans.get((model, sql))
    # Another width: the table changed under the running process (a `SELECT *` after a migration).
    if plan is None or plan.width != width:
        if len(plans) >= MAX_PLANS:
            plans.clear()
        # The description only then: psycopg builds it anew on every read.
        plan = plans[(model, sql)] = _plan_make(connection, model, [column[0] for column in cursor.description])
    return plan


def _plan_make(connection: BaseDatabaseWrapper, model: type[Model], columns: list[str]) -> _Plan:
    if model.from_db.__func__ is not Model.from_db.__func__:  # type: ignore[attr-defined]
        raise TypeError(f"{model.__name__} overrides from_db: load it with {model.__name__}.objects.raw()")
    name = connection.introspection.identifier_converter
    at = {name(column): position for position, column in enumerate(columns)}
    fields = model._meta.concrete_fields
    positions = tuple(at.get(name(field.column), -1) for field in fields)
    if positions[fields.index(model._meta.pk)] < 0:
        raise FieldDoesNotExist("Raw query must include the primary key")
    own = {name(field.column) for field in fields}
    extras = tuple((column, position) for position, column in enumerate(columns) if name(column) not in own)
    converters = []
    for field, position in zip(fields, positions, strict=True):
        if position < 0:
            continue
        expression = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if functions:
            converters.append((position, tuple(functions), expression))
    complete = positions == tuple(range(len(fields))) and not extras
    return _Plan(
        positions=positions, extras=extras, converters=tuple(converters), complete=complete, width=len(columns)
    )
