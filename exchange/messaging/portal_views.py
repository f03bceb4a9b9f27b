"""The portal's messages: the inbox, a thread with its reply form, a new message (from a
storefront or a work's page: ``/messages/new/?to=<username>``), blocks and reports."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from exchange.accounts.models import User, authenticated_user
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key, run_once
from exchange.messaging import services
from exchange.messaging.forms import BlockForm, MessageForm, ReplyForm, ReportForm
from exchange.messaging.models import Conversation, MessageReport
from exchange.messaging.selectors import (
    blocks_of,
    conversation_between,
    conversation_get_for_member,
    conversations_for,
    is_blocked,
    member_get,
    message_get_for_member,
    thread_messages,
)

THREAD_LENGTH = 200


def _conversation(request: HttpRequest, conversation_id: object) -> Conversation:
    try:
        return conversation_get_for_member(user=authenticated_user(request),
                                           conversation_id=conversation_id)
    except ServiceError as error:
        raise Http404(error.message) from None


def _show_error(form: Form, error: ServiceError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    user = authenticated_user(request)
    return render(request, "messaging/inbox.html", {
        "conversations": conversations_for(user)[:200],
    })


@login_required
def thread(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """GET: the thread (reading it marks it read) and a reply form. POST: the reply, sent
    once per form key; a refusal shows the thread again with the reason."""
    user = authenticated_user(request)
    conversation = _conversation(request, conversation_id)
    other = conversation.other_username  # type: ignore[attr-defined]
    if request.method != "POST":
        return _thread_page(request, conversation, ReplyForm(initial={"once": form_key()}))
    form = ReplyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            ran, _message = run_once(user=user, key=data["once"], action=lambda: (
                services.message_send(sender=user, to=other, body=data["body"])))
        except ServiceError as error:
            _show_error(form, error)
        else:
            if ran:
                flash.success(request, _("Message sent."))
            return redirect("messaging:thread", conversation.pk)
    return _thread_page(request, conversation, form, status=400)


def _thread_page(request: HttpRequest, conversation: Conversation, form: Form,
                 *, status: int = 200) -> HttpResponse:
    user = authenticated_user(request)
    shown = list(thread_messages(conversation)[:THREAD_LENGTH])
    shown.reverse()  # oldest first on the page, the latest at the bottom by the form
    services.conversation_mark_read(user=user, conversation=conversation)
    # the other member by id: a thread stays readable after they close their account
    other = User.objects.get(pk=conversation.other(user.pk))
    reported = set(MessageReport.objects.filter(
        reporter=user, message__conversation=conversation).values_list("message_id", flat=True))
    return render(request, "messaging/thread.html", {
        "conversation": conversation, "other": other, "thread": shown, "form": form,
        "reported": reported, "blocked": is_blocked(blocker=user, blocked=other),
    }, status=status)


@login_required
def new_message(request: HttpRequest) -> HttpResponse:
    """GET: the form (``?to=`` fills the recipient, and links to the thread if there is
    one). POST: send, once per form key, then go to the thread; a refusal shows the form
    again with the reason."""
    user = authenticated_user(request)
    if request.method != "POST":
        to = request.GET.get("to", "")[:150]
        return render(request, "messaging/new.html", {
            "form": MessageForm(initial={"once": form_key(), "to": to}),
            "existing": _existing(user, to),
        })
    form = MessageForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            ran, message = run_once(user=user, key=data["once"], action=lambda: (
                services.message_send(sender=user, to=data["to"], body=data["body"],
                                      subject=data["subject"])))
        except ServiceError as error:
            _show_error(form, error)
        else:
            if ran and message is not None:
                flash.success(request, _("Message sent."))
                return redirect("messaging:thread", message.conversation_id)
            existing = _existing(user, data["to"])  # sent already: a double click, a reload
            return redirect("messaging:thread", existing.pk) if existing else redirect(
                "messaging:inbox")
    return render(request, "messaging/new.html", {"form": form, "existing": None}, status=400)


def _existing(user: User, username: str) -> Conversation | None:
    if not username:
        return None
    try:
        return conversation_between(user, member_get(username))
    except ServiceError:
        return None


@login_required
def blocks(request: HttpRequest) -> HttpResponse:
    """GET: the members one blocked. POST: block one (``username``)."""
    user = authenticated_user(request)
    form = BlockForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                _block, created = services.member_block(
                    blocker=user, username=form.cleaned_data["username"])
            except ServiceError as error:
                flash.error(request, error.message)
            else:
                if created:
                    flash.success(request, _("Blocked %(name)s: their messages to you are "
                                             "refused.") % {"name": _block.blocked.username})
        else:
            flash.error(request, _("Name the member to block."))
        return redirect(_back(request, "messaging:blocks"))
    return render(request, "messaging/blocks.html", {"blocks": blocks_of(user),
                                                     "form": BlockForm()})


@login_required
@require_POST
def unblock(request: HttpRequest, username: str) -> HttpResponse:
    try:
        services.member_unblock(blocker=authenticated_user(request), username=username)
    except ServiceError as error:
        raise Http404(error.message) from None
    flash.success(request, _("Unblocked %(name)s.") % {"name": username})
    return redirect(_back(request, "messaging:blocks"))


@login_required
@require_POST
def report(request: HttpRequest, message_id: str) -> HttpResponse:
    user = authenticated_user(request)
    try:
        message = message_get_for_member(user=user, message_id=message_id)
    except ServiceError as error:
        raise Http404(error.message) from None
    form = ReportForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        _report, created = services.message_report(reporter=user, message=message,
                                                    reason=reason)
    except ServiceError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, _("Reported to the platform's team. Thank you.") if created
                      else _("You have reported this message already."))
    return redirect("messaging:thread", message.conversation_id)


def _back(request: HttpRequest, default: str) -> str:
    """Back to the thread the form was on, if it said so (a path on this site only)."""
    from django.urls import reverse
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse(default)
