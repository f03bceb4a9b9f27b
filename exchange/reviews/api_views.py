"""Reviews over the API: a work's reviews and rating, one's own review, the rights
holder's reply, reports, and the admins' hide and restore. Every write takes an
Idempotency-Key (required for the POSTs, which are not idempotent by nature)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.catalogue.selectors import work_get_visible
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, PagePagination, page_of
from exchange.reviews import services
from exchange.reviews.selectors import (
    rating_summary,
    review_get_visible,
    reviews_of_work_visible_to,
)
from exchange.reviews.serializers import (
    ModerationIn,
    RatingSummaryOut,
    ReplyIn,
    ReplyOut,
    ReportIn,
    ReviewEditIn,
    ReviewIn,
    ReviewOut,
)


class _Reviews(APIView):
    parser_classes = [JSONParser]

    def get_permissions(self) -> list[permissions.BasePermission]:
        # Reading is public where the work is; every write needs a member.
        if self.request.method in permissions.SAFE_METHODS:
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]


class WorkReviewsView(_Reviews):
    @extend_schema(operation_id="work_reviews_list", parameters=PAGE_PARAMETERS,
                   responses=page_of(ReviewOut, extra={"summary": RatingSummaryOut()}))
    def get(self, request: Request, work_id: str) -> Response:
        work = work_get_visible(user=request.user, work_id=work_id)
        paginator = PagePagination()
        page = paginator.paginate_queryset(
            reviews_of_work_visible_to(user=request.user, work=work), request, view=self)
        response = paginator.get_paginated_response(ReviewOut(page, many=True).data)
        response.data["summary"] = RatingSummaryOut(rating_summary(work)).data
        return response

    @extend_schema(operation_id="work_reviews_create", request=ReviewIn,
                   responses={201: ReviewOut, **errors(403, 409, 429)})
    @idempotent(required=True)
    def post(self, request: Request, work_id: str) -> Response:
        data = ReviewIn(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_create(author=authenticated_user(request), work_id=work_id,
                                        rating=data.validated_data["rating"],
                                        body=data.validated_data["body"])
        return Response(ReviewOut(review).data, status=status.HTTP_201_CREATED)


class ReviewDetailView(_Reviews):
    @extend_schema(operation_id="reviews_retrieve", responses=ReviewOut)
    def get(self, request: Request, review_id: str) -> Response:
        return Response(ReviewOut(review_get_visible(user=request.user,
                                                     review_id=review_id)).data)

    @extend_schema(operation_id="reviews_edit", request=ReviewEditIn,
                   responses={200: ReviewOut, **errors(403, 429)})
    @idempotent(required=False)
    def patch(self, request: Request, review_id: str) -> Response:
        data = ReviewEditIn(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_edit(actor=authenticated_user(request), review_id=review_id,
                                      rating=data.validated_data.get("rating"),
                                      body=data.validated_data.get("body"))
        return Response(ReviewOut(review).data)

    @extend_schema(operation_id="reviews_delete", responses={204: None, **errors(403, 409)})
    @idempotent(required=False)
    def delete(self, request: Request, review_id: str) -> Response:
        services.review_delete(actor=authenticated_user(request), review_id=review_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReplyView(_Reviews):
    @extend_schema(operation_id="reviews_reply_put", request=ReplyIn,
                   responses={200: ReplyOut, 201: ReplyOut, **errors(403, 429)})
    @idempotent(required=False)
    def put(self, request: Request, review_id: str) -> Response:
        data = ReplyIn(data=request.data)
        data.is_valid(raise_exception=True)
        reply, created = services.reply_put(actor=authenticated_user(request),
                                            review_id=review_id,
                                            body=data.validated_data["body"])
        return Response(ReplyOut(reply).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="reviews_reply_delete", responses={204: None, **errors(403)})
    @idempotent(required=False)
    def delete(self, request: Request, review_id: str) -> Response:
        services.reply_delete(actor=authenticated_user(request), review_id=review_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReportView(_Reviews):
    @extend_schema(operation_id="reviews_report", request=ReportIn,
                   responses={201: None, **errors(403, 409, 429)})
    @idempotent(required=True)
    def post(self, request: Request, review_id: str) -> Response:
        data = ReportIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.review_report(reporter=authenticated_user(request), review_id=review_id,
                               reason=data.validated_data["reason"])
        return Response(status=status.HTTP_201_CREATED)


class HideView(_Reviews):
    @extend_schema(operation_id="reviews_hide", request=ModerationIn,
                   responses={200: ReviewOut, **errors(403, 409)})
    @idempotent(required=True)
    def post(self, request: Request, review_id: str) -> Response:
        data = ModerationIn(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_hide(actor=authenticated_user(request), review_id=review_id,
                                      reason=data.validated_data["reason"])
        return Response(ReviewOut(review).data)


class RestoreView(_Reviews):
    @extend_schema(operation_id="reviews_restore", request=ModerationIn,
                   responses={200: ReviewOut, **errors(403, 409)})
    @idempotent(required=True)
    def post(self, request: Request, review_id: str) -> Response:
        data = ModerationIn(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.review_restore(actor=authenticated_user(request),
                                         review_id=review_id,
                                         reason=data.validated_data["reason"])
        return Response(ReviewOut(review).data)
