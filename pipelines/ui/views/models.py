"""Models page: the registered model's versions and the picked one's scores and inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from pipelines.ui import registry, state
from pipelines.ui.legend import legend_html


def _table(versions: list[registry.VersionSummary], base: str | None) -> None:
    rows = [{
        "version": f"v{v.version}",
        "aliases": ", ".join(v.aliases),
        "test mIoU": v.test_miou,
        "architecture": v.architecture,
        "dataset": (v.dataset_digest or "")[:12],
        "gate decision": v.decision,
        "registered": datetime.fromtimestamp(v.created_ms / 1000, UTC),
        "MLflow": registry.version_url(base, v.name, v.version),
    } for v in versions]
    # Fixed widths: sized to their contents, a long gate decision pushed "registered" out
    # of the main column at 1400 px; the decision is cut instead (hover shows it whole).
    columns = {"version": st.column_config.TextColumn(width="small"),
               "aliases": st.column_config.TextColumn(width="small"),
               "test mIoU": st.column_config.NumberColumn(format="%.3f", width="small"),
               "architecture": st.column_config.TextColumn(width="small"),
               "dataset": st.column_config.TextColumn(width="small"),
               "gate decision": st.column_config.TextColumn(width="medium"),
               "registered": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm",
                                                             width="small")}
    if base:
        columns["MLflow"] = st.column_config.LinkColumn(display_text="open")
    else:
        rows = [{k: val for k, val in row.items() if k != "MLflow"} for row in rows]
    st.dataframe(rows, column_config=columns, hide_index=True, width="stretch")


def _links(version: registry.VersionSummary, base: str | None) -> None:
    if not base:
        st.caption(f"Registered by run `{version.run_id}`"
                   + (f", trained in run `{version.train_run_id}`" if version.train_run_id
                      else "")
                   + ". For links, start `segpipe ui --mlflow-ui URL` (e.g. the address of "
                     "`mlflow ui`).")
        return
    links = []
    for label, run_id in (("registration run", version.run_id),
                          ("training run", version.train_run_id)):
        url = registry.run_url(base, state.experiment_of(run_id), run_id)
        if url:
            links.append(f"[{label}]({url})")
    links.append(f"[version page]({registry.version_url(base, version.name, version.version)})")
    st.markdown("MLflow: " + " · ".join(links))


def page() -> None:
    st.title("Models")
    version = state.picked_version()
    if version is None:
        st.info("Pick a registered model in the sidebar.")
        return
    base = state.settings().run_base_url()
    st.subheader(f"{version.name} v{version.version}"
                 + (f" · {', '.join(version.aliases)}" if version.aliases else ""))
    config = state.serving_config(version.model_uri)
    cols = st.columns(4)
    cols[0].metric("test mIoU", "–" if version.test_miou is None else f"{version.test_miou:.3f}")
    cols[1].metric("architecture", version.architecture or "–")
    cols[2].metric("patch size", f"{config.patch_size} px")
    cols[3].metric("bands", config.in_channels)
    ious = version.class_iou
    rows = [(color, name, ["–" if name not in ious else f"{ious[name]:.3f}"])
            for name, color in zip(config.class_names, config.class_colors, strict=True)]
    st.markdown(legend_html(rows, ["test IoU"]), unsafe_allow_html=True)
    st.markdown(f"**Dataset digest:** `{version.dataset_digest or '–'}`  \n"
                f"**Gate decision:** {version.decision or '–'}")
    _links(version, base)
    st.divider()
    st.markdown(f"**All versions of {version.name}**")
    _table(state.model_versions(version.name), base)
