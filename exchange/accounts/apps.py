from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "exchange.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from exchange.accounts import schema  # noqa: F401  (registers the OpenAPI extension)
