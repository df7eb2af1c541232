"""Releases: assemble a model's release folder (weights, tokenizer, model card, comparison
tables, plot, eval results) and publish it with a release target (``folder`` or ``hub``).

Every number in a card comes from the results store. Input is checked before anything is
written or uploaded: a model folder without weights, a store without the model, an invalid
repository name or a missing token (``hub``) are one-line :class:`KakugoError` s.

Public API::

    prepare_release(model_dir, *, store, base_model, language, dataset_dir=None, out_dir,
                    repo_id, ...) -> Path
    prepare_dataset_release(dataset_dir, *, out_dir, repo_id, language, ...) -> Path
    release(model_dir, *, target="folder", repo_id=None, store, base_model, language,
            dataset_dir=None, dry_run=False, private=None, revision=None, create_pr=False,
            tag=None, out_dir=None, ...) -> Release
    default_repo_id(model_dir, language, user, config=None) -> str
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kakugo_core.config import Config, load_config
from kakugo_core.errors import KakugoError
from kakugo_core.files import prepare_output, write_text_atomic
from kakugo_core.interfaces import ReleaseResult, ReleaseTarget, describe_uploads
from kakugo_core.languages import Language, resolve
from kakugo_core.plugin_settings import settings_for
from kakugo_core.store import ResultsStore

Echo = Callable[[str], None]
log = logging.getLogger("kakugo")

CARD = "README.md"
PLOT = "results/base_vs_student.png"
LOSS_CURVE = "loss_curve.png"  # written by `kakugo train` beside the weights
TABLES = ("results/comparison.md", "results/comparison.csv", "results/comparison.json")
DATASET_MARKERS = ("dataset_dict.json", "state.json")


@dataclass
class Release(ReleaseResult):
    """What :func:`release` did: the model's result, plus the dataset's, the tag and the
    dry-run plan."""

    repo_id: str = ""
    target: str = ""
    tag: str | None = None
    pr_url: str | None = None
    deleted: list[str] = field(default_factory=list)
    dataset: ReleaseResult | None = None
    dataset_repo_id: str | None = None
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)
    folder: str | None = None


# -- names -------------------------------------------------------------------------------------
_REPO_PART = re.compile(r"^(?![.-])[A-Za-z0-9._-]{1,96}(?<![.-])$")


def check_repo_id(repo_id: str, *, needs_owner: bool = True) -> str:
    """``owner/name`` with letters, digits, ``-``, ``_`` and ``.`` (no ``--``/``..``, no
    leading or trailing ``-``/``.``), as the Hub accepts; else a clear error."""
    parts = repo_id.split("/")
    ok = len(parts) == 2 if needs_owner else len(parts) in (1, 2)
    ok = ok and all(_REPO_PART.match(p) and "--" not in p and ".." not in p for p in parts)
    if not ok:
        raise KakugoError(
            f"invalid repository name {repo_id!r}: use owner/name made of letters, digits, "
            "'-', '_' and '.' (at most 96 characters each, no '--' or '..')"
        )
    return repo_id


def default_repo_id(
    model_dir: str | Path, language: str | Language, user: str, config: Config | None = None
) -> str:
    """``[release].repo_name`` filled in: ``{user}``, ``{size}`` (from the parameter count:
    "3b", "150k"), ``{iso639_3}``, ``{iso639_1}``, ``{language}`` (the FLORES id)."""
    from kakugo_core.toolkit.release_files import parameter_count, size_label

    cfg = config or load_config()
    lang = resolve(language)
    template = cfg["release"]["repo_name"]
    try:
        name = template.format(
            user=user, size=size_label(parameter_count(Path(model_dir))),
            iso639_3=lang.iso639_3, iso639_1=lang.iso639_1 or lang.iso639_3, language=lang.id,
        )
    except (KeyError, IndexError) as exc:
        raise KakugoError(f"[release].repo_name {template!r} uses an unknown field {exc}; "
                          "known: user, size, iso639_3, iso639_1, language") from None
    return check_repo_id(name)


# -- inputs ------------------------------------------------------------------------------------
def _open_store(store: ResultsStore | str | Path) -> ResultsStore:
    if isinstance(store, ResultsStore):
        return store
    path = Path(store)
    if not path.is_file():
        raise KakugoError(f"results store {path} does not exist; run `kakugo bench` first or "
                          "pass --db with the store it wrote")
    return ResultsStore(path, readonly=True)


def find_store_model(store: ResultsStore, model_dir: Path, model_name: str | None = None) -> str:
    """The name the student has in the store: ``model_name`` when given, else the model folder
    as it was benchmarked (the same path, relative or absolute, or ``{run}/...`` as a run names
    the models inside the run folder that holds its store)."""
    known = store.models()
    if model_name:
        if model_name in known:
            return model_name
        raise KakugoError(f"the results store {store.path} has no results for model "
                          f"{model_name!r}; run `kakugo bench` on it first")
    target = model_dir.resolve()
    store_dir = Path(store.path).resolve().parent
    for name in known:
        if name.startswith("{run}/"):  # the run folder is the store's folder or one above it
            rest = name[len("{run}/"):]
            if any((root / rest).resolve() == target
                   for root in (store_dir, *store_dir.parents)):
                return name
            continue
        try:
            if Path(name).expanduser().resolve() == target:
                return name
        except (OSError, ValueError):
            continue
    raise KakugoError(
        f"the results store {store.path} has no results for model {str(model_dir)!r}; run "
        "`kakugo bench` on it first (or pass --db, or --model-name with its name in the store)"
    )


def check_language_benched(store: ResultsStore, model: str, lang: Language) -> None:
    """Refuse to release a model as speaking ``lang`` when the store has none of its scores in
    that language: its card would name one language and show another's results."""
    languages = sorted({r.language for r in store.rows(models=[model])})
    if lang.id not in languages:
        raise KakugoError(
            f"the results store {store.path} has no results for {model!r} in {lang.name} "
            f"({lang.id}), only in {', '.join(languages) or 'no language'}; bench it on "
            f"{lang.id} first or pass the language it was benched on"
        )


