"""The portal pages of reviews (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern

app_name = "reviews"

urlpatterns: list[URLPattern] = []
