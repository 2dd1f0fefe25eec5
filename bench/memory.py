"""Memory quality on LoCoMo (docs/benchmarks.md, docs/memory.md): evidence recall of assembled context and
recall@10 of search, with context-assembly latency. No LLM, no network.

  python bench/memory.py [--data PATH] [--conversations N] [--embedder none|hash-v1] [--out FILE]
  python bench/memory.py --report FILE   # both embedders, all ten conversations, a Markdown table (make bench-memory)

Each conversation is one subject: every turn is one episode (payload `messages` [{role: speaker, content: text,
plus the shared image's caption when the turn has one}], session_id `session_N`, provenance {dia_id}), then the
subject is compiled (500 episodes a run, until nothing is left) and, with an embedder, its memories embedded.
For each question of categories 1-4 that names evidence turns:
- context evidence recall: the share of questions whose context, within 2,000 tokens, holds a line whose source
  episodes include an evidence turn: for the spec-exact §6.8 assembly (`Memory.context`, task = the question) and
  for the query-driven one (`Memory.recall`);
- search recall@10: the share whose top 10 memories come from an evidence turn, for the Statewave text search
  (all terms must match, §6.5), any-term BM25 (over all kinds, and over summaries only: one memory per turn)
  and hybrid (BM25 fused with the embedder's ranking);
- p50/p99 of the two assemblies' wall time and CPU time (the process's, reader threads included), in-process
  on the SQLite store; the machine's load average is printed beside them.
The questions and answers are read only to score; no constant here was set from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from stigmer.engine.memory import EpisodeInput, Memory  # noqa: E402
from stigmer.store.sqlite import SQLiteStore  # noqa: E402
from stigmer.support.embeddings import HashEmbedder  # noqa: E402

TENANT = "bench"
BUDGET = 2000
CATEGORIES = (1, 2, 3, 4)
DEFAULT_DATA = "/work/shared/data/locomo10.json"


def turns(conversation: dict) -> list[tuple[str, dict]]:
    """(session_id, turn) in conversation order."""
    out = []
    n = 1
    while f"session_{n}" in conversation or f"session_{n}_date_time" in conversation:
        for turn in conversation.get(f"session_{n}", []):
            out.append((f"session_{n}", turn))
        n += 1
    return out


def episode(subject: str, session_id: str, turn: dict) -> EpisodeInput:
    content = turn["text"]
    if turn.get("blip_caption"):
        content += f" (shares an image: {turn['blip_caption']})"
    return EpisodeInput(subject, "chat", "message", {"messages": [{"role": turn["speaker"], "content": content}]},
                        provenance={"dia_id": turn["dia_id"]}, session_id=session_id)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def load(memory: Memory, subject: str, conversation: dict) -> dict[str, str]:
    """Episodes in, compiled, embedded: episode id → dia_id."""
    dia = {}
    items = [episode(subject, s, t) for s, t in turns(conversation)]
    for i in range(0, len(items), 100):
        for e in await memory.add_episodes(TENANT, None, items[i:i + 100]):
            dia[e.id] = e.provenance["dia_id"]
    while (await memory.compile(TENANT, None, subject)).memories_created:  # a compile embeds what it made
        pass
    return dia


def hit(episode_ids, dia: dict[str, str], evidence: set[str]) -> bool:
    return any(dia.get(i) in evidence for i in episode_ids)


async def run(data: list[dict], embedder_name: str, store_dir: str, questions: int = 0) -> dict:
    embedder = HashEmbedder() if embedder_name == "hash-v1" else None
    store = SQLiteStore(store_dir)
    await store.open()
    counts = {"questions": 0, "context_spec": 0, "context_recall": 0, "search_all_terms": 0, "search_any_term": 0,
              "search_any_term_turns": 0, "search_hybrid": 0}
    times: dict[str, list[float]] = {"context_spec": [], "context_recall": [], "context_spec_cpu": [],
                                     "context_recall_cpu": []}
    tokens_used: list[int] = []
    started = time.perf_counter()
    try:
        memory = Memory(store, embedder=embedder)
        for sample in data:
            subject = sample["sample_id"]
            dia = await load(memory, subject, sample["conversation"])
            by_id = {m.id: m for m in await memory.memories(TENANT, None, subject, "active")}
            for qa in sample["qa"]:
                if qa.get("category") not in CATEGORIES or not qa.get("evidence"):
                    continue
                if questions and counts["questions"] >= questions:
                    break
                evidence, question = set(qa["evidence"]), qa["question"]
                counts["questions"] += 1
                t0, c0 = time.perf_counter(), time.process_time()
                spec = await memory.context(TENANT, None, subject, question, max_tokens=BUDGET)
                t1, c1 = time.perf_counter(), time.process_time()
                recall = await memory.recall(TENANT, None, subject, question, max_tokens=BUDGET)
                t2, c2 = time.perf_counter(), time.process_time()
                times["context_spec"].append((t1 - t0) * 1000)
                times["context_recall"].append((t2 - t1) * 1000)
                times["context_spec_cpu"].append((c1 - c0) * 1000)  # all the process's threads (the readers too)
                times["context_recall_cpu"].append((c2 - c1) * 1000)
                tokens_used.append(recall.token_estimate)
                spec_sources = list(spec.provenance["episode_ids"])
                for mid in spec.provenance["fact_ids"] + spec.provenance["summary_ids"]:
                    spec_sources += by_id[mid].source_episode_ids
                counts["context_spec"] += hit(spec_sources, dia, evidence)
                counts["context_recall"] += hit([i for x in recall.lines for i in x.episode_ids], dia, evidence)
                finder = memory.finder
                all_terms = await memory.search(TENANT, None, subject, question, limit=10)
                counts["search_all_terms"] += hit([i for m in all_terms for i in m.source_episode_ids], dia, evidence)
                any_term = await finder.records(TENANT, [s for s, _ in (await finder.text_ranking(
                    TENANT, None, subject, question, every=False, top=10))])
                counts["search_any_term"] += hit([i for m in any_term for i in m.source_episode_ids], dia, evidence)
                turns_only = await finder.records(TENANT, [s for s, _ in await finder.text_ranking(
                    TENANT, None, subject, question, "episode_summary", every=False, top=10)])  # one per turn
                counts["search_any_term_turns"] += hit([i for m in turns_only for i in m.source_episode_ids], dia,
                                                       evidence)
                hybrid = await memory.hybrid(TENANT, None, subject, question, limit=10)
                counts["search_hybrid"] += hit([i for m, _ in hybrid for i in m.source_episode_ids], dia, evidence)
    finally:
        await store.close()
    n = counts["questions"]
    return {
        "embedder": embedder_name, "conversations": len(data), "questions": n,
        **{k: round(v / n, 4) for k, v in counts.items() if k != "questions"},
        **{f"{k}_p50_ms": round(statistics.median(v), 3) for k, v in times.items()},
        **{f"{k}_p99_ms": round(percentile(v, 99), 3) for k, v in times.items()},
        "recall_tokens_mean": round(statistics.mean(tokens_used), 1),
        "seconds": round(time.perf_counter() - started, 1), "load_average": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--conversations", type=int, default=0, help="the first N (0: all)")
    parser.add_argument("--embedder", choices=["none", "hash-v1"], default="none")
    parser.add_argument("--questions", type=int, default=0, help="stop after N questions (0: all; a smoke run)")
    parser.add_argument("--report", help="run both embedders and write this Markdown file (the figures table)")
    args = parser.parse_args()
    with open(args.data) as f:
        data = json.load(f)
    if args.conversations:
        data = data[:args.conversations]
    results = []
    for embedder in (["none", "hash-v1"] if args.report else [args.embedder]):
        store_dir = tempfile.mkdtemp(prefix="stigmer-bench-memory-")
        try:
            results.append(asyncio.run(run(data, embedder, store_dir, args.questions)))
            print(json.dumps(results[-1]), flush=True)
        finally:
            shutil.rmtree(store_dir, ignore_errors=True)
    if args.report:
        with open(args.report, "w") as f:
            f.write(report(results))


ROWS = [("context_recall", "evidence recall, query-driven context (`Memory.recall`), 2,000 tokens"),
        ("context_spec", "evidence recall, §6.8 context (`Memory.context`), 2,000 tokens"),
        ("search_all_terms", "search recall@10, Statewave text search (all terms, §6.5)"),
        ("search_any_term", "search recall@10, any-term BM25"),
        ("search_any_term_turns", "search recall@10, any-term BM25 over summaries only (one memory per turn)"),
        ("search_hybrid", "search recall@10, hybrid (RRF with the embedder; = any-term without one)"),
        ("context_recall_p50_ms", "query-driven context p50, ms (wall)"),
        ("context_recall_p99_ms", "query-driven context p99, ms (wall)"),
        ("context_recall_cpu_p50_ms", "query-driven context p50, ms (CPU)"),
        ("context_spec_p50_ms", "§6.8 context p50, ms (wall)"),
        ("context_spec_p99_ms", "§6.8 context p99, ms (wall)"),
        ("recall_tokens_mean", "query-driven context, mean tokens"),
        ("load_average", "machine load average (1 min) at the end, 2 cores"),
        ("seconds", "run time, s")]


def report(results: list[dict]) -> str:
    """The figures table of bench/results/memory.md (the notes below it are kept by hand)."""
    head = "| measure | " + " | ".join(f"embedder `{r['embedder']}`" for r in results) + " |\n"
    head += "|---|" + "---:|" * len(results) + "\n"
    body = "".join(f"| {label} | " + " | ".join(str(r[key]) for r in results) + " |\n" for key, label in ROWS)
    n = results[0]
    return (f"# Memory quality on LoCoMo\n\n`make bench-memory` ({n['conversations']} conversations, "
            f"{n['questions']} questions of categories 1–4 with evidence; no LLM, no network; SQLite store, "
            f"in-process). Method: docs/memory.md \"Memory quality\", bench/memory.py.\n\n{head}{body}")


if __name__ == "__main__":
    main()
