"""The portal pages of community (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern

app_name = "community"

urlpatterns: list[URLPattern] = []
