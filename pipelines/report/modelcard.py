"""A model card per registered version: what it was trained on, how well it does (with an interval and the
baselines), what the gate decided, what it relies on, how it was trained, and what it is for. One structure, rendered
as Markdown (the version's description in the registry, and what the service answers at `/model-card`) and as one
self-contained HTML page (no scripts, no links out)."""

import html
from dataclasses import dataclass, field
from typing import Any

from ...models.schema import DataSchema
from ..steps.evaluation import metric_label
from .baseline import NAMES

Table = list[list[str]]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None  # first row: the header


@dataclass(frozen=True)
class ModelCard:
    title: str
    sections: list[Section]

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for section in self.sections:
            lines += [f"## {section.title}", ""]
            for paragraph in section.paragraphs:
                lines += [paragraph, ""]
            if section.table:
                header, *rows = section.table
                lines.append("| " + " | ".join(_cell(value) for value in header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def html(self) -> str:
        """One self-contained page: the Markdown rendered by a real Markdown renderer (CommonMark and tables), raw
        HTML in the text escaped rather than passed through, no scripts and no links out."""
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").render(self.markdown())
        return "\n".join(
            [
                "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>",
                body,
                "</body></html>",
            ]
        )


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;"
    "text-align:left}th{background:#f3f3f3}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}"
)


def _cell(value: Any) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def build_card(
    *,
    model_name: str,
    version: str,
    run_id: str,
    dataset: dict[str, Any],
    schema: DataSchema,
    validation: str,
    scores: dict[str, float],
    interval: Any,
    baselines: Any,
    decision: Any,
    importance: Any,
    training: dict[str, Any],
    warnings: list[str],
    card: Any,
) -> ModelCard:
    """The card of one version from what its run knows (the review's parts may be None when turned off)."""
    kinds: dict[str, int] = {}
    for column in schema.features:
        kinds[column.kind] = kinds.get(column.kind, 0) + 1
    data = Section(
        "Data",
        [
            f"Trained on **{dataset['name']}** ({dataset['source']}), digest `{dataset['digest']}`: "
            f"{dataset['rows']} rows, split {dataset['split']}.",
            f"Task: {schema.task}; target `{schema.target.name}`"
            + (f" with classes {', '.join(schema.classes)}" if schema.classes else "")
            + ". Features: "
            + ", ".join(f"{count} {kind}" for kind, count in kinds.items())
            + (f"; left out (constant or ID-like): {', '.join(schema.ignored)}" if schema.ignored else "")
            + ".",
            f"Validation (Great Expectations): {validation}.",
        ],
    )
    metric_rows: Table = [["Metric (test rows)", "Network", *(_baseline_names(baselines))]]
    for name, value in scores.items():
        row = [metric_label(name, schema.task), f"{value:.4f}"]
        row += [_number(model_scores.get(name)) for model_scores in (baselines.scores.values() if baselines else [])]
        metric_rows.append(row)
    performance = Section(
        "Performance",
        [
            *([f"Primary metric: {interval.describe()}."] if interval is not None else []),
            *([f"Against the baselines: {baselines.verdict}."] if baselines is not None else []),
        ],
        metric_rows,
    )
    calibrated = _calibration(scores)
    gate = Section("Promotion decision", [decision_sentence(decision, schema.task)])
    sections = [data, performance, *([calibrated] if calibrated else []), gate]
    if importance is not None and len(importance):
        top = importance.head(15)
        sections.append(
            Section(
                "What it relies on (permutation importance)",
                ["Fall in the primary metric on the test rows when one feature is shuffled; the top 15."],
                [["Feature", "Importance", "Spread"]]
                + [[row.feature, f"{row.importance:.4f}", f"{row.std:.4f}"] for row in top.itertuples()],
            )
        )
    sections.append(Section("Training", [], [["Setting", "Value"]] + [[k, str(v)] for k, v in training.items()]))
    if warnings:
        sections.append(Section("Warnings", [f"- {warning}" for warning in warnings]))
    sections.append(
        Section(
            "Intended use and limitations",
            [
                f"Intended use: {card.intended_use or 'not stated (set card.intended_use in the config)'}",
                f"Limitations: {card.limitations or 'not stated (set card.limitations in the config)'}",
                *([f"Owner: {card.owner}"] if card.owner else []),
                f"MLflow run `{run_id}`.",
            ],
        )
    )
    return ModelCard(f"Model card: {model_name} v{version}", sections)


def decision_sentence(decision: Any, task: str) -> str:
    """What the gate decided and why, in one sentence."""
    metric = metric_label(decision.metric, task)
    if decision.promoted and decision.champion_version is None:
        return (
            f"**Promoted to champion**: {decision.reason.rstrip('.')} "
            f"({metric} {decision.candidate_score:.4f} on the test rows)."
        )
    verdict = "Promoted to champion" if decision.promoted else "Not promoted"
    return f"**{verdict}** on {metric}: {decision.reason.rstrip('.')}."


def _calibration(scores: dict[str, float]) -> Section | None:
    """How far the probabilities can be taken at their word: log loss and ECE on the test rows, before and after the
    temperature fitted on the validation rows."""
    if "ece" not in scores:
        return None
    rows: Table = [["On the test rows", "Before calibration", "After (as served)"]]
    for name, label in (("log_loss", "log loss"), ("ece", "expected calibration error")):
        rows.append([label, _number(scores.get(f"{name}_uncalibrated", scores[name])), _number(scores[name])])
    if "ece_uncalibrated" in scores:
        said = "Class probabilities are calibrated on the validation rows (temperature scaling), inside the model."
    else:
        said = "Class probabilities are not calibrated (network.calibration is none)."
    return Section("Calibration", [said], rows)


def _baseline_names(baselines: Any) -> list[str]:
    if baselines is None:
        return []
    return [NAMES.get(name, name) for name in baselines.scores]
