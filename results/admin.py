from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from results.api.access import issue_api_token
from results.models import ApiToken, ExportJob, Grant, ResultSnapshot, Webhook, WebhookDelivery
from surveys.admin import OrganiserScopedAdmin


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(OrganiserScopedAdmin):
    list_display = ("poll", "computed_at", "n_participants", "n_treatment", "n_control")
    list_filter = ("poll",)
    readonly_fields = ("poll", "computed_at", "data_as_of", "fingerprint", "code_version")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Every staff user manages their own API tokens; the secret is shown once, on creation."""

    list_display = (
        "name",
        "prefix",
        "user",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at",)
    fields = ("name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        from results.api.access import token_lifetime

        return {"expires_at": timezone.now() + token_lifetime()}

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_view_permission

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and (
            obj is None or obj.user_id == request.user.pk or request.user.is_superuser
        )

    has_delete_permission = has_change_permission

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        days = max(1, (obj.expires_at - timezone.now()).days) if obj.expires_at else None
        issued = issue_api_token(user=request.user, name=obj.name, days=days)
        obj.pk = issued.token.pk
        self.message_user(
            request,
            f"Your new token (copy it now, it is not shown again): {issued.secret}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} tokens revoked.")


@admin.register(Grant)
class GrantAdmin(OrganiserScopedAdmin):
    """Organisers grant researchers access to the polls they organise."""

    list_display = ("user", "poll", "can_import", "granted_at", "granted_by")
    list_filter = ("poll", "can_import")
    autocomplete_fields = ("poll",)
    readonly_fields = ("granted_at", "granted_by")

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        if not change:
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Webhook)
class WebhookAdmin(OrganiserScopedAdmin):
    list_display = ("url", "poll", "events", "active", "created_at")
    list_filter = ("poll", "active")
    readonly_fields = ("secret", "created_by", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganiserScopedAdmin):
    poll_path = "webhook__poll"
    list_display = ("event", "webhook", "state", "attempts", "response_status", "created_at")
    list_filter = ("state", "event")
    readonly_fields = (
        "webhook",
        "event",
        "payload",
        "state",
        "attempts",
        "attempts_log",
        "response_status",
        "created_at",
        "delivered_at",
    )


@admin.register(ExportJob)
class ExportJobAdmin(OrganiserScopedAdmin):
    list_display = ("poll", "format", "state", "progress", "user", "created_at", "expires_at")
    list_filter = ("state", "format")
    readonly_fields = ("poll", "user", "format", "state", "progress", "message", "file", "size")
