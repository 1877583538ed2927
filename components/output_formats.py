"""The output format of each cached pipeline step: a number that is part of the step's
inputs, so of its cache key (``kfp.local``'s and a cluster's alike). Kubeflow reuses a data
step when the same component gets the same inputs; it does not know what the code inside
``components/`` writes, so an entry cached by older code would be reused after the step's
artifact changed shape (a tile step cached before ``TileManifest.gsd`` existed left the run
without a recorded training resolution until ``--no-cache``).

The rule (docs/design.md, "Step output formats"): when a change makes a step write something
a reader of its artifact would miss or misread if it got the old one (a new or renamed
field, file or metadata key, another meaning or name of a value), bump that step's number
here in the same commit. A later step whose input changes is recomputed by itself; bump it
only when its own output changes."""

from __future__ import annotations

#: step (the pipeline's component name) -> its output format. History:
#: ingest 2: unnamed value 0 of class-id masks is named background (was class_0);
#: tile 2: tiles.json records gsd, the tiles' metres per pixel;
#: tile 3: identical tiles of overlapping scenes dropped, counted as duplicates_dropped;
#: ingest 3: a class-id mask's declared nodata is ignored (was a class, e.g. class_255);
#: split 2: tiles of scenes in other CRSs compared after reprojection (other splits, drops);
#: ingest 4: a palette colour in ignore_colors is no class (the classes after it move up
#: one id), and lossless masks' colours within color_tolerance read as the palette's.
#: ingest 5: image and label folders pair before suffixes in one folder, preferred folders
#: pair when several fit, exact names before suffixed ones (other pairs for the same source).
#: ingest 6: lossless colour masks snap a colour only to the one palette or ignore colour
#: within color_tolerance (was the nearest of several), and auto reads a common colour near
#: an ignore colour as a given palette does.
#: ingest 7: stems pair without their folder's name as first or last word (MUL/MUL_x.tif +
#: buildings/buildings_x.geojson: other pairs for the same source), and a vector label file
#: without features is all background (was an error).
#: ingest 8: bands tagged with nodata of their own (a VRT of an untagged RGB file and a DSM
#: tagged -9999) mark no data per band: such scenes are written as floats, NaN where invalid.
#: split 3: labels of one class are a warning line, and refused by segpipe run's split step
#: (a split cached before would let it through to trials that all fail).
#: ingest 9: a PNG's alpha channel is no band of its scene (RGBA PNGs give 3-band scenes, as
#: serving reads them), its transparent pixels no data (such scenes written as floats, NaN).
#: tile 4: resampled tiles of scenes with NaN pixels keep the valid pixels next to them (GDAL's
#: Lanczos let NaN into its kernels: serving/resampled_read.py), as serving reads them.
#: ingest 10: pixels a GeoTIFF's own mask marks (an internal mask, a .msk file: GDAL's
#: per-dataset mask, as serving reads it) are no data (such scenes written as floats, NaN).
#: ingest 11: a PNG's tRNS colour is no data where every band matches it (was: any band).
#: ingest 12: scenes.json records each scene's source_dtype, its image's own pixel type (a
#: scene with transparent pixels is float32, its PNG uint8).
#: tile 5: tiles.json records source_dtype, the source images' common type, which the model
#: records as its input type (was the tiles' float32 for RGBA PNGs with a transparent pixel).
OUTPUT_FORMATS: dict[str, int] = {"ingest": 12, "tile": 5, "split": 3, "normalize": 1}
