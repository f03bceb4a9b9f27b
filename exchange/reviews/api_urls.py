"""The API routes of reviews (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
