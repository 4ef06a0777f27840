"""``dnatrack analyze``: a match request's whole analysis from files.

The subject's genotypes (a seizure's, a case's), searched among themselves and against
``--background`` profiles, with any number of reference sets, through
:func:`matching.analysis.analyse` — the function the LIMS's match requests call. Writes to
``--out``: ``result.json`` (the :class:`~matching.analysis.AnalysisResult`, the layout the LIMS
stores), the tables as CSV (``pairs.csv``, ``links.csv``, ``assignment.csv``,
``mixture.csv``, ``origins.csv``) and the LIMS's report body as ``report.html`` and
``report.pdf``, marked as an analysis from files, without custody record or signatures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
from pathlib import Path

from dnatrack.cli._common import add_format_option, read_table, write_rows
from dnatrack.files import replace_atomically

PAIR_COLUMNS = ["sample1", "node1", "sample2", "node2", "relationship", "evidence",
                "frequency_reference", "loci_compared", "log10_lr", "rmp"]
LINK_COLUMNS = ["node1", "node2", "n_pairs", "same_animal", "relationships", "max_log10_lr"]
ASSIGNMENT_COLUMNS = ["barcode", "population", "posterior", "repunit", "repunit_posterior",
                      "z_score", "exclusion_p_value", "unsampled_source", "loci_typed"]
MIXTURE_COLUMNS = ["group", "population", "repunit", "pi", "lo95", "hi95", "em"]
ORIGIN_COLUMNS = ["group", "best_lat", "best_lon", "max_posterior", "area50_km2",
                  "area90_km2"]


def register(subparsers) -> None:
    from matching.analysis import ANALYSES
    from matching.analysis.settings import AnalysisSettings

    defaults = AnalysisSettings()
    parser = subparsers.add_parser(
        "analyze",
        help="a match request's whole analysis from files (result JSON, tables, report)",
        description=(
            "Search the genotypes for the same animal and relatives among themselves and in "
            "the background profiles, assign them to the reference populations, estimate "
            "each seizure's mixture and place it on the map, with one or more reference sets: "
            "the analysis a LIMS match request runs, from files."
        ),
    )
    parser.add_argument("genotypes", help="the subject's genotype file (any readable format)")
    parser.add_argument("--background", metavar="FILE",
                        help="profiles to search the subject's against (any readable format)")
    parser.add_argument("--reference", action="append", required=True, metavar="REF",
                        help="bundled reference set, reference folder or genotype file with "
                             "populations (repeatable: each profile is weighed with the set "
                             "it is assigned to)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    parser.add_argument("--analyses", default=",".join(ANALYSES),
                        help=f"comma-separated analyses (default all: {','.join(ANALYSES)})")
    parser.add_argument("--groups", metavar="CSV",
                        help="CSV with columns sample,seizure (default: the files' group, "
                             "population or collection column)")
    add_format_option(parser)
    parser.add_argument("--parameters", metavar="JSON",
                        help="settings as a match request's parameters, a JSON object or a "
                             "file holding one (the options below override it)")
    parser.add_argument("--theta", help="co-ancestry θ, a number or a species name")
    parser.add_argument("--min-loci", type=int, help=f"minimum loci compared ({defaults.min_loci})")
    parser.add_argument("--stringency", help=f"identity search stringency ({defaults.stringency})")
    parser.add_argument("--exclusion-simulations", type=int,
                        help=f"exclusion test simulations ({defaults.exclusion_simulations})")
    parser.add_argument("--mixture-sweeps", type=int,
                        help=f"Gibbs sweeps of the mixture ({defaults.mixture_sweeps})")
    parser.add_argument("--seed", type=int, help=f"seed of the simulations ({defaults.seed})")
    parser.add_argument("--subject-name", metavar="NAME",
                        help="what the result calls the subject (default: the file's name)")
    parser.add_argument("--no-report", action="store_true",
                        help="write the result and the tables only (no HTML or PDF)")
    parser.set_defaults(func=run_analyze)


def _parameters(args) -> dict:
    parameters: dict = {}
    if args.parameters:
        text = args.parameters
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text()
        try:
            parameters = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--parameters: not JSON ({error})") from None
        if not isinstance(parameters, dict):
            raise ValueError("--parameters must be a JSON object")
    for name in ("theta", "min_loci", "stringency", "exclusion_simulations", "mixture_sweeps",
                 "seed"):
        value = getattr(args, name)
        if value is not None:
            parameters[name] = value
    if isinstance(parameters.get("theta"), str):
        try:
            parameters["theta"] = float(parameters["theta"])
        except ValueError:
            pass
    return parameters


def _reference_folder(argument: str):
    from reference_data import list_reference_sets, reference_set_path

    path = Path(argument)
    if path.is_dir():
        return path
    if argument in list_reference_sets():
        return reference_set_path(argument)
    return None


def report_body(shown: dict, finished: dt.datetime, started: dt.datetime) -> dict:
    """The LIMS's report body for a result from files: no request, custody or signatures."""
    from lims.reports.render import renderer_versions

    when = finished.strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        "document": {
            "kind": "evidential", "title": "Forensic DNA analysis (from files)",
            "number": "dnatrack analyze", "report_id": "–", "version": 1,
            "status": "unsigned", "status_text": "analysis from files, not a signed report",
            "unsigned": True, "request_id": "–", "requested_by": "dnatrack analyze",
            "requested_at": when, "drafted_by": None, "drafted_at": None, "issued_at": None,
            "replaces": None, "amendment_reason": None, "remarks": None,
            "signatures_awaited": [],
        },
        "result": shown,
        "run": {"worker": socket.gethostname(),
                "started_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"), "finished_at": when},
        "signatures": [],
        "ledger_head": None,
        "software": renderer_versions(),
    }


