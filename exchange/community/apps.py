from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "exchange.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from exchange.audit.models import AuditEvent
        from exchange.community.signals import on_audit_event

        post_save.connect(on_audit_event, sender=AuditEvent,
                          dispatch_uid="community.work_ready_announce")
