"""Creating, repairing and removing the search index in the database (see sqlite.py and
postgres.py for what it is on each)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections, migrations
from django.db.backends.base.base import BaseDatabaseWrapper

from catalog.search import postgres, sqlite


def backend_for(connection: BaseDatabaseWrapper) -> ModuleType:
    if connection.vendor == "sqlite":
        return sqlite
    if connection.vendor == "postgresql":
        return postgres
    raise NotSupportedError(f"Catalog search supports SQLite and PostgreSQL, not {connection.vendor}.")


def search_schema_install(*, connection: BaseDatabaseWrapper) -> None:
    """Create whatever of the index, its triggers and its state is missing, then index every
    product afresh. Safe to run again at any time."""
    backend = backend_for(connection)
    with connection.cursor() as cursor:
        for statement in backend.INSTALL:
            cursor.execute(statement)
    search_index_rebuild(using=connection.alias)


def search_schema_remove(*, connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in backend_for(connection).REMOVE:
            cursor.execute(statement)


def search_index_rebuild(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Index every product afresh. Never needed while the triggers are in place; a repair tool
    for a database whose triggers were dropped or disabled for a while."""
    connection = connections[using]
    with connection.cursor() as cursor:
        for statement in backend_for(connection).REBUILD:
            cursor.execute(statement)


def search_triggers_missing(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Names of index triggers missing from the database (a table rebuild drops them)."""
    connection = connections[using]
    backend = backend_for(connection)
    with connection.cursor() as cursor:
        present = backend.installed_triggers(cursor)
    return [name for name in backend.TRIGGER_NAMES if name not in present]


def _install(apps: Any, schema_editor: Any) -> None:
    search_schema_install(connection=schema_editor.connection)


def _remove(apps: Any, schema_editor: Any) -> None:
    search_schema_remove(connection=schema_editor.connection)


def search_schema_operation(*, removable: bool = False) -> migrations.RunPython:
    """The migration operation that (re)installs the index.

    Add it at the end of any later migration that alters catalog_product or catalog_variant in a
    way SQLite can only do by rebuilding the table (Django does so for most AlterField and
    RemoveField operations), since that drops the table's triggers. `removable` (the migration
    that introduced the index) removes the index when migrating backwards.
    """
    return migrations.RunPython(_install, _remove if removable else _install, elidable=False)
