"""Predict page: a scene (upload or data folder) through the picked model, shown over the
image with a legend and area shares, downloadable as GeoTIFF and GeoJSON."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from pipelines.ui import areas, scenes, state
from pipelines.ui.legend import legend_html
from pipelines.ui.prediction import (
    PredictOptions,
    check_model_server,
    gate_note,
    map_unit,
    model_caption,
    new_result_dir,
    pixel_size_field,
    polygons_caption,
    polygons_geojson,
    remote_predictor,
    result_source,
    run_prediction,
    scene_notes,
)
from pipelines.ui.render import Preview, overlay, read_mask, read_preview
from serving.config import MAX_OVERLAP
from serving.decode import PIXEL_SIZE_MEANING
from serving.polygons import BACKGROUND_NAMES, WGS84, PolygonOptions

_UPLOAD_KEY = "segpipe.upload"
_RESULT_KEY = "segpipe.result"
_NOTES_KEY = "segpipe.scene_notes"
_PIXEL_SIZE_KEY = "segpipe.pixel_size"
UPLOAD, DATA_FOLDER = "Upload", "Data folder"
IN_APP, ENDPOINT = "In this app", "Model server"


@dataclass
class Scene:
    path: Path
    name: str
    key: str  # changes when the scene does


@dataclass
class Result:
    key: tuple
    mask_path: Path
    name: str
    source: str  # the version or the model server that made the mask
    preview: Preview
    rows: list[areas.ClassArea]
    seconds: float
    hectares_note: str | None = None  # where the legend's pixel area comes from, if given


def _uploaded_scene(max_upload_mb: int) -> Scene | None:
    uploaded = st.file_uploader(
        f"GeoTIFF, PNG or JPEG, up to {max_upload_mb} MB",
        type=[s.lstrip(".") for s in scenes.SCENE_SUFFIXES], key="segpipe.uploader")
    # Streamlit refuses a larger file in the browser: the app never sees it (the uploader
    # keeps returning the previous file), so the page can only say beforehand what happens.
    st.caption(f"A file over {max_upload_mb} MB is refused: its chip turns red (hover it "
               f"for the reason) and the previous file, if any, stays the scene. Larger "
               f"scenes go through `--data-dir` or `segpipe predict`.")
    if uploaded is None:
        return None
    saved = st.session_state.get(_UPLOAD_KEY)
    if saved is None or saved[0] != uploaded.file_id:
        folder = state.session_dir() / "upload"
        shutil.rmtree(folder, ignore_errors=True)
        path = scenes.save_upload(uploaded.getvalue(), uploaded.name, folder)
        saved = (uploaded.file_id, path)
        st.session_state[_UPLOAD_KEY] = saved
    return Scene(path=saved[1], name=uploaded.name, key=f"upload:{uploaded.file_id}")


def _folder_scene(data_dir: Path) -> Scene | None:
    listed = state.data_scenes(data_dir)
    if not listed:
        st.info(f"No GeoTIFF, PNG or JPEG files in {data_dir}.")
        return None
    relative = st.selectbox("Scene", listed, key="segpipe.scene")
    path = scenes.scene_path(data_dir, relative)
    return Scene(path=path, name=relative, key=f"folder:{relative}:{path.stat().st_mtime_ns}")


def _options(config, endpoint: str | None, asks_pixel_size: bool) -> PredictOptions:
    pixel_size = None
    if asks_pixel_size:  # `segpipe predict --pixel-size`, the server's param pixel_size
        pixel_size = st.number_input("Pixel size (m)", min_value=0.0, value=None,
                                     format="%g", key=_PIXEL_SIZE_KEY,
                                     help=PIXEL_SIZE_MEANING[0].upper() + PIXEL_SIZE_MEANING[1:])
        pixel_size = pixel_size_field(pixel_size)  # after the field, so it can be mended
    cols = st.columns(3)
    tta = cols[0].checkbox("Test-time augmentation (8 flips/rotations)", key="segpipe.tta")
    overlap = cols[1].slider("Window overlap", 0.0, MAX_OVERLAP, float(config.overlap), 0.05,
                             key="segpipe.overlap")
    where = IN_APP
    if endpoint:
        where = cols[2].radio(
            "Run on", [IN_APP, ENDPOINT], horizontal=True, key="segpipe.where",
            help=f"{ENDPOINT}: {endpoint}, with the model it was started with (`segpipe "
                 f"serve --model-uri`), whatever version the sidebar shows.")
    return PredictOptions(tta=tta, overlap=overlap,
                          endpoint=endpoint if where == ENDPOINT else None,
                          pixel_size=pixel_size)


def _predict(scene: Scene, version, config, options: PredictOptions, key: tuple) -> Result:
    if options.endpoint:
        if warning := check_model_server(options.endpoint, version.model_uri):
            st.warning(warning)
        predictor = remote_predictor(options.endpoint, config, options.tta, scene.path)
    else:
        predictor = state.local_predictor(version.model_uri)
    bar = st.progress(0.0, text=f"Predicting {scene.name}…")
    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / max(total, 1))
        if percent != shown[0]:  # one message per percent, not per block
            shown[0] = percent
            bar.progress(percent / 100, text=f"Predicting {scene.name}… {percent} %")

    started = time.perf_counter()
    result = run_prediction(predictor, scene.path, scene.name,
                            new_result_dir(state.session_dir()), options, progress)
    seconds = time.perf_counter() - started
    bar.empty()
    preview = read_preview(scene.path)
    pixel_m2, given = areas.legend_pixel_area(result.mask_path, options.pixel_size)
    rows = areas.class_areas(result.class_pixels, config.class_names, config.class_colors,
                             pixel_m2)
    return Result(key=key, mask_path=result.mask_path, name=scene.name,
                  source=result_source(version, options.endpoint), preview=preview,
                  rows=rows, seconds=seconds,
                  hectares_note=(f"Hectares from the pixel size you gave "
                                 f"({options.pixel_size:g} m)." if given else None))


def _show(result: Result, config) -> None:
    mask = read_mask(result.mask_path, result.preview.rgb.shape[:2])
    image_col, mask_col, legend_col = st.columns([4, 4, 4])
    opacity = legend_col.slider("Mask opacity", 0.0, 1.0, 0.5, 0.05, key="segpipe.opacity")
    # JPEG: for a 1024 px preview 10-25x faster to encode and a fraction of PNG's bytes, so
    # the opacity slider stays quick; the downloads are the exact files.
    image_col.image(result.preview.rgb, caption=result.name, width="stretch",
                    output_format="JPEG")
    mask_col.image(overlay(result.preview.rgb, mask, config.class_colors, opacity),
                   caption="mask over the image", width="stretch", output_format="JPEG")
    headers, rows = areas.area_table(result.rows)
    legend_col.markdown(legend_html(rows, headers), unsafe_allow_html=True)
    legend_col.caption(f"Predicted by {result.source} in {result.seconds:.1f} s."
                       + (f" {result.hectares_note}" if result.hectares_note else ""))
    stem = Path(result.name).stem or "scene"
    mask_path = result.mask_path
    legend_col.download_button("Download mask (GeoTIFF)", data=mask_path.read_bytes,
                               file_name=f"{stem}_mask.tif", mime="image/tiff",
                               on_click="ignore", key="segpipe.download_mask")
    options = _polygon_options(legend_col, config, mask_path)
    legend_col.download_button(
        "Download polygons (GeoJSON)",
        data=lambda: polygons_geojson(mask_path, config.class_names, config.ignore_index,
                                      options),
        file_name=f"{stem}_mask.geojson", mime="application/geo+json", on_click="ignore",
        key="segpipe.download_polygons")
    legend_col.caption(polygons_caption(mask_path, options.crs is not None))


def _polygon_options(column, config, mask_path: Path) -> PolygonOptions:
    """The polygon download's options, as `segpipe predict`'s --polygon-classes,
    --min-area, --simplify and --polygons-crs."""
    unit, georeferenced = map_unit(mask_path)
    with column.expander("Polygon options", key="segpipe.polygon_options", on_change="rerun"):
        classes = st.multiselect(
            "Classes", config.class_names, key="segpipe.polygon_classes",
            default=[n for n in config.class_names if n.lower() not in BACKGROUND_NAMES])
        min_area = st.number_input(f"Minimum area ({unit}²)", min_value=0.0, value=0.0,
                                   key="segpipe.min_area",
                                   help="smaller regions (once simplified too) are left out")
        simplify = st.number_input(f"Simplify within ({unit})", min_value=0.0, value=0.0,
                                   key="segpipe.simplify",
                                   help="0 keeps the pixel outlines")
        wgs84 = st.checkbox("Longitude/latitude (EPSG:4326), for web maps",
                            key="segpipe.wgs84", disabled=not georeferenced,
                            help="otherwise in the scene's CRS")
    return PolygonOptions(classes=tuple(classes), min_area=min_area, simplify=simplify,
                          crs=WGS84 if wgs84 else None)


def _show_notes(scene: Scene, model_uri: str, config, max_pixels: int,
                pixel_size: float | None) -> None:
    """How the scene is resampled and what about it is not what the model learnt from,
    above the options (read once per scene, model and pixel size: every widget change
    reruns this)."""
    key = (scene.key, model_uri, pixel_size)
    held = st.session_state.get(_NOTES_KEY)
    if held is None or held[0] != key:
        held = (key, scene_notes(scene.path, scene.name, config, max_pixels, pixel_size))
        st.session_state[_NOTES_KEY] = held
    notes = held[1]
    for warning in notes.warnings:
        st.warning(warning)
    if notes.resampling:
        st.caption(f"At the model's resolution: {notes.resampling}.")


def page() -> None:
    st.title("Predict")
    version = state.picked_version()
    if version is None:
        st.info("Pick a registered model in the sidebar.")
        return
    settings = state.settings()
    config = state.serving_config(version.model_uri)
    # The radio's value of this rerun (set before the script runs), so the caption above it
    # already says which model will predict.
    on_server = settings.endpoint if st.session_state.get("segpipe.where") == ENDPOINT else None
    st.caption(model_caption(version, config, settings.max_pixels, on_server))
    if note := gate_note(version):
        st.warning(note)
    source = UPLOAD
    if settings.data_dir is not None:
        source = st.radio("Scene from", [UPLOAD, DATA_FOLDER], horizontal=True,
                          key="segpipe.source")
    scene = (_folder_scene(settings.data_dir) if source == DATA_FOLDER
             else _uploaded_scene(settings.max_upload_mb))
    if scene is None:
        return
    info = scenes.inspect_scene(scene.path, scene.name, config.in_channels,
                                settings.max_pixels)
    st.caption(f"{scene.name}: {info.describe()}")
    asks_pixel_size = config.gsd is not None and info.metres_per_pixel is None
    # The field's value of this rerun (set before the script runs), for the notes above it.
    given = st.session_state.get(_PIXEL_SIZE_KEY) if asks_pixel_size else None
    _show_notes(scene, version.model_uri, config, settings.max_pixels, given or None)
    options = _options(config, settings.endpoint, asks_pixel_size)
    key = (scene.key, version.model_uri, options)
    if st.button("Predict", type="primary", key="segpipe.predict"):
        st.session_state.pop(_RESULT_KEY, None)
        st.session_state[_RESULT_KEY] = _predict(scene, version, config, options, key)
    result = st.session_state.get(_RESULT_KEY)
    if result is not None and result.key == key:
        _show(result, config)
    elif result is not None:
        st.info("The scene, model or options changed: press Predict for a new mask.")
