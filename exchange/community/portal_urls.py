"""The portal pages of community (included by exchange/urls.py at the site's root)."""

from django.urls import URLPattern, path

from exchange.community import portal_views as views

app_name = "community"

urlpatterns: list[URLPattern] = [
    path("feed/", views.feed, name="feed"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("notifications/settings/", views.notification_settings,
         name="notification-settings"),
    path("wishlist/", views.wishlist, name="wishlist"),
    path("wishlist/<int:search_id>/delete/", views.wishlist_delete, name="wishlist-delete"),
    path("members/<str:username>/", views.member_page, name="member"),
    path("members/<str:username>/follow/", views.member_follow, name="member-follow"),
    path("members/<str:username>/collection/", views.member_collection,
         name="member-collection"),
    path("profile/", views.profile_edit, name="profile"),
]
