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
        from django.contrib.auth.signals import user_logged_in

        from exchange.community.signals import remember_language

        user_logged_in.connect(remember_language, dispatch_uid="community.email_language")
