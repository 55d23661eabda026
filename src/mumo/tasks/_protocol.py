"""What a task package supplies to the CLI, the benchmarks and serving (:class:`Task`), and what some tasks
offer besides (the capability protocols below, checked once with ``isinstance``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class Report(Protocol):
    """What an evaluation returns: a JSON-ready dict and the lines a terminal shows."""

    def to_dict(self) -> dict[str, Any]: ...

    def lines(self) -> list[str]: ...


@runtime_checkable
class Task(Protocol):
    """One task (``vqa``, ``sync``): its config, how it trains, loads and evaluates a run."""

    name: str  # the registry name: ``mumo train NAME``
    schema: type  # the run config dataclass saved as config.yaml
    default_preset: str
    data_key: str  # the config key ``mumo train NAME --data X`` sets (``data.name`` or ``data.root``)
    data_help: str
    help: str  # one line for ``mumo train NAME --help``

    def load_config(self, preset: str | None, overrides: list[str]) -> Any:
        """A run config from a preset and dotted ``key=value`` overrides (ConfigError when invalid)."""
        ...

    def default_run_dir(self, cfg: Any) -> Path: ...

    def train(self, cfg: Any, out: Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
        """Train a run into ``out`` (``cfg=None`` with ``resume``: the saved config); returns its summary."""
        ...

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        """The training summary as lines for a terminal."""
        ...

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        """The trained bare model of a run, in eval mode, on ``device``."""
        ...

    def evaluate(self, run: str | Path, options: Any) -> Report:
        """Every figure of a trained run on a split (``options``: :meth:`evaluation_options`)."""
        ...

    def evaluation_options(self, **options: Any) -> Any:
        """The task's evaluation options from ``mumo evaluate``'s keyword options (ConfigError for options this
        task does not take)."""
        ...


@runtime_checkable
class Explains(Protocol):
    """A task whose runs explain their answers (``mumo explain``)."""

    def explanation_options(self, method: str, **options: Any) -> Any: ...

    def explain_run(self, run: str | Path, **options: Any) -> dict[str, Any]: ...

    def explain_example(self, run: str | Path, image: Path, question: str, method: str, **options: Any) -> dict: ...


@runtime_checkable
class Probes(Protocol):
    """A task whose runs can be probed for shortcuts (``mumo probe``, the Clever Hans probe)."""

    def probe_run(self, run: str | Path, **options: Any) -> dict[str, Any]: ...


@runtime_checkable
class FitsDensity(Protocol):
    """A task that fits a feature density to a run (``mumo fit-density``)."""

    def fit_density(self, run: str | Path, *, images: int, device: str) -> Any: ...


@runtime_checkable
class FitsTemperature(Protocol):
    """A task that fits temperature scaling to a run (``mumo fit-temperature``)."""

    def fit_temperature(self, run: str | Path, *, device: str) -> dict[str, Any]: ...


@runtime_checkable
class ScoresSync(Protocol):
    """A task that scores how well a video's lips and audio belong together (``mumo sync``)."""

    def sync_video(self, run: str | Path, video: Path, audio: Path | None, **options: Any) -> dict[str, Any]: ...


@runtime_checkable
class GeneratesQuestions(Protocol):
    """A task that writes questions about an image (``mumo generate-questions``)."""

    def generate_questions(self, run: str | Path, image: Path, **options: Any) -> dict[str, Any]: ...


@runtime_checkable
class DubsVideo(Protocol):
    """A task that makes a face video or still image speak new audio or text (``mumo lipsync``)."""

    def dub_video(self, run: str | Path, face: Path, out: Path, **options: Any) -> dict[str, Any]: ...


@runtime_checkable
class SpeaksVideo(Protocol):
    """A task that turns a silent face video into speech (``mumo lip2speech``)."""

    def speak_video(self, run: str | Path, video: Path, out: Path, **options: Any) -> dict[str, Any]: ...
