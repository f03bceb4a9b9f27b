"""The API routes of messaging (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
