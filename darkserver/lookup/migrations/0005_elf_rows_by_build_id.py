"""The ELF table for 10^8 rows: primary key (build-id, package, path), path texts in their own
table once per package name, `.build-id` debug paths as shared templates (paths.py), 4-byte
package ids. The rows move table to table (RunPython), both ways."""

from django.db import migrations, models

import darkserver.lookup.fields
from darkserver.lookup import paths

# Rows per copy batch: memory stays flat however large the table.
BATCH = 5000


def _path_ids(Path, db, wanted):
    """{(stored text, scope): id} for ``wanted``, creating the missing rows."""
    from darkserver.lookup.models import path_key

    keys = {(text, scope): path_key(text) for text, scope in wanted}
    found = {}
    for _ in range(2):
        rows = Path.objects.using(db).filter(path_key__in=set(keys.values())).values_list(
            "id", "path", "scope")
        found = {(text, bytes(scope)): pk for pk, text, scope in rows}
        missing = [k for k in keys if k not in found]
        if not missing:
            break
        Path.objects.using(db).bulk_create(
            [Path(path=text, scope=scope, path_key=keys[text, scope]) for text, scope in missing],
            ignore_conflicts=True)
    return {k: found[k] for k in keys}


def forward(apps, schema_editor):
    db = schema_editor.connection.alias
    Old = apps.get_model("lookup", "OldElfFile")
    New = apps.get_model("lookup", "ElfFile")
    Path = apps.get_model("lookup", "Path")
    last = 0
    while True:
        batch = list(Old.objects.using(db).filter(id__gt=last).order_by("id").values(
            "id", "build_id", "path", "package_id", "package__name", "elf_type", "machine",
            "elf_class", "big_endian", "debug", "package_note")[:BATCH])
        if not batch:
            return
        last = batch[-1]["id"]
        for row in batch:
            row["build_id"] = bytes(row["build_id"])
            row["text"] = paths.stored(row["path"], row["build_id"])
            row["scope"] = paths.scope_of(row["text"], row["package__name"])
        ids = _path_ids(Path, db, {(r["text"], r["scope"]) for r in batch})
        New.objects.using(db).bulk_create([
            New(build_id=r["build_id"], package_id=r["package_id"],
                path_id=ids[r["text"], r["scope"]], elf_type=r["elf_type"],
                machine=r["machine"], elf_class=r["elf_class"], big_endian=r["big_endian"],
                debug=r["debug"], package_note=r["package_note"])
            for r in sorted(batch, key=lambda r: r["build_id"])
        ])


def backward(apps, schema_editor):
    from darkserver.lookup.models import path_key

    db = schema_editor.connection.alias
    Old = apps.get_model("lookup", "OldElfFile")
    New = apps.get_model("lookup", "ElfFile")
    rows = New.objects.using(db).order_by("build_id", "package_id", "path_id").values_list(
        "build_id", "package_id", "path__path", "elf_type", "machine", "elf_class", "big_endian",
        "debug", "package_note")
    batch = []
    for build_id, package_id, text, *rest in rows.iterator(chunk_size=BATCH):
        path = paths.expand(text, bytes(build_id))
        batch.append(Old(build_id=bytes(build_id), package_id=package_id, path=path,
                         path_key=path_key(path), elf_type=rest[0], machine=rest[1],
                         elf_class=rest[2], big_endian=rest[3], debug=rest[4],
                         package_note=rest[5]))
        if len(batch) >= BATCH:
            Old.objects.using(db).bulk_create(batch)
            batch = []
    Old.objects.using(db).bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("lookup", "0004_package_identity")]

    # The package id narrows first, while the old ELF table is the one row model that refers to
    # packages: placed last (after DeleteModel), its reversal looked for the foreign keys of the
    # deleted table in a stale model state (Django keeps reverse relations cached across the
    # migration's states), and `migrate lookup 0004` failed on MariaDB for some hash seeds.
    operations = [
        migrations.AlterField(
            model_name="package",
            name="id",
            field=models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                   verbose_name="ID"),
        ),
        migrations.CreateModel(
            name="Path",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False,
                                        verbose_name="ID")),
                ("scope", darkserver.lookup.fields.ShortBinaryField(max_length=800)),
                ("path", models.TextField()),
                ("path_key", darkserver.lookup.fields.ShortBinaryField(max_length=16)),
            ],
            options={
                "indexes": [models.Index(fields=["scope"], name="path_scope_idx")],
                "constraints": [models.UniqueConstraint(fields=("path_key", "scope"),
                                                        name="path_key_scope_unique")],
            },
        ),
        migrations.RenameModel("ElfFile", "OldElfFile"),
        migrations.CreateModel(
            name="ElfFile",
            fields=[
                ("pk", models.CompositePrimaryKey("build_id", "package", "path", blank=True,
                                                  editable=False, primary_key=True,
                                                  serialize=False)),
                ("build_id", darkserver.lookup.fields.ShortBinaryField(max_length=64)),
                ("package", models.ForeignKey(db_constraint=False, db_index=False,
                                              on_delete=models.deletion.CASCADE,
                                              related_name="elf_rows", to="lookup.package")),
                ("path", models.ForeignKey(db_index=False, on_delete=models.deletion.PROTECT,
                                           related_name="+", to="lookup.path")),
                ("elf_type", models.PositiveSmallIntegerField()),
                ("machine", models.PositiveSmallIntegerField()),
                ("elf_class", models.PositiveSmallIntegerField(default=0,
                                                               help_text="32 or 64; 0 if unknown")),
                ("big_endian", models.BooleanField(help_text="byte order; NULL if unknown",
                                                   null=True)),
                ("debug", models.BooleanField(default=False)),
                ("package_note", models.TextField(blank=True, help_text="FDO .note.package JSON",
                                                  null=True)),
            ],
            options={
                "indexes": [models.Index(fields=["path", "package"],
                                         name="elf_path_package_idx")],
            },
        ),
        migrations.RunPython(forward, backward),
        migrations.DeleteModel("OldElfFile"),
    ]
