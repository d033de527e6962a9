"""The model registry: register versions, gate the champion alias on held-out performance, move it by hand."""

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from requests.exceptions import RequestException

from ...core.errors import (
    ChampionNotComparableError,
    ModelNotFoundError,
    NeuroflowError,
    PromotionError,
    PromotionUndecidedError,
    RegistryUnavailableError,
)
from ...core.mlflowhttp import failing_fast
from ...core.store import champion_version, digest_tags, logged_model_id
from ...core.store import reason as short_reason
from ..report.advice import PairedGain
from ..steps.evaluation import PRIMARY_METRICS, PrimaryMetric

log = logging.getLogger(__name__)

HISTORY_TAG = "neuroflow.alias_history"
HISTORY_LIMIT = 40
LOCK_TAG = "neuroflow.lock"
STATUS_TAG = "neuroflow.promotion"
REASON_TAG = "neuroflow.promotion_reason"
UNDECIDED = "undecided"
# Two models with the same ranking of the test rows can differ in the last bits of a metric; that is a tie, not a win.
TIE_TOLERANCE = 1e-9
# A lock older than this is taken to belong to a run that died while holding it.
LOCK_STALE_SECONDS = 600.0


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate took the alias, why, and the scores compared on the same test rows."""

    promoted: bool
    metric: str
    candidate_version: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str
    smoke_problem: str | None = None  # why the candidate failed its smoke test, when it did
    paired: PairedGain | None = None  # the gain over the champion with its paired interval, when it was judged so
    compared: str | None = None  # the test rows the two were compared on, when it is worth saying

    @property
    def status(self) -> str:
        """The verdict as recorded on the run and the version: "promoted" or "not promoted"."""
        return "promoted" if self.promoted else "not promoted"

    @property
    def champion_after(self) -> str | None:
        """The version holding the alias once the decision is applied."""
        return self.candidate_version if self.promoted else self.champion_version


@dataclass(frozen=True)
class ChampionComparison:
    """The champion scored on the candidate's test rows, and the candidate's paired gain over it on those rows."""

    score: float
    paired: PairedGain | None = None
    candidate_score: float | None = None  # the candidate's, on the rows compared (when not all the test rows)
    compared: str | None = None  # which test rows were compared, in words


def register_version(
    client: MlflowClient,
    name: str,
    model_uri: str,
    run_id: str,
    file_digests: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Register a logged model as a new version of `name` (with `tags`); returns the version number. The version is
    born with the SHA-256 of its files (the safe loader checks them) and an "undecided" verdict that the gate then
    replaces, so no version ever exists without a decision tag, whatever fails next."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="Trained and registered by neuroflow.")
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":  # else a concurrent run created it first: fine
                raise
    model_id = logged_model_id(model_uri)
    tags = (
        (tags or {})
        | digest_tags(file_digests or {})
        | {
            STATUS_TAG: UNDECIDED,
            REASON_TAG: "registered; the promotion gate has not decided yet",
        }
    )
    version = client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id, tags=tags)
    log.info("registered %s version %s", name, version.version)
    return str(version.version)


def current_champion(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version holding the alias, or None when there is none (or no such model yet). A registry that fails to
    answer raises RegistryUnavailableError: "could not read" is never taken for "no champion"."""
    try:
        return champion_version(client, name, alias)
    except ModelNotFoundError:
        return None


