from django.contrib import admin

from exchange.readonly_admin import ReadOnlyAdmin
from exchange.tracing.models import MarkingCheck, TraceReport


@admin.register(TraceReport)
class TraceReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "owner", "outcome", "work", "suspect_sha256"]
    list_filter = ["outcome"]
    search_fields = ["suspect_sha256", "owner__username", "work__title"]
    raw_id_fields = ["owner", "work", "licences"]


@admin.register(MarkingCheck)
class MarkingCheckAdmin(ReadOnlyAdmin):
    list_display = ["checked_at", "receipt", "verdict", "detail"]
    list_filter = ["verdict"]
    raw_id_fields = ["receipt"]
