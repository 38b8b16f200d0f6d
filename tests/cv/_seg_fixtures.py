"""Small real-format segmentation datasets written by the tests (VOC, SBD, ADE20K, Cityscapes, COCO)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def _palette() -> list[int]:
    from toolkit.cv.utils.palette import voc_palette

    return voc_palette(256)


def shapes_image_and_mask(rng: np.random.Generator, h: int, w: int, num_class: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image whose rectangles' colour tells their class (learnable), and its class map."""
    colours = np.array([[20, 20, 20], [230, 40, 40], [40, 230, 40], [40, 40, 230], [230, 230, 40], [40, 230, 230],
                        [230, 40, 230], [140, 140, 140], [250, 150, 60], [90, 60, 200], [200, 90, 90]])
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        c = int(rng.integers(1, num_class))
        y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        mask[y0:y0 + int(rng.integers(6, h // 2 + 6)), x0:x0 + int(rng.integers(6, w // 2 + 6))] = c
    img = colours[mask % len(colours)].astype(np.int16) + rng.integers(-15, 15, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def make_voc(root: Path, n: int = 4, size: tuple[int, int] = (36, 44), seed: int = 0) -> Path:
    """``root/VOC2012``: JPEGs, palette PNG masks with a 255 boundary ring, train/val split files."""
    rng = np.random.default_rng(seed)
    base = root / "VOC2012"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / d).mkdir(parents=True, exist_ok=True)
    ids = [f"2007_{i:06d}" for i in range(n)]
    for i in ids:
        img, mask = shapes_image_and_mask(rng, *size, 21)
        mask[0, :] = 255  # VOC marks object boundaries 255
        Image.fromarray(img).save(base / "JPEGImages" / f"{i}.jpg", quality=95)
        p = Image.fromarray(mask, mode="P")
        p.putpalette(_palette())
        p.save(base / "SegmentationClass" / f"{i}.png")
    (base / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[: n // 2 or 1]) + "\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids[n // 2:]) + "\n")
    return root


def make_sbd(root: Path, n: int = 2, seed: int = 1) -> Path:
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    base = root / "VOCaug" / "dataset"
    (base / "img").mkdir(parents=True, exist_ok=True)
    (base / "cls").mkdir(parents=True, exist_ok=True)
    ids = [f"2008_{i:06d}" for i in range(n)]
    for i in ids:
        img, mask = shapes_image_and_mask(rng, 32, 40, 21)
        Image.fromarray(img).save(base / "img" / f"{i}.jpg")
        savemat(base / "cls" / f"{i}.mat", {"GTcls": {"Segmentation": mask, "Boundaries": np.zeros(1)}})
    (base / "train.txt").write_text("\n".join(ids) + "\n")
    return root


def make_ade(root: Path, n: int = 2, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    for split in ("training", "validation"):
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, mask = shapes_image_and_mask(rng, 32, 32, 151)  # stored 0 (other) .. 150
            mask[0, 0], mask[1, 1] = 150, 1
            Image.fromarray(img).save(base / "images" / split / f"ADE_{split}_{i:08d}.jpg")
            Image.fromarray(mask, mode="L").save(base / "annotations" / split / f"ADE_{split}_{i:08d}.png")
    return root


def make_citys(root: Path, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (root / "leftImg8bit" / split / "aachen").mkdir(parents=True, exist_ok=True)
        (root / "gtFine" / split / "aachen").mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)
        ids = rng.integers(0, 34, (32, 64)).astype(np.uint8)
        ids[0, :4] = [7, 33, 0, 26]  # road, bicycle, unlabeled, car
        Image.fromarray(img).save(root / "leftImg8bit" / split / "aachen" / f"aachen_000000_00001{split[0]}_leftImg8bit.png")
        Image.fromarray(ids, mode="L").save(
            root / "gtFine" / split / "aachen" / f"aachen_000000_00001{split[0]}_gtFine_labelIds.png")
    return root


def make_coco(root: Path, split: str = "val", year: str = "", n: int = 3, seed: int = 4,
              categories: tuple[tuple[int, str], ...] = ((1, "person"), (3, "car"), (7, "train"), (90, "toothbrush")),
              size: int = 40) -> Path:
    """A COCO instances file (RLE and polygon masks, overlapping instances) and its images."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / f"{split}{year}").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    aid = 1
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        name = f"{i:012d}.png"
        Image.fromarray(img).save(root / f"{split}{year}" / name)
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
        for j, (cat, _) in enumerate(categories[:3]):
            m = np.zeros((size, size), dtype=np.uint8)
            y0, x0 = 4 + 6 * j, 4 + 8 * j
            m[y0:y0 + 14, x0:x0 + 14] = 1
            if j == 1:  # a polygon annotation
                seg = [[float(x0), float(y0), float(x0 + 14), float(y0), float(x0 + 14), float(y0 + 14),
                        float(x0), float(y0 + 14)]]
            else:
                rle = mask_utils.encode(np.asfortranarray(m))
                seg = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            anns.append({"id": aid, "image_id": i + 1, "category_id": cat, "segmentation": seg, "iscrowd": 0,
                         "area": float(m.sum()), "bbox": [x0, y0, 14, 14]})
            aid += 1
    data = {"images": images, "annotations": anns,
            "categories": [{"id": c, "name": nm, "supercategory": ""} for c, nm in categories]}
    (root / "annotations" / f"instances_{split}{year}.json").write_text(json.dumps(data))
    return root


def make_scenes_like(root: Path, n_train: int = 8, n_val: int = 4, size: int = 48, seed: int = 5) -> Path:
    """A folder in the fashion-scenes layout (COCO, 10 Fashion-MNIST categories), with learnable shapes."""
    from pycocotools import mask as mask_utils

    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img, mask = shapes_image_and_mask(rng, size, size, 11)
            name = f"{i:06d}.png"
            Image.fromarray(img).save(root / split / name)
            images.append({"id": i, "file_name": name, "height": size, "width": size})
            for c in np.unique(mask):
                if c == 0:
                    continue
                rle = mask_utils.encode(np.asfortranarray((mask == c).astype(np.uint8)))
                anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c - 1), "iscrowd": 0,
                             "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                             "area": float((mask == c).sum()), "bbox": [0, 0, 1, 1]})
        data = {"images": images, "annotations": anns,
                "categories": [{"id": k, "name": nm} for k, nm in enumerate(names)]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root
