# The product search index: an FTS5 table on SQLite, a tsvector table with a GIN index on
# PostgreSQL, both kept in sync by triggers (see catalog/search/sqlite.py and postgres.py).
from django.db import migrations

from catalog.search.schema import search_schema_operation


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_import_fields")]

    operations = [search_schema_operation(removable=True)]
