"""Reads the community's views share, and its access checks: who may be seen, and which
notifications are one's own."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Case, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.filters import search_smart_split

from exchange.accounts.models import User
from exchange.catalogue.filters import WorkFilter
from exchange.catalogue.models import Work, WorkStatus
from exchange.community.models import Channel, Follow, MemberProfile, Notification, SavedSearch

#: the fields the catalogue's text search looks in (its API view's ``search_fields``)
SEARCH_FIELDS = ("title", "description")


def member_get_public(*, username: object) -> User:
    """An active member by user name, or a 404 (the same for a deactivated one)."""
    if not isinstance(username, str) or not 0 < len(username) <= 150:
        raise NotFound(_("No such member."))
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(_("No such member."))
    return user


def profile_of(user: User) -> MemberProfile:
    """The member's profile; an unsaved blank one if they never wrote one."""
    return MemberProfile.objects.filter(user=user).first() or MemberProfile(user=user)


def works_on_sale_by(user: User) -> QuerySet[Work]:
    return Work.objects.select_related("owner").filter(owner=user, status=WorkStatus.READY)


def follower_count(user: User) -> int:
    return Follow.objects.filter(rights_holder=user).count()


def is_following(*, follower: User, rights_holder: User) -> bool:
    return Follow.objects.filter(follower=follower, rights_holder=rights_holder).exists()


def following_of(user: User) -> QuerySet[Follow]:
    """Whom ``user`` follows, newest first."""
    return Follow.objects.select_related("rights_holder").filter(follower=user)


def feed_for(user: User) -> QuerySet[Work]:
    """Works on sale by the rights holders ``user`` follows, newest first."""
    return Work.objects.select_related("owner").filter(
        status=WorkStatus.READY, owner__followers__follower=user,
    ).order_by("-created_at", "-id")


def collection_get_public(*, username: object) -> tuple[User, QuerySet[Work]]:
    """A member's collection (works on sale they hold a licence for), if they made it
    public; otherwise the same 404 as for nobody, so that opting out hides even that the
    member has a collection."""
    user = member_get_public(username=username)
    if not profile_of(user).collection_public:
        raise NotFound(_("No such member."))
    return user, collection_of(user)


def collection_of(user: User) -> QuerySet[Work]:
    """The works ``user`` holds a licence for now: a refunded purchase's revoked licence
    is not ownership (one filter call, so both conditions hold for the same licence)."""
    return Work.objects.select_related("owner").filter(
        status=WorkStatus.READY, licences__buyer=user, licences__revoked_at__isnull=True,
    ).distinct().order_by("-created_at", "-id")


def notifications_for(user: User, *, channel: str | None = None) -> QuerySet[Notification]:
    """``user``'s notifications on ``channel`` (portal or agent; None: both), unread first,
    then newest first."""
    notes = Notification.objects.filter(recipient=user)
    if channel == Channel.PORTAL:
        notes = notes.filter(in_portal=True)
    elif channel == Channel.AGENT:
        notes = notes.filter(in_agent=True)
    else:
        notes = notes.filter(Q(in_portal=True) | Q(in_agent=True))
    unread_first = Case(When(read_at__isnull=True, then=Value(0)), default=Value(1))
    return notes.order_by(unread_first, "-created_at", "-id")


def unread_count(user: User, *, channel: str | None = None) -> int:
    return notifications_for(user, channel=channel).filter(read_at__isnull=True).count()


def saved_searches_of(user: User) -> QuerySet[SavedSearch]:
    return SavedSearch.objects.filter(owner=user)


def saved_search_works(search: SavedSearch, works: QuerySet[Work] | None = None,
                       ) -> QuerySet[Work]:
    """The works on sale a saved search finds, with the catalogue's own search: its
    filter set for media type, currency and price, and DRF's search terms (every term in
    the title or the description)."""
    works = Work.objects.select_related("owner") if works is None else works
    data = {"media_type": search.media_type, "currency": search.currency}
    if search.max_price_minor is not None:
        data["max_price"] = str(search.max_price_minor)
    found: QuerySet[Work] = WorkFilter(data={k: v for k, v in data.items() if v},
                                       queryset=works.filter(status=WorkStatus.READY)).qs
    # DRF's stubs type the argument as a list; DRF itself splits the query string
    for term in search_smart_split(search.query):  # type: ignore[arg-type]
        condition = Q()
        for field in SEARCH_FIELDS:
            condition |= Q(**{f"{field}__icontains": term})
        found = found.filter(condition)
    return found


def saved_search_matches(work: Work) -> Iterator[SavedSearch]:
    """The saved searches ``work`` matches: narrowed in the database by media type and
    price, then each remaining search run against this one work."""
    candidates = SavedSearch.objects.select_related("owner").filter(
        Q(media_type="") | Q(media_type=work.media_type),
        Q(currency="") | Q(currency=work.currency),
        Q(max_price_minor__isnull=True) | Q(max_price_minor__gte=work.price_minor),
        owner__is_active=True,
    ).order_by("pk")
    this_work = Work.objects.filter(pk=work.pk)
    for search in candidates.iterator():
        if saved_search_works(search, this_work).exists():
            yield search


def work_url(work: Work) -> str:
    return reverse("portal:work-detail", kwargs={"work_id": work.pk})
