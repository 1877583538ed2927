"""Streamlit entry point (`segpipe ui` runs it): the sidebar model picker and the pages.

A page is a zero-argument function in ``views/``; adding one is one
more entry in ``PAGES``. Views are imported when their page runs, so the Models page does
not wait for TensorFlow."""

from __future__ import annotations

import importlib

import streamlit as st

from pipelines.ui import state

#: (module in pipelines.ui.views, title, URL path, icon)
PAGES = [
    ("models", "Models", "models", ":material/inventory_2:"),
    ("predict", "Predict", "predict", ":material/layers:"),
    ("train", "Train", "train", ":material/model_training:"),
]


def _page(module: str):
    def run() -> None:
        importlib.import_module(f"pipelines.ui.views.{module}").page()

    run.__name__ = module
    return run


def main() -> None:
    st.set_page_config(page_title="segpipe", page_icon=":material/satellite_alt:",
                       layout="wide")
    pages = [st.Page(_page(module), title=title, url_path=path, icon=icon,
                     default=index == 0)
             for index, (module, title, path, icon) in enumerate(PAGES)]
    current = st.navigation(pages)
    with st.sidebar, state.shown_errors():
        state.pick_model()
        st.caption(f"Tracking store: `{state.settings().shown_tracking_uri}`")
    with state.shown_errors():
        current.run()


main()
