"""The API routes of messaging (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern, path

from exchange.messaging import api_views as views

urlpatterns: list[URLPattern] = [
    path("messages/", views.MessageListCreateView.as_view(), name="messages"),
    path("messages/unread/", views.UnreadView.as_view(), name="messages-unread"),
    path("messages/relayed/", views.RelayedListCreateView.as_view(), name="messages-relayed"),
    path("messages/relayed/<str:relayed_id>/", views.RelayedDetailView.as_view(),
         name="messages-relayed-detail"),
    path("messages/conversations/", views.ConversationListView.as_view(),
         name="messages-conversations"),
    path("messages/conversations/<str:conversation_id>/", views.ConversationDetailView.as_view(),
         name="messages-conversation"),
    path("messages/<str:message_id>/read/", views.MessageReadView.as_view(),
         name="messages-read"),
    path("messages/<str:message_id>/reports/", views.MessageReportView.as_view(),
         name="messages-reports"),
    path("members/<str:username>/devices/", views.MemberDevicesView.as_view(),
         name="member-devices"),
    path("blocks/", views.BlockListCreateView.as_view(), name="blocks"),
    path("blocks/<str:username>/", views.BlockDeleteView.as_view(), name="block"),
]
