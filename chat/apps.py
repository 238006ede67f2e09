from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat import checks  # noqa: F401 - registers the start-up checks
        from chat.llm.tools import registry
        from chat.tools import chat_tools_register

        chat_tools_register(registry)
