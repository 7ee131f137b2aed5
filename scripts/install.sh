#!/usr/bin/env bash
# Installs what Darkserver needs on a Debian machine: system tools (when missing) and a virtual
# environment in .venv with the project.
#   scripts/install.sh          everything: the tools the tests use, .[all,test] and koji
#   scripts/install.sh --demo   only what scripts/demo.sh needs: .[all] and the tools that build
#                               the sample packages
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}

# tool -> Debian package; only what is missing gets installed.
# The demo compiles C with gcc, packs rpms and debs, and builds mysqlclient (server extra).
declare -A need=(
  [gcc]=gcc [readelf]=binutils [objcopy]=binutils [ld]=binutils [ar]=binutils
  [eu-strip]=elfutils [dwz]=dwz [rpmbuild]=rpm [dpkg-deb]=dpkg [xz]=xz-utils [bzip2]=bzip2
  [zstd]=zstd [mariadb_config]=libmariadb-dev [pkg-config]=pkg-config
)
# Only the tests use these: oracles (eu-readelf, gdb, debuginfod-find, bsdtar), the debuginfod
# the benchmarks compare with, a browser for the page test, a load generator, and the tools that
# make real repositories (createrepo_c, apt-ftparchive).
if [ "$mode" != --demo ]; then
  need+=(
    [eu-readelf]=elfutils [eu-unstrip]=elfutils [debuginfod]=debuginfod
    [debuginfod-find]=debuginfod [gdb]=gdb [bsdtar]=libarchive-tools [chromium]=chromium
    [wrk]=wrk [createrepo_c]=createrepo-c [apt-ftparchive]=apt-utils
    [rpm2cpio]=rpm
  )
fi
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install.sh: installing Debian packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "$mode" = --demo ]; then
  .venv/bin/pip install -q -e '.[all]'
else
  .venv/bin/pip install -q -e '.[all,test]'
  # koji's own dependency list pulls gssapi, which needs Kerberos headers to build; Darkserver
  # talks to hubs anonymously, so koji goes in without it (its light deps are in [import]).
  .venv/bin/pip install -q --no-deps 'koji>=1.34'
fi
echo "install.sh: ready (.venv)"
