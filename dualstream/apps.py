from django.apps import AppConfig


class DualstreamConfig(AppConfig):
    name = "dualstream"
    verbose_name = "dualstream"
