from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "surveys.live"
    label = "live"
    verbose_name = "Live deliberation"
