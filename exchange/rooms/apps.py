from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "exchange.rooms"
    label = "rooms"
    verbose_name = "Rooms"
