"""The ASGI entry point: HTTP to Django, WebSockets to the chat rooms (Channels).

Served by uvicorn (scripts/run, docs/OPERATIONS.md). Django is set up before the rooms'
routes are imported, since they import models.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from exchange.rooms.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_http, "websocket": websocket_application()})
