"""Where is the answer decided? page glue: the pair to patch (a ready pair or typed), the four maps
computed behind the page (a background job with a progress line: one computation per pair for the
whole room), a bad pair worded in the page's language, and the cell to run again (clicked on a map
or picked).

Numbers come from ``explainer.analysis.patching``; words from ``text/<lang>/patching.toml``; URL
values (``clean``, ``corrupted``, ``site``, ``cell``) go through ``explainer.ui.frame.state``.
"""
from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from explainer import tokens
from explainer.analysis.patching import (SITES, PatchedPrediction, PatchingError, PatchingResult, activation_patching,
                                        check_pair, pair_prediction)
from explainer.analysis.patching_pairs import ready_pairs
from explainer.budget import TooLarge
from explainer.models import LoadedModel
from explainer.ui.frame import binding, params, state
from explainer.ui.frame.background import behind, let_go
from explainer.view import View
from explainer.words.patching import pair_problem

CUSTOM = -1
SLOT = "patching.maps"        # the maps' background job (explainer.ui.frame.background)


def pair_choice(model: LoadedModel, view: View) -> tuple[str, str]:
    """The clean and corrupted prompts: a ready pair for this language and model, or typed ("" in
    the URL means the first ready pair)."""
    t, pairs = view.t, ready_pairs(view.lang, model.name)
    clean = state.get("clean") or (pairs[0].clean if pairs else "")
    corrupted = state.get("corrupted") or (pairs[0].corrupted if pairs else "")
    found = [i for i, p in enumerate(pairs) if (p.clean, p.corrupted) == (clean, corrupted)]
    st.session_state["patching_pair"] = found[0] if found else CUSTOM     # shows what the boxes hold

    def picked() -> None:
        i = st.session_state["patching_pair"]
        if i != CUSTOM:
            state.push("clean", pairs[i].clean)
            state.push("corrupted", pairs[i].corrupted)

    cols = st.columns([2, 3, 3])
    cols[0].selectbox(t["pairs_label"], [*range(len(pairs)), CUSTOM], key="patching_pair", on_change=picked,
                      help=t["pairs_help"], format_func=lambda i: t["pair_custom"] if i == CUSTOM else
                      t["pair_option"].format(clean=pairs[i].clean, corrupted=pairs[i].corrupted))
    scope = (model.name, view.lang)
    clean = cols[1].text_input(t["clean_label"], key=binding.bind("clean", clean, scope), help=t["clean_help"],
                               max_chars=params.MAX_PAIR_CHARS)
    corrupted = cols[2].text_input(t["corrupted_label"], key=binding.bind("corrupted", corrupted, scope),
                                   help=t["corrupted_help"], max_chars=params.MAX_PAIR_CHARS)
    first = pairs[0] if pairs else None
    state.put("clean", "" if first and (clean, corrupted) == (first.clean, first.corrupted) else clean)
    state.put("corrupted", "" if first and (clean, corrupted) == (first.clean, first.corrupted) else corrupted)
    return clean, corrupted


def patching_maps(model: LoadedModel, clean: str, corrupted: str,
                  view: View) -> tuple[dict[str, PatchingResult] | None, PatchedPrediction | None]:
    """Every site's map of the pair, computed behind the page (a background job: one computation per
    pair for the whole room, let go when the pair changes or the page is left), None until it is
    ready; and the two runs' next-token distributions, at once (two forward passes, before the job
    takes the model). Both None when the pair cannot be patched (worded on the page)."""
    t = view.t
    try:
        clean_ids, _ = check_pair(model, clean, corrupted)    # at once: nothing is computed for a bad pair
        pair = pair_prediction(model, clean, corrupted)
    except (PatchingError, TypeError, TooLarge) as err:
        let_go(SLOT)
        _explain(err, view)
        return None, None
    key = ("patching", model.name, str(model.device), clean, corrupted)
    label = t["running"].format(cells=model.n_layers * (3 * len(clean_ids) + model.n_heads))
    status = behind(SLOT, key, lambda progress: activation_patching(model, clean, corrupted, "all", progress=progress),
                    label, view.common)
    if status.state == "failed":
        _explain(status.error, view)
    return status.result, pair


def _explain(err: BaseException | None, view: View) -> None:
    """Why the pair gives no maps, in the page's language."""
    if isinstance(err, PatchingError):
        st.warning(pair_problem(err, view))
    elif isinstance(err, TooLarge):
        st.warning(view.common["too_large"].format(error=err))
    elif isinstance(err, (ValueError, TypeError)):           # an answer typed in a link, a bad site
        st.warning(view.t["error_other"].format(error=tokens.markdown_text(str(err))))
    else:
        st.warning(view.common["jobs_failed"].format(error=tokens.markdown_text(str(err))))


def picked_cell(results: dict[str, PatchingResult], view: View) -> tuple[str, int, int]:
    """The cell to run again: from a click or the pickers (URL ``site`` and ``cell`` = "layer.index");
    at first the strongest cell of the residual stream."""
    t = view.t
    site = state.get("site") if state.get("site") in results else SITES[0]
    r = results[site]
    n, width = r.scores.shape
    found, _ = params.heads_from_url(state.get("cell"), n, width)
    layer, index = min(found) if found else r.strongest(1)[0]
    cols = st.columns(3)
    site = cols[0].selectbox(t["pick_site"], list(results), key=binding.bind("site", site),
                             format_func=lambda s: t["site_" + s])
    r = results[site]
    n, width = r.scores.shape
    layer = cols[1].selectbox(t["pick_layer"], range(n), index=min(layer, n - 1), key=f"patching_layer_{site}")
    index = cols[2].selectbox(t["pick_position" if r.by_position else "pick_head"], range(width),
                              index=min(index, width - 1), key=f"patching_index_{site}",
                              format_func=lambda i: f"{i}: {tokens.shown(r.tokens[i])}" if r.by_position else str(i))
    state.put("site", site)
    state.put("cell", f"{layer}.{index}")
    return site, layer, index


def clicked(points: list[Any], site: str) -> None:
    """A click on a map's cell: pick it and draw the page again."""
    for point in points:
        if isinstance(point, Mapping) and "x" in point and "y" in point:
            state.push("site", site)
            state.put("cell", f"{int(point['y'])}.{int(point['x'])}")
            for name in SITES:
                st.session_state.pop(f"patching_layer_{name}", None)
                st.session_state.pop(f"patching_index_{name}", None)
            st.rerun()
