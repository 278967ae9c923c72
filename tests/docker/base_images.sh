#!/usr/bin/env bash
# Stand-ins for the Dockerfile's base images, for machines that cannot reach an image registry.
#
# The Dockerfile builds every stage FROM python:3.11-slim-trixie. The stand-in is what that image is made of:
# Debian trixie (`debootstrap --variant=minbase`), the runtime libraries CPython links against, and CPython 3.11
# with pip and venv under /usr/local, with the image's PATH, LANG and CMD. CPython is this machine's own 3.11
# (its standard library without site-packages and tests), since no python.org download is reachable here; pip
# comes from its ensurepip. Nothing is left behind: the tree lives in a temporary folder removed on exit.
#
# Usage (as root, Docker running): tests/docker/base_images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=${DOCKER:-docker}
PYTHON=${BASE_PYTHON:-python3.11}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
force=${1:-}

# Every FROM of the Dockerfile that is not one of its own stages: each needs a stand-in.
mapfile -t stages < <(awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4 }' Dockerfile)
mapfile -t froms < <(awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | sort -u)
for from in "${froms[@]}"; do
  [[ " ${stages[*]} " == *" $from "* || "$from" == python:3.11-slim-trixie ]] && continue
  echo "base_images.sh: no stand-in recipe for $from (the Dockerfile's FROM changed?)" >&2
  exit 1
done

tag=python:3.11-slim-trixie
if [[ "$force" != "--force" ]] && "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
  echo "stand-in $tag exists (--force rebuilds it)"
  exit 0
fi

"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "base_images.sh: needs CPython 3.11 on this machine (BASE_PYTHON=...)" >&2; exit 1; }
prefix=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
version=$("$PYTHON" -c 'import platform; print(platform.python_version())')

work=$(mktemp -d /var/tmp/codex-wrapper-base.XXXXXX)
cleanup() {
  for mount in proc sys dev/pts dev; do umount -l "$work/root/$mount" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# What python:3.11-slim-trixie installs: ca-certificates, netbase, tzdata, and the libraries of its CPython build.
libraries=libbz2-1.0,libexpat1,libffi8,liblzma5,libncursesw6,libreadline8t64,libsqlite3-0,libssl3t64,libuuid1,zlib1g
echo "debootstrap trixie (minbase) into $work/root"
debootstrap --variant=minbase --include="ca-certificates,netbase,tzdata,$libraries" trixie "$work/root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

echo "CPython $version from $prefix into /usr/local"
mkdir -p "$work/root/usr/local/bin" "$work/root/usr/local/lib"
cp -a "$prefix/bin/python3.11" "$work/root/usr/local/bin/"
cp -a "$prefix"/lib/libpython3.11.so* "$work/root/usr/local/lib/"
# As the real image: no tests, no bytecode, no static library, stripped binaries.
tar -C "$prefix/lib" --exclude='python3.11/site-packages/*' --exclude=test --exclude=tests --exclude=idle_test \
  --exclude='python3.11/idlelib' --exclude='python3.11/tkinter' --exclude='__pycache__' --exclude='libpython*.a' \
  -cf - python3.11 | tar -C "$work/root/usr/local/lib" -xf -
find "$work/root/usr/local" -type f \( -name '*.so*' -o -name python3.11 \) -exec strip --strip-unneeded {} +
mkdir -p "$work/root/usr/local/lib/python3.11/site-packages"
ln -sf python3.11 "$work/root/usr/local/bin/python3"
ln -sf python3 "$work/root/usr/local/bin/python"
chroot "$work/root" /sbin/ldconfig
chroot "$work/root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  /usr/local/bin/python3 -m ensurepip --default-pip >/dev/null
ln -sf pip3 "$work/root/usr/local/bin/pip"
chroot "$work/root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin /usr/local/bin/python -c \
  'import ssl, sqlite3, ctypes, lzma, bz2, venv, pip; print("stand-in python", __import__("sys").version.split()[0])'

# As in Debian's slim images: no documentation, manuals or translations, now or from later installs; no apt lists.
cat >"$work/root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
find "$work/root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$work/root/usr/share/man/"* "$work/root/usr/share/info/"* "$work/root/usr/share/locale/"*
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin "$work/root/var/cache/apt/archives/"*.deb \
  "$work/root/var/log/"*.log "$work/root/root/.cache"

tar --numeric-owner -C "$work/root" -cf - . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$version" \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
echo "stand-in $tag: $("$DOCKER" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
