#!/usr/bin/env bash
# Make the image benchmark's peer venv: imagecorruptions (the ImageNet-C code) and
# albumentations, in their own interpreter, never in perturbkit's dependencies.
#
# imagecorruptions 1.1.2 calls scikit-image with `multichannel=` (removed in 0.21) and
# scipy.ndimage's old module paths, so it needs old pins: numpy < 2, scikit-image < 0.20,
# scipy < 1.12. Python 3.10 is the newest interpreter with wheels for all of them.
#
# Usage: bash benchmarks/modalities/image_peer_venv.sh [VENV_DIR]
#        (default benchmarks/modalities/.peer-venv-image; PEER_PYTHON picks the interpreter)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${1:-$HERE/.peer-venv-image}"
PY="${PEER_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.10 "$HOME/.pyenv/versions/3.10.13/bin/python3.10" python3; do
    if "$cand" -c "import sys; assert sys.version_info[:2] == (3, 10)" 2>/dev/null; then PY="$cand"; break; fi
  done
fi
PY="${PY:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet \
  "numpy>=1.24,<2" "scipy>=1.10,<1.12" "scikit-image>=0.19,<0.20" \
  "opencv-python-headless>=4.8,<4.11" "Pillow>=10" \
  "imagecorruptions==1.1.2" "albumentations>=2.0,<2.1"
# imagecorruptions pulls the GUI build of OpenCV; keep only the headless one.
"$VENV/bin/pip" uninstall --quiet -y opencv-python || true
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "opencv-python-headless>=4.8,<4.11"
"$VENV/bin/python" - <<'PY'
import albumentations, cv2, imagecorruptions, numpy, skimage
print("peer venv ready:", "numpy", numpy.__version__, "skimage", skimage.__version__,
      "cv2", cv2.__version__, "albumentations", albumentations.__version__)
PY
