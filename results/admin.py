from django.contrib import admin

from results.models import ResultSnapshot
from surveys.admin import OrganiserScopedAdmin


@admin.register(ResultSnapshot)
class ResultSnapshotAdmin(OrganiserScopedAdmin):
    list_display = ("poll", "computed_at", "n_participants", "n_treatment", "n_control")
    list_filter = ("poll",)
    readonly_fields = ("poll", "computed_at", "data_as_of", "fingerprint", "code_version")
