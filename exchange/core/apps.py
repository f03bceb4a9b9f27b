from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The bottom package: errors, money fields, idempotency, pagination, uploads.

    Its label stays "api" (its first home), so the idempotency table and its migrations
    did not move when the package did.
    """

    name = "exchange.core"
    label = "api"
    verbose_name = "Platform core"
