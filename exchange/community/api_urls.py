"""The API routes of community (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
