"""Tokens: how the text is cut into the pieces the model reads."""
import pandas as pd
import streamlit as st

from explainer.analysis.tokens import token_stats
from explainer.figures.tokens import bytes_per_token_figure, token_chips_html
from explainer.ui.resources import page_context
from explainer.ui.widgets import figure, header

ctx = page_context("tokens")
t = ctx.t
header(t, ctx.presenter)
stats = token_stats(ctx.trace)

st.subheader(t["chips_title"])
st.html(token_chips_html(stats, hover=t["chip_hover"]))

cols = st.columns(4)
cols[0].metric(t["n_tokens"], stats.n_tokens)
cols[1].metric(t["chars_per_token"], f"{stats.chars_per_token:.2f}")
cols[2].metric(t["vocab_size"], f"{stats.vocab_size:,}")
cols[3].metric(t["per_gb"], f"{stats.tokens_per_gigabyte / 1e6:,.0f} M", help=t["per_gb_help"])

table = pd.DataFrame([{"index": p.index, "token": p.label, "id": p.token_id, "bytes": p.hex_bytes,
                       "spells": p.group} for p in stats.pieces])
fig = bytes_per_token_figure(stats, t["bytes_title"], t["axis_token"], t["axis_bytes"], ctx.presenter)
figure(fig, "tokens_bytes", data=table, labels=ctx.common)
if not ctx.presenter:
    st.dataframe(table, hide_index=True, width="stretch")
