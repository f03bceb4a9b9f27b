"""The API routes of community (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import URLPattern, path

from exchange.community import api_views as views

urlpatterns: list[URLPattern] = [
    path("follows/", views.FollowListCreateView.as_view(), name="follows"),
    path("follows/<str:username>/", views.FollowDeleteView.as_view(), name="follow-delete"),
    path("feed/", views.FeedView.as_view(), name="feed"),
    path("notifications/", views.NotificationListView.as_view(), name="notifications"),
    path("notifications/unread-count/", views.UnreadCountView.as_view(),
         name="notifications-unread-count"),
    path("notifications/read/", views.MarkReadView.as_view(), name="notifications-read"),
    path("notifications/switches/", views.SwitchesView.as_view(),
         name="notifications-switches"),
    path("saved-searches/", views.SavedSearchListCreateView.as_view(), name="saved-searches"),
    path("saved-searches/<int:search_id>/", views.SavedSearchDeleteView.as_view(),
         name="saved-search-delete"),
    path("members/<str:username>/", views.MemberView.as_view(), name="member"),
    path("members/<str:username>/collection/", views.CollectionView.as_view(),
         name="member-collection"),
    path("me/profile/", views.MyProfileView.as_view(), name="my-profile"),
]
