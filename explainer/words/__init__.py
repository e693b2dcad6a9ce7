"""Sentences from results, in the page's language: the one place that picks which text a result calls for.

Every builder is ``build(result, view) -> str`` (Markdown, or a short label): it reads only the
page's texts through the View (``view.t``, ``view.common``) and fills their placeholders with the
result's numbers, shown by the one rule for tokens. Figures draw, pages place; the words are here
and in the text files. No Streamlit.
"""