def _check_dataset_dir(dataset_dir: Path) -> None:
    if not dataset_dir.is_dir() or not any((dataset_dir / m).is_file() for m in DATASET_MARKERS):
        raise KakugoError(f"{dataset_dir} is not a dataset folder written by `kakugo dataset` "
                          "(no dataset_dict.json or state.json)")


def dataset_out_dir(out_dir: Path) -> Path:
    """Where :func:`prepare_release` puts the dataset release beside the model's."""
    return out_dir.with_name(out_dir.name + "-data")


# -- assembling --------------------------------------------------------------------------------
def _stage(destination: Path, build: Callable[[Path], None]) -> Path:
    from kakugo_core.toolkit.release_files import replace_dir, staging_dir

    staged = staging_dir(destination)
    try:
        build(staged)
        replace_dir(staged, destination)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return destination


def prepare_release(
    model_dir: str | Path,
    *,
    store: ResultsStore | str | Path,
    base_model: str,
    language: str | Language,
    dataset_dir: str | Path | None = None,
    out_dir: str | Path,
    repo_id: str,
    model_name: str | None = None,
    dataset_repo_id: str | None = None,
    others: list[str] | None = None,
    config: Config | None = None,
    link_model_files: bool = False,
    gguf_types: list[str] | None = None,
    base_name: str | None = None,
) -> Path:
    """Assemble the model's release folder at ``out_dir`` (replaced as a whole) and return it:
    the model's files (weights, config, tokenizer, chat template, training summary), ``README.md``
    (the model card), ``results/comparison.{md,csv,json}``, ``results/base_vs_student.png`` and
    ``.eval_results/<benchmark>.yaml``, and a GGUF export per type in ``gguf_types`` (default:
    ``release.gguf``; F16 and Q8_0) named ``<repo name>-<TYPE>.gguf``. With ``dataset_dir``,
    the dataset's release folder is assembled too, at ``<out_dir>-data`` (see
    :func:`prepare_dataset_release`).

    Model files are copied, so retraining in place cannot alter a release;
    ``link_model_files=True`` hard-links them instead (for a folder that is uploaded and then
    deleted). ``base_name``: the base model's name in the store when it differs from
    ``base_model``, where it is loaded from (a run's ``{run}/...`` names)."""
    from kakugo_core.toolkit.cards import (
        build_model_card,
        eval_results_files,
        read_training_summary,
    )
    from kakugo_core.toolkit.comparison import (
        build_comparison,
        render_csv,
        render_json,
        render_markdown,
    )
    from kakugo_core.toolkit.plots import plot_base_vs_student
    from kakugo_core.toolkit.provenance import is_hub_id, teacher_model
    from kakugo_core.toolkit.release_files import (
        check_model_dir,
        link_or_copy,
        model_files,
        parameter_count,
        size_label,
    )

    cfg = config or load_config()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_model_dir(model_dir)
    gguf_types = _gguf_types(model_dir, cfg if gguf_types is None else None, gguf_types)
    lang = resolve(language)
    check_repo_id(repo_id)
    if dataset_dir is not None:
        _check_dataset_dir(Path(dataset_dir))
        dataset_repo_id = check_repo_id(
            dataset_repo_id or cfg["release"]["dataset_repo_name"].format(repo_id=repo_id))
    results = _open_store(store)
    student = find_store_model(results, model_dir, model_name)
    base_name = base_name or base_model
    comparison = build_comparison(results, student, base_name, others=others)
    if not any(base_name in row.cells for row in comparison.rows):
        log.warning("the results store has no results for the base model %r on the student's "
                    "benchmarks; the card will show no base column values or plot (run "
                    "`kakugo bench -m %s` first)", base_name, base_model)
    training = read_training_summary(model_dir)
    labels = {student: repo_id}
    if not is_hub_id(base_model):  # a local path means nothing on the Hub: its name only
        labels[base_name] = f"{Path(base_model).name} (local)"

    def build(folder: Path) -> None:
        for path in model_files(model_dir):
            if link_model_files:
                link_or_copy(path, folder / path.name)
            else:
                shutil.copy2(path, folder / path.name)
        ggufs = _write_ggufs(model_dir, folder, repo_id, gguf_types)
        tables = render_markdown(comparison, labels)
        write_text_atomic(folder / TABLES[0], tables)
        write_text_atomic(folder / TABLES[1], render_csv(comparison, labels))
        write_text_atomic(folder / TABLES[2], render_json(comparison, labels))
        for rel, text in eval_results_files(comparison).items():
            write_text_atomic(folder / rel, text)
        base_label = labels.get(base_name, base_name)
        plot = plot_base_vs_student(comparison, folder / PLOT, base_label=f"base: {base_label}",
                                    student_label=f"student: {repo_id.split('/')[-1]}")
        card = build_model_card(
            comparison, repo_id=repo_id, language=lang, base_model=base_model,
            license=cfg["release"]["license"], size=size_label(parameter_count(model_dir)),
            tables=tables, plot=PLOT if plot else None, training=training,
            loss_curve=LOSS_CURVE if (model_dir / LOSS_CURVE).is_file() else None,
            dataset_repo_id=dataset_repo_id,
            think_prompt=cfg["dataset"]["think_system_prompt"],
            concise_prompt=cfg["dataset"]["concise_system_prompt"],
            teacher=teacher_model(Path(dataset_dir) if dataset_dir is not None else None,
                                  model_dir),
            configured_benchmarks=list(cfg["bench"]["benchmarks"]),
            gguf_files=ggufs,
        )
        write_text_atomic(folder / CARD, str(card))

    _stage(out_dir, build)
    if dataset_dir is not None and dataset_repo_id:
        prepare_dataset_release(dataset_dir, out_dir=dataset_out_dir(out_dir),
                                repo_id=dataset_repo_id, language=lang, model_repo_id=repo_id,
                                config=cfg)
    return out_dir


