#!/usr/bin/env bash
# Installs everything Darkserver needs on a Debian machine: system tools (when missing) and a
# virtual environment in .venv with the project and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package; only what is missing gets installed.
declare -A need=(
  [gcc]=gcc [readelf]=binutils [rpmbuild]=rpm [dpkg-deb]=dpkg [eu-readelf]=elfutils
  [eu-unstrip]=elfutils [debuginfod]=debuginfod [debuginfod-find]=debuginfod [gdb]=gdb
  [zstd]=zstd [dwz]=dwz [xz]=xz-utils [bzip2]=bzip2 [mariadb_config]=libmariadb-dev
  [pkg-config]=pkg-config [bsdtar]=libarchive-tools [chromium]=chromium [wrk]=wrk [ar]=binutils
  [createrepo_c]=createrepo-c [apt-ftparchive]=apt-utils [rpm2cpio]=rpm
)
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
.venv/bin/pip install -q -e '.[test]'
# koji's own dependency list pulls gssapi, which needs Kerberos headers to build; Darkserver
# talks to hubs anonymously, so koji goes in without it (its light deps are in pyproject).
.venv/bin/pip install -q --no-deps 'koji>=1.34'
echo "install.sh: ready (.venv)"
