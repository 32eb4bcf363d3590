#!/usr/bin/env bash
# Install what the build and the tests need on a fresh Debian machine, then
# build and install fastdicom (Rust + Cython extensions) in place.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# System packages: a C/C++ compiler for Cython and the bundled codecs, cmake
# and pkg-config for -sys crates,
# DCMTK (echoscu, storescu, storescp, dcmqrscp) and Orthanc as network peers in the tests.
NEED_APT=()
command -v cc >/dev/null || NEED_APT+=(build-essential)
command -v c++ >/dev/null || NEED_APT+=(g++)  # CharLS is C++
command -v make >/dev/null || NEED_APT+=(make)  # the cmake crate drives make
command -v pkg-config >/dev/null || NEED_APT+=(pkg-config)
command -v dcmdump >/dev/null || NEED_APT+=(dcmtk)  # dcmdump: pynetdicom's storescp shadows the name
command -v cmake >/dev/null || NEED_APT+=(cmake)  # charls-sys builds CharLS (JPEG-LS) with it
command -v nasm >/dev/null || NEED_APT+=(nasm)  # turbojpeg-sys builds libjpeg-turbo's SIMD with it
[ -f /usr/include/openjph/ojph_codestream.h ] || NEED_APT+=(libopenjph-dev)  # HTJ2K: fastdicom._cy._openjph
ldconfig -p 2>/dev/null | grep -q libopenjp2.so || NEED_APT+=(libopenjp2-7)  # glymur's OpenJPEG (a twin)
[ -x /usr/sbin/Orthanc ] || NEED_APT+=(orthanc)  # Orthanc: a Q/R and storage peer the tests start on loopback
if [ ${#NEED_APT[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${NEED_APT[@]}"
fi
# The orthanc package enables a system service on 4242/8042; the tests start their own instances on other loopback
# ports, so the packaged one must not run (it may have started where policy-rc.d allows it).
if [ -x /usr/sbin/Orthanc ]; then
  if command -v systemctl >/dev/null; then
    if [ -d /run/systemd/system ]; then $SUDO systemctl stop orthanc >/dev/null 2>&1 || true; fi
    $SUDO systemctl disable orthanc >/dev/null 2>&1 || true  # works without a running systemd too
  fi
  if [ -x /etc/init.d/orthanc ]; then
    $SUDO /etc/init.d/orthanc stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null; then $SUDO update-rc.d orthanc disable >/dev/null 2>&1 || true; fi
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "ci/setup.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

PY=${PYTHON:-python3}
$PY -m pip install -q --upgrade pip >/dev/null 2>&1 || true
$PY -m pip install -q \
  "setuptools>=68" "setuptools-rust>=1.9" "Cython>=3.0" "numpy>=1.24" wheel \
  "pytest>=8" "pytest-benchmark>=4" "hypothesis>=6" psutil ruff "mypy==2.4.1" "typing_extensions>=4.6" \
  "pydicom==3.0.2" "pydicom-data==1.0.0" "deid-data==0.0.20" "pynetdicom==3.0.4" "imagecodecs==2026.3.6" \
  "pyjpegls==1.5.1" "python-gdcm==3.2.6" "pillow>=10" "pylibjpeg==2.1.0" "pylibjpeg-openjpeg==2.6.0" \
  "glymur==0.14.8" "rich==15.0.0" "xxhash==4.1.0"
# rich: the CLI's tables and progress bars (a dependency of the package); xxhash: the twin of the native xxh3 checksum
# pyjpegls, pylibjpeg-openjpeg, glymur: our further pure-Python twins (JPEG-LS; JPEG 2000 and HTJ2K) and, with
# python-gdcm and pillow, pydicom's plugins: the tests read our files back with them

# Build everything; a missing or failing native build is an error here.
FASTDICOM_REQUIRE_NATIVE=1 $PY -m pip install -q --no-build-isolation -e .
