"""The sidebar's model picker: both embedded models, the 中文 default, a user's pick kept, deep links."""
from explainer.ui.state import stored, widget_key
from tests.app.conftest import open_page


def test_both_embedded_models_are_offered_with_a_line_each():
    at = open_page("tokens")
    box = at.sidebar.selectbox(key=widget_key("model_choice"))
    assert box.options[:2] == ["SmolLM2-135M — English (embedded)",
                               "Gemma 3 270M — multilingual, reads Chinese (embedded)"]
    assert box.value == "smollm2-135m" and "English" in at.sidebar.caption[0].value
    assert "model" not in at.query_params                            # nothing chosen: the link says nothing


def test_a_pick_is_kept_across_languages_and_goes_into_the_link():
    at = open_page("tokens", lang="zh")
    box = at.sidebar.selectbox(key=widget_key("model_choice"))
    assert box.value == "gemma-3-270m"                               # 中文 default: the multilingual model
    box.set_value("smollm2-135m").run()                              # the user picks the English model
    assert stored(at.session_state, "model") == "smollm2-135m"
    assert at.query_params["model"] == "smollm2-135m"
    at.sidebar.radio(key=widget_key("lang")).set_value("en").run()
    at.sidebar.radio(key=widget_key("lang")).set_value("zh").run()
    assert at.sidebar.selectbox(key=widget_key("model_choice")).value == "smollm2-135m"   # never switched
    assert not at.exception


def test_a_deep_link_reproduces_the_model():
    at = open_page("tokens", query={"model": "gemma-3-270m"})
    assert at.sidebar.selectbox(key=widget_key("model_choice")).value == "gemma-3-270m"
    assert not at.exception
    assert any("Gemma" in c.value for c in at.sidebar.caption)       # its one line names it
