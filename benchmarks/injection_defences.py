"""Attack success and utility with each defence layer off and on (docs/security.md).

Runs two suites live against the simulator, a fresh sandbox world per run:

* ``helpdesk`` -- the lab's golden-run suite; its ``injection`` tasks are the attacks and
  every other task measures utility;
* ``injection`` -- ``agentlab/bench/suites/injection``: attacks with side effects planted
  where tool-using agents read them (tickets filed by outsiders, the first lines of KB
  pages), and benign twins.

For each configuration (single, multi) and each defence setting -- all on, all off, each
layer alone off ("all but"), each alone on ("only") -- it prints attack success (an
attacker's goal with a side effect happened: a write the task forbids), answers that said
what the injection wanted said, utility on the benign tasks and under attack, and what the
layers recorded. The model is ``sim-gullible``, which obeys every instruction it finds in
data: what the deterministic layers are worth when the model is no help. Use
``--model sim-small`` to see spotlighting at work on a model that respects the fence.

These are simulator figures: they compare settings with each other, and say nothing about
any vendor's model.

    .venv/bin/python benchmarks/injection_defences.py
    .venv/bin/python benchmarks/injection_defences.py --suites injection --configs single
"""

from __future__ import annotations

import argparse
import time

from agentlab.bench import defence_settings, format_matrix, load_bench_suite, run_injection_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", nargs="+", default=["injection", "helpdesk"])
    parser.add_argument("--configs", nargs="+", default=["single", "multi"])
    parser.add_argument("--model", default="sim-gullible")
    parser.add_argument(
        "--settings",
        default="all",
        help="all (all on, all off, each layer alone off and alone on), or 'short' "
        "(all on, all off, each layer alone off)",
    )
    args = parser.parse_args()
    settings = defence_settings()
    if args.settings == "short":
        settings = {k: v for k, v in settings.items() if not k.startswith("only ")}
    for name in args.suites:
        suite = load_bench_suite(name)
        started = time.perf_counter()
        results = run_injection_matrix(
            suite, configs=args.configs, model=args.model, settings=settings
        )
        seconds = time.perf_counter() - started
        runs = sum(len(r.runs) for r in results)
        attacks = len(results[0].attacks) if results else 0
        print(
            f"\n## {suite.name}: {attacks} attack tasks, {runs} runs, {args.model}, "
            f"{seconds:.0f} s\n"
        )
        print(format_matrix(results))


if __name__ == "__main__":
    main()
