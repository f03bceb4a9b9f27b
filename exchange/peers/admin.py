from django.contrib import admin

from exchange.peers.models import Holding, Peer, RevokedIndexCredential, WebSeed


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    list_display = ("device", "user", "host", "port", "agent_version", "last_seen_at")
    search_fields = ("device__device_id", "user__username", "host")
    readonly_fields = ("device", "user", "first_seen_at", "last_seen_at")


@admin.register(Holding)
class HoldingAdmin(admin.ModelAdmin):
    list_display = ("peer", "work", "have_count", "updated_at")
    search_fields = ("work__title", "peer__device__device_id")
    exclude = ("bitfield",)
    readonly_fields = ("peer", "work", "have_count", "updated_at")


@admin.register(WebSeed)
class WebSeedAdmin(admin.ModelAdmin):
    list_display = ("work", "url", "created_at")
    search_fields = ("url", "work__title")


@admin.register(RevokedIndexCredential)
class RevokedIndexCredentialAdmin(admin.ModelAdmin):
    list_display = ("jti", "user", "revoked_at", "expires_at")
    search_fields = ("jti", "user__username")
    readonly_fields = ("jti", "user", "revoked_at", "expires_at")
