"""The service's totals, kept as rows of ``Counter`` by the importer (darkimport/run/store.py
adds each package's share in the package's own transaction) and read by /api/v1/stats.

Counting 10^8 ELF rows, and their distinct build-ids above all, takes seconds to minutes; the
counters make the statistics one small query. ``recount`` computes them from the rows: the
migration that introduced them runs it once, and ``darkserver recount`` runs it again after
rows were changed behind the importer's back.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, Sum

from darkserver.lookup.models import Build, Counter, ElfFile, Package

BUILDS = "builds"
PACKAGES = "packages"
ELF_FILES = "elf_files"  # ELF rows (one per install path with a build-id)
BUILD_IDS = "build_ids"  # distinct build-ids
WITHOUT_BUILD_ID = "without_build_id"  # ELF files seen without a build-id
DISTRO = "distro:"  # + dist tag: packages of builds with that tag
TOTALS = (BUILDS, PACKAGES, ELF_FILES, BUILD_IDS, WITHOUT_BUILD_ID)
# Not a total: raised by the importer, in the same transaction, whenever it changes anything a
# lookup answer shows (a package imported, replaced or removed, a checksum filled in, a build's
# Koji id set); by ``recount``; and to be raised by any other writer of those rows (a data
# migration). The web's fast path caches package fields per connection (lookup/pkgcache.py) and
# whole answers per worker (lookup/answercache.py), and starts over when it sees this change.
# Only ever raised, never reset.
GENERATION = "generation"


def stats(using: str | None = None) -> dict[str, Any]:
    """The /api/v1/stats document from the counter rows."""
    values = dict(Counter.objects.using(using).values_list("name", "value"))
    out: dict[str, Any] = {name: values.get(name, 0) for name in TOTALS}
    out["distros"] = {
        name[len(DISTRO):]: value
        for name, value in sorted(values.items())
        if name.startswith(DISTRO) and value
    }
    return out


def count_rows(using: str | None = None) -> dict[str, int]:
    """Every counter computed from the rows (slow at 10^8 rows: a full scan)."""
    elves = ElfFile.objects.using(using)
    packages = Package.objects.using(using)
    values = {
        BUILDS: Build.objects.using(using).count(),
        PACKAGES: packages.count(),
        ELF_FILES: elves.count(),
        BUILD_IDS: elves.aggregate(n=Count("build_id", distinct=True))["n"],
        WITHOUT_BUILD_ID: packages.aggregate(n=Sum("without_build_id"))["n"] or 0,
    }
    for distro, n in packages.values_list("build__distro").annotate(n=Count("id")):
        values[DISTRO + distro] = n
    return values


def recount(using: str | None = None) -> dict[str, int]:
    """Replace the counters with totals computed from the rows. The generation is kept, and
    raised: rows changed behind the importer's back may be package fields a cache holds."""
    values = count_rows(using)
    with transaction.atomic(using=using):
        rows = Counter.objects.using(using)
        generation = rows.filter(name=GENERATION).values_list("value", flat=True).first() or 0
        rows.all().delete()
        rows.bulk_create(
            [Counter(name=name, value=value) for name, value in values.items()]
            + [Counter(name=GENERATION, value=generation + 1)]
        )
    return values