def _gguf_types(model_dir: Path, cfg: Config | None, asked: list[str] | None) -> list[str]:
    """The GGUF types to export: checked before anything is written. An architecture the
    exporter does not know is a warning with the configured default and an error when asked."""
    from kakugo_core.toolkit.gguf_export import check_exportable

    types = list(asked if asked is not None else (cfg or {}).get("release", {}).get("gguf", []))
    if not types:
        return []
    try:
        check_exportable(model_dir, types)
    except KakugoError as exc:
        if asked is not None or "unknown GGUF type" in str(exc):
            raise
        log.warning("no GGUF files in this release: %s", exc)
        return []
    return types


def _write_ggufs(model_dir: Path, folder: Path, repo_id: str,
                 types: list[str]) -> list[dict[str, str]]:
    """Export each type into the release folder; the card's rows, largest first."""
    from kakugo_core.toolkit.gguf_export import export_gguf, gguf_file_name
    from kakugo_core.toolkit.release_files import human_size

    exports: list[tuple[str, str, int]] = []  # (file name, type, size in bytes)
    stem = repo_id.split("/")[-1]
    for gguf_type in types:
        log.info("writing the %s GGUF export", gguf_type)
        path = export_gguf(model_dir, folder / gguf_file_name(stem, gguf_type), gguf_type,
                           name=repo_id)
        exports.append((path.name, gguf_type, path.stat().st_size))
    exports.sort(key=lambda export: -export[2])
    return [{"name": name, "type": gguf_type, "size": human_size(size)}
            for name, gguf_type, size in exports]


