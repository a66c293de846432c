from django.apps import AppConfig
from django.core import checks


class DualstreamConfig(AppConfig):
    name = "dualstream"
    verbose_name = "dualstream"

    def ready(self) -> None:
        from .checks import check_settings  # imports the sections' settings modules: after the apps are loaded

        checks.register(check_settings, "dualstream")
