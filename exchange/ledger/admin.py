"""The ledger in the admin: everything visible, nothing editable (corrections are entries)."""

from django.contrib import admin
from django.http import HttpRequest

from exchange.ledger.models import Account, JournalEntry, Posting
from exchange.readonly_admin import ReadOnlyAdmin


class PostingInline(admin.TabularInline):
    model = Posting
    extra = 0
    fields = ("account", "currency", "amount")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: JournalEntry | None = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "owner", "currency", "reference", "balance", "guarded")
    list_filter = ("kind", "currency", "guarded")
    search_fields = ("owner__username", "reference")


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "kind", "reference", "memo")
    list_filter = ("kind",)
    search_fields = ("reference", "memo")
    inlines = [PostingInline]


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ("id", "entry", "account", "currency", "amount")
    list_filter = ("currency",)
    search_fields = ("account__owner__username", "entry__reference")
