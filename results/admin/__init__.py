"""Admin of results and researcher access. Every write on tokens, grants and webhooks goes
through the functions in ``results.access``, as the API and the commands do; secrets are shown
once, on the page that answers the form that created them (never in a message cookie)."""

import hashlib
import secrets
from typing import Any

from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from results import access, webhooks
from results.admin.pages import ResultsMixin
from results.models import (
    ApiToken,
    ExportJob,
    Grant,
    ImportJob,
    ResultSnapshot,
    Webhook,
    WebhookDelivery,
)
from surveys.admin import PollAdmin as SurveysPollAdmin
from surveys.admin.base import OrganiserScopedAdmin, PollFilter
from surveys.models import Poll

ONCE_FIELD = "once"
# How long a submitted add form is remembered: long enough for a reload or a back-and-resubmit.
REPLAY_SECONDS = 24 * 3600
PENDING = "pending"


def new_form_key() -> str:
    return secrets.token_urlsafe(24)


def https_urls(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class OnceForm(forms.ModelForm):
    """An add form carries a random key; the same form submitted twice creates one object."""

    once = forms.CharField(
        widget=forms.HiddenInput,
        initial=new_form_key,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]{32}$", "Reload the form and try again.")],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            del self.fields[ONCE_FIELD]  # only the add form creates a secret


class ShowsSecretOnce:
    """The add view answers with a page that shows the new secret, once, uncached.

    That page answers a POST, so a reload (or going back and submitting again) sends the same
    form again: its random key, remembered (hashed, with the new object's id) in the cache,
    turns the replay into a page that says the object exists, with no secret and nothing new
    created. ``cache.add`` is atomic, so two submissions racing each other create one object.
    """

    secret_label = "Secret"
    stored_as = "a hash"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [f for f in super().get_fields(request, obj) if f != ONCE_FIELD]  # type: ignore[misc]
        return fields if obj is not None else [*fields, ONCE_FIELD]

    def replay_key(self, request: HttpRequest) -> str | None:
        once = request.POST.get(ONCE_FIELD, "")
        if len(once) != 32:
            return None  # the form itself refuses it
        opts = self.model._meta  # type: ignore[attr-defined]
        digest = hashlib.sha256(f"{opts.label}:{request.user.pk}:{once}".encode()).hexdigest()
        return f"admin-secret-once:{digest}"

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        parent = super().changeform_view  # type: ignore[misc]
        key = None
        if request.method == "POST" and object_id is None and self.has_add_permission(request):  # type: ignore[attr-defined]
            key = self.replay_key(request)
        if key is None:
            return parent(request, object_id, form_url, extra_context)
        if not cache.add(key, PENDING, REPLAY_SECONDS):
            return self.replayed(request, cache.get(key))
        request.secret_once_key = key  # type: ignore[attr-defined]
        response = None
        try:
            response = parent(request, object_id, form_url, extra_context)
        finally:
            if cache.get(key) == PENDING:
                cache.delete(key)  # nothing was created (a form error): it may be sent again
        return response

    def replayed(self, request: HttpRequest, pk: Any) -> HttpResponse:
        opts = self.model._meta  # type: ignore[attr-defined]
        response = TemplateResponse(
            request,
            "admin/results/secret_once.html",
            {
                **admin.site.each_context(request),
                "title": f"{opts.verbose_name} already created".capitalize(),
                "opts": opts,
                "object": opts.verbose_name,
                "replayed": True,
                "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                "change_url": (
                    reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
                    if isinstance(pk, int)
                    else None
                ),
            },
            status=409,
        )
        response["Cache-Control"] = "no-store"
        return response

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(obj, "secret_once", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)  # type: ignore[misc]
        key = getattr(request, "secret_once_key", None)
        if key is not None:
            cache.set(key, obj.pk, REPLAY_SECONDS)
        opts = obj._meta
        response = TemplateResponse(
            request,
            "admin/results/secret_once.html",
            {
                **admin.site.each_context(request),
                "title": f"New {opts.verbose_name}",
                "opts": opts,
                "object": obj,
                "secret": secret,
                "secret_label": self.secret_label,
                "stored_as": self.stored_as,
                "explanation": self.explanation(obj),
                "expires_at": getattr(obj, "expires_at", None),
                "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                "change_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
                ),
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    def explanation(self, obj: Any) -> str:
        return f"{obj} was created."


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(OrganiserScopedAdmin):
    """Written by the recompute task only: no add form (it had no poll and failed with 500)."""

    list_display = ("poll", "computed_at", "n_participants", "n_treatment", "n_control")
    # Only the polls of the (scoped) rows: another organiser's poll slugs are not listed.
    list_filter = (("poll", PollFilter),)
    readonly_fields = ("poll", "computed_at", "data_as_of", "fingerprint", "code_version")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A record of a computation: its payload is what researchers and the public page read,
        # so editing it would publish figures no computation made (suppressed cells included).
        return False


class ApiTokenForm(OnceForm):
    class Meta:
        model = ApiToken
        fields = ("name", "expires_at")
        help_texts = {
            "expires_at": "In UTC. Between an hour and a year (365 days) from now, unless the "
            "API_TOKEN_MAX_DAYS setting allows longer; fixed once the token is issued.",
        }

    def clean_expires_at(self) -> Any:
        expires_at = self.cleaned_data["expires_at"]
        if self.instance.pk is None and expires_at is not None:
            access.check_token_lifetime(expires_at - timezone.now())
        return expires_at


@admin.register(ApiToken)
class ApiTokenAdmin(ShowsSecretOnce, admin.ModelAdmin):
    """Every staff user manages their own API tokens; the secret is shown once, on creation."""

    form = ApiTokenForm
    secret_label = "Your new API token"
    stored_as = "a SHA-256 hash"
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
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The lifetime is fixed when the token is issued: editing it would escape the bound.
        fixed = ("prefix", "created_at", "last_used_at", "revoked_at")
        return fixed if obj is None else ("expires_at", *fixed)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"expires_at": timezone.now() + access.token_lifetime()}

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
        issued = access.issue_api_token(user=request.user, name=obj.name, expires_at=obj.expires_at)
        obj.__dict__.update(
            {k: v for k, v in issued.token.__dict__.items() if not k.startswith("_")}
        )
        obj._state.adding = False
        obj.secret_once = issued.secret  # type: ignore[attr-defined]

    def explanation(self, obj: Any) -> str:
        return f"The token “{obj.name}” acts for you on the polls you hold grants for."

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = sum(access.revoke_api_token(token=token) for token in queryset)
        self.message_user(request, f"{count} tokens revoked.")

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        access.revoke_api_token(token=obj)
        super().delete_model(request, obj)