def prepare_dataset_release(
    dataset_dir: str | Path,
    *,
    out_dir: str | Path,
    repo_id: str,
    language: str | Language,
    model_repo_id: str | None = None,
    config: Config | None = None,
) -> Path:
    """Assemble a dataset's release folder: one Parquet file per split under ``data/`` (the
    layout ``load_dataset(repo_id)`` reads) and ``README.md`` (the dataset folder's own card when
    it has one, else a generated one)."""
    from datasets import Dataset, DatasetDict, load_from_disk

    from kakugo_core.toolkit.cards import build_dataset_card

    cfg = config or load_config()
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    _check_dataset_dir(dataset_dir)
    lang = resolve(language)
    check_repo_id(repo_id)
    try:
        loaded = load_from_disk(str(dataset_dir))
    except Exception as exc:  # datasets raises several types for a broken folder
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise KakugoError(f"cannot read dataset folder {dataset_dir}: {first}") from None
    splits: DatasetDict = (loaded if isinstance(loaded, DatasetDict)
                           else DatasetDict({"train": loaded}))

    def build(folder: Path) -> None:
        columns: list[str] = []
        for name, split in splits.items():
            assert isinstance(split, Dataset)
            path = folder / "data" / f"{name}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            split.to_parquet(str(path))
            columns = columns or list(split.column_names)
        own_card = dataset_dir / CARD
        if own_card.is_file():
            text = own_card.read_text("utf-8")
        else:
            text = str(build_dataset_card(
                repo_id=repo_id, language=lang, license=cfg["release"]["license"],
                splits=[(n, s.num_rows) for n, s in splits.items()], columns=columns,
                model_repo_id=model_repo_id,
            ))
        write_text_atomic(folder / CARD, text)

    return _stage(out_dir, build)


# -- publishing --------------------------------------------------------------------------------
def _token_for(target: Any, dry_run: bool) -> str | None:
    if not getattr(target, "needs_token", False):
        return None
    from kakugo_core.toolkit.hub import get_token

    if dry_run:
        try:
            return get_token()
        except KakugoError:
            return None
    return get_token()


