"""Embeddings: every token starts as a vector; similar tokens get similar vectors."""
import streamlit as st

from explainer.analysis.vocabulary import nearest_neighbours, pair_similarity, prompt_vectors
from explainer.figures import vocabulary as vfig
from explainer.tokens import for_markdown, markdown_text
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import figure, header, token_picker
from explainer.ui.sections import vocab

WINDOW = 40
ctx = page_context("embeddings")
t, model, view = ctx.t, ctx.model, ctx.view
header(view)

# 1. the prompt's own vectors (a window of them for long prompts)
st.subheader(t["vectors_title"])
st.markdown(t["vectors_text"].format(n=ctx.trace.n_tokens, d=model.d_model))
focus = token_picker("token", t["window_pick"], ctx.trace.tokens) if ctx.trace.n_tokens > WINDOW else -1
pv = prompt_vectors(ctx.trace, focus, WINDOW)
if pv.n_tokens > WINDOW:
    st.caption(t["window_note"].format(a=pv.start, b=pv.start + len(pv.ids) - 1, n=pv.n_tokens))
figure(vfig.token_vectors_heatmap(pv, view), "emb_vectors", pv)
labels, emb = vocab.labels(model), vocab.embedding(model)     # after the first chart: a big vocabulary takes a moment

# 2. the map of the whole vocabulary: drawn last (it may need a slow first build)
st.subheader(t["map_title"])
map_box = st.container()

# 3. nearest neighbours of any word
st.subheader(t["neighbours_title"])
st.markdown(t["neighbours_text"])
word_text = vocab.word_input("word", t["word_label"], t["word_help"])
nb = None
if word_text:
    query = vocab.words(model, [word_text])[0]
    nb = nearest_neighbours(emb, labels, query, k=15)
    st.caption(t["pieces"].format(word=markdown_text(query.word),
                                  pieces=" + ".join(for_markdown(p) for p in query.pieces)))
    if query.split:
        st.info(t["split_note"].format(word=markdown_text(query.word), n=len(query.ids)))
    figure(vfig.neighbours_figure(nb, view), "emb_neighbours", nb)
else:
    st.info(t["word_empty"])

# 4. word pairs
st.subheader(t["pairs_title"])
st.markdown(t["pairs_text"])
pairs, bad = vocab.parse_pairs(st.text_area(t["pairs_label"], t["pairs_default"], height=150,
                                               key=f"emb_pairs_text_{view.lang}"))
if bad:
    st.warning(t["pairs_bad"].format(lines=markdown_text(" | ".join(bad))))
if pairs:
    looked = vocab.words(model, [w for pair in pairs for w in pair])
    sims = pair_similarity(emb, list(zip(looked[::2], looked[1::2])))
    figure(vfig.pair_similarity_figure(sims, view), "emb_pairs", sims)
    if sims.any_split:
        st.caption(t["pairs_split_note"])

# 5. analogies: one that works, one that does not
st.subheader(t["analogy_title"])
st.markdown(t["analogy_text"])
cols = st.columns(4)
defaults = [w.strip() for w in t["analogy_words"].split(",")]
names = [c.text_input(t[f"analogy_{k}"], d, key=f"emb_an_{k}_{view.lang}") for c, k, d in zip(cols, "abce", defaults)]
if all(w.strip() for w in names):
    vocab.show_analogy(model, view, names, "emb_analogy")
else:
    st.info(t["analogy_empty"])
st.markdown(t["fails_text"])
vocab.show_analogy(model, view, [w.strip() for w in t["fails_words"].split(",")], "emb_analogy_fails")

# the map, now that everything else is on screen
with map_box:
    vocab.map_section(model, view, pv.ids, nb.ids[:6] if nb else (), word_text)
