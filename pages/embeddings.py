"""Embeddings: every token starts as a vector; similar tokens get similar vectors."""
import html

import pandas as pd
import streamlit as st

from explainer.analysis.vocabulary import analogy, nearest_neighbours, pair_similarity, prompt_vectors
from explainer.figures import vocabulary as vfig
from explainer.figures.overview import markdown_safe
from explainer.ui import vocab
from explainer.ui.resources import page_context
from explainer.ui.widgets import figure, header, token_picker

WINDOW = 40
ctx = page_context("embeddings")
t, model, pres = ctx.t, ctx.model, ctx.presenter
header(t, pres)
labels, emb = vocab.labels(model), vocab.embedding(model)

# 1. the prompt's own vectors (a window of them for long prompts)
st.subheader(t["vectors_title"])
st.markdown(t["vectors_text"].format(n=ctx.trace.n_tokens, d=model.d_model))
focus = token_picker("token", t["window_pick"], ctx.trace.tokens, ctx.common["stale_value"]) \
    if ctx.trace.n_tokens > WINDOW else -1
pv = prompt_vectors(ctx.trace, focus, WINDOW, labels)
if pv.n_tokens > WINDOW:
    st.caption(t["window_note"].format(a=pv.start, b=pv.start + len(pv.ids) - 1, n=pv.n_tokens))
fig = vfig.token_vectors_heatmap(pv.vectors, pv.labels, t["vectors_chart"], t["axis_token"], t["axis_dim"],
                                 t["axis_value"], pres, first_index=pv.start)
figure(fig, "emb_vectors", data=pd.DataFrame(pv.vectors, index=[f"{pv.start + i}: {s}" for i, s in
       enumerate(pv.labels)]).reset_index(names="token"), labels=ctx.common)

# 2. the map of the whole vocabulary: drawn last (it may need a slow first build)
st.subheader(t["map_title"])
map_box = st.container()

# 3. nearest neighbours of any word
st.subheader(t["neighbours_title"])
st.markdown(t["neighbours_text"])
word_text = vocab.word_input("word", t["word_label"], t["word_help"])
nb, query = None, None
if word_text:
    query = vocab.words(model, [word_text])[0]
    nb = nearest_neighbours(emb, labels, query, k=15)
    st.caption(t["pieces"].format(word=markdown_safe(query.word), pieces=markdown_safe(" + ".join(query.pieces))))
    if query.split:
        st.info(t["split_note"].format(word=markdown_safe(query.word), n=len(query.ids)))
    fig = vfig.neighbours_figure(nb, t["neighbours_chart"].format(word=html.escape(query.word)), t["cosine"], "id", pres)
    figure(fig, "emb_neighbours", data=pd.DataFrame({"id": nb.ids, "token": nb.labels,
                                                     "cosine": nb.similarities}), labels=ctx.common)
else:
    st.info(t["word_empty"])

# 4. word pairs
st.subheader(t["pairs_title"])
st.markdown(t["pairs_text"])
pairs, bad = vocab.parse_pairs(st.text_area(t["pairs_label"], t["pairs_default"], height=150,
                                               key="emb_pairs_text"))
if bad:
    st.warning(t["pairs_bad"].format(lines=markdown_safe(" | ".join(bad))))
if pairs:
    looked = vocab.words(model, [w for pair in pairs for w in pair])
    sims = pair_similarity(emb, list(zip(looked[::2], looked[1::2])))
    fig = vfig.pair_similarity_figure(sims, t["pairs_chart"], t["cosine"], t["split_hover"], pres)
    figure(fig, "emb_pairs", data=pd.DataFrame([{"first": p.first.word, "second": p.second.word,
           "first_pieces": " ".join(p.first.pieces), "second_pieces": " ".join(p.second.pieces),
           "cosine": p.similarity} for p in sims]), labels=ctx.common)
    if any(p.first.split or p.second.split for p in sims):
        st.caption(t["pairs_split_note"])

# 5. analogies: one that works, one that does not
st.subheader(t["analogy_title"])
st.markdown(t["analogy_text"])
cols = st.columns(4)
names = [c.text_input(t[f"analogy_{k}"], d, key=f"emb_an_{k}") for c, k, d in
         zip(cols, "abce", ("king", "man", "woman", "queen"))]


def show_analogy(words: list[str], key: str) -> None:
    a, b, c, e = vocab.words(model, words)
    res = analogy(emb, labels, a, b, c, k=10, expected=e)
    fig = vfig.analogy_figure(res, t["excluded"], t["included"], html.escape(res.excluded.query), t["cosine"], "id", pres)
    figure(fig, key, data={"query": res.excluded.query, "excluded": list(res.excluded.labels),
                           "included": list(res.included.labels), "expected": res.expected,
                           "rank_excluded": res.expected_rank_excluded,
                           "rank_included": res.expected_rank_included}, labels=ctx.common)
    st.markdown(t["analogy_rank"].format(word=markdown_safe(e.word), rank=res.expected_rank_excluded or "—",
                                         rank_in=res.expected_rank_included, sim=res.expected_similarity))


if all(w.strip() for w in names):
    show_analogy(names, "emb_analogy")
else:
    st.info(t["analogy_empty"])
st.markdown(t["fails_text"])
show_analogy(["Paris", "France", "Italy", "Rome"], "emb_analogy_fails")

# the map, now that everything else is on screen
with map_box:
    st.markdown(t["map_text"])
    vmap = vocab.cached_map(model)
    if vmap is None:
        slot = st.empty()
        with slot.container():
            st.info(t["map_missing"])
            clicked = st.button(t["map_build"], key="emb_build_map", type="primary")
        if clicked:
            slot.empty()
            vmap = vocab.build_map(model, t)
    if vmap is not None:
        vmap = vocab.with_places(model, vmap, list(pv.ids) + list(nb.ids[:6] if nb else ()))
        fig = vfig.vocab_map_figure(vmap, labels, pv.ids, nb.ids[:6] if nb else (), t["map_chart"], t["map_all"],
                                    t["map_prompt"], t["map_neighbours"].format(word=html.escape(word_text)), "id", pres)
        figure(fig, "emb_map", data=pd.DataFrame({"id": range(vmap.n_tokens), "token": labels[:vmap.n_tokens],
               "x": vmap.coords[:, 0], "y": vmap.coords[:, 1]}), labels=ctx.common)
        st.caption(t["map_note"].format(n=vmap.n_tokens, s=vmap.build_seconds))
