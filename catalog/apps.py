from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.tools import catalog_tools_register
        from chat.llm.tools import registry

        catalog_tools_register(registry)