def _tables(out: Path, result: dict) -> list[str]:
    written = []
    nodes = result["nodes"]

    def name(key: str) -> str:
        return nodes[key]["reference"]

    write_rows(out / "pairs.csv", ({**pair, "node1": name(pair["node1"]),
                                    "node2": name(pair["node2"])}
                                   for pair in result["pairs"]), PAIR_COLUMNS)
    write_rows(out / "links.csv", ({**link, "node1": name(link["node1"]),
                                    "node2": name(link["node2"]),
                                    "relationships": ";".join(
                                        f"{r}:{n}" for r, n in link["relationships"].items())}
                                   for link in result["links"]), LINK_COLUMNS)
    written += ["pairs.csv", "links.csv"]
    if result.get("assignment"):
        write_rows(out / "assignment.csv", result["assignment"]["rows"], ASSIGNMENT_COLUMNS)
        written.append("assignment.csv")
    if result.get("mixture"):
        write_rows(out / "mixture.csv", (
            {"group": group["group"], **share} for group in result["mixture"]
            for share in group["populations"]), MIXTURE_COLUMNS)
        written.append("mixture.csv")
    if result.get("geographic"):
        write_rows(out / "origins.csv", result["geographic"]["surfaces"], ORIGIN_COLUMNS)
        written.append("origins.csv")
    return written


def run_analyze(args: argparse.Namespace) -> int:
    from dnatrack.cli.match import _seizures
    from dnatrack.panels import load_panel
    from dnatrack.reference import load_reference_set
    from matching.analysis import AnalysisError, AnalysisSettings, Subject, analyse
    from matching.analysis.pipeline import groups_describer

    started = dt.datetime.now(dt.UTC)
    analyses = [name.strip() for name in args.analyses.split(",") if name.strip()]
    try:
        settings = AnalysisSettings.from_parameters(_parameters(args))
    except AnalysisError as error:
        raise ValueError("; ".join(f"{p['field'].replace('parameters.', '--')}: {p['message']}"
                                   for p in error.problems) or str(error)) from None
    if len(set(args.reference)) != len(args.reference):
        raise ValueError("--reference names a reference set twice")
    references = [load_reference_set(name) for name in args.reference]
    folders = {reference.name: _reference_folder(argument)
               for reference, argument in zip(references, args.reference, strict=True)}
    panels = {reference.panel for reference in references}
    if len(panels) > 1:
        raise ValueError("the reference sets are typed on different panels: " + ", ".join(
            f"{r.name}: {r.panel}" for r in references))
    [panel_name] = panels
    panel = load_panel(panel_name) if panel_name else None
    subject = read_table(args.genotypes, args.input_format)
    background = read_table(args.background, args.input_format) if args.background else None
    groups = _seizures(subject, args.groups)
    if background is not None:
        groups.update(_seizures(background, args.groups))
    name = args.subject_name or Path(args.genotypes).stem
    try:
        result = analyse(
            subject, background, references, analyses=analyses, settings=settings,
            panel=panel, describe=groups_describer(groups, kind="seizure"),
            about=Subject(kind="file", reference=name),
            reference_folder=lambda reference: folders.get(reference.name),
        )
    except AnalysisError as error:
        raise ValueError(str(error)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stored = result.to_json()
    # One line: the C encoder (an indented file takes seconds for a large assignment).
    with replace_atomically(out / "result.json") as handle:
        json.dump(stored, handle, ensure_ascii=False)
    written = ["result.json", *_tables(out, stored)]
    if not args.no_report:
        from lims.reports.layout import present
        from lims.reports.render import render_without_app

        body = report_body(present(stored), dt.datetime.now(dt.UTC), started)
        html, pdf = render_without_app(body)
        (out / "report.html").write_bytes(html)
        (out / "report.pdf").write_bytes(pdf)
        written += ["report.html", "report.pdf"]
    scope = stored.get("scope")
    print(f"{len(stored['subject_profiles'])} subject profile(s)"
          + (f", {scope['pairs_compared']:,} pairs compared" if scope else "")
          + f": {len(stored['pairs'])} pair(s), {len(stored['links'])} link(s); wrote "
          + ", ".join(written) + f" to {out}", file=sys.stderr)
    for note in stored["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return 0
