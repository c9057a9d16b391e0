# Answers say why they have no value (``missing``: don't know, refused, skipped, not asked)
# instead of a don't-know flag; polls and questions declare missing-value codes; questions get
# a multiple-comparison family and breakdown bins, options a short label, polls a deliberation
# mode; keys may be 60 characters; participant ids are unique within their poll.

import surveys.models.definition
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('surveys', '0005_consent_reminders_withdrawal_languages'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='answer',
            name='answer_dk_no_number',
        ),
        migrations.AddField(
            model_name='answer',
            name='missing',
            field=models.CharField(blank=True, choices=[('dont_know', "don't know"), ('refused', 'refused'), ('skipped', 'skipped'), ('not_asked', 'not asked')], default='', help_text="Why the answer has no value (don't know, refused, skipped, not asked); empty: it has one.", max_length=10),
        ),
        migrations.RunSQL(
            "UPDATE surveys_answer SET missing = 'dont_know' WHERE dont_know",
            "UPDATE surveys_answer SET dont_know = (missing <> '')",
        ),
        migrations.RemoveField(
            model_name='answer',
            name='dont_know',
        ),
        migrations.AddField(
            model_name='option',
            name='short_label',
            field=models.JSONField(blank=True, default=dict, help_text='{language: text}: a short label for charts.'),
        ),
        migrations.AddField(
            model_name='poll',
            name='deliberation',
            field=models.CharField(choices=[('async', "online, at each participant's own pace"), ('live', 'live, in small groups at a set time'), ('both', 'live and online')], default='async', help_text='How the treatment group deliberates between the two questionnaires.', max_length=5, verbose_name='deliberation'),
        ),
        migrations.AddField(
            model_name='poll',
            name='missing',
            field=models.JSONField(blank=True, default=dict, help_text='Codes that mean a missing answer, for every question: {"77": "dont_know", "98": "refused", "-8": "skipped"}. A question\'s own codes override these.', validators=[surveys.models.definition.validate_missing_codes], verbose_name='missing-value codes'),
        ),
        migrations.AddField(
            model_name='question',
            name='bins',
            field=models.JSONField(blank=True, default=list, help_text='Number questions: the lower bounds of the groups of a breakdown, e.g. [18, 30, 45, 65].'),
        ),
        migrations.AddField(
            model_name='question',
            name='family',
            field=models.CharField(blank=True, help_text='Multiple-comparison family: Holm and BH adjust within each family.', max_length=40),
        ),
        migrations.AddField(
            model_name='question',
            name='missing',
            field=models.JSONField(blank=True, default=dict, help_text='{code: kind}, e.g. {"77": "dont_know"}: overrides the poll\'s codes.', validators=[surveys.models.definition.validate_missing_codes]),
        ),
        migrations.AlterField(
            model_name='option',
            name='key',
            field=models.CharField(max_length=60),
        ),
        migrations.AlterField(
            model_name='participant',
            name='public_id',
            field=models.CharField(default=surveys.models.definition.new_public_id, max_length=64),
        ),
        migrations.AlterField(
            model_name='participant',
            name='step',
            field=models.CharField(choices=[('welcome', 'welcome and consent'), ('t1', 'first questionnaire'), ('next', 'what happens next'), ('briefing', 'briefing'), ('live', 'live deliberation'), ('deliberation', 'deliberation'), ('wait', 'waiting for the second questionnaire'), ('t2', 'second questionnaire'), ('done', 'finished')], default='welcome', max_length=12),
        ),
        migrations.AlterField(
            model_name='poll',
            name='control_share',
            field=models.FloatField(default=0.5, help_text='Share of participants assigned to the control arm (0 to <1).'),
        ),
        migrations.AlterField(
            model_name='position',
            name='key',
            field=models.CharField(max_length=60),
        ),
        migrations.AlterField(
            model_name='question',
            name='answer',
            field=models.CharField(blank=True, help_text='Knowledge: the correct key.', max_length=60),
        ),
        migrations.AlterField(
            model_name='question',
            name='key',
            field=models.CharField(max_length=60),
        ),
        migrations.AlterField(
            model_name='section',
            name='key',
            field=models.CharField(max_length=60),
        ),
        migrations.AddConstraint(
            model_name='answer',
            constraint=models.CheckConstraint(condition=models.Q(('missing', ''), ('number__isnull', True), _connector='OR'), name='answer_missing_no_number'),
        ),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.UniqueConstraint(fields=('poll', 'public_id'), name='participant_public_id_unique'),
        ),
    ]
