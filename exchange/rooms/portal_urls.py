"""The portal pages of rooms (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern

app_name = "rooms"

urlpatterns: list[URLPattern] = []
