import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_search")]

    operations = [
        migrations.CreateModel(
            name="ProductImageFeatures",
            fields=[
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "image",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="features",
                        serialize=False,
                        to="catalog.productimage",
                    ),
                ),
                ("version", models.PositiveSmallIntegerField()),
                ("source_name", models.CharField(max_length=255)),
                ("keypoints", models.BinaryField()),
                ("descriptors", models.BinaryField()),
                ("colour_histogram", models.BinaryField()),
            ],
            options={"verbose_name_plural": "product image features"},
        ),
    ]
