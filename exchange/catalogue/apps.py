from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "exchange.catalogue"
    label = "catalogue"
    verbose_name = "Catalogue"
