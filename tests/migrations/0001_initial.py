from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Sample",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sensor", models.CharField(max_length=16)),
                ("taken_at", models.DateTimeField()),
                ("value", models.FloatField()),
            ],
        ),
    ]
