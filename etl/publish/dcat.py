"""The open data catalog: warehouse/open/catalog.jsonld, DCAT-AP 3 as JSON-LD.

Built with rdflib from schemas/open/catalog.yml and the published datasets: the catalog
(title, description, publisher, language, licence, modified, its datasets), each dataset
(title, description, keywords, theme, publisher, contact point, temporal and spatial
coverage, modified, language, distributions) and each distribution (access and download
URL, licence, format, media type, byte size, sha256 checksum as spdx:checksum). Every node
has an IRI under the catalog's base URL (no blank nodes), and the JSON is written with its
nodes and values sorted, so the same data gives the same bytes. `modified` is the data's
date, never the time of publishing.

Before it is written the graph is validated with pyshacl against schemas/open/dcat-ap-shapes.ttl;
a catalog that does not conform is not written (OpenDataError with the report).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from etl.publish.openspec import CatalogInfo

if TYPE_CHECKING:
    from etl.publish.opendata import OpenResult

CATALOG_FILE = "catalog.jsonld"
SHAPES_FILE = "dcat-ap-shapes.ttl"
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
CONTEXT = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "vcard": str(VCARD),
    "spdx": str(SPDX),
    "xsd": str(XSD),
}
LANG = "zh"


def _date(value: Any) -> Literal:
    return Literal(value.isoformat(), datatype=XSD.date)


def _common(g: Graph, node: URIRef, info: CatalogInfo) -> None:
    for code in info.language:
        g.add((node, DCTERMS.language, URIRef(f"{EU}language/{code}")))


def _agents(g: Graph, info: CatalogInfo) -> tuple[URIRef, URIRef]:
    publisher = URIRef(info.base_url + "#publisher")
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, Literal(info.publisher.name, lang=LANG)))
    if info.publisher.url:
        g.add((publisher, FOAF.homepage, URIRef(info.publisher.url)))
    contact = URIRef(info.base_url + "#contact")
    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, VCARD.fn, Literal(info.contact.name, lang=LANG)))
    if info.contact.email:
        g.add((contact, VCARD.hasEmail, URIRef("mailto:" + info.contact.email)))
    return publisher, contact


def _distribution(g: Graph, info: CatalogInfo, result: OpenResult, f: Any) -> URIRef:
    ds = result.dataset
    url = URIRef(f"{info.base_url}{ds.name}/{f.path.name}")
    node = URIRef(f"{url}#distribution")
    checksum = URIRef(f"{url}#sha256")
    for p, o in (
        (RDF.type, DCAT.Distribution),
        (DCTERMS.title, Literal(f"{ds.title} ({f.format})", lang=LANG)),
        (DCAT.accessURL, url),
        (DCAT.downloadURL, url),
        (DCTERMS.license, URIRef(ds.license or info.license)),
        (DCTERMS.format, URIRef(f"{EU}file-type/{f.format}")),
        (DCAT.mediaType, URIRef(IANA + f.media_type)),
        (DCAT.byteSize, Literal(str(f.byte_size), datatype=XSD.nonNegativeInteger)),
        (SPDX.checksum, checksum),
    ):
        g.add((node, p, o))
    if result.as_of:
        g.add((node, DCTERMS.modified, _date(result.as_of)))
    g.add((checksum, RDF.type, SPDX.Checksum))
    g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    g.add((checksum, SPDX.checksumValue, Literal(f.sha256, datatype=XSD.hexBinary)))
    return node


def _dataset(g: Graph, info: CatalogInfo, result: OpenResult, agents: tuple[URIRef, URIRef]) -> URIRef:
    ds = result.dataset
    node = URIRef(info.base_url + ds.name)
    g.add((node, RDF.type, DCAT.Dataset))
    g.add((node, DCTERMS.identifier, Literal(ds.name)))
    g.add((node, DCTERMS.title, Literal(ds.title, lang=LANG)))
    g.add((node, DCTERMS.description, Literal(ds.description.strip(), lang=LANG)))
    for k in ds.keywords:
        g.add((node, DCAT.keyword, Literal(k, lang=LANG)))
    g.add((node, DCAT.theme, URIRef(f"{EU}data-theme/{ds.theme}")))
    g.add((node, DCTERMS.publisher, agents[0]))
    g.add((node, DCAT.contactPoint, agents[1]))
    g.add((node, DCTERMS.spatial, URIRef(f"{EU}country/{info.spatial}")))
    _common(g, node, info)
    if result.as_of:
        g.add((node, DCTERMS.modified, _date(result.as_of)))
    if result.temporal:
        period = URIRef(f"{node}#temporal")
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        g.add((period, DCAT.startDate, _date(result.temporal[0])))
        g.add((period, DCAT.endDate, _date(result.temporal[1])))
        g.add((node, DCTERMS.temporal, period))
    for f in result.files:
        g.add((node, DCAT.distribution, _distribution(g, info, result, f)))
    return node


def catalog_graph(info: CatalogInfo, results: Sequence[OpenResult]) -> Graph:
    """The catalog, its datasets and their distributions as an RDF graph."""
    g = Graph()
    for prefix, ns in CONTEXT.items():
        g.bind(prefix, Namespace(ns))
    node = URIRef(info.base_url + "catalog")
    agents = _agents(g, info)
    g.add((node, RDF.type, DCAT.Catalog))
    g.add((node, DCTERMS.title, Literal(info.title, lang=LANG)))
    g.add((node, DCTERMS.description, Literal(info.description.strip(), lang=LANG)))
    g.add((node, DCTERMS.publisher, agents[0]))
    g.add((node, DCTERMS.license, URIRef(info.license)))
    g.add((node, FOAF.homepage, URIRef(info.base_url)))
    _common(g, node, info)
    dates = [r.as_of for r in results if r.as_of]
    if dates:
        g.add((node, DCTERMS.modified, _date(max(dates))))
    for r in results:
        g.add((node, DCAT.dataset, _dataset(g, info, r, agents)))
    return g


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [_sorted(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    return value


def to_jsonld(g: Graph) -> str:
    """Compact JSON-LD with the prefixes as context, nodes and values in a stable order."""
    doc = json.loads(g.serialize(format="json-ld", context=CONTEXT, auto_compact=True))
    graph = doc.get("@graph", [doc])
    nodes = sorted(
        (_sorted({k: v for k, v in n.items() if k != "@context"}) for n in graph), key=lambda n: n["@id"]
    )
    out = {"@context": CONTEXT, "@graph": nodes}
    return json.dumps(out, ensure_ascii=False, indent=2) + "\n"


def validate(g: Graph, shapes: Path) -> tuple[bool, str]:
    """(conforms, report text) of the graph against the project's SHACL shapes."""
    import pyshacl

    conforms, _, text = pyshacl.validate(
        g, shacl_graph=Graph().parse(shapes, format="turtle"), inference="none"
    )
    return bool(conforms), str(text)


def write_catalog(path: Path, info: CatalogInfo, results: Sequence[OpenResult], schemas_dir: Path) -> Path:
    """Validate the catalog of `results`, then write it (only when its bytes change)."""
    from etl.publish.opendata import OpenDataError, replace_if_changed

    text = to_jsonld(catalog_graph(info, results))
    conforms, report = validate(
        Graph().parse(data=text, format="json-ld"), schemas_dir / "open" / SHAPES_FILE
    )
    if not conforms:
        raise OpenDataError(f"the open data catalog does not conform to {SHAPES_FILE}: {report[:2000]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    replace_if_changed(tmp, path)
    return path
