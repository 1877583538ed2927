"""LabelMe polygon JSON: survey its labels and turn its shapes (polygons, rectangles,
circles, in pixel coordinates) into geometries to rasterize."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.discover import ScenePair
from components.labels import LabelSpec
from components.raster import DataError
from components.survey import Survey


def _read_labelme(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        assert isinstance(data["shapes"], list)
    except (OSError, ValueError, KeyError, AssertionError, TypeError) as err:
        raise DataError(f"{path}: not a LabelMe JSON file with a 'shapes' list ({err})") from err
    return data


def survey_labelme(pair: ScenePair, survey: Survey, size: tuple[int, int]) -> None:
    survey.add_kind("labelme", pair.label)
    data = _read_labelme(pair.label)
    declared = (data.get("imageWidth"), data.get("imageHeight"))
    if None not in declared and tuple(declared) != size:
        raise DataError(f"{pair.label}: labels are {declared[0]}x{declared[1]} but image "
                        f"{pair.image} is {size[0]}x{size[1]}")
    survey.labels.update(str(s.get("label")) for s in data["shapes"])


def labelme_shapes(path: Path, spec: LabelSpec) -> list[tuple[dict, int]]:
    shapes = []
    for shape in _read_labelme(path)["shapes"]:
        label = str(shape.get("label"))
        if label not in spec.label_ids:
            raise DataError(f"{path}: label {label!r} is not a known class (known: "
                            f"{', '.join(spec.class_map.names)})")
        points = np.asarray(shape.get("points", []), dtype=float)
        kind = shape.get("shape_type") or "polygon"
        if kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        elif kind == "circle" and len(points) == 2:
            radius = np.hypot(*(points[1] - points[0]))
            angles = np.linspace(0, 2 * np.pi, 33)[:-1]
            points = points[0] + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        elif kind != "polygon" or len(points) < 3:
            continue  # lines and points cover no area
        ring = [*map(tuple, points.tolist()), tuple(points[0].tolist())]
        shapes.append(({"type": "Polygon", "coordinates": [ring]}, spec.label_ids[label]))
    return shapes
