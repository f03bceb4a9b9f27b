"""The portal pages of messaging (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern, path

from exchange.messaging import portal_views as views

app_name = "messaging"

urlpatterns: list[URLPattern] = [
    path("messages/", views.inbox, name="inbox"),
    path("messages/new/", views.new_message, name="new"),
    path("messages/blocks/", views.blocks, name="blocks"),
    path("messages/blocks/<str:username>/remove/", views.unblock, name="unblock"),
    path("messages/<uuid:conversation_id>/", views.thread, name="thread"),
    path("messages/report/<uuid:message_id>/", views.report, name="report"),
]
