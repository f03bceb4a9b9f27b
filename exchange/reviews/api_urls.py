"""The API routes of reviews (included by exchange/api/urls.py under /api/v1/)."""

from django.urls import path

from exchange.reviews import api_views

urlpatterns = [
    path("works/<str:work_id>/reviews/", api_views.WorkReviewsView.as_view(),
         name="work-reviews"),
    path("reviews/<str:review_id>/", api_views.ReviewDetailView.as_view(), name="review"),
    path("reviews/<str:review_id>/reply/", api_views.ReplyView.as_view(), name="review-reply"),
    path("reviews/<str:review_id>/reports/", api_views.ReportView.as_view(),
         name="review-reports"),
    path("reviews/<str:review_id>/hide/", api_views.HideView.as_view(), name="review-hide"),
    path("reviews/<str:review_id>/restore/", api_views.RestoreView.as_view(),
         name="review-restore"),
]
