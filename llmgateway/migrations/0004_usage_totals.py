import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Add up the records already stored, and the days rolled up before, into the hourly and daily totals."""
    from django.utils import timezone

    from llmgateway.metering import totals

    record, hour, day = (apps.get_model("llmgateway", name) for name in ("UsageRecord", "UsageHour", "UsageDay"))
    totals.rebuild(models=(record, hour, day))
    zone = timezone.get_current_timezone()
    hours, days = [], []
    for old in apps.get_model("llmgateway", "UsageDaily").objects.order_by("day").iterator():
        group = (old.workspace_id, old.user_id or 0, old.api_key_id or 0, old.assistant_id or 0, old.model)
        counts = {"hit": old.hits, "miss": old.lookups - old.hits, "bypass": old.requests - old.lookups}
        spent = next((outcome for outcome in ("miss", "bypass", "hit") if counts[outcome] > 0), None)
        for outcome, n in counts.items():
            if n > 0:
                paid = outcome == spent
                sums = [n, old.prompt_tokens if paid else 0, old.completion_tokens if paid else 0]
                sums += [old.cost if paid else Decimal("0"), 0.0]
                midnight = timezone.make_aware(totals._midnight(old.day), zone)
                hours.append((midnight, (*group, outcome), sums))
                days.append((old.day, (*group, outcome), sums))
    totals.upsert(hour, "hour", hours)
    totals.upsert(day, "day", days)


class Migration(migrations.Migration):
    dependencies = [
        ("llmgateway", "0003_usage_and_limits"),
        ("workspaces", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.IntegerField(default=0)),
                ("api_key_id", models.IntegerField(default=0)),
                ("assistant_id", models.IntegerField(default=0)),
                ("model", models.CharField(max_length=100)),
                (
                    "cache",
                    models.CharField(
                        choices=[
                            ("hit", "Cache hit"),
                            ("coalesced", "Shared an identical call"),
                            ("miss", "Cache miss"),
                            ("bypass", "Not cached"),
                            ("error", "Failed"),
                            ("refused", "Refused by a limit"),
                        ],
                        max_length=10,
                    ),
                ),
                ("requests", models.PositiveIntegerField(default=0)),
                ("prompt_tokens", models.BigIntegerField(default=0)),
                ("completion_tokens", models.BigIntegerField(default=0)),
                ("cost", models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=16)),
                ("latency_ms", models.FloatField(default=0)),
                ("day", models.DateField()),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name": "daily usage",
                "verbose_name_plural": "daily usage",
            },
        ),
        migrations.CreateModel(
            name="UsageHour",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.IntegerField(default=0)),
                ("api_key_id", models.IntegerField(default=0)),
                ("assistant_id", models.IntegerField(default=0)),
                ("model", models.CharField(max_length=100)),
                (
                    "cache",
                    models.CharField(
                        choices=[
                            ("hit", "Cache hit"),
                            ("coalesced", "Shared an identical call"),
                            ("miss", "Cache miss"),
                            ("bypass", "Not cached"),
                            ("error", "Failed"),
                            ("refused", "Refused by a limit"),
                        ],
                        max_length=10,
                    ),
                ),
                ("requests", models.PositiveIntegerField(default=0)),
                ("prompt_tokens", models.BigIntegerField(default=0)),
                ("completion_tokens", models.BigIntegerField(default=0)),
                ("cost", models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=16)),
                ("latency_ms", models.FloatField(default=0)),
                ("hour", models.DateTimeField()),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "verbose_name": "hourly usage",
                "verbose_name_plural": "hourly usage",
            },
        ),
        migrations.AddConstraint(
            model_name="usageday",
            constraint=models.UniqueConstraint(
                fields=("workspace", "day", "user_id", "api_key_id", "assistant_id", "model", "cache"),
                name="llmgw_usageday_combination",
            ),
        ),
        migrations.AddConstraint(
            model_name="usagehour",
            constraint=models.UniqueConstraint(
                fields=("workspace", "hour", "user_id", "api_key_id", "assistant_id", "model", "cache"),
                name="llmgw_usagehour_combination",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="UsageDaily",
        ),
    ]
