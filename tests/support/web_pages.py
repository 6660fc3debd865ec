"""Reading the history browser's pages in tests: links, table rows, text, forms."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.rows: list[list[str]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._href: str | None = None
        self._link_text: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a":
            self._href, self._link_text = found.get("href"), []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in ("input", "button"):
            self.inputs.append(found)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._link_text).split()), self._href))
            self._href = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._href is not None:
            self._link_text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def text_of(html: str) -> str:
    """The page's text as a reader sees it (entities decoded, whitespace collapsed)."""
    return " ".join("".join(parse(html).text).split())


def link(html: str, text: str) -> str:
    """The address of the first link whose text is ``text``."""
    for label, href in parse(html).links:
        if label == text:
            return href
    raise AssertionError(f"no link {text!r} in the page")


def rows(html: str) -> list[list[str]]:
    """Every table row's cells, as text (header rows included)."""
    return parse(html).rows


def query_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


def get_ok(client: TestClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, text_of(response.text))
    return response.text


def form_fields(html: str) -> dict[str, str]:
    """The named inputs of the page (the last wins), for posting a form back."""
    return {
        str(found["name"]): str(found.get("value") or "")
        for found in parse(html).inputs
        if found.get("name") and found.get("type") in ("hidden", "text", None)
    }
