"""The API routes of rooms (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern, path

from exchange.rooms import api_views

urlpatterns: list[URLPattern] = [
    path("rooms/<str:kind>/<str:target>/", api_views.RoomDetailView.as_view(), name="room"),
    path("rooms/<str:kind>/<str:target>/messages/", api_views.RoomMessagesView.as_view(),
         name="room-messages"),
    path("rooms/<str:kind>/<str:target>/mutes/", api_views.RoomMutesView.as_view(),
         name="room-mutes"),
    path("rooms/<str:kind>/<str:target>/kicks/", api_views.RoomKicksView.as_view(),
         name="room-kicks"),
]