def decide_promotion(
    metric: PrimaryMetric,
    candidate_version: str,
    candidate_score: float,
    champion_version: str | None,
    champion_score: float | None,
    min_improvement: float,
    champion_problem: str | None = None,
    paired: PairedGain | None = None,
) -> PromotionDecision:
    """The gate: the first version wins; later ones must beat the champion by more than `min_improvement` and, with
    `paired` (the paired bootstrap of the gain on the same rows), by more than noise: its lower quantile above zero."""
    if champion_version is None:
        return PromotionDecision(
            True,
            metric.name,
            candidate_version,
            candidate_score,
            None,
            None,
            "first version: no champion yet",
        )
    if champion_score is None:
        return PromotionDecision(
            False,
            metric.name,
            candidate_version,
            candidate_score,
            champion_version,
            None,
            f"champion v{champion_version} could not be scored on this data"
            + (f" ({champion_problem})" if champion_problem else "")
            + f"; promote by hand with `neuroflow promote {candidate_version}` if that is intended",
        )
    gain = metric.improvement(candidate_score, champion_score)
    better = gain > TIE_TOLERANCE and gain >= min_improvement
    promoted = better and (paired is None or paired.sure)
    scores = f"{metric.name} {candidate_score:.4f} vs champion v{champion_version} {champion_score:.4f}"
    if paired is None:
        comparison = f"{scores} (improvement {gain:+.4f}, required > {min_improvement:g})"
        reason = ("beats the champion: " if promoted else "does not beat the champion: ") + comparison
    elif promoted:
        reason = f"beats the champion: v{candidate_version} gains {paired.describe()}; {scores}"
    elif better:
        reason = (
            f"not enough evidence: v{candidate_version} gains {paired.describe()}, which does not rule out no gain; "
            f"champion stays v{champion_version} ({scores})"
        )
    else:
        required = f", required > {min_improvement:g}" if min_improvement else ""
        reason = f"does not beat the champion: v{candidate_version} gains {paired.describe()}{required}; {scores}"
    return PromotionDecision(
        promoted,
        metric.name,
        candidate_version,
        candidate_score,
        champion_version,
        champion_score,
        reason,
        paired=paired,
    )


def failed_smoke_test(
    metric: PrimaryMetric, candidate_version: str, candidate_score: float, champion_version: str | None, problem: str
) -> PromotionDecision:
    """The decision for a candidate that did not load, or did not answer, as the service would serve it."""
    return PromotionDecision(
        False,
        metric.name,
        candidate_version,
        candidate_score,
        champion_version,
        None,
        f"failed the smoke test before promotion: {problem}",
        smoke_problem=problem,
    )


def lock_name(name: str, alias: str) -> str:
    """The registered model whose existence means "someone is moving this alias"."""
    return f"{name}.lock-{alias}"


@contextmanager
def alias_lock(
    client: MlflowClient,
    name: str,
    alias: str,
    timeout: float = 900.0,
    stale_after: float = LOCK_STALE_SECONDS,
    poll: float = 0.5,
) -> Iterator[None]:
    """Hold the alias of `name` for one read-decide-move, so concurrent runs take turns.

    The registry has no compare-and-set, but creating a registered model is atomic in every MLflow store (its name is
    a primary key), so the lock is a short-lived registered model: whoever creates it holds it, and deletes it after.
    """
    lock = lock_name(name, alias)
    holder = f"{socket.gethostname()} pid {os.getpid()} at {datetime.now(UTC).isoformat(timespec='seconds')}"
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            client.create_registered_model(lock, tags={LOCK_TAG: "true"}, description=f"held by {holder}")
            break
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        if not waited:
            log.info("another run is moving %s@%s; waiting for its lock", name, alias)
            waited = True
        _break_if_stale(client, lock, stale_after)
        if time.monotonic() > deadline:
            raise PromotionError(
                f"gave up after {timeout:.0f} s waiting for the lock on {name}@{alias}; if no other training is "
                f"running, delete the registered model {lock!r} in the MLflow UI and try again"
            )
        time.sleep(poll)
    failed = True
    try:
        yield
        failed = False
    finally:
        with failing_fast() if failed else contextlib.nullcontext():  # after a fault, do not wait on the store again
            try:
                client.delete_registered_model(lock)
            except MlflowException as error:
                log.warning("could not release the lock %s (%s); it expires after %.0f s", lock, error, stale_after)


def _break_if_stale(client: MlflowClient, lock: str, stale_after: float) -> None:
    """Delete a lock left behind by a run that died while holding it."""
    try:
        held = client.get_registered_model(lock)
    except MlflowException:
        return  # released meanwhile
    age = time.time() - held.creation_timestamp / 1000
    if age > stale_after:
        log.warning("breaking the lock %s: %s, %.0f s ago", lock, held.description, age)
        with contextlib.suppress(MlflowException):  # someone else broke or released it first
            client.delete_registered_model(lock)


