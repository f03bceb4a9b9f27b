"""Moderation in the Django admin: reviews can be hidden and restored, each with a reason,
through the same audited services as the staff API; nothing is edited by hand."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from exchange.accounts.models import User
from exchange.core.errors import ServiceError
from exchange.readonly_admin import ReadOnlyAdmin
from exchange.reviews.models import MODERATION_REASON_MAX_CHARS, Reply, Report, Review
from exchange.reviews.services import review_hide, review_restore


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=MODERATION_REASON_MAX_CHARS,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class ReportInline(admin.TabularInline):
    model = Report
    extra = 0
    fields = ("created_at", "reporter", "reason")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "work", "author", "rating", "report_count", "hidden_at",
                    "hidden_reason")
    list_filter = ("rating", ("hidden_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "author__username", "work__title", "body")
    inlines = [ReportInline]
    actions = ["hide", "restore"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Review]:
        reviews: QuerySet[Review] = super().get_queryset(request)
        return reviews.select_related("work", "author").annotate(reported=Count("reports"))

    @admin.display(description=gettext_lazy("Reports"), ordering="reported")
    def report_count(self, review: Review) -> int:
        return int(getattr(review, "reported", 0))

    def _moderate(self, request: HttpRequest, queryset: QuerySet[Review], *, title: str,
                  action: str) -> HttpResponse | None:
        """The reason page first; on its POST, the service for each selected review."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done, refused = 0, []
            service = review_hide if action == "hide" else review_restore
            actor = request.user
            if not isinstance(actor, User):  # the admin site lets only staff this far
                raise PermissionDenied
            for review in queryset:
                try:
                    service(actor=actor, review_id=review.pk,
                            reason=form.cleaned_data["reason"])
                    done += 1
                except ServiceError as error:
                    refused.append(f"{review.pk}: {error.message}")
            messages.success(request, _("%(count)d review(s) done.") % {"count": done})
            for line in refused:
                messages.warning(request, line)
            return None
        return TemplateResponse(request, "reviews/admin_moderate.html", {
            **self.admin_site.each_context(request), "title": title, "form": form,
            "reviews": queryset, "action": action, "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description=gettext_lazy("Hide the selected reviews (with a reason)"))
    def hide(self, request: HttpRequest, queryset: QuerySet[Review]) -> HttpResponse | None:
        return self._moderate(request, queryset, title=_("Hide reviews"), action="hide")

    @admin.action(description=gettext_lazy("Restore the selected reviews (with a reason)"))
    def restore(self, request: HttpRequest, queryset: QuerySet[Review]) -> HttpResponse | None:
        return self._moderate(request, queryset, title=_("Restore reviews"), action="restore")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "review", "reporter", "reason")
    search_fields = ("review__id", "reporter__username", "reason")


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "review", "author", "edited_at")
