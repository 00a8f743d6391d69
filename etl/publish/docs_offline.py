"""Data Docs that load nothing from the internet.

Great Expectations' page templates load every stylesheet and script from CDNs (jsDelivr,
unpkg, cdnjs, code.jquery.com, stackpath) and the logo from a remote bucket: on a machine
without internet the pages are unstyled and the index, drawn by bootstrap-table, lists
nothing. govbase renders its pages with the views of this module instead:

- the assets are npm packages pinned in vendor/package.json and vendor/package-lock.json,
  installed by `make setup` (`npm ci`, from the registry, never at run time) into
  vendor/node_modules; `copy_assets` copies the files the pages need (ASSETS) into the
  site's static/vendor/ folder;
- `LocalAssetsLoader` reads GE's own templates and rewrites each CDN address (CDN_ASSETS)
  to the copy under static/vendor/, relative to the page, drops the integrity hashes of
  the CDN files (the copies are other versions), points the logo at the local image and
  drops GE's newsletter footer. A template that still loads something from outside after
  the rewrite (a GE upgrade with new addresses) is an error naming the template and the
  address, never a page that quietly goes to the internet;
- `remote_references` lists what a built page would still fetch from outside (the check
  behind the build, and the tests').
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader
from jinja2.loaders import split_template_path

from etl.errors import GovbaseError

#: where `make setup` installs the npm packages of vendor/package.json
VENDOR_DIR = Path(__file__).resolve().parents[2] / "vendor"
NODE_MODULES = VENDOR_DIR / "node_modules"

#: site file under static/vendor/ -> file of vendor/node_modules (or folder: copied whole)
ASSETS: dict[str, str] = {
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    "popper.js/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "bootstrap/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "bootstrap-dark/bootstrap-prefers-dark.css": "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "bootstrap-table/bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    "bootstrap-table/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    "bootstrap-table/bootstrap-table-filter-control.min.css": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "bootstrap-table/bootstrap-table-filter-control.min.js": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "bootstrap-datepicker/bootstrap-datepicker.min.css": "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "bootstrap-datepicker/bootstrap-datepicker.min.js": "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    # the stylesheet reads its fonts from ../webfonts/
    "fontawesome/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "fontawesome/webfonts": "@fortawesome/fontawesome-free/webfonts",
    "vega/vega.min.js": "vega/build/vega.min.js",
    "vega-lite/vega-lite.min.js": "vega-lite/build/vega-lite.min.js",
    "vega-embed/vega-embed.min.js": "vega-embed/build/vega-embed.min.js",
}

#: CDN address in GE's templates (a regular expression) -> site file under static/vendor/
CDN_ASSETS: dict[str, str] = {
    r"https://cdn\.jsdelivr\.net/npm/vega@5": "vega/vega.min.js",
    r"https://cdn\.jsdelivr\.net/npm/vega-lite@5": "vega-lite/vega-lite.min.js",
    r"https://cdn\.jsdelivr\.net/npm/vega-embed@6": "vega-embed/vega-embed.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/[\d.]+/css/all\.min\.css": "fontawesome/css/all.min.css",
    r"https://code\.jquery\.com/jquery-[\d.]+\.min\.js": "jquery/jquery.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/[\d.]+/umd/popper\.min\.js": "popper.js/popper.min.js",
    r"https://stackpath\.bootstrapcdn\.com/bootstrap/[\d.]+/js/bootstrap\.min\.js": "bootstrap/bootstrap.min.js",
    r"https://maxcdn\.bootstrapcdn\.com/bootstrap/[\d.]+/css/bootstrap\.min\.css": "bootstrap/bootstrap.min.css",
    r"https://unpkg\.com/bootstrap-table@[\d.]+/dist/bootstrap-table\.min\.css": "bootstrap-table/bootstrap-table.min.css",
    r"https://unpkg\.com/bootstrap-table@[\d.]+/dist/bootstrap-table\.min\.js": "bootstrap-table/bootstrap-table.min.js",
    r"https://unpkg\.com/bootstrap-table@[\d.]+/dist/extensions/filter-control/"
    r"bootstrap-table-filter-control(\.min)?\.css": "bootstrap-table/bootstrap-table-filter-control.min.css",
    r"https://unpkg\.com/bootstrap-table@[\d.]+/dist/extensions/filter-control/"
    r"bootstrap-table-filter-control\.min\.js": "bootstrap-table/bootstrap-table-filter-control.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/[\d.]+/css/bootstrap-datepicker\.min\.css": (
        "bootstrap-datepicker/bootstrap-datepicker.min.css"
    ),
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/[\d.]+/js/bootstrap-datepicker\.min\.js": (
        "bootstrap-datepicker/bootstrap-datepicker.min.js"
    ),
    r"https://cdn\.jsdelivr\.net/npm/@forevolve/bootstrap-dark@[\d.]+/dist/css/bootstrap-prefers-dark\.css": (
        "bootstrap-dark/bootstrap-prefers-dark.css"
    ),
}
_REMOTE_IMAGES = r"https://great-expectations-web-assets\.s3[\w.-]*\.amazonaws\.com/"

#: the site's static/ folder relative to the page being rendered (GE's own page layout:
#: validations/<suite>/<run>/<time>/<batch>.html, expectations/<suite>.html, index.html;
#: a dot in a suite name is one folder more)
_STATIC = (
    "{%- if 'ValidationResults' in renderer_type or 'ProfilingResults' in renderer_type -%}"
    "{%- set govbase_static = ((expectation_suite_name.count('.') + 4) * '../') + 'static/' -%}"
    "{%- elif 'ExpectationSuite' in renderer_type -%}"
    "{%- set govbase_static = ((expectation_suite_name.count('.') + 1) * '../') + 'static/' -%}"
    "{%- else -%}{%- set govbase_static = './static/' -%}{%- endif -%}"
)

#: what a page fetches: a script or image source, a stylesheet link, a CSS url() or @import
_FETCHES = re.compile(
    r"""<(?:script|img|iframe|source|embed)\b[^>]*?\bsrc\s*=\s*["']?(?P<src>[^"'\s>]+)"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?(?P<href>[^"'\s>]+)"""
    r"""|url\(\s*["']?(?P<url>[^"')\s]+)"""
    r"""|@import\s+["'](?P<imp>[^"']+)""",
    re.IGNORECASE,
)


def remote_references(text: str) -> list[str]:
    """The addresses a page or stylesheet would fetch from outside the machine (http, https
    or protocol-relative): scripts, images, stylesheet links, CSS url() and @import."""
    found = []
    for m in _FETCHES.finditer(text):
        address = next(v for v in m.groupdict().values() if v is not None)
        if re.match(r"(?i)(https?:)?//", address):
            found.append(address)
    return found


def _rewrite(name: str, source: str) -> str:
    """GE's template `name` with its CDN addresses pointing at the local copies."""
    out = re.sub(r'\s+integrity="[^"]*"\s+crossorigin="[^"]*"', "", source)
    changed = out != source
    for pattern, local in CDN_ASSETS.items():
        out, n = re.subn(pattern, "{{ govbase_static }}vendor/" + local, out)
        changed = changed or n > 0
    if re.search(_REMOTE_IMAGES, out):
        # the navigation bar's logo (and the dark style's): GE's own image, copied into static/images
        out = re.sub(
            r'\{%-?\s*set static_images_dir = "' + _REMOTE_IMAGES + r'"\s*-?%\}',
            "{%- set static_images_dir = govbase_static + 'images/' -%}",
            out,
        )
        out = re.sub(_REMOTE_IMAGES + r"full_logo_dark\.png", "{{ govbase_static }}images/logo-long.png", out)
        out = out.replace("| add_data_context_id_to_url ", "")
        changed = True
    if name == "favicon.j2":  # GE's path is one folder short on validation pages
        out = re.sub(
            r'href="\{\{ static_images_dir \+ "favicon\.ico" \}\}"',
            'href="{{ govbase_static }}images/favicon.ico"',
            out,
        )
        changed = True
    if changed:
        out = _STATIC + out
    # and an address a template keeps in a variable for its sources (GE's logo bucket)
    remote = remote_references(out) + re.findall(
        r"""\{%-?\s*set\s+\w+\s*=\s*["']((?:https?:)?//[^"']+)""", out
    )
    if remote:
        raise GovbaseError(
            f"Great Expectations template {name} loads {remote[0]} from the internet: govbase has no "
            "local copy of it (add the npm package to vendor/package.json and the address to "
            "etl.publish.docs_offline.CDN_ASSETS)"
        )
    return out


class LocalAssetsLoader(BaseLoader):
    """GE's templates (and styles) with the CDN addresses rewritten to the site's local copies."""

    def __init__(self) -> None:
        self.ge = ChoiceLoader(
            [
                PackageLoader("great_expectations", "render/view/templates"),
                PackageLoader("great_expectations", "render/view/static/styles"),
            ]
        )

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        split_template_path(template)  # refuses ../ in a name
        if template == "cloud-footer.j2":
            return "", None, lambda: True  # GE's newsletter link: no place on an intranet
        source, filename, uptodate = self.ge.get_source(environment, template)  # or TemplateNotFound
        return _rewrite(template, source), filename, uptodate or (lambda: True)


def _local(view: Any) -> None:
    """Put LocalAssetsLoader before GE's loaders (a site's custom styles stay after it)."""
    loaders = view.env.loader.loaders
    view.env.loader = ChoiceLoader([LocalAssetsLoader(), *loaders[2:]])


class OfflinePageView(DefaultJinjaPageView):
    """GE's page view, its templates read through LocalAssetsLoader."""

    def __init__(self, custom_styles_directory: Any = None, custom_views_directory: Any = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _local(self)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """GE's index page view, its templates read through LocalAssetsLoader."""

    def __init__(self, custom_styles_directory: Any = None, custom_views_directory: Any = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _local(self)


def view_config(index: bool = False) -> dict[str, str]:
    """The `view` of a site section (or of the index) in a GE site builder config."""
    return {"module_name": __name__, "class_name": "OfflineIndexPageView" if index else "OfflinePageView"}


def missing_assets(node_modules: Path = NODE_MODULES) -> list[str]:
    return [src for src in ASSETS.values() if not (node_modules / src).exists()]


def copy_assets(static_dir: Path, node_modules: Path = NODE_MODULES) -> int:
    """Copy the pages' assets into `static_dir`/vendor/ (those missing or changed); returns
    how many files were copied. Raises GovbaseError naming the missing files and the set-up
    step when vendor/node_modules lacks them."""
    missing = missing_assets(node_modules)
    if missing:
        raise GovbaseError(
            f"the Data Docs assets are not installed: {node_modules} lacks {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}; run `make setup` (npm ci in vendor/, from the npm "
            "registry) where the project is checked out"
        )
    copied = 0
    for dest, src in ASSETS.items():
        origin = node_modules / src
        files = sorted(p for p in origin.rglob("*") if p.is_file()) if origin.is_dir() else [origin]
        for f in files:
            target = (
                static_dir / "vendor" / dest / f.relative_to(origin)
                if origin.is_dir()
                else static_dir / "vendor" / dest
            )
            if target.exists() and target.stat().st_size == f.stat().st_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            copied += 1
    return copied


def localize_static_styles(static_dir: Path) -> None:
    """GE copies its default stylesheet into static/styles/ as it is (the pages inline their
    own, rewritten copy): point its remote logo at the local image too."""
    css = static_dir / "styles" / "data_docs_default_styles.css"
    if css.exists():
        text = css.read_text(encoding="utf-8")
        local = re.sub(_REMOTE_IMAGES + r"full_logo_dark\.png", "../images/logo-long.png", text)
        if local != text:
            css.write_text(local, encoding="utf-8")


__all__ = [
    "ASSETS",
    "CDN_ASSETS",
    "NODE_MODULES",
    "OfflineIndexPageView",
    "OfflinePageView",
    "copy_assets",
    "localize_static_styles",
    "missing_assets",
    "remote_references",
    "view_config",
]
