"""The plain-text journal format.

    ; comment lines start with ";" or "#"; after other text only ";" works
    2024-01-05 Groceries
        expenses:food        42.50 EUR
        assets:bank

A transaction is a date and a description, followed by indented postings.
An account is separated from its amount by at least two spaces or a tab, so
account names may contain single spaces.
"""

from __future__ import annotations

import re
from datetime import date

from ledger.journal import Journal, Posting, Transaction, UnbalancedTransaction
from ledger.money import Money


class JournalSyntaxError(ValueError):
    def __init__(self, message: str, lineno: int) -> None:
        self.message = message
        self.lineno = lineno
        super().__init__(f"line {lineno}: {message}")


_HEADER = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(?:\s+(?P<description>.*?))?\s*")
_POSTING = re.compile(r"(?P<account>\S(?:.*?\S)??)(?:(?: {2,}|\t)\s*(?P<amount>\S.*?))?\s*")
# Thousands separators must group exactly three digits, so that a decimal
# comma ("12,50") is an error rather than twelve hundred and fifty.
_AMOUNT = re.compile(r"(?P<number>-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s+(?P<currency>[A-Z]{3})")
_COMMENT = (";", "#")


def _parse_amount(text: str, lineno: int) -> Money:
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise JournalSyntaxError(f"invalid amount {text!r} (expected e.g. '-12.50 EUR')", lineno)
    return Money.of(match["number"].replace(",", ""), match["currency"])


def _strip_comment(line: str) -> str:
    # Only ";" starts a comment after other text: "#" is common in
    # descriptions ("Invoice #12").
    return re.split(r"\s;", line, maxsplit=1)[0].rstrip()


def parse_journal(text: str) -> Journal:
    journal = Journal()
    current: Transaction | None = None
    start_line = 0

    def finish() -> None:
        if current is None:
            return
        if not current.postings:
            raise JournalSyntaxError("transaction without postings", start_line)
        try:
            journal.add(current)
        except UnbalancedTransaction as exc:
            raise JournalSyntaxError(str(exc), start_line) from None

    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith(_COMMENT):
            continue
        line = _strip_comment(raw)
        if not raw[0].isspace():
            finish()
            header = _HEADER.fullmatch(line)
            if header is None:
                raise JournalSyntaxError("expected a transaction header 'YYYY-MM-DD description'", lineno)
            try:
                day = date.fromisoformat(header["date"])
            except ValueError:
                raise JournalSyntaxError(f"invalid date {header['date']!r}", lineno) from None
            current = Transaction(day, header["description"] or "")
            start_line = lineno
            continue
        if current is None:
            raise JournalSyntaxError("posting outside of a transaction", lineno)
        posting = _POSTING.fullmatch(line.strip())
        if posting is None:
            raise JournalSyntaxError("invalid posting", lineno)
        amount = _parse_amount(posting["amount"], lineno) if posting["amount"] else None
        try:
            current.postings.append(Posting(posting["account"], amount))
        except ValueError as exc:
            raise JournalSyntaxError(str(exc), lineno) from None
    finish()
    return journal
