from django.apps import AppConfig


class TestsConfig(AppConfig):
    """The test suite's own app: its models give the library tests tables that are not the demo's."""

    name = "tests"
    default_auto_field = "django.db.models.BigAutoField"
