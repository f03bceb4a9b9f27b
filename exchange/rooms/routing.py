"""The WebSocket routes (exchange/asgi.py serves them beside Django's HTTP)."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from django.urls import re_path

from exchange.rooms.consumers import RoomConsumer
from exchange.rooms.websocket_auth import RoomsAuth

websocket_urlpatterns = [
    re_path(r"^ws/rooms/(?P<kind>work|member)/(?P<target>[^/]{1,150})/$",
            RoomConsumer.as_asgi()),
]


def websocket_application() -> Any:
    return RoomsAuth(URLRouter(websocket_urlpatterns))
