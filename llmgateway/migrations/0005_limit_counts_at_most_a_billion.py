import django.core.validators
import llmgateway.models
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("llmgateway", "0004_usage_totals"),
    ]

    operations = [
        migrations.AlterField(
            model_name="limit",
            name="max_concurrent",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Empty: no limit.",
                null=True,
                validators=[
                    llmgateway.models._not_negative,
                    django.core.validators.MaxValueValidator(
                        1000000000, "Enter at most 1,000,000,000, or leave empty for no limit."
                    ),
                ],
                verbose_name="concurrent requests",
            ),
        ),
        migrations.AlterField(
            model_name="limit",
            name="rpm",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Empty: no limit.",
                null=True,
                validators=[
                    llmgateway.models._not_negative,
                    django.core.validators.MaxValueValidator(
                        1000000000, "Enter at most 1,000,000,000, or leave empty for no limit."
                    ),
                ],
                verbose_name="requests per minute",
            ),
        ),
        migrations.AlterField(
            model_name="limit",
            name="tpm",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Empty: no limit.",
                null=True,
                validators=[
                    llmgateway.models._not_negative,
                    django.core.validators.MaxValueValidator(
                        1000000000, "Enter at most 1,000,000,000, or leave empty for no limit."
                    ),
                ],
                verbose_name="tokens per minute",
            ),
        ),
    ]
