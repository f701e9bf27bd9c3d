"""Sphinx configuration of the hyperspy_mnvalence documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (needs the ``docs`` extra).

Some pages pull in Markdown written elsewhere in the repository (the training guide,
the cluster guide, the benchmark results) and the model card stored in the shipped
model. Two small directives defined here do that and fall back to a short note when a
source is not there yet, so the build never depends on work in progress:

``.. optional-markdown:: PATH``
    Parse the Markdown file ``PATH`` (relative to this folder) with MyST; relative
    links to images are rewritten so that they resolve, other local links become
    plain text. The directive's content (reStructuredText) is used when the file is
    absent.
``.. mnvalence-model-card::``
    Tables of the metrics and training data of the shipped model, and the figures of
    ``hyperspy_mnvalence/training/reports``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from docutils.parsers.rst import Directive, directives
from docutils.parsers.rst.directives.misc import Include as BaseInclude

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import hyperspy_mnvalence  # noqa: E402

# -- project -----------------------------------------------------------------------------
project = "hyperspy_mnvalence"
author = "hyperspy_mnvalence developers"
copyright = "hyperspy_mnvalence developers"  # noqa: A001
version = release = hyperspy_mnvalence.__version__

# -- general -----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
# Markdown in this folder (cluster.md) is pulled into an .rst page, not built on its own
exclude_patterns = ["_build", "**.ipynb_checkpoints", "*.md", "*.ipynb"]
templates_path: list[str] = []

autosummary_generate = False
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Markdown from elsewhere in the repository may link to files that are not pages, or
# skip heading levels; those are not errors of the documentation.
suppress_warnings = ["myst.xref_missing", "myst.header"]
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"hyperspy_mnvalence {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False


# -- directives --------------------------------------------------------------------------
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".svg", ".gif"}


def _rewrite_links(text: str, md_dir: Path, srcdir: Path) -> str:
    """Make the local links of a Markdown file resolve from the including page."""

    def repl(m: re.Match) -> str:
        bang, label, target = m.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return m.group(0)  # URL or in-page anchor
        path = (md_dir / target.split("#")[0]).resolve()
        if bang and path.suffix.lower() in _IMAGE_SUFFIXES and path.is_file():
            rel = os.path.relpath(path, srcdir).replace(os.sep, "/")
            return f"![{label}](/{rel})" if not rel.startswith("/") else m.group(0)
        try:
            shown = path.relative_to(ROOT).as_posix()
        except ValueError:
            shown = target
        return f"{label} (`{shown}`)" if label else f"`{shown}`"

    return _LINK.sub(repl, text)


class OptionalMarkdown(BaseInclude):
    """Include a Markdown file parsed by MyST, or the directive content if it is absent."""

    required_arguments = 1
    optional_arguments = 0
    has_content = True
    option_spec: dict = {}

    def run(self):
        env = self.state.document.settings.env
        srcdir = Path(env.srcdir)
        path = (srcdir / self.arguments[0]).resolve()
        if not path.is_file():
            if not self.content:
                return []
            self.state_machine.insert_input(list(self.content), f"{path} (fallback)")
            return []
        env.note_dependency(str(path))
        text = _rewrite_links(path.read_text(encoding="utf-8"), path.parent, srcdir)
        tmp = Path(env.app.doctreedir) / "mnvalence_md" / (path.stem + "_" + env.docname + ".md")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        self.arguments[0] = str(tmp)
        self.options["parser"] = directives.parser_name("myst_parser.sphinx_")
        return super().run()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    out = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header] + rows:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    out.append("")
    return out


def _model_card_rst() -> list[str]:
    try:
        card = hyperspy_mnvalence.model_card()
    except Exception as exc:  # the model is not shipped yet
        return [
            ".. note::",
            "",
            f"   The shipped model could not be read when these pages were built ({exc}).",
            "   Run ``mnvalence info`` to print the card of your installation.",
            "",
        ]
    m = card.get("metrics", {})
    lines = [
        f"Model file ``{Path(card['path']).name}``: architecture ``{card.get('architecture')}``, "
        f"{card.get('n_members', 1)} network(s), classes "
        f"{', '.join(card.get('class_names', [str(c) for c in card['classes']]))}, "
        f"energy step {card.get('energy_step_eV')} eV. Print it with ``mnvalence info``.",
        "",
    ]
    rows = []
    for key, what in (
        ("cv_accuracy", "Cross-validation accuracy on the Titan training spectra"),
        ("digitized_accuracy", "Accuracy on the 31 digitized literature spectra (held out)"),
    ):
        if key in m:
            rows.append([what, _fmt(m[key])])
    if "digitized_correct" in m:
        rows.append(
            ["Digitized spectra correct", f"{m['digitized_correct']} / {m.get('digitized_total')}"]
        )
    if "cv_note" in m:
        rows.append(["Note", str(m["cv_note"])])
    if rows:
        lines += _table("Headline metrics", ["Metric", "Value"], rows)
    if isinstance(m.get("shift_accuracy"), dict):
        items = sorted(m["shift_accuracy"].items(), key=lambda kv: float(kv[0]))
        lines += _table(
            "Accuracy against an energy shift of the spectra (eV)",
            ["Shift (eV)", "Accuracy"],
            [[f"{float(k):+g}", _fmt(v)] for k, v in items],
        )
    if isinstance(m.get("noise_accuracy"), dict):
        items = sorted(m["noise_accuracy"].items(), key=lambda kv: float(kv[0]))
        lines += _table(
            "Accuracy against added instrument noise (multiples of the PCA residual noise)",
            ["Noise multiple", "Accuracy"],
            [[str(k), _fmt(v)] for k, v in items],
        )
    if "shift_noise_protocol" in m:
        lines += [f"Shift and noise protocol: {m['shift_noise_protocol']}.", ""]
    data = card.get("training_data") or []
    if data:
        rows = [
            [
                f"``{d.get('file')}``",
                str(d.get("n_spectra", "")),
                f"``{str(d.get('sha256', ''))[:16]}…``",
                str(d.get("use", "training")),
            ]
            for d in data
        ]
        lines += _table("Training data", ["File", "Spectra", "sha256", "Use"], rows)
    reports = ROOT / "hyperspy_mnvalence" / "training" / "reports"
    pngs = sorted(reports.glob("*.png")) if reports.is_dir() else []
    if pngs:
        lines += ["Figures from ``hyperspy_mnvalence/training/reports``:", ""]
        for png in pngs:
            rel = os.path.relpath(png, DOCS).replace(os.sep, "/")
            caption = png.stem.replace("_", " ")
            lines += [f".. figure:: /{rel}", "   :width: 90%", "", f"   {caption}", ""]
    jsons = sorted(reports.glob("*.json")) if reports.is_dir() else []
    if jsons:
        names = ", ".join(f"``{j.name}``" for j in jsons)
        lines += [f"Machine-readable reports in the same folder: {names}.", ""]
    return lines


class ModelCard(Directive):
    """Insert the shipped model's card (metrics, data, report figures)."""

    has_content = False

    def run(self):
        env = self.state.document.settings.env
        model = ROOT / "hyperspy_mnvalence" / "models" / "mn_valence_fcn.onnx"
        if model.is_file():
            env.note_dependency(str(model))
        lines = _model_card_rst()
        self.state_machine.insert_input(lines, "model card")
        return []


def _card_json(app, exception) -> None:  # keep a copy of the card next to the HTML
    if exception is not None or app.builder.format != "html":
        return
    try:
        card = hyperspy_mnvalence.model_card()
    except Exception:
        return
    (Path(app.outdir) / "model_card.json").write_text(json.dumps(card, indent=2))


_MIXED_SECTION = """

Mixed valence
-------------

.. autofunction:: hyperspy_mnvalence.mixed.decompose_mn_valence
.. autofunction:: hyperspy_mnvalence.mixed.mean_oxidation_state
.. autofunction:: hyperspy_mnvalence.mixed.mean_valence_uncertainty
"""


def _api_extras(app, docname, source) -> None:
    """Document the mixed-valence functions where this checkout has them."""
    if docname != "api":
        return
    try:
        from hyperspy_mnvalence import mixed  # noqa: F401
    except ImportError:
        return
    source[0] += _MIXED_SECTION


def setup(app):
    app.connect("source-read", _api_extras)
    app.add_directive("optional-markdown", OptionalMarkdown)
    app.add_directive("mnvalence-model-card", ModelCard)
    app.connect("build-finished", _card_json)
    return {"parallel_read_safe": True}
