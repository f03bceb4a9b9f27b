"""The portal pages of reviews (included by exchange/urls.py at the site's root)."""

from django.urls import path

from exchange.reviews import portal_views

app_name = "reviews"

urlpatterns = [
    path("works/<str:work_id>/reviews/", portal_views.review_create, name="create"),
    path("reviews/<str:review_id>/edit/", portal_views.review_edit, name="edit"),
    path("reviews/<str:review_id>/delete/", portal_views.review_delete, name="delete"),
    path("reviews/<str:review_id>/reply/", portal_views.reply_put, name="reply"),
    path("reviews/<str:review_id>/reply/delete/", portal_views.reply_delete,
         name="reply-delete"),
    path("reviews/<str:review_id>/report/", portal_views.review_report, name="report"),
]
