"""Follows, notifications and their switches, saved searches (wishlists) and members'
public profiles."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    """Where a notification reaches its member."""

    PORTAL = "portal", _("Portal")
    EMAIL = "email", _("Email")
    AGENT = "agent", _("Agent")


class Notification(models.Model):
    """One thing a member was told.

    ``subject`` names what the notification is about (``work:<id>``, ``search:<id>:work:<id>``)
    when a retried task must not tell the member twice: (recipient, kind, subject) is
    unique whenever a subject is given. ``in_portal``/``in_agent`` are the channels that
    were on when it was sent, so switching a channel off later does not rewrite history.
    A row is kept even when only email was on: it is the record that the email went out.
    """

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="notifications")
    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=120, blank=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, max_length=2000)
    url = models.CharField(max_length=500, blank=True)
    # The values of a title written from a known sentence (``notifications.TITLES``), so
    # that each reader sees it in their own language; the stored ``title`` is the
    # fallback (and what the email said).
    params = models.JSONField(default=dict, blank=True)
    in_portal = models.BooleanField(default=True)
    in_agent = models.BooleanField(default=True)
    emailed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "subject"],
                                    condition=~Q(subject=""), name="notification_once_per_subject"),
        ]
        indexes = [
            # a member's unread, newest first: the badge and the list
            models.Index(fields=["recipient", "read_at", "-created_at"],
                         name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"


class NotificationSwitch(models.Model):
    """A member's choice for one (kind, channel). Only choices a member made are rows;
    the rest follow the defaults in ``notifications.DEFAULTS``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_switches")
    kind = models.CharField(max_length=32)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "channel"],
                                    name="notification_switch_once"),
            models.CheckConstraint(condition=Q(channel__in=[c.value for c in Channel]),
                                   name="notification_switch_channel_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}/{self.channel}: {'on' if self.enabled else 'off'}"


class Follow(models.Model):
    """A member follows a rights holder: their new works reach the member's feed."""

    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="following")
    rights_holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                      related_name="followers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["follower", "rights_holder"], name="follow_once"),
            models.CheckConstraint(condition=~Q(follower=F("rights_holder")),
                                   name="follow_not_oneself"),
        ]
        indexes = [models.Index(fields=["rights_holder", "follower"])]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.rights_holder_id}"


class SavedSearch(models.Model):
    """A wishlist entry (Soulseek's wishlist): a catalogue search kept so that a new work
    matching it is announced to its member. The fields are the catalogue search's own:
    words in the title or description, a media type, a currency and a highest price."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="saved_searches")
    query = models.CharField(max_length=200)
    media_type = models.CharField(max_length=16, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    max_price_minor = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # a price means nothing without its currency
            models.CheckConstraint(condition=Q(max_price_minor__isnull=True) | ~Q(currency=""),
                                   name="saved_search_price_has_currency"),
            models.CheckConstraint(condition=Q(max_price_minor__isnull=True)
                                   | Q(max_price_minor__gt=0),
                                   name="saved_search_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.query}"


class MemberProfile(models.Model):
    """What a member shows the public: a display name, a short bio, a few links, and
    whether their collection (the works they hold licences for) is public."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="profile")
    display_name = models.CharField(max_length=80, blank=True)
    bio = models.TextField(blank=True, max_length=1000)
    links = models.JSONField(default=list, blank=True)
    collection_public = models.BooleanField(default=False)
    # Not public: the language of the member's emails, the portal language they last
    # logged in or saved their notification settings in ("" until then: the default).
    email_language = models.CharField(max_length=8, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"
