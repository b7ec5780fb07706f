"""The documentation only points at things a clone of the repository has.

Every Markdown link in README.md and docs/*.md is parsed with markdown-it (the same
CommonMark parser GitHub's renderer follows, tables included): a relative link must name a
file or directory inside the repository, and an anchor (`#…`, alone or after a Markdown
file) must be the GitHub slug of one of the target page's headings. A code span that reads as
a path from the repository's root (`examples/config.yaml`) must exist too, unless it is a
file the project generates. A relative path that climbs out of the repository (`../x`)
is refused wherever it appears, code spans included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# A relative path that climbs out of the page's directory (`../x`), anywhere in the text
# but code blocks: it must still land inside the repository, since a clone has nothing
# beside it.
_UPWARD = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.-]+)")

# Written by the tools at run time and git-ignored: named in the docs, absent from a clone.
GENERATED = (".venv/", "certs/", "manifests/overlays/static-certs/certs",
             "bench/results/latest.json", "bench/results/profile-raw.txt")

_MARKDOWN = MarkdownIt("commonmark").enable("table")
_PATH_SPAN = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?")


@dataclass(frozen=True)
class Link:
    page: Path
    line: int
    target: str


def _walk(tokens: list[Token]) -> Iterator[tuple[Token, int]]:
    """Every token with the source line of the block it sits in (inline children have
    no line map of their own)."""
    for token in tokens:
        line = token.map[0] + 1 if token.map else 0
        yield token, line
        for child in token.children or []:
            yield child, line


def links(page: Path) -> list[Link]:
    """Link and image targets of a page, reference-style links resolved by the parser."""
    found = []
    for token, line in _walk(_MARKDOWN.parse(page.read_text(encoding="utf-8"))):
        target = token.attrGet("href") if token.type == "link_open" else \
            token.attrGet("src") if token.type == "image" else None
        if isinstance(target, str):
            found.append(Link(page, line, target))
    return found


def path_spans(page: Path, root: Path = ROOT) -> list[Link]:
    """Code spans that are paths starting at one of the repository's top-level
    directories, e.g. `manifests/base/config.yaml` (but not `/etc/hosts` or the
    annotation key `kci-webhook/mirrors`)."""
    top = {child.name for child in root.iterdir() if child.is_dir()}
    found = []
    for token, line in _walk(_MARKDOWN.parse(page.read_text(encoding="utf-8"))):
        text = token.content
        if (token.type == "code_inline" and "/" in text and _PATH_SPAN.fullmatch(text)
                and text.split("/")[0] in top):
            found.append(Link(page, line, text))
    return found


def path_span_problem(span: Link, root: Path = ROOT) -> str | None:
    if span.target.startswith(GENERATED) or (root / span.target).exists():
        return None
    return f"{span.page.relative_to(root)}:{span.line}: `{span.target}` does not exist"


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters,
    digits, `_`, `-` and spaces stay), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The slugs of a page's headings; a repeated heading gets `-1`, `-2`, … as on GitHub."""
    tokens = _MARKDOWN.parse(page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    slugs = set()
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        text = "".join(child.content for child in inline.children or []
                       if child.type in ("text", "code_inline"))
        slug = github_slug(text)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def link_problem(link: Link, root: Path = ROOT) -> str | None:
    """Why a link is broken, or None. Links with a scheme (https:, mailto:) are the web's
    business and are not fetched."""
    parts = urlsplit(link.target)
    if parts.scheme or parts.netloc:
        return None
    where = f"{link.page.relative_to(root)}:{link.line}: {link.target}"
    path = unquote(parts.path)
    target = (link.page.parent / path).resolve() if path else link.page
    if not target.is_relative_to(root):
        return f"{where}: points outside the repository"
    if not target.exists():
        return f"{where}: {target.relative_to(root)} does not exist"
    if parts.fragment:
        if target.is_dir() or target.suffix != ".md":
            return f"{where}: an anchor into {target.relative_to(root)}, which is not a page"
        if unquote(parts.fragment) not in anchors(target):
            return f"{where}: no heading with the anchor #{parts.fragment} in " \
                   f"{target.relative_to(root)}"
    return None


def forbidden_problems(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    top = root.resolve()
    fenced = False   # a code block's paths are relative to the file it shows, not the page
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        for match in () if fenced else _UPWARD.finditer(line):
            target = (page.parent / match.group(1)).resolve()
            if not target.is_relative_to(top):
                problems.append(f"{page.relative_to(root)}:{number}: names {match.group(1)}, "
                                "outside the repository, which a clone does not have")
    return problems


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_there_are_pages_to_check() -> None:
    assert ROOT / "README.md" in PAGES
    assert len(PAGES) > 1, "docs/*.md is missing"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_relative_link_resolves(page: Path) -> None:
    problems = [p for link in links(page) if (p := link_problem(link))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_path_in_code_exists(page: Path) -> None:
    problems = [p for span in path_spans(page) if (p := path_span_problem(span))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_reference_to_files_outside_a_clone(page: Path) -> None:
    problems = forbidden_problems(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=_page_id)
def test_readme_lists_every_docs_page(page: Path) -> None:
    listed = {(ROOT / urlsplit(link.target).path).resolve()
              for link in links(ROOT / "README.md")}
    assert page in listed, f"README.md's docs table has no link to {_page_id(page)}"


@pytest.mark.parametrize("command", ["make run", "make test"])
def test_readme_shows_how_to_start(command: str) -> None:
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")


# --- the checker itself: it must catch what it is there for --------------------------

_TARGET_PAGE = """\
# Deploying

## 1. Build and push the image

## Older clusters: the `preStop` hook

## Notes

## Notes
"""


@pytest.mark.parametrize(("text", "broken"), [
    ("[ok](other.md)", False),
    ("[ok](sub/)", False),
    ("[ok](sub/file.txt)", False),
    ("[ok](#here)", False),
    ("[ok](other.md#1-build-and-push-the-image)", False),
    ("[ok](other.md#older-clusters-the-prestop-hook)", False),
    ("[ok](other.md#notes-1)", False),
    ("[ok](https://example.com/missing.md)", False),
    ("[ok][ref]\n\n[ref]: other.md#deploying", False),
    ("| a | [ok](other.md) |\n|---|---|\n| b | c |", False),
    ("[missing file](nothere.md)", True),
    ("[missing dir](nodir/)", True),
    ("[missing anchor](other.md#no-such-heading)", True),
    ("[missing anchor here](#nowhere)", True),
    ("[repeat beyond count](other.md#notes-2)", True),
    ("[anchor into a non-page](sub/file.txt#x)", True),
    ("[outside](../outside.md)", True),
    ("![image](missing.png)", True),
    ("[ref style][ref]\n\n[ref]: gone.md", True),
    ("| a | [in a table](gone.md) |\n|---|---|\n| b | c |", True),
], ids=lambda value: value if isinstance(value, bool) else value.splitlines()[0][:40])
def test_checker_catches_a_broken_link(tmp_path: Path, text: str, broken: bool) -> None:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file.txt").write_text("x")
    (tmp_path / "outside.md").write_text("# Outside\n")
    (root / "other.md").write_text(_TARGET_PAGE)
    page = root / "page.md"
    page.write_text(f"# Here\n\n{text}\n")
    found = links(page)
    assert found, "the parser found no link in the sample"
    problems = [p for link in found if (p := link_problem(link, root))]
    assert bool(problems) is broken, problems


@pytest.mark.parametrize(("span", "broken"), [
    ("`sub/file.txt`", False),
    ("`sub/`", False),
    ("`certs/ca.crt`", False),
    ("`bench/results/latest.json`", False),
    ("`/etc/hosts`", False),
    ("`kci-webhook/mirrors`", False),
    ("`sub/file.txt --flag`", False),
    ("`sub/gone.txt`", True),
    ("| a | `sub/gone/` |\n|---|---|\n| b | c |", True),
], ids=lambda value: value if isinstance(value, bool) else value.splitlines()[0])
def test_checker_catches_a_missing_path_in_code(tmp_path: Path, span: str,
                                                broken: bool) -> None:
    for directory in ("sub", "certs", "bench/results"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "sub" / "file.txt").write_text("x")
    page = tmp_path / "page.md"
    page.write_text(f"# Page\n\n{span}\n")
    problems = [p for found in path_spans(page, tmp_path)
                if (p := path_span_problem(found, tmp_path))]
    assert bool(problems) is broken, problems


@pytest.mark.parametrize(("text", "name"), [
    ("See `../../beside/cases/` for the data.", "../../beside"),
    ("The notes are in ../../NOTES.md.", "../../NOTES.md"),
    ("Three up: ../../../elsewhere.yaml", "../../../elsewhere.yaml"),
    ("Inside: ../README.md", None),
    ("```yaml\nresources: [../../base]\n```", None),
], ids=["sibling-dir", "parent-file", "three-up", "inside-is-fine", "code-block"])
def test_checker_catches_a_reference_outside_a_clone(tmp_path: Path, text: str,
                                                     name: str | None) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Read me\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(f"# Page\n\n{text}\n")
    problems = forbidden_problems(page, tmp_path)
    if name is None:
        assert problems == []
    else:
        assert len(problems) == 1 and name in problems[0], problems


@pytest.mark.parametrize(("heading", "slug"), [
    ("Quick start", "quick-start"),
    ("`kci-webhook serve`", "kci-webhook-serve"),
    ("Previewing a manifest: `kci-webhook mutate`", "previewing-a-manifest-kci-webhook-mutate"),
    ("Trusting a private registry's CA (Tanzu)", "trusting-a-private-registrys-ca-tanzu"),
    ("3b. Install with static certificates", "3b-install-with-static-certificates"),
    ("Uninstall, and the way out of an outage", "uninstall-and-the-way-out-of-an-outage"),
    ("Mirrors and `if-present`", "mirrors-and-if-present"),
    ("snake_case stays", "snake_case-stays"),
], ids=lambda value: value)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
