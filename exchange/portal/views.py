"""Portal pages for people: browse, sign up, and the rights holder's works."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, PermissionDenied

from exchange.accounts.models import Role, authenticated_user
from exchange.accounts.services import user_signup
from exchange.catalogue import services
from exchange.catalogue.models import Work, WorkStatus
from exchange.catalogue.selectors import (
    work_get_for_owner,
    work_get_visible,
    works_owned_by,
    works_visible_to,
)
from exchange.catalogue.terms import DEVICE_LIMIT_DEFAULT
from exchange.core.errors import ServiceError
from exchange.core.idempotency import form_key
from exchange.licensing.models import Licence
from exchange.portal.forms import BuyForm, SignupForm, WorkEditForm, WorkRegisterForm


def home(request: HttpRequest) -> HttpResponse:
    """What Peermark is, how a sale works, how to get the agent and how to sell, with the
    newest works; a search typed here goes to the catalogue."""
    if "q" in request.GET:
        return redirect(f"{reverse('portal:catalogue')}?{request.GET.urlencode()}")
    newest = works_visible_to(request.user).filter(status=WorkStatus.READY)[:8]
    return render(request, "portal/home.html", {"newest": newest})


def catalogue(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    works = works_visible_to(request.user).filter(status=WorkStatus.READY)
    if query:
        from django.db.models import Q

        works = works.filter(Q(title__icontains=query) | Q(description__icontains=query))
    page = Paginator(works, 24).get_page(request.GET.get("page"))
    return render(request, "portal/catalogue.html", {"page": page, "query": query})


def signup(request: HttpRequest) -> HttpResponse:
    role = request.GET.get("role")
    form = SignupForm(request.POST or None,
                      initial={"role": role} if role in Role.values else None)
    if request.method == "POST" and form.is_valid():
        user = user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            role=form.cleaned_data["role"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome, %(name)s.") % {"name": user.username})
        return redirect("portal:my-works" if user.is_rights_holder else "portal:home")
    return render(request, "portal/signup.html", {"form": form})


def work_detail(request: HttpRequest, work_id: str) -> HttpResponse:
    try:
        work = work_get_visible(user=request.user, work_id=work_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    return render(request, "portal/work_detail.html", {"work": work, **_buying(request, work)})


def _buying(request: HttpRequest, work: Work) -> dict[str, object]:
    """What the work's page offers this visitor: to log in, to set up the agent, to buy
    (for which device), or the command that fetches a licence they hold."""
    user = request.user
    if not user.is_authenticated or work.owner_id == user.pk:
        return {}
    owned = Licence.objects.filter(buyer_id=user.pk, work=work, revoked_at__isnull=True,
                                   expires_at__gt=timezone.now()).first()
    form = BuyForm(user=user, initial={
        "once": form_key(), "expected_price_minor": work.price_minor,
        "expected_currency": work.currency})
    return {"owned": owned, "buy_form": form,
            "has_device": bool(form.fields["device"].choices)}  # type: ignore[attr-defined]


@login_required
def my_works(request: HttpRequest) -> HttpResponse:
    """The owner's works, each with a thumbnail and its sales, revenue and bytes served
    (the same figures as the studio's sales page)."""
    from exchange.portal.charts import work_rows

    user = authenticated_user(request)
    return render(request, "portal/my_works.html",
                  {"rows": work_rows(user, works_owned_by(user))})


@login_required
def work_register(request: HttpRequest) -> HttpResponse:
    if not request.user.is_rights_holder:  # type: ignore[union-attr]
        return render(
            request,
            "portal/forbidden.html",
            {"reason": _("Only rights holders can register works.")},
            status=403,
        )
    form = WorkRegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            work = services.work_register(
                owner=request.user,  # type: ignore[arg-type]
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                upload=upload,
                upload_size=upload.size,
                original_filename=upload.name or "",
                price_minor=form.cleaned_data["price_minor"],
                currency=form.cleaned_data["currency"],
                allowed_uses=form.cleaned_data["allowed_uses"],
                licence_days=form.cleaned_data["licence_days"],
                byte_allowance_multiple=form.cleaned_data["byte_allowance_multiple"],
                delivery_mode=form.cleaned_data["delivery_mode"] or None,
                device_limit=form.cleaned_data["device_limit"] or DEVICE_LIMIT_DEFAULT,
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, _("“%(title)s” is registered.") % {"title": work.title})
            return redirect("portal:my-works")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/work_register.html", {"form": form}, status=status)


@login_required
def work_edit(request: HttpRequest, work_id: str) -> HttpResponse:
    try:
        work = work_get_for_owner(user=request.user, work_id=work_id)
    except NotFound:
        return render(request, "portal/not_found.html", status=404)
    except PermissionDenied:
        return render(
            request,
            "portal/forbidden.html",
            {"reason": _("You can change only your own works.")},
            status=403,
        )
    form = WorkEditForm.for_work(work, request.POST or None)
    if request.method == "POST":
        if "withdraw" in request.POST:
            services.work_withdraw(work=work, actor=request.user)  # type: ignore[arg-type]
            messages.success(request, _("“%(title)s” is withdrawn from sale.")
                             % {"title": work.title})
            return redirect("portal:my-works")
        if form.is_valid():
            changes = form.changed_terms(work)
            if changes:
                try:
                    services.work_update_terms(work=work, actor=request.user, changes=changes)  # type: ignore[arg-type]
                except ServiceError as exc:
                    form.add_error(None, exc.message)
                    return render(
                        request, "portal/work_edit.html", {"form": form, "work": work}, status=409
                    )
            messages.success(request, _("Saved."))
            return redirect("portal:my-works")
        return render(request, "portal/work_edit.html", {"form": form, "work": work}, status=400)
    return render(request, "portal/work_edit.html", {"form": form, "work": work})
