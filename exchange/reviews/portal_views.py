"""Reviews on the portal: the form and list on a work's page (``{% work_reviews work %}``
in templates/portal/work_detail.html), an edit page for the author, the rights holder's
reply and members' reports. Every write goes through the API's services, once per form
key; a refusal is a message on the work's page, and someone else's review a 403 page."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework.exceptions import NotFound, PermissionDenied

from exchange.accounts.models import authenticated_user
from exchange.catalogue.selectors import work_get_visible
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.reviews import services
from exchange.reviews.forms import OnceForm, ReplyForm, ReportForm, ReviewForm
from exchange.reviews.models import Review
from exchange.reviews.selectors import review_get_for_author, review_get_visible


def _on_work_page(review_or_work_id: Review | str) -> HttpResponse:
    if isinstance(review_or_work_id, Review):
        url = reverse("portal:work-detail", args=[review_or_work_id.work_id])
        return redirect(f"{url}#review-{review_or_work_id.pk}")
    return redirect(f"{reverse('portal:work-detail', args=[review_or_work_id])}#reviews")


def _form_errors(form: ReviewForm | ReplyForm | ReportForm | OnceForm) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


def _guarded(request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
    """Missing or invisible: the not-found page; visible but not yours: the 403 page."""
    try:
        return view()
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    except PermissionDenied:
        return render(request, "portal/forbidden.html", status=403)


def _run(request: HttpRequest, key: str, action: Callable[[], object], done: str) -> bool:
    """Run ``action`` once for this form key; its refusal becomes the page's message."""
    try:
        ran, _result = run_once(user=authenticated_user(request), key=key, action=action)
    except ServiceError as error:
        messages.error(request, error.message)
        return False
    if ran:
        messages.success(request, done)
    return ran


@login_required
@require_POST
def review_create(request: HttpRequest, work_id: str) -> HttpResponse:
    def view() -> HttpResponse:
        user = authenticated_user(request)
        work = work_get_visible(user=user, work_id=work_id)
        form = ReviewForm(request.POST)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
            return _on_work_page(str(work.pk))
        data = form.cleaned_data
        _run(request, data["once"], lambda: services.review_create(
            author=user, work_id=work.pk, rating=data["rating"], body=data["body"]),
            _("Thank you: your review is published."))
        return _on_work_page(str(work.pk))

    return _guarded(request, view)


@login_required
def review_edit(request: HttpRequest, review_id: str) -> HttpResponse:
    """The author's page for their review: change it, or take it down."""

    def view() -> HttpResponse:
        user = authenticated_user(request)
        review = review_get_for_author(user=user, review_id=review_id)
        form = ReviewForm(request.POST or None, initial={
            "once": form_key(), "rating": review.rating, "body": review.body})
        if request.method == "POST" and form.is_valid():
            try:
                review = services.review_edit(actor=user, review_id=review.pk,
                                              rating=form.cleaned_data["rating"],
                                              body=form.cleaned_data["body"])
            except ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None,
                               error.message)
            else:
                messages.success(request, _("Your review is saved."))
                return _on_work_page(review)
        return render(request, "reviews/edit.html", {
            "review": review, "form": form,
            "delete_form": OnceForm(initial={"once": form_key()}, auto_id="id_delete_%s"),
        }, status=400 if form.errors else 200)

    return _guarded(request, view)


@login_required
@require_POST
def review_delete(request: HttpRequest, review_id: str) -> HttpResponse:
    def view() -> HttpResponse:
        user = authenticated_user(request)
        review = review_get_for_author(user=user, review_id=review_id)
        work_id = str(review.work_id)
        form = OnceForm(request.POST)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
            return _on_work_page(review)
        if _run(request, form.cleaned_data["once"],
                lambda: services.review_delete(actor=user, review_id=review.pk),
                _("Your review is deleted.")):
            return _on_work_page(work_id)
        return redirect("reviews:edit", review_id=review.pk)

    return _guarded(request, view)


@login_required
@require_POST
def reply_put(request: HttpRequest, review_id: str) -> HttpResponse:
    def view() -> HttpResponse:
        user = authenticated_user(request)
        review = review_get_visible(user=user, review_id=review_id)
        if review.work.owner_id != user.pk:
            raise PermissionDenied
        form = ReplyForm(request.POST)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
        else:
            _run(request, form.cleaned_data["once"], lambda: services.reply_put(
                actor=user, review_id=review.pk, body=form.cleaned_data["body"]),
                _("Your reply is published."))
        return _on_work_page(review)

    return _guarded(request, view)


@login_required
@require_POST
def reply_delete(request: HttpRequest, review_id: str) -> HttpResponse:
    def view() -> HttpResponse:
        user = authenticated_user(request)
        review = review_get_visible(user=user, review_id=review_id)
        if review.work.owner_id != user.pk:
            raise PermissionDenied
        form = OnceForm(request.POST)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
        else:
            _run(request, form.cleaned_data["once"],
                 lambda: services.reply_delete(actor=user, review_id=review.pk),
                 _("Your reply is deleted."))
        return _on_work_page(review)

    return _guarded(request, view)


@login_required
@require_POST
def review_report(request: HttpRequest, review_id: str) -> HttpResponse:
    def view() -> HttpResponse:
        user = authenticated_user(request)
        review = review_get_visible(user=user, review_id=review_id)
        form = ReportForm(request.POST)
        if not form.is_valid():
            messages.error(request, _form_errors(form))
        else:
            _run(request, form.cleaned_data["once"], lambda: services.review_report(
                reporter=user, review_id=review.pk, reason=form.cleaned_data["reason"]),
                _("Thank you: the moderators will look at this review."))
        return _on_work_page(review)

    return _guarded(request, view)
