"""The nodata value each scene's image is read with: its own nodata tag, else the ingest
option ``nodata`` (images that declare none, such as a mosaic merged with 0 fill). A tag wins
over the option, as a GIS reader honours a file's tag; a tag that differs from the option is
reported, so a user who expected the option to apply sees that it did not. Bands of a VRT
may carry tags of their own (an untagged RGB file stacked with a DSM tagged -9999): the
image's nodata is then per band (serving.bands.band_nodata), and the option, which applies to
every band, is for images whose bands declare none.

A PNG's alpha channel is transparency, as on every serving path (serving/image_bands.py): never
a band of the scene, its transparent pixels no data; so are the pixels a GeoTIFF's own mask
band marks (``source_bands``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.discover import ScenePair
from components.raster import SettingError
from serving.bands import band_nodata, nodata_text, same_nodata
from serving.image_bands import ImageBands, image_bands
from serving.pixels import Nodata


def source_bands(src) -> ImageBands:
    """The bands of a source image its scene keeps, and whether its own mask marks no data:
    serving's rule (``image_bands``) for a model of every band the file holds, as no model's
    band count is known yet. So only an alpha band by its format's definition (a PNG's) is
    transparency; a GeoTIFF's alpha tag, which GDAL puts on the 4th band of any 8-bit 4-band
    GeoTIFF (RGB + near infrared too), stays a band. A mask of GDAL's own (an internal one,
    as orthomosaics mark their collar with, or a ``.msk`` file) marks no data; one GDAL
    derives from nodata or from nothing (all valid) is no mask of the file's."""
    return image_bands(src, src.count)


@dataclass
class ImageNodata:
    """``option`` (IngestOptions.nodata) applied scene by scene: ``of`` maps each image
    to the nodata it is read with; ``differing`` lists the images whose own tag differs."""

    option: float | None
    of: dict[Path, Nodata] = field(default_factory=dict)
    differing: list[tuple[Path, Nodata]] = field(default_factory=list)
    untagged: int = 0  # images the option applied to

    def read(self, pair: ScenePair) -> Nodata:
        """The pair's image's nodata in effect (its header only); a SettingError when the
        option cannot be a pixel value of the image's type."""
        image = pair.image
        with pair.open_image() as src:
            indexes = source_bands(src).indexes
            tag = band_nodata(src, indexes=indexes)
            dtypes = tuple(src.dtypes[index - 1] for index in indexes)
        if tag is not None:
            if self.option is not None and not _same(tag, self.option):
                self.differing.append((image, tag))
            nodata = tag
        else:
            if self.option is not None:
                _check_fits(image, dtypes, self.option)
                self.untagged += 1
            nodata = self.option
        self.of[image] = nodata
        return nodata

    def warnings(self) -> list[str]:
        if not self.differing:
            return []
        image, tag = self.differing[0]
        more = f" and {len(self.differing) - 1} more" if len(self.differing) > 1 else ""
        return [f"{image} declares nodata {nodata_text(tag)}{more}: an image's own nodata wins, "
                f"nodata {self.option:g} applies only to images that declare none"]


def _same(a: Nodata, b: float) -> bool:
    return not isinstance(a, tuple) and same_nodata(a, b)


def _check_fits(image: Path, dtypes: tuple[str, ...], value: float) -> None:
    """A pixel is no data where every band holds ``value`` (serving/pixels.py), so a value
    that one band's type cannot hold marks nothing: refused, naming that band. NaN in any
    float band is no data on its own."""
    if math.isnan(value) and any(np.dtype(name).kind == "f" for name in dtypes):
        return
    for band, name in enumerate(dtypes, 1):
        dtype = np.dtype(name)
        if dtype.kind == "f":
            continue
        limits = np.iinfo(dtype)
        if math.isnan(value) or not float(value).is_integer() \
                or not limits.min <= value <= limits.max:
            which = "" if len(set(dtypes)) == 1 else (
                f" of band {band} (bands {', '.join(dtypes)}: a pixel is no data where every "
                f"band holds the value; for one band's own no data, tag that band in the VRT: "
                f"<NoDataValue>, docs/data.md)")
            raise SettingError(f"{image}: {{setting}} {value:g} is not a {dtype} pixel value "
                               f"({limits.min}..{limits.max}){which}; give the value that "
                               f"marks no data in these images", "nodata")
