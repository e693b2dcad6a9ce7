"""Pure analyses: a Trace (or a model's weights) in, small frozen result objects out."""