def promote_if_better(
    client: MlflowClient,
    name: str,
    alias: str,
    metric: PrimaryMetric,
    candidate_version: str,
    candidate_score: float,
    min_improvement: float,
    score_champion: Callable[[str], "float | ChampionComparison"],
    smoke_test: Callable[[], str | None] | None = None,
) -> PromotionDecision:
    """Score the champion (`score_champion(version)`) on the candidate's test rows; move the alias if it loses.

    First the candidate must pass `smoke_test` (None, or why it failed): one that fails is never promoted. The whole
    read-score-move holds the alias lock: two runs finishing together are judged one after the other, the second
    against the first's result. If the registry fails on the way, nothing is decided: the alias stays where it is,
    the candidate is tagged "undecided" with the reason, and PromotionUndecidedError says how to settle it.
    """
    moved = False
    try:
        smoke_problem = smoke_test() if smoke_test is not None else None
        with alias_lock(client, name, alias):
            champion = current_champion(client, name, alias)
            if smoke_problem is not None:
                decision = failed_smoke_test(metric, candidate_version, candidate_score, champion, smoke_problem)
            else:
                decision = judge(metric, candidate_version, candidate_score, champion, min_improvement, score_champion)
            moved = move_alias_if_won(client, name, alias, decision)
            record_decision(client, name, alias, decision)
    except (RegistryUnavailableError, PromotionError, MlflowException, OSError, RequestException) as error:
        raise undecided(client, name, alias, candidate_version, error, moved) from None
    return decision


def judge(
    metric: PrimaryMetric,
    candidate_version: str,
    candidate_score: float,
    champion: str | None,
    min_improvement: float,
    score_champion: Callable[[str], "float | ChampionComparison"],
) -> PromotionDecision:
    """Score the champion on the candidate's test rows (if there is one) and decide. `score_champion` gives the
    champion's score, or a ChampionComparison that also holds the paired gain."""
    champion_score, paired, problem = None, None, None
    if champion:
        try:
            scored = score_champion(champion)
        except ChampionNotComparableError as error:
            problem = str(error)
        else:
            compared = None
            if isinstance(scored, ChampionComparison):
                champion_score, paired, compared = scored.score, scored.paired, scored.compared
                if scored.candidate_score is not None:
                    candidate_score = scored.candidate_score
            else:
                champion_score = float(scored)
            decision = decide_promotion(
                metric, candidate_version, candidate_score, champion, champion_score, min_improvement, None, paired
            )
            if compared:
                return replace(decision, reason=f"{decision.reason} ({compared})", compared=compared)
            return decision
    return decide_promotion(
        metric, candidate_version, candidate_score, champion, champion_score, min_improvement, problem, paired
    )


def undecided(
    client: MlflowClient, name: str, alias: str, version: str, error: BaseException, moved: bool
) -> PromotionUndecidedError:
    """Record (as far as the registry still answers) that the gate could not decide, and the error that says so."""
    cause = error if isinstance(error, NeuroflowError) else short_reason(error)
    if moved:
        return PromotionUndecidedError(
            f"{name} v{version} won the promotion gate and the {alias!r} alias was moved to it, but recording the "
            f"decision then failed ({cause}). Check it with `neuroflow history` once the registry answers."
        )
    why = f"the registry failed before the gate could decide: {cause}"
    with failing_fast(), contextlib.suppress(Exception):
        client.set_model_version_tag(name, version, STATUS_TAG, UNDECIDED)
        client.set_model_version_tag(name, version, REASON_TAG, why[:5000])
    return PromotionUndecidedError(
        f"{name} v{version} was registered, but the promotion gate could not decide: {cause}. The {alias!r} alias "
        f"did not move, and v{version} is tagged {STATUS_TAG}={UNDECIDED}. Once the registry answers again, rerun "
        f"the training to let the gate decide, or make v{version} champion by hand with `neuroflow promote {version}`."
    )


def apply_decision(client: MlflowClient, name: str, alias: str, decision: PromotionDecision) -> None:
    """Move the alias if the candidate won, then record the decision on the version (and the move in the history)."""
    move_alias_if_won(client, name, alias, decision)
    record_decision(client, name, alias, decision)


def move_alias_if_won(client: MlflowClient, name: str, alias: str, decision: PromotionDecision) -> bool:
    """Point the alias at the candidate if it won; whether it moved (so a later failure is not called undecided)."""
    if decision.promoted:
        client.set_registered_model_alias(name, alias, decision.candidate_version)
    return decision.promoted


