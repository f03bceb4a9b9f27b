"""The portal pages of rooms (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern, path

from exchange.rooms import portal_views

app_name = "rooms"

urlpatterns: list[URLPattern] = [
    path("rooms/work/<str:work_id>/", portal_views.work_room, name="work"),
    path("rooms/member/<str:username>/", portal_views.member_room, name="member"),
]
