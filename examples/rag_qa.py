"""Answer a question from your documents: retrieve, then generate with citations.

    edge-agent ingest docs/ --index /tmp/my-index
    python examples/rag_qa.py "How do I descale the machine?" --index /tmp/my-index
    python examples/rag_qa.py "..." --index /tmp/my-index --model smollm2 --mode hybrid

The retrieved chunks go into the prompt numbered [1]..[k]; the model is asked to cite
them, and the sources are printed after the answer so every [n] can be checked. The
default model is the built-in `tiny` (random weights: it runs offline anywhere but its
answer is noise); use `--model smollm2` or the default LFM2 for real answers.
"""

from __future__ import annotations

import argparse
import sys

from agent import SamplingParams, TextChunk, UserError, load_model
from agent.retriever import SEARCH_MODES, SearchHit, open_index

MAX_CONTEXT_CHARS = 1500


def build_messages(question: str, hits: list[SearchHit]) -> list[dict]:
    sources = "\n\n".join(
        f"[{n}] ({hit.path}:{hit.start}-{hit.end})\n{hit.text.strip()[:MAX_CONTEXT_CHARS]}"
        for n, hit in enumerate(hits, start=1)
    )
    system = (
        "Answer the question using only the numbered sources. Cite every claim with the "
        "number of its source in brackets, like [1]. If the sources do not contain the "
        "answer, say that you do not know."
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--index", default=None, help="index directory (default: user data dir)")
    parser.add_argument("--mode", choices=SEARCH_MODES, default="bm25")
    parser.add_argument("-k", type=int, default=4, help="chunks to retrieve")
    parser.add_argument("--model", default="tiny", help="model spec (default: tiny, offline)")
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args(argv)
    try:
        with open_index(args.index, args.mode) as index:
            hits = index.search(args.question, args.k)
        if not hits:
            print("No passage in the index matches the question.", file=sys.stderr)
            return 1
        model = load_model(args.model)
        messages = build_messages(args.question, hits)
        for item in model.stream(
            messages, max_tokens=args.max_tokens, sampling=SamplingParams.greedy()
        ):
            if isinstance(item, TextChunk):
                sys.stdout.write(item.text)
                sys.stdout.flush()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n\nSources:")
    for n, hit in enumerate(hits, start=1):
        print(f"[{n}] {hit.path}:{hit.start}-{hit.end} (score {hit.score:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
