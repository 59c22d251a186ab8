"""`aigc report`: one self-contained HTML page about a run (curves, snapshots, metrics, machine, config)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  aigc report runs/mnist                      # writes runs/mnist/report.html; works while the run trains
  aigc report runs/gan --out gan-report.html
"""


def register(commands) -> None:
    from aigc.cli.options import add_command

    parser = add_command(commands, "report", "write an HTML report of a run", EXAMPLES)
    parser.add_argument("run_dir", type=Path, help="run directory")
    parser.add_argument("--out", type=Path, help="HTML file to write (default: RUN_DIR/report.html)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from aigc.report import write_report

    print(f"wrote {write_report(args.run_dir, args.out)}")
    return 0
