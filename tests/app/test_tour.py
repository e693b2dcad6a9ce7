"""The guided tour: steps chosen from this prompt's numbers, with next / back that set the view."""
import pytest

import explainer
from explainer.analysis.attention import cached_head_stats, most_previous_token_head
from explainer.analysis.residual import cached_lens_readout
from explainer.analysis.attribution import direct_logit_attribution, top_components
from explainer.analysis.tour import STAGES, plan_tour
from explainer import registry
from explainer.ui.stage.tour import tour_steps
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.params import heads_to_url
from explainer.ui.frame.state import stored
from tests.app.conftest import open_page

JOURNEY = [p.slug for p in registry.PAGES if p.stage]           # the pages the tour visits, in order


@pytest.mark.parametrize("name", [None, "random-gpt2"])
def test_plan_follows_the_journey_and_points_at_real_features(name):
    model = explainer.load_model(name)
    trace = explainer.trace(model, "The capital of France is Paris. The capital of Germany is", 256)
    stops = plan_tour(model, trace)                                  # numbers only: stages, layers, heads
    stages = [s.stage for s in stops]
    assert sorted(set(stages), key=stages.index) == list(STAGES)     # in the journey's order
    assert all(isinstance(s.value, (float, type(None))) for s in stops)
    steps = tour_steps(model, trace)                                 # the ui: pages, URL values, narration
    assert [s.page for s in steps] == [registry.page_of_stage(s.stage).slug for s in stops]
    pages = [s.page for s in steps]
    assert sorted(set(pages), key=pages.index) == JOURNEY
    attention = next(s for s in steps if s.key == "attention_previous")
    assert (attention.view["layer"], attention.view["head"]) == most_previous_token_head(cached_head_stats(trace))
    assert any(s.key == "attention_induction" for s in steps)       # "The capital of" repeats
    layers = next(s for s in steps if s.page == "layers")
    assert layers.view["layer"] == cached_lens_readout(model, trace, trace.n_tokens - 1).first_layers[-1]
    assert 0 <= layers.view["layer"] <= model.n_layers
    why = next(s for s in steps if s.page == "why")                  # then where is it decided? (a plain stop)
    assert steps[-1].page == "patching" and steps[-1].view == {} and steps[-1].narration_key == "tour"
    top = top_components(direct_logit_attribution(model, trace), 3, "up", kinds=("head",))
    assert why.page == "why" and why.view["off"] == heads_to_url({(c.layer, c.head) for c in top})
    assert (why.facts["layer"], why.facts["head"]) == (top[0].layer, top[0].head)


def _click(at, key: str, page: str):
    """Click a tour button, then follow its st.switch_page (AppTest does not follow it itself)."""
    at.button(key=key).click().run()
    return at.switch_page(f"pages/{page}.py").run()


def test_tour_walks_forward_and_back_setting_the_view():
    at = open_page("overview", tour=0)
    assert not at.exception
    assert any("1/" in m.value for m in at.markdown)
    for step, page in enumerate(["tokens", "embeddings", "position", "attention"], start=1):
        _click(at, "tour_next", page)
        assert not at.exception, at.exception
        assert stored(at.session_state, "tour") == step
        assert any(f"{step + 1}/" in m.value for m in at.markdown)
    assert at.slider(key=widget_key("layer")).value == stored(at.session_state, "layer")
    assert at.slider(key=widget_key("head")).value == stored(at.session_state, "head")
    _click(at, "tour_back", "position")
    assert not at.exception and stored(at.session_state, "tour") == 3
    at.button(key="tour_end").click().run()
    assert stored(at.session_state, "tour") == -1
    assert not [m for m in at.markdown if "Tour " in m.value]


def test_tour_in_chinese():
    at = open_page("overview", tour=0, lang="zh")
    assert not at.exception
    assert any("导览 1/" in m.value for m in at.markdown)
