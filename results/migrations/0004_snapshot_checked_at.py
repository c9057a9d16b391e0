from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("results", "0003_grant_level_webhook_checks"),
    ]

    operations = [
        migrations.AddField(
            model_name="resultsnapshot",
            name="checked_at",
            field=models.DateTimeField(
                help_text="When a recompute last found this snapshot current (new or unchanged data).",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="resultsnapshot",
            name="data_as_of",
            field=models.DateTimeField(
                help_text="When the data this snapshot includes last changed: the newest answer or completion of a participant who completed the poll. The reconciler compares against the same measure (results.compute.loading.results_data_changed_at).",
                null=True,
            ),
        ),
    ]
