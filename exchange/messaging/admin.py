"""Reports of messages and the blocks members set, for the admins, read-only. Messages
themselves are not listed: admins read only what a recipient reported to them."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import strip_tags

from exchange.messaging.models import Block, MessageReport
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(MessageReport)
class MessageReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "reporter", "sender", "excerpt", "reason")
    search_fields = ("reporter__username", "message__sender__username", "reason")
    list_select_related = ("reporter", "message__sender")
    date_hierarchy = "created_at"

    @admin.display(description="sender")
    def sender(self, report: MessageReport) -> str:
        return report.message.sender.username

    @admin.display(description="message")
    def excerpt(self, report: MessageReport) -> str:
        return strip_tags(report.message.body)[:120]


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "blocker", "blocked")
    search_fields = ("blocker__username", "blocked__username")
