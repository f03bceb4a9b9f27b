"""The portal pages of messaging (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern

app_name = "messaging"

urlpatterns: list[URLPattern] = []
