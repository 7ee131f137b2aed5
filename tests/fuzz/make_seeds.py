"""Regenerate the fuzzing seeds in tests/fuzz/seeds/ (run once; the outputs are committed).

    .venv/bin/python -m tests.fuzz.make_seeds

Every seed is made by the real tools, as small as they allow: a libc-free static executable
(gcc -nostdlib, 808 bytes, GNU build-id) and a relocatable object with one (ld -r), an rpm
(rpmbuild, gzip payload) and a copy of it with every digest tag renamed (so that mutations reach
the header and cpio parsers instead of stopping at the header digest), the rpm's payload as
plain cpio (rpm2cpio), a deb (dpkg-deb, xz, with md5sums) and one with uncompressed members (so
that mutations reach the tar reader and the md5sums check), a GNU tar of the executable (tar),
and a core dump of the executable stopped at its first instruction (gdb's gcore; stored
xz-compressed: its stack is 130 KB of zeros).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from darkimport import samples
from tests.darkcore.archive_tools import SIGNATURE_DIGEST_TAGS, rename_rpm_tags

SEEDS = Path(__file__).parent / "seeds"
_START = ('void _start(void) {\n'
          '    __asm__ volatile("mov $60, %eax\\n\\txor %edi, %edi\\n\\tsyscall");\n}\n')


def main() -> None:
    SEEDS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "plain").mkdir()
        (work / "start.c").write_text(_START)
        tiny = work / "tiny"
        samples.run(["gcc", "-Os", "-nostdlib", "-static", "-s", "-Wl,--build-id=sha1",
                     "-Wl,-z,norelro", "-Wl,-n", "-o", tiny, work / "start.c"])
        samples.run(["gcc", "-c", "-Os", "-o", work / "m.o", work / "start.c"])
        samples.run(["ld", "-r", "--build-id=sha1", "-o", work / "tiny.ko", work / "m.o"])
        samples.run(["strip", "--strip-debug", work / "tiny.ko"])
        shutil.copy(tiny, SEEDS / "tiny.elf")
        shutil.copy(work / "tiny.ko", SEEDS / "tiny.ko")

        rpm = samples.build_rpm(work, "tiny", "1.0", "1.fc40", [(tiny, "/usr/bin/tiny")], "gzip")
        shutil.copy(rpm, SEEDS / "tiny.rpm")
        bare = rename_rpm_tags(rpm.read_bytes(), SIGNATURE_DIGEST_TAGS)
        (SEEDS / "tiny-nodigest.rpm").write_bytes(
            rename_rpm_tags(bare, (5092, 5097, 1035), signature=False))
        cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
        (SEEDS / "tiny.cpio").write_bytes(cpio)

        deb = samples.build_deb(work, "tiny", "1.0-1", "amd64", [(tiny, "/usr/bin/tiny")], "xz")
        shutil.copy(deb, SEEDS / "tiny.deb")
        plain = samples.build_deb(work / "plain", "tiny", "1.0-1", "amd64",
                                  [(tiny, "/usr/bin/tiny")], "none")
        shutil.copy(plain, SEEDS / "tiny-none.deb")
        samples.run(["tar", "--format=gnu", "-cf", work / "tiny.tar", "-C", work, "tiny"])
        # A tar pads to 10 KiB records; the reader needs only the member and two end blocks.
        data = (work / "tiny.tar").read_bytes()
        (SEEDS / "tiny.tar").write_bytes(data[: 512 + 1024 + 1024])

        core = work / "core.tiny"
        samples.run(["gdb", "-nx", "-batch", "-ex", "starti", "-ex", f"gcore {core}", tiny])
        samples.run(["xz", "-9", "-k", core])
        shutil.copy(work / "core.tiny.xz", SEEDS / "tiny.core.xz")
    for seed in sorted(SEEDS.iterdir()):
        print(f"{seed.stat().st_size:8} {seed.name}")


if __name__ == "__main__":
    main()
