"""The admin of community: notifications, follows and saved searches to look at; public
profiles to moderate (clearing an abusive one is an audited action, not a hand edit)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.community.models import Follow, MemberProfile, Notification, SavedSearch
from exchange.community.notifications import KIND_MESSAGE
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Every kind but private messages': who writes to whom, and about what, is for the
    members alone (the messaging admin shows reported messages only)."""

    list_display = ("recipient", "kind", "title", "created_at", "read_at", "emailed")
    list_filter = ("kind", "emailed")
    search_fields = ("recipient__username", "title")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).exclude(kind=KIND_MESSAGE)


@admin.register(Follow)
class FollowAdmin(ReadOnlyAdmin):
    list_display = ("follower", "rights_holder", "created_at")
    search_fields = ("follower__username", "rights_holder__username")


@admin.register(SavedSearch)
class SavedSearchAdmin(ReadOnlyAdmin):
    list_display = ("owner", "query", "media_type", "currency", "max_price_minor", "created_at")
    search_fields = ("owner__username", "query")


@admin.register(MemberProfile)
class MemberProfileAdmin(ReadOnlyAdmin):
    list_display = ("user", "display_name", "collection_public", "updated_at")
    search_fields = ("user__username", "display_name", "bio")
    actions = ["clear_public_text"]

    @admin.action(description=_("Clear the public text (display name, bio, links)"))
    def clear_public_text(self, request: HttpRequest, queryset: QuerySet[MemberProfile]) -> None:
        actor = request.user if isinstance(request.user, User) else None
        with transaction.atomic():
            profiles = list(queryset.select_for_update())
            for profile in profiles:
                before = {"display_name": profile.display_name, "bio": profile.bio,
                          "links": profile.links}
                profile.display_name, profile.bio, profile.links = "", "", []
                profile.save(update_fields=["display_name", "bio", "links", "updated_at"])
                audit_record(actor=actor, action="profile.clear", target=profile,
                             data={"before": before})
        self.message_user(request, ngettext("%(count)d profile cleared.",
                                            "%(count)d profiles cleared.", len(profiles))
                          % {"count": len(profiles)}, messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