def release(
    model_dir: str | Path,
    *,
    target: str = "folder",
    repo_id: str | None = None,
    store: ResultsStore | str | Path,
    base_model: str,
    language: str | Language,
    dataset_dir: str | Path | None = None,
    dry_run: bool = False,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    tag: str | None = None,
    out_dir: str | Path | None = None,
    model_name: str | None = None,
    config: Config | None = None,
    echo: Echo | None = None,
    target_options: Mapping[str, Any] | None = None,
    gguf_types: list[str] | None = None,
    base_name: str | None = None,
) -> Release:
    """Check the inputs, assemble the release folder(s) and publish them with ``target``.

    ``out_dir``: for ``folder`` the destination (default ``<[release].out_dir>/<repo_id>``);
    for ``hub`` where to keep a copy of what was uploaded (default: a temporary folder).
    ``dry_run`` assembles the folder and lists what would be uploaded, changing nothing
    remotely. With ``dataset_dir`` the dataset is published first, to ``<repo_id>-data``.
    ``gguf_types`` (default ``release.gguf``) are the GGUF exports to include;
    ``base_name`` as for :func:`prepare_release`.
    """
    from kakugo_core.plugins import create, plugin_call
    from kakugo_core.toolkit.release_files import check_model_dir

    say = echo or (lambda _line: None)
    cfg = config or load_config()
    model_dir = Path(model_dir)
    publisher = create("release_targets", target)
    check_model_dir(model_dir)
    lang = resolve(language)
    if dataset_dir is not None:
        _check_dataset_dir(Path(dataset_dir))
    results = _open_store(store)
    stored_name = find_store_model(results, model_dir, model_name)
    check_language_benched(results, stored_name, lang)
    token = _token_for(publisher, dry_run)
    if repo_id is None:
        if getattr(publisher, "needs_token", False) and token is None:
            raise KakugoError("pass --repo-id: without a token the owner cannot be looked up")
        user = publisher.default_user({"token": token}) if hasattr(publisher, "default_user") \
            else "kakugo"
        repo_id = default_repo_id(model_dir, lang, user, cfg)
    check_repo_id(repo_id)
    dataset_repo_id = (check_repo_id(cfg["release"]["dataset_repo_name"].format(repo_id=repo_id))
                       if dataset_dir is not None else None)
    options: dict[str, Any] = {
        "token": token,
        "private": cfg["release"]["private"] if private is None else private,
        "revision": revision, "create_pr": create_pr,
        "tag": tag if tag else cfg["release"]["tag"],
        **settings_for(cfg, "release_targets", target),
        **dict(target_options or {}),
    }
    is_folder = not getattr(publisher, "needs_token", False)
    if is_folder and out_dir is None:
        out_dir = Path(cfg["release"]["out_dir"]) / repo_id
    dest = Path(out_dir) if out_dir is not None else None
    if dest is not None:  # the one output rule; what the folder may hold is the target's to say
        prepare_output(dest, kind="folder", overwrite=True, inputs=[
            model_dir, dataset_dir, getattr(results, "path", None)])
    check = getattr(publisher, "check", None)  # a target's own checks, before assembling
    if callable(check) and not dry_run:
        with plugin_call("release_targets", target, "check"):
            check({**options, "out_dir": dest})

    # Work beside the destination (folder target) or the model (hub): same file system, so
    # weights are hard-linked rather than copied again, and /tmp does not fill up with them.
    work_root = (dest if is_folder and dest is not None else model_dir.resolve()).parent
    work_root.mkdir(parents=True, exist_ok=True)
    try:
        tmp_dir = tempfile.TemporaryDirectory(prefix=".kakugo-release-", dir=work_root)
    except OSError:  # a read-only parent: fall back to the system's temporary folder
        tmp_dir = tempfile.TemporaryDirectory(prefix="kakugo-release-")
    with tmp_dir as tmp:
        folder = (Path(tmp) / "model") if (is_folder or dest is None) else dest
        say(f"assembling the release of {repo_id} in {folder}")
        prepare_release(model_dir, store=results, base_model=base_model, language=lang,
                        dataset_dir=dataset_dir, out_dir=folder, repo_id=repo_id,
                        model_name=model_name, dataset_repo_id=dataset_repo_id, config=cfg,
                        link_model_files=not is_folder and dest is None,
                        gguf_types=gguf_types, base_name=base_name)
        jobs = [(folder, repo_id, {**options, "repo_type": "model", "out_dir": dest})]
        if dataset_dir is not None and dataset_repo_id:
            data_dest = dataset_out_dir(dest) if dest is not None else None
            jobs.insert(0, (dataset_out_dir(folder), dataset_repo_id,
                            {**options, "repo_type": "dataset", "out_dir": data_dest}))
        if dry_run:
            plan: list[str] = []
            for path, rid, opts in jobs:
                kind = opts["repo_type"]
                where = opts["out_dir"] if is_folder else f"{kind} repository {rid}"
                plan.append(f"{target}: {where}"
                            + ("" if is_folder else
                               f" (private={bool(opts['private'])}, "
                               f"revision={opts['revision'] or 'main'}, "
                               f"create_pr={bool(opts['create_pr'])})"))
                describe = getattr(publisher, "describe", None)
                lines = (describe(path, rid, opts) if callable(describe)
                         else describe_uploads(path, ReleaseTarget.plan(publisher, path)))
                plan.extend(f"  {line}" for line in lines)
            for line in plan:
                say(line)
            return Release(str(dest or folder), None, False, [], repo_id=repo_id, target=target,
                           dataset_repo_id=dataset_repo_id, dry_run=True, plan=plan,
                           folder=str(folder) if folder == dest else None)
        published: list[ReleaseResult] = []
        for path, rid, opts in jobs:
            say(f"publishing {rid} with the {target} target")
            with plugin_call("release_targets", target, "publish"):
                published.append(publisher.publish(path, rid, opts))
    model = published[-1]
    return Release(
        model.location, model.revision, model.changed, list(model.files), repo_id=repo_id,
        target=target, tag=getattr(model, "tag", None), pr_url=getattr(model, "pr_url", None),
        deleted=list(getattr(model, "deleted", [])),
        dataset=published[0] if len(published) > 1 else None,
        dataset_repo_id=dataset_repo_id, folder=str(dest) if dest is not None else None,
    )
