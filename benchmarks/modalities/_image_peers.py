"""Peer side of benchmarks/modalities/image.py: runs in the peer venv (image_peer_venv.sh).

Times imagecorruptions (the ImageNet-C code) and albumentations on the batch the
main script wrote, one image at a time as they are used, and measures their mean
absolute pixel change (fidelity). imagecorruptions gets uint8 HWC (the only input
it takes); albumentations gets both the same float32 pixels in [0, 1] that
perturbkit gets (HWC, its layout) and the uint8 pixels (its fastest mode). Never
imported by perturbkit; the only input is the .npy batch and the JSON spec, the
only output the JSON results.

Run by image.py:  PEER_PYTHON _image_peers.py SPEC.json OUT.json
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import time_steady  # numpy and the standard library only: fine in the peer venv

warnings.filterwarnings("ignore")


def _change(out, X):
    return float(np.mean(np.abs(np.asarray(out, np.float64) / 255.0 - X / 255.0)))


def albumentations_ops(p):
    """Our severity-3 parameters (``p``, from the spec) in albumentations' terms."""
    import albumentations as A
    import cv2

    refl = cv2.BORDER_REFLECT_101
    build = {
        "image_gaussian_noise": lambda: A.GaussNoise(std_range=(p["sigma"],) * 2, p=1.0),
        "shot_noise": lambda: A.ShotNoise(scale_range=(1.0 / p["photons"],) * 2, p=1.0),
        "impulse_noise": lambda: A.SaltAndPepper(
            amount=(p["amount"],) * 2, salt_vs_pepper=(0.5, 0.5), p=1.0
        ),
        "gaussian_blur": lambda: A.GaussianBlur(
            sigma_limit=(p["blur_sigma"],) * 2, blur_limit=0, p=1.0
        ),
        "motion_blur": lambda: A.MotionBlur(
            blur_limit=(p["motion_len"],) * 2,
            angle_range=(0, 45),
            direction_range=(1.0, 1.0),
            allow_shifted=False,
            p=1.0,
        ),
        "defocus_blur": lambda: A.Defocus(
            radius=(int(p["disk_r"]),) * 2, alias_blur=(p["disk_alias"],) * 2, p=1.0
        ),
        "brightness": lambda: A.RandomBrightnessContrast(
            brightness_limit=(p["brightness"],) * 2, contrast_limit=(0, 0), p=1.0
        ),
        "contrast": lambda: A.RandomBrightnessContrast(
            brightness_limit=(0, 0), contrast_limit=(p["contrast"] - 1,) * 2, p=1.0
        ),
        "saturation": lambda: A.ColorJitter(
            brightness=(1, 1), contrast=(1, 1), saturation=(p["sat_a"],) * 2, hue=(0, 0), p=1.0
        ),
        "hue_shift": lambda: A.HueSaturationValue(
            hue_shift_limit=(p["hue_deg"] / 2,) * 2,
            sat_shift_limit=(0, 0),
            val_shift_limit=(0, 0),
            p=1.0,
        ),
        "color_temperature": lambda: A.PlanckianJitter(
            mode="blackbody", temperature_limit=(int(p["warm_k"]), 6000), p=1.0
        ),
        "jpeg_compression": lambda: A.ImageCompression(quality_range=(p["quality"],) * 2, p=1.0),
        "pixelate": lambda: A.Downscale(
            scale_range=(p["pixelate"],) * 2,
            interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST},
            p=1.0,
        ),
        "lens_distortion": lambda: A.OpticalDistortion(
            distort_limit=(p["lens_k"],) * 2, mode="camera", border_mode=refl, p=1.0
        ),
        "rotation": lambda: A.Affine(rotate=(p["rot_deg"],) * 2, border_mode=refl, p=1.0),
        "translation": lambda: A.Affine(
            translate_percent={"x": (p["shift_x"],) * 2, "y": (p["shift_y"],) * 2},
            border_mode=refl,
            p=1.0,
        ),
        "zoom": lambda: A.Affine(scale=(p["zoom"],) * 2, border_mode=refl, p=1.0),
        "elastic_transform": lambda: A.ElasticTransform(
            alpha=p["elastic_alpha_px"],
            sigma=max(p["elastic_sigma_px"], 1.0),  # albumentations refuses sigma < 1
            noise_distribution="uniform",
            border_mode=refl,
            p=1.0,
        ),
    }
    ops, errors = {}, {}
    for name, make in build.items():
        try:
            ops[name] = make()
        except Exception as exc:  # report, do not hide
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return ops, errors


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    if spec.get("threads"):
        import cv2

        cv2.setNumThreads(int(spec["threads"]))
    X = np.load(spec["input"])  # uint8 NHWC
    Xf = X[: spec["fidelity_n"]]
    out = {"versions": {}, "imagecorruptions": {}, "albumentations": {}, "errors": {}}
    reps = spec["repeats"]

    import imagecorruptions
    from imagecorruptions import corrupt

    out["versions"]["imagecorruptions"] = getattr(imagecorruptions, "__version__", "1.1.2")
    out["versions"]["numpy"] = np.__version__
    for ours, ic_name in spec["imagecorruptions"].items():
        np.random.seed(0)  # noqa: NPY002 - imagecorruptions draws from numpy's global state
        try:
            timing = time_steady(
                lambda n=ic_name: [corrupt(img, corruption_name=n, severity=3) for img in X],
                repeats=reps,
            )
            changes = []
            for s in range(1, 6):
                res = np.stack([corrupt(img, corruption_name=ic_name, severity=s) for img in Xf])
                changes.append(_change(res, Xf))
            out["imagecorruptions"][ours] = {"name": ic_name, "time": timing, "change": changes}
        except Exception as exc:  # report, do not hide
            out["errors"][f"imagecorruptions.{ic_name}"] = f"{type(exc).__name__}: {exc}"

    try:
        import albumentations

        out["versions"]["albumentations"] = albumentations.__version__
        ops, errs = albumentations_ops(spec["params"])
        out["errors"].update({f"albumentations.{k}": v for k, v in errs.items()})
    except Exception as exc:
        out["errors"]["albumentations"] = f"{type(exc).__name__}: {exc}"
        ops = {}
    X32 = X.astype(np.float32) / np.float32(255.0)  # the pixels perturbkit gets, HWC
    out["albumentations_float32"] = {}
    for key, imgs, scale in (("albumentations", X, 1.0), ("albumentations_float32", X32, 255.0)):
        for ours, op in ops.items():
            try:
                op.set_random_seed(0)
                timing = time_steady(
                    lambda op=op, imgs=imgs: [op(image=i)["image"] for i in imgs], repeats=reps
                )
                res = np.stack([op(image=img)["image"] for img in imgs[: len(Xf)]])
                out[key][ours] = {
                    "name": type(op).__name__,
                    "time": timing,
                    "change": _change(np.asarray(res, np.float64) * scale, Xf),
                }
            except Exception as exc:
                out["errors"][f"{key}.{ours}"] = f"{type(exc).__name__}: {exc}"
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
