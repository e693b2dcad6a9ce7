"""“Share with the room”: a large QR code of this exact view and its link, in a dialog.

The link is made from the address the browser used (see :mod:`explainer.ui.stage.links` for the rules)
and the URL's own query, which :func:`explainer.ui.stage.talk.complete_url` keeps complete. A text
too long for the link, or long enough to make the code hard to scan, goes by short link
(:mod:`explainer.shortlinks`). The QR code is made on the server with segno, fully offline.
"""
from __future__ import annotations

from typing import Mapping

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from explainer import shortlinks
from explainer.ui.frame import params, state
from explainer.ui.stage import links

QR_PIXELS = 460


def share_button(common: Mapping[str, str], key: str, where: DeltaGenerator | None = None, short: bool = False) -> None:
    """A button that opens the share dialog; ``where`` is ``st``, ``st.sidebar`` or a column."""
    label = common["stage.share_short_button" if short else "stage.share_button"]
    if (where or st).button(label, key=key, help=common["stage.share_help"], width="stretch"):
        st.dialog(common["stage.share_title"], width="large")(_dialog_body)(common)


def current_link() -> tuple[str, list[tuple[str, Mapping[str, str]]]]:
    """The link that reproduces this view for the room, and the notes that explain it."""
    reach = links.reachable_origin(st.context.url, st.context.headers.get("Host"),
                                   st.get_option("server.address"))
    notes = list(reach.notes)
    query = st.query_params.to_dict()
    try:
        query, _ = links.shared_query(query, reach.origin, shortlinks.save, params.LONG_TEXTS)
        failed = ""
    except (OSError, ValueError) as err:             # the store refused: the text goes in full (a denser code)
        query = {k: v for k, v in query.items() if k not in links.NOT_SHARED}
        failed = links.shown(err)
    for name in params.LONG_TEXTS:
        text = str(state.get(name))
        if name + "_ref" in query:
            long = len(text) > params.MAX_URL_TEXT
            notes.append(("share_short", {"n": f"{len(text):,}"}) if long else ("share_short_qr", {}))
        elif name not in query and text != params.PARAMS[name].default and not failed:
            notes.append(("share_text_missing", {}))  # not even the page's own URL could carry the text
    if failed:
        notes.append(("share_store_failed", {"error": failed}))
    return reach.origin.link(query), notes


def _dialog_body(common: Mapping[str, str]) -> None:
    link, notes = current_link()
    png = links.qr_png(link, QR_PIXELS)
    left, right = st.columns([1, 1], vertical_alignment="center")
    with left, st.container(key="share_qr"):
        if png is None:
            st.warning(common["stage.share_too_long"])
        else:
            st.image(png, width=QR_PIXELS, caption=None)
    with right:
        st.markdown(common["stage.share_scan"])
        with st.container(key="share_link"):
            st.code(links.readable(link), language=None, wrap_lines=True)
        for key, fields in notes:
            message = common["stage." + key].format(**fields)
            (st.info if key.startswith("share_short") else st.warning)(message)
