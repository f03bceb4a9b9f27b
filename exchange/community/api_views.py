"""The community API: follows and the feed, notifications and their switches, saved
searches, and members' public pages."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.catalogue.serializers import WorkOut
from exchange.community import notifications, selectors, services
from exchange.community.models import Channel
from exchange.community.serializers import (
    FollowIn,
    FollowOut,
    MarkReadIn,
    MarkReadOut,
    MemberOut,
    NotificationOut,
    ProfileIn,
    ProfileOut,
    SavedSearchIn,
    SavedSearchOut,
    SwitchesIn,
    SwitchesOut,
    UnreadCountOut,
)
from exchange.core.idempotency import idempotent
from exchange.core.jsontypes import JSONObject
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response

_CHANNEL_PARAMETER = OpenApiParameter(
    "channel", str, enum=["portal", "agent"],
    description="Only what was sent to this channel (the agent asks for its own).")
_UNREAD_PARAMETER = OpenApiParameter("unread", bool, description="Only unread ones.")
#: one page of works, for the feed and collections (one schema component for both)
WORK_PAGE = page_of(WorkOut)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _channel(request: Request) -> str | None:
    value = request.query_params.get("channel")
    if value is None:
        return None
    if value not in (Channel.PORTAL, Channel.AGENT):
        raise ValidationError({"channel": [_("portal or agent.")]})
    return value


def _unread_only(request: Request) -> bool:
    value = request.query_params.get("unread", "false").lower()
    if value not in _BOOLEANS:
        raise ValidationError({"unread": [_("true or false.")]})
    return _BOOLEANS[value]


class FollowListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(FollowOut), parameters=PAGE_PARAMETERS,
                   operation_id="follows_list")
    def get(self, request: Request) -> Response:
        return paginated_response(request, self, selectors.following_of(
            authenticated_user(request)), FollowOut)

    @extend_schema(request=FollowIn, responses={200: FollowOut, 201: FollowOut,
                                                **errors(404, 429)})
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        data = FollowIn(data=request.data)
        data.is_valid(raise_exception=True)
        follow, created = services.follow_create(follower=authenticated_user(request),
                                                 username=data.validated_data["username"])
        return Response(FollowOut(follow).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class FollowDeleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(404)})
    @idempotent(required=False)
    def delete(self, request: Request, username: str) -> Response:
        services.follow_delete(follower=authenticated_user(request), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FeedView(APIView):
    """New works on sale from the rights holders one follows, newest first."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=WORK_PAGE, parameters=PAGE_PARAMETERS, operation_id="feed_list")
    def get(self, request: Request) -> Response:
        return paginated_response(request, self, selectors.feed_for(authenticated_user(request)),
                                  WorkOut)


class NotificationListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=page_of(NotificationOut),
                   parameters=[*PAGE_PARAMETERS, _CHANNEL_PARAMETER, _UNREAD_PARAMETER],
                   operation_id="notifications_list")
    def get(self, request: Request) -> Response:
        notes = selectors.notifications_for(authenticated_user(request),
                                            channel=_channel(request))
        if _unread_only(request):
            notes = notes.filter(read_at__isnull=True)
        return paginated_response(request, self, notes, NotificationOut)


class UnreadCountView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=UnreadCountOut, parameters=[_CHANNEL_PARAMETER])
    def get(self, request: Request) -> Response:
        count = selectors.unread_count(authenticated_user(request), channel=_channel(request))
        return Response({"unread": count})


class MarkReadView(APIView):
    """Mark some (``ids``) or all of one's notifications read. Ids of other members'
    notifications change nothing, exactly like ids that do not exist."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=MarkReadIn, responses={200: MarkReadOut})
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        data = MarkReadIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticated_user(request)
        marked = services.notifications_mark_read(user=user,
                                                  ids=data.validated_data.get("ids"))
        return Response({"marked": marked, "unread": selectors.unread_count(user)})


class SwitchesView(APIView):
    """Which channels (portal, email, agent) each kind of notification uses."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=SwitchesOut)
    def get(self, request: Request) -> Response:
        return Response({"switches": notifications.switches_for(authenticated_user(request))})

    @extend_schema(request=SwitchesIn, responses={200: SwitchesOut})
    @idempotent(required=False)
    def patch(self, request: Request) -> Response:
        data = SwitchesIn(data=request.data)
        data.is_valid(raise_exception=True)
        table = services.notification_switches_set(user=authenticated_user(request),
                                                   changes=data.validated_data["switches"])
        return Response({"switches": table})


class SavedSearchListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(SavedSearchOut), parameters=PAGE_PARAMETERS,
                   operation_id="saved_searches_list")
    def get(self, request: Request) -> Response:
        return paginated_response(request, self, selectors.saved_searches_of(
            authenticated_user(request)), SavedSearchOut)

    @extend_schema(request=SavedSearchIn,
                   responses={200: SavedSearchOut, 201: SavedSearchOut, **errors(409, 429)})
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        data = SavedSearchIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        search, created = services.saved_search_create(
            owner=authenticated_user(request), query=fields["query"],
            media_type=fields.get("media_type", ""), currency=fields.get("currency", ""),
            max_price_minor=fields.get("max_price_minor"))
        return Response(SavedSearchOut(search).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SavedSearchDeleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(404)})
    @idempotent(required=False)
    def delete(self, request: Request, search_id: int) -> Response:
        services.saved_search_delete(owner=authenticated_user(request), search_id=search_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def member_body(request: Request, username: str) -> JSONObject:
    member = selectors.member_get_public(username=username)
    profile = selectors.profile_of(member)
    viewer = request.user
    following = (selectors.is_following(follower=viewer, rights_holder=member)
                 if viewer.is_authenticated else None)
    return dict(MemberOut({
        "username": member.username,
        "display_name": profile.display_name or member.username,
        "bio": profile.bio,
        "links": profile.links,
        "is_rights_holder": member.is_rights_holder,
        "follower_count": selectors.follower_count(member),
        "works_on_sale": selectors.works_on_sale_by(member).count(),
        "collection_public": profile.collection_public,
        "following": following,
    }).data)


class MemberView(APIView):
    """A member's public page (a rights holder's storefront); their works on sale are
    ``GET /api/v1/works/?owner=<username>``."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: MemberOut, **errors(404)})
    def get(self, request: Request, username: str) -> Response:
        return Response(member_body(request, username))


class CollectionView(APIView):
    """The works a member holds licences for, if they made their collection public;
    otherwise 404, as for a member who does not exist."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: WORK_PAGE, **errors(404)},
                   parameters=PAGE_PARAMETERS, operation_id="members_collection_list")
    def get(self, request: Request, username: str) -> Response:
        _member, works = selectors.collection_get_public(username=username)
        return paginated_response(request, self, works, WorkOut)


class MyProfileView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=ProfileOut)
    def get(self, request: Request) -> Response:
        return Response(ProfileOut(selectors.profile_of(authenticated_user(request))).data)

    @extend_schema(request=ProfileIn, responses={200: ProfileOut, **errors(429)})
    @idempotent(required=False)
    def patch(self, request: Request) -> Response:
        data = ProfileIn(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.profile_update(user=authenticated_user(request),
                                          changes=data.validated_data)
        return Response(ProfileOut(profile).data)
