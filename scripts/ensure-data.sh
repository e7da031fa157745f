#!/usr/bin/env bash
# Make sure the offline Fashion-MNIST files are present (Debian package dataset-fashion-mnist).
#
# Usage: scripts/ensure-data.sh [DIR]
# The folder is DIR (the run config's data-dir), else $ECOFED_FASHION_MNIST_DIR, else
# /usr/share/datasets/fashion-mnist: the same order the package reads it in. Each of the four
# idx files may be gzipped (as Debian ships them) or not.
set -euo pipefail
default=/usr/share/datasets/fashion-mnist
dir="${1:-${ECOFED_FASHION_MNIST_DIR:-$default}}"
stems=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
missing=()
for s in "${stems[@]}"; do
    [ -f "$dir/$s.gz" ] || [ -f "$dir/$s" ] || missing+=("$s")
done
[ "${#missing[@]}" = 0 ] && exit 0
if [ "$dir" = "$default" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Fashion-MNIST not found in $dir: installing the Debian package dataset-fashion-mnist"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    exit 0
fi
cat >&2 <<MSG
Fashion-MNIST was not found in $dir (missing: ${missing[*]}, each .gz or not).
Install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu, files go to
$default), or put the four idx files in a folder and pass it: data-dir in the run config
(make run DATA_DIR=/path ARGS="--run-config 'data-dir=\"/path\"'") or ECOFED_FASHION_MNIST_DIR.
MSG
exit 1
