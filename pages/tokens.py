"""Tokens: how the text is cut into the pieces the model reads."""
import pandas as pd
import streamlit as st

from explainer import tokens
from explainer.analysis.tokens import token_stats
from explainer.figures.tokens import bytes_per_token_figure, token_chips_html
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header

ctx = page_context("tokens")
t, view = ctx.t, ctx.view
header(view)
stats = token_stats(ctx.trace)

st.subheader(t["chips_title"])
st.html(token_chips_html(stats, view))

cols = st.columns(4)
cols[0].metric(t["n_tokens"], stats.n_tokens)
cols[1].metric(t["chars_per_token"], f"{stats.chars_per_token:.2f}")
cols[2].metric(t["vocab_size"], f"{stats.vocab_size:,}")
cols[3].metric(t["per_gb"], f"{stats.tokens_per_gigabyte / 1e6:,.0f} M", help=t["per_gb_help"])

figure(bytes_per_token_figure(stats, view), "tokens_bytes", stats)
if not view.presenter:
    table = pd.DataFrame(stats.rows())
    table["token"], table["spells"] = table["token"].map(tokens.shown), table["spells"].map(
        lambda s: tokens.shown(s) if s else "")
    st.dataframe(table, hide_index=True, width="stretch")
