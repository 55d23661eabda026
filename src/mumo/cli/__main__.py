"""Entry point of the ``mumo`` command: a table of subcommands."""

from __future__ import annotations

import sys

import typer

from mumo.cli import (
    data,
    demo,
    evaluate,
    explain,
    fit,
    generate,
    lip2speech,
    lipsync,
    predict,
    probe,
    report,
    serve,
    sync,
    train,
    vqa_eval,
)
from mumo.cli._errors import run_friendly


def build_app() -> typer.Typer:
    app = typer.Typer(
        help="mumo: multimodal models that know what they don't know.",
        no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    )  # fmt: skip
    app.add_typer(train.build_app(), name="train")
    app.command("evaluate")(evaluate.evaluate_cmd)
    app.command("predict")(predict.predict_cmd)
    app.command("generate-questions")(generate.generate_questions_cmd)
    app.command("fit-density")(fit.fit_density_cmd)
    app.command("fit-temperature")(fit.fit_temperature_cmd)
    app.add_typer(data.app, name="data")
    app.command("vqa-eval")(vqa_eval.vqa_eval_cmd)
    app.command("explain")(explain.explain_cmd)
    app.command("probe")(probe.probe_cmd)
    app.command("sync")(sync.sync_cmd)
    app.command("lipsync")(lipsync.lipsync_cmd)
    app.command("lip2speech")(lip2speech.lip2speech_cmd)
    app.command("demo")(demo.demo_cmd)
    app.command("report")(report.report_cmd)
    app.command("serve")(serve.serve_cmd)
    return app


def main(args: list[str] | None = None) -> None:
    """Run ``mumo`` (``args``: the command line after ``mumo``, default ``sys.argv[1:]``) and exit with its status."""
    sys.exit(run_friendly(build_app(), args, prog_name="mumo"))


if __name__ == "__main__":
    main()