def record_decision(client: MlflowClient, name: str, alias: str, decision: PromotionDecision) -> None:
    """The decision on the candidate version (tags, description) and, if it won, the move in the alias history."""
    version = decision.candidate_version
    tags = {
        STATUS_TAG: decision.status,
        REASON_TAG: decision.reason,
        f"neuroflow.{decision.metric}": f"{decision.candidate_score:.6f}",
        "neuroflow.champion_version_at_decision": decision.champion_version or "none",
        f"neuroflow.champion_{decision.metric}": (
            f"{decision.champion_score:.6f}" if decision.champion_score is not None else "none"
        ),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value[:5000])
    verdict = "Promoted to champion" if decision.promoted else "Not promoted"
    client.update_model_version(name, version, description=f"{verdict}: {decision.reason}")
    if decision.promoted:
        record_move(client, name, alias, version, decision.champion_version, action="auto", reason=decision.reason)
    log.info("promotion of %s v%s: %s", name, version, decision.reason)


def set_alias(client: MlflowClient, name: str, alias: str, version: str, action: str, reason: str) -> None:
    """Point the alias at a version and append the move to the model's alias history (hold `alias_lock`)."""
    previous = current_champion(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    record_move(client, name, alias, version, previous, action, reason)


def record_move(
    client: MlflowClient, name: str, alias: str, version: str, previous: str | None, action: str, reason: str
) -> None:
    """Append one move of the alias to the model's alias history."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    entry = {
        "alias": alias,
        "version": str(version),
        "previous": previous,
        "action": action,
        "reason": reason,
        "at": at,
    }
    history = [*alias_history(client, name), entry][-HISTORY_LIMIT:]
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    client.update_registered_model(name, description=history_markdown(name, history))
    mark_moved_versions(client, name, alias, str(version), previous, action, at)


def history_markdown(name: str, history: list[dict[str, Any]]) -> str:
    """The alias history as the registered model's description: a table, newest move first."""
    lines = [
        f"**{name}**: every move of its aliases, newest first (also in the tag `{HISTORY_TAG}`).",
        "",
        "| When (UTC) | Alias | Version | Before | How | Why |",
        "|---|---|---|---|---|---|",
    ]
    for entry in reversed(history):
        why = str(entry.get("reason", "")).replace("|", "/").replace("\n", " ")[:200]
        before = f"v{entry['previous']}" if entry.get("previous") else "none"
        lines.append(
            f"| {entry.get('at', '')} | {entry.get('alias', '')} | v{entry['version']} | {before} | "
            f"{entry.get('action', '')} | {why} |"
        )
    return "\n".join(lines)


def mark_moved_versions(
    client: MlflowClient, name: str, alias: str, version: str, previous: str | None, action: str, at: str
) -> None:
    """Tag both versions an alias move touched (`neuroflow.alias_move`), and their runs (`neuroflow.<alias>`:
    yes / no), so the registry and the runs list show who holds the alias without opening the history."""
    client.set_model_version_tag(name, version, "neuroflow.alias_move", f"{action} {at}: became {alias}")
    _tag_run(client, name, version, f"neuroflow.{alias}", "yes")
    if previous and previous != version:
        client.set_model_version_tag(
            name, previous, "neuroflow.alias_move", f"{action} {at}: lost {alias} to v{version}"
        )
        _tag_run(client, name, previous, f"neuroflow.{alias}", f"no (v{version} since {at})")


def _tag_run(client: MlflowClient, name: str, version: str, key: str, value: str) -> None:
    try:
        run_id = client.get_model_version(name, version).run_id
        if run_id:
            client.set_tag(run_id, key, value)
    except MlflowException as error:  # the run may be deleted; the version's own tag is what counts
        log.warning("could not tag the run of %s v%s: %s", name, version, str(error).splitlines()[0])


def alias_history(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    """Every move of the aliases of `name`, oldest first."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise ModelNotFoundError(f"no registered model named {name!r}; train one with `neuroflow train`") from None
    raw = model.tags.get(HISTORY_TAG)
    return list(json.loads(raw)) if raw else []


def promote_version(client: MlflowClient, name: str, alias: str, version: str, reason: str = "") -> bool:
    """Move the alias to a given version by hand, with the person's `reason` in the history. False (and nothing
    recorded) when the version already holds the alias."""
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ModelNotFoundError(f"{name} has no version {version}; list them with `neuroflow versions`") from None
    why = f"promoted by hand: {reason}" if reason else "promoted by hand"
    with alias_lock(client, name, alias):
        if current_champion(client, name, alias) == str(version):
            return False
        set_alias(client, name, alias, version, action="promote", reason=why)
        client.set_model_version_tag(name, version, STATUS_TAG, "promoted")
        client.set_model_version_tag(name, version, REASON_TAG, f"{why} (`neuroflow promote`)")
    return True


def rollback_target(history: list[dict[str, Any]], alias: str) -> str | None:
    """The version that held the alias before the current holder, replaying moves as a stack (rollbacks pop)."""
    stack: list[str] = []
    for entry in history:
        if entry.get("alias", alias) != alias:
            continue
        if entry["action"] == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != entry["version"]:
            stack.append(entry["version"])
    return stack[-2] if len(stack) >= 2 else None


def rollback(client: MlflowClient, name: str, alias: str, reason: str = "") -> str:
    """Give the alias back to the version that held it before (each rollback walks one holder further back);
    returns that version. The person's `reason` goes into the history."""
    with alias_lock(client, name, alias):
        history = alias_history(client, name)
        target = rollback_target(history, alias)
        if target is None:
            moves = " → ".join(
                f"v{entry['version']}" + (" (rollback)" if entry["action"] == "rollback" else "")
                for entry in history
                if entry.get("alias", alias) == alias
            )
            raise PromotionError(
                f"{name} has no earlier {alias} to roll back to: its moves so far are {moves or 'none'}, and each "
                f"rollback walks one holder back. Move it to any version with `neuroflow promote VERSION`."
            )
        why = f"rolled back by hand: {reason}" if reason else "rolled back by hand"
        set_alias(client, name, alias, target, action="rollback", reason=why)
    return target


@dataclass(frozen=True)
class VersionRow:
    """One registered version as `neuroflow versions` lists it."""

    version: str
    created: str
    aliases: tuple[str, ...]
    decision: str
    reason: str
    metric: str | None
    score: float | None
    low: float | None
    high: float | None


def list_versions(client: MlflowClient, name: str) -> list[VersionRow]:
    """Every version of `name`, newest first: its primary metric on its test rows with the 95% interval (from its
    run), the gate's decision and why, its aliases and when it was registered."""
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException as error:
        raise RegistryUnavailableError(f"could not list the versions of {name}: {short_reason(error)}") from None
    if not versions:
        raise ModelNotFoundError(f"no registered model named {name!r}; train one with `neuroflow train`")
    # a search's versions may come without their aliases; the registered model has them all
    held: dict[str, list[str]] = {}
    for alias, holder in (client.get_registered_model(name).aliases or {}).items():
        held.setdefault(str(holder), []).append(alias)
    rows = []
    for version in sorted(versions, key=lambda item: int(item.version), reverse=True):
        tags = version.tags or {}
        metric = next(
            (key.removeprefix("neuroflow.") for key in tags if key.removeprefix("neuroflow.") in METRIC_TAGS), None
        )
        run_metrics: dict[str, float] = {}
        if version.run_id and metric:
            try:
                run_metrics = client.get_run(version.run_id).data.metrics
            except MlflowException:  # the run was deleted: the version's own tags still say the rest
                run_metrics = {}
        created = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC).isoformat(timespec="seconds")
        rows.append(
            VersionRow(
                str(version.version),
                created,
                tuple(sorted(held.get(str(version.version), ()))),
                tags.get(STATUS_TAG, "unknown"),
                tags.get(REASON_TAG, ""),
                metric,
                float(tags[f"neuroflow.{metric}"]) if metric else None,
                run_metrics.get(f"test_{metric}_low") if metric else None,
                run_metrics.get(f"test_{metric}_high") if metric else None,
            )
        )
    return rows


METRIC_TAGS = frozenset(metric.name for metric in PRIMARY_METRICS.values())  # as `record_decision` tags them
