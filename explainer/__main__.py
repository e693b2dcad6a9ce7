"""Command line: ``python -m explainer predict|trace|bench ...``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explainer", description="LLM Explainer from the shell.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="the top-K next tokens with their probabilities")
    p.add_argument("text")
    p.add_argument("--model", default=None, help="hub id, folder, 'random-gpt2' (default: embedded SmolLM2)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--json", action="store_true")
    t = sub.add_parser("trace", help="the tokens and the shape of every captured stage")
    t.add_argument("text")
    t.add_argument("--model", default=None)
    t.add_argument("--max-tokens", type=int, default=1024)
    t.add_argument("--json", action="store_true")
    t.add_argument("--save", default=None, help="also write the trace to this .npz file")
    b = sub.add_parser("bench", help="trace() and the app against a plain forward pass")
    b.add_argument("--quick", action="store_true", help="fewer repeats, skip the slow sections")
    b.add_argument("--sections", default="", help="comma-separated section numbers, e.g. 1,2,7 (default all; "
                                                  "1,2,7,10 with --device cuda)")
    b.add_argument("--out", default="", help="where to write the Markdown table (default BENCHMARK.md; "
                                             "BENCHMARK_CUDA.md with --device cuda)")
    b.add_argument("--device", default="auto")
    from explainer.serving.cluster import add_commands
    add_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "cluster":                        # no model here: start at once
        from explainer.serving.cluster import run
        return run(args)

    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    from explainer.models import ModelLoadError
    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "trace":
            return _trace(args)
        from explainer.bench import run_benchmark
        return run_benchmark(args)
    except (ModelLoadError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def _predict(args: argparse.Namespace) -> int:
    import explainer
    from explainer.analysis.prediction import next_token_distribution

    model = explainer.load_model(args.model, progress=_progress)
    trace = explainer.trace(model, args.text)
    dist = next_token_distribution(trace.next_token_logits, show=max(1, args.top))
    rows = [{"token": model.tokenizer.decode([i]), "id": i, "probability": p}
            for i, p in zip(dist.top_ids, dist.top_probs)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            print(f"{row['probability']:8.4f}  {row['token']!r}")
    return 0


def _trace(args: argparse.Namespace) -> int:
    import explainer

    model = explainer.load_model(args.model, progress=_progress)
    tr = explainer.trace(model, args.text, max_tokens=args.max_tokens)
    shapes = {
        "token_ids": list(tr.token_ids.shape), "embeddings": list(tr.embeddings.shape),
        "positions": None if tr.positions is None else list(tr.positions.shape),
        "residual": list(tr.residual.shape), "attentions": [tr.n_layers, tr.n_heads, tr.n_tokens, tr.n_tokens],
        "attn_out": list(tr.attn_out.shape), "mlp_out": list(tr.mlp_out.shape),
        "mlp_activations": list(tr.mlp_activations.shape), "logits": list(tr.logits.shape),
    }
    info = {"model": model.name, "tokens": list(tr.tokens), "token_ids": tr.token_ids.tolist(),
            "truncated": tr.truncated, "precision": tr.precision, "shapes": shapes}
    if args.save:
        tr.save(args.save)
        info["saved"] = args.save
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
    else:
        print(f"model: {model.name}   tokens: {tr.n_tokens}   truncated: {tr.truncated}")
        print("tokens:", " | ".join(tr.tokens))
        for name, shape in shapes.items():
            print(f"  {name:16s} {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
