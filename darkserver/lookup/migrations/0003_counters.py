from django.db import migrations, models
from django.db.models import Count, Sum


def fill(apps, schema_editor):
    """The counters of the rows imported before counters existed (counters.count_rows, written
    against this migration's models so that later schema changes cannot break it)."""
    db = schema_editor.connection.alias
    Build = apps.get_model("lookup", "Build")
    Package = apps.get_model("lookup", "Package")
    ElfFile = apps.get_model("lookup", "ElfFile")
    Counter = apps.get_model("lookup", "Counter")
    packages = Package.objects.using(db)
    if not packages.exists():
        return
    elves = ElfFile.objects.using(db)
    values = {
        "builds": Build.objects.using(db).count(),
        "packages": packages.count(),
        "elf_files": elves.count(),
        "build_ids": elves.aggregate(n=Count("build_id", distinct=True))["n"],
        "without_build_id": packages.aggregate(n=Sum("without_build_id"))["n"] or 0,
    }
    for distro, n in packages.values_list("build__distro").annotate(n=Count("id")):
        values["distro:" + distro] = n
    Counter.objects.using(db).bulk_create([Counter(name=k, value=v) for k, v in values.items()])


class Migration(migrations.Migration):
    dependencies = [("lookup", "0002_elf_class_byteorder")]

    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
