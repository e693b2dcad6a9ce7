"""Generation: the model writes one token at a time, each chosen from its own distribution."""
import streamlit as st

from explainer.analysis import generation as gen
from explainer.figures import generation as figs
from explainer.ui.frame.page import page_context
from explainer.ui.frame.widgets import choose, figure, float_slider, header, int_slider

ctx = page_context("generation")
t, model, view = ctx.t, ctx.model, ctx.view
header(view)

mode = choose("decode", t["mode"], ["greedy", "sample"], format_func=lambda m: t["mode_" + m], radio=True,
              horizontal=True)
settings, seed = gen.GenerationSettings(greedy=True), 0
if mode == "sample":
    c = st.columns(4)
    with c[0]:
        temp = float_slider("temp", t["temp"], 0.05, 5.0, 0.05)
    with c[1]:
        top_k = int_slider("top_k", t["top_k"], 0, 200)
    with c[2]:
        top_p = float_slider("top_p", t["top_p"], 0.01, 1.0, 0.01)
    with c[3]:
        seed = int_slider("seed", t["seed"], 0, 999, help=t["seed_help"])
    settings = gen.GenerationSettings(greedy=False, temperature=temp, top_k=top_k or None, top_p=top_p)

# Per-user generation so far; a new model, text or setting starts again from the prompt.
key = (model.name, ctx.trace.text, settings, seed)
run = st.session_state.get("gen_run")
if run is None or run["key"] != key:           # first open: show the first step straight away
    ids, cut = gen.prompt_ids(model, ctx.trace.text, gen.MAX_PROMPT_TOKENS)
    run = st.session_state["gen_run"] = {"key": key, "ids": ids, "cut": cut, "steps": []}
    run["steps"].append(gen.continue_generation(model, ids, [], settings, seed))
if run["cut"]:
    st.info(t["prompt_cut"].format(n=gen.MAX_PROMPT_TOKENS))

b = st.columns([1, 1, 1, 2])
step_clicked = b[0].button(t["step_button"], type="primary", width="stretch")
n_play = b[3].select_slider(t["play_steps"], [5, 10, 20, 40, 64], value=10, key="gen_play_n")
play_clicked = b[1].button(t["play_button"].format(n=n_play), width="stretch")
if b[2].button(t["reset_button"], width="stretch"):
    run["steps"] = []
text_box = st.empty()
wanted = 1 if step_clicked else (n_play if play_clicked else 0)
room = gen.MAX_NEW_TOKENS - len(run["steps"])
if wanted and (room <= 0 or (run["steps"] and run["steps"][-1].is_end)):
    st.warning(t["limit"].format(n=gen.MAX_NEW_TOKENS))
elif wanted:
    bar = st.progress(0.0)
    for i in range(min(wanted, room)):
        step = gen.continue_generation(model, run["ids"], run["steps"], settings, seed)
        run["steps"].append(step)
        bar.progress((i + 1) / min(wanted, room), text=t["progress"].format(i=i + 1, n=min(wanted, room)))
        text_box.html(figs.text_html(gen.SoFar(ctx.trace.text, tuple(run["steps"])), view, step.index))
        if step.is_end:
            break
    bar.empty()

steps = run["steps"]
if not steps:
    text_box.html(figs.text_html(gen.SoFar(ctx.trace.text, ()), view))
    st.info(t["start_hint"])
    st.stop()
picked = st.pills(t["pick_step"], list(range(len(steps))), default=len(steps) - 1,
                  format_func=lambda i: figs.pill_label(steps[i]))
selected = len(steps) - 1 if picked is None else picked
so_far = gen.SoFar(ctx.trace.text, tuple(steps))
text_box.html(figs.text_html(so_far, view, selected))
st.caption(t["full_text"])
st.code(gen.decode(model, run["ids"], steps, whole_characters=True), language=None, wrap_lines=True)
chosen = steps[selected]
figure(figs.step_figure(chosen, view), "gen_step", chosen)
figure(figs.confidence_figure(so_far, view, selected), "gen_confidence", so_far)
