"""The bibliography's labels in author-year form, as the text cites them.

sphinxcontrib-bibtex cites by label (``bibtex_reference_style: label``); pybtex's own label
styles are alphanumeric (``[KKI+20a]``), which a reader cannot match to a name. This style labels
each work ``Koizumi et al. 2020a``: the first author's surname, ``et al.`` for three or more
authors, the year and a letter where one label would name two works, and sorts the list by it.
"""
from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle


def _surname(person) -> str:
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


def _base(entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if not names:
        who = entry.fields.get("title", "Anonymous").replace("{", "").replace("}", "")
    elif len(names) > 2 or names[-1] == "others":
        who = f"{names[0]} et al."
    else:
        who = " and ".join(names)
    return f"{who} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        bases = [_base(e) for e in sorted_entries]
        shared, seen = Counter(bases), Counter()
        for base in bases:
            seen[base] += 1
            yield f"{base}{ascii_lowercase[seen[base] - 1]}" if shared[base] > 1 else base


class AuthorYearSorting(BaseSortingStyle):
    def sorting_key(self, entry):
        return _base(entry).lower(), entry.fields.get("title", "").lower()


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = AuthorYearSorting


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year_labels", AuthorYearStyle)
    return {"parallel_read_safe": True}