class GrantForm(forms.ModelForm):
    class Meta:
        model = Grant
        fields = ("user", "poll", "level", "can_import")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("level"):
            try:
                access.check_grant(level=data["level"], can_import=bool(data.get("can_import")))
            except ValidationError as error:
                raise ValidationError({"can_import": error.messages}) from None
        return data


@admin.register(Grant)
class GrantAdmin(OrganiserScopedAdmin):
    """Organisers grant researchers access to the polls they organise."""

    form = GrantForm
    list_display = ("user", "poll", "level", "can_import", "granted_at", "granted_by")
    list_filter = (("poll", PollFilter), "level", "can_import")
    autocomplete_fields = ("poll",)
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("granted_at", "granted_by")
        return fixed if obj is None else ("user", "poll", *fixed)

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        grant = access.grant_access(
            user=obj.user,
            poll=obj.poll,
            level=obj.level,
            can_import=obj.can_import,
            granted_by=request.user,
        )
        obj.pk = grant.pk
        obj._state.adding = False
        obj.granted_at, obj.granted_by = grant.granted_at, grant.granted_by

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        access.revoke_grant(grant=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for grant in queryset:
            access.revoke_grant(grant=grant)

    @admin.action(description="Revoke the selected grants")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for grant in queryset:
            access.revoke_grant(grant=grant)
            count += 1
        self.message_user(request, f"{count} grants revoked.")


class WebhookForm(OnceForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="An https:// address on the standard port 443 whose host resolves to public "
        "addresses only: private, loopback, link-local and similar addresses are refused. "
        "Fixed once registered.",
    )
    events = forms.MultipleChoiceField(
        choices=Webhook.Event.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means all events. An export is announced only to the webhooks "
        "of the person who started it.",
    )

    class Meta:
        model = Webhook
        fields = ("poll", "url", "events", "active")
        # The admin builds subclasses of this form from the model's fields too: https there as
        # well (Django 6 changes the default scheme; this keeps its warning away).
        formfield_callback = https_urls

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if self.instance.pk is None:
            # Again in register_webhook; here to show it on the form.
            webhooks.check_webhook_url(url)
        return url


@admin.register(Webhook)
class WebhookAdmin(ShowsSecretOnce, OrganiserScopedAdmin):
    form = WebhookForm
    secret_label = "The webhook's signing secret"
    stored_as = "the key that signs each delivery"
    list_display = ("url", "poll", "events", "active", "created_at")
    list_filter = (("poll", PollFilter), "active")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The address was checked when registered: register a new webhook to change it.
        fixed = ("created_by", "created_at")
        return fixed if obj is None else ("poll", "url", *fixed)

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        webhook = access.register_webhook(
            poll=obj.poll, url=obj.url, events=obj.events, user=request.user
        )
        if not obj.active:
            Webhook.objects.filter(pk=webhook.pk).update(active=False)
            webhook.active = False
        obj.__dict__.update({k: v for k, v in webhook.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False
        obj.secret_once = webhook.secret  # type: ignore[attr-defined]

    def explanation(self, obj: Any) -> str:
        return (
            f"Deliveries to {obj.url} are signed with this key (HMAC-SHA256, header "
            "X-Deliberate-Signature); your receiver verifies them with it."
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganiserScopedAdmin):
    """Written by the delivery code only: no add form. The log shows categories, as the API."""

    poll_path = "webhook__poll"
    list_display = ("event", "webhook", "state", "attempts", "delivered_status", "created_at")
    list_filter = ("state", "event")
    fields = readonly_fields = (
        "webhook",
        "event",
        "payload",
        "state",
        "attempts",
        "log",
        "delivered_status",
        "created_at",
        "delivered_at",
        "next_attempt_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="attempts log")
    def log(self, obj: WebhookDelivery) -> list[dict[str, Any]]:
        return webhooks.coarse_log(obj.attempts_log)

    @admin.display(description="response status")
    def delivered_status(self, obj: WebhookDelivery) -> int | None:
        return obj.response_status if webhooks.delivered(obj.response_status) else None


@admin.register(ExportJob)
class ExportJobAdmin(OrganiserScopedAdmin):
    list_display = ("poll", "format", "state", "progress", "user", "created_at", "expires_at")
    list_filter = ("state", "format")
    readonly_fields = (
        "poll",
        "user",
        "api_token",
        "format",
        "state",
        "progress",
        "message",
        "file",
        "size",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # built by the export task, for a researcher's request


@admin.register(ImportJob)
class ImportJobAdmin(OrganiserScopedAdmin):
    """A record of API imports: started through the API only, never edited by hand."""

    list_display = ("poll", "state", "progress", "user", "size", "created_at", "finished_at")
    list_filter = (("poll", PollFilter), "state")
    fields = readonly_fields = (
        "poll",
        "user",
        "state",
        "progress",
        "message",
        "size",
        "result",
        "errors",
        "errors_not_listed",
        "created_at",
        "finished_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # viewing stays as the scoped admin allows

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record; a job still running would lose its file


# The poll's results pages belong to this app: they join the poll's admin here, so that the
# surveys app never imports its admin from results.
admin.site.unregister(Poll)


@admin.register(Poll)
class PollAdmin(ResultsMixin, SurveysPollAdmin):
    """The poll admin of the surveys app with its results page and data endpoints."""
