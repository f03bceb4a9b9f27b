"""Portal pages of community: the feed, notifications and their settings, the wishlist
(saved searches), members' public pages and one's own profile."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import NotFound

from exchange.accounts.models import User, authenticated_user
from exchange.community import notifications, selectors, services
from exchange.community.forms import ProfileForm, SavedSearchForm, SwitchesForm
from exchange.community.models import Channel
from exchange.core.errors import ServiceError

PAGE_SIZE = 24


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/not_found.html", status=404)


@login_required
def feed(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    page = Paginator(selectors.feed_for(user), PAGE_SIZE).get_page(request.GET.get("page"))
    following = selectors.following_of(user)[:100]
    return render(request, "community/feed.html", {"page": page, "following": following})


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    notes = selectors.notifications_for(user, channel=Channel.PORTAL)
    page = Paginator(notes, 50).get_page(request.GET.get("page"))
    for note in page.object_list:
        note.shown_title = notifications.title_of(note)  # type: ignore[attr-defined]
    return render(request, "community/notifications.html", {
        "page": page, "unread": selectors.unread_count(user, channel=Channel.PORTAL)})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one (``id``) or all read; then go where the notification points, if it was
    one and it points inside this site."""
    user = authenticated_user(request)
    raw_id = request.POST.get("id", "")
    if raw_id:
        if not raw_id.isdigit() or len(raw_id) > 18:
            return redirect("community:notifications")
        services.notifications_mark_read(user=user, ids=[int(raw_id)])
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
            return redirect(target)
    else:
        services.notifications_mark_read(user=user)
    return redirect("community:notifications")


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    table = notifications.switches_for(user)
    form = SwitchesForm(request.POST or None, initial_table=table)
    if request.method == "POST" and form.is_valid():
        services.notification_switches_set(user=user, changes=form.table())
        # emails follow the language these settings were saved in
        services.email_language_set(user=user, language=getattr(request, "LANGUAGE_CODE", ""))
        messages.success(request, _("Your notification settings are saved."))
        return redirect("community:notification-settings")
    return render(request, "community/notification_settings.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def wishlist(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    form = SavedSearchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            search, created = services.saved_search_create(
                owner=user, query=data["query"], media_type=data["media_type"],
                currency=data["currency"], max_price_minor=data["max_price_minor"])
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            if created:
                messages.success(request, _("Saved: we will tell you when a new work matches "
                                            "“%(query)s”.") % {"query": search.query})
            else:
                messages.info(request, _("You had already saved this search."))
            return redirect("community:wishlist")
    searches = list(selectors.saved_searches_of(user))
    return render(request, "community/wishlist.html", {"form": form, "searches": searches},
                  status=400 if form.errors else 200)


@login_required
@require_POST
def wishlist_delete(request: HttpRequest, search_id: int) -> HttpResponse:
    try:
        services.saved_search_delete(owner=authenticated_user(request), search_id=search_id)
    except ServiceError:
        return _not_found(request)
    messages.success(request, _("The saved search is deleted."))
    return redirect("community:wishlist")


def member_page(request: HttpRequest, username: str) -> HttpResponse:
    """A member's public page; for a rights holder, their storefront."""
    try:
        member = selectors.member_get_public(username=username)
    except NotFound:
        return _not_found(request)
    viewer = request.user
    works = selectors.works_on_sale_by(member)
    page = Paginator(works, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "community/member.html", {
        "member": member,
        "profile": selectors.profile_of(member),
        "page": page,
        "followers": selectors.follower_count(member),
        "following": (isinstance(viewer, User)
                      and selectors.is_following(follower=viewer, rights_holder=member)),
        "can_follow": (member.is_rights_holder and isinstance(viewer, User)
                       and viewer.pk != member.pk),
    })


@login_required
@require_POST
def member_follow(request: HttpRequest, username: str) -> HttpResponse:
    """Follow or (``action=unfollow``) stop following; both may be repeated safely."""
    user = authenticated_user(request)
    try:
        if request.POST.get("action") == "unfollow":
            services.follow_delete(follower=user, username=username)
            messages.success(request, _("You no longer follow %(name)s.") % {"name": username})
        else:
            services.follow_create(follower=user, username=username)
            messages.success(request, _("You follow %(name)s: their new works will reach your "
                                        "feed.") % {"name": username})
    except NotFound:
        return _not_found(request)
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("community:member", kwargs={"username": username}))


def member_collection(request: HttpRequest, username: str) -> HttpResponse:
    try:
        member, works = selectors.collection_get_public(username=username)
    except NotFound:
        return _not_found(request)
    page = Paginator(works, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "community/collection.html", {
        "member": member, "profile": selectors.profile_of(member), "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    profile = selectors.profile_of(user)
    initial = {"display_name": profile.display_name, "bio": profile.bio,
               "links": "\n".join(profile.links), "collection_public": profile.collection_public}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.profile_update(user=user, changes=form.changes())  # type: ignore[arg-type]
        except ServiceError as exc:
            field = (exc.field or "").split("[")[0] or None
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, _("Your profile is saved."))
            return redirect("community:profile")
    return render(request, "community/profile_edit.html", {"form": form},
                  status=400 if form.errors else 200)
