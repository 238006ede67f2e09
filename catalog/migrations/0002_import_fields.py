# Reserved for fields the catalog import needs; other migrations (0003, 0004) depend on this name.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = []
