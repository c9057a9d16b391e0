"""Routes of the research API, mounted under /api/v1/."""

from django.urls import path

from results.api import views, views_jobs

app_name = "api"

poll = "polls/<slug:slug>/"
urlpatterns = [
    path("polls/", views.PollListView.as_view(), name="poll-list"),
    path(poll, views.PollDetailView.as_view(), name="poll-detail"),
    path(f"{poll}participants/", views.ParticipantListView.as_view(), name="poll-participants"),
    path(f"{poll}answers/", views.AnswerListView.as_view(), name="poll-answers"),
    path(f"{poll}results/", views.ResultsView.as_view(), name="poll-results"),
    *(
        path(
            f"{poll}results/{table.replace('_', '-')}/",
            views.result_table_view(table),
            name=f"results-{table.replace('_', '-')}",
        )
        for table in views.RESULT_TABLES
    ),
    path(f"{poll}transcripts/", views.TranscriptListView.as_view(), name="poll-transcripts"),
    path(
        f"{poll}transcripts/<int:group>/",
        views.TranscriptView.as_view(),
        name="poll-transcript",
    ),
    path(f"{poll}recompute/", views_jobs.RecomputeView.as_view(), name="poll-recompute"),
    path(
        f"{poll}recompute/<str:job_id>/",
        views_jobs.RecomputeStatusView.as_view(),
        name="recompute-status",
    ),
    path(f"{poll}export/", views_jobs.ExportView.as_view(), name="poll-export"),
    path(f"{poll}exports/<str:pk>/", views_jobs.ExportJobView.as_view(), name="export-job"),
    path(
        f"{poll}exports/<str:pk>/download/",
        views_jobs.ExportDownloadView.as_view(),
        name="export-download",
    ),
    path(f"{poll}import/", views_jobs.ImportView.as_view(), name="poll-import"),
    path(f"{poll}imports/<str:pk>/", views_jobs.ImportJobView.as_view(), name="import-job"),
    path(f"{poll}webhooks/", views_jobs.WebhookListView.as_view(), name="poll-webhooks"),
    path(f"{poll}webhooks/<str:pk>/", views_jobs.WebhookDetailView.as_view(), name="webhook"),
    path(
        f"{poll}webhooks/<str:pk>/deliveries/",
        views_jobs.WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
]
