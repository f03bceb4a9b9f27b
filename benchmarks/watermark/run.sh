#!/usr/bin/env bash
# The watermark benchmark, one command:  bash benchmarks/watermark/run.sh
#
# Builds benchmarks/.venv-watermark (git-ignored) with invisible-watermark from the package
# index, CPU only, then runs run.py there: our library (imported from this checkout) beside
# invisible-watermark's dwtDct and dwtDctSvd on the same images (generated ones and real
# photographs from scikit-image) in the same run.
# Extra arguments go to run.py (e.g. --quick). Single-threaded, as the targets are per core.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.venv-watermark"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import imwatermark, skimage" 2>/dev/null; then
    python3 -m venv "$venv"
    # Same numpy and Pillow as the project; invisible-watermark imports torch at module level
    # (for RivaGAN, which is not measured), so the CPU build of torch is installed too.
    "$venv/bin/pip" install -q numpy==2.4.6 pillow==13.0.0 opencv-python-headless PyWavelets \
        torch==2.13.0
    "$venv/bin/pip" install -q --no-deps invisible-watermark==0.2.0
    # The real photographs of the corpus come with scikit-image (as in requirements-dev.txt).
    "$venv/bin/pip" install -q scikit-image==0.26.0 scipy==1.17.1 networkx==3.6.1 \
        imageio==2.38.2 tifffile==2026.3.3 lazy-loader==0.6
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$root"
exec "$venv/bin/python" benchmarks/watermark/run.py "$@"
