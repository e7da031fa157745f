#!/usr/bin/env bash
# Make sure the offline Fashion-MNIST files are present (Debian package dataset-fashion-mnist).
set -euo pipefail
dir="${ECOFED_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
missing=0
for f in "${files[@]}"; do [ -f "$dir/$f" ] || missing=1; done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${ECOFED_FASHION_MNIST_DIR:-}" ]; then
    echo "Fashion-MNIST not found in $dir: installing the Debian package dataset-fashion-mnist"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    exit 0
fi
cat >&2 <<MSG
Fashion-MNIST was not found in $dir.
Install it with 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or put the four
idx .gz files (${files[*]}) in a folder and set ECOFED_FASHION_MNIST_DIR to it.
MSG
exit 1
